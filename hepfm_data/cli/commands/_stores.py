"""The stores a ``verify`` / ``info`` argument names: one store, or every store under a storage root."""

from __future__ import annotations

from typing import Any

from hepfm_data.core.errors import StoreError


def stores_at(url: str, storage_options: dict[str, Any] | None = None) -> list:
    """``[Store]`` of ``url`` when it is a store (``manifest.json`` or an interrupted build there),
    else the stores ``url/<process>`` of a storage root, sorted by name; StoreError when there is none.
    An interrupted build under a root raises StoreError naming it (never skipped silently)."""
    from hepfm_data.sources import resolve
    from hepfm_data.store import open_store
    from hepfm_data.store.manifest import MANIFEST
    from hepfm_data.store.writer import BUILD_DIR

    fs, path = resolve(str(url), storage_options)
    path = path.rstrip("/")
    if fs.exists(f"{path}/{MANIFEST}") or fs.exists(f"{path}/{BUILD_DIR}"):
        return [open_store(url, storage_options)]
    base = str(url).rstrip("/")
    names = sorted({p.rstrip("/").split("/")[-2] for p in fs.glob(f"{path}/*/{MANIFEST}")}
                   | {p.rstrip("/").split("/")[-2] for p in fs.glob(f"{path}/*/{BUILD_DIR}")})
    if not names:
        raise StoreError(f"{url}: not a store ({MANIFEST} not found) and no store <process>/{MANIFEST} under it")
    return [open_store(f"{base}/{n}", storage_options) for n in names]
