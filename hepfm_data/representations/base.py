"""The :class:`Representation` protocol: one stored event record, many model inputs.

A representation is a named, versioned way to turn the stored event record into batches:

* **identity**: ``name``, ``version`` (bumped when its code changes the output), ``inputs`` (the
  record fields, ``collection.field``, it reads), ``definition(catalog)`` (the catalog parts and
  parameters it uses) -> :meth:`~Representation.fingerprint`, the sha256 of all of them;
* **batches**: ``batch_type`` (a type of :mod:`hepfm_data.batches`), and, in a DataLoader worker,
  ``read_window`` (the planned blocks of a window, permuted into stream order), ``batch`` (stream
  positions ``[a, b)`` of it) and, in the main process, ``finish`` (onto the training device);
* **placement** (optional): a representation with ``columns(events, label, catalog, seed)`` is
  *materialised*: ``build`` (the default ``paper``) or ``derive`` store its columns, and the loader
  reads the stored columns instead of the record (one object, two placements, as lhotse's feature
  extractors or PyG's ``pre_transform`` / ``transform``). The others compute from the record shards in
  the loader's workers.

The loader hands a representation a :class:`WindowSource` (the public face of
``StreamingDataset``); randomness comes from :func:`batch_rng` with the batch key (seed, epoch, level,
rank, batch id), so batches are the same bytes whatever the number of workers. Representations are
listed in :mod:`hepfm_data.representations.registry`; a new one subclasses :class:`Representation`
and registers there or through the ``hepfm_data.representations`` entry-point group.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from hepfm_data.core.errors import HepfmError, StoreError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from hepfm_data.core.catalog import Catalog
    from hepfm_data.store import Store
    from hepfm_data.store.layouts import Columns
    from hepfm_data.store.manifest import ShardInfo

__all__ = ["Representation", "WindowSource", "Block", "batch_rng", "AUGMENT_STREAM", "TRANSFORM_STREAM",
           "PAIR_STREAM", "RECORD", "DEFAULT", "derive_command"]

#: the name under which ``load_dataset`` returns the stored record itself (not a representation)
RECORD = "record"
#: the representation a store is read as when none is named
DEFAULT = "paper"
#: rng stream numbers of :func:`batch_rng` (5+: free for new representations)
AUGMENT_STREAM, TRANSFORM_STREAM, PAIR_STREAM = 2, 3, 4


def batch_rng(key: tuple, stream: int) -> np.random.Generator:
    """The generator of random stream ``stream`` for the batch with ``key`` (seed, epoch, level, rank, batch id)."""
    return np.random.default_rng([int(key[0]), int(key[1]), int(stream), *(int(k) for k in key[2:])])


@dataclass(frozen=True)
class Block:
    """Rows ``[start, stop)`` of shard ``shard`` of source (store) ``source``: the unit of I/O."""

    source: int
    shard: int
    start: int
    stop: int


class WindowSource(Protocol):
    """What a representation sees of the dataset it serves (``StreamingDataset`` implements it)."""

    split: str
    catalog: Catalog
    stores: list  # one opened Store per source, viewed as the representation
    source_labels: np.ndarray  # [n_sources] int64 label of each source's events
    source_scale: np.ndarray  # [n_sources] float32 mixing multiplier of each source's weights
    augment: Callable | None  # aug(nodes [N, 7], offsets [B+1], rng) -> nodes
    multilabels: bool
    build_edges: bool  # workers build CPU graphs (True) or hand over packed nodes (False)
    pad_shape: tuple[int, int, int] | None
    batch_by_size: bool  # batches by node / edge budgets (max_nodes, max_edges), not event counts

    def shard_info(self, source: int, shard: int) -> ShardInfo: ...

    def read_columns(self, blk: Block, store: Store | None = None) -> Columns: ...

    def read_record(self, blk: Block, store: Store | None = None) -> dict[str, np.ndarray]: ...


def derive_command(url: str, name: str) -> str:
    return f"hepfm-data derive {url} --representation {name}"


class Representation:
    """Base class of every representation (module docstring). Subclasses set the class attributes or
    dataclass fields ``name``, ``version``, ``inputs``, ``doc`` and implement the window methods."""

    name: str
    version: int
    inputs: tuple[str, ...]  # record fields read (``collection.field``)
    doc: str  # one line for listings
    #: the batch type the loader yields on the device
    batch_type: ClassVar[type]
    #: options of the dataset this representation honours (any other that is set is refused by name)
    options: ClassVar[frozenset[str]] = frozenset()
    #: what a store lacking the inputs should be rebuilt with (appended to the input error)
    missing_hint: ClassVar[str] = ""

    # ------------------------------------------------------------------ identity
    def definition(self, catalog: Catalog) -> dict[str, Any]:
        """The catalog parts and parameters the output depends on (JSON-able)."""
        return {}

    def full_definition(self, catalog: Catalog) -> dict[str, Any]:
        return json.loads(json.dumps(self.definition(catalog), sort_keys=True, default=list))

    def fingerprint(self, catalog: Catalog) -> str:
        """sha256 of name, version, inputs and definition: what the stored columns were made by."""
        doc = {"name": self.name, "version": self.version, "inputs": list(self.inputs),
               "definition": self.full_definition(catalog)}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    # ------------------------------------------------------------------ placement
    @property
    def materialised(self) -> bool:
        """Stored as columns by ``build`` / ``derive`` (it defines :meth:`columns`)."""
        return type(self).columns is not Representation.columns

    def columns(self, events: Any, label: int, catalog: Catalog, seed: int) -> Columns:
        """Store columns of an event record block (materialised representations only)."""
        raise HepfmError(f"representation {self.name!r} is computed from the record by the loader, not stored: "
                         f"there is nothing to derive")

    def entry(self, catalog: Catalog, shards: list | None = None) -> dict[str, Any]:
        """The manifest entry (``shards=None``: the store's ``shards/``, i.e. built with the store)."""
        return {"version": self.version, "fingerprint": self.fingerprint(catalog), "inputs": list(self.inputs),
                "definition": self.full_definition(catalog), "shards": shards, "doc": self.doc}

    # ------------------------------------------------------------------ the one input check
    def required_inputs(self, schema: dict[str, Any] | None, catalog: Catalog | None = None) -> list[str]:
        """Record fields read from a store whose record has ``schema`` (default: ``inputs``)."""
        return list(self.inputs)

    def missing_inputs(self, schema: dict[str, Any] | None, catalog: Catalog | None = None) -> list[str]:
        """Record fields this representation needs that ``schema`` (a manifest's) lacks; [] = servable."""
        from hepfm_data.store.record import inputs_missing

        need = self.required_inputs(schema, catalog)
        return need if not schema else inputs_missing(schema, need)

    def check(self, store: Store, catalog: Catalog | None = None) -> None:
        """The one input check: raise :class:`StoreError` naming the store, this representation and the
        record fields it lacks."""
        m = store.manifest
        if not m.schema:
            raise StoreError(f"{store.url}: representation {self.name!r} reads the stored event record, which this "
                             f"store lacks (format {m.format_version}; built with record=False or by an older "
                             f"hepfm): rebuild it from its inputs with this hepfm")
        missing = self.missing_inputs(m.schema, catalog)
        if missing:
            colls = sorted({f.rsplit(".", 1)[0] for f in missing if "." in f})
            raise StoreError(f"{store.url}: representation {self.name!r} needs record field(s) {missing} (collection(s) "
                             f"{colls}), which this store's record lacks{self.missing_hint}")

    def open(self, store: Store, catalog: Catalog) -> Store:
        """``store`` as this representation reads it (inputs checked; materialised: the stored columns,
        their fingerprint checked against ``catalog``)."""
        from hepfm_data.core.catalog import load_catalog

        if not self.materialised:
            self.check(store, catalog)
            return store
        m = store.manifest
        if m.format_version < 2 or not m.representations:
            if self.name != DEFAULT:
                raise StoreError(f"{store.url}: a format-{m.format_version} store holds the paper graph only; "
                                 f"representation {self.name!r} needs a store rebuilt with this hepfm")
            return store  # a format-1 store is read as paper (read-only, unchecked: it records no fingerprint)
        entry = m.representations.get(self.name)
        if entry is None:
            self.check(store, catalog)
            raise StoreError(f"{store.url}: representation {self.name!r} is not derived yet; run:\n  "
                             f"{derive_command(store.url, self.name)}")
        want = self.fingerprint(catalog)
        if entry["fingerprint"] != want:
            raise StoreError(
                f"{store.url}: representation {self.name!r} was derived with another definition (fingerprint "
                f"{entry['fingerprint'][:12]} in the manifest, {want[:12]} from this catalog and hepfm: the "
                f"selection, features, labels or the derivation's version changed); re-derive it from the stored "
                f"record with:\n  {derive_command(store.url, self.name)}"
                + ("" if catalog is load_catalog() else f" --catalog {catalog.source}"))
        return store.view(self.name)

    def bind(self, src: WindowSource, options: dict[str, Any]) -> None:
        """Called once by the dataset: refuse, by name, every option set that this representation does
        not honour (``options``: name -> value of the dataset's optional settings)."""
        unused = sorted(k for k, v in options.items() if v not in (None, False) and k not in self.options)
        if unused:
            raise HepfmError(f"representation {self.name!r} does not take {', '.join(unused)} "
                             f"(it honours: {', '.join(sorted(self.options)) or 'none of the optional settings'})")

    # ------------------------------------------------------------------ batches (workers, then main process)
    def read_window(self, src: WindowSource, blocks: Sequence[Block], perm: np.ndarray) -> Any:
        """Events of ``blocks`` concatenated in plan order, then permuted by ``perm`` [n]; the window has
        ``offsets`` [n+1] (per-event sizes for node budgets) and ``len``."""
        raise NotImplementedError

    def empty_window(self, src: WindowSource) -> Any:
        """A window with no events (a worker range without events still yields its batches)."""
        raise NotImplementedError

    def batch(self, src: WindowSource, win: Any, a: int, b: int, key: tuple) -> Any:
        """Stream positions ``[a, b)`` of ``win`` (window-relative) as one batch (in a worker)."""
        raise NotImplementedError

    def finish(self, src: WindowSource, item: Any, device: torch.device) -> Any:
        """Main process: a batch from a worker -> the batch on ``device``."""
        import torch

        return item if item.device == torch.device(device) else item.to(device, non_blocking=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, v{self.version})"


def check_event_ids(store: Store, info: ShardInfo, blk: Block, got: np.ndarray, want: np.ndarray,
                    nominal: Store) -> None:
    """Raise :class:`StoreError` when a view store's rows do not hold the nominal store's events."""
    if not np.array_equal(got, want):
        raise StoreError(f"{store.url}: shard {info.name} rows [{blk.start}, {blk.stop}): event ids differ from the "
                         f"nominal store {nominal.url}; rebuild the view")
