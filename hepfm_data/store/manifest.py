"""The store manifest: one JSON file per store, written last and atomically."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import StoreError

FORMAT = "hepfm-store"
FORMAT_VERSION = 1
SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ShardInfo:
    """One immutable shard: ``path`` is relative to the store directory."""

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
    def from_dict(cls, d: dict[str, Any], where: str = "manifest") -> ShardInfo:
        try:
            return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})
        except TypeError as exc:
            raise StoreError(f"{where}: malformed shard entry {d!r}: {exc}") from None


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
        d["n_events"] = self.n_events
        d["n_nodes"] = self.n_nodes
        d["bytes"] = self.bytes
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, where: str) -> Manifest:
        try:
            d = json.loads(text)
        except ValueError as exc:
            raise StoreError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise StoreError(f"{where}: not a hepfm store manifest (format {d.get('format') if isinstance(d, dict) else d!r})")
        if d.get("format_version") != FORMAT_VERSION:
            raise StoreError(f"{where}: format_version {d.get('format_version')!r}; this hepfm reads {FORMAT_VERSION}")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in kwargs and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise StoreError(f"{where}: manifest lacks field(s) {missing}")
        kwargs["shards"] = [ShardInfo.from_dict(s, where) for s in kwargs["shards"]]
        return cls(**kwargs)
