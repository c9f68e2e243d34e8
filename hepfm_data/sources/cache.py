"""Local copies of remote files, verified by checksum; the one bounded cache of remote shards.

``fetch(url, dest, sha256=...)`` makes ``dest`` a local copy of ``url`` whose digest equals
the expected one: a hit (digest matches) downloads nothing; a miss or a corrupt copy is
downloaded into a temporary sibling (retried with backoff, :mod:`.retry`), verified, then
renamed onto ``dest``; a download whose digest is wrong twice raises
:class:`~hepfm_data.core.errors.ChecksumError` naming the URL and both digests.

:class:`ShardCache` is the cache that ``load_dataset`` and the loader share, under
``<cache_dir>/shards/``::

    <sha256>/<name>      one entry: the verified copy of a shard (file or directory)
    <sha256>.lock        its lock file (flock: shared while read, exclusive while fetched/evicted)

* **content-addressed**: an entry's folder is the manifest's sha256 (64 hex digits) and its
  name a validated shard name; nothing from the remote side (URL, listing) picks a local path,
  and every write is checked to resolve inside the cache root;
* **verified**: a download is hashed and compared with the sha256 before it is renamed into
  place; an existing entry is re-hashed the first time each ``ShardCache`` object uses it; a
  download may not exceed the byte size the manifest declares (a server cannot fill the disk);
* **bounded**: after each download, least recently used entries are deleted until the cache
  holds at most ``max_bytes`` (``$HEPFM_CACHE_BYTES``, 8 GiB) plus the entries in use; only
  ``<sha256>/`` folders are ever deleted, so a ``cache_dir`` shared with ``arrow/`` or a storage
  root keeps them;
* **safe across processes** (DataLoader workers, ranks on one machine): an entry is fetched
  under its exclusive lock (one download; the others wait and reuse it) and read under a
  shared lock, which eviction (non-blocking exclusive) never breaks.

Why not fsspec's ``filecache``/``simplecache``: they decide validity from the remote's uid /
mtime, never from the content, so a damaged local copy would be served as is.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from hepfm_data.core import config
from hepfm_data.core.errors import ChecksumError, StoreError
from hepfm_data.sources.fs import resolve
from hepfm_data.sources.retry import RetryPolicy

log = logging.getLogger("hepfm_data.sources")
Digest = Callable[[Path], str]
SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
#: an entry's file or directory name (a validated shard name)
ENTRY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", re.ASCII)
#: files one directory (e.g. a Zarr shard) may hold
MAX_TREE_FILES = 4096


def default_cache_dir() -> Path:
    """``$HEPFM_CACHE`` or ``~/.cache/hepfm``: see :func:`hepfm_data.core.config.cache_dir`."""
    return config.cache_dir()


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in ``chunk_size`` chunks (bounded memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            h.update(block)
    return h.hexdigest()


def inside(root: Path, path: Path) -> Path:
    """``path`` if it resolves inside ``root`` (both resolved, symlinks followed); else StoreError."""
    real, base = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    if real != base and base not in real.parents:
        raise StoreError(f"refusing to write {path}: it resolves to {real}, outside {base}")
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _matches(path: Path, sha256: str, digest: Digest) -> bool:
    try:
        return digest(path) == sha256
    except (OSError, ValueError):
        return False


def _tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


class _ByteLimit(Callback):
    """fsspec download callback: abort once the file being written exceeds the bytes still allowed."""

    def __init__(self, url: str, target: Path, allowed: int):
        super().__init__()
        self.url, self.target, self.allowed = url, target, allowed

    def call(self, *args, **kwargs):  # after every chunk (set_size / relative_update)
        try:
            size = self.target.stat().st_size
        except FileNotFoundError:
            return
        if size > self.allowed:
            raise StoreError(f"{self.url}: the server sent more than the {self.allowed} bytes the manifest declares")


def _download(fs, path: str, tmp: Path, *, url: str, tree: bool, limit: int | None,
              member: re.Pattern | None) -> int:
    """Copy remote ``path`` (a file, or with ``tree`` every file under it) to local ``tmp``; bytes copied.

    ``limit``: bytes allowed in all (``None``: no bound). ``member``: pattern every relative file
    name of a tree must match (else StoreError); names are always relative, normalised, no ``..``."""
    if not tree:
        fs.get_file(path, str(tmp), callback=_ByteLimit(url, tmp, limit) if limit is not None else DEFAULT_CALLBACK)
        return tmp.stat().st_size
    base = path.rstrip("/") + "/"
    found = fs.find(base, detail=True)
    files = [p for p, d in found.items() if d.get("type") != "directory" and not p.endswith("/")]
    if not files:
        raise FileNotFoundError(f"{url}: empty or unlistable directory")
    if len(files) > MAX_TREE_FILES:
        raise StoreError(f"{url}: lists {len(files)} files, more than a shard has ({MAX_TREE_FILES})")
    total = 0
    tmp.mkdir(parents=True)
    for p in sorted(files):
        rel = p[len(base):] if p.startswith(base) else None
        parts = rel.split("/") if rel else []
        if not parts or any(x in ("", ".", "..") for x in parts) or "\\" in rel or ":" in rel or \
                (member is not None and not member.fullmatch(rel)):
            raise StoreError(f"{url}: the listing names {p!r}, not a file of this shard")
        target = inside(tmp, tmp / rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        allowed = None if limit is None else limit - total
        fs.get_file(p, str(target), callback=_ByteLimit(f"{url}/{rel}", target, allowed) if limit is not None
                    else DEFAULT_CALLBACK)
        total += target.stat().st_size
    return total


def fetch(url: str, dest: str | os.PathLike, *, sha256: str, storage_options: dict[str, Any] | None = None,
          digest: Digest = sha256_file, retry: RetryPolicy | None = None) -> Path:
    """A verified local copy of ``url`` (file or directory) at ``dest``; see the module docstring.

    ``digest(path) -> hex str`` must give ``sha256`` for a good copy. Returns ``dest``.
    """
    dest = Path(dest)
    if dest.exists():
        if _matches(dest, sha256, digest):
            return dest
        log.warning("%s: cached copy of %s fails its checksum; fetching it again", dest, url)
    fs, path = resolve(url, storage_options, retry=retry)
    dest.parent.mkdir(parents=True, exist_ok=True)
    got = ""
    tree = fs.isdir(path)
    for _ in range(2):
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
        try:
            _download(fs, path, tmp, url=url, tree=tree, limit=None, member=None)
            got = digest(tmp)
            if got == sha256:
                _install(tmp, dest, sha256, digest)
                return dest
            log.warning("%s: downloaded digest %s != expected %s; fetching again", url, got, sha256)
        finally:
            _remove(tmp)
    raise ChecksumError(f"{url}: sha256 {got} does not match the expected {sha256} (downloaded twice)")


def _install(tmp: Path, dest: Path, sha256: str, digest: Digest) -> None:
    """Move a verified ``tmp`` onto ``dest`` atomically (replacing a corrupt copy)."""
    if tmp.is_dir() and dest.exists():
        if _matches(dest, sha256, digest):  # a concurrent fetch finished first
            return
        stale = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.stale")
        os.replace(dest, stale)
        _remove(stale)
    os.replace(tmp, dest)


class ShardCache:
    """The bounded, content-addressed, verified local cache of remote shards (module docstring).

    ``cache_dir``: the cache folder (default ``$HEPFM_CACHE`` or ``~/.cache/hepfm``); entries live
    in its ``shards/`` sub-folder. ``max_bytes``: the bound (default ``$HEPFM_CACHE_BYTES``, 8 GiB);
    an entry in use is never deleted, so the cache may exceed it by the shards being read."""

    def __init__(self, cache_dir: str | os.PathLike | None = None, max_bytes: int | None = None):
        self.cache_dir = config.cache_dir(cache_dir)
        self.root = self.cache_dir / config.SHARD_CACHE
        self.max_bytes = config.cache_bytes(max_bytes)
        self._verified: set[str] = set()  # entries hashed by this object (trusted for its lifetime)
        self._lock = threading.Lock()

    def __getstate__(self):  # DataLoader workers start with an empty in-process view
        return {"cache_dir": self.cache_dir, "max_bytes": self.max_bytes}

    def __setstate__(self, state):
        self.__init__(state["cache_dir"], state["max_bytes"])

    def entry(self, sha256: str, name: str) -> Path:
        """``<root>/<sha256>/<name>`` after validating both (StoreError otherwise)."""
        if not isinstance(sha256, str) or not SHA256.fullmatch(sha256):
            raise StoreError(f"cache key {sha256!r:.80} is not a sha256 hex digest")
        if not isinstance(name, str) or not ENTRY_NAME.fullmatch(name):
            raise StoreError(f"cache entry name {name!r:.80} is not a plain file name")
        return inside(self.root, self.root / sha256 / name)

    # ------------------------------------------------------------------ locks
    def _lockfile(self, sha256: str, exclusive: bool, blocking: bool = True) -> int | None:
        """An fd holding the flock of ``<sha256>.lock`` (None: busy, non-blocking); survives eviction races."""
        path = inside(self.root, self.root / f"{sha256}.lock")
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if blocking else fcntl.LOCK_NB))
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return None
                raise
            try:  # an evictor may have unlinked the file between our open and our lock: use the new one
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    # ------------------------------------------------------------------ use
    @contextlib.contextmanager
    def hold(self, fs, path: str, *, sha256: str, name: str, nbytes: int, digest: Digest, tree: bool,
             member: re.Pattern | None = None, url: str | None = None) -> Iterator[Path]:
        """The verified local copy of remote ``path`` (on ``fs``), held for the ``with`` block.

        Fetched when absent or failing its checksum; ``nbytes``: its exact size in bytes (the
        manifest's), also the download bound; ``digest(local) -> sha256`` (files or directories);
        ``tree``: the shard is a directory whose relative file names match ``member``."""
        url = url or path
        dest = self.entry(sha256, name)
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            fd = self._lockfile(sha256, exclusive=False)
            with self._lock:
                trusted = sha256 in self._verified
            if trusted and dest.exists():
                break
            os.close(fd)  # upgrade: verify or fetch under the exclusive lock
            fd = self._lockfile(sha256, exclusive=True)
            try:
                fetched = self._prepare(fs, path, dest, sha256=sha256, nbytes=nbytes, digest=digest, tree=tree,
                                        member=member, url=url)
            except BaseException:
                if not dest.parent.exists():  # leave no lock file behind a failed first fetch
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.root / f"{sha256}.lock")
                os.close(fd)
                raise
            with self._lock:
                self._verified.add(sha256)
            fcntl.flock(fd, fcntl.LOCK_SH)  # downgrade (not atomic: re-check that the entry is still there)
            if dest.exists():
                if fetched:
                    self._evict()
                break
            os.close(fd)
        try:
            with contextlib.suppress(OSError):
                os.utime(dest.parent)  # least recently used = oldest mtime
            yield dest
        finally:
            os.close(fd)

    def _prepare(self, fs, path: str, dest: Path, *, sha256: str, nbytes: int, digest: Digest, tree: bool,
                 member: re.Pattern | None, url: str) -> bool:
        """Under the exclusive lock: make ``dest`` a verified copy; True when it was downloaded."""
        entry = dest.parent
        if dest.exists():
            if _matches(dest, sha256, digest):
                return False
            log.warning("%s: cached copy of %s fails its checksum; fetching it again", dest, url)
        if entry.exists() or entry.is_symlink():
            _remove(entry)
        got = ""
        for _ in range(2):
            tmp = inside(self.root, self.root / f".{sha256}.{uuid.uuid4().hex[:12]}.part")
            try:
                tmp.mkdir()
                size = _download(fs, path, tmp / dest.name, url=url, tree=tree, limit=nbytes, member=member)
                got = digest(tmp / dest.name)
                if got == sha256:
                    if size != nbytes:
                        raise StoreError(f"{url}: {size} bytes, the manifest declares {nbytes}")
                    os.replace(tmp, inside(self.root, entry))
                    return True
                log.warning("%s: downloaded digest %s != expected %s; fetching again", url, got, sha256)
            finally:
                _remove(tmp)
        raise ChecksumError(f"{url}: sha256 {got} does not match the manifest's {sha256} (downloaded twice)")

    # ------------------------------------------------------------------ bound
    def entries(self) -> list[Path]:
        """The entry folders (``<sha256>/``) now in the cache; nothing else under the root is the cache's."""
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if SHA256.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]

    def size_bytes(self) -> int:
        """Bytes of all entries now on disk."""
        return sum(_tree_bytes(p) for p in self.entries())

    def _evict(self) -> None:
        """Delete least recently used entries not in use (by any process) until at most ``max_bytes`` remain."""
        entries = []
        for p in self.entries():
            with contextlib.suppress(FileNotFoundError):
                entries.append((p.stat().st_mtime, p, _tree_bytes(p)))
        total = sum(size for _, _, size in entries)
        for _, p, size in sorted(entries):
            if total <= self.max_bytes:
                break
            fd = self._lockfile(p.name, exclusive=True, blocking=False)
            if fd is None:  # held (read or being fetched) somewhere
                continue
            try:
                _remove(p)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.root / f"{p.name}.lock")
                total -= size
                with self._lock:
                    self._verified.discard(p.name)
            finally:
                os.close(fd)
