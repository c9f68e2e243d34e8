"""StreamSampler: exact partition and exact resume, by index arithmetic (no I/O).

Ranks and DataLoader workers are simulated in-process: every (rank, worker) asks the
sampler for its assignment and the DataLoader's round robin over workers is replayed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hepfm_data.core.errors import HepfmError
from hepfm_data.loader.sampler import BatchSpec, StreamSampler


def dataloader_order(per_worker: list) -> list:
    """What torch's DataLoader yields: round robin over workers, an exhausted worker skipped."""
    out, t = [], 0
    while any(t < len(b) for b in per_worker):
        out += [b[t] for b in per_worker if t < len(b)]
        t += 1
    return out


def node_counts(sizes):
    """Deterministic per-shard node counts 1..12 for budget batching."""
    return {(s, k): (np.arange(n) * 7 + 3 * s + k) % 12 + 1 for s, shards in enumerate(sizes)
            for k, n in enumerate(shards)}


def reader(counts):
    """``n_node_of(source, shard, start, stop)`` over a dict of per-shard counts."""
    return lambda s, k, a, b: counts[(s, k)][a:b]


def rank_orders(sampler, plan, world, workers, consumed, n_node_of, intervals=None):
    """Per rank: its batches (stream ranges) in DataLoader order after ``consumed``, replaying
    the round robin over fresh workers."""
    out = []
    for rank in range(world):
        per_worker = []
        for w in range(max(workers, 1)):
            a = sampler.assignment(plan, rank, world, w, workers, consumed, n_node_of, intervals)
            per_worker.append([tuple(x) for x in sampler.batches(plan, a, n_node_of).tolist()])
        out.append(dataloader_order(per_worker))
    return out


def positions(ranges) -> np.ndarray:
    return np.concatenate([np.arange(a, b) for a, b in ranges] + [np.zeros(0, np.int64)]).astype(np.int64)


sizes_st = st.lists(st.lists(st.integers(0, 90), min_size=1, max_size=4), min_size=1, max_size=3).filter(
    lambda s: sum(map(sum, s)) > 0)
spec_st = st.one_of(
    st.builds(BatchSpec, st.integers(1, 40)),
    st.builds(BatchSpec, st.none(), st.integers(12, 60)),
    st.builds(BatchSpec, st.integers(1, 20), st.none(), st.integers(132, 400)),
)


def check_batches(sampler, plan, orders, counts, spec):
    """Budgets hold in every batch; every rank has the same number of batches."""
    assert len({len(o) for o in orders}) == 1
    for order in orders:
        for a, b in order:
            pos = np.arange(a, b)
            src, shard, row = plan.locate(pos)
            if spec.batch_size is not None:
                assert len(pos) <= spec.batch_size
            n = np.array([counts[(s, k)][r] for s, k, r in zip(src, shard, row)], np.int64)
            if spec.max_nodes is not None:
                assert n.sum() <= spec.max_nodes
            if spec.max_edges is not None:
                assert (n * (n - 1)).sum() <= spec.max_edges


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=sizes_st, spec=spec_st, world=st.integers(1, 4), workers=st.integers(0, 3),
       block=st.integers(1, 40), window=st.integers(1, 5), seed=st.integers(0, 2**31), epoch=st.integers(0, 5),
       consumed_frac=st.floats(0, 1))
def test_every_event_exactly_once_equal_batches_and_exact_resume(sizes, spec, world, workers, block, window, seed,
                                                                   epoch, consumed_frac):
    """For 1-4 ranks x 0-3 workers: the union of all batches is every event of the epoch exactly
    once, every rank has the same number of batches (== n_batches), budgets hold, and resuming
    after any number of consumed batches (with fresh workers) yields exactly the rest of the rank's order."""
    counts = node_counts(sizes)
    n_node_of = reader(counts)
    sampler = StreamSampler(sizes, spec, seed=seed, block_size=block, window_blocks=window)
    plan = sampler.plan(epoch)
    total = sum(map(sum, sizes))
    assert plan.n_events == total
    orders = rank_orders(sampler, plan, world, workers, 0, n_node_of)
    check_batches(sampler, plan, orders, counts, spec)
    assert len(orders[0]) == sampler.n_batches(plan, world, n_node_of, workers)
    allpos = positions([r for o in orders for r in o])
    assert np.array_equal(np.sort(allpos), np.arange(total))
    src, shard, row = plan.locate(allpos)
    keys = set(zip(src.tolist(), shard.tolist(), row.tolist()))
    expected = {(s, k, r) for s, shards in enumerate(sizes) for k, n in enumerate(shards) for r in range(n)}
    assert keys == expected
    # resume after `consumed` batches: fresh workers continue the same order exactly
    consumed = int(round(consumed_frac * len(orders[0])))
    resumed = rank_orders(sampler, plan, world, workers, consumed, n_node_of)
    assert resumed == [o[consumed:] for o in orders]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=sizes_st, spec=spec_st, world=st.integers(1, 4), workers=st.integers(0, 3),
       world2=st.integers(1, 4), workers2=st.integers(0, 3), block=st.integers(1, 40), window=st.integers(1, 5),
       seed=st.integers(0, 2**31), consumed_frac=st.floats(0, 1), consumed_frac2=st.floats(0, 1))
def test_elastic_resume_delivers_the_rest_exactly_once(sizes, spec, world, workers, world2, workers2, block, window,
                                                       seed, consumed_frac, consumed_frac2):
    """Interrupted after c batches on W ranks x K workers, resumed on W' x K' (any), and again on
    the first partition: what the earlier partitions delivered plus what the resumed ones deliver
    is every event of the epoch exactly once; each resumed partition keeps equal batch counts
    per rank and the budgets."""
    counts = node_counts(sizes)
    n_node_of = reader(counts)
    sampler = StreamSampler(sizes, spec, seed=seed, block_size=block, window_blocks=window)
    plan = sampler.plan(1)
    delivered = []
    levels = []
    for w, k, frac in ((world, workers, consumed_frac), (world2, workers2, consumed_frac2)):
        iv = sampler.intervals(plan, levels, n_node_of)
        orders = rank_orders(sampler, plan, w, k, 0, n_node_of, iv)
        check_batches(sampler, plan, orders, counts, spec)
        c = int(round(frac * len(orders[0])))
        delivered += [r for o in orders for r in o[:c]]
        levels.append((w, k, c))
    iv = sampler.intervals(plan, levels, n_node_of)
    rest = rank_orders(sampler, plan, world, workers, 0, n_node_of, iv)
    check_batches(sampler, plan, rest, counts, spec)
    allpos = positions(delivered + [r for o in rest for r in o])
    assert np.array_equal(np.sort(allpos), np.arange(plan.n_events))
    assert np.array_equal(np.sort(positions(delivered)),
                          np.setdiff1d(np.arange(plan.n_events), positions([tuple(x) for x in iv])))


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
            for x, y in sampler.batches(plan, a):
                wins = np.searchsorted(plan.window_pos, [x, y - 1], side="right") - 1
                assert wins[0] == wins[1]
                owners.setdefault(int(wins[0]), set()).add(w)
        assert all(len(v) == 1 for v in owners.values())
        assert {w for v in owners.values() for w in v} == {0, 1, 2}


def test_budget_batches_stay_full():
    """The histogram bound on a window's batch count is tight for realistic budgets: splitting
    up to it adds few batches (here < 3% over the greedy packing of the whole epoch)."""
    rng = np.random.default_rng(0)
    sizes = [[20000, 20000], [15000]]
    counts = {(s, k): rng.poisson(8.5, n).clip(1, 40) for s, shards in enumerate(sizes) for k, n in enumerate(shards)}
    sampler = StreamSampler(sizes, BatchSpec(None, max_nodes=4096), seed=1, block_size=4096, window_blocks=4)
    plan = sampler.plan(0)
    greedy = sum(len(sampler._pack(plan.window_counts(w, reader(counts)))) for w in range(plan.n_windows))
    k = sampler.n_batches(plan, 1, reader(counts), 2)
    assert greedy <= k < 1.03 * greedy


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
    with pytest.raises(HepfmError, match=r"source 0, shard 0, row 3: an event of 5 nodes"):
        s.partition(s.plan(0), 1, 0, None, lambda a, k, x, y: np.array([1, 2, 3, 5, 1])[x:y])
    with pytest.raises(HepfmError, match="rank 2 is outside"):
        StreamSampler([[5]], BatchSpec(2)).assignment(s.plan(0), 2, 2, 0, 0)
    with pytest.raises(HepfmError, match="node count"):
        StreamSampler([[5]], BatchSpec(None, max_nodes=3)).partition(s.plan(1), 1, 0)
