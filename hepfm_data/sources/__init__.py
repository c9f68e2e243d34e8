"""Sources: byte access to local, HTTP(S), S3 and hf:// storage through fsspec.

The lowest layer: knows nothing about events.

* ``resolve(url, storage_options)`` maps a URL (or local path) to an fsspec
  filesystem and a path on it; remote filesystems retry transient errors with
  exponential backoff and raise :class:`~hepfm_data.core.errors.RemoteError` naming the
  URL after the last attempt (:mod:`.retry`, :mod:`.fs`).
* ``fetch(url, dest, sha256=...)``: a local copy verified by checksum; :class:`ShardCache`: the one
  bounded, content-addressed, verified cache of remote shards (:mod:`.cache`).
* :mod:`.testing`: a moto S3 server and a fault-injecting HTTP server on loopback.
"""

from __future__ import annotations

from hepfm_data.sources.cache import ShardCache, default_cache_dir, fetch, sha256_file
from hepfm_data.sources.fs import is_local, resolve, with_retries
from hepfm_data.sources.retry import RetryPolicy, call_with_retries, is_transient

__all__ = ["resolve", "with_retries", "is_local", "fetch", "ShardCache", "default_cache_dir", "sha256_file",
           "RetryPolicy", "call_with_retries", "is_transient"]
