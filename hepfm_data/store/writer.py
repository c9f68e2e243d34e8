"""The store writer: :class:`Columns` (physics already done) -> sharded, checksummed, resumable store.

Writes columns only; the build path (``hepfm_data.pipelines.build``) runs readers and kernels
before it. Protocol (any fsspec URL): each unit of work writes its shards
``shards/<split>-<unit>-<j>`` complete under ``_build/`` (local temp for remote
stores) and moves them into ``shards/``; a sidecar ``_build/<shard>.json`` records
each finished shard and ``_build/units/<unit>.json`` the finished unit; the driver
writes the manifest last (temp + rename) and removes ``_build/``. A re-run with the
same parameters skips finished units (and reuses finished shards of an unfinished
one); ``mode="append"`` adds shards numbered after the existing ones.

With ``record=True`` (format 2, the default of ``build_store``) every shard has a sibling
record shard ``record/<split>-<unit>-<j>`` holding the same events' full event record
(``store.record``), written and checksummed with it; the manifest declares its schema. Format 3
(``object_types`` given, the default of ``build_store``): the record columns the paper shard holds
(event_id, weight, MET, the selected objects' pt, η, φ) are stored once, in the paper shard; the
manifest's ``record_codecs`` says so per column (``store.record.plan_codecs``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import uuid
from typing import Any

import numpy as np

from hepfm_data.core.errors import StoreError
from hepfm_data.core.events import SampleInfo
from hepfm_data.core.version import __version__
from hepfm_data.store.layouts import Columns, get_layout, local_sha256
from hepfm_data.store.manifest import MANIFEST, RECORD_DIR, SPLITS, Manifest, ShardInfo
from hepfm_data.store.record import encode_record, plan_codecs, schema_of, to_columns, write_record
from hepfm_data.store.record import n_objects as record_objects
from hepfm_data.store.splits import SPLIT_RULE, assign_splits, check_fractions

DEFAULT_EVENTS_PER_SHARD = 100_000
#: codecs of the record shards per layout (benchmarks/ingest.py, "Store formats 2 and 3": the record is
#: mostly float32 kinematics; blosc-zstd 8 is within 0.4% of 9 in size and writes 1.2-1.7x faster;
#: Zarr: pcodec where it compresses a column's first 4,096 values smaller, ``record._column_codecs``)
RECORD_COMPRESSION = {"zarr": {"codec": "blosc-zstd", "level": 8, "pcodec": True},
                      "parquet": {"codec": "zstd", "level": 15, "byte_stream_split": True}}
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


def shard_index(name: str) -> int:
    """Leading number of a shard name (``train-00003-0001.zarr`` -> 3; ``train-00003.zarr`` -> 3)."""
    return int(name.split("-", 2)[1].split(".", 1)[0])


class StoreBuild:
    """Driver side of a build: mode and parameter checks, unit markers, the manifest (last).

    Layout during a build: ``<base>/_build/params.json`` (the build's parameters: a re-run
    with other parameters is refused), ``_build/units/<index>.json`` (a finished unit: its
    shards and provenance), ``_build/<shard>.json`` (a finished shard), temp shards
    ``_build/tmp-*``. :meth:`commit` writes the manifest (temp + rename) and removes ``_build/``.
    """

    def __init__(self, root: str, process: str, *, layout: str, events_per_shard: int, split_salt: str,
                 fractions, seed: int, label: int, compression: dict[str, Any] | None, mode: str,
                 storage_options: dict[str, Any] | None, record: bool = True,
                 record_compression: dict[str, Any] | None = None, object_types: dict[str, int] | None = None):
        from hepfm_data.sources import resolve
        from hepfm_data.store.reader import open_store

        fractions = check_fractions(fractions)
        if int(events_per_shard) <= 0:
            raise StoreError(f"events_per_shard must be positive, got {events_per_shard}")
        if mode not in ("create", "append", "overwrite"):
            raise StoreError(f"mode must be create, append or overwrite, got {mode!r}")
        self.layout = get_layout(layout)
        comp = dict(compression or self.layout.default_compression)
        self.url = f"{str(root).rstrip('/')}/{process}"
        self.storage_options = storage_options
        fs, base = resolve(self.url, storage_options)
        self.fs, self.base = fs, base.rstrip("/")
        self.build = f"{self.base}/{BUILD_DIR}"
        mpath = f"{self.base}/{MANIFEST}"
        if mode == "overwrite" and fs.exists(self.base):
            fs.rm(self.base, recursive=True)
        self.old: Manifest | None = None
        if fs.exists(mpath):
            if mode == "create":
                raise StoreError(f"{self.url}: a complete store already exists; use mode='append' to add shards "
                                 f"or mode='overwrite' to rebuild")
            self.old = open_store(self.url, storage_options).manifest
            if self.old.layout != layout:
                raise StoreError(f"{self.url}: cannot append {layout!r} shards to a {self.old.layout!r} store")
            if not self.old.record_codecs:  # a format-2 store: its appended shards store every record column too
                object_types = None
            if bool(self.old.record_shards) != bool(record):
                raise StoreError(f"{self.url}: cannot append {'with' if record else 'without'} the event record "
                                 f"to a store {'without' if not self.old.record_shards else 'with'} one (format "
                                 f"{self.old.format_version}); rebuild it from its inputs with mode='overwrite'")
        old = self.old
        offset = 1 + max((shard_index(s.name) for s in old.shards), default=-1) if old else 0
        self.params = {"process": process, "layout": layout, "events_per_shard": int(events_per_shard),
                       "split_salt": split_salt, "fractions": list(fractions), "seed": int(seed),
                       "compression": comp, "label": int(label), "unit_offset": offset, "record": bool(record),
                       "record_compression": dict(record_compression or RECORD_COMPRESSION[layout]) if record
                       else {},
                       # format 3: record columns the paper shards hold are stored once (store.record codecs)
                       "object_types": dict(object_types) if record and object_types else {}}
        if old is not None:
            for key, mine, theirs in (("split salt", split_salt, old.split.get("salt")),
                                      ("fractions", list(fractions), old.split.get("fractions")),
                                      ("b-tag seed", int(seed), old.btag_seed),
                                      ("label", int(label), old.label)):
                if mine != theirs:
                    raise StoreError(f"{self.url}: cannot append with {key} {mine!r}; the store has {theirs!r}")
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
        fs.makedirs(f"{self.build}/units", exist_ok=True)

    def unit_writer(self, index: int) -> UnitWriter:
        """The (picklable) writer of unit ``index``: give it to the task that builds the unit."""
        return UnitWriter(self.url, self.storage_options, self.params, index)

    def finished_units(self) -> dict[int, dict[str, Any]]:
        """Markers of the units finished by earlier (interrupted) runs, by unit index."""
        out = {}
        for p in self.fs.glob(f"{self.build}/units/*.json"):
            doc = _read_json(self.fs, p)
            out[int(doc["unit"])] = doc
        return out

    def commit(self, markers: list[dict[str, Any]], *, catalog, event_id_rule: str,
               representations: dict[str, Any] | None = None):
        """Write the manifest from the unit markers (in unit order), remove ``_build/``; returns the Store.

        ``representations``: the manifest entries of the representations materialized by the
        build (``hepfm_data.representations.base``; the paper graph in ``shards/``)."""
        from hepfm_data.store.reader import open_store

        old, params = self.old, self.params
        provenance: list[dict[str, Any]] = list(old.provenance) if old else []
        new: list[ShardInfo] = []
        new_rec: list[ShardInfo] = []
        schema = _merged_schema(self.url, [m for m in markers if m.get("schema")], old)
        codecs = _merged_codecs(self.url, markers, old, schema)
        for m in markers:
            new += [ShardInfo.from_dict(d) for d in m["shards"]]
            new_rec += [ShardInfo.from_dict(d, directory=RECORD_DIR) for d in m.get("record_shards", [])]
            provenance += [d for d in m["provenance"] if d not in provenance]
        if not new and old is None:
            raise StoreError(f"{self.url}: no events were given; refusing to write an empty store")
        proc = catalog.process(params["process"])
        manifest = Manifest(
            layout=params["layout"], process=params["process"], label=params["label"],
            label_names=list(catalog.labels.names), shards=(list(old.shards) if old else []) + new,
            split={"names": list(SPLITS), "salt": params["split_salt"], "fractions": params["fractions"],
                   "rule": SPLIT_RULE},
            btag_seed=params["seed"], compression=params["compression"], catalog_entry=dataclasses.asdict(proc),
            selection=dataclasses.asdict(catalog.selection), object_types=dict(catalog.graph.object_types),
            node_features=list(catalog.graph.node_feature_names),
            event_id_rule=event_id_rule or (old.event_id_rule if old else ""),
            code_version=__version__, provenance=provenance, schema=schema,
            record_shards=(list(old.record_shards) if old else []) + new_rec,
            representations={**(old.representations if old else {}), **(representations or {})},
            record_compression=params.get("record_compression", {}), record_codecs=codecs,
            format_version=3 if codecs else 2,
        )
        _atomic_write_text(self.fs, f"{self.base}/{MANIFEST}", manifest.to_json())
        self.fs.rm(self.build, recursive=True)
        return open_store(self.url, self.storage_options)


class UnitWriter:
    """Task side: columns of one unit -> complete, split-homogeneous shards ``<split>-<unit>-<j>``.

    :meth:`add` takes :class:`Columns` (the physics already ran), assigns splits by event-id
    hash and cuts shards of ``events_per_shard``; :meth:`finish` flushes the rest and writes
    the unit's marker (its shards and provenance), after which the unit counts as done.
    A shard whose sidecar matches its events (same event-id digest) is reused, not rewritten.
    Picklable until first used: it resolves its filesystem lazily on the worker.
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None, params: dict[str, Any], index: int):
        self.url, self.storage_options, self.params = url, storage_options, params
        self.index = int(index) + int(params.get("unit_offset", 0))
        self.unit = int(index)
        self.eps = int(params["events_per_shard"])
        self.buffers: dict[str, list[Columns]] = {s: [] for s in SPLITS}
        self.buffered: dict[str, int] = {s: 0 for s in SPLITS}
        self.count: dict[str, int] = {s: 0 for s in SPLITS}
        self.shards: list[ShardInfo] = []
        self.record_shards: list[ShardInfo] = []
        self.rec_buffers: dict[str, list[Any]] = {s: [] for s in SPLITS}
        self.schema: dict[str, Any] | None = None
        self.objects: dict[str, int] = {}
        self.provenance: list[dict[str, Any]] = []
        self.n_events = 0
        self._fs = None

    def _open(self):
        if self._fs is None:
            from hepfm_data.sources import resolve

            fs, base = resolve(self.url, self.storage_options)
            self._fs, self.base = fs, base.rstrip("/")
            self.build = f"{self.base}/{BUILD_DIR}"
            self.layout = get_layout(self.params["layout"])
        return self._fs

    def add(self, cols: Columns, info: SampleInfo | None = None, record=None) -> None:
        """Add a block: its paper columns and (format 2) its event record, same events in the same order."""
        self._open()
        if self.params.get("record") and record is None:
            raise StoreError(f"{self.url}: unit {self.unit}: this build keeps the event record; add() needs it")
        if record is not None:
            if len(record) != cols.n_events:
                raise StoreError(f"{self.url}: unit {self.unit}: record has {len(record)} events, columns "
                                 f"{cols.n_events}")
            schema = schema_of(record)
            if self.schema is None:
                self.schema = schema
            elif schema != self.schema:
                raise StoreError(f"{self.url}: unit {self.unit}: a block's record fields {_fields(schema)} differ "
                                 f"from the unit's first block {_fields(self.schema)}; inputs of different "
                                 f"productions must be separate units: build them with "
                                 f"build_store(open_source(FORMAT, PROCESS, FILES), ...) (one unit per file range)")
        if info is not None and info.to_dict() not in self.provenance:
            self.provenance.append(info.to_dict())
        self.n_events += cols.n_events
        split = assign_splits(cols.events["event_id"], self.params["split_salt"], self.params["fractions"])
        for k, name in enumerate(SPLITS):
            idx = np.flatnonzero(split == k)
            if idx.size:
                self.buffers[name].append(cols.take(idx))
                if record is not None:
                    self.rec_buffers[name].append(record[idx])
                self.buffered[name] += int(idx.size)
            while self.buffered[name] >= self.eps:
                self._flush(name, self.eps)

    def finish(self, key: str = "", spec: dict[str, Any] | None = None) -> dict[str, Any]:
        """Flush the remaining events and write the unit marker; returns it."""
        fs = self._open()
        for name in SPLITS:
            if self.buffered[name]:
                self._flush(name, self.buffered[name])
        marker = {"unit": self.unit, "key": key, "spec": spec or {}, "n_events": self.n_events,
                  "shards": [s.to_dict() for s in self.shards], "provenance": self.provenance,
                  "record_shards": [s.to_dict() for s in self.record_shards], "schema": self.schema or {},
                  "record_codecs": self._codecs(),
                  "n_objects": self.objects}
        _atomic_write_text(fs, f"{self.build}/units/{self.unit:05d}.json", json.dumps(marker, sort_keys=True))
        return marker

    def _flush(self, split: str, n: int) -> None:
        allc = Columns.concat(self.buffers[split])
        cols, rest = allc.slice(0, n), allc.slice(n, allc.n_events)
        self.buffers[split] = [rest] if rest.n_events else []
        self.buffered[split] = rest.n_events
        rec = None
        if self.rec_buffers[split]:
            import awkward as ak

            allr = self.rec_buffers[split][0] if len(self.rec_buffers[split]) == 1 else \
                ak.concatenate(self.rec_buffers[split])
            rec, rrest = allr[:n], allr[n:]
            self.rec_buffers[split] = [rrest] if len(rrest) else []
        name = f"{split}-{self.index:05d}-{self.count[split]:04d}{self.layout.suffix}"
        self.count[split] += 1
        digest = _digest(cols.events["event_id"])
        spath = f"{self.build}/{name}.json"
        if self._fs.exists(spath):
            side = _read_json(self._fs, spath)
            rside = side.get("record")
            if side.get("event_digest") == digest and self._fs.exists(f"{self.base}/{side['path']}") and (
                    rec is None or (rside and self._fs.exists(f"{self.base}/{rside['path']}"))):
                self.shards.append(ShardInfo.from_dict(side))
                if rec is not None:
                    self.record_shards.append(ShardInfo.from_dict(rside, directory=RECORD_DIR))
                    self._count(side["n_objects"])
                return
        self.shards.append(self._write(name, split, cols, digest, rec))

    def _codecs(self) -> dict[str, Any]:
        """This unit's record codecs (format 3), from its schema and the catalog's object types."""
        types = self.params.get("object_types")
        return plan_codecs(self.schema, types) if types and self.schema else {}

    def _count(self, objects: dict[str, int]) -> None:
        for k, v in objects.items():
            self.objects[k] = self.objects.get(k, 0) + int(v)

    def _put(self, rel: str, write) -> tuple[str, int]:
        """Write a shard with ``write(local_path)`` and move it to ``<base>/<rel>``; returns (sha256, bytes)."""
        from hepfm_data.sources.fs import is_local

        fs, final = self._fs, f"{self.base}/{rel}"
        if fs.exists(final):  # left by a killed run before its sidecar: not trusted
            fs.rm(final, recursive=True)
        name = rel.rsplit("/", 1)[-1]
        if is_local(fs):
            tmp = f"{self.build}/tmp-{uuid.uuid4().hex}-{name}"
            write(tmp)
            sha, size = local_sha256(tmp)
            fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            fs.mv(tmp, final, recursive=True)
            return sha, size
        with tempfile.TemporaryDirectory(prefix="hepfm-shard-") as d:
            tmp = os.path.join(d, name)
            write(tmp)
            sha, size = local_sha256(tmp)
            # object stores have no atomic rename: upload in place; the sidecar written
            # afterwards (and the manifest, last) is what marks the shard complete
            if os.path.isdir(tmp):
                fs.put(tmp.rstrip("/") + "/", final.rstrip("/") + "/", recursive=True)
            else:
                fs.put_file(tmp, final)
        return sha, size

    def _write(self, name: str, split: str, cols: Columns, digest: str, rec=None) -> ShardInfo:
        comp = self.params["compression"]
        extra: dict[str, Any] = {}
        eid = cols.events["event_id"]
        if rec is not None:
            rcols = to_columns(rec, self.schema)
            objects = record_objects(rcols, self.schema)
            codecs = self._codecs()
            if codecs:
                rcols = encode_record(rcols, cols, self.schema, codecs, f"{self.url}: record shard {name}")
            rsha, rsize = self._put(f"{RECORD_DIR}/{name}", lambda p: write_record(
                self.layout.name, rcols, p, self.params.get("record_compression") or comp, self.schema, codecs,
                {"paper_event_ids_sha256": digest}))
            listed = sum(v for k, v in objects.items() if self.schema["collections"][k]["kind"] == "list")
            rinfo = ShardInfo(f"{RECORD_DIR}/{name}", split, cols.n_events, cols.n_events + listed, rsize, rsha,
                              int(eid.min()), int(eid.max()))
            self.record_shards.append(rinfo)
            self._count(objects)
            extra = {"record": rinfo.to_dict(), "n_objects": objects}
        sha, size = self._put(f"shards/{name}", lambda p: self.layout.write(cols, p, comp))
        info = ShardInfo(f"shards/{name}", split, cols.n_events, cols.n_nodes, size, sha,
                         int(eid.min()), int(eid.max()))
        _atomic_write_text(self._fs, f"{self.build}/{name}.json",
                           json.dumps({**info.to_dict(), "event_digest": digest, **extra}, sort_keys=True))
        return info

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_fs"] = None  # re-resolved on the worker
        return state


def _fields(schema: dict[str, Any]) -> list[str]:
    return [*schema.get("events", {}), *(f"{c}.{f}" for c, d in schema.get("collections", {}).items()
                                         for f in d["fields"])]


def _common(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields (and collections) every schema has, with the first one's dtypes and units."""
    first = schemas[0]
    ev = {k: v for k, v in first["events"].items() if all(s["events"].get(k) == v for s in schemas)}
    cols = {}
    for name, c in first["collections"].items():
        others = [s["collections"].get(name) for s in schemas]
        if any(o is None or o["kind"] != c["kind"] for o in others):
            continue
        fields = {f: v for f, v in c["fields"].items() if all(o["fields"].get(f) == v for o in others)}
        cols[name] = {**c, "fields": fields}
    cols = {n: c for n, c in cols.items() if c.get("parent") is None or c["parent"] in cols}
    return {"collections": cols, "events": ev}


def _strip_counts(schema: dict[str, Any]) -> dict[str, Any]:
    return {"events": schema.get("events", {}),
            "collections": {k: {a: b for a, b in v.items() if a != "n_objects"}
                            for k, v in schema.get("collections", {}).items()}}


def _merged_codecs(url: str, markers: list[dict[str, Any]], old: Manifest | None,
                   schema: dict[str, Any]) -> dict[str, Any]:
    """The store's record codecs: every unit's (and an appended store's) must agree on the columns of the
    merged ``schema`` (a collection only some units have is not declared, so its codecs do not matter)."""
    from hepfm_data.store.record import column_names

    declared = {k for k, _ in column_names(schema)} if schema else set()
    plans = [m.get("record_codecs") or {} for m in markers if m.get("record_shards")]
    if old is not None and old.record_shards:
        plans.append(old.record_codecs)
    plans = [{k: v for k, v in p.items() if k in declared} for p in plans]
    if any(p != plans[0] for p in plans):
        raise StoreError(f"{url}: units stored their record with different codecs (their inputs give the paper "
                         f"kinematics different dtypes); build them as separate stores")
    return plans[0] if plans else {}


def _merged_schema(url: str, markers: list[dict[str, Any]], old: Manifest | None) -> dict[str, Any]:
    """One schema for the whole store: every unit's (and an appended store's) must agree; ``n_objects``
    per collection summed over units (for mean multiplicities)."""
    schemas = [m["schema"] for m in markers] + ([old.schema] if old is not None and old.schema else [])
    if not schemas:
        return {}
    stripped = [_strip_counts(s) for s in schemas]
    out = _common(stripped)
    if old is not None and old.schema and _strip_counts(old.schema) != out:
        raise StoreError(f"{url}: the new units' record fields {_fields(out)} differ from the store's "
                         f"{_fields(old.schema)}; one store holds one schema (rebuild with mode='overwrite')")
    partial = sorted(set().union(*map(_fields, stripped)) - set(_fields(out)))
    if partial:  # inputs of several productions: the store declares the fields every unit has
        import warnings

        warnings.warn(f"{url}: record fields {partial} are not in every unit's input; the store declares the "
                      f"fields common to all units (listed in its schema as not_in_every_unit)", stacklevel=2)
        out["not_in_every_unit"] = partial
    for name, c in out["collections"].items():
        total = sum(int(m.get("n_objects", {}).get(name, 0)) for m in markers)
        if old is not None and old.schema:
            total += int(old.schema["collections"][name].get("n_objects", 0))
        c["n_objects"] = total
    return out
