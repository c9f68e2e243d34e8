"""Linear centered kernel alignment (Kornblith et al. 2019), SPEC §6.

``linear_cka(X, Y)`` compares two representations of the same ``n`` events
(``X`` [n, p], ``Y`` [n, q], e.g. the 64-d latents after the decoder):

    CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F),   Xc = X - mean(X, 0)

It is 1 for identical representations and invariant to orthogonal transforms
and isotropic scaling (not to arbitrary linear maps). Computed in float64.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import torch


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA in [0, 1] between ``x`` [n, p] and ``y`` [n, q] (rows = the same events)."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"linear_cka: need [n, p] and [n, q] with the same n, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] < 2:
        raise ValueError("linear_cka: needs at least 2 events")
    x = x.detach().double()
    y = y.detach().double().to(x.device)
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    cross = torch.linalg.matrix_norm(y.t() @ x) ** 2
    norm = torch.linalg.matrix_norm(x.t() @ x) * torch.linalg.matrix_norm(y.t() @ y)
    if norm == 0:
        raise ValueError("linear_cka: a representation is constant over the events")
    return float(cross / norm)


def ensemble_cka(reps_a: Sequence[torch.Tensor], reps_b: Sequence[torch.Tensor] | None = None) -> tuple[float, float]:
    """(mean, std) of linear CKA over model pairs (SPEC §6).

    With one ensemble: all unordered pairs ``i < j`` within ``reps_a``. With two:
    all pairs ``(a_i, b_j)``. Every tensor holds the same events in the same order.
    std is the population standard deviation over the pairs (0 for one pair).
    """
    pairs = (list(itertools.combinations(reps_a, 2)) if reps_b is None
             else list(itertools.product(reps_a, reps_b)))
    if not pairs:
        raise ValueError("ensemble_cka: needs at least two models (or one model in each ensemble)")
    values = [linear_cka(a, b) for a, b in pairs]
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def layerwise_cka(reps_a: Sequence[Mapping[str, torch.Tensor]],
                  reps_b: Sequence[Mapping[str, torch.Tensor]] | None = None) -> dict[str, tuple[float, float]]:
    """Ensemble CKA per layer (SPEC §7.4): ``{layer: (mean, std)}`` over model pairs.

    Each element of ``reps_a`` (``reps_b``) is one model's ``{layer: [n_layer, p]}`` (e.g.
    :meth:`hepfm_models.GraphNet.stages` over the same events); the pairs are those of
    :func:`ensemble_cka` (within ``reps_a``, or ``reps_a`` x ``reps_b``). Layers missing from any
    model are left out; the order is that of the first model.
    """
    models = list(reps_a) + list(reps_b or [])
    if not models:
        raise ValueError("layerwise_cka: no models")
    layers = [k for k in models[0] if all(k in m for m in models)]
    return {k: ensemble_cka([m[k] for m in reps_a], None if reps_b is None else [m[k] for m in reps_b])
            for k in layers}
