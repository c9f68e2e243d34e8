"""``write_store``: event records -> a sharded, checksummed, resumable store.

Protocol (any fsspec URL): shards are written complete under ``_build/`` (local
temp for remote stores) and moved into ``shards/``; a sidecar
``_build/<shard>.json`` then records the finished shard; the manifest is written
last (temp + rename) and ``_build/`` removed. A re-run with the same parameters
re-reads the input and skips every shard whose sidecar matches; ``mode="append"``
adds shards numbered after the existing ones and never rewrites them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import StoreError
from ..events import SampleInfo, validate_events
from .layouts import Columns, get_layout, local_sha256
from .manifest import MANIFEST, SPLITS, Manifest, ShardInfo
from .splits import SPLIT_RULE, assign_splits, check_fractions

DEFAULT_EVENTS_PER_SHARD = 100_000
BUILD_DIR = "_build"


def _atomic_write_text(fs, path: str, text: str) -> None:
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    fs.pipe_file(tmp, text.encode())
    fs.mv(tmp, path)


def _read_json(fs, path: str) -> Any:
    with fs.open(path, "rb") as fh:
        return json.loads(fh.read())


def _digest(event_id: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(event_id, dtype="<u8").tobytes()).hexdigest()


class _Builder:
    def __init__(self, fs, base: str, url: str, layout, compression, params: dict[str, Any],
                 next_index: dict[str, int], events_per_shard: int):
        self.fs, self.base, self.url, self.layout, self.compression = fs, base, url, layout, compression
        self.build = f"{base}/{BUILD_DIR}"
        self.params = params
        self.next_index = dict(next_index)
        self.eps = events_per_shard
        self.buffers: dict[str, list[Columns]] = {s: [] for s in SPLITS}
        self.buffered: dict[str, int] = {s: 0 for s in SPLITS}
        self.shards: list[ShardInfo] = []
        self.reused = 0
        self._prepare()

    def _prepare(self) -> None:
        fs, pfile = self.fs, f"{self.build}/params.json"
        if fs.exists(pfile):
            old = _read_json(fs, pfile)
            diff = sorted(k for k in set(old) | set(self.params) if old.get(k) != self.params.get(k))
            if diff:
                raise StoreError(
                    f"{self.url}: an interrupted build with different parameters is present "
                    f"({', '.join(f'{k}: {old.get(k)!r} != {self.params.get(k)!r}' for k in diff)}); "
                    f"re-run with the same parameters to resume, or pass overwrite")
        else:
            fs.makedirs(self.build, exist_ok=True)
            _atomic_write_text(fs, pfile, json.dumps(self.params, sort_keys=True))
        fs.makedirs(f"{self.base}/shards", exist_ok=True)
        self.done: dict[str, dict[str, Any]] = {}
        for p in fs.glob(f"{self.build}/*.json"):
            name = p.rsplit("/", 1)[-1][: -len(".json")]
            if name != "params":
                self.done[name] = _read_json(fs, p)

    def add(self, cols: Columns) -> None:
        split = assign_splits(cols.events["event_id"], self.params["split_salt"], self.params["fractions"])
        for k, name in enumerate(SPLITS):
            idx = np.flatnonzero(split == k)
            if idx.size:
                self.buffers[name].append(cols.take(idx))
                self.buffered[name] += int(idx.size)
            while self.buffered[name] >= self.eps:
                self._flush(name, self.eps)

    def finish(self) -> list[ShardInfo]:
        for name in SPLITS:
            if self.buffered[name]:
                self._flush(name, self.buffered[name])
        return self.shards

    def _flush(self, split: str, n: int) -> None:
        allc = Columns.concat(self.buffers[split])
        cols, rest = allc.slice(0, n), allc.slice(n, allc.n_events)
        self.buffers[split] = [rest] if rest.n_events else []
        self.buffered[split] = rest.n_events
        index = self.next_index[split]
        self.next_index[split] += 1
        name = f"{split}-{index:05d}{self.layout.suffix}"
        digest = _digest(cols.events["event_id"])
        side = self.done.get(name)
        if side is not None and side.get("event_digest") == digest and self.fs.exists(f"{self.base}/{side['path']}"):
            self.shards.append(ShardInfo.from_dict(side))
            self.reused += 1
            return
        self.shards.append(self._write(name, split, cols, digest))

    def _write(self, name: str, split: str, cols: Columns, digest: str) -> ShardInfo:
        from ..sources.fs import is_local

        fs, final = self.fs, f"{self.base}/shards/{name}"
        if fs.exists(final):  # left by a killed run before its sidecar: not trusted
            fs.rm(final, recursive=True)
        tag = f"tmp-{uuid.uuid4().hex}-{name}"
        if is_local(fs):
            tmp = f"{self.build}/{tag}"
            self.layout.write(cols, tmp, self.compression)
            sha, size = local_sha256(tmp)
            fs.mv(tmp, final, recursive=True)
        else:
            with tempfile.TemporaryDirectory(prefix="hepfm-shard-") as d:
                tmp = os.path.join(d, name)
                self.layout.write(cols, tmp, self.compression)
                sha, size = local_sha256(tmp)
                # object stores have no atomic rename: upload in place; the sidecar written
                # afterwards (and the manifest, last) is what marks the shard complete
                if os.path.isdir(tmp):
                    fs.put(tmp.rstrip("/") + "/", final.rstrip("/") + "/", recursive=True)
                else:
                    fs.put_file(tmp, final)
        eid = cols.events["event_id"]
        info = ShardInfo(f"shards/{name}", split, cols.n_events, cols.n_nodes, size, sha,
                         int(eid.min()), int(eid.max()))
        _atomic_write_text(fs, f"{self.build}/{name}.json",
                           json.dumps({**info.to_dict(), "event_digest": digest}, sort_keys=True))
        return info


def _columns(block, label: int, catalog, seed: int) -> Columns:
    from ..kernels.features import process_block

    nb = process_block(block, catalog, seed)
    b = nb.event_id.shape[0]
    events = {"event_id": nb.event_id, "weight": nb.weight, "label": np.full(b, label, np.int16),
              "multilabel": nb.multilabel, "n_node": nb.n_node}
    nodes = {"pt": nb.pt, "eta": nb.eta, "phi": nb.phi, "btag": nb.btag, "charge": nb.charge, "type": nb.type}
    return Columns(events, nodes)


def write_store(root: str, process: str, blocks: Iterable[tuple[Any, SampleInfo]], *, layout: str = "zarr",
                events_per_shard: int = DEFAULT_EVENTS_PER_SHARD, split_salt: str = "hepfm-v1",
                fractions=(0.8, 0.1, 0.1), seed: int = 0, storage_options: dict[str, Any] | None = None,
                catalog=None, compression: dict[str, Any] | None = None, mode: str = "create",
                label: int | None = None, event_id_rule: str = "", progress: bool = True):
    """Build ``<root>/<process>`` from ``(event record, SampleInfo)`` blocks; returns the :class:`Store`.

    ``mode``: "create" (resumes an interrupted build; refuses a complete store),
    "append" (adds shards to a complete store; same layout/split/seed required) or
    "overwrite". ``seed`` keys the b-tag random numbers; ``label`` defaults to the
    catalog index of ``process``. Memory is bounded by one block plus one shard per split.
    """
    from ..catalog import load_catalog
    from ..sources import resolve
    from .reader import open_store

    cat = catalog or load_catalog()
    proc = cat.process(process)
    fractions = check_fractions(fractions)
    if int(events_per_shard) <= 0:
        raise StoreError(f"events_per_shard must be positive, got {events_per_shard}")
    if mode not in ("create", "append", "overwrite"):
        raise StoreError(f"mode must be create, append or overwrite, got {mode!r}")
    lay = get_layout(layout)
    comp = dict(compression or lay.default_compression)
    url = f"{str(root).rstrip('/')}/{process}"
    fs, base = resolve(url, storage_options)
    base = base.rstrip("/")
    mpath = f"{base}/{MANIFEST}"
    if mode == "overwrite" and fs.exists(base):
        fs.rm(base, recursive=True)
    old: Manifest | None = None
    if fs.exists(mpath):
        if mode == "create":
            raise StoreError(f"{url}: a complete store already exists; use mode='append' to add shards "
                             f"or mode='overwrite' to rebuild")
        old = open_store(url, storage_options).manifest
        if old.layout != layout:
            raise StoreError(f"{url}: cannot append {layout!r} shards to a {old.layout!r} store")
    params = {"process": process, "layout": layout, "events_per_shard": int(events_per_shard),
              "split_salt": split_salt, "fractions": list(fractions), "seed": int(seed), "compression": comp,
              "label": int(proc.index if label is None else label), "base_shards": len(old.shards) if old else 0}
    if old is not None:
        for key, mine, theirs in (("split salt", split_salt, old.split.get("salt")),
                                  ("fractions", list(fractions), old.split.get("fractions")),
                                  ("b-tag seed", int(seed), old.btag_seed),
                                  ("label", params["label"], old.label)):
            if mine != theirs:
                raise StoreError(f"{url}: cannot append with {key} {mine!r}; the store has {theirs!r}")
    next_index = {s: 0 for s in SPLITS}
    for s in old.shards if old else ():
        idx = int(s.name.split("-", 1)[1].split(".", 1)[0])
        next_index[s.split] = max(next_index[s.split], idx + 1)
    builder = _Builder(fs, base, url, lay, comp, params, next_index, int(events_per_shard))

    provenance: list[dict[str, Any]] = list(old.provenance) if old else []
    bar = _progress(progress, process)
    for i, (events, info) in enumerate(blocks):
        events = validate_events(events, where=f"{process} block {i} ({', '.join(info.inputs) or info.source})")
        d = info.to_dict()
        if d not in provenance:
            provenance.append(d)
        builder.add(_columns(events, params["label"], cat, seed))
        bar.update(len(events))
    new = builder.finish()
    bar.close()
    if not new and old is None:
        raise StoreError(f"{url}: no events were given; refusing to write an empty store")
    manifest = Manifest(
        layout=layout, process=process, label=params["label"], label_names=list(cat.labels.names),
        shards=(list(old.shards) if old else []) + new,
        split={"names": list(SPLITS), "salt": split_salt, "fractions": list(fractions), "rule": SPLIT_RULE},
        btag_seed=int(seed), compression=comp, catalog_entry=dataclasses.asdict(proc),
        selection=dataclasses.asdict(cat.selection), object_types=dict(cat.graph.object_types),
        node_features=list(cat.graph.node_feature_names),
        event_id_rule=event_id_rule or (old.event_id_rule if old else ""),
        code_version=__version__, provenance=provenance,
    )
    _atomic_write_text(fs, mpath, manifest.to_json())
    fs.rm(builder.build, recursive=True)
    return open_store(url, storage_options)


def _progress(enabled: bool, process: str):
    from tqdm.auto import tqdm

    return tqdm(desc=f"build {process}", unit=" ev", disable=not enabled, leave=False)


