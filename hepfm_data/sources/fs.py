"""fsspec access to storage, with retries on remote filesystems.

``resolve(url)`` returns the fsspec filesystem for ``url`` and the path on it.
For remote protocols (``s3://``, ``http(s)://``, ``hf://``, ``gs://``...) the
filesystem is an instance of a *subclass* of the usual fsspec class (so
``isinstance(fs, s3fs.S3FileSystem)`` and ``fs.async_impl`` still hold, and Zarr's
``FsspecStore`` accepts it) whose primitive operations (cat, get, put, pipe,
info, ls, rm, and the range reads of opened files) are retried with backoff on
transient errors (:mod:`hepfm_data.sources.retry`). Local and in-memory
filesystems and chained URLs (``simplecache::s3://...``) are returned as fsspec
builds them.

Library-level knobs still apply and are passed through ``storage_options``
untouched: e.g. for S3 ``{"config_kwargs": {"retries": {"max_attempts": 10,
"mode": "adaptive"}}, "retries": 5}`` (botocore / s3fs retries), for HTTP
``{"client_kwargs": {"timeout": aiohttp.ClientTimeout(sock_read=60)}}``.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

import fsspec
from fsspec.asyn import AsyncFileSystem
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from hepfm_data.sources.retry import RetryPolicy, acall_with_retries, call_with_retries

#: async primitives retried on AsyncFileSystem subclasses (their sync twins follow)
ASYNC_METHODS = ("_cat_file", "_get_file", "_put_file", "_pipe_file", "_info", "_ls", "_rm_file", "_cp_file")
#: sync primitives retried on plain AbstractFileSystem subclasses (e.g. hf://)
SYNC_METHODS = ("cat_file", "get_file", "put_file", "pipe_file", "info", "ls", "rm_file", "cp_file")
_NOT_WRAPPED = (LocalFileSystem, MemoryFileSystem)

_classes: dict[tuple[type, RetryPolicy], type] = {}
_lock = threading.Lock()


def resolve(url: str, storage_options: dict[str, Any] | None = None, *,
            retry: RetryPolicy | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path) for ``url``: a local path, ``file://``, ``s3://``, ``http(s)://``, ``hf://``.

    ``storage_options`` is copied, never mutated (``datasets`` mutates the dicts it is handed).
    ``retry`` (default :meth:`RetryPolicy.from_env`) governs remote filesystems; pass
    ``RetryPolicy(attempts=1)`` to turn retries off.
    """
    fs, path = fsspec.core.url_to_fs(str(url), **copy.deepcopy(storage_options or {}))
    if "::" in str(url):
        return fs, path
    return with_retries(fs, retry), path


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """Whether ``fs`` is the local filesystem (its paths can be opened directly)."""
    return isinstance(fs, LocalFileSystem)


def with_retries(fs: fsspec.AbstractFileSystem, retry: RetryPolicy | None = None) -> fsspec.AbstractFileSystem:
    """``fs`` re-created as its retrying subclass (local/memory filesystems are returned as they are)."""
    policy = retry or RetryPolicy.from_env()
    if isinstance(fs, _NOT_WRAPPED) or getattr(fs, "_hepfm_retry", None) == policy:
        return fs
    base = getattr(type(fs), "_hepfm_base", type(fs))
    return _retrying_class(base, policy)(*fs.storage_args, **fs.storage_options)


def _rebuild(base: type, policy: RetryPolicy, args: tuple, kwargs: dict) -> fsspec.AbstractFileSystem:
    """Unpickling hook: dynamic subclasses are rebuilt from their base class and policy."""
    return _retrying_class(base, policy)(*args, **kwargs)


def _retrying_class(base: type, policy: RetryPolicy) -> type:
    """The subclass of ``base`` whose primitives retry under ``policy`` (one class per pair)."""
    with _lock:
        cls = _classes.get((base, policy))
        if cls is not None:
            return cls
        ns: dict[str, Any] = {"_hepfm_retry": policy, "_hepfm_base": base, "__module__": __name__,
                              "__reduce__": lambda self: (_rebuild, (base, policy, self.storage_args,
                                                                     self.storage_options)),
                              "_open": _wrap_open(base._open, policy)}
        if issubclass(base, AsyncFileSystem):
            for name in ASYNC_METHODS:
                if hasattr(base, name):
                    ns[name] = _wrap_async(getattr(base, name), name.lstrip("_"), policy)
            ns["_exists"] = _exists_async
        else:
            for name in SYNC_METHODS:
                if hasattr(base, name):
                    ns[name] = _wrap_sync(getattr(base, name), name, policy)
        cls = type(f"Retrying{base.__name__}", (base,), ns)
        _classes[(base, policy)] = cls
        return cls


def _url(fs: fsspec.AbstractFileSystem, path: Any) -> str:
    try:
        return fs.unstrip_protocol(str(path))
    except Exception:  # pragma: no cover - exotic filesystems
        return str(path)


def _wrap_async(method, what: str, policy: RetryPolicy):
    @functools.wraps(method)
    async def wrapper(self, path, *args, **kwargs):
        return await acall_with_retries(lambda: method(self, path, *args, **kwargs),
                                        url=_url(self, path), what=what, policy=policy)

    return wrapper


def _wrap_sync(method, what: str, policy: RetryPolicy):
    @functools.wraps(method)
    def wrapper(self, path, *args, **kwargs):
        return call_with_retries(lambda: method(self, path, *args, **kwargs),
                                 url=_url(self, path), what=what, policy=policy)

    return wrapper


async def _exists_async(self, path, **kwargs) -> bool:
    """``exists`` through the retried ``_info``: a transient failure is retried, not read as "absent"."""
    try:
        await self._info(path, **kwargs)
        return True
    except FileNotFoundError:
        return False


def _wrap_open(method, policy: RetryPolicy):
    """Retry opening, and the range reads of the opened file (``_fetch_range``)."""

    @functools.wraps(method)
    def wrapper(self, path, mode="rb", *args, **kwargs):
        url = _url(self, path)
        f = call_with_retries(lambda: method(self, path, mode, *args, **kwargs), url=url, what="open", policy=policy)
        fetch = getattr(f, "_fetch_range", None)
        if "r" in mode and fetch is not None:
            def retried(start, end):
                return call_with_retries(lambda: fetch(start, end), url=url, what=f"read bytes {start}-{end}",
                                         policy=policy)

            f._fetch_range = retried
            cache = getattr(f, "cache", None)  # fsspec's read cache captured the bound method
            if getattr(cache, "fetcher", None) == fetch:
                cache.fetcher = retried
        return f

    return wrapper
