"""A bounded local cache of remote shards for the loader.

Remote shards (``s3://``, ``https://``, ``hf://`` stores) are fetched whole into
``<cache_dir>/<sha256>/<shard name>`` by :func:`hepfm_data.sources.cache.fetch`
(checksum-verified against the manifest, atomic, retried), then read locally. The
loader's window prefetch thread asks for the next window's shards ahead of use, so
downloads overlap batching. When the cache exceeds ``max_bytes``, least recently used
shards are deleted (never one this process is reading). A verified copy is trusted
for the life of the process (re-verified once per process, not per read).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np

from ..errors import StoreError

__all__ = ["ShardCache"]


def _tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _is_entry(name: str) -> bool:
    """Whether ``name`` is a cache entry's folder name: a sha256 hex digest (64 lowercase hex digits)."""
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


class ShardCache:
    """Local copies of remote shards, at most ``max_bytes`` on disk (plus the shards in use)."""

    def __init__(self, cache_dir: str | os.PathLike, max_bytes: int = 8 << 30):
        self.root = Path(cache_dir).expanduser()
        self.max_bytes = int(max_bytes)
        self._ready: set[str] = set()
        self._n_node: dict[str, np.ndarray] = {}
        self._handles: dict[str, object] = {}  # ``layout.open`` handle per cached shard (by sha256)
        self._lock = threading.Lock()
        self._in_use: set[str] = set()

    def __getstate__(self):  # DataLoader workers start with an empty in-process view
        return {"root": self.root, "max_bytes": self.max_bytes}

    def __setstate__(self, state):
        self.__init__(state["root"], state["max_bytes"])

    def local_path(self, info) -> Path:
        return self.root / info.sha256 / info.name

    def ensure(self, store, info) -> Path:
        """Verified local copy of shard ``info`` of ``store`` (downloaded if needed)."""
        from ..sources.cache import fetch
        from ..store.layouts import local_sha256

        dest = self.local_path(info)
        with self._lock:
            if info.sha256 in self._ready and dest.exists():
                self._touch(dest)
                return dest
        url = f"{store.url.rstrip('/')}/{info.path}"
        fetch(url, dest, sha256=info.sha256, storage_options=dict(getattr(store.fs, "storage_options", {}) or {}),
              digest=lambda p: local_sha256(str(p))[0])
        with self._lock:
            self._ready.add(info.sha256)
            self._touch(dest)
            self._evict(keep=info.sha256)
        return dest

    def read(self, store, info, start: int, stop: int | None):
        """``store.read_shard(info, start, stop)`` served from the local copy."""
        from fsspec.implementations.local import LocalFileSystem

        from ..store.layouts import get_layout

        for attempt in range(2):
            path = self.ensure(store, info)
            with self._lock:
                self._in_use.add(info.sha256)
            try:
                fs = LocalFileSystem()
                layout = get_layout(store.manifest.layout)
                with self._lock:
                    handle = self._handles.get(info.sha256)
                if handle is None:
                    handle = layout.open(fs, str(path))  # Zarr metadata read once per cached copy
                    if handle is not None:
                        with self._lock:
                            self._handles[info.sha256] = handle
                n_node = None
                if handle is not None:
                    if info.sha256 not in self._n_node:
                        self._n_node[info.sha256] = handle["n_node"][...]
                    n_node = self._n_node[info.sha256]
                cols = layout.read(fs, str(path), start, info.n_events if stop is None else stop, n_node, handle)
                if handle is not None and not path.exists():  # a cached handle reads deleted chunks as zeros
                    raise FileNotFoundError(str(path))
                return cols.to_shard_data()
            except FileNotFoundError:  # evicted by another worker between ensure and read
                with self._lock:
                    self._ready.discard(info.sha256)
                    self._handles.pop(info.sha256, None)
                if attempt:
                    raise StoreError(f"{store.url}: cached shard {info.name} vanished twice while reading") from None
            except StoreError:
                raise
            except Exception as exc:
                raise StoreError(f"{store.url}: cached shard {info.name} ({path}) cannot be read: "
                                 f"{type(exc).__name__}: {exc}") from None
            finally:
                with self._lock:
                    self._in_use.discard(info.sha256)

    @staticmethod
    def _touch(path: Path) -> None:
        try:
            os.utime(path.parent)
        except OSError:
            pass

    def _evict(self, keep: str) -> None:
        # only the entries this cache creates (``<sha256 hex>/``): a cache_dir shared with other
        # tools (e.g. hub's ``arrow/``, ``remote/``, ``stores/`` under ~/.cache/hepfm) keeps their folders
        entries = [p for p in self.root.iterdir() if p.is_dir() and _is_entry(p.name)] \
            if self.root.exists() else []
        sizes = {p: _tree_bytes(p) for p in entries}
        total = sum(sizes.values())
        for p in sorted(entries, key=lambda p: p.stat().st_mtime):
            if total <= self.max_bytes:
                break
            if p.name == keep or p.name in self._in_use:
                continue
            shutil.rmtree(p, ignore_errors=True)
            self._ready.discard(p.name)
            self._handles.pop(p.name, None)
            total -= sizes[p]

    def size_bytes(self) -> int:
        """Bytes now on disk in the cache."""
        return sum(_tree_bytes(p) for p in self.root.iterdir() if p.is_dir()) if self.root.exists() else 0
