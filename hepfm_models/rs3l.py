"""RS3L (Harris et al., arXiv:2403.07066; SPEC §7.2): contrastive pretraining on re-simulated views.

* :func:`nt_xent` — the SimCLR NT-Xent loss (cosine similarity, temperature 0.1 by default; every
  other event of the 2B nominal + view embeddings is a negative, the positive stays in the
  denominator).
* :class:`EdgeConvBackbone` — the compact backbone of the paper: MLP embedding of each node, one
  EdgeConv block (``k`` nearest neighbours in (η, φ), message MLP on ``[h_i, h_j - h_i]``, mean over
  neighbours, residual) applied ``n_iter`` = 3 times with shared weights, MLP to an 8-d output,
  sum pooling per event. It runs on packed point sets (``nodes`` + ``n_node``: the paper graph's
  nodes now, jet constituents later); the kNN is per event, vectorised (padded [B, n_max, n_max]).
* :class:`LinearProbe` — downstream: one Linear layer to a logit on the (fixed or floating) backbone.

On jet constituents (:class:`~hepfm_data.batches.pointcloud.PointCloudBatch`, ``jet_constituents``),
:func:`pack_points` turns the padded points + mask into packed nodes + counts and
:meth:`EdgeConvBackbone.for_constituents` takes the 15 RS3L features as they are, with the kNN in
their (Δη, Δφ) columns.

Only the batch types (:mod:`hepfm_data.batches.graph`, :mod:`hepfm_data.batches.pointcloud`) are imported from the data layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from hepfm_data.batches.graph import ETA, PHI, GraphBatch
from hepfm_data.batches.pointcloud import CONSTITUENT_FEATURES, PointCloudBatch

from .model import node_inputs


def nt_xent(z_nominal: torch.Tensor, z_view: torch.Tensor, temperature: float = 0.1,
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """NT-Xent over B positive pairs (``z_nominal[i]``, ``z_view[i]``), each [B, d] -> scalar.

    With z = normalised [z_nominal; z_view] (2B rows) and s = z z^T / temperature:
    loss = mean_a -log(exp(s[a, p(a)]) / sum_{k != a} exp(s[a, k])), p(a) the partner of a.
    ``mask`` [B] bool drops padding pairs (as anchors and as negatives).
    """
    if z_nominal.shape != z_view.shape:
        raise ValueError(f"nt_xent: nominal {tuple(z_nominal.shape)} and view {tuple(z_view.shape)} differ")
    if mask is not None:
        z_nominal, z_view = z_nominal[mask], z_view[mask]
    b = z_nominal.shape[0]
    z = nn.functional.normalize(torch.cat([z_nominal, z_view], dim=0), dim=1)
    s = (z @ z.t()) / temperature
    s = s.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return nn.functional.cross_entropy(s, partner)


def knn_indices(coords: torch.Tensor, n_node: torch.Tensor, k: int, wrap_dim: int | None = 1
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest neighbours (self excluded) within each event of a packed point set.

    ``coords`` [N, c] (e.g. η, φ); ``n_node`` [B]; ``wrap_dim``: the coordinate whose differences
    wrap at ±π (φ). Returns (``neighbours`` [N, k'] global node indices, ``valid`` [N, k'] bool), with
    k' = min(k, n_max - 1); in events with fewer than k' + 1 nodes the missing neighbours are marked
    invalid (and point at the node itself).
    """
    device = coords.device
    n = coords.shape[0]
    b = n_node.shape[0]
    n_max = int(n_node.max()) if b else 0
    kk = max(0, min(k, n_max - 1))
    if n == 0 or kk == 0:
        return torch.zeros(n, 0, dtype=torch.long, device=device), torch.zeros(n, 0, dtype=torch.bool, device=device)
    start = torch.cumsum(n_node, 0) - n_node
    graph = torch.repeat_interleave(torch.arange(b, device=device), n_node)
    local = torch.arange(n, device=device) - start[graph]
    pad = coords.new_zeros(b, n_max, coords.shape[1])
    pad[graph, local] = coords
    real = torch.zeros(b, n_max, dtype=torch.bool, device=device)
    real[graph, local] = True
    diff = pad[:, :, None, :] - pad[:, None, :, :]
    if wrap_dim is not None:
        d = diff[..., wrap_dim]
        diff = diff.clone()
        diff[..., wrap_dim] = torch.remainder(d + torch.pi, 2 * torch.pi) - torch.pi
    dist = (diff ** 2).sum(-1)
    bad = ~(real[:, :, None] & real[:, None, :]) | torch.eye(n_max, dtype=torch.bool, device=device)[None]
    dist = dist.masked_fill(bad, float("inf"))
    dist_k, idx = torch.topk(dist[graph, local], kk, dim=1, largest=False)  # [N, kk] local indices
    valid = torch.isfinite(dist_k)
    self_index = torch.arange(n, device=device)[:, None]
    return torch.where(valid, start[graph][:, None] + idx, self_index), valid


#: columns of (Δη, Δφ) to the jet axis among the 15 constituent features (the kNN coordinates)
DETA_DPHI = (CONSTITUENT_FEATURES.index("deta"), CONSTITUENT_FEATURES.index("dphi"))


def pack_points(points: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded point clouds ``points`` [B, P, F] with ``mask`` [B, P] (True: real) -> (``nodes`` [N, F],
    ``n_node`` [B]): the real points of each cloud in their order, clouds in batch order."""
    if points.dim() != 3 or mask.shape != points.shape[:2]:
        raise ValueError(f"pack_points: points {tuple(points.shape)} must be [B, P, F] with mask [B, P], "
                         f"got mask {tuple(mask.shape)} (event_jets batches: one cloud per jet, flatten B x J first)")
    return points[mask], mask.sum(1)


@dataclass
class BackboneConfig:
    """Widths of :class:`EdgeConvBackbone`; ``k`` = 24 and ``n_iter`` = 3 as in the paper."""

    n_types: int = 5
    width: int = 64
    k: int = 24
    n_iter: int = 3
    n_out: int = 8


def _mlp(n_in: int, width: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, n_out))


class EdgeConvBackbone(nn.Module):
    """Packed point sets -> [B, n_out] event embeddings (module docstring).

    ``inputs``: ``fn(nodes [N, F]) -> [N, F']`` turning raw node features into network inputs
    (default: the paper graph's normalisation, ``hepfm_models.model.node_inputs``); ``coords``:
    the node-feature columns of (η, φ) for the kNN.
    """

    def __init__(self, config: BackboneConfig | None = None, *, n_in: int | None = None,
                 inputs: Callable[[torch.Tensor], torch.Tensor] | None = None, coords: tuple[int, int] = (ETA, PHI)):
        super().__init__()
        self.config = c = config or BackboneConfig()
        self.inputs = inputs or (lambda x: node_inputs(x, c.n_types))
        self.coords = coords
        n_in = n_in if n_in is not None else 7 + c.n_types
        self.embed = _mlp(n_in, c.width, c.width)
        self.edge = _mlp(2 * c.width, c.width, c.width)  # one EdgeConv block, shared over iterations
        self.norm = nn.LayerNorm(c.width)
        self.out = _mlp(c.width, c.width, c.n_out)

    @classmethod
    def for_constituents(cls, config: BackboneConfig | None = None) -> EdgeConvBackbone:
        """The backbone on ``jet_constituents``: the 15 RS3L features as inputs (not normalised, as in the
        paper), kNN in (Δη, Δφ)."""
        return cls(config, n_in=len(CONSTITUENT_FEATURES), inputs=nn.Identity(), coords=DETA_DPHI)

    def forward_points(self, nodes: torch.Tensor, n_node: torch.Tensor) -> torch.Tensor:
        """``nodes`` [N, F] raw features, ``n_node`` [B] -> [B, n_out]."""
        h = self.embed(self.inputs(nodes))
        nbr, valid = knn_indices(nodes[:, list(self.coords)], n_node, self.config.k)
        w = valid.to(h.dtype)
        denom = w.sum(1, keepdim=True).clamp_min(1.0)
        # the edge MLP's first layer on [h_i, h_j - h_i] is (W_a - W_b) h_i + W_b h_j + bias: two per-node
        # products and a gather instead of a product per edge (the same function and weights, k times fewer flops)
        first, rest = self.edge[0], self.edge[1:]
        w_a, w_b = first.weight[:, : h.shape[1]], first.weight[:, h.shape[1]:]
        for _ in range(self.config.n_iter):
            pre = nn.functional.linear(h, w_a - w_b, first.bias)[:, None, :] + nn.functional.linear(h, w_b)[nbr]
            msg = rest(pre)
            h = self.norm(h + (msg * w[..., None]).sum(1) / denom)
        per_node = self.out(h)
        graph = torch.repeat_interleave(torch.arange(n_node.shape[0], device=nodes.device), n_node)
        return per_node.new_zeros(n_node.shape[0], per_node.shape[1]).index_add_(0, graph, per_node)

    def forward(self, g: GraphBatch | PointCloudBatch) -> torch.Tensor:
        """A GraphBatch (edges unused; B events) or a ``jet_constituents`` PointCloudBatch (B jets) -> [B, n_out]."""
        if isinstance(g, PointCloudBatch):
            return self.forward_points(*pack_points(g.points, g.mask))
        return self.forward_points(g.nodes, g.n_node)


class LinearProbe(nn.Module):
    """Backbone + one Linear layer -> [B] logits; ``fixed=True`` freezes the backbone (no gradient)."""

    def __init__(self, backbone: EdgeConvBackbone, fixed: bool = False):
        super().__init__()
        self.backbone, self.fixed = backbone, fixed
        self.head = nn.Linear(backbone.config.n_out, 1)
        if fixed:
            for p in self.backbone.parameters():
                p.requires_grad_(False)

    def forward(self, g: GraphBatch | PointCloudBatch) -> torch.Tensor:
        if self.fixed:
            with torch.no_grad():
                z = self.backbone(g)
        else:
            z = self.backbone(g)
        return self.head(z).squeeze(-1)
