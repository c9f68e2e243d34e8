"""Untrusted stores (issue 17): hostile manifests served by a real HTTP server and a real moto S3
server on loopback are refused at open, before anything is read or written; the one shard cache
writes only inside its own root; Zarr metadata that asks for more than a shard can hold is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hepfm_data import load_dataset
from hepfm_data.errors import StoreError
from hepfm_data.sources.testing import http_server
from hepfm_data.store import open_store
from hepfm_data.testing import write_synthetic_stores

STORES = {"ttH": ("parquet", 120, 1, 0), "stop": ("zarr", 100, 2, 1_000_000)}


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()} if path.exists() else set()


@pytest.fixture
def www(tmp_path):
    """``tmp/www/stores/<process>`` (served root) with valid stores; ``tmp/`` also holds the cache."""
    root = tmp_path / "www" / "stores"
    write_synthetic_stores(str(root), STORES)
    return tmp_path / "www"


def edit_manifest(store_dir: Path, fn) -> dict:
    path = store_dir / "manifest.json"
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))
    return d


def test_issue17_dotdot_shard_path_over_http_is_refused_and_writes_nothing(www, tmp_path):
    """The issue's reproduction: a manifest served over HTTP lists its first shard at
    ``shards/../../../../x.parquet`` (the shard's real bytes are also served at the place the
    ``..`` lead to, so the sha256 matches). load_dataset must refuse the manifest with an error
    naming the store URL and the entry, and write nothing outside the cache (nothing at all)."""
    store = www / "stores" / "ttH"
    first = json.loads((store / "manifest.json").read_text())["shards"][0]
    shutil.copy(store / first["path"], www / "x.parquet")  # where the traversal points, seen from the server

    def hostile(d):
        d["shards"][0]["path"] = "shards/../../../../x.parquet"

    edit_manifest(store, hostile)
    cache = tmp_path / "cache" / "inner"
    before = files_under(tmp_path) - files_under(www)
    with http_server(www) as srv:
        with pytest.raises(StoreError, match=r"(?s)127\.0\.0\.1.*/ttH/manifest\.json.*shards/\.\./\.\./\.\./\.\./x\.parquet"):
            load_dataset("hepfm/ttH", split="train", storage=f"{srv.url}/stores", cache_dir=cache)
    assert files_under(tmp_path) - files_under(www) == before  # nothing written anywhere


def test_issue17_local_manifest_cannot_point_outside_the_store(www, tmp_path):
    """Locally, a manifest path ``../../outside.parquet`` made open_store read a shard outside the
    store's root; it is now refused at open_store, naming the manifest and the entry."""
    store = www / "stores" / "ttH"
    first = json.loads((store / "manifest.json").read_text())["shards"][0]
    shutil.copy(store / first["path"], www / "outside.parquet")
    edit_manifest(store, lambda d: d["shards"][0].__setitem__("path", "../../outside.parquet"))
    with pytest.raises(StoreError, match=r"ttH/manifest\.json.*shard 0.*\.\./\.\./outside\.parquet"):
        open_store(str(store))
