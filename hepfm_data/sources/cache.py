"""A local cache of remote files, verified by checksum.

``fetch(url, dest, sha256=...)`` makes ``dest`` a local copy of ``url`` whose
digest equals the expected one (the manifest's ``sha256`` of a shard):

* hit: ``dest`` exists and its digest matches -> nothing is downloaded;
* miss or corrupt copy: download into a temporary sibling (retried with backoff,
  :mod:`hepfm_data.sources.retry`), verify, then atomically rename onto ``dest``;
* a download whose digest is wrong is fetched once more, then
  :class:`~hepfm_data.errors.ChecksumError` names the URL and both digests.

Directories (e.g. a Zarr shard) are fetched recursively; the caller supplies the
``digest`` that the store uses for them. Every hit is re-hashed (the cost is a
sequential read), so a corrupted or truncated cached copy is never served.

Why not fsspec's ``filecache``/``simplecache``: they decide validity from the
remote's uid / mtime, never from the content, so a damaged local copy would be
served as is. Shards are immutable and listed with their sha256, which makes a
content-addressed check both possible and stronger.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ChecksumError
from .fs import resolve
from .retry import RetryPolicy

log = logging.getLogger("hepfm_data.sources")
Digest = Callable[[Path], str]


def default_cache_dir() -> Path:
    """``$HEPFM_CACHE`` or ``~/.cache/hepfm``: where remote shards are cached."""
    return Path(os.environ.get("HEPFM_CACHE") or Path.home() / ".cache" / "hepfm").expanduser()


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in ``chunk_size`` chunks (bounded memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            h.update(block)
    return h.hexdigest()


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
    for _ in range(2):
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
        try:
            if fs.isdir(path):
                _get_tree(fs, path, tmp)
            else:
                fs.get_file(path, str(tmp))
            got = digest(tmp)
            if got == sha256:
                _install(tmp, dest, sha256, digest)
                return dest
            log.warning("%s: downloaded digest %s != expected %s; fetching again", url, got, sha256)
        finally:
            _remove(tmp)
    raise ChecksumError(f"{url}: sha256 {got} does not match the expected {sha256} (downloaded twice)")


def _get_tree(fs, path: str, tmp: Path) -> None:
    """Download every file under remote directory ``path`` into ``tmp`` (each file retried).

    Listing entries ending in "/" are directories (HTTP index pages list them as links).
    """
    base = path.rstrip("/") + "/"
    found = fs.find(base, detail=True)
    files = [p for p, d in found.items() if d.get("type") != "directory" and not p.endswith("/")]
    if not files:
        raise FileNotFoundError(f"{fs.unstrip_protocol(path)}: empty or unlistable directory")
    for p in files:
        rel = p[len(base):] if p.startswith(base) else p.split(base.lstrip("/"), 1)[-1]
        target = tmp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(p, str(target))


def _install(tmp: Path, dest: Path, sha256: str, digest: Digest) -> None:
    """Move a verified ``tmp`` onto ``dest`` atomically (replacing a corrupt copy)."""
    if tmp.is_dir():
        if dest.exists():
            if _matches(dest, sha256, digest):  # a concurrent fetch finished first
                return
            stale = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.stale")
            os.replace(dest, stale)
            _remove(stale)
        os.replace(tmp, dest)
    else:
        os.replace(tmp, dest)
