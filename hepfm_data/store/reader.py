"""``open_store`` / :class:`Store`: read a store on any fsspec URL (no torch needed)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import ChecksumError, StoreError
from hepfm_data.store.layouts import ShardData, ZarrShard, check_shard, get_layout, remote_sha256
from hepfm_data.store.manifest import MANIFEST, MAX_MANIFEST_BYTES, REPRESENTATION_DIR, SPLITS, Manifest, ShardInfo

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.sources.retry import RetryPolicy


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Store.verify_report` re-hashed: shards per kind (``paper``, ``record``,
    ``representations/<name>``, kinds without shards left out) and one problem line per bad shard."""

    checked: dict[str, int]
    problems: list[str]

    @property
    def n_checked(self) -> int:
        """Shards re-hashed, all kinds together."""
        return sum(self.checked.values())

    def breakdown(self, sep: str = ", ") -> str:
        """"2 paper, 2 record" (``sep`` between the kinds)."""
        return sep.join(f"{n} {kind}" for kind, n in self.checked.items())


class Store:
    """A store directory: its :class:`Manifest` and shard access."""

    def __init__(self, fs, path: str, manifest: Manifest, url: str):
        self.fs, self.path, self.manifest, self.url = fs, path.rstrip("/"), manifest, url
        self._layout = get_layout(manifest.layout)
        self._n_node: dict[str, np.ndarray] = {}
        self._offsets: dict[str, np.ndarray] = {}  # counts_to_offsets(n_node) per shard with a handle
        # ``layout.open`` handle per shard (Zarr: its opened arrays; Parquet: None): listed shards are
        # immutable, so metadata is read once per Store
        self._handles: dict[str, Any] = {}
        self._record: dict[str, Any] = {}  # record shard path -> (opened arrays or None, counts or None)
        #: the representation this Store reads (``view``); the manifest's default when opened
        self.representation = manifest.default_representation if manifest.representations else "paper"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"] = {}  # handles hold I/O resources: reopen in the new process
        state["_record"] = {}
        return state

    # ------------------------------------------------------------------ format 2: representations, record
    def view(self, name: str) -> Store:
        """This store read as representation ``name``: a Store whose ``shards`` are that representation's
        (``shards/`` for the one materialized by the build, ``representations/<name>/`` for derived ones).
        No fingerprint check here: ``hepfm_data.representations.base.open_representation`` does it."""
        m = self.manifest
        entry = m.representations.get(name)
        if entry is None:
            raise StoreError(f"{self.url}: no representation {name!r} (has {sorted(m.representations) or ['paper']})")
        if name == self.representation and (self._base_shards is not None or not entry.get("shards")):
            return self
        d = entry["definition"]
        shards = entry.get("shards") or [s for s in (self._base_shards or m.shards)]
        view = Store(self.fs, self.path, dataclasses.replace(
            m, shards=list(shards), label_names=list(d.get("label_names", m.label_names)),
            object_types=dict(d.get("object_types", m.object_types)),
            node_features=list(d.get("node_features", m.node_features))), self.url)
        view.representation = name
        view._base_shards = self._base_shards or m.shards
        return view

    _base_shards: list[ShardInfo] | None = None

    @property
    def has_record(self) -> bool:
        return bool(self.manifest.record_shards)

    def record_shard(self, shard: int | ShardInfo) -> ShardInfo:
        """The record shard paired with ``shard`` (same name under ``record/``)."""
        info = self._info(shard)
        if not self.has_record:
            raise StoreError(f"{self.url}: this format-{self.manifest.format_version} store keeps no event record "
                             f"(built before format 2, or with record=False); rebuild it from its inputs")
        if self._record_by_name is None:
            self._record_by_name = {r.name: r for r in self.manifest.record_shards}
        try:
            return self._record_by_name[info.name]
        except KeyError:
            raise StoreError(f"{self.url}: no record shard for shard {info.name}") from None

    _record_by_name: dict[str, ShardInfo] | None = None
    _paper_by_name: dict[str, ShardInfo] | None = None  # the build's paper shards (``shards/``) by name

    def read_record(self, shard: int | ShardInfo, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Record columns (``store.record``) of events ``[start, stop)`` of the record shard paired with ``shard``."""
        from hepfm_data.store import record as rec

        r = self.record_shard(shard)
        stop = r.n_events if stop is None else stop
        if not 0 <= start <= stop <= r.n_events:
            raise StoreError(f"{self.url}: record shard {r.name}: range [{start}, {stop}) outside [0, {r.n_events})")
        m = self.manifest
        schema, codecs, path = m.schema, m.record_codecs, f"{self.path}/{r.path}"
        if m.layout == "parquet":
            stored = self._guard(r, lambda: rec.read_parquet_record(self.fs, path, schema, r.n_events, start, stop,
                                                                   codecs))
        else:
            if r.path not in self._record:
                arrays = self._guard(r, lambda: rec.open_zarr_record(self.fs, path, schema, codecs))
                counts = self._guard(r, lambda: rec.check_lengths(arrays, schema, r.n_events, codecs))
                self._record[r.path] = (arrays, counts)
            arrays, counts = self._record[r.path]
            stored = self._guard(r, lambda: rec.read_zarr_record(arrays, counts, schema, start, stop, codecs))
        if not codecs:
            return stored
        # format 3: the columns the paper shard holds come from it (the build's shards/, whatever the view)
        if self._paper_by_name is None:
            self._paper_by_name = {s.name: s for s in (self._base_shards or m.shards)}
        paper = self.read_columns(self._paper_by_name[r.name], start, stop)
        return self._guard(r, lambda: rec.decode_record(stored, paper, schema, codecs))

    def read_events(self, shard: int | ShardInfo, start: int = 0, stop: int | None = None):
        """The awkward event record (``hepfm_data.core.events``) of events ``[start, stop)`` of a shard."""
        from hepfm_data.store.record import to_events

        return to_events(self.read_record(shard, start, stop), self.manifest.schema)

    def __repr__(self) -> str:
        m = self.manifest
        return f"Store({self.url!r}, process={m.process!r}, layout={m.layout!r}, events={m.n_events}, shards={len(m.shards)})"

    def __len__(self) -> int:
        return self.manifest.n_events

    def shards(self, split: str | None = None) -> list[ShardInfo]:
        """Shards, all or of one split ("train", "validation", "test")."""
        if split is not None and split not in SPLITS:
            raise StoreError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        return [s for s in self.manifest.shards if split is None or s.split == split]

    def _info(self, shard: int | ShardInfo) -> ShardInfo:
        if isinstance(shard, ShardInfo):
            return shard
        try:
            return self.manifest.shards[shard]
        except (IndexError, TypeError):
            raise StoreError(f"{self.url}: no shard {shard!r} (store has {len(self.manifest.shards)})") from None

    def read_shard(self, shard: int | ShardInfo, start: int = 0, stop: int | None = None) -> ShardData:
        """Events ``[start, stop)`` of a shard (index into ``manifest.shards`` or a ShardInfo)."""
        cols = self.read_columns(shard, start, stop)
        return cols.to_shard_data()

    def read_columns(self, shard: int | ShardInfo, start: int = 0, stop: int | None = None):
        """Stored columns (no energy) of events ``[start, stop)``: a ``layouts.Columns``."""
        info = self._info(shard)
        stop = info.n_events if stop is None else stop
        if not 0 <= start <= stop <= info.n_events:
            raise StoreError(f"{self.url}: shard {info.name}: range [{start}, {stop}) outside [0, {info.n_events})")
        path = f"{self.path}/{info.path}"
        handle = self._handle(info, path)
        n_node = offsets = None
        if handle is not None and not isinstance(handle, ZarrShard):
            # zarr-API fallback: cached node counts and offsets spare each range read a full-shard pass
            n_node = self.n_node(info)
            if info.path not in self._offsets:
                self._offsets[info.path] = counts_to_offsets(n_node)
            offsets = self._offsets[info.path]
        cols = self._guard(info, lambda: self._layout.read(self.fs, path, start, stop, n_node, handle, offsets))
        if cols.n_events != stop - start:
            raise StoreError(f"{self.url}: shard {info.name} returned {cols.n_events} events, expected {stop - start}")
        _check_columns(cols, f"{self.url}: shard {info.name} rows [{start}, {stop})")
        return cols

    def _handle(self, info: ShardInfo, path: str) -> Any:
        if info.path not in self._handles:
            handle = self._guard(info, lambda: self._layout.open(self.fs, path))
            # metadata from the store vs the manifest and the size limits, before any chunk is read
            self._guard(info, lambda: check_shard(self.manifest.layout, self.fs, path, handle, info.n_events,
                                                  info.n_nodes, len(self.manifest.label_names)))
            self._handles[info.path] = handle
        return self._handles[info.path]

    def n_node(self, shard: int | ShardInfo, start: int = 0, stop: int | None = None) -> np.ndarray:
        """[stop - start] node counts of rows ``[start, stop)`` of a shard (Zarr: the node-count
        column's chunks alone, not cached; Parquet: the shard's, cached)."""
        info = self._info(shard)
        arrays = self._handle(info, f"{self.path}/{info.path}")
        stop = info.n_events if stop is None else stop
        if not 0 <= start <= stop <= info.n_events:
            raise StoreError(f"{self.url}: shard {info.name}: range [{start}, {stop}) outside [0, {info.n_events})")
        if isinstance(arrays, ZarrShard):
            return self._guard(info, lambda: arrays["n_node"].read(start, stop))
        return self._n_node_all(info, arrays)[start:stop]

    def _n_node_all(self, info: ShardInfo, arrays) -> np.ndarray:
        if arrays is not None:
            if info.path not in self._n_node:
                n_node = self._guard(info, lambda: arrays["n_node"][...])
                if n_node.size and (int(n_node.min()) < 0 or int(n_node.sum(dtype=np.int64)) != info.n_nodes):
                    raise StoreError(f"{self.url}: shard {info.name}: node counts (min {int(n_node.min())}, "
                                     f"sum {int(n_node.sum(dtype=np.int64))}) disagree with the manifest's "
                                     f"{info.n_nodes} nodes")
                self._n_node[info.path] = n_node
            return self._n_node[info.path]
        return self.read_columns(info).events["n_node"]

    def _guard(self, info: ShardInfo, fn):
        try:
            return fn()
        except StoreError as exc:
            if str(exc).startswith(f"{self.url}: "):  # already names the store (and the shard)
                raise
            raise StoreError(f"{self.url}: shard {info.name}: {exc}") from None
        except MemoryError:
            raise
        except FileNotFoundError as exc:
            raise StoreError(f"{self.url}: shard {info.name} is missing ({exc})") from None
        except Exception as exc:  # corrupt bytes surface as many library errors
            raise StoreError(f"{self.url}: shard {info.name} cannot be read: {type(exc).__name__}: {exc}") from None

    def verify(self, progress: bool = False) -> list[str]:
        """Re-hash every shard (paper, record, derived representations); one problem line per bad shard."""
        return self.verify_report(progress).problems

    def verify_report(self, progress: bool = False) -> VerifyReport:
        """:meth:`verify` with the number of shards re-hashed per kind (paper, record, each derived
        representation)."""
        from tqdm.auto import tqdm

        problems = []
        m = self.manifest
        kinds = {"paper": self._base_shards or m.shards, "record": m.record_shards,
                 **{f"{REPRESENTATION_DIR}/{name}": r.get("shards") or () for name, r in m.representations.items()}}
        every = [s for shards in kinds.values() for s in shards]
        for info in tqdm(every, desc="verify", unit=" shard", disable=not progress):
            try:
                sha, size = remote_sha256(self.fs, f"{self.path}/{info.path}")
            except FileNotFoundError:
                problems.append(f"{info.path}: missing")
                continue
            if sha != info.sha256:
                problems.append(f"{info.path}: sha256 {sha} != manifest {info.sha256} ({size} bytes)")
        return VerifyReport({kind: len(shards) for kind, shards in kinds.items() if shards}, problems)

    def check(self) -> None:
        """Raise :class:`ChecksumError` naming the bad shards, if any."""
        problems = self.verify()
        if problems:
            raise ChecksumError(f"{self.url}: {len(problems)} bad shard(s): " + "; ".join(problems))


def _check_columns(cols, where: str) -> None:
    """Stored columns read from a shard agree with themselves: one length per table, node counts
    non-negative and summing to the nodes read."""
    n, counts = cols.n_events, cols.events["n_node"]
    lengths = {k: v.shape[0] for k, v in cols.events.items()}
    node_lengths = {k: v.shape[0] for k, v in cols.nodes.items()}
    if set(lengths.values()) != {n} or len(set(node_lengths.values())) != 1 or (
            n and (int(counts.min()) < 0 or int(counts.sum(dtype=np.int64)) != cols.n_nodes)):
        raise StoreError(f"{where}: inconsistent columns (event lengths {lengths}, node lengths {node_lengths}, "
                         f"node counts sum {int(counts.sum(dtype=np.int64)) if n else 0})")


def open_store(url: str, storage_options: dict[str, Any] | None = None, *, retry: RetryPolicy | None = None) -> Store:
    """Open the store at ``url`` (``<root>/<process>``; local path or fsspec URL).

    ``retry`` governs a remote filesystem (default ``RetryPolicy.from_env()``; see ``sources.resolve``)."""
    from hepfm_data.sources import resolve

    fs, path = resolve(str(url), storage_options, retry=retry)
    path = path.rstrip("/")
    mpath = f"{path}/{MANIFEST}"
    try:
        with fs.open(mpath, "rb") as fh:
            text = fh.read(MAX_MANIFEST_BYTES + 1)  # a bound: the manifest is data from the store
    except FileNotFoundError:
        if fs.exists(f"{path}/_build"):
            raise StoreError(f"{url}: incomplete store (build interrupted, no {MANIFEST}); "
                             f"re-run the same build command to resume") from None
        raise StoreError(f"{url}: not a store ({MANIFEST} not found)") from None
    return Store(fs, path, Manifest.from_json(text, f"{url}/{MANIFEST}"), str(url))


def check_aligned(nominal, view) -> None:
    """StoreError unless ``view`` has the nominal's shards (names, sizes) and event ids in the same order."""
    a, b = nominal.manifest.shards, view.manifest.shards
    if [(s.name, s.split, s.n_events) for s in a] != [(s.name, s.split, s.n_events) for s in b]:
        raise StoreError(f"{view.url}: shards differ from the nominal store {nominal.url} "
                         f"({len(b)} vs {len(a)} shards); rebuild the view")
    for sa, sb in zip(a, b):
        ia = nominal.read_columns(sa).events["event_id"]
        ib = view.read_columns(sb).events["event_id"]
        if not np.array_equal(ia, ib):
            raise StoreError(f"{view.url}: shard {sb.name}: event ids differ from the nominal store's")
