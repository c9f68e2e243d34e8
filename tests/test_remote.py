"""Remote stores end to end: a real moto S3 server and a real HTTP server on 127.0.0.1.
Stores written to S3 read back byte-identical (open_store, load_dataset, streaming); the local
shard cache is verified by checksum; HTTP cut mid-read is retried, or ends in RemoteError."""

from __future__ import annotations

import copy
import hashlib

import aiohttp
import numpy as np
import pytest

from hepfm_data import load_dataset
from hepfm_data.core.errors import RemoteError
from hepfm_data.sources import RetryPolicy, resolve
from hepfm_data.sources.testing import Fault, http_server, s3_server
from hepfm_data.store import open_store
from hepfm_data.store.layouts import local_sha256
from hepfm_data.testing import write_synthetic_stores

FAST = RetryPolicy(attempts=4, base_delay=0.001)
STORES = {"ttH": ("parquet", 250, 1, 0), "stop": ("zarr", 200, 2, 1_000_000)}
TASK = "hepfm/stop_vs_ttH"


def write(root: str, storage_options=None) -> None:
    write_synthetic_stores(root, STORES, storage_options=storage_options)


@pytest.fixture(scope="module")
def local_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    write(str(root))
    return root


@pytest.fixture(scope="module")
def s3(local_root):
    """(endpoint, root URL, storage_options) of the same stores written to a moto S3 bucket."""
    with s3_server() as endpoint:
        import s3fs

        s3fs.S3FileSystem().mkdir("hepfm-test")  # no region argument: moto + us-east-1
        opts = {"endpoint_url": endpoint}
        write("s3://hepfm-test/stores", storage_options=opts)
        yield endpoint, "s3://hepfm-test/stores", opts


@pytest.fixture(scope="module")
def http(local_root):
    with http_server(local_root) as srv:
        yield srv


def tables_equal(a, b) -> bool:
    return a.data.table.equals(b.data.table)


def test_s3_store_is_byte_identical(local_root, s3):
    """write_store to s3:// produces the same shard bytes (same sha256, same file bytes) as locally, and
    open_store over S3 reads the same arrays."""
    _, root, opts = s3
    for proc in STORES:
        loc, rem = open_store(f"{local_root}/{proc}"), open_store(f"{root}/{proc}", opts)
        assert [(s.path, s.sha256, s.bytes) for s in loc.manifest.shards] == \
            [(s.path, s.sha256, s.bytes) for s in rem.manifest.shards]
        fs, base = resolve(f"{root}/{proc}", opts)
        for info in rem.shards():
            path = f"{base}/{info.path}"
            if fs.isfile(path):
                assert fs.cat_file(path) == (local_root / proc / info.path).read_bytes()
            a, b = loc.read_shard(info), rem.read_shard(info)
            for field in ("event_id", "weight", "label", "multilabel", "n_node", "offsets", "nodes"):
                assert np.array_equal(getattr(a, field), getattr(b, field)), (proc, info.path, field)


def test_load_dataset_from_s3_equals_local_and_caches_verified(local_root, s3, tmp_path):
    """load_dataset(storage='s3://...') equals the local load (Arrow tables equal); each shard was cached
    locally at <cache>/shards/<sha256>/<name> with the manifest's sha256; the caller's storage_options
    dict is left untouched."""
    _, root, opts = s3
    before = copy.deepcopy(opts)
    remote = load_dataset(TASK, split="train+validation", storage=root, storage_options=opts,
                          cache_dir=tmp_path / "c")
    assert opts == before
    local = load_dataset(TASK, split="train+validation", storage=local_root, cache_dir=tmp_path / "l")
    assert remote.num_rows == local.num_rows > 0 and tables_equal(remote, local)
    copies = [p for p in (tmp_path / "c" / "shards").glob("*/*-000*") if p.suffix in (".parquet", ".zarr")]
    shas = {s.sha256 for proc in STORES for s in open_store(f"{local_root}/{proc}").manifest.shards
            if s.split in ("train", "validation")}
    assert len(copies) == len(shas) and {local_sha256(str(p))[0] for p in copies} == shas
    assert all(p.parent.name == local_sha256(str(p))[0] for p in copies)  # content-addressed: <sha256>/<name>


def test_corrupt_cached_shard_is_fetched_again(s3, tmp_path):
    """A cached shard copy damaged on disk fails its checksum and is re-fetched from S3 when the data
    is next prepared; the rows are unchanged."""
    _, root, opts = s3
    cache = tmp_path / "c"
    first = load_dataset("hepfm/ttH", split="test", storage=root, storage_options=opts, cache_dir=cache)
    rows = first["event_id"]
    (copy_path,) = (cache / "shards").glob("*/test-00000-0000.parquet")
    good = hashlib.sha256(copy_path.read_bytes()).hexdigest()
    copy_path.write_bytes(b"garbage" + copy_path.read_bytes()[7:])
    del first
    for arrow in (cache / "arrow").rglob("*.arrow"):  # force the shard to be read again
        arrow.unlink()
    again = load_dataset("hepfm/ttH", split="test", storage=root, storage_options=opts, cache_dir=cache)
    assert again["event_id"] == rows and hashlib.sha256(copy_path.read_bytes()).hexdigest() == good


def test_streaming_from_s3_equals_local(local_root, s3):
    """streaming=True over S3 yields the local store's rows in order (no local files needed)."""
    _, root, opts = s3
    spec = "train[:30%]+test"
    remote = list(load_dataset(TASK, split=spec, storage=root, storage_options=opts, streaming=True))
    local = list(load_dataset(TASK, split=spec, storage=local_root, streaming=True))
    assert len(remote) == len(local) > 0 and remote == local


def test_http_store_survives_connection_cuts(local_root, http, tmp_path):
    """Over HTTP, the first two requests for every shard file are cut after 200 bytes; retries with
    backoff recover and the dataset (non-streaming and streaming) equals the local one; aiohttp
    options pass through storage_options."""
    ref = load_dataset(TASK, split="train", storage=local_root, cache_dir=tmp_path / "l")
    http.fault = Fault(drop_after=200, times=2, path_contains="/shards/", per_path=True)
    try:
        opts = {"client_kwargs": {"timeout": aiohttp.ClientTimeout(sock_read=30)}}  # not JSON: deep-copied
        got = load_dataset(TASK, split="train", storage=http.url, cache_dir=tmp_path / "h", retry=FAST,
                           storage_options=opts)
        assert tables_equal(got, ref) and opts["client_kwargs"]["timeout"].sock_read == 30
        parquet = {k: v for k, v in http.fault.hits.items() if k.endswith(".parquet")}
        assert len(parquet) >= 3 and set(parquet.values()) == {2} and len(http.fault.hits) > 20
        http.fault = Fault(drop_after=200, times=2, path_contains="/shards/", per_path=True)
        stream = list(load_dataset(TASK, split="train", storage=http.url, streaming=True, retry=FAST))
        assert [r["event_id"] for r in stream] == ref["event_id"]
        assert max(http.fault.hits.values()) == 2 and len(http.fault.hits) > 20
    finally:
        http.fault = None


def test_http_always_cut_raises_remote_error_naming_the_shard(http, tmp_path, monkeypatch):
    """When the server cuts every shard request, load_dataset fails with RemoteError naming the shard's
    URL after the last retry, and leaves no shard copy or Arrow file in the cache."""
    monkeypatch.setenv("HEPFM_RETRIES", "3")
    monkeypatch.setenv("HEPFM_RETRY_DELAY", "0.001")
    http.fault = Fault(drop_after=100, path_contains="/shards/")
    try:
        with pytest.raises(RemoteError, match=rf"{http.url}/ttH/shards/train-00000-0000\.parquet: .*after 3 attempt"):
            load_dataset("hepfm/ttH", split="train", storage=http.url, cache_dir=tmp_path / "h")
    finally:
        http.fault = None
    assert not [p for p in (tmp_path / "h").rglob("*") if p.is_file()]
