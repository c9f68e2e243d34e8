"""``StreamingDataset``: a resumable, exactly partitioned ``IterableDataset`` of graph batches.

Each item is one batch (the dataset batches itself; use ``DataLoader(batch_size=None)``
or :func:`hepfm_data.loader.make_loader`). Which events form which batch on which
rank and worker is decided by :class:`~hepfm_data.loader.sampler.StreamSampler`
from sizes alone; this module only reads the planned rows and packs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .._arrays import counts_to_offsets
from ..errors import HepfmError, StoreError
from .batch import HostBatch, PackedBatch, gather_events
from .sampler import BatchSpec, EpochPlan, StreamSampler

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import Catalog

__all__ = ["StreamingDataset", "dist_rank_world"]

STATE_FORMAT = "hepfm-loader-state"
#: events per block (the unit of I/O): a multiple of the Zarr event chunk (4096) and of the
#: Parquet row group (16384); store reads have a fixed cost per call (~20 ms, Zarr: whole inner chunks)
DEFAULT_BLOCK = 32768


def dist_rank_world() -> tuple[int, int]:
    """(rank, world_size) of ``torch.distributed`` when initialised, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@dataclass
class _Window:
    """Events of one window, blocks concatenated in plan order."""

    nodes: np.ndarray  # [N, 7] float32
    offsets: np.ndarray  # [n+1] int64
    event_id: np.ndarray  # [n] int64
    weight: np.ndarray  # [n] float32 (mixing multiplier applied)
    label: np.ndarray  # [n] int64
    multilabel: np.ndarray | None  # [n, L] uint8


class StreamingDataset(IterableDataset):
    """Graph batches streamed from one or several stores (one store = one process).

    Parameters
    ----------
    stores: store URLs/paths (``<root>/<process>``) or opened :class:`~hepfm_data.store.Store` objects.
    split: "train", "validation" or "test".
    labels: ``None`` — each store's manifest label (the catalog process index); a mapping
        process -> label; or a catalog task name (labels = the task's class index).
    weights: mixing weights per process: ``None`` = class balanced (equal per process),
        ``"catalog"`` = proportional to the catalog's paper event counts, or a mapping.
    mixing: ``"reweight"`` — every event exactly once per epoch, per-event weights scaled so
        each process carries its mixing weight (mean weight 1); ``"sample"`` — per-epoch
        quotas of events proportional to the weights (a subset, or repeats, of whole blocks);
        ``"none"`` — every event once, stored weights.
    batch_size, max_nodes, max_edges: batch by event count and/or node/edge budget.
    pad: fixed-shape batches (``GraphBatch.pad_to``) of ``batch_size + 1`` graphs,
        ``max_nodes + 1`` nodes, ``max_edges + 1`` edges (all three must be set).
    seed, shuffle: the block shuffle of (seed, epoch); ``block_size`` events per block
        (default 32768), ``window_blocks`` blocks whose events are shuffled together (a worker
        holds at most two windows plus one being prefetched).
    augment: ``aug(nodes, offsets, rng) -> nodes`` (see :mod:`hepfm_data.loader.augment`).
    build_edges: True -> items are :class:`GraphBatch` with edges by the Numba kernel (CPU);
        False -> :class:`HostBatch` (nodes only; the edges are computed where the batch goes).
    rank, world_size: default from ``torch.distributed`` (when initialised) or 0, 1.
    cache_dir, cache_bytes: the local cache of remote shards shared with ``load_dataset`` (bounded,
        verified; ``cache_bytes=None``: ``$HEPFM_CACHE_BYTES`` or 8 GiB; see ``sources.cache.ShardCache``).
    prefetch: read the next window in a background thread (default: for remote stores only;
        local reads gain nothing from it on few cores).
    catalog: the :class:`~hepfm_data.catalog.Catalog` for task names and ``weights="catalog"``
        (default: the packaged catalog).
    """

    def __init__(self, stores: Any, *, split: str = "train", labels: Mapping[str, int] | str | None = None,
                 weights: Mapping[str, float] | str | None = None, mixing: str = "reweight",
                 batch_size: int | None = 256, max_nodes: int | None = None, max_edges: int | None = None,
                 pad: bool = False, seed: int = 0, shuffle: bool = True, block_size: int | None = None,
                 window_blocks: int = 8, augment: Callable | None = None, build_edges: bool = True,
                 multilabels: bool = True, rank: int | None = None, world_size: int | None = None,
                 storage_options: dict[str, Any] | None = None, cache_dir: str | os.PathLike | None = None,
                 cache_bytes: int | None = None, prefetch: bool | None = None, catalog: Catalog | None = None):
        super().__init__()
        from ..catalog import load_catalog
        from ..store import open_store

        self.catalog = catalog or load_catalog()  # read once; task labels and catalog weights use it

        if isinstance(stores, (str, os.PathLike)) or hasattr(stores, "manifest"):
            stores = [stores]
        if not stores:
            raise HepfmError("StreamingDataset needs at least one store")
        self._stores = [s if hasattr(s, "manifest") else open_store(str(s), storage_options) for s in stores]
        names = [s.manifest.process for s in self._stores]
        if len(set(names)) != len(names):
            raise HepfmError(f"each process may appear once, got {names}")
        self.processes = names
        self.split = split
        self._infos = [s.shards(split) for s in self._stores]
        sizes = [[i.n_events for i in infos] for infos in self._infos]
        n_per = np.array([sum(s) for s in sizes], np.float64)
        for name, n in zip(names, n_per):
            if n == 0:
                raise HepfmError(f"store {name!r} has no events in split {split!r}")
        self.source_labels = self._labels(labels)
        w = self._weights(weights)
        if mixing not in ("reweight", "sample", "none"):
            raise HepfmError(f"mixing must be 'reweight', 'sample' or 'none', got {mixing!r}")
        self.mixing = mixing
        total = n_per.sum()
        quotas = None
        self.source_scale = np.ones(len(names), np.float32)
        if mixing == "reweight":
            self.source_scale = (w / w.sum() * total / n_per).astype(np.float32)
        elif mixing == "sample":
            quotas = _largest_remainder(w / w.sum() * total, int(total))
        spec = BatchSpec(batch_size, max_nodes, max_edges)
        if pad and None in (batch_size, max_nodes, max_edges):
            raise HepfmError("pad=True needs batch_size, max_nodes and max_edges (the fixed shape)")
        self.pad_shape = (batch_size + 1, max_nodes + 1, max_edges + 1) if pad else None
        self.sampler = StreamSampler(sizes, spec, seed=seed, shuffle=shuffle,
                                     block_size=block_size or DEFAULT_BLOCK,
                                     window_blocks=window_blocks, quotas=quotas)
        self.augment, self.build_edges, self.multilabels = augment, build_edges, multilabels
        self.prefetch = prefetch
        if (rank is None) != (world_size is None):
            raise HepfmError("give both rank and world_size, or neither")
        self.rank, self.world_size = (rank, world_size) if rank is not None else dist_rank_world()
        if not 0 <= self.rank < self.world_size:
            raise HepfmError(f"rank {self.rank} is outside 0..{self.world_size - 1}")
        self._cache = None
        if cache_dir is not None:
            from ..store.cache import RemoteShards

            self._cache = RemoteShards(cache_dir, cache_bytes)
        # (epoch, consumed batches) in shared memory: persistent DataLoader workers see updates
        self._state = torch.zeros(2, dtype=torch.int64).share_memory_()
        self._n_node: dict[tuple[int, int], np.ndarray] = {}
        self._plan: EpochPlan | None = None
        #: DataLoader workers the rank order is laid out for (set by make_loader)
        self.num_workers = 0

    # ------------------------------------------------------------------ configuration helpers
    def _labels(self, labels) -> np.ndarray:
        if labels is None:
            return np.array([s.manifest.label for s in self._stores], np.int64)
        if isinstance(labels, str):
            classes = self.catalog.task(labels).classes
            labels = {name: k for k, name in enumerate(classes)}
            extra = sorted(set(self.processes) - set(classes))
            if extra:
                raise HepfmError(f"task {classes} has no class for store(s) {extra}")
        missing = [p for p in self.processes if p not in labels]
        if missing:
            raise HepfmError(f"labels has no entry for process(es) {missing}")
        return np.array([int(labels[p]) for p in self.processes], np.int64)

    def _weights(self, weights) -> np.ndarray:
        if weights is None:
            return np.ones(len(self.processes))
        if weights == "catalog":
            cat = self.catalog
            return np.array([cat.process(p).paper_events for p in self.processes], np.float64)
        if isinstance(weights, str):
            raise HepfmError(f"weights must be None, 'catalog' or a mapping process -> weight, got {weights!r}")
        missing = [p for p in self.processes if p not in weights]
        if missing:
            raise HepfmError(f"weights has no entry for process(es) {missing}")
        w = np.array([float(weights[p]) for p in self.processes])
        if not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise HepfmError(f"mixing weights must be finite, >= 0 and not all 0, got {dict(zip(self.processes, w))}")
        return w

    # ------------------------------------------------------------------ state
    @property
    def epoch(self) -> int:
        return int(self._state[0])

    @property
    def consumed(self) -> int:
        """Batches of the current epoch already delivered on this rank."""
        return int(self._state[1])

    def _set_state(self, epoch: int, consumed: int) -> None:
        self._state[0], self._state[1] = int(epoch), int(consumed)

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its beginning — unless it is the current (resumed) epoch."""
        if int(epoch) != self.epoch:
            self._set_state(int(epoch), 0)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able position: the next batch is batch ``consumed`` of ``epoch`` on this rank."""
        return {"format": STATE_FORMAT, "epoch": self.epoch, "consumed": self.consumed, "rank": self.rank,
                "world_size": self.world_size, "num_workers": self.num_workers,
                "fingerprint": self.sampler.fingerprint()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume exactly where ``state`` stopped (same stores, config and world size)."""
        if state.get("format") != STATE_FORMAT:
            raise HepfmError(f"not a loader state (format {state.get('format')!r})")
        if state["fingerprint"] != self.sampler.fingerprint():
            raise HepfmError("loader state was saved with other stores, split, batching, seed or block "
                             f"settings (fingerprint {state['fingerprint']} != {self.sampler.fingerprint()})")
        for key in ("world_size", "num_workers"):  # both shape the order of batches on a rank
            if state[key] != getattr(self, key):
                raise HepfmError(f"loader state was saved with {key}={state[key]}, now {getattr(self, key)}; "
                                 f"resume with the same {key}")
        n = self.n_batches(int(state["epoch"]))
        if not 0 <= int(state["consumed"]) <= n:
            raise HepfmError(f"loader state consumed={state['consumed']} outside the epoch's {n} batches")
        self._set_state(int(state["epoch"]), int(state["consumed"]))

    # ------------------------------------------------------------------ plan
    def plan(self, epoch: int | None = None) -> EpochPlan:
        epoch = self.epoch if epoch is None else int(epoch)
        if self._plan is None or self._plan.epoch != epoch:
            self._plan = self.sampler.plan(epoch)
        return self._plan

    def n_node_of(self, source: int, shard: int) -> np.ndarray:
        """[n_events] node counts of shard ``shard`` of source ``source`` (read once, cached)."""
        key = (source, shard)
        if key not in self._n_node:
            store, info = self._stores[source], self._infos[source][shard]
            if store.manifest.layout == "zarr" and (self._cache is None or _is_local(store)):
                n = store.n_node(info)  # the n_node column alone; errors name the shard
            else:
                n = self._read(source, shard, 0, None).n_node
            if len(n) != info.n_events:
                raise StoreError(f"{store.url}: shard {info.name} has {len(n)} node counts, manifest says "
                                 f"{info.n_events} events")
            self._n_node[key] = np.asarray(n, dtype=np.int16)  # compact: copied into every worker
        return self._n_node[key]

    def n_batches(self, epoch: int | None = None) -> int:
        """Batches per rank in ``epoch`` (the same on every rank)."""
        return self.sampler.n_batches(self.plan(epoch), self.world_size, self.n_node_of)

    def __len__(self) -> int:
        return self.n_batches()

    # ------------------------------------------------------------------ reading
    def _read(self, source: int, shard: int, start: int, stop: int | None):
        store, info = self._stores[source], self._infos[source][shard]
        if self._cache is not None and not _is_local(store):
            return self._cache.read(store, info, start, stop)
        return store.read_shard(info, start, stop)

    def _read_window(self, plan: EpochPlan, w: int) -> _Window:
        """Read the blocks of window ``w`` and permute its events into stream order."""
        nodes, n_node, eid, weight, label, ml = [], [], [], [], [], []
        for b in plan.window_blocks_of(w):
            s, k = int(plan.block_source[b]), int(plan.block_shard[b])
            start, stop = int(plan.block_start[b]), int(plan.block_stop[b])
            d = self._read(s, k, start, stop)
            if len(d) != stop - start:
                raise StoreError(f"{self.processes[s]}: shard {self._infos[s][k].path} gave {len(d)} events "
                                 f"for rows [{start}, {stop})")
            nodes.append(d.nodes)
            n_node.append(d.n_node)
            eid.append(d.event_id)
            weight.append(d.weight * self.source_scale[s])
            label.append(np.full(len(d), self.source_labels[s], np.int64))
            if self.multilabels:
                ml.append(d.multilabel)
        n = np.concatenate(n_node).astype(np.int64)
        offsets = counts_to_offsets(n)
        perm = plan.window_perm(w)
        rows, offsets = gather_events(offsets, perm)
        return _Window(np.concatenate(nodes).astype(np.float32, copy=False)[rows], offsets,
                       np.concatenate(eid).astype(np.int64)[perm], np.concatenate(weight).astype(np.float32)[perm],
                       np.concatenate(label)[perm], np.concatenate(ml)[perm] if self.multilabels else None)

    def _batch(self, plan: EpochPlan, windows: dict[int, _Window], p0: int, p1: int, batch_id: int):
        """Pack stream positions [p0, p1) (from loaded windows, in stream order) into one batch."""
        parts = []
        w = int(np.searchsorted(plan.window_pos, p0, side="right") - 1) if p1 > p0 else 0
        p = p0
        while p < p1:
            hi = min(p1, int(plan.window_pos[w + 1]))
            parts.append((windows[w], p - int(plan.window_pos[w]), hi - int(plan.window_pos[w])))
            p, w = hi, w + 1

        def cat(fn, empty):
            arrays = [fn(win, a, b) for win, a, b in parts]
            return arrays[0] if len(arrays) == 1 else np.concatenate(arrays) if arrays else empty

        nodes = cat(lambda win, a, b: win.nodes[win.offsets[a]:win.offsets[b]], np.zeros((0, 7), np.float32))
        n_node = cat(lambda win, a, b: np.diff(win.offsets[a:b + 1]), np.zeros(0, np.int64))
        if self.augment is not None:
            offsets = counts_to_offsets(n_node)
            rng = np.random.default_rng([self.sampler.seed, plan.epoch, 2, self.rank, batch_id])
            nodes = np.ascontiguousarray(self.augment(nodes, offsets, rng), dtype=np.float32)
        host = HostBatch(
            nodes=torch.from_numpy(nodes), n_node=torch.from_numpy(n_node),
            labels=torch.from_numpy(cat(lambda win, a, b: win.label[a:b], np.zeros(0, np.int64))),
            weights=torch.from_numpy(cat(lambda win, a, b: win.weight[a:b], np.zeros(0, np.float32))),
            event_id=torch.from_numpy(cat(lambda win, a, b: win.event_id[a:b], np.zeros(0, np.int64))),
            multilabels=torch.from_numpy(cat(lambda win, a, b: win.multilabel[a:b], np.zeros((0, 0), np.uint8)))
            if self.multilabels else None)
        if not self.build_edges:
            return host
        return host.to_graph("cpu", self.pad_shape, edge_backend="numba")

    # ------------------------------------------------------------------ iteration
    def __iter__(self):
        info = get_worker_info()
        in_main = info is None
        worker, num_workers = (0, 0) if in_main else (info.id, info.num_workers)
        epoch, consumed = self.epoch, self.consumed
        plan = self.plan(epoch)
        need = self.n_node_of if self.sampler.batch.needs_sizes else None
        a = self.sampler.assignment(plan, self.rank, self.world_size, worker, num_workers, consumed, need)
        k = len(a.bounds) - 1
        # windows each batch touches, in order
        spans = [(int(a.bounds[b]), int(a.bounds[b + 1])) for b in a.batches]
        wins = []
        for p0, p1 in spans:
            if p1 > p0:
                lo = int(np.searchsorted(plan.window_pos, p0, side="right") - 1)
                hi = int(np.searchsorted(plan.window_pos, p1 - 1, side="right") - 1)
                wins.append(range(lo, hi + 1))
            else:
                wins.append(range(0))
        order = list(dict.fromkeys(w for r in wins for w in r))
        prefetch = self.prefetch if self.prefetch is not None else not all(_is_local(s) for s in self._stores)
        pool = ThreadPoolExecutor(1) if prefetch else None
        loaded: dict[int, _Window] = {}
        pending: dict[int, Future] = {}

        def request(i: int):
            if i < len(order) and order[i] not in loaded and order[i] not in pending:
                pending[order[i]] = (pool.submit(self._read_window, plan, order[i]) if pool
                                     else _Done(self._read_window(plan, order[i])))

        nxt = 0
        try:
            for j, b in enumerate(a.batches):
                for w in wins[j]:
                    while w not in loaded:
                        request(nxt)
                        loaded[order[nxt]] = pending.pop(order[nxt]).result()
                        nxt += 1
                        if pool is not None:
                            request(nxt)  # read the next window in the background meanwhile
                lo = wins[j].start if len(wins[j]) else None
                if lo is not None:
                    for w in [w for w in loaded if w < lo]:
                        del loaded[w]
                out = self._batch(plan, loaded, spans[j][0], spans[j][1], int(b))
                if in_main:  # a DataLoader worker's copy must not move the shared state
                    self._set_state(epoch, consumed + j + 1)
                    yield out
                else:  # one pickled buffer per batch through the worker's pipe
                    yield PackedBatch.pack(out)
            if in_main and consumed + len(a.batches) == k:
                self._set_state(epoch + 1, 0)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


class _Done:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def _is_local(store) -> bool:
    from ..sources.fs import is_local

    return is_local(store.fs)


def _largest_remainder(x: np.ndarray, total: int) -> list[int]:
    """Integers proportional to ``x`` summing to ``total`` (largest-remainder rounding)."""
    base = np.floor(x).astype(np.int64)
    rest = total - int(base.sum())
    order = np.argsort(-(x - base), kind="stable")
    base[order[:rest]] += 1
    return [int(v) for v in base]
