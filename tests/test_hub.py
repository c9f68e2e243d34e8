"""load_dataset on local stores: names through the catalog, the HF split grammar, declared
Features, torch formatting, streaming, the Arrow cache, and missing-store messages."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, IterableDataset, IterableDatasetDict, List, ReadInstruction

from hepfm_data import load_catalog, load_dataset
from hepfm_data.core.errors import HepfmError, StoreError, UnknownNameError
from hepfm_data.core.events import SampleInfo
from hepfm_data.pipelines.build import write_store
from hepfm_data.serving.hub import build_command, resolve_name, storage_root
from hepfm_data.store import open_store
from hepfm_data.testing import synthetic_events, write_synthetic_stores

#: process -> (layout, events, seed, first event id)
STORES = {"ttH": ("parquet", 400, 1, 0), "stop": ("zarr", 300, 2, 1_000_000)}


def make_stores(root) -> None:
    write_synthetic_stores(root, STORES)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("stores")
    make_stores(r)
    return r


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def store_split(root, proc: str, split: str) -> dict[str, np.ndarray]:
    """Reference: a split of a store read shard by shard through the store API, concatenated."""
    store = open_store(f"{root}/{proc}")
    datas = [store.read_shard(info) for info in store.shards(split)]
    return {"event_id": np.concatenate([d.event_id for d in datas]),
            "label": np.concatenate([d.label for d in datas]),
            "nodes": np.concatenate([d.nodes for d in datas]),
            "n_node": np.concatenate([d.n_node for d in datas]),
            "multilabel": np.concatenate([d.multilabel for d in datas])}


def test_names_resolve_through_the_catalog():
    """hepfm/<process> labels with the process index over all processes (every process, the related studies'
    at index 40+ too, is its ClassLabel name at its index); hepfm/<task> with 0/1 over
    the task's classes; unknown or malformed names list the valid ones."""
    cat = load_catalog()
    t = resolve_name("hepfm/ttH_cp_odd", cat)
    assert t.processes == ("ttH_cp_odd",) and t.label_names[cat.process("ttH_cp_odd").index] == "ttH_cp_odd"
    for proc in cat.processes:  # study processes sit at catalog index 40+: the ClassLabel position is the index
        assert resolve_name(f"hepfm/{proc.name}", cat).label_names[proc.index] == proc.name
    task = resolve_name("hepfm/stop_vs_ttH", cat)
    assert task.processes == ("ttH", "stop") and task.labels == (0, 1) and task.label_names == ("ttH", "stop")
    assert "LOCAL PROXY" in resolve_name("hepfm/ttW_proxy", cat).description
    with pytest.raises(UnknownNameError, match="known|processes: ggF_H"):
        resolve_name("hepfm/ttH_cp_weird", cat)
    with pytest.raises(UnknownNameError, match="hepfm/<process>"):
        resolve_name("someone/else/data", cat)


def test_storage_root_precedence(monkeypatch, tmp_path):
    """storage= wins over $HEPFM_STORAGE, which wins over ~/.cache/hepfm/stores; URLs are kept as given."""
    monkeypatch.setenv("HEPFM_STORAGE", str(tmp_path / "env"))
    assert storage_root() == str(tmp_path / "env")
    assert storage_root("s3://bucket/stores/") == "s3://bucket/stores"
    monkeypatch.delenv("HEPFM_STORAGE")
    assert storage_root().endswith(".cache/hepfm/stores")


@pytest.mark.parametrize("spec", ["train", "train[:50]", "train[10%:20%]", "train+test", "validation[-7:]",
                                  "test[:3]+train[5:9]"])
def test_split_grammar_selects_the_right_events(root, cache, spec):
    """Each HF split spec gives exactly the events ReadInstruction selects, in store order."""
    ds = load_dataset("hepfm/ttH", split=spec, storage=root, cache_dir=cache)
    assert isinstance(ds, Dataset)
    store = open_store(f"{root}/ttH")
    sizes = {s: sum(i.n_events for i in store.shards(s)) for s in ("train", "validation", "test")}
    expected = np.concatenate([store_split(root, "ttH", ins.splitname)["event_id"][ins.from_:ins.to]
                               for ins in ReadInstruction.from_spec(spec).to_absolute(sizes)])
    assert np.array_equal(np.asarray(ds["event_id"], dtype=np.uint64), expected)


def test_features_values_and_torch_format(root, cache):
    """Declared Features (ClassLabel over all processes, 38 u8 multilabels, node lists); every value
    equals the store's ShardData (energy included); with_format('torch') gives typed tensors."""
    cat = load_catalog()
    ds = load_dataset("hepfm/stop", split="train", storage=root, cache_dir=cache)
    f = ds.features
    assert isinstance(f["label"], ClassLabel) and f["label"].names[cat.process("stop").index] == "stop"
    assert isinstance(f["multilabel"], List) and f["multilabel"].length == cat.labels.n_labels == 38
    assert [k for k in f if isinstance(f[k], List) and f[k].length == -1] == \
        ["pt", "eta", "phi", "energy", "btag", "charge", "type"]
    ref = store_split(root, "stop", "train")
    assert np.array_equal(np.asarray(ds["label"]), ref["label"].astype(np.int64))
    assert np.array_equal(np.asarray(ds["multilabel"], dtype=np.uint8), ref["multilabel"])
    assert np.array_equal(np.asarray(ds["n_node"]), ref["n_node"])
    for i, name in enumerate(["pt", "eta", "phi", "energy", "btag", "charge", "type"]):
        flat = np.concatenate([np.asarray(x, dtype=np.float32) for x in ds[name]])
        assert np.array_equal(flat, ref["nodes"][:, i]), name
    t = ds.with_format("torch")
    row = t[3]
    assert row["pt"].dtype == torch.float32 and row["btag"].dtype == torch.int64  # datasets' torch ints
    assert row["multilabel"].shape == (38,) and row["pt"].shape == (int(row["n_node"]),)
    batch = t[:5]
    assert batch["multilabel"].shape == (5, 38) and len(batch["pt"]) == 5


def test_task_labels_and_per_class_slicing(root, cache):
    """A task reads both classes' stores; split specs apply per class (train[:40] -> 40 + 40)
    and the label is the task label with the task's class names."""
    ds = load_dataset("hepfm/stop_vs_ttH", split="train[:40]", storage=root, cache_dir=cache)
    assert ds.num_rows == 80 and ds.features["label"].names == ["ttH", "stop"]
    labels = np.asarray(ds["label"])
    assert labels[:40].tolist() == [0] * 40 and labels[40:].tolist() == [1] * 40
    ids = np.asarray(ds["event_id"], dtype=np.uint64)
    assert np.array_equal(ids[:40], store_split(root, "ttH", "train")["event_id"][:40])
    assert np.array_equal(ids[40:], store_split(root, "stop", "train")["event_id"][:40])
    # the process dataset of the same shards still carries the process index (separate Arrow cache entry)
    assert set(load_dataset("hepfm/stop", split="train[:40]", storage=root, cache_dir=cache)["label"]) == \
        {load_catalog().process("stop").index}


def test_split_none_gives_all_splits(root, cache):
    """split=None returns a DatasetDict of train/validation/test with the manifest's sizes (an
    IterableDatasetDict with the same row counts when streaming)."""
    d = load_dataset("hepfm/ttH", split=None, storage=root, cache_dir=cache)
    m = open_store(f"{root}/ttH").manifest
    assert isinstance(d, DatasetDict) and {k: v.num_rows for k, v in d.items()} == m.split_sizes()
    it = load_dataset("hepfm/ttH", split=None, storage=root, streaming=True)
    assert isinstance(it, IterableDatasetDict) and {k: sum(1 for _ in v) for k, v in it.items()} == m.split_sizes()


def test_streaming_matches_map_style_and_shards_over_workers(root, cache):
    """streaming=True yields the same rows in the same order as the Dataset; it is an IterableDataset
    that works with with_format('torch') and a 2-worker DataLoader (each event exactly once)."""
    spec = "train[10%:90%]+test"
    ds = load_dataset("hepfm/stop_vs_ttH", split=spec, storage=root, cache_dir=cache)
    it = load_dataset("hepfm/stop_vs_ttH", split=spec, storage=root, streaming=True)
    assert isinstance(it, IterableDataset)
    rows = list(it)
    assert [r["event_id"] for r in rows] == ds["event_id"] and [r["pt"] for r in rows] == ds["pt"]
    loader = torch.utils.data.DataLoader(it.with_format("torch"), batch_size=None, num_workers=2)
    seen = sorted(int(r["event_id"]) for r in loader)
    assert seen == sorted(ds["event_id"])


def test_warm_load_reads_no_shard_and_new_content_invalidates(tmp_path):
    """After a first load, the Arrow cache serves the data with the shard files gone; a store rebuilt
    with different events (new sha256) is converted again instead of serving stale rows."""
    root, cache = tmp_path / "r", tmp_path / "c"
    write_store(str(root), "ttH", [(synthetic_events(120, 5, 0), SampleInfo(process="ttH", source="synthetic"))],
                layout="zarr", events_per_shard=50, progress=False)
    first = load_dataset("hepfm/ttH", split="train", storage=root, cache_dir=cache)["event_id"]
    shutil.rmtree(root / "ttH" / "shards")
    assert load_dataset("hepfm/ttH", split="train", storage=root, cache_dir=cache)["event_id"] == first
    shutil.rmtree(root)
    write_store(str(root), "ttH", [(synthetic_events(120, 6, 5000), SampleInfo(process="ttH", source="synthetic"))],
                layout="zarr", events_per_shard=50, progress=False)
    again = load_dataset("hepfm/ttH", split="train", storage=root, cache_dir=cache)["event_id"]
    assert min(again) >= 5000


def test_missing_store_prints_the_build_command(tmp_path):
    """A missing generatable store raises StoreError with the exact hepfm-data build command; an
    task's missing class store (tHq, from the LO generator) gives its build command; a bad split names the store and
    its splits."""
    root = str(tmp_path / "empty")
    cmd = " ".join(build_command("ggF_H", root))
    assert cmd == f"hepfm-data build ggF_H --generate 13000 --seed 1 --out {root}"
    with pytest.raises(StoreError) as err:
        load_dataset("hepfm/ggF_H", storage=root)
    assert cmd in str(err.value) and "build=True" in str(err.value)
    with pytest.raises(StoreError, match=f"hepfm-data build tHq --generate 13000 --seed 1 --out {root}"):
        load_dataset("hepfm/fcnc_vs_tHq", storage=root)


def test_bad_split_is_a_clear_error(root, cache, tmp_path):
    """A misspelled or malformed split names the spec and the valid splits, and is refused before any
    store is opened (a root without stores gives the split error, not a missing-store error)."""
    with pytest.raises(HepfmError, match=r"bad split 'trian'.*'train', 'validation', 'test'"):
        load_dataset("hepfm/ttH", split="trian", storage=root, cache_dir=cache)
    for bad in ("trian", "train[abc]", "train[:10%"):
        with pytest.raises(HepfmError, match=r"bad split") as err:
            load_dataset("hepfm/ttH", split=bad, storage=tmp_path / "nothing", cache_dir=cache)
        assert "no hepfm store" not in str(err.value)


@pytest.mark.skipif(importlib.util.find_spec("hepfm_data.cli.commands.build") is None,
                    reason="the `hepfm-data build` command is not in this tree yet")
def test_build_true_generates_the_missing_store(tmp_path, capsys):
    """build=<events> runs the printed `hepfm-data build ... --generate N --out ROOT` command and then
    loads the new store (Pythia 8 + emulation, a few hundred events)."""
    root = tmp_path / "stores"
    ds = load_dataset("hepfm/ZH", split="train+validation+test", storage=root, cache_dir=tmp_path / "c", build=200)
    assert " ".join(build_command("ZH", str(root), 200)) in capsys.readouterr().out
    m = open_store(f"{root}/ZH").manifest
    assert m.process == "ZH" and ds.num_rows == m.n_events > 0
    assert set(ds["label"]) == {load_catalog().process("ZH").index}
