"""StreamSampler: exact partition and exact resume, by index arithmetic (no I/O).

Ranks and DataLoader workers are simulated in-process: every (rank, worker) asks the
sampler for its assignment and the DataLoader's round robin over workers is replayed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hepfm_data.errors import HepfmError
from hepfm_data.loader.sampler import BatchSpec, StreamSampler, rank_order, worker_groups


def dataloader_order(per_worker: list[np.ndarray]) -> list[int]:
    """What torch's DataLoader yields: round robin over workers, an exhausted worker skipped."""
    out, t = [], 0
    while any(t < len(b) for b in per_worker):
        out += [int(b[t]) for b in per_worker if t < len(b)]
        t += 1
    return out


def node_counts(sizes):
    """Deterministic per-shard node counts 1..12 for budget batching."""
    return {(s, k): (np.arange(n) * 7 + 3 * s + k) % 12 + 1 for s, shards in enumerate(sizes)
            for k, n in enumerate(shards)}


sizes_st = st.lists(st.lists(st.integers(0, 90), min_size=1, max_size=4), min_size=1, max_size=3).filter(
    lambda s: sum(map(sum, s)) > 0)
spec_st = st.one_of(
    st.builds(BatchSpec, st.integers(1, 40)),
    st.builds(BatchSpec, st.none(), st.integers(12, 60)),
    st.builds(BatchSpec, st.integers(1, 20), st.none(), st.integers(132, 400)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=sizes_st, spec=spec_st, world=st.integers(1, 4), workers=st.integers(0, 3),
       block=st.integers(1, 40), window=st.integers(1, 5), seed=st.integers(0, 2**31), epoch=st.integers(0, 5),
       consumed_frac=st.floats(0, 1))
def test_every_event_exactly_once_equal_batches_and_exact_resume(sizes, spec, world, workers, block, window, seed,
                                                                   epoch, consumed_frac):
    """For 1-4 ranks x 0-3 workers: the union of all batches is every event of the epoch exactly
    once, every rank has the same number of batches, budgets hold, and resuming after any
    number of consumed batches (with fresh workers) yields exactly the rest of the rank's order."""
    counts = node_counts(sizes)
    n_node_of = lambda s, k: counts[(s, k)]
    sampler = StreamSampler(sizes, spec, seed=seed, block_size=block, window_blocks=window)
    plan = sampler.plan(epoch)
    total = sum(map(sum, sizes))
    assert plan.n_events == total
    seen, n_batches = [], set()
    for rank in range(world):
        per_worker = [sampler.assignment(plan, rank, world, w, workers, 0, n_node_of) for w in range(max(workers, 1))]
        bounds = per_worker[0].bounds
        n_batches.add(len(bounds) - 1)
        order = dataloader_order([a.batches for a in per_worker])
        assert order == rank_order(worker_groups(plan, bounds, workers))[0].tolist()
        assert sorted(order) == list(range(len(bounds) - 1))
        for b in order:
            pos = np.arange(bounds[b], bounds[b + 1])
            seen.append(pos)
            src, shard, row = plan.locate(pos)
            if spec.batch_size is not None:
                assert len(pos) <= spec.batch_size
            n = np.array([counts[(s, k)][r] for s, k, r in zip(src, shard, row)], np.int64)
            if spec.max_nodes is not None:
                assert n.sum() <= spec.max_nodes
            if spec.max_edges is not None:
                assert (n * (n - 1)).sum() <= spec.max_edges
        # resume after `consumed` batches: fresh workers continue the same order exactly
        consumed = int(round(consumed_frac * len(order)))
        resumed = [sampler.assignment(plan, rank, world, w, workers, consumed, n_node_of).batches
                   for w in range(max(workers, 1))]
        assert dataloader_order(resumed) == order[consumed:]
    assert len(n_batches) == 1
    allpos = np.concatenate(seen) if seen else np.zeros(0, np.int64)
    assert np.array_equal(np.sort(allpos), np.arange(total))
    src, shard, row = plan.locate(allpos)
    keys = set(zip(src.tolist(), shard.tolist(), row.tolist()))
    expected = {(s, k, r) for s, shards in enumerate(sizes) for k, n in enumerate(shards) for r in range(n)}
    assert keys == expected


@settings(max_examples=30, deadline=None)
@given(sizes=sizes_st, seed=st.integers(0, 1000))
def test_plan_is_a_function_of_seed_and_epoch(sizes, seed):
    """Same (seed, epoch) -> the same event order in a fresh sampler; another epoch reorders
    (when there is more than one block to shuffle)."""
    a = StreamSampler(sizes, BatchSpec(8), seed=seed, block_size=5, window_blocks=2)
    b = StreamSampler(sizes, BatchSpec(8), seed=seed, block_size=5, window_blocks=2)
    pos = np.arange(a.plan(0).n_events)
    assert all(np.array_equal(x, y) for x, y in zip(a.plan(3).locate(pos), b.plan(3).locate(pos)))
    if a.plan(0).n_events > 10:
        orders = {tuple(np.stack(a.plan(e).locate(pos)).ravel()) for e in range(4)}
        assert len(orders) > 1


def test_sources_are_interleaved_over_the_epoch():
    """Blocks of each source are spread evenly: every quarter of the stream holds every source."""
    sampler = StreamSampler([[4000], [4000], [2000]], BatchSpec(64), seed=1, block_size=100, window_blocks=4)
    plan = sampler.plan(0)
    src = plan.locate(np.arange(plan.n_events))[0]
    for q in np.array_split(src, 4):
        frac = np.bincount(q, minlength=3) / len(q)
        np.testing.assert_allclose(frac, [0.4, 0.4, 0.2], atol=0.1)


def test_windows_are_read_by_one_worker_when_they_are_small():
    """Batches never straddle a window start, and with several windows per worker each window
    of a rank is read by exactly one worker (no read amplification)."""
    sampler = StreamSampler([[3000], [2000]], BatchSpec(16), seed=0, block_size=25, window_blocks=2)
    plan = sampler.plan(0)
    for rank in range(2):
        owners: dict[int, set] = {}
        for w in range(3):
            a = sampler.assignment(plan, rank, 2, w, 3)
            for b in a.batches:
                wins = np.searchsorted(plan.window_pos, [a.bounds[b], a.bounds[b + 1] - 1], side="right") - 1
                assert wins[0] == wins[1]
                owners.setdefault(int(wins[0]), set()).add(w)
        assert all(len(v) == 1 for v in owners.values())
        assert {w for v in owners.values() for w in v} == {0, 1, 2}


def test_quotas_take_a_subset_or_repeat_blocks():
    """Quotas: below the source size, a subset of distinct events; above, every event at least once."""
    sampler = StreamSampler([[100], [30]], BatchSpec(16), seed=0, block_size=10, quotas=[40, 75])
    plan = sampler.plan(2)
    src, shard, row = plan.locate(np.arange(plan.n_events))
    assert plan.n_events == 115
    assert (src == 0).sum() == 40 and len(set(row[src == 0])) == 40
    assert (src == 1).sum() == 75 and set(row[src == 1]) == set(range(30))


def test_clear_errors():
    """Budgets smaller than one event, bad ranks and empty configs raise HepfmError with the culprit."""
    with pytest.raises(HepfmError, match="set batch_size"):
        BatchSpec(None)
    with pytest.raises(HepfmError, match="batch_size must be a positive"):
        BatchSpec(0)
    s = StreamSampler([[5]], BatchSpec(None, max_nodes=3))
    with pytest.raises(HepfmError, match=r"source 0, shard 0, row \d: an event of 5 nodes"):
        s.rank_bounds(s.plan(0), 0, 1, lambda a, k: np.full(5, 5))
    with pytest.raises(HepfmError, match="rank 2 is outside"):
        StreamSampler([[5]], BatchSpec(2)).rank_bounds(s.plan(0), 2, 2)
    with pytest.raises(HepfmError, match="node count"):
        s.rank_bounds(s.plan(1), 0, 1)
