"""Every ``HEPFM_*`` environment variable and every default path of hepfm, in one place.

=====================  =============================================  =========================
variable               meaning                                        default
=====================  =============================================  =========================
``HEPFM_STORAGE``      storage root of ``load_dataset``/``export``    ``~/.cache/hepfm/stores``
``HEPFM_CACHE``        local cache folder (shards, Arrow files)       ``~/.cache/hepfm``
``HEPFM_CACHE_BYTES``  bound on the cached remote shards (bytes)      8 GiB (``8589934592``)
``HEPFM_RETRIES``      attempts per remote operation                  5
``HEPFM_RETRY_DELAY``  first backoff wait, seconds (then x2)          0.5
=====================  =============================================  =========================

Layout of the cache folder (``cache_dir()``): ``shards/<sha256>/<shard name>`` is the one
content-addressed cache of remote shards (:class:`hepfm_data.sources.cache.ShardCache`),
``arrow/<key[:2]>/<key>.arrow`` the Arrow files of ``load_dataset``. Explicit arguments
(``storage=``, ``cache_dir=``, ``cache_bytes=``, ``retry=``) always win over the environment.
This module imports nothing of hepfm but its errors: every layer may read it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from hepfm_data.core.errors import HepfmError

ENV_STORAGE = "HEPFM_STORAGE"
ENV_CACHE = "HEPFM_CACHE"
ENV_CACHE_BYTES = "HEPFM_CACHE_BYTES"
ENV_RETRIES = "HEPFM_RETRIES"
ENV_RETRY_DELAY = "HEPFM_RETRY_DELAY"
#: every variable hepfm reads (docs/reference/configuration.md lists the same)
VARIABLES = (ENV_STORAGE, ENV_CACHE, ENV_CACHE_BYTES, ENV_RETRIES, ENV_RETRY_DELAY)

DEFAULT_CACHE = "~/.cache/hepfm"
DEFAULT_STORAGE = "~/.cache/hepfm/stores"
DEFAULT_CACHE_BYTES = 8 << 30
#: sub-folders of the cache folder
SHARD_CACHE = "shards"
ARROW_CACHE = "arrow"


def env_number(name: str, default: float, kind: type = int) -> float:
    """``kind(os.environ[name])``, ``default`` when unset or empty; a bad value names the variable."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise HepfmError(f"environment variable {name}={raw!r} is not a valid {kind.__name__}") from None


def storage_root(storage: str | os.PathLike | None = None) -> str:
    """The storage root: ``storage``, else ``$HEPFM_STORAGE``, else ``~/.cache/hepfm/stores``.

    Local paths are user-expanded; URLs (``s3://``, ``https://``, ``a::b`` chains) are kept as given."""
    root = str(storage or os.environ.get(ENV_STORAGE) or DEFAULT_STORAGE)
    if "://" not in root and "::" not in root:
        root = str(Path(root).expanduser())
    return root.rstrip("/")


def cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache``, else ``$HEPFM_CACHE``, else ``~/.cache/hepfm`` (user-expanded)."""
    return Path(cache or os.environ.get(ENV_CACHE) or DEFAULT_CACHE).expanduser()


def cache_bytes(value: int | None = None) -> int:
    """Bound of the remote-shard cache: ``value``, else ``$HEPFM_CACHE_BYTES``, else 8 GiB; >= 0."""
    n = int(value) if value is not None else int(env_number(ENV_CACHE_BYTES, DEFAULT_CACHE_BYTES, int))
    if n < 0:
        raise HepfmError(f"the shard cache bound must be >= 0 bytes, got {n} ({ENV_CACHE_BYTES} or cache_bytes=)")
    return n


def retries(default: int) -> int:
    """``$HEPFM_RETRIES`` (attempts per remote operation), else ``default``."""
    return int(env_number(ENV_RETRIES, default, int))


def retry_delay(default: float) -> float:
    """``$HEPFM_RETRY_DELAY`` (first backoff wait in seconds), else ``default``."""
    return float(env_number(ENV_RETRY_DELAY, default, float))


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a ``with`` block, then restore (or remove) them."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
