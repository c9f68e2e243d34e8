"""The epoch plan: which event goes to which rank, worker and batch. Pure index arithmetic, no I/O.

Vocabulary (lhotse-style: the sampler knows sizes, never data):

* a **block** is a contiguous row range ``[start, stop)`` of one shard of one source
  (a store = one process); blocks are the unit of I/O and of the block shuffle;
* the **epoch stream** is the sequence of all planned events of an epoch: blocks in a
  (seed, epoch)-shuffled, source-interleaved order, grouped into **windows** of
  ``window_blocks`` blocks whose events are permuted by (seed, epoch, window);
* the stream is split into ``world_size`` contiguous **rank ranges** (sizes differ by at
  most one event); each range is cut into batches by event count or by a node/edge
  budget, and the batch counts of all ranks are made equal by splitting the largest
  batches (so no rank waits for another at the end of an epoch, and no event is dropped
  or repeated);
* batches never straddle a window start; a rank's batches are split into ``num_workers``
  contiguous **worker groups**, balanced, cut at window starts when that costs at most a
  quarter of a share (then each window is read by one worker); ``torch.utils.data.DataLoader``
  reads workers round robin (skipping an exhausted one), which gives the **rank order** —
  ``consumed`` batches of that order are the resumable state; a resumed DataLoader's
  workers are rotated to continue it.

Every number here is a function of (sizes, config, seed, epoch, rank, world_size,
num_workers): every process computes the same plan without communicating.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from .._arrays import counts_to_offsets
from ..errors import HepfmError

__all__ = ["BatchSpec", "EpochPlan", "StreamSampler", "WorkerAssignment"]


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
    """What one (rank, worker) iterates: ``batches`` [k] rank-batch ids, in order.

    Batch ``b`` of the rank covers epoch-stream positions ``bounds[b]:bounds[b + 1]``.
    """

    rank: int
    worker: int
    batches: np.ndarray
    bounds: np.ndarray


@dataclass
class EpochPlan:
    """The epoch stream of one epoch (see the module docstring).

    ``block_source/shard/start/stop`` [NB] list the blocks in stream order;
    ``block_pos`` [NB+1] their first stream position; ``window_pos`` [NW+1] likewise
    for windows (window ``w`` = blocks ``w*window_blocks ...``).
    """

    seed: int
    epoch: int
    shuffle: bool
    window_blocks: int
    block_source: np.ndarray
    block_shard: np.ndarray
    block_start: np.ndarray
    block_stop: np.ndarray
    block_pos: np.ndarray
    window_pos: np.ndarray
    _perm_cache: dict = field(default_factory=dict, repr=False)

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
            if len(self._perm_cache) > 4:  # bounded: workers walk windows in order
                self._perm_cache.clear()
            self._perm_cache[w] = perm
        return perm

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

    def stream_node_counts(self, n_node_of: Callable[[int, int], np.ndarray]) -> np.ndarray:
        """[T] node count of every event in stream order; ``n_node_of(source, shard)`` -> [n_events]."""
        out = np.empty(self.n_events, np.int64)
        cache: dict[tuple[int, int], np.ndarray] = {}
        for w in range(self.n_windows):
            parts = []
            for b in self.window_blocks_of(w):
                key = (int(self.block_source[b]), int(self.block_shard[b]))
                if key not in cache:
                    cache[key] = np.asarray(n_node_of(*key), dtype=np.int64)
                parts.append(cache[key][self.block_start[b]:self.block_stop[b]])
            win = np.concatenate(parts) if parts else np.zeros(0, np.int64)
            out[self.window_pos[w]:self.window_pos[w + 1]] = win[self.window_perm(w)]
        return out


class StreamSampler:
    """Plans epochs over sources of sharded events (see the module docstring).

    ``shard_sizes[s][k]``: events in shard ``k`` of source ``s``. ``quotas[s]``: events of
    source ``s`` per epoch (None = all, each exactly once; a quota below the source size
    takes a (seed, epoch)-dependent subset of whole blocks, trimmed; above, blocks
    repeat). ``block_size`` events per block; ``window_blocks`` blocks shuffled together.
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
        self._bounds_cache: dict = {}

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

    # ------------------------------------------------------------------ epoch stream
    def plan(self, epoch: int) -> EpochPlan:
        """The epoch stream of ``epoch`` (blocks shuffled and interleaved by source)."""
        rng = np.random.default_rng([self.seed, int(epoch), 0])
        per_source, keys = [], []
        for s, blocks in enumerate(self._blocks):
            order = rng.permutation(len(blocks)) if self.shuffle else np.arange(len(blocks))
            chosen = blocks[order]
            if self.quotas is not None:
                chosen = _take_quota(blocks, order, self.quotas[s])
            n = len(chosen)
            jitter = rng.random(n) if self.shuffle else np.full(n, 0.5)
            per_source.append(np.column_stack([np.full(n, s), chosen]) if n else np.zeros((0, 4), np.int64))
            keys.append((np.arange(n) + jitter) / max(n, 1))
        allb = np.concatenate(per_source) if per_source else np.zeros((0, 4), np.int64)
        key = np.concatenate(keys) if keys else np.zeros(0)
        allb = allb[np.lexsort((allb[:, 0], key))].astype(np.int64)  # spread each source over the epoch
        sizes = allb[:, 3] - allb[:, 2]
        block_pos = counts_to_offsets(sizes)
        window_pos = block_pos[::self.window_blocks]
        if window_pos[-1] != block_pos[-1] or len(window_pos) == 1:
            window_pos = np.append(window_pos, block_pos[-1])
        return EpochPlan(self.seed, int(epoch), self.shuffle, self.window_blocks, allb[:, 0].copy(),
                         allb[:, 1].copy(), allb[:, 2].copy(), allb[:, 3].copy(), block_pos, window_pos)

    # ------------------------------------------------------------------ partition
    def rank_bounds(self, plan: EpochPlan, rank: int, world_size: int,
                    n_node_of: Callable[[int, int], np.ndarray] | None = None) -> np.ndarray:
        """[K+1] stream positions cutting rank ``rank``'s range into its K batches.

        K is the same for every rank. Budget batching needs ``n_node_of(source, shard)``.
        """
        _check_rank(rank, world_size)
        key = (plan.epoch, world_size)
        if key not in self._bounds_cache:
            self._bounds_cache.clear()
            self._bounds_cache[key] = self._all_bounds(plan, world_size, n_node_of)
        return self._bounds_cache[key][rank]

    def _all_bounds(self, plan: EpochPlan, world_size: int, n_node_of) -> list[np.ndarray]:
        t = plan.n_events
        starts = [r * t // world_size for r in range(world_size + 1)]
        spec = self.batch
        counts = None
        if spec.needs_sizes:
            if n_node_of is None:
                raise HepfmError("batching by node/edge budget needs the node count of every event (n_node_of)")
            counts = plan.stream_node_counts(n_node_of)
        sizes = []
        for r in range(world_size):
            lo, hi = starts[r], starts[r + 1]
            # no batch straddles a window start, so that workers can own whole windows
            cuts = plan.window_pos[(plan.window_pos > lo) & (plan.window_pos < hi)]
            edges = np.concatenate([[lo], cuts, [hi]]).astype(np.int64)
            parts = []
            for a, b in zip(edges[:-1], edges[1:]):
                if counts is None:
                    n = int(b - a)
                    k = -(-n // spec.batch_size)
                    seg = np.full(k, spec.batch_size, np.int64)
                    if k:
                        seg[-1] = n - (k - 1) * spec.batch_size
                else:
                    seg, bad = _pack(counts[a:b], _lim(spec.batch_size), _lim(spec.max_nodes), _lim(spec.max_edges))
                    if bad >= 0:
                        src, shard, row = plan.locate(np.array([a + bad]))
                        n = int(counts[a + bad])
                        raise HepfmError(
                            f"source {int(src[0])}, shard {int(shard[0])}, row {int(row[0])}: an event of {n} nodes "
                            f"({n * (n - 1)} edges) exceeds the batch budget max_nodes={spec.max_nodes}, "
                            f"max_edges={spec.max_edges}")
                parts.append(seg)
            sizes.append(np.concatenate(parts) if parts else np.zeros(0, np.int64))
        k = max((len(s) for s in sizes), default=0)
        out = []
        for r, s in enumerate(sizes):
            s = _equalize(s, k)
            out.append(counts_to_offsets(s) + starts[r])
        return out

    def n_batches(self, plan: EpochPlan, world_size: int, n_node_of=None) -> int:
        """Batches per rank in this epoch (equal for every rank)."""
        return len(self.rank_bounds(plan, 0, world_size, n_node_of)) - 1

    def assignment(self, plan: EpochPlan, rank: int, world_size: int, worker: int, num_workers: int,
                   consumed: int = 0, n_node_of=None) -> WorkerAssignment:
        """The batches DataLoader worker ``worker`` of ``num_workers`` (0 = main process) must
        yield so that the rank order continues after its first ``consumed`` batches."""
        bounds = self.rank_bounds(plan, rank, world_size, n_node_of)
        order, owner = rank_order(worker_groups(plan, bounds, num_workers))
        if not 0 <= consumed <= len(order):
            raise HepfmError(f"consumed={consumed} is outside this epoch's {len(order)} batches")
        rest, rest_owner = order[consumed:], owner[consumed:]
        w = max(num_workers, 1)
        _check_rank(worker, w, "worker")
        # the resumed DataLoader starts its round robin at worker 0: rotate so that the
        # next batch of the interrupted order comes first (round robin is rotation-invariant)
        first = int(rest_owner[0]) if len(rest) else 0
        mine = rest[rest_owner == (first + worker) % w]
        return WorkerAssignment(rank, worker, mine, bounds)


def worker_groups(plan: EpochPlan, bounds: np.ndarray, num_workers: int) -> np.ndarray:
    """[W+1] batch indices: worker ``w`` owns the contiguous batches ``g[w]:g[w + 1]``.

    A balanced split, each cut moved to the nearest batch that starts a window when that
    costs at most a quarter of a worker's share: then every window is read by one worker
    only (batches never straddle a window start). Otherwise a window cut by a group
    boundary is read by both workers.
    """
    w = max(num_workers, 1)
    k = len(bounds) - 1
    g = np.array([i * k // w for i in range(w + 1)], np.int64)
    if w == 1 or k == 0:
        return g
    cand = np.nonzero(np.isin(bounds[:-1], plan.window_pos))[0]
    if len(cand) == 0:
        return g
    tol = k / w / 4
    for i in range(1, w):
        j = int(cand[np.argmin(np.abs(cand - g[i]))])
        if abs(j - g[i]) <= tol:
            g[i] = j
    return np.maximum.accumulate(g)


def rank_order(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(batch ids, owning worker) [K] in the order a DataLoader yields them.

    ``groups`` [W+1]: worker ``w`` owns batches ``groups[w]:groups[w + 1]`` (see
    :func:`worker_groups`). Workers are read round robin, an exhausted worker being
    skipped (as ``torch.utils.data.DataLoader`` does).
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
        return np.zeros((0, 3), np.int64)
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
