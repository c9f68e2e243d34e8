"""Host-side batches: what DataLoader workers hand to the main process when the
graph is built on an accelerator (edges are then computed there, not in the worker)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._arrays import counts_to_offsets
from ..graph import GraphBatch, map_tensors
from ..slots import SlotBatch

__all__ = ["HostBatch", "PackedBatch", "gather_events", "register_batch_type"]


@dataclass
class HostBatch:
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

    def pin_memory(self) -> HostBatch:
        """Page-locked copy (DataLoader's pin_memory thread calls this)."""
        return map_tensors(self, torch.Tensor.pin_memory)

    def to_graph(self, device: torch.device | str, pad_shape: tuple[int, int, int] | None = None,
                 edge_backend: str = "auto") -> GraphBatch:
        """The :class:`GraphBatch` on ``device``: nodes copied once, edges computed there;
        padded to ``pad_shape`` = (n_graph, n_nodes, n_edges) when given."""
        g = GraphBatch.from_nodes(self.nodes, self.n_node, self.labels, self.weights, self.multilabels,
                                  device=device, event_id=self.event_id, edge_backend=edge_backend)
        return g.pad_to(*pad_shape) if pad_shape is not None else g


def gather_events(offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Node rows of events ``idx`` [b] of a packed array with ``offsets`` [B+1].

    Returns (node row indices [n], new offsets [b+1]) — ``nodes[rows]`` packs the events in ``idx`` order.
    """
    starts = offsets[idx]
    counts = offsets[idx + 1] - starts
    new = counts_to_offsets(counts)
    rows = np.repeat(starts - new[:-1], counts) + np.arange(new[-1], dtype=np.int64)
    return rows, new


_ALIGN = 16

#: batch types that cross a DataLoader worker's pipe as one buffer (name -> dataclass of tensors)
BATCH_TYPES: dict[str, type] = {}


def register_batch_type(name: str, cls: type) -> type:
    """Let ``PackedBatch`` carry ``cls`` (a dataclass whose fields are tensors or None) under ``name``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"batch type {cls.__name__} must be a dataclass of tensors")
    if BATCH_TYPES.get(name, cls) is not cls:
        raise ValueError(f"batch type name {name!r} is taken by {BATCH_TYPES[name].__name__}")
    BATCH_TYPES[name] = cls
    return cls


def _kind(batch: Any) -> str:
    for name, cls in BATCH_TYPES.items():
        if type(batch) is cls:
            return name
    raise TypeError(f"{type(batch).__name__} is not a registered batch type (register_batch_type)")


@dataclass
class PackedBatch:
    """A registered batch (:class:`GraphBatch`, :class:`HostBatch`, ...) packed into one numpy byte buffer.

    DataLoader workers would send every tensor of a batch through its own shared-memory
    segment (a socket handshake each); one numpy buffer per batch travels as one pickled
    blob through the worker's pipe instead, and ``unpack()`` returns zero-copy tensor views.
    """

    buffer: np.ndarray | torch.Tensor  # uint8 [bytes] (a tensor once pinned)
    kind: str  # a name in BATCH_TYPES: "graph", "host", ...
    fields: tuple  # ((name, dtype, shape, offset) | (name, None, None, None), ...)

    @classmethod
    def pack(cls, batch: Any) -> PackedBatch:
        items, size = [], 0
        for f in dataclasses.fields(batch):
            t = getattr(batch, f.name)
            if not isinstance(t, torch.Tensor):
                items.append((f.name, None, None, None))
                continue
            items.append((f.name, t.dtype, tuple(t.shape), size))
            size += -(-t.numel() * t.element_size() // _ALIGN) * _ALIGN
        buf = np.empty(size, dtype=np.uint8)
        for name, dtype, _, off in items:
            if dtype is not None:
                a = getattr(batch, name).contiguous().numpy().reshape(-1).view(np.uint8)
                buf[off:off + a.shape[0]] = a
        return cls(buf, _kind(batch), tuple(items))

    def pin_memory(self) -> PackedBatch:
        return PackedBatch(torch.from_numpy(self.buffer).pin_memory(), self.kind, self.fields)

    def unpack(self) -> Any:
        buf = self.buffer if isinstance(self.buffer, torch.Tensor) else torch.from_numpy(self.buffer)
        out = {}
        for name, dtype, shape, off in self.fields:
            if dtype is None:
                out[name] = None
                continue
            n = int(np.prod(shape, dtype=np.int64)) * torch.empty(0, dtype=dtype).element_size()
            out[name] = buf[off:off + n].view(dtype).reshape(shape)
        return BATCH_TYPES[self.kind](**out)


register_batch_type("graph", GraphBatch)
register_batch_type("host", HostBatch)
register_batch_type("slots", SlotBatch)
