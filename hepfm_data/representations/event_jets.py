"""``event_jets`` (Vigl et al.): one example per event; its 5 highest-pT large-R jets with pT > 150 GeV and
|η| < 2.5, each with its 100 highest-pT constituents (``PointCloudBatch`` [B, 5, 100, 15] + ``jet_mask``)."""

from hepfm_data.representations.pointcloud import PointCloudRepresentation

__all__ = ["EVENT_JETS"]

EVENT_JETS = PointCloudRepresentation(
    "event_jets", 1, "event", pt_min=150.0, abs_eta_max=2.5, mass_min=0.0, max_jets=5,
    doc="Vigl et al.: per event, its 5 highest-pT large-R jets (pT > 150 GeV), 100 constituents each")
