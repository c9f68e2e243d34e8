"""The stored event record (store format 2): a declared schema and its Zarr / Parquet record shards.

A store keeps, beside each paper-graph shard ``shards/<name>``, a *record shard*
``record/<name>`` holding the same events' reconstructed record before any selection
(``hepfm_data.events``: every collection and field the input provides). The manifest's
``schema`` declares it (validated at open by :func:`check_schema`)::

    {"events": {"event_id": {"dtype": "uint64", "unit": ""}, "weight": {...}, ...},
     "collections": {
        "jets": {"kind": "list", "offsets": "n", "fields": {"pt": {"dtype": "float32", "unit": "GeV"}, ...}},
        "met":  {"kind": "record", "fields": {...}},
        "jets.constituents": {"kind": "list", "parent": "jets", "offsets": "n", "fields": {...}}}}

``list`` collections are ragged: ``offsets`` names the stored count column (``int32``
objects per parent row: per event for a top-level collection, per parent object for a
nested one such as a jet's constituents, named ``<parent>.<child>``); ``record``
collections have one row per event (MET). Readers walk this schema, never a fixed list.

In memory a record shard is a flat :data:`RecordColumns` dict keyed ``"event_id"``,
``"jets/n"``, ``"jets/pt"``, ``"jets.constituents/pt"``...; :func:`to_events` /
:func:`to_arrow` give the awkward record / the Arrow table (rows = events, collections
as lists of structs). Zarr: one group per record shard, a sub-group per collection, one
sharded array per column (same codecs and crc32c as the paper columns). Parquet: one
file, one row per event, collections as ``list<struct>`` columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import ManifestError, StoreError

#: directory of the record shards inside a store
RECORD_DIR = "record"
#: dtypes a schema may declare (numbers only: nothing that needs an object or pickle decoder)
DTYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                    "float32", "float64"})
COUNT_DTYPE = np.int32
KINDS = ("list", "record")
#: a collection name: ``jets`` or ``jets.constituents`` (nested: parent name + "." + child)
COLLECTION = re.compile(r"[a-z][a-z0-9_]{0,63}(\.[a-z][a-z0-9_]{0,63}){0,3}", re.ASCII)
FIELD = re.compile(r"[a-z][a-z0-9_]{0,63}", re.ASCII)
UNIT = re.compile(r"[A-Za-z0-9 /^.*-]{0,16}", re.ASCII)
MAX_COLLECTIONS = 64
MAX_FIELDS = 128

RecordColumns = dict[str, np.ndarray]


# ----------------------------------------------------------------------------- schema


def _unit(collection: str, field: str) -> str:
    from ..events import RECORD

    head, *nested = collection.split(".")
    spec = RECORD.get(head)
    for child in nested:  # a nested collection: walk the schema's children (fatjets.constituents)
        spec = spec.children.get(child) if spec is not None else None
    if spec is None:
        return ""
    f = spec.fields.get(field)
    return f.unit if f is not None else ""


def _leaf(values, where: str) -> np.dtype:
    import awkward as ak

    try:
        dt = ak.to_numpy(values).dtype
    except Exception as exc:
        raise StoreError(f"record field {where}: not a flat numeric array ({exc})") from None
    if dt.name not in DTYPES:
        raise StoreError(f"record field {where}: dtype {dt} is not one of {sorted(DTYPES)}")
    return dt


def schema_of(events) -> dict[str, Any]:
    """The declared schema of an awkward event record (units from ``events.RECORD``)."""
    import awkward as ak

    out: dict[str, Any] = {"events": {}, "collections": {}}

    def collection(name: str, flat, parent: str | None) -> None:
        fields: dict[str, Any] = {}
        entry: dict[str, Any] = {"kind": "list", "offsets": "n", "fields": fields}
        if parent:
            entry["parent"] = parent
        out["collections"][name] = entry
        for f in flat.fields:
            sub = flat[f]
            if sub.ndim == 2 and sub.fields:  # nested collection (e.g. a jet's constituents)
                collection(f"{name}.{f}", ak.flatten(sub, axis=1), name)
            else:
                fields[f] = {"dtype": _leaf(sub, f"{name}.{f}").name, "unit": _unit(name, f)}

    for name in events.fields:
        col = events[name]
        if not col.fields:
            out["events"][name] = {"dtype": _leaf(col, name).name, "unit": _unit(name, "")}
        elif col.ndim == 1:
            out["collections"][name] = {"kind": "record", "fields": {
                f: {"dtype": _leaf(col[f], f"{name}.{f}").name, "unit": _unit(name, f)} for f in col.fields}}
        else:
            collection(name, ak.flatten(col, axis=1), None)
    return canonical(out)


def canonical(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with events, collections and fields in sorted order (what a JSON manifest keeps)."""
    def fields(d):
        return {k: d[k] for k in sorted(d)}

    cols = {}
    for name in sorted(schema["collections"]):
        c = dict(schema["collections"][name])
        c["fields"] = fields(c["fields"])
        cols[name] = {k: c[k] for k in sorted(c)}
    return {"collections": cols, "events": fields(schema["events"])}


def check_schema(schema: Any, where: str) -> dict[str, Any]:
    """Validate a manifest's ``schema`` (data from the store); raise :class:`ManifestError` naming the entry.

    Refused: an unknown dtype, a ``list`` collection without ``offsets``, a nested collection
    whose parent is not a declared ``list`` collection, names off the plain patterns, more
    than :data:`MAX_COLLECTIONS` collections or :data:`MAX_FIELDS` fields in one."""

    def bad(entry: str, problem: str) -> ManifestError:
        return ManifestError(f"{where}: schema {entry}: {problem}")

    def fields(entry: str, d: Any) -> None:
        if not isinstance(d, dict) or len(d) > MAX_FIELDS:
            raise bad(entry, f"fields must be an object of at most {MAX_FIELDS} entries")
        for name, f in d.items():
            if not isinstance(name, str) or not FIELD.fullmatch(name):
                raise bad(entry, f"field name {name!r:.40} is not of the form {FIELD.pattern}")
            if not isinstance(f, dict) or set(f) - {"dtype", "unit", "doc"}:
                raise bad(f"{entry}.{name}", "must be an object with dtype and unit")
            if f.get("dtype") not in DTYPES:
                raise bad(f"{entry}.{name}", f"unknown dtype {f.get('dtype')!r:.40}; accepted: {sorted(DTYPES)}")
            if not isinstance(f.get("unit", ""), str) or not UNIT.fullmatch(f.get("unit", "")):
                raise bad(f"{entry}.{name}", f"unit {f.get('unit')!r:.40} is not a plain unit")

    if not isinstance(schema, dict) or set(schema) - {"events", "collections", "not_in_every_unit"}:
        raise bad("", "must be an object with 'events' and 'collections'")
    partial = schema.get("not_in_every_unit", [])
    if not isinstance(partial, list) or len(partial) > MAX_FIELDS * MAX_COLLECTIONS or not all(
            isinstance(x, str) and len(x) < 200 for x in partial):
        raise bad("not_in_every_unit", "must be a list of field names")
    fields("events", schema.get("events", {}))
    cols = schema.get("collections", {})
    if not isinstance(cols, dict) or len(cols) > MAX_COLLECTIONS:
        raise bad("collections", f"must be an object of at most {MAX_COLLECTIONS} collections")
    for name, c in cols.items():
        entry = f"collection {name!r:.80}"
        if not isinstance(name, str) or not COLLECTION.fullmatch(name):
            raise bad(entry, f"name is not of the form {COLLECTION.pattern}")
        if not isinstance(c, dict) or set(c) - {"kind", "offsets", "parent", "fields", "doc", "n_objects"}:
            raise bad(entry, "must be an object with kind, fields (and offsets, parent for lists)")
        if c.get("kind") not in KINDS:
            raise bad(entry, f"kind {c.get('kind')!r:.40} is not one of {KINDS}")
        if c["kind"] == "list" and c.get("offsets") != "n":
            raise bad(entry, "a list collection must declare its offsets (\"offsets\": \"n\", the per-parent "
                             "count column)")
        parent = c.get("parent")
        want = name.rsplit(".", 1)[0] if "." in name else None
        if parent != want:
            raise bad(entry, f"parent {parent!r:.40} must be {want!r} (the name before the last '.')")
        if parent is not None and (not isinstance(cols.get(parent), dict) or cols[parent].get("kind") != "list"
                                   or c["kind"] != "list"):
            raise bad(entry, f"parent {parent!r} is not a declared list collection")
        if "n_objects" in c and (not isinstance(c["n_objects"], int) or isinstance(c["n_objects"], bool)
                                 or c["n_objects"] < 0):
            raise bad(entry, "n_objects must be a non-negative integer")
        fields(entry, c.get("fields"))
        if "n" in c["fields"] and c["kind"] == "list":
            raise bad(entry, "field name 'n' is reserved for the offsets column")
    out = canonical({"events": schema.get("events", {}), "collections": cols})
    if partial:
        out["not_in_every_unit"] = sorted(partial)
    return out


def _children(schema: dict[str, Any], parent: str | None) -> list[str]:
    return [n for n, c in schema["collections"].items() if c.get("parent") == parent]


def column_names(schema: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(key, dtype)`` of every stored column the schema declares (event fields, counts, fields)."""
    for name, f in schema["events"].items():
        yield name, f["dtype"]
    for name, c in schema["collections"].items():
        if c["kind"] == "list":
            yield f"{name}/n", np.dtype(COUNT_DTYPE).name
        for f, spec in c["fields"].items():
            yield f"{name}/{f}", spec["dtype"]


def inputs_missing(schema: dict[str, Any], inputs: list[str]) -> list[str]:
    """The ``collection.field`` (or event field) names of ``inputs`` the schema lacks."""
    missing = []
    for item in inputs:
        coll, _, field = item.rpartition(".")
        if not coll:
            ok = item in schema.get("events", {})
        else:
            ok = field in schema.get("collections", {}).get(coll, {}).get("fields", {})
        if not ok:
            missing.append(item)
    return missing


# ----------------------------------------------------------------------------- record <-> columns


def to_columns(events, schema: dict[str, Any]) -> RecordColumns:
    """Flat columns of an awkward event record following ``schema`` (see the module docstring)."""
    import awkward as ak

    out: RecordColumns = {}
    for name, f in schema["events"].items():
        out[name] = np.ascontiguousarray(ak.to_numpy(events[name]), dtype=f["dtype"])

    def walk(name: str, arr) -> None:  # arr: var * record, one list per parent row
        c = schema["collections"][name]
        out[f"{name}/n"] = np.asarray(ak.num(arr, axis=1), dtype=COUNT_DTYPE)
        flat = ak.flatten(arr, axis=1)
        for f, spec in c["fields"].items():
            out[f"{name}/{f}"] = np.ascontiguousarray(ak.to_numpy(flat[f]), dtype=spec["dtype"])
        for child in _children(schema, name):
            walk(child, flat[child.rsplit(".", 1)[1]])

    for name, c in schema["collections"].items():
        if c["kind"] == "record":
            for f, spec in c["fields"].items():
                out[f"{name}/{f}"] = np.ascontiguousarray(ak.to_numpy(events[name][f]), dtype=spec["dtype"])
        elif c.get("parent") is None:
            walk(name, events[name])
    return out


def n_events(cols: RecordColumns, schema: dict[str, Any]) -> int:
    return int(cols["event_id"].shape[0]) if "event_id" in cols else int(next(iter(cols.values())).shape[0])


def n_objects(cols: RecordColumns, schema: dict[str, Any]) -> dict[str, int]:
    """Objects per collection (``record`` collections: one per event)."""
    return {name: int(cols[f"{name}/n"].sum(dtype=np.int64)) if c["kind"] == "list" else n_events(cols, schema)
            for name, c in schema["collections"].items()}


def to_events(cols: RecordColumns, schema: dict[str, Any]):
    """The awkward event record of flat columns (inverse of :func:`to_columns`)."""
    import awkward as ak

    def build(name: str):  # flat records of collection ``name`` (one per object)
        c = schema["collections"][name]
        parts = {f: cols[f"{name}/{f}"] for f in c["fields"]}
        for child in _children(schema, name):
            parts[child.rsplit(".", 1)[1]] = ak.unflatten(build(child), cols[f"{child}/n"])
        return ak.zip(parts, depth_limit=1)

    out = {name: cols[name] for name in schema["events"]}
    for name, c in schema["collections"].items():
        if c["kind"] == "record":
            out[name] = ak.zip({f: cols[f"{name}/{f}"] for f in c["fields"]})
        elif c.get("parent") is None:
            out[name] = ak.unflatten(build(name), cols[f"{name}/n"])
    return ak.zip(out, depth_limit=1)


def _ranges(cols_n: dict[str, np.ndarray], schema: dict[str, Any], start: int, stop: int) -> dict[str, tuple[int, int]]:
    """Row range of every collection's objects for events ``[start, stop)`` (counts in ``cols_n``)."""
    rows: dict[str | None, tuple[int, int]] = {None: (start, stop)}
    for name, c in schema["collections"].items():  # parents precede children (insertion order)
        if c["kind"] == "record":
            rows[name] = (start, stop)
            continue
        lo, hi = rows[c.get("parent")]
        n = cols_n[name]
        a = int(n[:lo].sum(dtype=np.int64))
        rows[name] = (a, a + int(n[lo:hi].sum(dtype=np.int64)))
    return {k: v for k, v in rows.items() if k is not None}


def slice_columns(cols: RecordColumns, schema: dict[str, Any], start: int, stop: int) -> RecordColumns:
    """Events ``[start, stop)`` of in-memory record columns."""
    ranges = _ranges({n: cols[f"{n}/n"] for n, c in schema["collections"].items() if c["kind"] == "list"},
                     schema, start, stop)
    out = {name: cols[name][start:stop] for name in schema["events"]}
    for name, c in schema["collections"].items():
        lo, hi = ranges[name]
        parent_rows = ranges.get(c.get("parent"), (start, stop)) if c["kind"] == "list" else None
        if c["kind"] == "list":
            out[f"{name}/n"] = cols[f"{name}/n"][parent_rows[0]:parent_rows[1]]
        for f in c["fields"]:
            out[f"{name}/{f}"] = cols[f"{name}/{f}"][lo:hi]
    return out


# ----------------------------------------------------------------------------- Arrow


def arrow_schema(schema: dict[str, Any]):
    """The ``pyarrow.Schema`` of :func:`to_arrow` (non-nullable lists of structs)."""
    import pyarrow as pa

    def struct(name: str):
        c = schema["collections"][name]
        fs = [pa.field(f, pa.from_numpy_dtype(np.dtype(s["dtype"])), nullable=False) for f, s in c["fields"].items()]
        fs += [pa.field(ch.rsplit(".", 1)[1], pa.list_(pa.field("element", struct(ch), nullable=False)), nullable=False)
               for ch in _children(schema, name)]
        return pa.struct(fs)

    fields = [pa.field(n, pa.from_numpy_dtype(np.dtype(f["dtype"])), nullable=False) for n, f in schema["events"].items()]
    for name, c in schema["collections"].items():
        if c["kind"] == "record":
            fields.append(pa.field(name, struct(name), nullable=False))
        elif c.get("parent") is None:
            fields.append(pa.field(name, pa.list_(pa.field("element", struct(name), nullable=False)), nullable=False))
    return pa.schema(fields)


def to_arrow(cols: RecordColumns, schema: dict[str, Any]):
    """A ``pyarrow.Table`` (rows = events; ``list`` collections as lists of structs) of record columns."""
    import pyarrow as pa

    target = arrow_schema(schema)

    def offsets(n: np.ndarray):
        off = np.zeros(n.shape[0] + 1, np.int64)
        np.cumsum(n, out=off[1:])
        return pa.array(off.astype(np.int32) if off[-1] < 2**31 else off)

    def struct(name: str):
        c = schema["collections"][name]
        arrays = [pa.array(cols[f"{name}/{f}"]) for f in c["fields"]]
        for ch in _children(schema, name):
            arrays.append(pa.ListArray.from_arrays(offsets(cols[f"{ch}/n"]), struct(ch),
                                                   type=pa.list_(pa.field("element", arrow_schema_struct(schema, ch),
                                                                          nullable=False))))
        return pa.StructArray.from_arrays(arrays, fields=list(arrow_schema_struct(schema, name)))

    arrays = []
    for field in target:
        name = field.name
        if name in schema["events"]:
            arrays.append(pa.array(cols[name]))
        elif schema["collections"][name]["kind"] == "record":
            arrays.append(struct(name))
        else:
            arrays.append(pa.ListArray.from_arrays(offsets(cols[f"{name}/n"]), struct(name),
                                                   type=field.type))
    return pa.Table.from_arrays(arrays, schema=target)


def arrow_schema_struct(schema: dict[str, Any], name: str):
    """The Arrow struct type of one collection's objects."""
    import pyarrow as pa

    top = name.split(".")[0]
    typ = arrow_schema(schema).field(top).type
    for part in name.split(".")[1:]:
        typ = typ.value_type.field(part).type
    return typ.value_type if pa.types.is_list(typ) else typ


def from_arrow(table, schema: dict[str, Any]) -> RecordColumns:
    """Record columns of an Arrow table written by :func:`to_arrow` (types checked against the schema)."""
    import pyarrow as pa

    out: RecordColumns = {}

    def np_of(arr, dtype: str, where: str) -> np.ndarray:
        if arr.null_count:
            raise StoreError(f"record column {where} has null values")
        v = arr.to_numpy(zero_copy_only=False)
        if v.dtype != np.dtype(dtype):
            raise StoreError(f"record column {where}: {v.dtype}, the schema declares {dtype}")
        return v

    def lst(name: str, arr):
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
            raise StoreError(f"record column {name}: {arr.type} is not a list of objects")
        off = arr.offsets.to_numpy()
        out[f"{name}/n"] = np.diff(off).astype(COUNT_DTYPE)
        struct(name, arr.flatten())

    def struct(name: str, arr):
        c = schema["collections"][name]
        for f, spec in c["fields"].items():
            out[f"{name}/{f}"] = np_of(arr.field(f), spec["dtype"], f"{name}.{f}")
        for ch in _children(schema, name):
            lst(ch, arr.field(ch.rsplit(".", 1)[1]))

    for name, f in schema["events"].items():
        out[name] = np_of(table.column(name).combine_chunks(), f["dtype"], name)
    for name, c in schema["collections"].items():
        if c.get("parent") is not None:
            continue
        col = table.column(name).combine_chunks()
        if c["kind"] == "record":
            struct(name, col)
        else:
            lst(name, col)
    return out


# ----------------------------------------------------------------------------- record shards


def _zarr_key(key: str) -> str:
    return key  # "jets/pt": array "pt" of sub-group "jets"; "event_id": a root array


def write_zarr_record(cols: RecordColumns, path: str, compression: dict[str, Any]) -> None:
    """A record shard as a Zarr v3 group at local ``path`` (one sharded array per column)."""
    import zarr

    from .layouts import ZARR_EVENT_CHUNK, ZARR_NODE_CHUNK, _zarr_compressors, _zarr_local_store

    comp = _zarr_compressors(compression)
    group = zarr.open_group(_zarr_local_store(path, False), mode="w", zarr_format=3)
    for key, arr in cols.items():
        n = arr.shape[0]
        c = min(ZARR_EVENT_CHUNK if "/" not in key else ZARR_NODE_CHUNK, max(n, 1))
        sub, _, name = key.rpartition("/")
        g = group.require_group(sub) if sub else group
        a = g.create_array(name, shape=arr.shape, dtype=arr.dtype, chunks=(c,), shards=(-(-max(n, 1) // c) * c,),
                           compressors=comp(arr.dtype), fill_value=0)
        a[...] = arr


def open_zarr_record(fs, path: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The opened arrays of a Zarr record shard, checked against the schema (dtypes, codecs, chunk limits)."""
    from .layouts import MAX_CHUNK_BYTES, MAX_CHUNKS_PER_SHARD, ZARR_CODECS, _codec_names, _zarr_group

    g = _zarr_group(fs, path)
    out = {}
    for key, dtype in column_names(schema):
        try:
            arr = g[key]
        except KeyError:
            raise StoreError(f"record column {key!r} declared by the schema is missing") from None
        if np.dtype(arr.dtype) != np.dtype(dtype) or len(arr.shape) != 1:
            raise StoreError(f"record column {key!r}: {arr.dtype} {tuple(arr.shape)}, the schema declares {dtype} [n]")
        chunks, outer = tuple(arr.chunks), tuple(arr.shards or arr.chunks)
        if chunks[0] < 1 or chunks[0] * np.dtype(dtype).itemsize > MAX_CHUNK_BYTES or \
                -(-outer[0] // chunks[0]) > MAX_CHUNKS_PER_SHARD:
            raise StoreError(f"record column {key!r}: chunks {chunks} / shards {outer} exceed the limits")
        bad = set(_codec_names(arr.metadata.codecs)) - ZARR_CODECS
        if bad:
            raise StoreError(f"record column {key!r}: codecs {sorted(bad)} are not accepted")
        out[key] = arr
    return out


def check_lengths(arrays: dict[str, Any], schema: dict[str, Any], n: int) -> dict[str, np.ndarray]:
    """The count columns of a record shard, checked: event columns have ``n`` rows, each collection's
    count column has its parent's rows and its field columns the sum of its counts. Returns the counts."""
    counts: dict[str, np.ndarray] = {}
    rows: dict[str | None, int] = {None: n}
    for key in schema["events"]:
        if arrays[key].shape[0] != n:
            raise StoreError(f"record column {key!r} has {arrays[key].shape[0]} rows, the manifest {n} events")
    for name, c in schema["collections"].items():
        if c["kind"] == "list":
            cnt = np.asarray(arrays[f"{name}/n"][...])
            parent_rows = rows[c.get("parent")]
            if cnt.shape[0] != parent_rows or (cnt.size and int(cnt.min()) < 0):
                raise StoreError(f"record collection {name!r}: offsets column has {cnt.shape[0]} rows "
                                 f"(min {int(cnt.min()) if cnt.size else 0}), its parent {parent_rows}")
            counts[name] = cnt
            rows[name] = int(cnt.sum(dtype=np.int64))
        else:
            rows[name] = n
        for f in c["fields"]:
            if arrays[f"{name}/{f}"].shape[0] != rows[name]:
                raise StoreError(f"record column {name}.{f} has {arrays[f'{name}/{f}'].shape[0]} rows, "
                                 f"its offsets say {rows[name]}")
    return counts


def read_zarr_record(arrays: dict[str, Any], counts: dict[str, np.ndarray], schema: dict[str, Any],
                     start: int, stop: int) -> RecordColumns:
    """Events ``[start, stop)`` of an opened Zarr record shard (``counts`` from :func:`check_lengths`)."""
    ranges = _ranges(counts, schema, start, stop)
    out = {name: arrays[name][start:stop] for name in schema["events"]}
    for name, c in schema["collections"].items():
        lo, hi = ranges[name]
        if c["kind"] == "list":
            p0, p1 = ranges.get(c.get("parent"), (start, stop)) if c.get("parent") else (start, stop)
            out[f"{name}/n"] = counts[name][p0:p1]
        for f in c["fields"]:
            out[f"{name}/{f}"] = arrays[f"{name}/{f}"][lo:hi]
    return out


def write_parquet_record(cols: RecordColumns, path: str, compression: dict[str, Any], schema: dict[str, Any]) -> None:
    """A record shard as one Parquet file (row per event, collections as ``list<struct>``, page CRC32)."""
    import pyarrow.parquet as pq

    from .layouts import PARQUET_ROW_GROUP

    codec, level = compression.get("codec", "zstd"), compression.get("level", 5)
    pq.write_table(to_arrow(cols, schema), path, row_group_size=PARQUET_ROW_GROUP, compression=codec,
                   compression_level=level if codec in ("zstd", "gzip", "brotli") else None,
                   use_byte_stream_split=bool(compression.get("byte_stream_split", False)), use_dictionary=False,
                   write_page_checksum=True, write_statistics=["event_id"])


def read_parquet_record(fs, path: str, schema: dict[str, Any], n: int, start: int, stop: int) -> RecordColumns:
    """Events ``[start, stop)`` of a Parquet record shard (footer checked: rows, types, row-group limits)."""
    import pyarrow.parquet as pq

    from .layouts import MAX_ROW_GROUP_BYTES, MAX_ROW_GROUP_ROWS

    with fs.open(path, "rb") as fh:
        pf = pq.ParquetFile(fh, page_checksum_verification=True)
        md = pf.metadata
        if md.num_rows != n:
            raise StoreError(f"{md.num_rows} rows, the manifest says {n} events")
        have, want = pf.schema_arrow, arrow_schema(schema)
        missing = [f.name for f in want if f.name not in have.names]
        if missing:  # field types are checked column by column in from_arrow
            raise StoreError(f"record columns {missing} declared by the schema are missing")
        groups, first, row = [], None, 0
        for i in range(md.num_row_groups):
            rg = md.row_group(i)
            if rg.num_rows > MAX_ROW_GROUP_ROWS or rg.total_byte_size > MAX_ROW_GROUP_BYTES:
                raise StoreError(f"row group {i}: {rg.num_rows} rows, {rg.total_byte_size} bytes exceed the limits")
            if row + rg.num_rows > start and row < stop:
                groups.append(i)
                first = row if first is None else first
            row += rg.num_rows
        table = pf.read_row_groups(groups) if groups else pf.schema_arrow.empty_table()
    first = start if first is None else first
    return from_arrow(table.slice(start - first, stop - start), schema)


def write_record(layout: str, cols: RecordColumns, path: str, compression: dict[str, Any],
                 schema: dict[str, Any]) -> None:
    """Write a record shard of ``layout`` ("zarr" | "parquet") at local ``path``."""
    if layout == "zarr":
        write_zarr_record(cols, path, compression)
    else:
        write_parquet_record(cols, path, compression, schema)
