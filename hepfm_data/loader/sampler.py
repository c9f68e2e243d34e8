"""The epoch plan: which event goes to which rank, worker and batch. Pure index arithmetic, no I/O.

Vocabulary (lhotse-style: the sampler knows sizes, never data):

* a **block** is a contiguous row range ``[start, stop)`` of one shard of one source
  (a store = one process); blocks are the unit of I/O and of the block shuffle;
* the **epoch stream** is the sequence of all planned events of an epoch: blocks in a
  (seed, epoch)-shuffled, source-interleaved order, grouped into **windows** of
  ``window_blocks`` blocks whose events are permuted by (seed, epoch, window);
* a **partition** (``world_size`` ranks x ``num_workers`` DataLoader workers) of a
  sub-stream (the whole epoch, or what a resumed epoch has left: sorted stream intervals)
  splits it into contiguous **rank ranges** (sizes differ by at most one event), each into
  contiguous **worker ranges** (balanced, moved to a window start when that costs at most
  a quarter of a share, so each window is read by one worker);
* **segments** = those ranges cut at window starts and interval starts: each lies in one
  window, and batches never straddle a segment. A segment's batch count (its **target**)
  is fixed from sizes alone: ``ceil(n / batch_size)`` for count batching; for a node/edge
  budget an upper bound from per-block histograms of node counts (exact packing where a
  segment is part of a window). A segment is packed greedily from its own node counts and
  its largest batches are split until it has its target (splits keep every budget), so a
  process plans one window at a time and only its own; every rank gets the same batch
  count (the per-rank maximum; a rank's extra splits spread over its segments);
* ``torch.utils.data.DataLoader`` reads workers round robin (skipping an exhausted one),
  which gives the **rank order**; ``consumed`` batches of that order are the resumable
  state. Resumed with the same partition, the workers are rotated to continue the order;
  resumed with another (elastic), every rank and worker of the old partition has delivered
  a prefix of its range: the rest of the epoch is those ranges' remainders, re-partitioned.

Every number here is a function of (sizes, node counts, config, seed, epoch, partitions,
consumed): every process computes the same plan without communicating.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import HepfmError

__all__ = ["BatchSpec", "EpochPlan", "Partition", "StreamSampler", "WorkerAssignment"]

#: node counts at or above this go to a block histogram's tail (kept as sums)
HIST_CAP = 64
#: ``n_node_of(source, shard, start, stop)`` -> [stop - start] node counts of those rows
NodeCounts = Callable[[int, int, int, int], np.ndarray]


@dataclass(frozen=True)
class BatchSpec:
    """How to cut a rank's events into batches.

    ``batch_size``: at most this many events per batch; ``max_nodes`` / ``max_edges``:
    node / directed-edge budget per batch (an event of n nodes has n (n - 1) edges).
    At least one must be set. Budgets need the node count of every event (see
    :meth:`StreamSampler.plan`).
    """

    batch_size: int | None = 256
    max_nodes: int | None = None
    max_edges: int | None = None

    def __post_init__(self):
        for name in ("batch_size", "max_nodes", "max_edges"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise HepfmError(f"{name} must be a positive integer or None, got {v!r}")
        if self.batch_size is None and self.max_nodes is None and self.max_edges is None:
            raise HepfmError("set batch_size, max_nodes or max_edges (all are None)")

    @property
    def needs_sizes(self) -> bool:
        """True when batching needs per-event node counts (a node or edge budget)."""
        return self.max_nodes is not None or self.max_edges is not None


@dataclass
class WorkerAssignment:
    """What one (rank, worker) iterates: batches ``first, first + 1, ...`` of worker range
    ``group`` of the rank (rank-order ids ``batch_ids``), over that range's segments
    ``seg_a/seg_b`` [S] (stream positions), ``seg_win`` [S] (window, -1 = an empty
    segment of empty batches) and ``seg_target`` [S] (batches per segment)."""

    rank: int
    worker: int
    group: int
    first: int
    batch_ids: np.ndarray
    seg_a: np.ndarray
    seg_b: np.ndarray
    seg_win: np.ndarray
    seg_target: np.ndarray


@dataclass
class EpochPlan:
    """The epoch stream of one epoch (see the module docstring).

    ``block_source/shard/start/stop`` [NB] list the blocks in stream order, ``block_row``
    [NB] their row in the sampler's block table; ``block_pos`` [NB+1] their first stream
    position; ``window_pos`` [NW+1] likewise for windows (window ``w`` = blocks
    ``w*window_blocks ...``).
    """

    seed: int
    epoch: int
    shuffle: bool
    window_blocks: int
    block_source: np.ndarray
    block_shard: np.ndarray
    block_start: np.ndarray
    block_stop: np.ndarray
    block_row: np.ndarray
    block_pos: np.ndarray
    window_pos: np.ndarray
    _perm_cache: dict = field(default_factory=dict, repr=False)
    _count_cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_events(self) -> int:
        return int(self.block_pos[-1])

    @property
    def n_windows(self) -> int:
        return len(self.window_pos) - 1

    def window_blocks_of(self, w: int) -> range:
        """Indices (into the block arrays) of the blocks of window ``w``."""
        return range(w * self.window_blocks, min((w + 1) * self.window_blocks, len(self.block_source)))

    def window_perm(self, w: int) -> np.ndarray:
        """[n] int64: stream position ``window_pos[w] + i`` is event ``perm[i]`` of the
        window's blocks concatenated in block order."""
        perm = self._perm_cache.get(w)
        if perm is None:
            n = int(self.window_pos[w + 1] - self.window_pos[w])
            if self.shuffle:
                perm = np.random.default_rng([self.seed, self.epoch, 1, w]).permutation(n)
            else:
                perm = np.arange(n, dtype=np.int64)
            if len(self._perm_cache) > 2:  # bounded: a few windows at a time
                self._perm_cache.clear()
            self._perm_cache[w] = perm
        return perm

    def window_counts(self, w: int, n_node_of: NodeCounts) -> np.ndarray:
        """[n] int16 node counts of window ``w``'s events in stream order (the last one is cached)."""
        if w not in self._count_cache:
            parts = [np.asarray(n_node_of(int(self.block_source[b]), int(self.block_shard[b]),
                                          int(self.block_start[b]), int(self.block_stop[b])), dtype=np.int16)
                     for b in self.window_blocks_of(w)]
            self._count_cache.clear()
            self._count_cache[w] = (np.concatenate(parts) if parts else np.zeros(0, np.int16))[self.window_perm(w)]
        return self._count_cache[w]

    def locate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(source, shard, row) [n] of the events at epoch-stream ``positions`` [n]."""
        positions = np.asarray(positions, dtype=np.int64)
        src = np.empty(len(positions), np.int64)
        shard = np.empty(len(positions), np.int64)
        row = np.empty(len(positions), np.int64)
        win = np.searchsorted(self.window_pos, positions, side="right") - 1
        for w in np.unique(win):
            sel = np.nonzero(win == w)[0]
            local = self.window_perm(int(w))[positions[sel] - self.window_pos[w]]
            blocks = np.asarray(self.window_blocks_of(int(w)))
            bpos = self.block_pos[blocks] - self.block_pos[blocks[0]]
            b = blocks[np.searchsorted(bpos, local, side="right") - 1]
            src[sel] = self.block_source[b]
            shard[sel] = self.block_shard[b]
            row[sel] = self.block_start[b] + local - (self.block_pos[b] - self.block_pos[blocks[0]])
        return src, shard, row


@dataclass
class Partition:
    """Batches of a (sub-)stream for ``world_size`` ranks x ``num_workers`` workers.

    ``intervals`` [n, 2]: the sub-stream (stream positions). Segments, ordered by worker
    range ``seg_group`` (= rank * k + worker, k = max(num_workers, 1)) then position:
    ``seg_a``/``seg_b`` [S] stream range, ``seg_win`` [S] window (-1: empty), ``seg_target``
    [S] batch count. ``worker_batches`` [W, k]: batches of each worker range (rows sum to the
    same count on every rank).
    """

    world_size: int
    num_workers: int
    intervals: np.ndarray
    seg_a: np.ndarray
    seg_b: np.ndarray
    seg_win: np.ndarray
    seg_group: np.ndarray
    seg_target: np.ndarray
    worker_batches: np.ndarray

    @property
    def k(self) -> int:
        return max(self.num_workers, 1)

    @property
    def n_batches(self) -> int:
        """Batches per rank (equal on every rank)."""
        return int(self.worker_batches[0].sum()) if len(self.worker_batches) else 0

    def groups(self, rank: int) -> np.ndarray:
        """[k+1] batch ids of ``rank``: worker range w owns ``groups[w]:groups[w + 1]``."""
        return counts_to_offsets(self.worker_batches[rank])

    def segments_of(self, rank: int, worker: int) -> slice:
        g = rank * self.k + worker
        lo, hi = np.searchsorted(self.seg_group, [g, g + 1])
        return slice(int(lo), int(hi))


class StreamSampler:
    """Plans epochs over sources of sharded events (see the module docstring).

    ``shard_sizes[s][k]``: events in shard ``k`` of source ``s``. ``quotas[s]``: events of
    source ``s`` per epoch (None = all, each exactly once; a quota below the source size
    takes a (seed, epoch)-dependent subset of whole blocks, trimmed; above, blocks
    repeat). ``block_size`` events per block; ``window_blocks`` blocks shuffled together.
    Budget batching needs :meth:`summarize` (node-count histograms per block, read once
    per process; the sampler pickles them to DataLoader workers).
    """

    def __init__(self, shard_sizes: Sequence[Sequence[int]], batch: BatchSpec, *, seed: int = 0,
                 shuffle: bool = True, block_size: int = 2048, window_blocks: int = 16,
                 quotas: Sequence[int] | None = None):
        if block_size < 1 or window_blocks < 1:
            raise HepfmError(f"block_size and window_blocks must be >= 1, got {block_size}, {window_blocks}")
        self.shard_sizes = [np.asarray(s, dtype=np.int64) for s in shard_sizes]
        for s, sizes in enumerate(self.shard_sizes):
            if sizes.ndim != 1 or (sizes < 0).any():
                raise HepfmError(f"source {s}: shard sizes must be non-negative integers, got {sizes.tolist()}")
        if quotas is not None:
            if len(quotas) != len(self.shard_sizes) or any(int(q) < 0 for q in quotas):
                raise HepfmError(f"quotas must be one non-negative count per source, got {list(quotas)}")
            for s, q in enumerate(quotas):
                if q > 0 and self.shard_sizes[s].sum() == 0:
                    raise HepfmError(f"source {s} has no events but a quota of {q}")
        self.batch, self.seed, self.shuffle = batch, int(seed), bool(shuffle)
        self.block_size, self.window_blocks = int(block_size), int(window_blocks)
        self.quotas = None if quotas is None else [int(q) for q in quotas]
        self._blocks = [self._source_blocks(s) for s in range(len(self.shard_sizes))]
        self._row0 = counts_to_offsets([len(b) for b in self._blocks])  # first block-table row per source
        self.summary: dict[str, np.ndarray] | None = None
        self._cache: dict = {}

    def fingerprint(self) -> str:
        """Hash of everything the plan depends on (checked when a state is loaded)."""
        doc = {"sizes": [s.tolist() for s in self.shard_sizes], "batch": [self.batch.batch_size,
               self.batch.max_nodes, self.batch.max_edges], "seed": self.seed, "shuffle": self.shuffle,
               "block": self.block_size, "window": self.window_blocks, "quotas": self.quotas}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def _source_blocks(self, s: int) -> np.ndarray:
        """[nb, 3] (shard, start, stop) of source ``s`` in storage order."""
        rows = []
        for k, n in enumerate(self.shard_sizes[s]):
            starts = np.arange(0, int(n), self.block_size, dtype=np.int64)
            rows.append(np.stack([np.full_like(starts, k), starts, np.minimum(starts + self.block_size, n)], 1))
        return np.concatenate(rows) if rows else np.zeros((0, 3), np.int64)

    # ------------------------------------------------------------------ node-count summary
    def summarize(self, n_node_of: NodeCounts, progress: bool = False) -> None:
        """Per-block histograms of node counts (bins 0..HIST_CAP-1, then the tail's count,
        node and edge sums) and maxima, from every shard's node counts read once (one shard
        in memory at a time). Needed by budget batching; independent of the batch spec."""
        if self.summary is not None:
            return
        from tqdm.auto import tqdm

        nb_all = int(self._row0[-1])
        hist = np.zeros((nb_all, HIST_CAP + 1), np.int32)
        tail = np.zeros((nb_all, 2), np.float64)
        bmax = np.zeros(nb_all, np.int32)
        jobs = [(s, k, int(n)) for s, sizes in enumerate(self.shard_sizes) for k, n in enumerate(sizes) if n]
        for s, k, n in tqdm(jobs, desc="node counts", unit=" shard", disable=not progress):
            c = np.asarray(n_node_of(s, k, 0, n))
            if c.shape != (n,) or (len(c) and c.min() < 0):
                raise HepfmError(f"source {s}, shard {k}: {c.shape} node counts (min {c.min() if len(c) else 0}) "
                                 f"for {n} events")
            r0 = int(np.searchsorted(self._blocks[s][:, 0], k)) + int(self._row0[s])  # the shard's first block
            _block_summary(c, self.block_size, r0, hist, tail, bmax)
        self.summary = {"hist": hist, "tail": tail, "max": bmax}

    # ------------------------------------------------------------------ epoch stream
    def plan(self, epoch: int) -> EpochPlan:
        """The epoch stream of ``epoch`` (blocks shuffled and interleaved by source)."""
        rng = np.random.default_rng([self.seed, int(epoch), 0])
        per_source, keys = [], []
        for s, blocks in enumerate(self._blocks):
            order = rng.permutation(len(blocks)) if self.shuffle else np.arange(len(blocks))
            rows = np.column_stack([blocks, np.arange(len(blocks))])
            chosen = rows[order]
            if self.quotas is not None:
                chosen = _take_quota(rows, order, self.quotas[s])
            n = len(chosen)
            jitter = rng.random(n) if self.shuffle else np.full(n, 0.5)
            per_source.append(np.column_stack([np.full(n, s), chosen]) if n else np.zeros((0, 5), np.int64))
            keys.append((np.arange(n) + jitter) / max(n, 1))
        allb = np.concatenate(per_source) if per_source else np.zeros((0, 5), np.int64)
        key = np.concatenate(keys) if keys else np.zeros(0)
        allb = allb[np.lexsort((allb[:, 0], key))].astype(np.int64)  # spread each source over the epoch
        sizes = allb[:, 3] - allb[:, 2]
        block_pos = counts_to_offsets(sizes)
        window_pos = block_pos[::self.window_blocks]
        if window_pos[-1] != block_pos[-1] or len(window_pos) == 1:
            window_pos = np.append(window_pos, block_pos[-1])
        row = self._row0[allb[:, 0]] + allb[:, 4] if len(allb) else np.zeros(0, np.int64)
        return EpochPlan(self.seed, int(epoch), self.shuffle, self.window_blocks, allb[:, 0].copy(),
                         allb[:, 1].copy(), allb[:, 2].copy(), allb[:, 3].copy(), row, block_pos, window_pos)

    # ------------------------------------------------------------------ partition
    def partition(self, plan: EpochPlan, world_size: int, num_workers: int, intervals: np.ndarray | None = None,
                  n_node_of: NodeCounts | None = None) -> Partition:
        """Segments and batch counts of ``intervals`` (default: the whole epoch) for
        ``world_size`` ranks x ``num_workers`` workers (cached: one partition per sampler)."""
        _check_rank(0, world_size)
        iv = np.array([[0, plan.n_events]], np.int64) if intervals is None else np.asarray(intervals, np.int64)
        if len(iv) == 0:  # nothing left
            iv = np.zeros((1, 2), np.int64)
        key = (plan.epoch, world_size, num_workers, iv.tobytes())
        hit = self._cache.get("partition")
        if hit is not None and hit[0] == key:
            return hit[1]
        if self.batch.needs_sizes:
            if n_node_of is None and self.summary is None:
                raise HepfmError("batching by node/edge budget needs the node count of every event (n_node_of)")
            if self.summary is None:
                self.summarize(n_node_of)
            self._check_budget(plan, n_node_of)
        part = self._partition(plan, world_size, num_workers, iv, n_node_of)
        self._cache["partition"] = (key, part)
        return part

    def _check_budget(self, plan: EpochPlan, n_node_of) -> None:
        """An event larger than the budget: HepfmError naming its source, shard and row."""
        spec, m = self.batch, self.summary["max"][plan.block_row].astype(np.int64)
        bad = np.zeros(len(m), bool)
        if spec.max_nodes is not None:
            bad |= m > spec.max_nodes
        if spec.max_edges is not None:
            bad |= m * (m - 1) > spec.max_edges
        if not bad.any():
            return
        b = int(np.argmax(bad))
        s, k, a, z = (int(x[b]) for x in (plan.block_source, plan.block_shard, plan.block_start, plan.block_stop))
        c = np.asarray(n_node_of(s, k, a, z), dtype=np.int64) if n_node_of is not None else None
        row = a + int(np.argmax(c == m[b])) if c is not None else a
        n = int(m[b])
        raise HepfmError(f"source {s}, shard {k}, row {row}: an event of {n} nodes ({n * (n - 1)} edges) exceeds "
                         f"the batch budget max_nodes={spec.max_nodes}, max_edges={spec.max_edges}")

    def _partition(self, plan: EpochPlan, world: int, num_workers: int, iv: np.ndarray, n_node_of) -> Partition:
        k = max(num_workers, 1)
        lens = iv[:, 1] - iv[:, 0]
        cum = counts_to_offsets(lens)  # sub-stream position of each interval start
        total = int(cum[-1])
        # natural cuts (sub-stream): window starts and interval starts
        wp = plan.window_pos[1:-1]
        j = np.searchsorted(iv[:, 0], wp, side="right") - 1
        inside = (j >= 0) & (wp < iv[np.maximum(j, 0), 1])
        wq = np.where(inside, cum[np.maximum(j, 0)] + wp - iv[np.maximum(j, 0), 0], cum[j + 1])
        cuts = np.unique(np.concatenate([wq, cum[1:-1]]))
        cuts = cuts[(cuts > 0) & (cuts < total)]
        # worker ranges of each rank: balanced, snapped to a natural cut when cheap
        gb = np.zeros(world * k + 1, np.int64)
        for r in range(world):
            lo, hi = r * total // world, (r + 1) * total // world
            even = lo + np.arange(k + 1) * (hi - lo) // k
            cand = cuts[(cuts > lo) & (cuts < hi)]
            if len(cand) and k > 1:
                near = cand[np.clip(np.searchsorted(cand, even[1:-1]), 0, len(cand) - 1)]
                near2 = cand[np.clip(np.searchsorted(cand, even[1:-1]) - 1, 0, len(cand) - 1)]
                near = np.where(np.abs(near2 - even[1:-1]) < np.abs(near - even[1:-1]), near2, near)
                snap = np.abs(near - even[1:-1]) <= (hi - lo) / k / 4
                even[1:-1] = np.where(snap, near, even[1:-1])
            gb[r * k:(r + 1) * k + 1] = np.maximum.accumulate(even)
        bounds = np.unique(np.concatenate([cuts, gb, [0, total]]))
        qa, qb = bounds[:-1], bounds[1:]
        group = np.searchsorted(gb, qa, side="right") - 1
        ii = np.searchsorted(cum, qa, side="right") - 1
        a = iv[ii, 0] + qa - cum[ii] if len(qa) else np.zeros(0, np.int64)
        b = a + (qb - qa)
        win = np.searchsorted(plan.window_pos, a, side="right") - 1
        target = self._targets(plan, a, b, win, n_node_of)
        # every rank the same batch count (the maximum): extra splits spread over the rank's segments
        tot = np.bincount(group, weights=target, minlength=world * k).astype(np.int64).reshape(world, k)
        extra = tot.sum(1).max(initial=0) - tot.sum(1)
        rank = group // k
        nseg = np.bincount(rank, minlength=world)
        first = counts_to_offsets(nseg)[:-1]
        if len(group):
            jj = np.arange(len(group)) - first[rank]
            x, sg = extra[rank], nseg[rank]
            target = target + (jj + 1) * x // sg - jj * x // sg
        empty = np.nonzero((nseg == 0) & (extra > 0))[0]  # a rank without events: empty batches (worker 0)
        if len(empty):
            pos = np.array([iv[min(np.searchsorted(cum, gb[r * k], side="right") - 1, len(iv) - 1), 0] for r in empty])
            a, b = np.concatenate([a, pos]), np.concatenate([b, pos])
            win = np.concatenate([win, np.full(len(empty), -1)])
            group = np.concatenate([group, empty * k])
            target = np.concatenate([target, extra[empty]])
            o = np.argsort(group, kind="stable")
            a, b, win, group, target = a[o], b[o], win[o], group[o], target[o]
        per_worker = np.bincount(group, weights=target, minlength=world * k).astype(np.int64).reshape(world, k)
        return Partition(world, num_workers, iv, a.astype(np.int64), b.astype(np.int64), win.astype(np.int64),
                         group.astype(np.int64), target.astype(np.int64), per_worker.astype(np.int64))

    def _targets(self, plan: EpochPlan, a: np.ndarray, b: np.ndarray, win: np.ndarray, n_node_of) -> np.ndarray:
        """[S] batch count of each segment: exact for count batching and for parts of windows,
        else the histogram bound (see the module docstring)."""
        spec, n = self.batch, b - a
        if not spec.needs_sizes:
            return -(-n // spec.batch_size)
        out = np.zeros(len(a), np.int64)
        whole = (a == plan.window_pos[win]) & (b == plan.window_pos[win + 1])
        for i in np.nonzero(whole)[0]:
            out[i] = self._window_bound(plan, int(win[i]), int(n[i]))
        for i in np.nonzero(~whole)[0]:  # grouped by window: one window's counts at a time
            c = plan.window_counts(int(win[i]), n_node_of)
            w0 = int(plan.window_pos[win[i]])
            out[i] = len(self._pack(c[a[i] - w0:b[i] - w0]))
        return out

    def _window_bound(self, plan: EpochPlan, w: int, n: int) -> int:
        """Upper bound on the greedy batch count of window ``w``: every closed batch has
        ``sum(u) >= 1`` with ``u = max(1/batch_size, nodes/(max_nodes - m + 1),
        edges/(max_edges - m(m-1) + 1))`` per event (m = largest event of the window)."""
        rows = plan.block_row[np.asarray(plan.window_blocks_of(w))]
        sm = self.summary
        h = sm["hist"][rows].sum(0, dtype=np.int64)
        tn, te = sm["tail"][rows].sum(0)
        m = int(sm["max"][rows].max())
        spec, v = self.batch, np.arange(HIST_CAP, dtype=np.float64)
        u = np.zeros(HIST_CAP)
        tail = 0.0
        if spec.batch_size is not None:
            u = np.maximum(u, 1.0 / spec.batch_size)
            tail += h[HIST_CAP] / spec.batch_size
        if spec.max_nodes is not None:
            bp = spec.max_nodes - m + 1
            u = np.maximum(u, v / bp)
            tail += tn / bp
        if spec.max_edges is not None:
            ep = spec.max_edges - m * (m - 1) + 1
            u = np.maximum(u, v * (v - 1) / ep)
            tail += te / ep
        bound = float(h[:HIST_CAP] @ u) + tail
        return min(n, int(bound * (1 + 1e-9) + 1e-9) + 1)

    def _pack(self, counts: np.ndarray) -> np.ndarray:
        spec = self.batch
        sizes, bad = _pack(np.asarray(counts, dtype=np.int64), _lim(spec.batch_size), _lim(spec.max_nodes),
                           _lim(spec.max_edges))
        if bad >= 0:
            raise HepfmError(f"an event of {int(counts[bad])} nodes exceeds the batch budget {spec}")
        return sizes

    def segment_sizes(self, n: int, target: int, counts: np.ndarray | None = None) -> np.ndarray:
        """[target] batch sizes (events) of a segment of ``n`` events: greedy packing of its
        node ``counts`` (stream order; unused for count batching), largest batches split
        until there are ``target`` (empty batches only when ``target > n``)."""
        spec = self.batch
        if n == 0:
            return np.zeros(target, np.int64)
        if not spec.needs_sizes:
            k = -(-n // spec.batch_size)
            sizes = np.full(k, spec.batch_size, np.int64)
            if k:
                sizes[-1] = n - (k - 1) * spec.batch_size
        else:
            sizes = self._pack(counts)
        if len(sizes) > target:
            raise HepfmError(f"segment of {n} events packs into {len(sizes)} batches, more than its {target}")
        return _equalize(sizes, target)

    def remaining(self, plan: EpochPlan, part: Partition, consumed: int, n_node_of: NodeCounts | None = None
                  ) -> np.ndarray:
        """[m, 2] stream intervals not yet delivered after ``consumed`` batches of every rank's
        order in ``part`` (each worker range delivered a prefix of its batches)."""
        if not 0 <= consumed <= part.n_batches:
            raise HepfmError(f"consumed={consumed} is outside this epoch's {part.n_batches} batches")
        out = []
        for r in range(part.world_size):
            owner = rank_order(part.groups(r))[1]
            done = np.bincount(owner[:consumed], minlength=part.k)
            for w in range(part.k):
                sl = part.segments_of(r, w)
                ct = counts_to_offsets(part.seg_target[sl])
                d = int(done[w])
                if d >= int(ct[-1]):
                    continue
                j = int(np.searchsorted(ct, d, side="right") - 1)
                i = sl.start + j
                p = int(part.seg_a[i])
                if d > ct[j] and part.seg_win[i] >= 0:
                    n = int(part.seg_b[i] - part.seg_a[i])
                    c = None
                    if self.batch.needs_sizes:
                        w0 = int(plan.window_pos[part.seg_win[i]])
                        c = plan.window_counts(int(part.seg_win[i]), n_node_of)[p - w0:p - w0 + n]
                    p += int(self.segment_sizes(n, int(part.seg_target[i]), c)[:d - ct[j]].sum())
                out.append((p, int(part.seg_b[i])))
                out += [(int(x), int(y)) for x, y in zip(part.seg_a[i + 1:sl.stop], part.seg_b[i + 1:sl.stop])]
        out = sorted((x, y) for x, y in out if y > x)
        merged: list[list[int]] = []
        for x, y in out:
            if merged and merged[-1][1] == x:
                merged[-1][1] = y
            else:
                merged.append([x, y])
        return np.array(merged, np.int64).reshape(-1, 2)

    def intervals(self, plan: EpochPlan, levels: Sequence[Sequence[int]], n_node_of: NodeCounts | None = None
                  ) -> np.ndarray | None:
        """What is left of the epoch after earlier partitions ``levels`` [(world_size,
        num_workers, consumed), ...] (None = the whole epoch)."""
        iv = None
        for world, workers, consumed in levels:
            part = self.partition(plan, int(world), int(workers), iv, n_node_of)
            iv = self.remaining(plan, part, int(consumed), n_node_of)
        return iv

    def n_batches(self, plan: EpochPlan, world_size: int, n_node_of=None, num_workers: int = 0,
                  intervals: np.ndarray | None = None) -> int:
        """Batches per rank in this epoch (equal for every rank)."""
        return self.partition(plan, world_size, num_workers, intervals, n_node_of).n_batches

    def assignment(self, plan: EpochPlan, rank: int, world_size: int, worker: int, num_workers: int,
                   consumed: int = 0, n_node_of=None, intervals: np.ndarray | None = None) -> WorkerAssignment:
        """The batches DataLoader worker ``worker`` of ``num_workers`` (0 = main process) must
        yield so that the rank order continues after its first ``consumed`` batches."""
        _check_rank(rank, world_size)
        part = self.partition(plan, world_size, num_workers, intervals, n_node_of)
        groups = part.groups(rank)
        order, owner = rank_order(groups)
        if not 0 <= consumed <= len(order):
            raise HepfmError(f"consumed={consumed} is outside this epoch's {len(order)} batches")
        rest, rest_owner = order[consumed:], owner[consumed:]
        k = part.k
        _check_rank(worker, k, "worker")
        # the resumed DataLoader starts its round robin at worker 0: rotate so that the
        # next batch of the interrupted order comes first (round robin is rotation-invariant)
        start = int(rest_owner[0]) if len(rest) else 0
        g = (start + worker) % k
        mine = rest[rest_owner == g]
        first = int(mine[0] - groups[g]) if len(mine) else int(part.worker_batches[rank, g])
        sl = part.segments_of(rank, g)
        return WorkerAssignment(rank, worker, g, first, mine, part.seg_a[sl], part.seg_b[sl], part.seg_win[sl],
                                part.seg_target[sl])

    def batches(self, plan: EpochPlan, a: WorkerAssignment, n_node_of: NodeCounts | None = None) -> np.ndarray:
        """[len(a.batch_ids), 2] stream ranges of an assignment's batches (reads the node
        counts of its windows; the dataset packs from the windows it reads instead)."""
        out, j = [], 0
        for x, y, w, t in zip(a.seg_a, a.seg_b, a.seg_win, a.seg_target):
            c = None
            if self.batch.needs_sizes and w >= 0:
                w0 = int(plan.window_pos[w])
                c = plan.window_counts(int(w), n_node_of)[x - w0:y - w0]
            off = x + counts_to_offsets(self.segment_sizes(int(y - x), int(t), c))
            for i in range(int(t)):
                if j >= a.first:
                    out.append((off[i], off[i + 1]))
                j += 1
        return np.array(out, np.int64).reshape(-1, 2)


def rank_order(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(batch ids, owning worker) [K] in the order a DataLoader yields them.

    ``groups`` [W+1]: worker ``w`` owns batches ``groups[w]:groups[w + 1]``. Workers are
    read round robin, an exhausted worker being skipped (as ``torch.utils.data.DataLoader`` does).
    """
    groups = np.asarray(groups, dtype=np.int64)
    sizes = np.diff(groups)
    rounds = np.arange(int(sizes.max(initial=0)))
    batch = (groups[None, :-1] + rounds[:, None]).ravel()
    owner = np.tile(np.arange(len(sizes)), len(rounds))
    keep = (rounds[:, None] < sizes[None, :]).ravel()
    return batch[keep].astype(np.int64), owner[keep].astype(np.int64)

def _check_rank(rank: int, world: int, what: str = "rank") -> None:
    if world < 1 or not 0 <= rank < world:
        raise HepfmError(f"{what} {rank} is outside 0..{world - 1}")


def _take_quota(blocks: np.ndarray, order: np.ndarray, quota: int) -> np.ndarray:
    """Whole blocks in ``order`` (cycling) until ``quota`` events; the last one trimmed."""
    if quota == 0 or len(blocks) == 0:
        return np.zeros((0, blocks.shape[1]), np.int64)
    sizes = blocks[order, 2] - blocks[order, 1]
    reps = -(-quota // int(sizes.sum()))
    idx = np.tile(order, reps)
    cum = np.cumsum(sizes[np.tile(np.arange(len(order)), reps)])
    n = int(np.searchsorted(cum, quota)) + 1
    chosen = blocks[idx[:n]].copy()
    chosen[-1, 2] -= int(cum[n - 1]) - quota
    return chosen


def _lim(v: int | None) -> int:
    return -1 if v is None else int(v)


@nb.njit(cache=True)
def _pack(n_node, max_events, max_nodes, max_edges):
    """Greedy batches in order under the limits (-1 = none): (sizes [K], first bad event or -1)."""
    sizes = np.empty(n_node.shape[0], np.int64)
    k = 0
    ev = 0
    nodes = 0
    edges = 0
    for i in range(n_node.shape[0]):
        n = n_node[i]
        e = n * (n - 1)
        if (max_nodes >= 0 and n > max_nodes) or (max_edges >= 0 and e > max_edges):
            return sizes[:0], i
        if ev > 0 and ((max_events >= 0 and ev + 1 > max_events) or (max_nodes >= 0 and nodes + n > max_nodes)
                       or (max_edges >= 0 and edges + e > max_edges)):
            sizes[k] = ev
            k += 1
            ev = 0
            nodes = 0
            edges = 0
        ev += 1
        nodes += n
        edges += e
    if ev > 0:
        sizes[k] = ev
        k += 1
    return sizes[:k].copy(), -1


@nb.njit(cache=True)
def _block_summary(c, block, r0, hist, tail, bmax):
    """One shard's node counts ``c`` into the histogram rows of its blocks (from row ``r0``)."""
    cap = hist.shape[1] - 1
    for i in range(c.shape[0]):
        b = r0 + i // block
        v = np.int64(c[i])
        if v < cap:
            hist[b, v] += 1
        else:
            hist[b, cap] += 1
            tail[b, 0] += v
            tail[b, 1] += v * (v - 1)
        if v > bmax[b]:
            bmax[b] = v


def _equalize(sizes: np.ndarray, k: int) -> np.ndarray:
    """Split the largest batches in two until there are ``k`` (an event budget stays met).

    A rank with fewer than ``k`` events ends with empty batches (only when a rank has
    fewer events than batches, i.e. tiny epochs).
    """
    sizes = list(np.asarray(sizes, dtype=np.int64))
    while len(sizes) < k:
        i = int(np.argmax(sizes)) if sizes else 0
        if not sizes or sizes[i] < 2:
            sizes.append(0)
            continue
        a = sizes[i] // 2
        sizes[i:i + 1] = [sizes[i] - a, a]
    return np.asarray(sizes, dtype=np.int64)
