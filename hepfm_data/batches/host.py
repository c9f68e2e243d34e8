"""Host-side batches: what DataLoader workers hand to the main process when the
graph is built on an accelerator (edges are then computed there, not in the worker)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hepfm_data.batches.base import TensorBatch, batch_type
from hepfm_data.batches.graph import GraphBatch
from hepfm_data.core.arrays import counts_to_offsets

__all__ = ["HostBatch", "ViewPairs", "gather_events"]


@batch_type("host")
@dataclass
class HostBatch(TensorBatch):
    """Packed nodes of ``B`` events on the host, no edges yet.

    ``nodes`` [N, 7] float32, ``n_node`` [B] int64, ``labels`` [B] int64, ``weights`` [B]
    float32, ``multilabels`` [B, 38] uint8 or None, ``event_id`` [B] int64.
    """

    nodes: torch.Tensor
    n_node: torch.Tensor
    labels: torch.Tensor
    weights: torch.Tensor
    event_id: torch.Tensor
    multilabels: torch.Tensor | None = None

    def to_graph(self, device: torch.device | str, pad_shape: tuple[int, int, int] | None = None,
                 edge_backend: str = "auto") -> GraphBatch:
        """The :class:`GraphBatch` on ``device``: nodes copied once, edges computed there;
        padded to ``pad_shape`` = (n_graph, n_nodes, n_edges) when given."""
        g = GraphBatch.from_nodes(self.nodes, self.n_node, self.labels, self.weights, self.multilabels,
                                  device=device, event_id=self.event_id, edge_backend=edge_backend)
        return g.pad_to(*pad_shape) if pad_shape is not None else g


@batch_type("view_pairs")
@dataclass
class ViewPairs(HostBatch):
    """A HostBatch of ``2b`` interleaved events (nominal, its view, ...) plus ``view`` [2b] int64
    (-1: nominal; k: ``Paired.views[k]``)."""

    view: torch.Tensor | None = None


def gather_events(offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Node rows of events ``idx`` [b] of a packed array with ``offsets`` [B+1].

    Returns (node row indices [n], new offsets [b+1]) — ``nodes[rows]`` packs the events in ``idx`` order.
    """
    starts = offsets[idx]
    counts = offsets[idx + 1] - starts
    new = counts_to_offsets(counts)
    rows = np.repeat(starts - new[:-1], counts) + np.arange(new[-1], dtype=np.int64)
    return rows, new
