"""The worker pipe: batch types registered by name, and :class:`PackedBatch`, one buffer per batch.

A DataLoader worker would send every tensor of a batch through its own shared-memory segment; a
registered batch type (:func:`batch_type`) travels as one numpy buffer instead and is unpacked into
zero-copy tensor views in the main process. Only registered names are unpacked (no pickled classes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["BATCH_TYPES", "PackedBatch", "TensorBatch", "batch_type", "map_tensors"]


def map_tensors(batch, fn):
    """A copy of dataclass ``batch`` with ``fn(tensor)`` applied to each tensor field (None fields
    kept): the one implementation of ``to`` / ``pin_memory`` / ``select`` of every batch type."""
    return dataclasses.replace(batch, **{
        f.name: fn(getattr(batch, f.name))
        for f in dataclasses.fields(batch) if isinstance(getattr(batch, f.name), torch.Tensor)})


class TensorBatch:
    """Base of every batch type (a dataclass of tensors): ``to``, ``pin_memory`` and ``device``, once."""

    def to(self, device, non_blocking: bool = False):
        """The batch on ``device`` (tensors already there are kept)."""
        return map_tensors(self, lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self):
        """Page-locked copy (DataLoader's pin_memory thread calls this)."""
        return map_tensors(self, torch.Tensor.pin_memory)

    @property
    def device(self) -> torch.device:
        """The device of the first tensor field."""
        for f in dataclasses.fields(self):
            t = getattr(self, f.name)
            if isinstance(t, torch.Tensor):
                return t.device
        return torch.device("cpu")

_ALIGN = 16

#: batch types that cross a DataLoader worker's pipe as one buffer (name -> dataclass of tensors)
BATCH_TYPES: dict[str, type] = {}


def batch_type(name: str):
    """Class decorator: let ``PackedBatch`` carry the decorated class (a dataclass whose fields are tensors
    or None) under ``name``; every batch type registers itself where it is defined::

        @batch_type("graph")
        @dataclass
        class GraphBatch: ...
    """

    def register(cls: type) -> type:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"batch type {cls.__name__} must be a dataclass of tensors")
        if BATCH_TYPES.get(name, cls) is not cls:
            raise ValueError(f"batch type name {name!r} is taken by {BATCH_TYPES[name].__name__}")
        BATCH_TYPES[name] = cls
        return cls

    return register


def _kind(batch: Any) -> str:
    for name, cls in BATCH_TYPES.items():
        if type(batch) is cls:
            return name
    raise TypeError(f"{type(batch).__name__} is not a registered batch type (decorate it with batch_type)")


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


