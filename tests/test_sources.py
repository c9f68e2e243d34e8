"""Sources layer: retry classification and backoff, the retrying fsspec filesystems,
and the checksum-verified cache, against a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import os
import pickle

import aiohttp
import botocore.exceptions
import fsspec
import pytest
from fsspec.implementations.http import HTTPFileSystem
from fsspec.implementations.local import LocalFileSystem

from hepfm_data.core.errors import ChecksumError, HepfmError, RemoteError
from hepfm_data.sources import RetryPolicy, call_with_retries, fetch, is_transient, resolve, sha256_file
from hepfm_data.sources.testing import Fault, http_server

FAST = RetryPolicy(attempts=4, base_delay=0.001)
PAYLOAD = bytes(range(256)) * 8000  # 2 MB, > one fsspec read block


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    (root / "blob.bin").write_bytes(PAYLOAD)
    with http_server(root) as srv:
        yield srv


@pytest.fixture
def srv(served):
    served.fault = None
    yield served
    served.fault = None


def test_transient_classification_on_real_library_errors():
    """Connection resets, timeouts, dropped bodies, 5xx/429 and botocore connection errors are
    transient; missing files, 403 and hepfm's own errors are not; the cause chain is followed."""
    resp_503 = aiohttp.ClientResponseError(None, (), status=503)
    assert is_transient(ConnectionResetError(104, "reset"))
    assert is_transient(TimeoutError())
    assert is_transient(aiohttp.ClientPayloadError("Response payload is not completed"))
    assert is_transient(resp_503)
    assert is_transient(aiohttp.ClientResponseError(None, (), status=429))
    assert is_transient(botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"))
    assert not is_transient(aiohttp.ClientResponseError(None, (), status=403))
    assert not is_transient(FileNotFoundError("gone"))
    assert not is_transient(ValueError("bad data"))
    assert not is_transient(RemoteError("already gave up"))
    try:
        try:
            raise ConnectionResetError(104, "reset")
        except ConnectionResetError as inner:
            raise OSError(5, "s3fs-style wrapper") from inner
    except OSError as outer:
        assert is_transient(outer)


def test_retry_policy_backoff_and_env(monkeypatch):
    """Delays grow geometrically up to max_delay; env vars override; bad values name the variable."""
    assert list(RetryPolicy(attempts=5, base_delay=0.5, max_delay=3).delays()) == [0.5, 1.0, 2.0, 3.0]
    assert list(RetryPolicy(attempts=1).delays()) == []
    monkeypatch.setenv("HEPFM_RETRIES", "7")
    monkeypatch.setenv("HEPFM_RETRY_DELAY", "0.25")
    assert RetryPolicy.from_env() == RetryPolicy(attempts=7, base_delay=0.25)
    monkeypatch.setenv("HEPFM_RETRIES", "many")
    with pytest.raises(HepfmError, match="HEPFM_RETRIES"):
        RetryPolicy.from_env()
    with pytest.raises(HepfmError, match="attempts"):
        RetryPolicy(attempts=0)


def test_call_with_retries_counts_attempts():
    """Transient failures are retried until success; after the last attempt RemoteError names the URL;
    a permanent error is raised at once without retrying."""
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError(104, "reset by peer")
        return "ok"

    assert call_with_retries(flaky, url="s3://b/k", what="get", policy=FAST) == "ok" and len(calls) == 3
    calls.clear()

    def broken():
        calls.append(1)
        raise ConnectionResetError(104, "reset by peer")

    with pytest.raises(RemoteError, match=r"s3://b/k: get failed after 4 attempt") as err:
        call_with_retries(broken, url="s3://b/k", what="get", policy=FAST)
    assert len(calls) == 4 and isinstance(err.value.__cause__, ConnectionResetError)
    calls.clear()

    def missing():
        calls.append(1)
        raise FileNotFoundError("s3://b/k")

    with pytest.raises(FileNotFoundError):
        call_with_retries(missing, url="s3://b/k", what="get", policy=FAST)
    assert len(calls) == 1


def test_resolve_wraps_remote_only_and_copies_options(tmp_path):
    """Local paths keep fsspec's LocalFileSystem; HTTP gets a retrying subclass (still an HTTPFileSystem,
    still async, picklable); the caller's storage_options dict is not mutated."""
    fs, path = resolve(str(tmp_path))
    assert type(fs) is LocalFileSystem and path == str(tmp_path)
    opts = {"client_kwargs": {"trust_env": False}}
    before = repr(opts)
    fs, _ = resolve("http://127.0.0.1:9/x", opts, retry=FAST)
    assert repr(opts) == before
    assert isinstance(fs, HTTPFileSystem) and type(fs) is not HTTPFileSystem and fs.async_impl
    again = pickle.loads(pickle.dumps(fs))
    assert type(again) is type(fs) and again._hepfm_retry == FAST
    chained, _ = resolve("simplecache::http://127.0.0.1:9/x")
    assert not hasattr(chained, "_hepfm_retry")


def test_http_dropped_mid_body_is_retried(srv):
    """The server cuts the connection after 1000 body bytes twice; cat_file and a ranged read
    through an opened file both succeed with the exact bytes."""
    fs, path = resolve(f"{srv.url}/blob.bin", retry=FAST)
    srv.fault = Fault(drop_after=1000, times=2)
    assert fs.cat_file(path) == PAYLOAD
    assert srv.fault.hits == {"": 2}
    srv.fault = Fault(drop_after=100, times=2)
    with fs.open(path, "rb", block_size=1 << 16) as f:
        f.seek(1_000_003)
        assert f.read(70_000) == PAYLOAD[1_000_003:1_070_003]
    assert srv.fault.hits == {"": 2}


def test_http_always_failing_raises_remote_error_naming_url(srv):
    """A server that always drops the body, or always answers 503, ends in RemoteError naming the
    URL after exactly `attempts` GETs; a 404 is FileNotFoundError after one GET."""
    fs, path = resolve(f"{srv.url}/blob.bin", retry=FAST)
    for fault in (Fault(drop_after=10), Fault(status=503)):
        srv.fault = fault
        gets = srv.gets
        with pytest.raises(RemoteError, match=rf"{srv.url}/blob.bin: cat_file failed after 4 attempt"):
            fs.cat_file(path)
        assert srv.gets - gets == 4
    srv.fault = None
    gets = srv.gets
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{srv.url}/missing.bin")
    assert srv.gets - gets == 1
    assert not fs.exists(f"{srv.url}/missing.bin") and fs.exists(path)


def test_http_read_timeout_is_retried(srv):
    """A server that stalls 1 s before the body trips a 0.2 s socket read timeout (aiohttp option passed
    through storage_options); the stalled request is retried and succeeds; always stalling ends in
    RemoteError naming the URL."""
    opts = {"client_kwargs": {"timeout": aiohttp.ClientTimeout(sock_read=0.2)}}
    fs, path = resolve(f"{srv.url}/blob.bin", opts, retry=RetryPolicy(attempts=2, base_delay=0.001))
    srv.fault = Fault(stall=1.0, times=1)
    assert fs.cat_file(path) == PAYLOAD and srv.fault.hits == {"": 1}
    srv.fault = Fault(stall=1.0)
    with pytest.raises(RemoteError, match=rf"{srv.url}/blob.bin: cat_file failed after 2 attempt.*Timeout"):
        fs.cat_file(path)


def test_cache_hit_miss_and_corruption(srv, tmp_path):
    """First fetch downloads and verifies; a hit downloads nothing; a corrupted cached copy is
    detected by its checksum and fetched again; a wrong expected digest raises ChecksumError
    naming the URL and leaves no file behind."""
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    dest = tmp_path / "cache" / "blob.bin"
    url = f"{srv.url}/blob.bin"
    gets = srv.gets
    assert fetch(url, dest, sha256=sha, retry=FAST) == dest and sha256_file(dest) == sha
    assert srv.gets > gets
    gets = srv.gets
    fetch(url, dest, sha256=sha, retry=FAST)
    assert srv.gets == gets  # hit: no request at all
    with open(dest, "r+b") as f:  # flip one byte in place, keep the size
        f.seek(12345)
        b = f.read(1)
        f.seek(12345)
        f.write(bytes([b[0] ^ 0xFF]))
    assert sha256_file(dest) != sha
    fetch(url, dest, sha256=sha, retry=FAST)
    assert srv.gets > gets and sha256_file(dest) == sha
    bad = tmp_path / "cache" / "bad.bin"
    with pytest.raises(ChecksumError, match=rf"{url}: sha256 {sha} does not match the expected 0+"):
        fetch(url, bad, sha256="0" * 64, retry=FAST)
    assert not bad.exists() and sorted(os.listdir(tmp_path / "cache")) == ["blob.bin"]


def test_cache_fetch_survives_drops_and_fails_cleanly(srv, tmp_path):
    """Transient drops during a cache fill are retried; a permanently failing server gives
    RemoteError naming the URL and no partial file in the cache."""
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    url = f"{srv.url}/blob.bin"
    srv.fault = Fault(drop_after=5000, times=2)
    assert sha256_file(fetch(url, tmp_path / "a.bin", sha256=sha, retry=FAST)) == sha
    srv.fault = Fault(drop_after=5000)
    with pytest.raises(RemoteError, match=url):
        fetch(url, tmp_path / "b.bin", sha256=sha, retry=FAST)
    assert sorted(os.listdir(tmp_path)) == ["a.bin"]


def test_fsspec_memory_filesystem_is_not_wrapped():
    """In-memory filesystems are returned as fsspec makes them (nothing to retry)."""
    fs, _ = resolve("memory://x/y")
    assert type(fs) is fsspec.get_filesystem_class("memory")
