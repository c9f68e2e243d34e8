"""Heads' losses (SPEC §4, §6) on a :class:`~hepfm_data.batches.graph.GraphBatch`.

Both losses are per-event weighted means: event ``b`` counts with
``weights[b] * graph_mask[b]``, so padding events (mask False, weight 0) never
contribute. A batch whose total weight is 0 gives loss 0 (with a gradient path).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hepfm_data.batches.graph import GraphBatch

#: SPEC §4: the first N_COUNT_LABELS multilabels are counts (regression, MSE); the rest one-hot bins (BCE).
N_COUNT_LABELS = 5


def event_weights(g: GraphBatch) -> torch.Tensor:
    """[B] float32: ``weights`` with padding events zeroed."""
    return g.weights.float() * g.graph_mask.float()


def _weighted_mean(per_event: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (per_event * w).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)


def multiclass_loss(logits: torch.Tensor, g: GraphBatch) -> torch.Tensor:
    """Categorical cross-entropy of ``logits`` [B, C] against ``g.labels`` [B] (int)."""
    ce = F.cross_entropy(logits.float(), g.labels.long(), reduction="none")
    return _weighted_mean(ce, event_weights(g))


def multilabel_loss(logits: torch.Tensor, g: GraphBatch, n_counts: int = N_COUNT_LABELS) -> torch.Tensor:
    """Mean of two equally weighted terms on ``g.multilabels`` [B, L]:

    MSE of outputs ``[:, :n_counts]`` against the particle counts, and binary
    cross-entropy (with logits) of outputs ``[:, n_counts:]`` against the one-hot bins.
    """
    if g.multilabels is None:
        raise ValueError("multilabel_loss: the batch has no multilabels (build the loader with multilabel labels)")
    y, out = g.multilabels.float(), logits.float()
    if out.shape != y.shape:
        raise ValueError(f"multilabel_loss: outputs {tuple(out.shape)} do not match labels {tuple(y.shape)}")
    mse = F.mse_loss(out[:, :n_counts], y[:, :n_counts], reduction="none").mean(1)
    bce = F.binary_cross_entropy_with_logits(out[:, n_counts:], y[:, n_counts:], reduction="none").mean(1)
    w = event_weights(g)
    return 0.5 * (_weighted_mean(mse, w) + _weighted_mean(bce, w))


LOSSES = {"multiclass": multiclass_loss, "multilabel": multilabel_loss}


def loss_fn(mode: str):
    """The loss for ``mode`` = "multiclass" or "multilabel"."""
    try:
        return LOSSES[mode]
    except KeyError:
        raise ValueError(f"unknown training mode {mode!r}; choose one of {sorted(LOSSES)}") from None
