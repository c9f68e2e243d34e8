"""hepfm_data/core/config.py is the one home of the HEPFM_* environment variables and cache paths:
precedence (argument > environment > default), clear errors for bad values, the one shard cache
and load_dataset's Arrow files under the same cache folder, and no other module reading HEPFM_*."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import hepfm_data
from hepfm_data.core import config
from hepfm_data.core.errors import HepfmError
from hepfm_data.sources import RetryPolicy, ShardCache, default_cache_dir


def test_precedence_argument_environment_default(monkeypatch, tmp_path):
    """Explicit arguments win over HEPFM_* variables, which win over the documented defaults."""
    for name in config.VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert config.cache_dir() == Path.home() / ".cache" / "hepfm" == default_cache_dir()
    assert config.storage_root().endswith(".cache/hepfm/stores") and config.cache_bytes() == 8 << 30
    monkeypatch.setenv("HEPFM_CACHE", str(tmp_path / "env"))
    monkeypatch.setenv("HEPFM_CACHE_BYTES", "1234")
    monkeypatch.setenv("HEPFM_RETRIES", "2")
    monkeypatch.setenv("HEPFM_RETRY_DELAY", "0.125")
    cache = ShardCache()
    assert cache.root == tmp_path / "env" / config.SHARD_CACHE and cache.max_bytes == 1234
    assert ShardCache(tmp_path / "arg", 5).root == tmp_path / "arg" / "shards"
    assert RetryPolicy.from_env() == RetryPolicy(attempts=2, base_delay=0.125)
    assert config.cache_bytes(0) == 0


@pytest.mark.parametrize("name,value", [("HEPFM_CACHE_BYTES", "lots"), ("HEPFM_CACHE_BYTES", "-1"),
                                        ("HEPFM_RETRIES", "3.5"), ("HEPFM_RETRY_DELAY", "soon")])
def test_bad_values_name_the_variable(monkeypatch, name, value):
    """A value that is not a number (or a negative bound) raises HepfmError naming the variable."""
    monkeypatch.setenv(name, value)
    with pytest.raises(HepfmError, match=name):
        ShardCache() if name == "HEPFM_CACHE_BYTES" else RetryPolicy.from_env()


def test_only_config_reads_hepfm_variables():
    """No module of hepfm_data but config.py names a HEPFM_ variable in code that reads the
    environment (docstrings and messages may mention them). The one exception, _orphan_guard.py, is no
    setting: loaded by file path into Dask's processes (it imports nothing of hepfm), it reads the
    driver's pid that workers.py hands to the worker programs it starts."""
    pkg = Path(hepfm_data.__file__).parent
    readers = re.compile(r"(os\.environ|getenv)[^\n]*HEPFM_|HEPFM_[A-Z_]+[\"']\s*(\)|,|\])")
    offenders = [str(p.relative_to(pkg)) for p in pkg.rglob("*.py") if p.name not in ("config.py", "_orphan_guard.py")
                 and readers.search(p.read_text())]
    assert offenders == []
