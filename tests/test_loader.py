"""The streaming loader on real stores (Zarr and Parquet written by hepfm_data.store), real
DataLoader worker processes, a real moto S3 server and a real torchrun (gloo) job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from hepfm_data.batches import batch_type
from hepfm_data.batches.graph import ETA, PHI
from hepfm_data.core.errors import HepfmError
from hepfm_data.core.events import SampleInfo
from hepfm_data.loader import (
    BoostZ,
    Compose,
    FlipEta,
    LoaderStateError,
    RotatePhi,
    StreamingDataset,
    make_loader,
)
from hepfm_data.pipelines.build import write_store
from hepfm_data.representations import PAPER, Representation, batch_rng
from hepfm_data.store import open_store
from hepfm_data.testing import synthetic_events

PROCESSES = {"ttW": 260, "ttt": 180, "tttt": 120}  # events before the split (~80% train)
FAST = {"block_size": 32, "window_blocks": 3}


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, str]:
    """Three small Zarr stores (several shards each) and one Parquet copy of ttW."""
    root = tmp_path_factory.mktemp("loader_stores")
    out = {}
    for i, (proc, n) in enumerate(PROCESSES.items()):
        ev = synthetic_events(n, seed=10 + i, first_event_id=100_000 * (i + 1))
        write_store(str(root / "zarr"), proc, [(ev, SampleInfo(process=proc, source="synthetic"))],
                    layout="zarr", events_per_shard=70, progress=False)
        out[proc] = str(root / "zarr" / proc)
    ev = synthetic_events(PROCESSES["ttW"], seed=10, first_event_id=100_000)
    write_store(str(root / "parquet"), "ttW", [(ev, SampleInfo(process="ttW", source="synthetic"))],
                layout="parquet", events_per_shard=70, progress=False)
    out["ttW_parquet"] = str(root / "parquet" / "ttW")
    return out


def store_events(url: str, split: str = "train") -> dict[int, tuple]:
    """event_id -> (nodes [n, 7], multilabel, weight, label) read directly from a store."""
    st = open_store(url)
    out = {}
    for info in st.shards(split):
        d = st.read_shard(info)
        for i, eid in enumerate(d.event_id.tolist()):
            out[eid] = (d.nodes[d.offsets[i]:d.offsets[i + 1]], d.multilabel[i], d.weight[i], int(d.label[i]))
    return out


def urls(stores, names=("ttW", "ttt", "tttt")) -> list[str]:
    return [stores[n] for n in names]


def epoch_ids(loader) -> list[list[int]]:
    return [b.event_id.tolist() for b in loader]


@pytest.mark.parametrize("world,workers", [(1, 0), (3, 2)])
def test_every_event_exactly_once_equal_batches(stores, world, workers):
    """Across ranks x real DataLoader worker processes, one epoch delivers every train event of
    every store exactly once, and every rank the same number of batches (== len(loader))."""
    expected = set()
    for u in urls(stores):
        expected |= set(store_events(u))
    seen, counts = [], set()
    for rank in range(world):
        loader = make_loader(urls(stores), device="cpu", batch_size=20, num_workers=workers, rank=rank,
                             world_size=world, seed=7, **FAST)
        batches = epoch_ids(loader)
        counts.add(len(batches))
        assert len(batches) == loader.dataset.n_batches(0)
        assert all(0 < len(b) <= 20 for b in batches)
        seen += [e for b in batches for e in b]
    assert len(counts) == 1
    assert len(seen) == len(expected) and set(seen) == expected


def test_batches_hold_the_stored_rows_labels_and_edges(stores):
    """Each batch event carries exactly its stored nodes, multilabel and label; weights are the
    class-balancing scale; edges equal the Numba kernel and a numpy reference."""
    from test_graph import numpy_reference

    ref = {}
    for u in urls(stores):
        ref.update(store_events(u))
    ds = StreamingDataset(urls(stores), batch_size=32, seed=1, **FAST)
    n_per = {p: sum(1 for e in ref if e // 100_000 == i + 1) for i, p in enumerate(PROCESSES)}
    total = sum(n_per.values())
    wsum = dict.fromkeys(PROCESSES, 0.0)
    for batch in ds:
        off = np.concatenate([[0], batch.n_node.cumsum(0).numpy()])
        for i, eid in enumerate(batch.event_id.tolist()):
            nodes, ml, w, label = ref[eid]
            np.testing.assert_array_equal(batch.nodes[off[i]:off[i + 1]].numpy(), nodes)
            np.testing.assert_array_equal(batch.multilabels[i].numpy(), ml.astype(np.float32))
            assert int(batch.labels[i]) == label
            proc = list(PROCESSES)[eid // 100_000 - 1]
            assert batch.weights[i].item() == pytest.approx(w * total / (3 * n_per[proc]), rel=1e-6)
            wsum[proc] += batch.weights[i].item()
        s, r, f = numpy_reference(batch.nodes[:, ETA].numpy(), batch.nodes[:, PHI].numpy(), batch.n_node.numpy())
        np.testing.assert_array_equal(batch.senders.numpy(), s)
        np.testing.assert_array_equal(batch.receivers.numpy(), r)
        np.testing.assert_allclose(batch.edges[:, [0, 2]].numpy(), f[:, [0, 2]], atol=2e-6)
        assert np.abs((batch.edges[:, 1].numpy() - f[:, 1] + np.pi) % (2 * np.pi) - np.pi).max() < 2e-6
    # class balanced: every process carries the same total weight
    assert np.allclose(list(wsum.values()), total / 3, rtol=1e-4)


def test_parquet_and_zarr_stores_give_the_same_batches(stores):
    """Layout is invisible to the loader: the same events in the same order with the same nodes."""
    kw = dict(batch_size=16, seed=3, block_size=32, window_blocks=2)
    a = list(StreamingDataset(stores["ttW"], **kw))
    b = list(StreamingDataset(stores["ttW_parquet"], **kw))
    assert [x.event_id.tolist() for x in a] == [y.event_id.tolist() for y in b]
    assert all(torch.equal(x.nodes, y.nodes) and torch.equal(x.edges, y.edges) for x, y in zip(a, b))


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_mid_epoch_is_exact(stores, workers):
    """A checkpoint (JSON) after k batches, loaded into a fresh loader (fresh workers), yields
    exactly the remaining batches of the uninterrupted run, then the next epoch identically;
    breaking out of a loop and iterating the same loader again continues the same way."""
    kw = dict(device="cpu", batch_size=16, num_workers=workers, seed=11, augment=RotatePhi(), **FAST)
    full = make_loader(urls(stores), **kw)
    full.set_epoch(2)
    epoch2 = [(b.event_id.tolist(), b.nodes.clone()) for b in full]
    epoch3 = epoch_ids(full)  # auto-advanced to epoch 3
    first = make_loader(urls(stores), **kw)
    first.set_epoch(2)
    it = iter(first)
    head = [next(it) for _ in range(5)]
    state = json.loads(json.dumps(first.state_dict()))
    del it
    assert state["epoch"] == 2 and state["consumed"] == 5
    again = make_loader(urls(stores), **kw)
    again.load_state_dict(state)
    again.set_epoch(2)  # the usual training loop call is a no-op for the resumed epoch
    rest = [(b.event_id.tolist(), b.nodes) for b in again]
    got = [(b.event_id.tolist(), b.nodes) for b in head] + rest
    assert [g[0] for g in got] == [e[0] for e in epoch2]
    assert all(torch.equal(g[1], e[1]) for g, e in zip(got, epoch2))  # augmentation replays too
    assert epoch_ids(again) == epoch3
    # the interrupted loader itself (persistent workers kept) also continues exactly
    assert [b.event_id.tolist() for b in head] + epoch_ids(first) == [e[0] for e in epoch2]


def _late_worker(worker_id: int) -> None:
    if worker_id == 1:
        import time

        time.sleep(1.5)  # starts after the main process has received worker 0's first batches


def test_a_worker_that_starts_late_still_starts_at_the_iterations_beginning(stores):
    """The main process moves the shared position with every batch it receives; a DataLoader
    worker that begins after that (a loaded machine) must still begin where the iteration began,
    not skip the batches the other worker already delivered: the same batches as without workers,
    also when resumed mid-epoch (the regression of a flaky CI failure)."""
    from torch.utils.data import DataLoader

    from hepfm_data.loader import StreamingLoader

    kw = dict(batch_size=16, seed=11, **FAST)
    two = [b.event_id.tolist() for b in make_loader(urls(stores), device="cpu", num_workers=2, **kw)]
    for resume in (0, 3):
        ds = StreamingDataset(urls(stores), build_edges=False, **kw)
        ds.num_workers = 2
        if resume:
            ds.load_state_dict({**ds.state_dict(), "consumed": resume})
        loader = StreamingLoader(ds, DataLoader(ds, batch_size=None, num_workers=2, worker_init_fn=_late_worker),
                                 torch.device("cpu"))
        got = [b.event_id.tolist() for b in loader]
        assert got == two[resume:]
    ids = [e for b in two for e in b]
    assert len(ids) == len(set(ids)) == sum(len(store_events(u)) for u in urls(stores))


def test_resume_refuses_another_configuration(stores):
    """A state from other settings is refused with the reason; one from another worker count
    resumes the rest of the epoch (elastic), every remaining event once."""
    kw = dict(device="cpu", batch_size=16, seed=1, **FAST)
    state = make_loader(urls(stores), num_workers=0, **kw).state_dict()
    with pytest.raises(LoaderStateError, match="fingerprint"):
        make_loader(urls(stores), device="cpu", num_workers=0, batch_size=16, seed=2, **FAST).load_state_dict(state)
    with pytest.raises(LoaderStateError, match="not a loader state"):
        make_loader(urls(stores), num_workers=0, **kw).load_state_dict({"epoch": 1})
    first = make_loader(urls(stores), num_workers=2, **kw)
    it = iter(first)
    head = [next(it).event_id.tolist() for _ in range(4)]
    del it
    other = make_loader(urls(stores), num_workers=0, **kw)
    other.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert other.state_dict()["levels"] == [[1, 2, 4]]
    n = len(other)  # what is left of the epoch
    rest = epoch_ids(other)
    assert len(rest) == n and other.dataset.epoch == 1
    got = [e for b in head + rest for e in b]
    expected = set().union(*(store_events(u) for u in urls(stores)))
    assert len(got) == len(expected) and set(got) == expected


def test_budget_batching_and_fixed_shape_padding(stores):
    """Node/edge budgets hold in every batch; pad=True gives one fixed shape for every batch with
    padding masked; every event still comes exactly once."""
    kw = dict(device="cpu", num_workers=2, batch_size=40, max_nodes=150, max_edges=900, seed=2, **FAST)
    shapes, ids = set(), []
    for b in make_loader(urls(stores), pad=True, **kw):
        shapes.add((b.n_graph, b.nodes.shape[0], b.senders.shape[0]))
        real = b.graph_mask
        assert b.n_node[real].sum() <= 150 and b.n_edge[real].sum() <= 900 and real.sum() <= 40
        assert (b.weights[~real] == 0).all() and (b.event_id[~real] == -1).all()
        ids += b.event_id[real].tolist()
    assert shapes == {(41, 151, 901)}
    expected = set().union(*(store_events(u) for u in urls(stores)))
    assert len(ids) == len(expected) and set(ids) == expected
    with pytest.raises(HepfmError, match="pad=True needs"):
        StreamingDataset(urls(stores), batch_size=8, pad=True)


def test_task_labels_and_sampling_mix(stores):
    """Task labels come from the catalog task; mixing='sample' draws per-epoch quotas per weight;
    weights='catalog' gives each process a total weight proportional to its paper event count."""
    ds = StreamingDataset(urls(stores, ("ttW", "ttt")), labels="ttW_vs_ttt", batch_size=64, **FAST)
    lab = {int(e) // 100_000: int(x) for b in ds for e, x in zip(b.event_id, b.labels)}
    assert lab == {1: 0, 2: 1}
    with pytest.raises(HepfmError, match="no class for store"):
        StreamingDataset(urls(stores), labels="ttW_vs_ttt")
    ds = StreamingDataset(urls(stores), mixing="sample", weights={"ttW": 1, "ttt": 1, "tttt": 2},
                          batch_size=64, **FAST)
    ids = [int(e) for b in ds for e in b.event_id]
    per = np.bincount(np.array(ids) // 100_000, minlength=4)[1:]
    assert per.sum() == ds.plan(0).n_events and abs(per[2] / per.sum() - 0.5) < 0.01
    assert all(b.weights.eq(1).all() for b in ds)
    # catalog weights: each process's total weight is proportional to its paper event count
    from hepfm_data.core.catalog import load_catalog

    ds = StreamingDataset(urls(stores), weights="catalog", batch_size=64, **FAST)
    tot = dict.fromkeys(PROCESSES, 0.0)
    for b in ds:
        for e, w in zip(b.event_id.tolist(), b.weights.tolist()):
            tot[list(PROCESSES)[e // 100_000 - 1]] += w
    paper = {p: load_catalog().process(p).paper_events for p in PROCESSES}
    assert tot["tttt"] / tot["ttW"] == pytest.approx(paper["tttt"] / paper["ttW"], rel=1e-4)


def test_augmentations_are_seeded_and_physical(stores):
    """Augmented batches are identical with 0 or 2 workers (seeded per batch, not per worker);
    rotation, eta flip and boost keep pt and the dr between non-MET nodes; MET eta stays 0."""
    aug = Compose(RotatePhi(), FlipEta(), BoostZ())
    kw = dict(device="cpu", batch_size=32, seed=4, **FAST)
    a = list(make_loader(urls(stores), num_workers=0, augment=aug, **kw))
    b = list(make_loader(urls(stores), num_workers=2, augment=aug, **kw))
    plain = list(make_loader(urls(stores), num_workers=0, **kw))
    # 2 workers yield the same batches in another order: match them by their events
    by_events = {tuple(y.event_id.tolist()): y for y in b}
    assert len(by_events) == len(a)
    assert all(torch.equal(x.nodes, by_events[tuple(x.event_id.tolist())].nodes) for x in a)
    for x, p in zip(a, plain):
        assert torch.equal(x.event_id, p.event_id)
        torch.testing.assert_close(x.nodes[:, 0], p.nodes[:, 0])  # pt unchanged
        met = p.nodes[:, 6] == 4
        torch.testing.assert_close(x.nodes[met, ETA], p.nodes[met, ETA])
        assert not torch.equal(x.nodes[:, PHI], p.nodes[:, PHI])
        # rotation + flip + boost keep |deta| and dphi-magnitude among non-MET nodes -> dr between them
        keep = ~met[x.senders] & ~met[x.receivers]
        torch.testing.assert_close(x.edges[keep, 2], p.edges[keep, 2], atol=2e-4, rtol=0)


@batch_type("test_sum")
@dataclass
class SumBatch:
    """The batch type of a third-party representation: per-event node pt sums and a random tag."""

    pt_sum: torch.Tensor
    tag: torch.Tensor
    event_id: torch.Tensor


class PtSums(Representation):
    """A representation defined outside hepfm: the paper graph's stored columns -> per-event pT sums and
    a random tag drawn from the batch's own generator (stream 5)."""

    name, version, inputs, doc = "test_pt_sums", 1, PAPER.inputs, "per-event node pT sums (a test)"
    batch_type = SumBatch

    def open(self, store, catalog):
        return PAPER.open(store, catalog)

    def read_window(self, src, blocks, perm):
        return PAPER.read_window(src, blocks, perm)

    def empty_window(self, src):
        return PAPER.empty_window(src)

    def batch(self, src, win, a, b, key):
        host = PAPER.host(src, win, a, b, key)
        seg = torch.repeat_interleave(torch.arange(len(host.n_node)), host.n_node)
        pt = torch.zeros(len(host.n_node)).index_add_(0, seg, host.nodes[:, 0])
        return SumBatch(pt, torch.from_numpy(batch_rng(key, 5).integers(0, 1 << 30, len(host.n_node))), host.event_id)

    def finish(self, src, item, device):
        return item


PT_SUMS = PtSums()


def test_third_party_representation_by_entry_point_same_batches_any_worker_count(stores, tmp_path, monkeypatch):
    """A representation from another package, registered through the ``hepfm_data.representations``
    entry-point group (a real dist-info on sys.path), is resolved by name by ``make_loader``; its batch
    type crosses the worker pipe as one buffer; the batches (incl. its random draws, seeded per batch)
    are the same with 0 and 2 workers and hold the events of the plain loader; an option it does not
    honour (augment) is refused by name."""
    from hepfm_data.representations import registry

    dist = tmp_path / "hepfm_rep_probe-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hepfm-rep-probe\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[hepfm_data.representations]\ntest_pt_sums = test_loader:PT_SUMS\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "REPRESENTATIONS", dict(registry.REPRESENTATIONS))
    assert "test_pt_sums" in registry.representation_names()
    kw = dict(device="cpu", batch_size=32, seed=4, **FAST)
    a = list(make_loader(urls(stores), num_workers=0, representation="test_pt_sums", **kw))
    b = list(make_loader(urls(stores), num_workers=2, representation="test_pt_sums", **kw))
    plain = list(make_loader(urls(stores), num_workers=0, **kw))
    assert all(type(x).__name__ == "SumBatch" for x in a + b)
    by_events = {tuple(y.event_id.tolist()): y for y in b}
    assert len(by_events) == len(a) == len(plain)
    for x, p in zip(a, plain):
        y = by_events[tuple(x.event_id.tolist())]
        assert torch.equal(x.tag, y.tag) and torch.equal(x.pt_sum, y.pt_sum)
        seg = torch.repeat_interleave(torch.arange(len(p.n_node)), p.n_node)
        torch.testing.assert_close(x.pt_sum, torch.zeros(len(p.n_node)).index_add_(0, seg, p.nodes[:, 0]))
    assert len({x.tag[0].item() for x in a}) == len(a)  # each batch draws its own numbers
    with pytest.raises(HepfmError, match="'test_pt_sums' does not take augment"):
        make_loader(urls(stores), num_workers=0, representation="test_pt_sums", augment=RotatePhi(), **kw)


def test_remote_s3_store_through_bounded_cache(stores, tmp_path):
    """A store on a real (moto) S3 server streams the same batches as the local copy, shards
    fetched into a checksum-verified local cache that stays within its byte bound."""
    s3fs = pytest.importorskip("s3fs")
    from hepfm_data.sources.testing import s3_server

    local = urls(stores, ("ttW",))
    with s3_server():
        fs = s3fs.S3FileSystem()
        fs.mkdir("hepfm-loader")
        fs.put(local[0], "hepfm-loader/stores/ttW", recursive=True)
        one_shard = max(i.bytes for i in open_store(local[0]).shards("train"))
        cache = tmp_path / "cache"
        kw = dict(batch_size=16, seed=9, block_size=32, window_blocks=2)
        remote = list(StreamingDataset("s3://hepfm-loader/stores/ttW", cache_dir=cache,
                                       cache_bytes=2 * one_shard, **kw))
        here = list(StreamingDataset(local, **kw))
        assert [x.event_id.tolist() for x in remote] == [y.event_id.tolist() for y in here]
        assert all(torch.equal(x.nodes, y.nodes) for x, y in zip(remote, here))
        on_disk = [p for p in (cache / "shards").iterdir() if p.is_dir()]  # the one cache's <sha256>/ entries
        assert 0 < len(on_disk) <= 3
        assert sum(f.stat().st_size for p in on_disk for f in p.rglob("*") if f.is_file()) <= 3 * one_shard


def test_clear_errors_for_bad_configuration(stores):
    """Unknown mixing, missing label/weight entries and a bad rank raise HepfmError naming the problem."""
    with pytest.raises(HepfmError, match="mixing must be"):
        StreamingDataset(urls(stores), mixing="balanced")
    with pytest.raises(HepfmError, match=r"labels has no entry for process\(es\) \['tttt'\]"):
        StreamingDataset(urls(stores), labels={"ttW": 0, "ttt": 1})
    with pytest.raises(HepfmError, match="weights has no entry"):
        StreamingDataset(urls(stores), weights={"ttW": 1.0})
    with pytest.raises(HepfmError, match="rank 2 is outside"):
        StreamingDataset(urls(stores), rank=2, world_size=2)


def torchrun(n: int, out: Path, phase: str, stores) -> None:
    """One real torchrun launch of tests/ddp_loader_worker.py on ``n`` ranks (gloo, CPU)."""
    worker = Path(__file__).with_name("ddp_loader_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--standalone",
           str(worker), str(out), phase, *urls(stores)]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def two_rank_job(stores, tmp_path_factory) -> Path:
    """One 2-rank torchrun launch serving both torchrun tests: two full epochs per rank, then loader states
    saved after 3 steps (count and node-budget batching); the folder of its JSON records."""
    out = tmp_path_factory.mktemp("torchrun")
    torchrun(2, out, "epochs", stores)
    return out


def test_torchrun_two_ranks_disjoint_complete_equal(stores, two_rank_job):
    """A real torchrun job (2 ranks, gloo, CPU, 1 DataLoader worker each, an all_reduce per step):
    per epoch the ranks' event ids are disjoint, their union is every train event, both ranks
    run the same number of steps (== len(loader)), and the two epochs are shuffled differently."""
    ranks = [json.loads((two_rank_job / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    expected = set().union(*(store_events(u) for u in urls(stores)))
    for e in range(2):
        a, b = (r["epochs"][e] for r in ranks)
        assert a["n_batches"] == b["n_batches"] == a["len"] == b["len"]
        assert not set(a["event_ids"]) & set(b["event_ids"])
        assert sorted(a["event_ids"] + b["event_ids"]) == sorted(expected)
    assert ranks[0]["epochs"][0]["event_ids"] != ranks[0]["epochs"][1]["event_ids"]


def test_torchrun_elastic_resume_on_other_world_sizes(stores, two_rank_job):
    """Real torchrun jobs (gloo, CPU): a state saved after 3 steps on 2 ranks x 1 worker resumes
    on 3 ranks x 0 workers (a 3-rank launch, rank/world from torch.distributed) and on 1 rank x 2 workers
    (rank 0 of that launch with world_size=1), with count and with node-budget batching: the
    batches of the interrupted run plus those of the resumed one are every train event exactly
    once, and the resumed ranks run the same number of steps (== len(loader))."""
    torchrun(3, two_rank_job, "resume", stores)
    expected = sorted(set().union(*(store_events(u) for u in urls(stores))))
    for world in (1, 3):
        for mode in ("count", "budget"):
            before = [e for r in range(2)
                      for e in json.loads((two_rank_job / f"save-{mode}-rank{r}.json").read_text())["event_ids"]]
            assert before, mode
            after = [json.loads((two_rank_job / f"resume{world}-{mode}-rank{r}.json").read_text())
                     for r in range(world)]
            assert len({(a["n_batches"], a["len"]) for a in after}) == 1 and after[0]["n_batches"] == after[0]["len"]
            assert sorted(before + [e for a in after for e in a["event_ids"]]) == expected, (world, mode)


def test_missing_shard_is_named(stores, tmp_path):
    """A shard deleted from a store makes iteration fail with StoreError naming the shard,
    not a library traceback and not a silently shorter epoch."""
    import shutil

    from hepfm_data.core.errors import StoreError

    copy = tmp_path / "ttt"
    shutil.copytree(stores["ttt"], copy)
    victim = open_store(str(copy)).shards("train")[1]
    shutil.rmtree(copy / victim.path)
    with pytest.raises(StoreError, match=victim.name):
        for _ in StreamingDataset(str(copy), batch_size=16, **FAST):
            pass


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_equal_cpu_batches(stores):
    """On a GPU, batches land on the device (edges computed there) and equal the CPU batches."""
    kw = dict(batch_size=32, seed=3, num_workers=2, **FAST)
    gpu = list(make_loader(urls(stores), device="cuda", **kw))
    cpu = list(make_loader(urls(stores), device="cpu", **kw))
    assert len(gpu) == len(cpu) and gpu[0].device.type == "cuda"
    for g, c in zip(gpu, cpu):
        assert torch.equal(g.event_id.cpu(), c.event_id) and torch.equal(g.senders.cpu(), c.senders)
        torch.testing.assert_close(g.edges.cpu(), c.edges, atol=2e-6, rtol=0)


def test_window_buffers_are_reused_only_when_unreferenced():
    """The recycled window matrices (``representations.graph._Buffers``) hand a buffer out again only once
    no view of it (a window, a batch's tensor) is alive: a kept batch keeps its bytes."""
    import torch

    from hepfm_data.representations.graph import _Buffers

    pool = _Buffers(keep=2)
    a = pool.get(100, 7)
    a[:] = 1.0
    kept = torch.from_numpy(a[10:20])  # a batch view outlives its window
    ptr = {a.__array_interface__["data"][0]}
    del a
    b = pool.get(100, 7)
    b[:] = 2.0
    assert float(kept.min()) == 1.0  # not handed out again while viewed
    ptr.add(b.__array_interface__["data"][0])
    del kept, b
    c = pool.get(90, 7)  # now free: reused (same memory, no new allocation)
    assert c.shape == (90, 7) and c.__array_interface__["data"][0] in ptr and len(pool.free) == 2
