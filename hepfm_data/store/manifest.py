"""The store manifest: one JSON file per store, written last and atomically.

A manifest is *data from the store*, which may be someone else's server: :meth:`Manifest.from_json`
validates all of it before any shard is read or any file written (issue 17). The rules:

* ``format == "hepfm-store"`` and ``format_version`` 1 or 2 (other versions are refused; 1 = the
  paper graph only, read as before; 2 adds the record and the representations below);
  ``layout`` is a known layout; every field has its type (ints are ints, not bools or floats);
* each shard ``path`` is ``shards/<split>-<5..9 digits>[-<4..9 digits>]<layout suffix>``: relative, normalised,
  inside ``shards/``, ASCII, no ``..``, no absolute path, no URL scheme, no ``::`` chain, no
  backslash, no dotfile; its split matches the entry's ``split``; no two shards share a path or a
  sha256; ``sha256`` is 64 lowercase hex digits;
* counts and sizes are ints in ``[0, limit]`` (:data:`MAX_SHARD_EVENTS`, :data:`MAX_SHARD_NODES`,
  :data:`MAX_SHARD_BYTES`), ``n_nodes >= n_events`` (every event has its MET node),
  ``event_id_min <= event_id_max`` < 2**64, and the totals (``n_events``, ``n_nodes``,
  ``bytes``), when present, equal the sums over shards;
* the process, label names and code version are names of a plain pattern (they reach paths,
  tables and dataset cards).

* format 2 (and 3): ``schema`` (the stored event record: :func:`hepfm_data.store.record.check_schema` —
  dtypes from a fixed numeric set, every ragged collection declares its offsets, nested
  collections name a declared parent); ``record_shards`` pair the ``shards`` one to one (same name
  under ``record/``, same events); ``representations`` maps names to ``{version, fingerprint,
  definition, inputs[, shards]}`` (derived shards under ``representations/<name>/``, one per
  paper shard, same events), and ``default_representation`` names one of them.
* format 3: ``record_codecs`` (:func:`hepfm_data.store.record.check_codecs`): per record column,
  ``stored`` (the default), ``paper`` or ``paper-selected`` (taken from the paired paper shard);
  an unknown codec is refused, naming it. Format-2 stores (every record column stored) open as before.

A refused manifest raises :class:`~hepfm_data.core.errors.ManifestError` naming the manifest URL and
the entry (``shard 3 ('shards/../x.zarr')``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

from hepfm_data.core.errors import ManifestError

FORMAT = "hepfm-store"
FORMAT_VERSION = 3
#: manifest versions this hepfm opens (1: paper graph only, read-only as before; 2: record + representations,
#: every record column stored; 3: as 2, with ``record_codecs``: record columns the paper shard holds are
#: taken from it instead of stored twice)
READ_VERSIONS = (1, 2, 3)
SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.json"
#: folder (relative to the store) that holds every shard
SHARD_DIR = "shards"
#: folders of the record shards and of derived representations' shards (``representations/<name>``)
RECORD_DIR = "record"
REPRESENTATION_DIR = "representations"
MAX_REPRESENTATIONS = 64
#: a shard's file or directory name: ``<split>-<unit>-<j><suffix>`` (what the writer produces:
#: the j-th shard of that split from build unit ``unit``); ``<split>-<index><suffix>`` of older stores
SHARD_NAME = re.compile(r"(?P<split>train|validation|test)-(?P<index>[0-9]{5,9}(?:-[0-9]{4,9})?)(?P<suffix>\.[a-z]{1,16})",
                        re.ASCII)
SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
#: process names, label names, node features, code versions
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}", re.ASCII)
#: limits: a manifest (or a small file it points to) must not make a reader allocate without bound
MAX_MANIFEST_BYTES = 64 << 20
MAX_SHARDS = 1_000_000
MAX_SHARD_EVENTS = 1 << 27
MAX_SHARD_NODES = 1 << 31
MAX_SHARD_BYTES = 1 << 40
MAX_LABELS = 1024
_U64 = (1 << 64) - 1


def shard_path_problem(path: Any, suffix: str | None = None, directory: str = SHARD_DIR) -> str | None:
    """Why ``path`` is not an acceptable shard path (``None`` when it is). ``suffix``: the layout's;
    ``directory``: the folder it must be directly inside (``shards``, ``record``, ``representations/<name>``)."""
    if not isinstance(path, str):
        return f"path must be a string, got {type(path).__name__}"
    if not path or len(path) > 256:
        return "path is empty or longer than 256 characters"
    if not path.isascii() or any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "path has non-ASCII or control characters"
    if "::" in path:
        return "path is an fsspec '::' chain"
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", path):
        return "path has a URL scheme or drive"
    if "\\" in path:
        return "path has a backslash"
    if path.startswith("/") or path.startswith("~"):
        return "path is absolute"
    parts = path.split("/")
    if ".." in parts:
        return "path contains '..'"
    if any(p in ("", ".") for p in parts):
        return "path is not normalised (empty or '.' component)"
    if parts[:-1] != directory.split("/"):
        return f"path is not directly inside {directory}/"
    m = SHARD_NAME.fullmatch(parts[-1])
    if m is None:
        return f"shard name {parts[-1]!r} is not of the form <split>-NNNNN-NNNN<suffix>"
    if suffix is not None and m["suffix"] != suffix:
        return f"shard name {parts[-1]!r} does not end in {suffix!r} (the manifest's layout)"
    return None


def _int(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _bad(where: str, entry: str, problem: str) -> ManifestError:
    return ManifestError(f"{where}: {entry}: {problem}")


@dataclass(frozen=True)
class ShardInfo:
    """One immutable shard: ``path`` is relative to the store directory (``shards/<name>``)."""

    path: str
    split: str
    n_events: int
    n_nodes: int
    bytes: int
    sha256: str
    event_id_min: int = 0
    event_id_max: int = 0

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any, where: str = "manifest", entry: str = "shard entry",
                  suffix: str | None = None, directory: str = SHARD_DIR) -> ShardInfo:
        """A validated ShardInfo from a manifest (or build sidecar) entry; extra keys are ignored."""
        if not isinstance(d, dict):
            raise _bad(where, entry, f"not an object: {d!r:.80}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        missing = [k for k, f in fields.items() if f.default is dataclasses.MISSING and k not in d]
        if missing:
            raise _bad(where, entry, f"lacks {missing}")
        path = d["path"]
        entry = f"{entry} ({path!r:.120})"
        problem = shard_path_problem(path, suffix, directory)
        if problem:
            raise _bad(where, entry, problem)
        if d["split"] not in SPLITS:
            raise _bad(where, entry, f"split {d['split']!r:.40} is not one of {SPLITS}")
        if SHARD_NAME.fullmatch(path.split("/")[-1])["split"] != d["split"]:
            raise _bad(where, entry, f"name does not match its split {d['split']!r}")
        if not isinstance(d["sha256"], str) or not SHA256.fullmatch(d["sha256"]):
            raise _bad(where, entry, f"sha256 {d['sha256']!r:.80} is not 64 lowercase hex digits")
        for key, hi in (("n_events", MAX_SHARD_EVENTS), ("n_nodes", MAX_SHARD_NODES), ("bytes", MAX_SHARD_BYTES),
                        ("event_id_min", _U64), ("event_id_max", _U64)):
            if key in d and not _int(d[key], 0, hi):
                raise _bad(where, entry, f"{key} {d[key]!r:.40} is not an integer in [0, {hi}]")
        info = cls(**{k: d[k] for k in fields if k in d})
        if info.n_nodes < info.n_events:
            raise _bad(where, entry, f"n_nodes {info.n_nodes} < n_events {info.n_events} (each event has a MET node)")
        if info.n_events and info.event_id_min > info.event_id_max:
            raise _bad(where, entry, f"event_id_min {info.event_id_min} > event_id_max {info.event_id_max}")
        return info


@dataclass
class Manifest:
    """Everything needed to read and trust a store (see ARCHITECTURE.md "Store")."""

    layout: str
    process: str
    label: int
    label_names: list[str]
    shards: list[ShardInfo]
    split: dict[str, Any]
    btag_seed: int
    compression: dict[str, Any]
    catalog_entry: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)
    object_types: dict[str, int] = field(default_factory=dict)
    node_features: list[str] = field(default_factory=list)
    node_order: str = "jets, electrons, muons, photons (selected, input order), then one MET node last"
    event_id_rule: str = ""
    code_version: str = ""
    provenance: list[dict[str, Any]] = field(default_factory=list)
    #: format 2: the declared event-record schema (``store.record``), its shards (paired with
    #: ``shards``; ``n_nodes`` = events + objects of the ragged collections) and the representations
    schema: dict[str, Any] = field(default_factory=dict)
    record_shards: list[ShardInfo] = field(default_factory=list)
    representations: dict[str, Any] = field(default_factory=dict)
    default_representation: str = "paper"
    record_compression: dict[str, Any] = field(default_factory=dict)
    #: format 3: how each record column is stored (``store.record.RECORD_CODECS``; unlisted: stored)
    record_codecs: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def n_events(self) -> int:
        return sum(s.n_events for s in self.shards)

    @property
    def n_nodes(self) -> int:
        return sum(s.n_nodes for s in self.shards)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.shards)

    def split_sizes(self) -> dict[str, int]:
        return {name: sum(s.n_events for s in self.shards if s.split == name) for name in SPLITS}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["shards"] = [s.to_dict() for s in self.shards]
        d["record_shards"] = [s.to_dict() for s in self.record_shards]
        d["n_events"] = self.n_events
        d["n_nodes"] = self.n_nodes
        d["bytes"] = self.bytes
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, where: str) -> Manifest:
        """Parse and validate (module docstring); ``where`` (the manifest's URL) prefixes every error."""
        if len(text) > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{where}: manifest is larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            d = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ManifestError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise ManifestError(f"{where}: not a hepfm store manifest (format {found!r:.80})")
        if not _int(d.get("format_version"), READ_VERSIONS[0], READ_VERSIONS[-1]):
            raise ManifestError(f"{where}: format_version {d.get('format_version')!r:.40}; "
                                f"this hepfm reads {', '.join(map(str, READ_VERSIONS))}")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in kwargs and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ManifestError(f"{where}: manifest lacks field(s) {missing}")
        _check_fields(kwargs, where)
        suffix = _suffix(kwargs["layout"], where)
        shards = kwargs["shards"]
        if not isinstance(shards, list) or len(shards) > MAX_SHARDS:
            raise _bad(where, "shards", f"must be a list of at most {MAX_SHARDS} entries")
        kwargs["shards"] = [ShardInfo.from_dict(s, where, f"shard {i}", suffix) for i, s in enumerate(shards)]
        seen: dict[str, int] = {}
        for i, s in enumerate(kwargs["shards"]):
            for key in (s.path, s.sha256):
                if key in seen:
                    raise _bad(where, f"shard {i} ({s.path!r})", f"duplicates shard {seen[key]} ({key})")
                seen[key] = i
        _check_v2(kwargs, where, suffix)
        manifest = cls(**kwargs)
        for key in ("n_events", "n_nodes", "bytes"):
            if key in d and d[key] != getattr(manifest, key):
                raise _bad(where, key, f"total {d[key]!r:.40} != the sum over shards {getattr(manifest, key)}")
        return manifest


def _suffix(layout: str, where: str) -> str:
    from hepfm_data.store.layouts import LAYOUTS

    if layout not in LAYOUTS:
        raise _bad(where, "layout", f"unknown layout {layout!r:.40}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[layout].suffix


#: field -> (accepted Python type, extra check or None)
_FIELD_TYPES: dict[str, tuple[type, Any]] = {
    "layout": (str, None),
    "process": (str, lambda v: NAME.fullmatch(v)),
    "label": (int, lambda v: _int(v, 0, 32767)),
    "label_names": (list, lambda v: len(v) <= MAX_LABELS and all(isinstance(x, str) and NAME.fullmatch(x) for x in v)),
    "split": (dict, None),
    "btag_seed": (int, lambda v: _int(v, 0, _U64)),
    "compression": (dict, None),
    "catalog_entry": (dict, None),
    "selection": (dict, None),
    "object_types": (dict, lambda v: all(isinstance(k, str) and _int(x, 0, 127) for k, x in v.items())),
    "node_features": (list, lambda v: all(isinstance(x, str) and NAME.fullmatch(x) for x in v)),
    "node_order": (str, None),
    "event_id_rule": (str, None),
    "code_version": (str, lambda v: v == "" or NAME.fullmatch(v)),
    "provenance": (list, lambda v: all(isinstance(x, dict) for x in v)),
    "schema": (dict, None),
    "record_shards": (list, lambda v: len(v) <= MAX_SHARDS),
    "representations": (dict, lambda v: len(v) <= MAX_REPRESENTATIONS),
    "default_representation": (str, lambda v: NAME.fullmatch(v)),
    "record_compression": (dict, None),
    "record_codecs": (dict, None),
}


def _paired(where: str, entry: str, raw: list, shards: list[ShardInfo], suffix: str, directory: str
            ) -> list[ShardInfo]:
    """Shard entries of ``directory`` that pair ``shards`` one to one (same names, same events)."""
    if len(raw) != len(shards):
        raise _bad(where, entry, f"{len(raw)} shards, the store has {len(shards)}: one per paper shard")
    out = [ShardInfo.from_dict(s, where, f"{entry} shard {i}", suffix, directory) for i, s in enumerate(raw)]
    for i, (a, b) in enumerate(zip(out, shards)):
        if a.name != b.name or a.n_events != b.n_events or a.split != b.split:
            raise _bad(where, f"{entry} shard {i} ({a.path!r})", f"does not pair shard {i} ({b.path!r}, "
                                                                    f"{b.n_events} events)")
    seen = set()
    for i, s in enumerate(out):
        if s.sha256 in seen:
            raise _bad(where, f"{entry} shard {i} ({s.path!r})", "duplicates another shard's sha256")
        seen.add(s.sha256)
    return out


def _check_v2(kwargs: dict[str, Any], where: str, suffix: str) -> None:
    """Format-2 sections (module docstring); replaces raw shard lists by ShardInfo lists in ``kwargs``."""
    from hepfm_data.store.record import check_codecs, check_schema

    v2 = kwargs.get("format_version", 0) >= 2
    for key in ("schema", "record_shards", "representations"):
        if kwargs.get(key) and not v2:
            raise _bad(where, key, "only format 2 and 3 manifests may declare it")
    if kwargs.get("record_codecs") and kwargs.get("format_version") != 3:
        raise _bad(where, "record_codecs", f"only format 3 manifests may declare it (this one says format "
                                           f"{kwargs.get('format_version')})")
    schema = kwargs.get("schema") or {}
    if schema:
        kwargs["schema"] = schema = check_schema(schema, where)
    if kwargs.get("record_codecs"):
        if not schema:
            raise _bad(where, "record_codecs", "declared without a schema")
        kwargs["record_codecs"] = check_codecs(kwargs["record_codecs"], schema, where)
    raw = kwargs.get("record_shards") or []
    if raw and not schema:
        raise _bad(where, "record_shards", "listed without a schema")
    if raw:
        kwargs["record_shards"] = _paired(where, "record", raw, kwargs["shards"], suffix, RECORD_DIR)
    reps = kwargs.get("representations") or {}
    for name, r in reps.items():
        entry = f"representation {name!r:.60}"
        if not isinstance(name, str) or not NAME.fullmatch(name) or name == "record":
            raise _bad(where, entry, "name is not a plain name (and 'record' is reserved)")
        if not isinstance(r, dict) or set(r) - {"version", "fingerprint", "definition", "inputs", "shards", "doc"}:
            raise _bad(where, entry, "must be an object with version, fingerprint, definition, inputs[, shards]")
        if not _int(r.get("version"), 0, 1 << 31) or not isinstance(r.get("fingerprint"), str) \
                or not SHA256.fullmatch(r["fingerprint"]) or not isinstance(r.get("definition"), dict):
            raise _bad(where, entry, "needs an integer version, a sha256 fingerprint and a definition object")
        if not isinstance(r.get("inputs"), list) or not all(isinstance(x, str) and len(x) < 200 for x in r["inputs"]):
            raise _bad(where, entry, "inputs must be a list of field names")
        if r.get("shards") is not None:
            if not isinstance(r["shards"], list):
                raise _bad(where, entry, "shards must be a list")
            r["shards"] = _paired(where, entry, r["shards"], kwargs["shards"], suffix,
                                  f"{REPRESENTATION_DIR}/{name}")
    if v2 and reps and kwargs.get("default_representation", "paper") not in reps:
        raise _bad(where, "default_representation", f"{kwargs.get('default_representation')!r:.40} is not one of "
                                                    f"the representations {sorted(reps)}")


def _check_fields(kwargs: dict[str, Any], where: str) -> None:
    for key, (kind, check) in _FIELD_TYPES.items():
        if key not in kwargs:
            continue
        value = kwargs[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)) or (check and not check(value)):
            raise _bad(where, key, f"invalid value {value!r:.80} (expected {kind.__name__} of the documented form)")
