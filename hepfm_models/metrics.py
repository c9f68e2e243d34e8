"""Classification metrics (SPEC §6): accuracy at threshold 0.5 and ROC AUC; the weighted ROC, background
rejection at a signal efficiency, the maximum significance improvement (SIC) and data efficiency of the
Vigl et al. study (SPEC §7.1).

Own implementations (no scikit-learn). All take torch tensors on any device and
return Python floats; optional per-event ``weights`` [B].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def binary_scores(logits: torch.Tensor) -> torch.Tensor:
    """[B] signal probability from binary-classifier logits: [B, 2] (softmax) or [B] / [B, 1] (sigmoid)."""
    logits = logits.float()
    if logits.ndim == 2 and logits.shape[1] == 2:
        return torch.softmax(logits, dim=1)[:, 1]
    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if logits.ndim != 1:
        raise ValueError(f"binary_scores: expected [B], [B, 1] or [B, 2] logits, got {tuple(logits.shape)}")
    return torch.sigmoid(logits)


def _w(weights: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(like, dtype=torch.float64) if weights is None else weights.to(like.device, torch.float64)


def accuracy(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> float:
    """Weighted accuracy. Binary ([B, 2] or [B] logits): predict 1 where p(signal) >= 0.5.
    Multiclass ([B, C], C > 2): argmax."""
    labels = labels.long()
    if logits.ndim == 2 and logits.shape[1] > 2:
        pred = logits.argmax(1)
    else:
        pred = (binary_scores(logits) >= 0.5).long()
    w = _w(weights, labels)
    total = w.sum()
    if total <= 0:
        raise ValueError("accuracy: no events with positive weight")
    return float((w * (pred == labels)).sum() / total)


def roc_auc(scores: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> float:
    """Area under the ROC curve = P(score_signal > score_background) + 0.5 P(tie), weighted.

    ``scores`` [B] (higher = more signal-like), ``labels`` [B] in {0, 1}. O(B log B):
    sort, group ties, and count for each group the background weight below it.
    """
    scores, labels = scores.detach().double().flatten(), labels.detach().flatten().long()
    w = _w(weights, scores).flatten()
    if scores.shape != labels.shape or scores.shape != w.shape:
        raise ValueError(f"roc_auc: shapes differ: scores {tuple(scores.shape)}, labels {tuple(labels.shape)}")
    pos_w, neg_w = w * (labels == 1), w * (labels == 0)
    w_pos, w_neg = pos_w.sum(), neg_w.sum()
    if w_pos <= 0 or w_neg <= 0:
        raise ValueError("roc_auc: needs events of both classes with positive weight")
    order = torch.argsort(scores)
    s, pw, nw = scores[order], pos_w[order], neg_w[order]
    _, group = torch.unique_consecutive(s, return_inverse=True)
    n_groups = int(group.max()) + 1
    pos_g = torch.zeros(n_groups, dtype=torch.float64, device=s.device).index_add_(0, group, pw)
    neg_g = torch.zeros(n_groups, dtype=torch.float64, device=s.device).index_add_(0, group, nw)
    neg_below = torch.cumsum(neg_g, 0) - neg_g
    return float((pos_g * (neg_below + 0.5 * neg_g)).sum() / (w_pos * w_neg))


def roc_curve(scores: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None):
    """(signal efficiency [K], background efficiency [K]) for thresholds at each distinct score, descending."""
    scores, labels = scores.detach().double().flatten(), labels.detach().flatten().long()
    w = _w(weights, scores).flatten()
    order = torch.argsort(scores, descending=True)
    s, lab, w = scores[order], labels[order], w[order]
    _, group = torch.unique_consecutive(s, return_inverse=True)
    n_groups = int(group.max()) + 1
    tp = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, group.cpu(), (w * (lab == 1)).cpu()).cumsum(0)
    fp = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, group.cpu(), (w * (lab == 0)).cpu()).cumsum(0)
    return tp / tp[-1], fp / fp[-1]


def background_rejection(scores: torch.Tensor, labels: torch.Tensor, signal_efficiency: float = 0.5,
                         weights: torch.Tensor | None = None) -> float:
    """1 / background efficiency at the first threshold reaching ``signal_efficiency`` (inf if 0); what it
    rests on: :func:`rejection_statistics`."""
    eff_s, eff_b = roc_curve(scores, labels, weights)
    eb = float(eff_b[_threshold(eff_s, signal_efficiency)])
    return float("inf") if eb == 0 else 1.0 / eb


def _threshold(eff_s: torch.Tensor, signal_efficiency: float) -> int:
    """Index of the first threshold of :func:`roc_curve` whose signal efficiency reaches ``signal_efficiency``."""
    k = int(torch.searchsorted(eff_s, torch.tensor([signal_efficiency], dtype=torch.float64)))
    return min(k, len(eff_s) - 1)


def _background_passing(scores: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None, n_thresholds: int
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σw, Σw²) of the background events passing each threshold of :func:`roc_curve` ([K] each)."""
    scores, labels = scores.detach().double().flatten().cpu(), labels.detach().flatten().long().cpu()
    w = _w(weights, scores).flatten().cpu()
    order = torch.argsort(scores, descending=True)
    _, group = torch.unique_consecutive(scores[order], return_inverse=True)
    bkg = (labels[order] == 0).double() * w[order]
    sum_w = torch.zeros(n_thresholds, dtype=torch.float64).index_add_(0, group, bkg).cumsum(0)
    sum_w2 = torch.zeros(n_thresholds, dtype=torch.float64).index_add_(0, group, bkg**2).cumsum(0)
    return sum_w, sum_w2


def _n_eff(sum_w: torch.Tensor, sum_w2: torch.Tensor) -> torch.Tensor:
    return torch.where(sum_w2 > 0, sum_w**2 / sum_w2.clamp_min(1e-300), torch.zeros_like(sum_w))


def rejection_statistics(scores: torch.Tensor, labels: torch.Tensor, signal_efficiency: float = 0.5,
                         weights: torch.Tensor | None = None) -> dict[str, float]:
    """:func:`background_rejection` with what it rests on, at the first threshold reaching ``signal_efficiency``:
    ``rejection`` (1/ε_B, inf if no background passes), ``n_eff`` = (Σw)²/Σw² of the background events that
    pass (their count for unit weights; the relative error of ε_B is 1/√n_eff), and ``lower_limit``: the
    rejection that ~3 passing events of the largest background weight would give (ε_B < 3 w_max / Σw at
    ~95 % CL when none passes): a rejection above it is not measured by this test sample."""
    eff_s, eff_b = roc_curve(scores, labels, weights)
    k = _threshold(eff_s, signal_efficiency)
    sum_w, sum_w2 = _background_passing(scores, labels, weights, len(eff_s))
    w = _w(weights, scores).detach().double().flatten().cpu()
    w_bkg = w[labels.detach().flatten().cpu() == 0]
    eb = float(eff_b[k])
    return {"rejection": math.inf if eb == 0 else 1.0 / eb, "n_eff": float(_n_eff(sum_w, sum_w2)[k]),
            "lower_limit": float(w_bkg.sum() / (3.0 * w_bkg.max()))}


def max_sic(scores: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None,
            min_background: float = 1.0) -> float:
    """The largest significance improvement SIC = ε_S / sqrt(ε_B) over the thresholds of :func:`roc_curve`
    (weighted efficiencies), among thresholds that keep an effective number of background events
    (Σw)² / Σw² of at least ``min_background`` (the count of events for unit weights): with weighted
    background, a few events of tiny weight would otherwise give ε_B ~ 0 and a SIC that is noise. 0 when no
    threshold qualifies."""
    eff_s, eff_b = roc_curve(scores, labels, weights)
    n_eff = _n_eff(*_background_passing(scores, labels, weights, len(eff_s)))
    ok = (n_eff >= min_background - 1e-9) & (eff_b > 0)
    if not bool(ok.any()):
        return 0.0
    return float((eff_s[ok] / torch.sqrt(eff_b[ok])).max())


def data_efficiency(sizes: Sequence[float], curve: Sequence[float], target: float) -> float:
    """The training size at which a performance ``curve`` (one value per size of increasing ``sizes``; higher is
    better) first reaches ``target``, interpolating linearly in the log of the size between the two sizes that
    bracket it. ``sizes[0]`` when the smallest size already reaches it (an upper bound), ``inf`` when no size
    does (e.g. a strategy that never reaches the from-scratch model's performance at the largest size)."""
    sizes, curve = [float(n) for n in sizes], [float(c) for c in curve]
    if len(sizes) != len(curve) or not sizes:
        raise ValueError(f"data_efficiency: {len(sizes)} sizes and {len(curve)} values")
    if any(b <= a for a, b in zip(sizes, sizes[1:])) or sizes[0] <= 0:
        raise ValueError(f"data_efficiency: sizes must be positive and increasing, got {sizes}")
    if curve[0] >= target:
        return sizes[0]
    for (n0, c0), (n1, c1) in zip(zip(sizes, curve), zip(sizes[1:], curve[1:])):
        if c0 < target <= c1:
            t = (target - c0) / (c1 - c0)
            return float(math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0))))
    return math.inf


def wasserstein_1d(a: torch.Tensor, b: torch.Tensor, weights_a: torch.Tensor | None = None,
                   weights_b: torch.Tensor | None = None) -> float:
    """1-D Wasserstein (earth mover's) distance between two samples of classifier outputs
    (``scipy.stats.wasserstein_distance``); the RS3L robustness metric: nominal vs one view type."""
    from scipy.stats import wasserstein_distance

    def np_(x):
        return None if x is None else x.detach().double().cpu().numpy()

    return float(wasserstein_distance(np_(a), np_(b), np_(weights_a), np_(weights_b)))
