"""ShardCache eviction touches only its own ``<sha256>/`` entries (a shared cache_dir keeps other folders)."""

import hashlib
import os

from hepfm_data.loader.cache import ShardCache


def test_evict_keeps_folders_it_did_not_create(tmp_path):
    foreign = ["arrow", "remote", "stores"]
    for name in foreign:  # hub's folders under the same root, older than any entry
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.bin").write_bytes(b"x" * 1000)
        os.utime(tmp_path / name, (1, 1))
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(3)]
    for i, sha in enumerate(shas):
        (tmp_path / sha).mkdir()
        (tmp_path / sha / "shard.parquet").write_bytes(b"y" * 1000)
        os.utime(tmp_path / sha, (10 + i, 10 + i))
    cache = ShardCache(tmp_path, max_bytes=0)
    cache._evict(keep=shas[-1])
    assert all((tmp_path / name / "data.bin").exists() for name in foreign)
    assert not (tmp_path / shas[0]).exists() and not (tmp_path / shas[1]).exists()
    assert (tmp_path / shas[-1]).exists()  # the shard being fetched is kept
