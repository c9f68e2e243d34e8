"""The stored event record (store format 2): a declared schema and its Zarr / Parquet record shards.

A store keeps, beside each paper-graph shard ``shards/<name>``, a *record shard*
``record/<name>`` holding the same events' reconstructed record before any selection
(``hepfm_data.core.events``: every collection and field the input provides). The manifest's
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
sharded array per column (blosc + crc32c per chunk like the paper columns; shuffle chosen per
column). Parquet: one file, one row per event, collections as ``list<struct>`` columns.

Format 3 (manifest ``record_codecs``, :func:`plan_codecs`): a column the paired paper shard holds
bit for bit is not stored twice — event_id, weight and MET come from the paper columns, the
selected jets', leptons' and photons' pt, η, φ from the paper nodes (a uint8 mask ``<coll>/_paper``
flags them; the stored column keeps the other objects; Parquet: those fields are nullable, null =
from the paper shard). :func:`encode_record` / :func:`decode_record` convert, bit-exact; readers
dispatch on the declared codec and refuse an unknown one (:func:`check_codecs`).
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import ManifestError, StoreError

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
    from hepfm_data.core.events import RECORD

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


# ----------------------------------------------------------------------------- record codecs (format 3)
# A record column the paper shard already holds is stored once. The manifest's ``record_codecs``
# declares, per column key, how it is stored (a key it does not list is ``stored``):
#   {"codec": "paper", "column": "event_id"}                     an event field = the paper event column
#   {"codec": "paper", "column": "pt", "node_type": 4}            a record collection's field (MET) = the
#                                                                 paper nodes of that type (one per event)
#   {"codec": "paper-selected", "column": "pt", "node_type": 0,   a list collection's field: the objects
#    "mask": "jets/_paper"}                                       flagged in the stored uint8 mask column
#                                                                 take the paper nodes of that type (in
#                                                                 order); the stored column holds the others
# Readers dispatch on the codec name (:data:`RECORD_CODECS`); an unknown one is refused at open.

STORED, PAPER, PAPER_SELECTED = "stored", "paper", "paper-selected"
RECORD_CODECS = (STORED, PAPER, PAPER_SELECTED)
MASK = "_paper"
#: (record collection, object-type name of its paper nodes) whose kinematics the paper graph copies
_SELECTED = (("jets", "jet"), ("electrons", "electron"), ("muons", "muon"), ("photons", "photon"))
_KIN = ("pt", "eta", "phi")
_PAPER_EVENT = {"event_id": "uint64", "weight": "float32"}


def plan_codecs(schema: dict[str, Any], object_types: dict[str, int]) -> dict[str, dict[str, Any]]:
    """The ``record_codecs`` of a record with ``schema`` beside the paper graph of ``object_types``.

    Only what the paper columns hold bit for bit: event_id, weight; MET pt, φ (float32); the
    pt, η, φ of jets, electrons, muons, photons when all three are float32 (the paper copies
    float32 values; another dtype would be rounded, so it stays stored)."""
    out: dict[str, dict[str, Any]] = {}
    for name, dt in _PAPER_EVENT.items():
        if schema["events"].get(name, {}).get("dtype") == dt:
            out[name] = {"codec": PAPER, "column": name}
    met = schema["collections"].get("met")
    if met and met["kind"] == "record" and "met" in object_types:
        for f in ("pt", "phi"):
            if met["fields"].get(f, {}).get("dtype") == "float32":
                out[f"met/{f}"] = {"codec": PAPER, "column": f, "node_type": int(object_types["met"])}
    for coll, typ in _SELECTED:
        c = schema["collections"].get(coll)
        if not c or c["kind"] != "list" or c.get("parent") or typ not in object_types:
            continue
        if all(c["fields"].get(f, {}).get("dtype") == "float32" for f in _KIN):
            for f in _KIN:
                out[f"{coll}/{f}"] = {"codec": PAPER_SELECTED, "column": f, "node_type": int(object_types[typ]),
                                      "mask": f"{coll}/{MASK}"}
    return {k: out[k] for k in sorted(out)}


def check_codecs(codecs: Any, schema: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """Validate a manifest's ``record_codecs`` against its schema; :class:`ManifestError` names the column."""
    from hepfm_data.store.layouts import EVENT_COLUMNS, NODE_COLUMNS

    def bad(key: str, problem: str) -> ManifestError:
        return ManifestError(f"{where}: record_codecs {key!r:.80}: {problem}")

    if not isinstance(codecs, dict) or len(codecs) > MAX_FIELDS * MAX_COLLECTIONS:
        raise ManifestError(f"{where}: record_codecs must be an object of column keys")
    declared = dict(column_names(schema))
    for key, spec in codecs.items():
        if key not in declared:
            raise bad(key, "is not a column the schema declares")
        if not isinstance(spec, dict) or set(spec) - {"codec", "column", "node_type", "mask"}:
            raise bad(key, "must be an object with codec, column[, node_type, mask]")
        codec = spec.get("codec")
        if codec not in RECORD_CODECS:
            raise bad(key, f"unknown record codec {codec!r:.40}; this hepfm reads {', '.join(RECORD_CODECS)} "
                           f"(a store written by a newer hepfm: upgrade)")
        if codec == STORED:
            continue
        coll, _, field = key.rpartition("/")
        col, typ = spec.get("column"), spec.get("node_type")
        if not coll:  # an event field: a paper event column of the same dtype
            if codec != PAPER or typ is not None or col not in EVENT_COLUMNS \
                    or np.dtype(EVENT_COLUMNS[col]) != np.dtype(declared[key]):
                raise bad(key, "an event field may only be a paper event column of its dtype")
            continue
        kind = schema["collections"][coll]["kind"]
        if col not in ("pt", "eta", "phi") or np.dtype(NODE_COLUMNS[col]) != np.dtype(declared[key]) \
                or not isinstance(typ, int) or isinstance(typ, bool) or not 0 <= typ <= 127:
            raise bad(key, "needs a float32 paper node column (pt, eta, phi) and an integer node_type")
        if codec == PAPER and (kind != "record" or "mask" in spec):
            raise bad(key, "codec 'paper' on a collection needs a record collection (one object per event)")
        if codec == PAPER_SELECTED and (kind != "list" or schema["collections"][coll].get("parent")
                                        or spec.get("mask") != f"{coll}/{MASK}"):
            raise bad(key, f"codec 'paper-selected' needs a top-level list collection and mask '{coll}/{MASK}'")
    return {k: dict(codecs[k]) for k in sorted(codecs)}


def stored_columns(schema: dict[str, Any], codecs: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(key, dtype)`` of the columns a record shard holds: the schema's less the ``paper`` ones,
    plus one uint8 mask per collection with ``paper-selected`` fields."""
    masks = sorted({s["mask"] for s in codecs.values() if s["codec"] == PAPER_SELECTED})
    for key, dtype in column_names(schema):
        if codecs.get(key, {}).get("codec", STORED) != PAPER:
            yield key, dtype
    for m in masks:
        yield m, "uint8"


def _bits(*arrays: np.ndarray) -> np.ndarray:
    return np.stack([np.ascontiguousarray(a, np.float32).view(np.uint32) for a in arrays], axis=1)


class _PaperNodes:
    """Per object type, (node rows [m], per-event offsets [B+1]) of paper ``Columns``: the node-to-event
    index is built once and each type's rows once, however many record columns come from them."""

    def __init__(self, paper):
        self.paper = paper
        self._event: np.ndarray | None = None
        self._types: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def of_type(self, node_type: int) -> tuple[np.ndarray, np.ndarray]:
        if node_type not in self._types:
            p = self.paper
            if self._event is None:
                self._event = np.repeat(np.arange(p.n_events), p.events["n_node"].astype(np.int64))
            rows = np.flatnonzero(p.nodes["type"] == node_type)
            self._types[node_type] = rows, counts_to_offsets(np.bincount(self._event[rows], minlength=p.n_events))
        return self._types[node_type]


def encode_record(cols: RecordColumns, paper, schema: dict[str, Any], codecs: dict[str, Any],
                  where: str) -> RecordColumns:
    """The stored form of record columns (:func:`stored_columns`) beside their paper ``Columns``
    (same events, same order). Raises :class:`StoreError` if a ``paper`` value differs bit for bit
    or an event's paper nodes are not among its record objects (the paper must come from this record)."""
    from hepfm_data.kernels.record_match import match_selected

    out = dict(cols)
    nodes = _PaperNodes(paper)
    groups: dict[str, list[str]] = {}
    for key, spec in codecs.items():
        if spec["codec"] == PAPER:
            want = decode_paper(spec, paper, nodes)
            if want.shape != cols[key].shape or want.tobytes() != np.ascontiguousarray(cols[key]).tobytes():
                raise StoreError(f"{where}: record column {key} differs from the paper column it would be "
                                 f"taken from ({spec['column']})")
            del out[key]
        elif spec["codec"] == PAPER_SELECTED:
            groups.setdefault(spec["mask"], []).append(key)
    for mask_key, keys in groups.items():
        coll = mask_key.split("/")[0]
        typ = codecs[keys[0]]["node_type"]
        rows, node_off = nodes.of_type(typ)
        rec_off = counts_to_offsets(cols[f"{coll}/n"])
        mask, bad = match_selected(_bits(*(cols[f"{coll}/{f}"] for f in _KIN)), rec_off,
                                   _bits(*(paper.nodes[f][rows] for f in _KIN)), node_off)
        if bad >= 0:
            raise StoreError(f"{where}: event {bad}: paper nodes of type {typ} are not among its record {coll}")
        out[mask_key] = mask
        keep = mask == 0
        for key in keys:
            out[key] = np.ascontiguousarray(cols[key][keep])
    return out


def decode_paper(spec: dict[str, Any], paper, nodes: _PaperNodes | None = None) -> np.ndarray:
    """A ``paper`` column's values from paper ``Columns`` (an event column, or one node per event;
    ``nodes``: the shared per-type index of ``paper``)."""
    if "node_type" not in spec:
        return np.ascontiguousarray(paper.events[spec["column"]])
    rows, off = (nodes or _PaperNodes(paper)).of_type(spec["node_type"])
    if rows.shape[0] != paper.n_events or (paper.n_events and not np.all(np.diff(off) == 1)):
        raise StoreError(f"paper shard has {rows.shape[0]} nodes of type {spec['node_type']} for "
                         f"{paper.n_events} events (one each expected)")
    return np.ascontiguousarray(paper.nodes[spec["column"]][rows])


def decode_record(stored: RecordColumns, paper, schema: dict[str, Any], codecs: dict[str, Any]) -> RecordColumns:
    """Record columns (every schema column, schema order) of their stored form and paper ``Columns``."""
    out: RecordColumns = {}
    nodes = _PaperNodes(paper)
    for key, _ in column_names(schema):
        spec = codecs.get(key)
        if spec is None or spec["codec"] == STORED:
            out[key] = stored[key]
        elif spec["codec"] == PAPER:
            out[key] = decode_paper(spec, paper, nodes)
        else:
            mask = stored[spec["mask"]].astype(bool)
            typ = spec["node_type"]
            rows = nodes.of_type(typ)[0]
            rest = stored[key]
            if rows.shape[0] != int(mask.sum()) or rest.shape[0] != mask.shape[0] - rows.shape[0]:
                raise StoreError(f"record column {key}: {int(mask.sum())} objects flagged in {spec['mask']}, the "
                                 f"paper shard has {rows.shape[0]} nodes of type {typ}, {rest.shape[0]} stored")
            full = np.empty(mask.shape[0], rest.dtype)
            full[mask] = paper.nodes[spec["column"]][rows]
            full[~mask] = rest
            out[key] = full
    return out


# ----------------------------------------------------------------------------- Arrow


def _kind(codecs: dict[str, Any] | None, key: str) -> str:
    return (codecs or {}).get(key, {}).get("codec", STORED)


def arrow_schema(schema: dict[str, Any], codecs: dict[str, Any] | None = None):
    """The ``pyarrow.Schema`` of :func:`to_arrow` (non-nullable lists of structs). With ``codecs`` (a
    Parquet record shard's stored form): ``paper`` columns left out (a record collection left with no
    field too), ``paper-selected`` fields nullable (null = the object is taken from the paper shard)."""
    import pyarrow as pa

    def struct(name: str):
        c = schema["collections"][name]
        fs = [pa.field(f, pa.from_numpy_dtype(np.dtype(s["dtype"])),
                       nullable=_kind(codecs, f"{name}/{f}") == PAPER_SELECTED)
              for f, s in c["fields"].items() if _kind(codecs, f"{name}/{f}") != PAPER]
        fs += [pa.field(ch.rsplit(".", 1)[1], pa.list_(pa.field("element", struct(ch), nullable=False)), nullable=False)
               for ch in _children(schema, name)]
        return pa.struct(fs)

    fields = [pa.field(n, pa.from_numpy_dtype(np.dtype(f["dtype"])), nullable=False)
              for n, f in schema["events"].items() if _kind(codecs, n) != PAPER]
    for name, c in schema["collections"].items():
        if c["kind"] == "record":
            typ = struct(name)
            if typ.num_fields:
                fields.append(pa.field(name, typ, nullable=False))
        elif c.get("parent") is None:
            fields.append(pa.field(name, pa.list_(pa.field("element", struct(name), nullable=False)), nullable=False))
    return pa.schema(fields)


def to_arrow(cols: RecordColumns, schema: dict[str, Any], codecs: dict[str, Any] | None = None):
    """A ``pyarrow.Table`` (rows = events; ``list`` collections as lists of structs) of record columns
    (with ``codecs``: of their stored form, :func:`arrow_schema`)."""
    import pyarrow as pa

    target = arrow_schema(schema, codecs)

    def offsets(n: np.ndarray):
        off = counts_to_offsets(n)
        return pa.array(off.astype(np.int32) if off[-1] < 2**31 else off)

    def column(name: str, f: str):
        key = f"{name}/{f}"
        if _kind(codecs, key) != PAPER_SELECTED:
            return pa.array(cols[key])
        mask = cols[codecs[key]["mask"]].astype(bool)
        full = np.zeros(mask.shape[0], cols[key].dtype)
        full[~mask] = cols[key]
        return pa.array(full, mask=mask)

    def struct(name: str, typ):
        c = schema["collections"][name]
        arrays = [column(name, f) for f in c["fields"] if _kind(codecs, f"{name}/{f}") != PAPER]
        for ch in _children(schema, name):
            sub = typ.field(ch.rsplit(".", 1)[1]).type
            arrays.append(pa.ListArray.from_arrays(offsets(cols[f"{ch}/n"]), struct(ch, sub.value_type), type=sub))
        return pa.StructArray.from_arrays(arrays, fields=list(typ))

    arrays = []
    for field in target:
        name = field.name
        if name in schema["events"]:
            arrays.append(pa.array(cols[name]))
        elif schema["collections"][name]["kind"] == "record":
            arrays.append(struct(name, field.type))
        else:
            arrays.append(pa.ListArray.from_arrays(offsets(cols[f"{name}/n"]), struct(name, field.type.value_type),
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


def from_arrow(table, schema: dict[str, Any], codecs: dict[str, Any] | None = None) -> RecordColumns:
    """Record columns of an Arrow table written by :func:`to_arrow` (types checked against the schema;
    with ``codecs``: the stored form, ``paper-selected`` nulls giving the masks)."""
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
            key = f"{name}/{f}"
            if _kind(codecs, key) == PAPER:
                continue
            col = arr.field(f)
            if _kind(codecs, key) == PAPER_SELECTED:
                out[codecs[key]["mask"]] = np.asarray(col.is_null().to_numpy(zero_copy_only=False), np.uint8)
                col = col.drop_null()
            out[key] = np_of(col, spec["dtype"], f"{name}.{f}")
        for ch in _children(schema, name):
            lst(ch, arr.field(ch.rsplit(".", 1)[1]))

    for name, f in schema["events"].items():
        if _kind(codecs, name) != PAPER:
            out[name] = np_of(table.column(name).combine_chunks(), f["dtype"], name)
    for name, c in schema["collections"].items():
        if c.get("parent") is not None or name not in table.column_names:
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


#: dtypes pcodec compresses (:func:`_column_codecs` tries it on these)
PCODEC_DTYPES = frozenset(np.dtype(t) for t in ("float32", "float64", "int16", "int32", "int64", "uint16",
                                                 "uint32", "uint64"))


def _pcodec():
    """numcodecs' PCodec (pcodec: lossless numerical compression), or a StoreError with the install hint."""
    try:
        from numcodecs.pcodec import PCodec
    except ImportError as e:  # pcodec is a core dependency; a trimmed environment may lack it
        raise StoreError(f"record columns compressed with pcodec need the pcodec package ({e}); "
                         "pip install 'pcodec>=1.0'") from None
    return PCodec


@contextlib.contextmanager
def _numcodecs_quiet():
    """zarr warns on every numcodecs codec it parses that the codec is not in the Zarr v3 specification;
    PCodec is a declared choice of this store (ARCHITECTURE.md), so that warning is silenced here only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3 specification")
        yield


def _column_codecs(arr: np.ndarray, compression: dict[str, Any]) -> dict[str, Any]:
    """``serializer`` / ``compressors`` of one record column, chosen on a sample of it (its first 4096
    values): blosc with byte shuffle unless no shuffle compresses the sample smaller at level <= 3 (the
    same choices as at the store's level, 40x faster; bit shuffle for 1-byte types), or, with
    ``compression["pcodec"]``, pcodec when it encodes the sample smaller than that blosc at the store's
    level (it models the distribution of the numbers: truth masses 22 -> 17 B/event, kinematics 2-5 %
    smaller; a whole-chunk trial chose the same codecs on the benchmark's generated record and 0.2 B/event
    less on the Delphes one, writing 1.1-1.45x slower: benchmarks/ingest.py). Every chunk ends in a
    crc32c. The choice is recorded per array in its zarr.json."""
    from numcodecs import Blosc
    from zarr.codecs import BloscCodec, BloscShuffle, BytesCodec, Crc32cCodec

    cname, level = compression["codec"].split("-", 1)[1], int(compression.get("level", 5))
    blosc = dict(cname=cname, clevel=level, typesize=arr.dtype.itemsize)
    if arr.dtype.itemsize == 1:
        return {"serializer": BytesCodec(), "compressors": [BloscCodec(**blosc, shuffle=BloscShuffle.bitshuffle),
                                                            Crc32cCodec()]}
    sample, trial = np.ascontiguousarray(arr[:4096]), min(level, 3)
    shuffle, code = BloscShuffle.shuffle, Blosc.SHUFFLE
    if sample.size and len(Blosc(cname, trial, Blosc.NOSHUFFLE).encode(sample)) < \
            len(Blosc(cname, trial, Blosc.SHUFFLE).encode(sample)):
        shuffle, code = BloscShuffle.noshuffle, Blosc.NOSHUFFLE
    if compression.get("pcodec") and arr.dtype in PCODEC_DTYPES and sample.size and \
            len(_pcodec()(level=level).encode(sample)) < len(Blosc(cname, level, code).encode(sample)):
        from zarr.codecs.numcodecs import PCodec

        with _numcodecs_quiet():
            return {"serializer": PCodec(level=level), "compressors": [Crc32cCodec()]}
    return {"serializer": BytesCodec(), "compressors": [BloscCodec(**blosc, shuffle=shuffle), Crc32cCodec()]}


def write_zarr_record(cols: RecordColumns, path: str, compression: dict[str, Any],
                      attributes: dict[str, str] | None = None) -> None:
    """A record shard as a Zarr v3 group at local ``path`` (one sharded array per stored column, crc32c
    per chunk; blosc codecs: shuffle or pcodec chosen per column, :func:`_column_codecs`; compact
    metadata; ``attributes`` on the root group)."""
    import zarr

    from hepfm_data.store.layouts import (
        ZARR_EVENT_CHUNK,
        ZARR_NODE_CHUNK,
        _compact_metadata,
        _zarr_compressors,
        _zarr_local_store,
    )

    codec = compression.get("codec", "zstd")
    comp = _zarr_compressors(compression)
    group = zarr.open_group(_zarr_local_store(path, False), mode="w", zarr_format=3, attributes=attributes or {})
    for key, arr in cols.items():
        n = arr.shape[0]
        c = min(ZARR_EVENT_CHUNK if "/" not in key else ZARR_NODE_CHUNK, max(n, 1))
        sub, _, name = key.rpartition("/")
        g = group.require_group(sub) if sub else group
        codecs = _column_codecs(arr, compression) if codec.startswith("blosc-") else {"compressors": comp(arr.dtype)}
        a = g.create_array(name, shape=arr.shape, dtype=arr.dtype, chunks=(c,), shards=(-(-max(n, 1) // c) * c,),
                           fill_value=0, **codecs)
        a[...] = arr
    _compact_metadata(path)


def open_zarr_record(fs, path: str, schema: dict[str, Any], codecs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The opened arrays of a Zarr record shard (its :func:`stored_columns`), checked against the schema
    (dtypes, codecs, chunk limits)."""
    from hepfm_data.store.layouts import MAX_CHUNK_BYTES, MAX_CHUNKS_PER_SHARD, ZARR_CODECS, _codec_names, _zarr_group

    g = _zarr_group(fs, path)
    out = {}
    for key, dtype in stored_columns(schema, codecs or {}):
        try:
            with _numcodecs_quiet():
                arr = g[key]
        except KeyError:
            raise StoreError(f"record column {key!r} declared by the schema is missing") from None
        if np.dtype(arr.dtype) != np.dtype(dtype) or len(arr.shape) != 1:
            raise StoreError(f"record column {key!r}: {arr.dtype} {tuple(arr.shape)}, the schema declares {dtype} [n]")
        chunks, outer = tuple(arr.chunks), tuple(arr.shards or arr.chunks)
        if chunks[0] < 1 or chunks[0] * np.dtype(dtype).itemsize > MAX_CHUNK_BYTES or \
                -(-outer[0] // chunks[0]) > MAX_CHUNKS_PER_SHARD:
            raise StoreError(f"record column {key!r}: chunks {chunks} / shards {outer} exceed the limits")
        names = set(_codec_names(arr.metadata.codecs))
        if names - ZARR_CODECS:
            raise StoreError(f"record column {key!r}: codecs {sorted(names - ZARR_CODECS)} are not accepted")
        if "PCodec" in names:
            _pcodec()  # its decoder is imported when the first chunk is read: fail here, with the hint
        out[key] = arr
    return out


def check_lengths(arrays: dict[str, Any], schema: dict[str, Any], n: int,
                  codecs: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """The count columns of a record shard, checked: event columns have ``n`` rows, each collection's
    count column has its parent's rows and its field columns the sum of its counts (``paper-selected``
    ones: less the objects their mask flags). Returns the counts (and the masks, by mask key)."""
    codecs = codecs or {}
    counts: dict[str, np.ndarray] = {}
    rows: dict[str | None, int] = {None: n}
    for key in schema["events"]:
        if key in arrays and arrays[key].shape[0] != n:
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
            key, spec = f"{name}/{f}", codecs.get(f"{name}/{f}", {})
            want = rows[name]
            if spec.get("codec") == PAPER:
                continue
            if spec.get("codec") == PAPER_SELECTED:
                if spec["mask"] not in counts:
                    mask = np.asarray(arrays[spec["mask"]][...])
                    if mask.shape[0] != rows[name] or (mask.size and int(mask.max()) > 1):
                        raise StoreError(f"record mask {spec['mask']!r}: {mask.shape[0]} rows (max "
                                         f"{int(mask.max()) if mask.size else 0}), its collection {rows[name]} objects")
                    counts[spec["mask"]] = mask
                    counts[f"{spec['mask']}#cum"] = counts_to_offsets(mask)
                want -= int(counts[f"{spec['mask']}#cum"][-1])
            if arrays[key].shape[0] != want:
                raise StoreError(f"record column {name}.{f} has {arrays[key].shape[0]} rows, "
                                 f"its offsets say {want}")
    return counts


def read_zarr_record(arrays: dict[str, Any], counts: dict[str, np.ndarray], schema: dict[str, Any],
                     start: int, stop: int, codecs: dict[str, Any] | None = None) -> RecordColumns:
    """Stored columns of events ``[start, stop)`` of an opened Zarr record shard (``counts`` from
    :func:`check_lengths`); :func:`decode_record` completes them from the paper shard."""
    codecs = codecs or {}
    ranges = _ranges(counts, schema, start, stop)
    out = {name: arrays[name][start:stop] for name in schema["events"] if name in arrays}
    for name, c in schema["collections"].items():
        lo, hi = ranges[name]
        if c["kind"] == "list":
            p0, p1 = ranges.get(c.get("parent"), (start, stop)) if c.get("parent") else (start, stop)
            out[f"{name}/n"] = counts[name][p0:p1]
        for f in c["fields"]:
            key, spec = f"{name}/{f}", codecs.get(f"{name}/{f}", {})
            if spec.get("codec") == PAPER:
                continue
            if spec.get("codec") == PAPER_SELECTED:
                cum = counts[f"{spec['mask']}#cum"]
                out[spec["mask"]] = counts[spec["mask"]][lo:hi]
                out[key] = arrays[key][lo - int(cum[lo]):hi - int(cum[hi])]
            else:
                out[key] = arrays[key][lo:hi]
    return out


def write_parquet_record(cols: RecordColumns, path: str, compression: dict[str, Any], schema: dict[str, Any],
                         codecs: dict[str, Any] | None = None, attributes: dict[str, str] | None = None) -> None:
    """A record shard as one Parquet file (row per event, collections as ``list<struct>``, page CRC32)."""
    import pyarrow.parquet as pq

    from hepfm_data.store.layouts import PARQUET_ROW_GROUP

    codec, level = compression.get("codec", "zstd"), compression.get("level", 5)
    table = to_arrow(cols, schema, codecs)
    if attributes:
        table = table.replace_schema_metadata({f"hepfm.{k}": v for k, v in attributes.items()})
    pq.write_table(table, path, row_group_size=PARQUET_ROW_GROUP, compression=codec,
                   compression_level=level if codec in ("zstd", "gzip", "brotli") else None,
                   use_byte_stream_split=bool(compression.get("byte_stream_split", False)), use_dictionary=False,
                   write_page_checksum=True, write_statistics=["event_id"])


def read_parquet_record(fs, path: str, schema: dict[str, Any], n: int, start: int, stop: int,
                        codecs: dict[str, Any] | None = None) -> RecordColumns:
    """Events ``[start, stop)`` of a Parquet record shard (footer checked: rows, types, row-group limits)."""
    import pyarrow.parquet as pq

    from hepfm_data.store.layouts import MAX_ROW_GROUP_BYTES, MAX_ROW_GROUP_ROWS

    with fs.open(path, "rb") as fh:
        pf = pq.ParquetFile(fh, page_checksum_verification=True)
        md = pf.metadata
        if md.num_rows != n:
            raise StoreError(f"{md.num_rows} rows, the manifest says {n} events")
        have, want = pf.schema_arrow, arrow_schema(schema, codecs)
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
    return from_arrow(table.slice(start - first, stop - start), schema, codecs)


def write_record(layout: str, cols: RecordColumns, path: str, compression: dict[str, Any],
                 schema: dict[str, Any], codecs: dict[str, Any] | None = None,
                 attributes: dict[str, str] | None = None) -> None:
    """Write a record shard of ``layout`` ("zarr" | "parquet") at local ``path`` (``cols``: the stored
    form of ``codecs``, :func:`encode_record`). ``attributes`` (Zarr group attributes / Parquet schema
    metadata): the writer puts the sha256 of the paired paper shard's event ids there, so that two record
    shards never have the same bytes even when format 3 keeps their event ids in the paper shards only."""
    if layout == "zarr":
        write_zarr_record(cols, path, compression, attributes)
    else:
        write_parquet_record(cols, path, compression, schema, codecs, attributes)
