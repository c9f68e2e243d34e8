"""``jet_constituents`` (RS3L): one example per large-R jet with pT > 450 GeV, |η| < 0.1 and mass >= 10
GeV; its 100 highest-pT constituents with the 15 RS3L features (``PointCloudBatch`` [B, 100, 15])."""

from hepfm_data.representations.pointcloud import PointCloudRepresentation

__all__ = ["JET_CONSTITUENTS"]

JET_CONSTITUENTS = PointCloudRepresentation(
    "jet_constituents", 1, "jet", pt_min=450.0, abs_eta_max=0.1, mass_min=10.0,
    doc="RS3L: per large-R jet (pT > 450 GeV, |eta| < 0.1, m >= 10 GeV), its 100 highest-pT constituents")
