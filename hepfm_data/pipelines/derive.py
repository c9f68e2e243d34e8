"""``derive``: a representation from a store's stored event record, without the original inputs.

>>> from hepfm_data.pipelines.derive import derive                                   # doctest: +SKIP
>>> derive("stores/ttH", "paper_taus", workers=8)                          # doctest: +SKIP

One task per record shard (Dask; ``workers=1`` or a single shard: in this process):
read the record shard, run the representation (``hepfm_data.representations.base``), write
``representations/<name>/<shard name>`` (temp + rename) and a sidecar
``_derive/<name>/<shard>.json``. When every shard is done the manifest gains (or
replaces) the representation's entry — fingerprint, definition, shards — written
atomically; ``_derive/<name>`` is removed. A re-run after an interruption keeps the
shards whose sidecar matches this derivation's fingerprint and does the rest. Every
shard has exactly the events of its paper shard, in the same order.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from typing import TYPE_CHECKING, Any

from hepfm_data.core.catalog import Catalog, load_catalog
from hepfm_data.core.errors import HepfmError, StoreError
from hepfm_data.representations.registry import get_representation

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.store import Store

DERIVE_DIR = "_derive"

__all__ = ["derive", "derive_shard"]


def derive_shard(store: Store, index: int, name: str, catalog: Catalog, fingerprint: str) -> dict[str, Any]:
    """One task: shard ``index``'s record -> representation shard + sidecar; returns the shard entry."""
    from hepfm_data.store.layouts import get_layout, local_sha256
    from hepfm_data.store.manifest import REPRESENTATION_DIR, ShardInfo
    from hepfm_data.store.writer import _atomic_write_text, _read_json

    rep = get_representation(name)
    fs, m = store.fs, store.manifest
    info = m.shards[index]  # ``store`` is opened as stored: its shards/ (the paper shards' names and events)
    side = f"{store.path}/{DERIVE_DIR}/{name}/{info.name}.json"
    rel = f"{REPRESENTATION_DIR}/{name}/{info.name}"
    if fs.exists(side):
        doc = _read_json(fs, side)
        if doc.get("fingerprint") == fingerprint and fs.exists(f"{store.path}/{rel}"):
            return doc["shard"]
    events = store.read_events(info)
    cols = rep.columns(events, m.label, catalog, m.btag_seed)
    if cols.n_events != info.n_events:
        raise StoreError(f"{store.url}: representation {name!r} gave {cols.n_events} events for shard {info.name}, "
                         f"which has {info.n_events}")
    layout = get_layout(m.layout)
    final = f"{store.path}/{rel}"
    if fs.exists(final):  # left by an interrupted run before its sidecar: not trusted
        fs.rm(final, recursive=True)
    staged = f"{final}.tmp-{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory(prefix="hepfm-derive-") as d:
        tmp = os.path.join(d, info.name)
        layout.write(cols, tmp, m.compression)
        sha, size = local_sha256(tmp)
        fs.makedirs(f"{store.path}/{REPRESENTATION_DIR}/{name}", exist_ok=True)
        if os.path.isdir(tmp):
            fs.put(tmp.rstrip("/") + "/", staged + "/", recursive=True)
        else:
            fs.put_file(tmp, staged)
    fs.mv(staged, final, recursive=True)
    eid = cols.events["event_id"]
    entry = ShardInfo(rel, info.split, cols.n_events, cols.n_nodes, size, sha,
                      int(eid.min()) if len(eid) else 0, int(eid.max()) if len(eid) else 0).to_dict()
    _atomic_write_text(fs, side, json.dumps({"fingerprint": fingerprint, "shard": entry}, sort_keys=True))
    return entry


def derive(url: str | Store, name: str, *, catalog: Catalog | None = None, workers: int | None = 1,
           storage_options: dict[str, Any] | None = None, progress: bool = True) -> Store:
    """Derive representation ``name`` for the store at ``url`` from its stored record; returns the Store.

    ``workers``: Dask worker processes (``1``: in this process). Raises :class:`StoreError`
    naming the store, the representation and the missing field when the record lacks an input.
    """
    from tqdm.auto import tqdm

    from hepfm_data.store import open_store
    from hepfm_data.store.manifest import MANIFEST, Manifest, ShardInfo
    from hepfm_data.store.writer import _atomic_write_text

    store = url if hasattr(url, "manifest") else open_store(str(url), storage_options)
    store = open_store(store.url, storage_options)  # the manifest as stored now, viewed as its shards/
    cat = catalog or load_catalog()
    rep = get_representation(name)
    if not rep.materialised:
        rep.columns(None, 0, cat, 0)  # raises: computed by the loader, nothing to store
    rep.check(store, cat)
    fp = rep.fingerprint(cat)
    work = f"{store.path}/{DERIVE_DIR}/{name}"
    store.fs.makedirs(work, exist_ok=True)
    n = len(store.manifest.shards)
    bar = tqdm(total=n, desc=f"derive {name}", unit=" shard", disable=not progress)
    try:
        if (workers or 1) <= 1 or n <= 1:
            entries = []
            for i in range(n):
                entries.append(derive_shard(store, i, name, cat, fp))
                bar.update(1)
        else:
            from hepfm_data.pipelines.workers import dask_client

            with dask_client(workers=min(int(workers), n), what="parallel derivation") as client:
                from dask.distributed import as_completed

                futures = [client.submit(derive_shard, store, i, name, cat, fp, pure=False) for i in range(n)]
                for _ in as_completed(futures):
                    bar.update(1)
                entries = client.gather(futures)  # in shard order; re-raises a shard's error
    except HepfmError as exc:
        if store.url in str(exc):
            raise
        raise type(exc)(f"{store.url}: deriving {name!r}: {exc}") from None
    finally:
        bar.close()
    # the manifest gains the entry last, atomically (re-read: another representation may have landed)
    mpath = f"{store.path}/{MANIFEST}"
    with store.fs.open(mpath, "rb") as fh:
        manifest = Manifest.from_json(fh.read(), f"{store.url}/{MANIFEST}")
    manifest.representations[name] = rep.entry(cat, [ShardInfo.from_dict(e, directory=f"representations/{name}")
                                                     for e in entries])
    _atomic_write_text(store.fs, mpath, manifest.to_json())
    store.fs.rm(work, recursive=True)
    try:
        store.fs.rmdir(f"{store.path}/{DERIVE_DIR}")
    except OSError:
        pass
    return open_store(store.url, storage_options)
