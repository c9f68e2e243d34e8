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
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from hepfm_data.batches.base import PackedBatch
from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import HepfmError, StoreError
from hepfm_data.loader.sampler import BatchSpec, EpochPlan, StreamSampler
from hepfm_data.representations.base import Block

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.core.catalog import Catalog
    from hepfm_data.representations.base import Representation

__all__ = ["LoaderStateError", "StreamingDataset", "dist_rank_world"]

STATE_FORMAT = "hepfm-loader-state"
#: elastic resumes of one epoch a state may chain (each adds one (world_size, num_workers, consumed))
MAX_LEVELS = 16
_STATE_KEYS = {"format", "epoch", "consumed", "rank", "world_size", "num_workers", "fingerprint", "levels"}
_STATE_LIMITS = {"epoch": (0, 2**31), "consumed": (0, 2**40), "rank": (0, 4095), "world_size": (1, 4096),
                 "num_workers": (0, 256)}
_MAX_GROUPS = 1 << 15  # world_size x num_workers of a partition in a state (planning cost is linear in it)


class LoaderStateError(HepfmError):
    """A loader ``state_dict`` is malformed or belongs to another configuration (names the key)."""
#: events per block (the unit of I/O): a multiple of the Zarr event chunk (4096) and of the
#: Parquet row group (16384); store reads have a fixed cost per call (~20 ms, Zarr: whole inner chunks)
DEFAULT_BLOCK = 32768


def dist_rank_world() -> tuple[int, int]:
    """(rank, world_size) of ``torch.distributed`` when initialised, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


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
    catalog: the :class:`~hepfm_data.core.catalog.Catalog` for task names and ``weights="catalog"``
        (default: the packaged catalog).
    representation: a name in the registry (:mod:`hepfm_data.representations`) or a
        :class:`~hepfm_data.representations.Representation` (e.g. a configured ``SlotRepresentation``
        or ``Paired``); default: the stores' own (``paper``). Stores are opened as it reads them (inputs
        and fingerprints checked here, once); it builds the batches in the workers. Every option it does
        not honour (``augment``, ``pad``, ``max_nodes`` / ``max_edges``) is refused by name.
    """

    def __init__(self, stores: Any, *, split: str = "train", labels: Mapping[str, int] | str | None = None,
                 weights: Mapping[str, float] | str | None = None, mixing: str = "reweight",
                 batch_size: int | None = 256, max_nodes: int | None = None, max_edges: int | None = None,
                 pad: bool = False, seed: int = 0, shuffle: bool = True, block_size: int | None = None,
                 window_blocks: int = 8, augment: Callable | None = None, build_edges: bool = True,
                 multilabels: bool | None = None, rank: int | None = None, world_size: int | None = None,
                 storage_options: dict[str, Any] | None = None, cache_dir: str | os.PathLike | None = None,
                 cache_bytes: int | None = None, prefetch: bool | None = None, catalog: Catalog | None = None,
                 representation: str | Representation | None = None):
        super().__init__()
        from hepfm_data.core.catalog import load_catalog
        from hepfm_data.representations.registry import open_stores

        self.catalog = catalog or load_catalog()  # read once; task labels and catalog weights use it

        if isinstance(stores, (str, os.PathLike)) or hasattr(stores, "manifest"):
            stores = [stores]
        if not stores:
            raise HepfmError("StreamingDataset needs at least one store")
        self.representation, self.stores = open_stores(stores, representation, self.catalog, storage_options)
        names = [s.manifest.process for s in self.stores]
        if len(set(names)) != len(names):
            raise HepfmError(f"each process may appear once, got {names}")
        self.processes = names
        self.split = split
        self._infos = [s.shards(split) for s in self.stores]
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
        self.augment, self.build_edges = augment, build_edges
        self.multilabels = True if multilabels is None else bool(multilabels)
        self.batch_by_size = spec.needs_sizes
        self.representation.bind(self, {"augment": augment, "pad_shape": self.pad_shape,
                                        "batch_by_size": self.batch_by_size, "multilabels": multilabels})
        self.prefetch = prefetch
        if (rank is None) != (world_size is None):
            raise HepfmError("give both rank and world_size, or neither")
        self.rank, self.world_size = (rank, world_size) if rank is not None else dist_rank_world()
        if not 0 <= self.rank < self.world_size:
            raise HepfmError(f"rank {self.rank} is outside 0..{self.world_size - 1}")
        self._cache = None
        if cache_dir is not None:
            from hepfm_data.store.cache import RemoteShards

            self._cache = RemoteShards(cache_dir, cache_bytes)
        # (epoch, consumed batches, n levels, (world_size, num_workers, consumed) per earlier
        # partition of this epoch) in shared memory: persistent DataLoader workers see updates.
        # Row 0: the live position (moves with every delivered batch); row 1: where the current
        # iteration starts — what workers read when they begin, so a worker that starts late
        # (a loaded machine) does not see batches already delivered by the others as consumed.
        self._state = torch.zeros((2, 3 + 3 * MAX_LEVELS), dtype=torch.int64).share_memory_()
        self._n_node: dict[tuple[int, int], np.ndarray] = {}  # non-Zarr / remote shards only
        self._plan: EpochPlan | None = None
        #: DataLoader workers the rank order is laid out for (set by make_loader)
        self.num_workers = 0

    # ------------------------------------------------------------------ configuration helpers
    def _labels(self, labels) -> np.ndarray:
        if labels is None:
            return np.array([s.manifest.label for s in self.stores], np.int64)
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
        return int(self._state[0, 0])

    @property
    def consumed(self) -> int:
        """Batches of the current epoch (of its current partition) already delivered on this rank."""
        return int(self._state[0, 1])

    @property
    def levels(self) -> list[list[int]]:
        """Earlier partitions of the current epoch: [[world_size, num_workers, consumed], ...]."""
        return _levels(self._state[0])

    def _set_state(self, epoch: int, consumed: int, levels: list | None = None, progress: bool = False) -> None:
        """Move the position; ``progress=True``: a batch was delivered (the iteration's start stays)."""
        view = self._state.numpy()  # the shared memory itself
        view[0, 0], view[0, 1] = epoch, consumed
        if levels is not None:
            view[0, 2] = len(levels)
            for i, lv in enumerate(levels):
                view[0, 3 + 3 * i:6 + 3 * i] = [int(x) for x in lv]
        if not progress:
            self._begin()

    def _begin(self) -> None:
        """The next iteration starts at the live position (called before workers are (re)started)."""
        view = self._state.numpy()
        view[1] = view[0]

    def _start(self) -> tuple[int, int, list[list[int]]]:
        """(epoch, consumed, levels) where the current iteration starts."""
        row = self._state[1]
        return int(row[0]), int(row[1]), _levels(row)

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its beginning — unless it is the current (resumed) epoch."""
        if int(epoch) != self.epoch:
            self._set_state(int(epoch), 0, [])

    def state_dict(self) -> dict[str, Any]:
        """JSON-able position: the next batch is batch ``consumed`` of ``epoch`` on every rank
        (ranks step together), after the earlier partitions ``levels`` of that epoch."""
        return {"format": STATE_FORMAT, "epoch": self.epoch, "consumed": self.consumed, "rank": self.rank,
                "world_size": self.world_size, "num_workers": self.num_workers, "levels": self.levels,
                "fingerprint": self.sampler.fingerprint()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume where ``state`` stopped: same stores and batching config; the world size and
        number of workers may differ (the rest of the epoch is then re-partitioned: every
        remaining event still comes exactly once). ``state`` is untrusted input: JSON types
        only, every value type- and range-checked (:class:`LoaderStateError` names the key)."""
        st = validate_state(state)
        if st["fingerprint"] != self.sampler.fingerprint():
            raise LoaderStateError("loader state key 'fingerprint': saved with other stores, split, batching, seed "
                                   f"or block settings ({st['fingerprint']} != {self.sampler.fingerprint()})")
        epoch, consumed, levels = st["epoch"], st["consumed"], st["levels"]
        if (st["world_size"], st["num_workers"]) != (self.world_size, self.num_workers) and consumed:
            if len(levels) >= MAX_LEVELS:
                raise LoaderStateError(f"loader state key 'levels': {len(levels)} elastic resumes of one epoch, "
                                       f"at most {MAX_LEVELS}")
            levels = levels + [[st["world_size"], st["num_workers"], consumed]]
            consumed = 0
        try:
            n = self.n_batches(epoch, levels)
        except HepfmError as exc:
            raise LoaderStateError(f"loader state key 'levels' or 'consumed' does not fit this epoch: {exc}") from None
        if not 0 <= consumed <= n:
            raise LoaderStateError(f"loader state key 'consumed': {consumed} outside the epoch's {n} batches")
        self._set_state(epoch, consumed, levels)

    # ------------------------------------------------------------------ plan
    def plan(self, epoch: int | None = None) -> EpochPlan:
        epoch = self.epoch if epoch is None else int(epoch)
        if self._plan is None or self._plan.epoch != epoch:
            self._plan = self.sampler.plan(epoch)
        return self._plan

    def n_node_of(self, source: int, shard: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """[stop - start] int16 node counts of rows ``[start, stop)`` of a shard (local Zarr:
        the n_node column's chunks alone; otherwise the shard's counts, read once and cached)."""
        store, info = self.stores[source], self._infos[source][shard]
        stop = info.n_events if stop is None else stop
        if store.manifest.layout == "zarr" and (self._cache is None or _is_local(store)):
            n = store.n_node(info, start, stop)  # errors name the shard
            if len(n) != stop - start:
                raise StoreError(f"{store.url}: shard {info.name} has {len(n)} node counts for rows [{start}, {stop})")
            return np.asarray(n, dtype=np.int16)
        key = (source, shard)
        if key not in self._n_node:
            n = self._read(source, shard, 0, None).n_node
            if len(n) != info.n_events:
                raise StoreError(f"{store.url}: shard {info.name} has {len(n)} node counts, manifest says "
                                 f"{info.n_events} events")
            self._n_node[key] = np.asarray(n, dtype=np.int16)  # compact
        return self._n_node[key][start:stop]

    def _need(self):
        return self.n_node_of if self.sampler.batch.needs_sizes else None

    def prepare(self, progress: bool = False) -> None:
        """Read what planning needs once in this process (budget batching: every shard's node
        counts, kept as per-block histograms), so that DataLoader workers inherit it."""
        if self.sampler.batch.needs_sizes:
            self.sampler.summarize(self.n_node_of, progress)

    def intervals(self, epoch: int | None = None, levels: list | None = None) -> np.ndarray | None:
        """What is left of ``epoch`` after its earlier partitions (None = the whole epoch)."""
        epoch = self.epoch if epoch is None else int(epoch)
        if levels is None:
            levels = self.levels if epoch == self.epoch else []
        return self.sampler.intervals(self.plan(epoch), levels, self._need()) if levels else None

    def n_batches(self, epoch: int | None = None, levels: list | None = None) -> int:
        """Batches per rank in ``epoch`` (the same on every rank; a resumed epoch: what is left
        of it after its earlier partitions)."""
        plan = self.plan(epoch)
        return self.sampler.n_batches(plan, self.world_size, self._need(), self.num_workers,
                                      self.intervals(plan.epoch, levels))

    def __len__(self) -> int:
        return self.n_batches()

    # ------------------------------------------------------------------ reading (the WindowSource face)
    def shard_info(self, source: int, shard: int):
        """The ``ShardInfo`` of shard ``shard`` of source ``source`` in this split."""
        return self._infos[source][shard]

    def read_columns(self, blk: Block, store=None):
        """The stored ``layouts.Columns`` of block ``blk`` from the dataset's store of its source (through the
        remote shard cache), or from ``store`` (an aligned view of it), length checked (errors name the shard)."""
        return self._block(blk, store, columns=True)

    def read_record(self, blk: Block, store=None) -> dict[str, np.ndarray]:
        """Record columns of block ``blk`` from the dataset's store of its source, or from ``store`` (an
        aligned view of it), length checked (errors name the store and shard)."""
        return self._block(blk, store, columns=False)

    def _block(self, blk: Block, store, columns: bool):
        """Columns (``columns``) or record columns of ``blk``: the one read + length check of both faces."""
        own = store is None
        if own:
            store, info = self.stores[blk.source], self._infos[blk.source][blk.shard]
        else:
            info = store.shards(self.split)[blk.shard]
        if columns:
            got = (self._read(blk.source, blk.shard, blk.start, blk.stop, columns=True) if own
                   else store.read_columns(info, blk.start, blk.stop))
            n, what = got.n_events, f"shard {info.path}"
        else:
            got = store.read_record(info, blk.start, blk.stop)
            n, what = got["event_id"].shape[0], f"record shard of {info.path}"
        if n != blk.stop - blk.start:
            raise StoreError(f"{store.url}: {what} gave {n} events for rows [{blk.start}, {blk.stop})")
        return got

    def _read(self, source: int, shard: int, start: int, stop: int | None, columns: bool = False):
        """``ShardData`` of rows ``[start, stop)`` (``columns``: the stored ``layouts.Columns``)."""
        store, info = self.stores[source], self._infos[source][shard]
        if self._cache is not None and not _is_local(store):
            return self._cache.read(store, info, start, stop, columns)
        return (store.read_columns if columns else store.read_shard)(info, start, stop)

    def _read_window(self, plan: EpochPlan, w: int):
        """Read the blocks of window ``w`` and permute its events into stream order (the representation's window)."""
        blocks = [Block(int(plan.block_source[b]), int(plan.block_shard[b]), int(plan.block_start[b]),
                        int(plan.block_stop[b])) for b in plan.window_blocks_of(w)]
        return self.representation.read_window(self, blocks, plan.window_perm(w))

    def _batch(self, plan: EpochPlan, win, w: int, p0: int, p1: int, seed_key: tuple):
        """Pack stream positions [p0, p1) of window ``w`` (loaded as ``win``) into one batch."""
        if win is None:  # an empty batch (a worker range without events)
            win, a, b = self.representation.empty_window(self), 0, 0
        else:
            a, b = p0 - int(plan.window_pos[w]), p1 - int(plan.window_pos[w])
        return self.representation.batch(self, win, a, b, (self.sampler.seed, plan.epoch, *seed_key))

    # ------------------------------------------------------------------ iteration
    def __iter__(self):
        info = get_worker_info()
        in_main = info is None
        worker, num_workers = (0, 0) if in_main else (info.id, info.num_workers)
        # workers start where the iteration started, not at the live position (which the main
        # process moves as batches arrive, possibly before a slow worker has begun)
        epoch, consumed, levels = (self.epoch, self.consumed, self.levels) if in_main else self._start()
        plan = self.plan(epoch)
        need = self._need()
        iv = self.intervals(epoch, levels)
        total = self.sampler.n_batches(plan, self.world_size, need, num_workers, iv)
        a = self.sampler.assignment(plan, self.rank, self.world_size, worker, num_workers, consumed, need, iv)
        # segments from the one holding batch `first`; each lies in one window, windows ascend
        ends = np.cumsum(a.seg_target)
        s0 = int(np.searchsorted(ends, a.first, side="right"))
        segs = list(range(s0, len(a.seg_target)))
        order = list(dict.fromkeys(int(a.seg_win[i]) for i in segs if a.seg_win[i] >= 0))
        prefetch = self.prefetch if self.prefetch is not None else not all(_is_local(s) for s in self.stores)
        pool = ThreadPoolExecutor(1) if prefetch else None
        pending: dict[int, Future] = {}
        nxt = 0

        def get(w: int):
            nonlocal nxt
            while order[nxt] != w:
                nxt += 1
            fut = pending.pop(w, None)
            win = fut.result() if fut is not None else self._read_window(plan, w)
            if pool is not None and nxt + 1 < len(order):  # read the next window in the background meanwhile
                pending[order[nxt + 1]] = pool.submit(self._read_window, plan, order[nxt + 1])
            return win

        level = len(levels)
        j = int(ends[s0 - 1]) if s0 else 0  # local batch index within the worker range
        k = 0
        win, w_loaded = None, -1
        try:
            for i in segs:
                w, p0, p1, t = int(a.seg_win[i]), int(a.seg_a[i]), int(a.seg_b[i]), int(a.seg_target[i])
                if w >= 0 and w != w_loaded:
                    win, w_loaded = None, -1  # free the window passed before reading the next
                    win, w_loaded = get(w), w
                cur = win if w >= 0 else None
                counts = None
                if need is not None and cur is not None:
                    w0 = int(plan.window_pos[w])
                    counts = np.diff(cur.offsets[p0 - w0:p1 - w0 + 1])
                bounds = p0 + counts_to_offsets(self.sampler.segment_sizes(p1 - p0, t, counts))
                for x in range(t):
                    if j >= a.first:
                        bid = int(a.batch_ids[k])
                        out = self._batch(plan, cur, w, int(bounds[x]), int(bounds[x + 1]), (level, self.rank, bid))
                        k += 1
                        if in_main:  # a DataLoader worker's copy must not move the shared state
                            self._set_state(epoch, consumed + k, progress=True)
                            yield out
                        else:  # one pickled buffer per batch through the worker's pipe
                            yield PackedBatch.pack(out)
                    j += 1
            if in_main and consumed + k == total:
                self._set_state(epoch + 1, 0, [])
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)



def _levels(row: torch.Tensor) -> list[list[int]]:
    n = int(row[2])
    return [[int(x) for x in row[3 + 3 * i:6 + 3 * i]] for i in range(n)]


def validate_state(state: Any) -> dict[str, Any]:
    """A loader state checked as untrusted input: a JSON object (or its text) with the known
    keys only, JSON types (no bools for numbers), values within bounds; returns the values.
    Raises :class:`LoaderStateError` naming the offending key."""
    import json

    if isinstance(state, (str, bytes)):
        if len(state) > 1 << 16:
            raise LoaderStateError(f"loader state: {len(state)} bytes of JSON, more than a state holds")
        try:
            state = json.loads(state)
        except ValueError as exc:
            raise LoaderStateError(f"loader state: not JSON ({exc})") from None
    if not isinstance(state, Mapping):
        raise LoaderStateError(f"loader state: expected a JSON object, got {type(state).__name__}")
    if state.get("format") != STATE_FORMAT:
        raise LoaderStateError(f"not a loader state: key 'format' is {str(state.get('format'))[:80]!r}, "
                               f"expected {STATE_FORMAT!r}")
    unknown = sorted(str(k)[:40] for k in state if k not in _STATE_KEYS)
    if unknown:
        raise LoaderStateError(f"loader state: unknown key(s) {unknown}")
    out: dict[str, Any] = {}
    for key, (lo, hi) in _STATE_LIMITS.items():
        if key not in state:
            raise LoaderStateError(f"loader state: key {key!r} is missing")
        out[key] = _int_in(state[key], lo, hi, repr(key))
    fp = state.get("fingerprint")
    if not isinstance(fp, str) or len(fp) != 16 or any(c not in "0123456789abcdef" for c in fp):
        raise LoaderStateError(f"loader state key 'fingerprint': expected 16 hex digits, got {str(fp)[:40]!r}")
    out["fingerprint"] = fp
    levels = state.get("levels", [])
    if not isinstance(levels, list) or len(levels) > MAX_LEVELS:
        raise LoaderStateError(f"loader state key 'levels': expected a list of at most {MAX_LEVELS} "
                               f"[world_size, num_workers, consumed], got {str(levels)[:80]}")
    out["levels"] = []
    for i, lv in enumerate(levels):
        if not isinstance(lv, list) or len(lv) != 3:
            raise LoaderStateError(f"loader state key 'levels'[{i}]: expected [world_size, num_workers, consumed], "
                                   f"got {str(lv)[:80]}")
        out["levels"].append([_int_in(x, *_STATE_LIMITS[name], f"'levels'[{i}].{name}")
                              for x, name in zip(lv, ("world_size", "num_workers", "consumed"))])
    for key, (w, k) in [("'world_size'", (out["world_size"], out["num_workers"]))] + [
            (f"'levels'[{i}]", (lv[0], lv[1])) for i, lv in enumerate(out["levels"])]:
        if w * max(k, 1) > _MAX_GROUPS:
            raise LoaderStateError(f"loader state key {key}: {w} ranks x {k} workers, more than {_MAX_GROUPS}")
    if out["rank"] >= out["world_size"]:
        raise LoaderStateError(f"loader state key 'rank': {out['rank']} outside 0..{out['world_size'] - 1}")
    return out


def _int_in(v: Any, lo: int, hi: int, key: str) -> int:
    if type(v) is not int:  # JSON integers only: no bool, float, str or numpy scalar
        raise LoaderStateError(f"loader state key {key}: expected an integer, got {type(v).__name__} {str(v)[:40]}")
    if not lo <= v <= hi:
        raise LoaderStateError(f"loader state key {key}: {v} outside [{lo}, {hi}]")
    return v


def _is_local(store) -> bool:
    from hepfm_data.sources.fs import is_local

    return is_local(store.fs)


def _largest_remainder(x: np.ndarray, total: int) -> list[int]:
    """Integers proportional to ``x`` summing to ``total`` (largest-remainder rounding)."""
    base = np.floor(x).astype(np.int64)
    rest = total - int(base.sum())
    order = np.argsort(-(x - base), kind="stable")
    base[order[:rest]] += 1
    return [int(v) for v in base]
