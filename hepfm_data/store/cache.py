"""Shards of remote stores read through the one local cache (:class:`~hepfm_data.sources.cache.ShardCache`).

``load_dataset`` (non-streaming) and the loader (``StreamingDataset(cache_dir=...)``) both read a
remote shard as: fetch it whole into ``<cache_dir>/shards/<sha256>/<name>`` (verified against the
manifest's sha256, bounded, shared by processes), then read it with the usual :class:`Store`
reader on the local copy, with the same metadata checks and errors naming the remote store.

>>> shards = RemoteShards("~/.cache/hepfm")                       # doctest: +SKIP
>>> data = shards.read(store, store.shards("train")[0], 0, 4096)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from hepfm_data.sources.cache import ShardCache
from hepfm_data.store.layouts import ShardData, local_sha256
from hepfm_data.store.manifest import ShardInfo
from hepfm_data.store.reader import Store

__all__ = ["RemoteShards", "ZARR_MEMBER"]

#: files of a Zarr v3 shard directory: group and array metadata, chunk (or shard) files ``c/i[/j]``
ZARR_MEMBER = re.compile(r"zarr\.json|[a-z_]{1,32}/zarr\.json|[a-z_]{1,32}/c(/[0-9]{1,9}){1,2}", re.ASCII)


def _digest(path: Path) -> str:
    return local_sha256(str(path))[0]


class RemoteShards:
    """Read shards of remote :class:`Store` objects through a :class:`ShardCache` (picklable)."""

    def __init__(self, cache_dir: str | os.PathLike | None = None, max_bytes: int | None = None):
        self.cache = ShardCache(cache_dir, max_bytes)
        self._local: dict[str, Store] = {}  # remote store URL -> Store over the cache's entries
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"cache": self.cache}

    def __setstate__(self, state):
        self.cache, self._local, self._lock = state["cache"], {}, threading.Lock()

    def _local_store(self, store: Store) -> Store:
        from fsspec.implementations.local import LocalFileSystem

        with self._lock:
            if store.url not in self._local:
                self._local[store.url] = Store(LocalFileSystem(), str(self.cache.root), store.manifest, store.url)
            return self._local[store.url]

    @contextlib.contextmanager
    def reader(self, store: Store, info: ShardInfo,
               columns: bool = False) -> Iterator[Callable[[int, int | None], ShardData]]:
        """``read(start, stop) -> ShardData`` (``columns``: the stored ``Columns``) on the verified
        local copy of ``info``, held for the block."""
        remote = f"{store.path}/{info.path}"
        with self.cache.hold(store.fs, remote, sha256=info.sha256, name=info.name, nbytes=info.bytes,
                             digest=_digest, tree=store.manifest.layout == "zarr", member=ZARR_MEMBER,
                             url=f"{store.url.rstrip('/')}/{info.path}"):
            local = self._local_store(store)
            entry = dataclasses.replace(info, path=f"{info.sha256}/{info.name}")  # content-addressed
            yield lambda start, stop: (local.read_columns if columns else local.read_shard)(entry, start, stop)

    def read(self, store: Store, info: ShardInfo, start: int = 0, stop: int | None = None,
             columns: bool = False) -> ShardData:
        """``store.read_shard(info, start, stop)`` (``columns``: ``read_columns``) from the verified local copy."""
        with self.reader(store, info, columns) as read:
            return read(start, stop)
