"""hepfm-data export: a folder that plain datasets.load_dataset(DIR) reads with the right splits,
Features and values; row groups and files are bounded; the card's front matter is valid."""

from __future__ import annotations

import datasets
import pyarrow.parquet as pq
import pytest
import yaml

from hepfm_data import load_dataset
from hepfm_data.cli.main import main
from hepfm_data.core.errors import HepfmError
from hepfm_data.serving.export import export_dataset
from hepfm_data.store import open_store
from hepfm_data.testing import write_synthetic_stores


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("stores")
    write_synthetic_stores(r, {"ttH": ("parquet", 260, 1, 0), "stop": ("zarr", 260, 2, 1_000_000)})
    return r


def test_export_reads_back_with_plain_datasets(root, tmp_path):
    """datasets.load_dataset(DIR) (no hepfm involved) gives the manifest's split sizes, the same
    Features (ClassLabel names included) and the same rows as hepfm's load_dataset."""
    out = tmp_path / "hf"
    sizes = export_dataset("hepfm/stop", out, storage=root, rows_per_group=50, rows_per_file=120, progress=False)
    manifest = open_store(f"{root}/stop").manifest
    expected = {k: v for k, v in manifest.split_sizes().items() if v}
    assert sizes == expected
    plain = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hfcache"))
    assert {k: v.num_rows for k, v in plain.items()} == expected
    ours = load_dataset("hepfm/stop", split=None, storage=root, cache_dir=tmp_path / "c")
    for split in expected:
        assert plain[split].features == ours[split].features
        assert plain[split].data.table.equals(ours[split].data.table.cast(plain[split].data.table.schema))
    files = sorted((out / "data").glob("train-*.parquet"))
    assert len(files) == -(-expected["train"] // 120)
    assert files[0].name == f"train-00000-of-{len(files):05d}.parquet"
    for f in files:
        md = pq.ParquetFile(f).metadata
        assert md.num_rows <= 120 and all(md.row_group(i).num_rows <= 50 for i in range(md.num_row_groups))


def test_card_front_matter_and_task_export(root, tmp_path):
    """The card's YAML front matter lists one data_files pattern per split under configs; a task exports
    both classes with 0/1 labels; the CLI writes the same folder and refuses a non-empty one."""
    out = tmp_path / "task"
    assert main(["export", "hepfm/stop_vs_ttH", str(out), "--storage", str(root), "--quiet"]) == 0
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["configs"][0]["data_files"] == [{"split": s, "path": f"data/{s}-*.parquet"}
                                                for s in ("train", "validation", "test")]
    plain = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hfcache"))
    assert plain.features["label"].names == ["ttH", "stop"] and set(plain["label"]) == {0, 1}
    n = sum(open_store(f"{root}/{p}").manifest.split_sizes()["train"] for p in ("ttH", "stop"))
    assert plain.num_rows == n
    assert main(["export", "hepfm/stop_vs_ttH", str(out), "--storage", str(root), "--quiet"]) == 1
    with pytest.raises(HepfmError, match="not empty"):
        export_dataset("hepfm/ttH", out, storage=root, progress=False)
    export_dataset("hepfm/ttH", out, storage=root, overwrite=True, progress=False)
    assert datasets.load_dataset(str(out), split="test", cache_dir=str(tmp_path / "hf2")).features["label"].names[4] \
        == "ttH"
