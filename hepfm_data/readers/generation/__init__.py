"""Local generation: Pythia 8 (hard process, shower, hadronisation), the ATLAS-like detector emulation,
particle flow and large-R jets (FastJet), and the CP-mixed tt̄H chain (LO helicity amplitudes ->
partial unweighting -> LHE -> Pythia), and the LO matrix-element generator (:mod:`.lo`: tree-level
amplitudes -> VEGAS -> unweighted LHE -> Pythia). Each returns event records (``hepfm_data.core.events``).

:func:`generate` is the one entry point: a catalog process with ``cp_mixing`` goes through the
reweighting chain (:mod:`.ttH_reweight`), one with ``generator`` through the LO generator
(:func:`.lo.generate_lo`), every other one through Pythia (:mod:`.pythia`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import awkward as ak

    from hepfm_data.core.catalog import Catalog, Process
    from hepfm_data.core.events import SampleInfo

__all__ = ["generate"]


def generate(process: str | Process, n_events: int, seed: int, *, lhe: str | os.PathLike | None = None,
             catalog: Catalog | None = None, progress=False, first_event_id: int = 0, lhe_skip: int = 0,
             workdir: str | os.PathLike | None = None, keep_hard_process: bool = False,
             sample_events: int | None = None) -> tuple[ak.Array, SampleInfo]:
    """Generate ``n_events`` of ``process`` with seed ``seed`` -> (event record, SampleInfo); the arguments
    are those of :func:`.pythia.generate`. CP-mixed tt̄H (``cp_mixing``, no ``lhe``) is made by reweighting
    SM hard processes (:func:`.ttH_reweight.generate_cp_mixed`). Same arguments -> same bytes."""
    from hepfm_data.readers.generation import pythia

    proc = pythia.resolve_process(process, catalog)
    if proc.generator is not None and lhe is None and not keep_hard_process:
        from hepfm_data.readers.generation.lo import generate_lo

        pythia.check_count("n_events", n_events)
        return generate_lo(proc, n_events, seed, progress=progress, first_event_id=first_event_id,
                           workdir=workdir, catalog=catalog)
    if proc.cp_mixing is not None and lhe is None and not keep_hard_process:
        from hepfm_data.readers.generation.ttH_reweight import generate_cp_mixed

        pythia.check_count("n_events", n_events)
        return generate_cp_mixed(proc, n_events, seed, progress=progress, first_event_id=first_event_id,
                                 workdir=workdir, catalog=catalog)
    return pythia.generate(proc, n_events, seed, lhe=lhe, catalog=catalog, progress=progress,
                           first_event_id=first_event_id, lhe_skip=lhe_skip, workdir=workdir,
                           keep_hard_process=keep_hard_process, sample_events=sample_events)
