"""Graph representations: packed nodes read from stored columns -> :class:`~hepfm_data.batches.HostBatch`
in the workers -> :class:`~hepfm_data.batches.GraphBatch` on the training device.

:class:`GraphRepresentation` is the class of ``paper`` and ``paper_taus`` (one file each): a
materialised representation, its columns (per-event scalars + nodes) written by ``build`` / ``derive``
and read by the loader. In the workers, one prefetching Numba pass gathers a window's nodes by event
into recycled buffers; the fully connected edges and their features are computed where the batch
lands (:meth:`GraphRepresentation.finish`: torch on a GPU, the Numba kernel on CPU), not shipped
between processes (edges are ~7x the bytes of the nodes). ``StreamingDataset(build_edges=True)``
builds CPU graphs in the workers instead (the fast path of CPU training without a DataLoader).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hepfm_data.batches.graph import GraphBatch
from hepfm_data.batches.host import HostBatch, ViewPairs, gather_events
from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.kernels.features import gather_event_node_matrix, pack_node_rows
from hepfm_data.representations.base import AUGMENT_STREAM, Block, Representation, batch_rng

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.core.catalog import Catalog
    from hepfm_data.representations.base import WindowSource
    from hepfm_data.store.layouts import Columns

__all__ = ["GraphRepresentation", "NodeWindow", "node_window"]



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


def node_window(src: WindowSource, blocks: Sequence[Block], parts: Sequence[Columns], perm: np.ndarray) -> NodeWindow:
    """The :class:`NodeWindow` of ``parts`` (stored ``Columns`` per block) permuted into stream order.

    Each block's columns are interleaved into 16-byte rows, then one Numba pass gathers the events in
    stream order into the window's [N, 7] matrix, computing the energy on the way and prefetching the
    rows of the events a few positions ahead (the gather is memory-latency bound), both into recycled
    buffers (:class:`_Buffers`); per-event columns are gathered with ``take`` (~2-4x numpy's fancy
    indexing of rows).
    """
    n = _cat([d.events["n_node"] for d in parts]).astype(np.int64)
    src_off = counts_to_offsets(n)
    packed = _BUFFERS.get(int(src_off[-1]), 4)
    o = 0
    for d in parts:
        m = d.nodes["pt"].shape[0]
        pack_node_rows(*(d.nodes[k] for k in ("pt", "eta", "phi", "btag", "charge", "type")), packed[o:o + m])
        o += m
    gathered, offsets = gather_event_node_matrix(packed, src_off, perm, _BUFFERS.get(o, 7))
    eid = _cat([d.events["event_id"] for d in parts]).astype(np.int64)
    weight = _cat([d.events["weight"] * src.source_scale[blk.source] for blk, d in zip(blocks, parts)])
    label = _cat([np.full(d.n_events, src.source_labels[blk.source], np.int64) for blk, d in zip(blocks, parts)])
    ml = _cat([d.events["multilabel"] for d in parts]).take(perm, axis=0) if src.multilabels else None
    return NodeWindow(gathered, offsets, eid.take(perm), weight.astype(np.float32).take(perm), label.take(perm), ml)


@dataclass(frozen=True, repr=False)
class GraphRepresentation(Representation):
    """A graph representation: ``derive(events, label, catalog, seed) -> Columns`` materialises it;
    ``describe(catalog) -> dict`` is what it takes from the catalog; ``inputs``: the record fields read."""

    name: str
    version: int
    inputs: tuple[str, ...]
    derive: Callable[[Any, int, Catalog, int], Columns] = field(compare=False)
    describe: Callable[[Catalog], dict[str, Any]] = field(compare=False)
    doc: str = ""
    n_features: int = 7

    batch_type = GraphBatch
    options = frozenset({"augment", "pad_shape", "batch_by_size", "multilabels", "build_edges"})

    def definition(self, catalog: Catalog) -> dict[str, Any]:
        return self.describe(catalog)

    def columns(self, events: Any, label: int, catalog: Catalog, seed: int) -> Columns:
        return self.derive(events, label, catalog, seed)

    # ------------------------------------------------------------------ windows
    def read_parts(self, src: WindowSource, blocks: Sequence[Block], stores: Sequence | None = None) -> list:
        """Stored columns of each block; ``stores[source]`` replaces the dataset's store (an aligned view)."""
        return [src.read_columns(blk, None if stores is None else stores[blk.source]) for blk in blocks]

    def event_ids(self, part) -> np.ndarray:
        return part.events["event_id"]

    def window(self, src: WindowSource, blocks: Sequence[Block], parts: Sequence, perm: np.ndarray) -> NodeWindow:
        return node_window(src, blocks, parts, perm)

    def read_window(self, src: WindowSource, blocks: Sequence[Block], perm: np.ndarray) -> NodeWindow:
        return self.window(src, blocks, self.read_parts(src, blocks), perm)

    def empty_window(self, src: WindowSource) -> NodeWindow:
        return NodeWindow(np.zeros((0, self.n_features), np.float32), np.zeros(1, np.int64), np.zeros(0, np.int64),
                          np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros((0, 0), np.uint8))

    # ------------------------------------------------------------------ batches
    def host(self, src: WindowSource, win: NodeWindow, a: int, b: int, key: tuple) -> HostBatch:
        """Positions ``[a, b)`` of ``win`` as a HostBatch (augmented when the dataset has ``augment``)."""
        nodes = win.nodes[win.offsets[a]:win.offsets[b]]
        n_node = np.diff(win.offsets[a:b + 1])
        if src.augment is not None:
            nodes = np.ascontiguousarray(src.augment(nodes, counts_to_offsets(n_node), batch_rng(key, AUGMENT_STREAM)),
                                         dtype=np.float32)
        ml = win.multilabel[a:b] if src.multilabels and win.multilabel is not None else np.zeros((b - a, 0), np.uint8)
        return HostBatch(nodes=torch.from_numpy(nodes), n_node=torch.from_numpy(n_node),
                         labels=torch.from_numpy(win.label[a:b]), weights=torch.from_numpy(win.weight[a:b]),
                         event_id=torch.from_numpy(win.event_id[a:b]),
                         multilabels=torch.from_numpy(ml) if src.multilabels else None)

    def batch(self, src: WindowSource, win: NodeWindow, a: int, b: int, key: tuple) -> Any:
        host = self.host(src, win, a, b, key)
        return host.to_graph("cpu", src.pad_shape, edge_backend="numba") if src.build_edges else host

    def finish(self, src: WindowSource, item: Any, device: torch.device) -> Any:
        if isinstance(item, HostBatch):  # ViewPairs too: pairs are never padded
            return item.to_graph(device, None if isinstance(item, ViewPairs) else src.pad_shape)
        return super().finish(src, item, device)

    # ------------------------------------------------------------------ view pairs (representations.pairs)
    pair_batch_type = GraphBatch

    def match_views(self, nominal: NodeWindow, views: list[NodeWindow]) -> None:
        """Events of a view are the nominal's events (same ids, same order): nothing to match."""
        return None

    def pair_batch(self, src: WindowSource, nominal: NodeWindow, views: list[NodeWindow], match: None, a: int, b: int,
                   key: tuple, choice: np.ndarray) -> Any:
        """Each nominal event of ``[a, b)`` then the same event in view ``choice[i]``: a ViewPairs of 2(b - a)
        interleaved events (``view``: -1 nominal, else the view index)."""
        n = b - a
        # one packed array of the nominal window then every view window; event j of source s at s*len + j
        wins = [nominal, *views]
        counts = np.concatenate([np.diff(w.offsets) for w in wins]).astype(np.int64)
        nodes_all = np.concatenate([w.nodes for w in wins]) if len(nominal) else nominal.nodes
        size = len(nominal)
        pos = np.arange(a, b)
        idx = np.empty(2 * n, dtype=np.int64)
        idx[0::2] = pos
        idx[1::2] = (1 + choice) * size + pos
        rows, offsets = gather_events(counts_to_offsets(counts), idx)
        nodes = nodes_all[rows]
        n_node = np.diff(offsets)
        if src.augment is not None:
            nodes = np.ascontiguousarray(src.augment(nodes, offsets, batch_rng(key, AUGMENT_STREAM)), dtype=np.float32)
        pair = np.repeat(pos, 2)
        view = np.full(2 * n, -1, np.int64)
        view[1::2] = choice
        ml = None
        if src.multilabels and nominal.multilabel is not None and nominal.multilabel.size:
            ml = torch.from_numpy(np.ascontiguousarray(np.concatenate([w.multilabel for w in wins])[idx]))
        elif src.multilabels:
            ml = torch.zeros((2 * n, 0), dtype=torch.uint8)
        host = ViewPairs(nodes=torch.from_numpy(np.ascontiguousarray(nodes, dtype=np.float32)),
                         n_node=torch.from_numpy(n_node), labels=torch.from_numpy(nominal.label[pair]),
                         weights=torch.from_numpy(nominal.weight[pair]),
                         event_id=torch.from_numpy(nominal.event_id[pair]), multilabels=ml,
                         view=torch.from_numpy(view))
        return host.to_graph("cpu", None, edge_backend="numba") if src.build_edges else host

