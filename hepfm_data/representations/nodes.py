"""Batch builders: how the planned rows of a window become the batches a loader yields.

The sampler decides which events form which batch (pure index arithmetic); a builder only
reads the blocks of one window and packs stream positions ``[a, b)`` of it into a batch.
``StreamingDataset`` iterates and checkpoints; the builder is the pluggable part (composition,
as mosaicml/streaming's reader dispatch), so the same exactly-once, resume and rank x worker
guarantees hold for every batch type:

* :class:`NodeBatcher` (the default): packed nodes -> :class:`~.batch.HostBatch` (workers) ->
  :class:`~hepfm_data.batches.graph.GraphBatch` on the device; an optional ``transform(host, rng)``
  turns each HostBatch into another batch type in the worker (e.g. typed slots).
* A new builder implements :class:`BatchBuilder`: ``read_window`` (rows of the window's
  blocks, permuted into stream order; the window exposes ``offsets`` [n+1], the node
  counts budget batching uses), ``empty_window``, ``batch`` and ``finish`` (main process:
  onto the device). Batch types that cross the worker pipe register with
  :func:`~.batch.register_batch_type` (a dataclass of tensors).

Randomness: ``batch`` gets ``key`` = (seed, epoch, level, rank, batch id); each random
choice draws from ``numpy.random.default_rng([*key[:2], stream, *key[2:]])`` with its own
``stream`` number (2: augmentations, 3: batch transforms, 4+: free), so a batch is the same
whatever the number of workers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from hepfm_data.batches.host import HostBatch, gather_events
from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import StoreError
from hepfm_data.kernels.features import gather_event_node_matrix, pack_node_rows
from hepfm_data.store.layouts import Columns

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.loader.dataset import StreamingDataset

__all__ = ["Block", "BatchBuilder", "NodeBatcher", "NodeWindow", "batch_rng"]

#: rng stream numbers (see the module docstring)
AUGMENT_STREAM, TRANSFORM_STREAM = 2, 3


def batch_rng(key: tuple, stream: int) -> np.random.Generator:
    """The generator of random stream ``stream`` for the batch with ``key`` (seed, epoch, level, rank, batch id)."""
    return np.random.default_rng([int(key[0]), int(key[1]), int(stream), *(int(k) for k in key[2:])])


@dataclass(frozen=True)
class Block:
    """Rows ``[start, stop)`` of shard ``shard`` of source (store) ``source``: the unit of I/O."""

    source: int
    shard: int
    start: int
    stop: int


class BatchBuilder(Protocol):
    """What ``StreamingDataset`` needs from a builder (see the module docstring)."""

    def read_window(self, ds: StreamingDataset, blocks: Sequence[Block], perm: np.ndarray) -> Any:
        """Events of ``blocks`` concatenated in plan order, then permuted by ``perm`` [n]."""

    def empty_window(self, ds: StreamingDataset) -> Any:
        """A window with no events (a worker range without events still yields its batches)."""

    def batch(self, ds: StreamingDataset, win: Any, a: int, b: int, key: tuple) -> Any:
        """Stream positions ``[a, b)`` of ``win`` (window-relative) as one batch."""

    def finish(self, ds: StreamingDataset, item: Any, device: torch.device) -> Any:
        """Main process: an item from a worker (unpacked) -> the batch on ``device``."""


@dataclass
class NodeWindow:
    """Events of one window in stream order: packed nodes and per-event columns."""

    nodes: np.ndarray  # [N, F] float32
    offsets: np.ndarray  # [n+1] int64
    event_id: np.ndarray  # [n] int64
    weight: np.ndarray  # [n] float32 (mixing multiplier applied)
    label: np.ndarray  # [n] int64
    multilabel: np.ndarray | None  # [n, L] uint8

    def __len__(self) -> int:
        return len(self.event_id)


def read_blocks(ds: StreamingDataset, blocks: Sequence[Block], columns: bool = False) -> list:
    """``ShardData`` of each block (``columns``: the stored ``layouts.Columns``, no energy computed),
    its length checked against the plan (errors name the shard)."""
    out = []
    for blk in blocks:
        d = ds._read(blk.source, blk.shard, blk.start, blk.stop, columns)
        n = d.n_events if columns else len(d)
        if n != blk.stop - blk.start:
            raise StoreError(f"{ds.processes[blk.source]}: shard {ds._infos[blk.source][blk.shard].path} gave "
                             f"{n} events for rows [{blk.start}, {blk.stop})")
        out.append(d)
    return out


class _Buffers:
    """Recycled float32 window matrices, so that each window does not fault in fresh pages.

    A window's node matrix (~60 MB at the defaults) is above malloc's mmap threshold: a fresh
    one is page-faulted in for every window (~1-7 us per 4 KiB page in a VM: ~30% of the
    loader's time measured). A buffer is handed out again only when nothing else references
    it (no window, batch or tensor view alive: ``sys.getrefcount``), so reuse is safe whatever
    the caller keeps. Per process (DataLoader workers each have their own)."""

    def __init__(self, keep: int = 3):
        self.keep, self.free = keep, []

    def get(self, n: int, f: int) -> np.ndarray:
        for buf in self.free:
            # references: the list, the loop variable, getrefcount's argument -> nobody else holds it
            if sys.getrefcount(buf) == 3 and buf.shape[0] >= n * f:
                return buf[:n * f].reshape(n, f)
        buf = np.empty(max(n * f + n * f // 8, 1), np.float32)  # headroom: windows differ in size
        self.free = [b for b in self.free if sys.getrefcount(b) > 3][-(self.keep - 1):] + [buf]
        return buf[:n * f].reshape(n, f)


_BUFFERS = _Buffers()


def _cat(arrays: list) -> np.ndarray:
    """``np.concatenate`` without the copy of a single array."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def node_window(ds: StreamingDataset, blocks: Sequence[Block], parts: Sequence, perm: np.ndarray) -> NodeWindow:
    """The :class:`NodeWindow` of ``parts`` (``ShardData`` or ``layouts.Columns`` per block) permuted
    into stream order.

    From ``Columns`` (what :class:`NodeBatcher` reads) each block's columns are interleaved into
    16-byte rows, then one Numba pass gathers the events in stream order into the window's
    [N, 7] matrix, computing the energy on the way and prefetching the rows of the events a few
    positions ahead (the gather is memory-latency bound), both into recycled buffers (:class:`_Buffers`);
    per-event columns are gathered with ``take`` (~2-4x numpy's fancy indexing of rows).
    """
    columns = bool(parts) and isinstance(parts[0], Columns)
    ev = (lambda d, k: d.events[k]) if columns else getattr
    n = _cat([ev(d, "n_node") for d in parts]).astype(np.int64)
    if columns:
        # each block's columns interleaved into one recycled [N, 4] row matrix (no concatenation)
        src = counts_to_offsets(n)
        packed = _BUFFERS.get(int(src[-1]), 4)
        o = 0
        for d in parts:
            m = d.nodes["pt"].shape[0]
            pack_node_rows(*(d.nodes[k] for k in ("pt", "eta", "phi", "btag", "charge", "type")), packed[o:o + m])
            o += m
        gathered, offsets = gather_event_node_matrix(packed, src, perm, _BUFFERS.get(o, 7))
    else:
        rows, offsets = gather_events(counts_to_offsets(n), perm)
        gathered = _cat([d.nodes for d in parts]).astype(np.float32, copy=False).take(rows, axis=0)
    eid = _cat([ev(d, "event_id") for d in parts]).astype(np.int64)
    weight = _cat([ev(d, "weight") * ds.source_scale[blk.source] for blk, d in zip(blocks, parts)])
    label = _cat([np.full(len(ev(d, "event_id")), ds.source_labels[blk.source], np.int64)
                  for blk, d in zip(blocks, parts)])
    ml = _cat([ev(d, "multilabel") for d in parts]).take(perm, axis=0) if ds.multilabels else None
    return NodeWindow(gathered, offsets, eid.take(perm), weight.astype(np.float32).take(perm), label.take(perm), ml)


@dataclass
class NodeBatcher:
    """Packed-node batches: :class:`HostBatch` in workers, :class:`GraphBatch` on the device.

    ``transform(host, rng) -> batch``: optional, applied in the worker after the augmentation
    (e.g. typed slots, a pretext task); its output type must be registered for the pipe and
    have ``to(device, non_blocking=)``. ``n_features``: node features of the representation read.
    """

    transform: Callable[[HostBatch, np.random.Generator], Any] | None = None
    n_features: int = 7

    def read_window(self, ds: StreamingDataset, blocks: Sequence[Block], perm: np.ndarray) -> NodeWindow:
        return node_window(ds, blocks, read_blocks(ds, blocks, columns=True), perm)

    def empty_window(self, ds: StreamingDataset) -> NodeWindow:
        return NodeWindow(np.zeros((0, self.n_features), np.float32), np.zeros(1, np.int64), np.zeros(0, np.int64),
                          np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros((0, 0), np.uint8))

    def host(self, ds: StreamingDataset, win: NodeWindow, a: int, b: int, key: tuple) -> HostBatch:
        """Positions ``[a, b)`` of ``win`` as a HostBatch (augmented when the dataset has ``augment``)."""
        nodes = win.nodes[win.offsets[a]:win.offsets[b]]
        n_node = np.diff(win.offsets[a:b + 1])
        if ds.augment is not None:
            nodes = np.ascontiguousarray(ds.augment(nodes, counts_to_offsets(n_node), batch_rng(key, AUGMENT_STREAM)),
                                         dtype=np.float32)
        ml = win.multilabel[a:b] if ds.multilabels and win.multilabel is not None else np.zeros((b - a, 0), np.uint8)
        return HostBatch(nodes=torch.from_numpy(nodes), n_node=torch.from_numpy(n_node),
                         labels=torch.from_numpy(win.label[a:b]), weights=torch.from_numpy(win.weight[a:b]),
                         event_id=torch.from_numpy(win.event_id[a:b]),
                         multilabels=torch.from_numpy(ml) if ds.multilabels else None)

    def batch(self, ds: StreamingDataset, win: NodeWindow, a: int, b: int, key: tuple) -> Any:
        host = self.host(ds, win, a, b, key)
        if self.transform is not None:
            return self.transform(host, batch_rng(key, TRANSFORM_STREAM))
        if not ds.build_edges:
            return host
        return host.to_graph("cpu", ds.pad_shape, edge_backend="numba")

    def finish(self, ds: StreamingDataset, item: Any, device: torch.device) -> Any:
        if isinstance(item, HostBatch):
            return item.to_graph(device, ds.pad_shape)
        return item.to(device, non_blocking=True) if getattr(item, "device", device) != device else item
