"""Local generation: Pythia 8 (hard process, shower, hadronisation), the ATLAS-like detector emulation,
particle flow and large-R jets (FastJet), and the CP-mixed tt̄H chain (LO helicity amplitudes ->
partial unweighting -> LHE -> Pythia). Each returns event records (``hepfm_data.core.events``)."""
