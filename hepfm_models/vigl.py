"""Vigl, Hartman, Heinrich (arXiv:2401.13536; SPEC §7.1): a jet backbone inside an event-level classifier.

The study keeps two networks apart, and so does this file:

* :class:`JetBackbone` embeds *one large-R jet* from its constituents (the 15 features of
  :data:`~hepfm_data.batches.pointcloud.CONSTITUENT_FEATURES`): a compact Particle-Transformer-style encoder
  (Qu, Li, Qian 2022; the study's backbone is ParT). Each constituent is a token; every attention layer adds a
  learned bias per head computed from the *pairwise features* of ParT — ln ΔR, ln kT, ln z, ln m² of each
  pair of constituents — so the network sees the pairwise kinematics (the two-prong H -> bb̄ structure)
  directly. Tokens: pre-LayerNorm multi-head attention + feed-forward, ``layers`` times; the jet embedding is
  the masked mean of the tokens, projected to ``n_out``.
* :class:`DeepSetsHead` classifies an *event* from its (up to 5) embedded jets: per jet, embedding ⊕ jet
  kinematics (ln pT, η, cos/sin Δφ to the leading jet, ln(1 + m), ln(1 + m_SD), N2) -> φ MLP -> masked sum
  over the jets -> ρ MLP -> one logit. Permutation invariant; a missing jet contributes nothing.
* :class:`EventClassifier` = backbone + head on ``event_jets`` batches ([B, 5, 100, 15] + masks);
  ``freeze_backbone`` keeps the backbone fixed (no gradient; the recipe then embeds the jets once).
* :class:`JetTagger` = backbone + one Linear layer on ``jet_constituents`` batches ([B, 100, 15]): the
  backbone's pretraining task (H -> bb̄ vs QCD jets by truth matching).

Why this backbone rather than the project's EdgeConv (:mod:`hepfm_models.rs3l`): the study's backbone is a
Particle Transformer, whose distinctive input is the pairwise interaction features — an EdgeConv has no such
bias and recomputes a k-nearest-neighbour graph per jet. On a 2-core CPU the cost decides: attention over the
``max_constituents`` leading constituents (32 by default; the emulated large-R jets hold ~50-60 constituents,
and the leading 32 carry almost all of the jet's pT) with 2 layers of width 32 trains at a few hundred
events (of up to 5 jets) per second on one core, fast enough for the study's grid (recipes/vigl.py). Smaller
than ParT (8 particle-attention + 2 class-attention layers of width 128, 128 constituents) by design.

Masks: a jet whose ``jet_mask`` is False is neither embedded nor pooled (its points can hold anything);
constituents whose ``mask`` is False are never attended to nor averaged. Only the batch types of
:mod:`hepfm_data.batches.pointcloud` are imported from the data layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hepfm_data.batches.pointcloud import CONSTITUENT_FEATURES, JET_FEATURES, PointCloudBatch

__all__ = ["JetBackboneConfig", "JetBackbone", "DeepSetsHead", "EventClassifier", "JetTagger", "pair_features",
           "jet_inputs", "N_JET_INPUTS"]

_LOG_PT, _DETA, _DPHI = (CONSTITUENT_FEATURES.index(k) for k in ("log_pt", "deta", "dphi"))
_PT, _ETA, _PHI, _MASS, _SD, _N2 = (JET_FEATURES.index(k) for k in ("pt", "eta", "phi", "mass", "sd_mass", "n2"))
#: per-jet kinematic inputs of the head (:func:`jet_inputs`)
N_JET_INPUTS = 7
_EPS = 1e-8


@dataclass
class JetBackboneConfig:
    """Sizes of :class:`JetBackbone`."""

    dim: int = 32  # token width
    heads: int = 4
    layers: int = 2
    ffn: int = 64  # feed-forward hidden width
    pair_hidden: int = 16  # hidden width of the pairwise-feature MLP (4 -> pair_hidden -> heads)
    max_constituents: int = 32  # the leading constituents (pT-ordered) a jet is read from
    n_out: int = 32  # jet embedding size


def pair_features(points: torch.Tensor) -> torch.Tensor:
    """ParT's pairwise features of constituents ``points`` [N, P, 15] -> [N, P, P, 4]: ln ΔR, ln kT, ln z, ln m²
    with ΔR = sqrt(Δη² + Δφ²) (Δφ wrapped), kT = min(pT_a, pT_b) ΔR, z = min(pT_a, pT_b) / (pT_a + pT_b),
    m² = 2 pT_a pT_b (cosh Δη - cos Δφ) (massless constituents). η, φ relative to the jet axis, as stored."""
    pt = torch.exp(points[..., _LOG_PT])
    eta, phi = points[..., _DETA], points[..., _DPHI]
    deta = eta[:, :, None] - eta[:, None, :]
    dphi = torch.remainder(phi[:, :, None] - phi[:, None, :] + torch.pi, 2 * torch.pi) - torch.pi
    dr = torch.sqrt(deta**2 + dphi**2 + _EPS)
    pa, pb = pt[:, :, None], pt[:, None, :]
    ptmin = torch.minimum(pa, pb)
    m2 = 2 * pa * pb * (torch.cosh(deta) - torch.cos(dphi))
    return torch.stack([torch.log(dr), torch.log(ptmin * dr + _EPS), torch.log(ptmin / (pa + pb + _EPS) + _EPS),
                        torch.log(m2.clamp_min(0) + _EPS)], dim=-1)


class _Block(nn.Module):
    """Pre-LayerNorm multi-head self-attention with an additive per-head bias, then a feed-forward layer."""

    def __init__(self, c: JetBackboneConfig):
        super().__init__()
        self.heads = c.heads
        self.norm1, self.norm2 = nn.LayerNorm(c.dim), nn.LayerNorm(c.dim)
        self.qkv = nn.Linear(c.dim, 3 * c.dim)
        self.proj = nn.Linear(c.dim, c.dim)
        self.ffn = nn.Sequential(nn.Linear(c.dim, c.ffn), nn.GELU(), nn.Linear(c.ffn, c.dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        n, p, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, p, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # bias: [N, heads, P, P]
        x = x + self.proj(att.transpose(1, 2).reshape(n, p, d))
        return x + self.ffn(self.norm2(x))


class JetBackbone(nn.Module):
    """Constituents of jets -> jet embeddings [N, n_out] (the module docstring)."""

    def __init__(self, config: JetBackboneConfig | None = None):
        super().__init__()
        self.config = c = config or JetBackboneConfig()
        if c.dim % c.heads:
            raise ValueError(f"JetBackbone: dim {c.dim} must be a multiple of heads {c.heads}")
        n_in = len(CONSTITUENT_FEATURES)
        self.embed = nn.Sequential(nn.LayerNorm(n_in), nn.Linear(n_in, c.dim), nn.GELU(), nn.Linear(c.dim, c.dim))
        self.pair = nn.Sequential(nn.Linear(4, c.pair_hidden), nn.GELU(), nn.Linear(c.pair_hidden, c.heads * c.layers))
        self.blocks = nn.ModuleList(_Block(c) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.dim)
        self.out = nn.Linear(c.dim, c.n_out)

    def forward_jets(self, points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``points`` [N, P, 15] (pT-ordered, padded), ``mask`` [N, P] -> [N, n_out]; only the first
        ``max_constituents`` are read. A jet without any real constituent embeds as zeros."""
        c = self.config
        points, mask = points[:, : c.max_constituents], mask[:, : c.max_constituents]
        n, p = mask.shape
        if n == 0:
            return points.new_zeros(0, c.n_out)
        has = mask.any(1)
        mask = mask | ~has[:, None]  # an empty jet attends to its (zero) padding rather than to nothing
        points = torch.where(mask[..., None], points, torch.zeros((), dtype=points.dtype, device=points.device))
        x = self.embed(points)
        u = self.pair(pair_features(points)).permute(0, 3, 1, 2)  # [N, heads * layers, P, P]
        keep = (mask[:, None, :, None] & mask[:, None, None, :])  # pairs of real constituents
        u = u.masked_fill(~mask[:, None, None, :], float("-inf")).masked_fill(~keep & mask[:, None, None, :], 0.0)
        for i, blk in enumerate(self.blocks):
            x = blk(x, u[:, i * c.heads:(i + 1) * c.heads])
        w = mask.to(x.dtype)[..., None]
        pooled = (self.norm(x) * w).sum(1) / w.sum(1).clamp_min(1.0)
        return self.out(pooled) * has[:, None].to(x.dtype)

    def forward(self, batch: PointCloudBatch) -> torch.Tensor:
        """A ``jet_constituents`` batch ([B, P, 15]) -> [B, n_out]."""
        if batch.points.dim() != 3:
            raise ValueError(f"JetBackbone: expected jet_constituents points [B, P, 15], got "
                             f"{tuple(batch.points.shape)} (event_jets batches go through EventClassifier)")
        return self.forward_jets(batch.points, batch.mask)


def jet_inputs(jets: torch.Tensor, jet_mask: torch.Tensor) -> torch.Tensor:
    """Head inputs [B, J, 7] of jets [B, J, 6] (:data:`JET_FEATURES`): ln pT, η, cos Δφ, sin Δφ (to the
    highest-pT real jet of the event: rotation and permutation invariant), ln(1 + m), ln(1 + m_SD), N2;
    zeros for missing jets."""
    pt = jets[..., _PT].clamp_min(1e-3)
    lead = torch.where(jet_mask, pt, torch.zeros_like(pt)).argmax(1)
    phi0 = jets[..., _PHI].gather(1, lead[:, None])
    dphi = jets[..., _PHI] - phi0
    x = torch.stack([torch.log(pt), jets[..., _ETA], torch.cos(dphi), torch.sin(dphi),
                     torch.log1p(jets[..., _MASS].clamp_min(0)), torch.log1p(jets[..., _SD].clamp_min(0)),
                     jets[..., _N2]], dim=-1)
    return torch.where(jet_mask[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))


def _mlp(n_in: int, width: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, n_out))


class DeepSetsHead(nn.Module):
    """Embedded jets [B, J, n_emb] + kinematics -> one logit per event: ρ(Σ_real jets φ(emb ⊕ kin))."""

    def __init__(self, n_emb: int, width: int = 64):
        super().__init__()
        self.n_emb = n_emb
        self.phi = _mlp(n_emb + N_JET_INPUTS, width, width)
        self.rho = _mlp(width, width, 1)

    def forward(self, emb: torch.Tensor, jets: torch.Tensor, jet_mask: torch.Tensor) -> torch.Tensor:
        h = self.phi(torch.cat([emb, jet_inputs(jets, jet_mask)], dim=-1))
        pooled = (h * jet_mask[..., None].to(h.dtype)).sum(1)
        return self.rho(pooled).squeeze(-1)


class EventClassifier(nn.Module):
    """Backbone + Deep Sets head on ``event_jets`` batches -> [B] logits; ``freeze_backbone``: the
    backbone gets no gradient and stays in eval mode."""

    def __init__(self, backbone: JetBackbone, head: DeepSetsHead | None = None, freeze_backbone: bool = False):
        super().__init__()
        self.backbone = backbone
        self.head = head or DeepSetsHead(backbone.config.n_out)
        if self.head.n_emb != backbone.config.n_out:
            raise ValueError(f"EventClassifier: head takes {self.head.n_emb}-d jet embeddings, the backbone gives "
                             f"{backbone.config.n_out}")
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            for p in self.backbone.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> EventClassifier:
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def embed(self, points: torch.Tensor, mask: torch.Tensor, jet_mask: torch.Tensor) -> torch.Tensor:
        """[B, J, n_out] embeddings of the real jets of ``points`` [B, J, P, F] (zeros for missing jets)."""
        b, j = jet_mask.shape
        out = points.new_zeros(b, j, self.backbone.config.n_out)
        if self.freeze_backbone:
            with torch.no_grad():
                out[jet_mask] = self.backbone.forward_jets(points[jet_mask], mask[jet_mask])
        else:
            out = out.index_put((jet_mask,), self.backbone.forward_jets(points[jet_mask], mask[jet_mask]))
        return out

    def forward(self, batch: PointCloudBatch, embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """``batch``: an ``event_jets`` PointCloudBatch ([B, J, P, 15], ``mask``, ``jets``, ``jet_mask``);
        ``embeddings`` [B, J, n_out]: precomputed jet embeddings (a frozen backbone), else computed here."""
        if batch.points.dim() != 4 or batch.jet_mask is None:
            raise ValueError(f"EventClassifier: expected an event_jets batch (points [B, J, P, 15] with jet_mask), "
                             f"got points {tuple(batch.points.shape)}")
        emb = self.embed(batch.points, batch.mask, batch.jet_mask) if embeddings is None else embeddings
        return self.head(emb, batch.jets, batch.jet_mask)


class JetTagger(nn.Module):
    """Backbone + one Linear layer -> [B] logits on ``jet_constituents`` batches (the pretraining task)."""

    def __init__(self, backbone: JetBackbone):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.n_out, 1)

    def forward(self, batch: PointCloudBatch) -> torch.Tensor:
        return self.head(self.backbone(batch)).squeeze(-1)
