"""PointCloudBatch: the data/model contract for jet-constituent inputs (as ``graph.py`` is for graphs).

Two point-cloud representations are read from the stored record's ``fatjets`` and
``fatjets.constituents`` (docs/tutorials/representations.md; computed in the loader's workers by
:mod:`hepfm_data.representations.pointcloud`):

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

from dataclasses import dataclass

import torch

from hepfm_data.batches.base import TensorBatch, batch_type
from hepfm_data.kernels.constituents import CONSTITUENT_FEATURES, JET_FEATURES

__all__ = ["PointCloudBatch", "PointCloudPairs", "CONSTITUENT_FEATURES", "JET_FEATURES"]


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
