"""Store API: write_store / open_store / read_shard in both layouts, determinism,
resume, append, verify, and an S3 (moto) round trip."""

from __future__ import annotations

import os

import numpy as np
import pytest

from hepfm_data.core.catalog import load_catalog
from hepfm_data.core.errors import ChecksumError, StoreError
from hepfm_data.core.events import SampleInfo
from hepfm_data.kernels import process_block
from hepfm_data.pipelines.build import write_store
from hepfm_data.store import SPLITS, Manifest, ShardData, ShardInfo, Store, open_store
from hepfm_data.testing import synthetic_events

N_BLOCK, N_BLOCKS = 150, 4


def blocks(n_blocks=N_BLOCKS, n=N_BLOCK, first_block=0):
    for i in range(first_block, first_block + n_blocks):
        yield synthetic_events(n, seed=100 + i, first_event_id=i * n), SampleInfo("ttH", "synthetic", seed=100 + i)


def reference():
    """event_id -> (multilabel, nodes [n,7]) computed directly by the kernels."""
    out = {}
    for ev, _ in blocks():
        b = process_block(ev, load_catalog(), seed=3)
        for i, eid in enumerate(b.event_id):
            sl = slice(b.offsets[i], b.offsets[i + 1])
            nodes = np.stack([b.pt[sl], b.eta[sl], b.phi[sl], b.pt[sl] * np.cosh(b.eta[sl]),
                              b.btag[sl], b.charge[sl], b.type[sl]], axis=1).astype(np.float32)
            out[int(eid)] = (b.multilabel[i], nodes, b.weight[i])
    return out


def read_all(store: Store) -> dict[int, tuple]:
    out = {}
    for info in store.shards():
        d = store.read_shard(info)
        for i, eid in enumerate(d.event_id):
            out[int(eid)] = (d.multilabel[i], d.nodes[d.offsets[i]:d.offsets[i + 1]], d.weight[i], info.split,
                             int(d.label[i]))
    return out


@pytest.mark.parametrize("layout", ["zarr", "parquet"])
def test_round_trip_matches_kernels(tmp_path, layout):
    """Every event written comes back once, in a split-homogeneous shard, with the kernels' nodes and labels."""
    store = write_store(str(tmp_path), "ttH", blocks(), layout=layout, events_per_shard=200, seed=3, progress=False)
    assert isinstance(store.manifest, Manifest) and store.manifest.layout == layout
    assert store.manifest.n_events == N_BLOCK * N_BLOCKS
    assert store.manifest.label_names[0] == "n_higgs" and len(store.manifest.label_names) == 38
    assert all(isinstance(s, ShardInfo) and s.n_events <= 200 for s in store.shards())
    assert sum(s.n_events for s in store.shards("train")) == store.manifest.split_sizes()["train"]
    ref, got = reference(), read_all(store)
    assert set(got) == set(ref)
    for eid, (ml, nodes, w, _split, label) in got.items():
        np.testing.assert_array_equal(ml, ref[eid][0])
        np.testing.assert_allclose(nodes, ref[eid][1], rtol=1e-6)
        assert w == ref[eid][2] and label == 4  # ttH multiclass index
    d = store.read_shard(0)
    assert isinstance(d, ShardData) and d.nodes.dtype == np.float32 and d.offsets.dtype == np.int64
    assert d.event_id.dtype == np.uint64 and d.label.dtype == np.int16 and d.multilabel.dtype == np.uint8
    np.testing.assert_array_equal(np.diff(d.offsets), d.n_node)
    met = d.nodes[d.offsets[1:] - 1]  # MET node is last in each event
    assert np.all(met[:, 6] == 4) and np.all(met[:, 1] == 0) and np.allclose(met[:, 3], met[:, 0])
    part = store.read_shard(0, 7, 31)
    np.testing.assert_array_equal(part.nodes, d.nodes[d.offsets[7]:d.offsets[31]])
    np.testing.assert_array_equal(part.offsets, d.offsets[7:32] - d.offsets[7])
    with pytest.raises(StoreError, match="outside"):
        store.read_shard(0, 5, 10**6)
    assert store.verify() == []


def test_layouts_agree_and_split_is_a_function_of_event_id(tmp_path):
    """Zarr and Parquet give identical ShardData; an event's split depends only on (salt, event_id)."""
    z = write_store(str(tmp_path / "z"), "ttH", blocks(), events_per_shard=10**6, progress=False)
    p = write_store(str(tmp_path / "p"), "ttH", blocks(), layout="parquet", events_per_shard=10**6, progress=False)
    for a, b in zip(z.shards(), p.shards()):
        da, db = z.read_shard(a), p.read_shard(b)
        for f in ("event_id", "weight", "label", "multilabel", "n_node", "offsets", "nodes"):
            np.testing.assert_array_equal(getattr(da, f), getattr(db, f))
    # same events in 2 big blocks instead of 4 small ones: identical splits, shards and bytes
    regrouped = [(synthetic_events(1, seed=0)[:0], SampleInfo("ttH", "synthetic"))]
    import awkward as ak
    evs = [e for e, _ in blocks()]
    regrouped = [(ak.concatenate(evs[:1]), SampleInfo("ttH", "synthetic", seed=100)),
                 (ak.concatenate(evs[1:]), SampleInfo("ttH", "synthetic", seed=101))]
    z2 = write_store(str(tmp_path / "z2"), "ttH", regrouped, events_per_shard=10**6, progress=False)
    assert [s.sha256 for s in z2.shards()] == [s.sha256 for s in z.shards()]
    sizes = z.manifest.split_sizes()
    assert sizes["train"] > sizes["validation"] > 0 and sizes["test"] > 0
    other = write_store(str(tmp_path / "salt"), "ttH", blocks(), events_per_shard=10**6, split_salt="other",
                        progress=False)
    assert other.shards("test")[0].sha256 != z.shards("test")[0].sha256


def test_same_seed_same_bytes_and_seed_changes_btag(tmp_path):
    """Same inputs and seed give byte-identical shards; another b-tag seed changes them."""
    a = write_store(str(tmp_path / "a"), "ttH", blocks(), seed=1, progress=False)
    b = write_store(str(tmp_path / "b"), "ttH", blocks(), seed=1, progress=False)
    c = write_store(str(tmp_path / "c"), "ttH", blocks(), seed=2, progress=False)
    assert [s.sha256 for s in a.shards()] == [s.sha256 for s in b.shards()]
    assert (tmp_path / "a/ttH/manifest.json").read_bytes() == (tmp_path / "b/ttH/manifest.json").read_bytes()
    assert [s.sha256 for s in a.shards()] != [s.sha256 for s in c.shards()]


class Killed(RuntimeError):
    pass


def dying(n_ok):
    for i, blk in enumerate(blocks()):
        if i == n_ok:
            raise Killed("simulated kill")
        yield blk


@pytest.mark.parametrize("layout", ["zarr", "parquet"])
def test_killed_build_resumes_without_rewriting_finished_shards(tmp_path, layout):
    """A build killed mid-way leaves no manifest (open fails clearly); re-running finishes it,
    keeps the shards already written, and equals an uninterrupted build."""
    with pytest.raises(Killed):
        write_store(str(tmp_path), "ttH", dying(3), layout=layout, events_per_shard=100, progress=False)
    with pytest.raises(StoreError, match="incomplete store"):
        open_store(str(tmp_path / "ttH"))
    shards = tmp_path / "ttH" / "shards"
    before = {p.name: p.stat().st_mtime_ns for p in shards.iterdir()}
    assert before  # some shards were finished before the kill
    with pytest.raises(StoreError, match="different parameters"):
        write_store(str(tmp_path), "ttH", blocks(), layout=layout, events_per_shard=99, progress=False)
    store = write_store(str(tmp_path), "ttH", blocks(), layout=layout, events_per_shard=100, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in shards.iterdir()}
    assert all(after[name] == t for name, t in before.items())
    assert not (tmp_path / "ttH" / "_build").exists()
    clean = write_store(str(tmp_path / "clean"), "ttH", blocks(), layout=layout, events_per_shard=100, progress=False)
    assert [s.to_dict() for s in store.shards()] == [s.to_dict() for s in clean.shards()]
    with pytest.raises(StoreError, match="already exists"):
        write_store(str(tmp_path), "ttH", blocks(), layout=layout, progress=False)


def test_append_adds_shards_without_rewriting(tmp_path):
    """mode='append' adds new shards after the old ones and leaves old shard files untouched."""
    first = write_store(str(tmp_path), "ttH", blocks(2), events_per_shard=100, progress=False)
    old = {s.path: (tmp_path / "ttH" / s.path / "zarr.json").stat().st_mtime_ns for s in first.shards()}
    store = write_store(str(tmp_path), "ttH", blocks(2, first_block=2), events_per_shard=100, mode="append",
                        progress=False)
    assert store.manifest.n_events == 4 * N_BLOCK
    assert [s.to_dict() for s in store.shards()[: len(old)]] == [s.to_dict() for s in first.shards()]
    assert {s.path: (tmp_path / "ttH" / s.path / "zarr.json").stat().st_mtime_ns
            for s in store.shards()[: len(old)]} == old
    assert len({s.path for s in store.shards()}) == len(store.shards())
    assert store.verify() == [] and len(store.manifest.provenance) == 4
    with pytest.raises(StoreError, match="b-tag seed"):
        write_store(str(tmp_path), "ttH", blocks(1, first_block=9), mode="append", seed=5, progress=False)
    with pytest.raises(StoreError, match="cannot append 'parquet'"):
        write_store(str(tmp_path), "ttH", blocks(1, first_block=9), mode="append", layout="parquet", progress=False)


@pytest.mark.parametrize("layout", ["zarr", "parquet"])
def test_verify_names_the_corrupt_shard(tmp_path, layout):
    """Flipping bytes in one shard makes verify report exactly that shard; check() raises ChecksumError."""
    store = write_store(str(tmp_path), "ttH", blocks(), layout=layout, events_per_shard=200, progress=False)
    bad = store.shards("validation")[0]
    target = tmp_path / "ttH" / bad.path
    if target.is_dir():
        target = next(p for p in sorted(target.rglob("*")) if p.is_file() and p.parent.name == "c")
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    target.write_bytes(bytes(raw))
    problems = store.verify()
    assert len(problems) == 1 and bad.path in problems[0]
    with pytest.raises(ChecksumError, match=bad.name):
        open_store(str(tmp_path / "ttH")).check()


def test_open_store_errors_name_the_problem(tmp_path):
    """A missing store, a foreign JSON and an unknown layout are reported clearly."""
    with pytest.raises(StoreError, match="not a store"):
        open_store(str(tmp_path / "nothing"))
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(StoreError, match="not a hepfm store manifest"):
        open_store(str(tmp_path / "x"))
    with pytest.raises(StoreError, match="unknown store layout"):
        write_store(str(tmp_path), "ttH", blocks(1), layout="hdf5", progress=False)
    with pytest.raises(StoreError, match="no events"):
        write_store(str(tmp_path), "ttH", [], progress=False)


@pytest.mark.parametrize("layout", ["zarr", "parquet"])
def test_s3_round_trip(s3_bucket, layout):
    """A store written to s3:// on a real moto server reads back and verifies through fsspec (one shard
    per split: a Zarr shard is ~90 objects, each a PUT)."""
    bucket, opts = s3_bucket
    root = f"s3://{bucket}/{layout}"
    store = write_store(root, "ttH", blocks(2), layout=layout, events_per_shard=300, storage_options=opts,
                        progress=False)
    again = open_store(f"{root}/ttH", storage_options=opts)
    assert again.manifest.n_events == 2 * N_BLOCK and again.verify() == []
    local = {s: set() for s in SPLITS}
    for info in again.shards():
        d = again.read_shard(info, 3, info.n_events)
        local[info.split].update(int(e) for e in d.event_id)
    assert sum(len(v) for v in local.values()) == 2 * N_BLOCK - 3 * len(again.shards())
    assert store.shards() == again.shards()
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"


@pytest.mark.parametrize("layout", ["zarr", "parquet"])
def test_damaged_or_missing_shard_reads_raise_store_error_naming_it(tmp_path, layout):
    """Reading a truncated shard raises StoreError naming the shard (no library traceback);
    a deleted shard is reported as missing by verify and by read_shard."""
    store = write_store(str(tmp_path), "ttH", blocks(), layout=layout, events_per_shard=200, progress=False)
    first, second = store.shards()[0], store.shards()[1]
    target = tmp_path / "ttH" / first.path
    files = [p for p in sorted(target.rglob("*")) if p.is_file() and p.parent.name == "c"] if target.is_dir() \
        else [target]
    for f in files:
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    fresh = open_store(str(tmp_path / "ttH"))
    with pytest.raises(StoreError, match=first.name):
        fresh.read_shard(first)
    victim = tmp_path / "ttH" / second.path
    if victim.is_dir():
        import shutil

        shutil.rmtree(victim)
    else:
        victim.unlink()
    problems = fresh.verify()
    assert any(second.path in p and "missing" in p for p in problems)
    assert any(first.path in p and "sha256" in p for p in problems)
    with pytest.raises(StoreError, match=second.name):
        fresh.read_shard(second)


def test_split_hash_fractions_and_stability():
    """Over 200k ids the split sizes match the fractions within 0.5%; a (salt, id) pair always maps to
    the same split whatever the batch it arrives in; bad fractions are refused."""
    from hepfm_data.core.errors import HepfmError
    from hepfm_data.store.splits import assign_splits

    ids = np.arange(10**9, 10**9 + 200_000, dtype=np.uint64)
    s = assign_splits(ids, "hepfm-v1", (0.8, 0.1, 0.1))
    np.testing.assert_allclose(np.bincount(s, minlength=3) / len(ids), [0.8, 0.1, 0.1], atol=0.005)
    perm = np.random.default_rng(0).permutation(len(ids))
    np.testing.assert_array_equal(assign_splits(ids[perm][:777], "hepfm-v1", (0.8, 0.1, 0.1)), s[perm][:777])
    assert np.mean(assign_splits(ids, "other", (0.8, 0.1, 0.1)) == s) < 0.8
    assert not np.any(assign_splits(ids, "x", (1.0, 0.0, 0.0)))
    with pytest.raises(HepfmError, match="fractions"):
        assign_splits(ids, "x", (0.5, 0.1, 0.1))
