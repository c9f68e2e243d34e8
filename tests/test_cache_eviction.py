"""The one shard cache (``sources.cache.ShardCache`` via ``store.cache.RemoteShards``) under load: content
addressed, bounded, evicting only its own ``<sha256>/`` entries and never one in use, and correct when
several processes share it (DataLoader workers / ranks on one machine) against a real HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hepfm_data.sources.cache import ShardCache
from hepfm_data.sources.testing import http_server
from hepfm_data.store import open_store
from hepfm_data.store.cache import RemoteShards
from hepfm_data.testing import shard_digest as digest
from hepfm_data.testing import write_synthetic_stores

STORES = {"ttH": ("parquet", 300, 1, 0), "stop": ("zarr", 300, 2, 1_000_000)}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    write_synthetic_stores(str(root / "stores"), STORES)
    with http_server(root) as srv:
        yield root, srv


def test_evicts_least_recent_own_entries_only_and_never_one_in_use(served, tmp_path):
    """With a bound of one shard, reading shards one after another keeps the cache at the bound; folders
    it did not create (arrow/, stores/, a non-hex folder inside shards/) survive; an entry held by a
    reader is not deleted even when the bound would require it."""
    root, srv = served
    store = open_store(f"{srv.url}/stores/ttH")
    infos = store.shards()
    for name in ("arrow", "stores"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.bin").write_bytes(b"x" * 100_000)
        os.utime(tmp_path / name, (1, 1))  # older than every entry
    (tmp_path / "shards" / "not-an-entry").mkdir(parents=True)
    (tmp_path / "shards" / "not-an-entry" / "keep.bin").write_bytes(b"x" * 100_000)
    shards = RemoteShards(tmp_path, max_bytes=max(i.bytes for i in infos))
    with shards.reader(store, infos[0]) as read_held:  # held while the others come and go
        for info in infos[1:]:
            assert digest(shards.read(store, info)) == digest(open_store(f"{root}/stores/ttH").read_shard(info))
        kept = {p.name for p in shards.cache.entries()}
        assert infos[0].sha256 in kept and infos[-1].sha256 in kept and len(kept) == 2
        assert len(read_held(0, None)) == infos[0].n_events
    assert all((tmp_path / n / "data.bin").exists() for n in ("arrow", "stores"))
    assert (tmp_path / "shards" / "not-an-entry" / "keep.bin").exists()
    assert not [p for p in (tmp_path / "shards").glob("*.part")]  # no leftover temporaries


def test_cache_paths_come_from_content_and_validated_names(tmp_path):
    """Entries are <root>/shards/<sha256>/<name>; a key that is not a sha256 or a name with a path in it
    is refused before any file is touched."""
    cache = ShardCache(tmp_path, max_bytes=0)
    sha = "ab" * 32
    assert cache.entry(sha, "train-00000.zarr") == tmp_path / "shards" / sha / "train-00000.zarr"
    for bad_sha, bad_name in (("../" + "a" * 61, "x.zarr"), (sha.upper(), "x.zarr"), (sha, "../x.zarr"),
                              (sha, "/etc/passwd"), (sha, ".bashrc"), (sha, "a/b")):
        with pytest.raises(ValueError, match="sha256 hex digest|plain file name"):
            cache.entry(bad_sha, bad_name)
    assert not list(tmp_path.iterdir())


WORKER = textwrap.dedent("""
    import json, random, sys
    from hepfm_data.store import open_store
    from hepfm_data.testing import shard_digest
    from hepfm_data.store.cache import RemoteShards
    url, cache, bound, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store, shards = open_store(url), RemoteShards(cache, bound)
    infos = store.shards() * 2
    random.Random(seed).shuffle(infos)
    out = {}
    for info in infos:
        d = shard_digest(shards.read(store, info))
        assert out.setdefault(info.path, d) == d, info.path
    print(json.dumps(out))
""")


def test_processes_sharing_one_small_cache_read_correct_data(served, tmp_path, proc="stop"):
    """Three processes read every shard of a remote Zarr store (directories, the harder case)
    twice each in different orders through one cache bounded to ~1.5 shards, so entries are evicted
    while others read them: every read equals the local store's, no process fails, the cache ends
    within its bound plus one shard and holds no temporaries."""
    root, srv = served
    local = open_store(f"{root}/stores/{proc}")
    expected = {i.path: digest(local.read_shard(i)) for i in local.shards()}
    biggest = max(i.bytes for i in local.shards())
    bound = int(1.5 * biggest)
    files = sum(sum(1 for f in (root / "stores" / proc / i.path).rglob("*") if f.is_file()) if i.path.endswith(".zarr")
                else 1 for i in local.shards())
    gets = srv.gets
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, f"{srv.url}/stores/{proc}", str(tmp_path), str(bound),
                               str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for seed in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        assert json.loads(out.strip().splitlines()[-1]) == expected
    assert srv.gets - gets > files  # shards were evicted and fetched again while the others read
    cache = ShardCache(tmp_path, bound)
    assert cache.size_bytes() <= bound + biggest
    assert not [p for p in (tmp_path / "shards").iterdir() if p.name.startswith(".")]
