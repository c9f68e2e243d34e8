"""PointCloudBatch: the data/model contract for jet-constituent inputs (as ``graph.py`` is for graphs).

Two point-cloud representations are read from the stored record's ``fatjets`` and
``fatjets.constituents`` (README "Jet constituents"; built by the loader's
``ConstituentBatcher``, :mod:`hepfm_data.representations.pointcloud`):

* ``jet_constituents`` (RS3L): one example per large-R jet passing pT > 450 GeV,
  |η| < 0.1, mass >= 10 GeV; its 100 highest-pT constituents.
* ``event_jets`` (Vigl et al.): one example per event; its 5 highest-pT large-R jets
  with pT > 150 GeV, |η| < 2.5, each with its 100 highest-pT constituents.

================  =========================  ===================================================
field             jet_constituents           event_jets
================  =========================  ===================================================
points            [B, P, 15] float32         [B, J, P, 15] float32 — :data:`CONSTITUENT_FEATURES`
mask              [B, P] bool                [B, J, P] bool — True for real constituents
jets              [B, 6] float32             [B, J, 6] float32 — :data:`JET_FEATURES` (GeV, rad)
jet_mask          None                       [B, J] bool — True for real jets
jet_labels        [B] int64                  [B, J] int64 — truth label: 0 none, 1 H->bb,
                                                            2 quark, 3 gluon (-1 unknown)
labels            [B] int64                  [B] int64 — process label (index or task label)
weights           [B] float32                [B] float32 — event weight (mixing applied)
event_id          [B] int64                  [B] int64 — store event id of the (parent) event
jet_index         [B] int64                  None — the jet's index among its event's fatjets
================  =========================  ===================================================

Padded constituents are zeros with mask False. In ``jet_constituents`` a batch carries the
selected jets of the ``batch_size`` events the sampler assigns to it, so ``B`` varies from
batch to batch (exactly-once over events is exactly-once over jets).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from hepfm_data.batches.base import TensorBatch, batch_type
from hepfm_data.core.errors import StoreError, UnknownNameError
from hepfm_data.kernels.constituents import CONSTITUENT_FEATURES, JET_FEATURES

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.store import Store

__all__ = ["PointCloudBatch", "PointCloudPairs", "PointCloudSpec", "POINT_CLOUDS", "CONSTITUENT_FEATURES", "JET_FEATURES",
           "get_point_cloud", "check_point_cloud_inputs", "point_clouds_missing"]


@batch_type("pointcloud")
@dataclass
class PointCloudBatch(TensorBatch):
    """Padded constituents of large-R jets (see the module docstring for shapes)."""

    points: torch.Tensor
    mask: torch.Tensor
    jets: torch.Tensor
    jet_labels: torch.Tensor
    labels: torch.Tensor
    weights: torch.Tensor
    event_id: torch.Tensor
    jet_mask: torch.Tensor | None = None
    jet_index: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.points.shape[0])


@batch_type("pointcloud_pairs")
@dataclass
class PointCloudPairs(PointCloudBatch):
    """A ``jet_constituents`` PointCloudBatch of ``2m`` interleaved jets (nominal jet, the same jet in its
    view, ...) plus ``view`` [2m] int64 (-1: nominal; k: ``views[k]``) and ``unpaired`` [1] int64: the
    selected nominal jets of this batch's events that had no match in their drawn view (left out)."""

    view: torch.Tensor | None = None
    unpaired: torch.Tensor | None = None


@dataclass(frozen=True)
class PointCloudSpec:
    """A point-cloud representation: the unit (``jet`` or ``event``), jet cuts (GeV), sizes."""

    name: str
    version: int
    unit: str  # "jet" | "event"
    pt_min: float
    abs_eta_max: float
    mass_min: float
    max_constituents: int = 100
    max_jets: int | None = None  # per event ("event" unit)
    doc: str = ""

    #: record fields read (``collection.field``)
    inputs: tuple[str, ...] = (
        *(f"fatjets.{k}" for k in ("pt", "eta", "phi", "mass", "sd_mass", "n2")),
        *(f"fatjets.constituents.{k}" for k in ("pt", "eta", "phi", "energy", "charge", "kind", "d0", "dz")),
        "event_id", "weight")

    def fingerprint(self) -> str:
        doc = {**dataclasses.asdict(self), "features": list(CONSTITUENT_FEATURES), "jet_features": list(JET_FEATURES)}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


POINT_CLOUDS: dict[str, PointCloudSpec] = {
    "jet_constituents": PointCloudSpec(
        "jet_constituents", 1, "jet", pt_min=450.0, abs_eta_max=0.1, mass_min=10.0,
        doc="RS3L: per large-R jet (pT > 450 GeV, |eta| < 0.1, m >= 10 GeV), its 100 highest-pT constituents"),
    "event_jets": PointCloudSpec(
        "event_jets", 1, "event", pt_min=150.0, abs_eta_max=2.5, mass_min=0.0, max_jets=5,
        doc="Vigl et al.: per event, its 5 highest-pT large-R jets (pT > 150 GeV), 100 constituents each"),
}


def get_point_cloud(name: str | PointCloudSpec) -> PointCloudSpec:
    if isinstance(name, PointCloudSpec):
        return name
    try:
        return POINT_CLOUDS[name]
    except KeyError:
        raise UnknownNameError(f"unknown point-cloud representation {name!r}; known: {', '.join(POINT_CLOUDS)}"
                               ) from None


def point_clouds_missing(schema: dict[str, Any] | None) -> dict[str, list[str]]:
    """{point-cloud name: record fields it needs that ``schema`` (a manifest's) lacks}; empty lists = servable."""
    from hepfm_data.store.record import inputs_missing

    out = {}
    for name, spec in POINT_CLOUDS.items():
        out[name] = list(spec.inputs) if not schema else inputs_missing(schema, list(spec.inputs))
    return out


def check_point_cloud_inputs(store: Store, spec: str | PointCloudSpec) -> None:
    """Raise :class:`StoreError` naming the store, the representation and the record collection(s) it lacks."""
    from hepfm_data.store.record import inputs_missing

    spec = get_point_cloud(spec)
    schema = store.manifest.schema
    missing = inputs_missing(schema, list(spec.inputs)) if schema else list(spec.inputs)
    if missing:
        colls = sorted({m.rsplit(".", 1)[0] for m in missing})
        raise StoreError(f"{store.url}: representation {spec.name!r} needs the record collection(s) {colls} "
                         f"(fields {missing}), which this store's record lacks: its input has no particle-flow "
                         f"candidates / large-R jets (Delphes EFlowTrack, EFlowPhoton, EFlowNeutralHadron, FatJet; "
                         f"generation with particle_flow: true)")
