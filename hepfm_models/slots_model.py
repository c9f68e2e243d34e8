"""The slot Transformer of Kishimoto et al. (SPEC §7.3) on a :class:`~hepfm_data.batches.slots.SlotBatch`::

    h = LayerNorm(Linear(x))               [B, S, width]   linear embedding of the 11 slot features
    h = TransformerEncoder(h, pad = ~mask)  n_layers pre-norm blocks, n_heads heads; empty slots masked
    u = mean of h over filled slots         [B, width]
    z = MLP_dec(u)                          [B, width]      the latent (``embed``, CKA)
    logits = head(z)                        [B, n_out]      final Linear

It has the ``head`` / ``decoder`` / ``config.n_out`` of :class:`~hepfm_models.model.GraphNet`, so
``replace_head``, ``parameter_groups``, ``freeze``, checkpoints and the training engine serve both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from hepfm_data.batches.slots import N_SLOT_FEATURES, SlotBatch

from .model import MLP, config_from_dict

#: log(1 + E/GeV) of a typical object (~90 GeV): centred like the graph network's inputs
LOG_E_CENTER = 4.5


@dataclass(frozen=True)
class SlotConfig:
    """Slot Transformer hyper-parameters; saved as JSON beside every checkpoint (``kind`` = "slots")."""

    n_out: int = 6  # the object-replacement classes (hepfm_data.batches.slots.PRETEXT_CLASSES)
    n_features: int = N_SLOT_FEATURES
    width: int = 64
    n_layers: int = 3
    n_heads: int = 4
    ff_width: int = 128
    dropout: float = 0.0
    decoder_depth: int = 2

    kind = "slots"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SlotConfig:
        return config_from_dict(cls, d)

    def build(self) -> SlotTransformer:
        return SlotTransformer(self)


class SlotTransformer(nn.Module):
    """``forward(batch) -> [B, n_out]`` logits; ``embed(batch) -> [B, width]``."""

    def __init__(self, config: SlotConfig | None = None, **overrides):
        super().__init__()
        config = dataclasses.replace(config or SlotConfig(), **overrides)
        if config.width % config.n_heads:
            raise ValueError(f"SlotConfig: width {config.width} is not a multiple of n_heads {config.n_heads}")
        self.config = config
        w = config.width
        self.embedding = nn.Sequential(nn.Linear(config.n_features, w), nn.LayerNorm(w))
        layer = nn.TransformerEncoderLayer(w, config.n_heads, config.ff_width, config.dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.n_layers, norm=nn.LayerNorm(w),
                                             enable_nested_tensor=False)
        self.decoder = MLP((w,), w, config.decoder_depth)
        self.head = nn.Linear(w, config.n_out)

    def embed(self, batch: SlotBatch) -> torch.Tensor:
        x, mask = batch.x, batch.mask
        x = torch.cat([(x[..., :1] - LOG_E_CENTER) * mask[..., None].to(x.dtype), x[..., 1:]], -1)
        h = self.encoder(self.embedding(x), src_key_padding_mask=~mask)
        m = mask.to(h.dtype)[..., None]
        u = (h * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self.decoder((u, None))

    def forward(self, batch: SlotBatch) -> torch.Tensor:
        return self.head(self.embed(batch))
