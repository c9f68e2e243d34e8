"""``load_dataset``: hepfm stores as Hugging Face ``datasets``.

>>> from hepfm_data import load_dataset
>>> ds = load_dataset("hepfm/ttH_cp_odd", split="train[:10000]")   # doctest: +SKIP
>>> ds.with_format("torch")[0]["pt"]                                # doctest: +SKIP

Names: ``hepfm/<process>`` (label = the catalog process index, a ClassLabel over
all processes) or ``hepfm/<task>`` (both classes' stores; label = the task label
0/1). Stores live under a *storage root* — ``storage=``, else ``$HEPFM_STORAGE``,
else ``~/.cache/hepfm/stores`` — as ``<root>/<process>``; the root may be a local
path or any fsspec URL (``s3://``, ``https://``, ``hf://``...). Nothing is ever
downloaded unless the root the user gave is remote.

Splits use the Hugging Face grammar through ``datasets.ReadInstruction``
(``train``, ``train[:10000]``, ``train[10%:20%]``, ``train+test``); for a task it
applies to each class's store, so ``train[:1000]`` gives 1000 events per class
(the paper's per-class training sizes). Rows keep store order: shuffle yourself.

Non-streaming: each needed shard is converted once to an Arrow file in the cache
(``cache_dir``, default ``$HEPFM_CACHE`` or ``~/.cache/hepfm``), keyed by the shard's
sha256 and the labelling, and memory-mapped (warm loads read no shard at all).
Shards of a remote store are first fetched into the one shard cache shared with the
loader (``<cache_dir>/shards/<sha256>/``: verified against the manifest, bounded by
``$HEPFM_CACHE_BYTES``; :mod:`hepfm_data.store.cache`). Streaming reads shards through
fsspec, chunk by chunk, with retries; nothing is written to disk. Every manifest is
validated when its store is opened (:mod:`hepfm_data.store.manifest`).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from . import config
from .catalog import Catalog, load_catalog
from .config import storage_root
from .errors import HepfmError, StoreError, UnknownNameError, require
from .sources import RetryPolicy, is_local, resolve

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset, DatasetDict, Features, IterableDataset, IterableDatasetDict

    from .store import ShardData, Store
    from .store.manifest import ShardInfo

PREFIX = "hepfm/"
DEFAULT_BUILD_EVENTS = 10_000
#: events per Arrow record batch when converting or streaming a shard (bounds memory)
CHUNK_EVENTS = 32_768
#: bump when the Arrow conversion changes, so cached Arrow files are rebuilt
ARROW_FORMAT = 1
NODE_DTYPES = {"pt": "float32", "eta": "float32", "phi": "float32", "energy": "float32",
               "btag": "int8", "charge": "int8", "type": "int8"}


# ----------------------------------------------------------------------------- names and roots


@dataclass(frozen=True)
class Target:
    """What a dataset name resolves to: stores to read and how to label them.

    ``labels[i]`` is the label forced onto every event of ``processes[i]`` (task
    datasets) or ``None`` to keep the stored process index.
    """

    name: str
    processes: tuple[str, ...]
    labels: tuple[int | None, ...]
    label_names: tuple[str, ...]
    description: str


def resolve_name(name: str, catalog: Catalog | None = None) -> Target:
    """``hepfm/<process>`` or ``hepfm/<task>`` (the ``hepfm/`` prefix is optional) -> :class:`Target`."""
    cat = catalog or load_catalog()
    short = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if "/" in short or not short:
        raise UnknownNameError(f"dataset name {name!r} is not of the form 'hepfm/<process>' or 'hepfm/<task>'")
    if cat.has_task(short):
        task = cat.task(short)
        return Target(f"{PREFIX}{short}", task.classes, (0, 1), task.classes,
                      f"{task.description} Label 0: {task.classes[0]}, label 1: {task.classes[1]}.")
    if cat.has_process(short):
        proc = cat.process(short)
        names = tuple(p.name for p in sorted(cat.processes, key=lambda p: p.index))
        fidelity = {"proxy": " LOCAL PROXY (same final state, wrong correlations): not the real process.",
                    "external-only": " Built from external (LHE or Delphes) input."}.get(proc.fidelity, "")
        return Target(f"{PREFIX}{short}", (short,), (None,), names, proc.description + fidelity)
    raise UnknownNameError(
        f"unknown dataset {name!r}; processes: {', '.join(p.name for p in cat.processes)}; "
        f"tasks: {', '.join(t.name for t in cat.tasks)}")


def build_command(process: str, root: str, n_events: int = DEFAULT_BUILD_EVENTS) -> list[str]:
    """The ``hepfm-data build`` command line that creates ``<root>/<process>`` from generated events."""
    return ["hepfm-data", "build", process, "--generate", str(n_events), "--seed", "1", "--out", root]


def _is_remote(fs) -> bool:
    return not is_local(fs)


def open_process_store(process: str, root: str, storage_options: dict[str, Any] | None, build: bool | int,
                       cat: Catalog, retry: RetryPolicy | None) -> Store:
    """Open ``<root>/<process>``; when missing, build it (``build``) or raise with the command to run."""
    from .store import open_store
    from .store.manifest import MANIFEST

    url = f"{root}/{process}"
    fs, path = resolve(url, storage_options, retry=retry)
    if not fs.exists(f"{path.rstrip('/')}/{MANIFEST}"):
        proc = cat.process(process)
        where = f"no hepfm store for {process!r} at {url} (no manifest.json there)"
        if not proc.generatable:
            raise StoreError(
                f"{where}. {process} is external-only (no Pythia 8 process exists): build its store from "
                f"Delphes ROOT or LHE input with `hepfm-data build {process} --help` and --out {root}, "
                f"or point storage= / HEPFM_STORAGE at a root that has it.")
        n = DEFAULT_BUILD_EVENTS if build is True or not build else int(build)
        cmd = build_command(process, root, n)
        if not build:
            raise StoreError(
                f"{where}. Generate and build it locally with (re-running resumes an interrupted build):\n"
                f"  {' '.join(cmd)}\n"
                f"or call load_dataset(..., build=True) (or build=<events>) to run that now, "
                f"or point storage= / HEPFM_STORAGE at a root that has it.")
        from .cli import main

        print(f"hepfm: building the missing store: {' '.join(cmd)}", flush=True)
        rc = main(cmd[1:])
        if rc != 0:
            raise StoreError(f"{where}; `{' '.join(cmd)}` failed with exit status {rc}")
    return open_store(url, storage_options, retry=retry)


def check_stores(target: Target, stores: list[Store], cat: Catalog) -> None:
    """Each store holds the process its place in the root names, with the catalog's multilabel schema."""
    for process, s in zip(target.processes, stores):
        if s.manifest.process != process:
            raise StoreError(f"{s.url}: manifest is for process {s.manifest.process!r}, expected {process!r}")
        if len(s.manifest.label_names) != cat.labels.n_labels:
            raise StoreError(f"{s.url}: manifest has {len(s.manifest.label_names)} multilabel names, "
                             f"the catalog {cat.labels.n_labels}; rebuild the store with this hepfm")


# ----------------------------------------------------------------------------- features and Arrow


def features_for(target: Target, n_labels: int) -> Features:
    """Declared ``datasets.Features``: per-event scalars, multilabel [L] u8, one list per node feature."""
    ds = require("datasets", "hf", "load_dataset")
    feats = {
        "event_id": ds.Value("uint64"),
        "weight": ds.Value("float32"),
        "label": ds.ClassLabel(names=list(target.label_names)),
        "multilabel": ds.List(ds.Value("uint8"), length=n_labels),
        "n_node": ds.Value("int32"),
    }
    feats.update({k: ds.List(ds.Value(v)) for k, v in NODE_DTYPES.items()})
    return ds.Features(feats)


def shard_table(data: ShardData, label: int | None, features: Features):
    """One ``pyarrow.Table`` (rows = events) from a :class:`~hepfm_data.store.ShardData`."""
    import pyarrow as pa

    off = np.asarray(data.offsets, dtype=np.int64)
    off = pa.array(off.astype(np.int32) if off[-1] < 2**31 else off)
    labels = np.asarray(data.label, dtype=np.int64) if label is None else np.full(len(data), label, np.int64)
    ml = np.ascontiguousarray(data.multilabel, dtype=np.uint8)
    cols = {
        "event_id": pa.array(np.asarray(data.event_id, dtype=np.uint64)),
        "weight": pa.array(np.asarray(data.weight, dtype=np.float32)),
        "label": pa.array(labels),
        "multilabel": pa.FixedSizeListArray.from_arrays(pa.array(ml.reshape(-1)), ml.shape[1]),
        "n_node": pa.array(np.asarray(data.n_node, dtype=np.int32)),
    }
    list_cls = pa.ListArray if off.type == pa.int32() else pa.LargeListArray
    for i, (name, dtype) in enumerate(NODE_DTYPES.items()):
        values = np.ascontiguousarray(data.nodes[:, i]).astype(dtype, copy=False)
        cols[name] = list_cls.from_arrays(off, pa.array(values))
    schema = features.arrow_schema
    return pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)


# ----------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Part:
    """Events ``[start, stop)`` of one shard, with the label to force (or None)."""

    url: str
    shard: ShardInfo
    start: int
    stop: int
    label: int | None


def plan(store: Store, split: str, label: int | None) -> list[Part]:
    """The shard ranges selected by an HF split spec on one store, in order.

    Uses ``datasets.ReadInstruction.from_spec(split).to_absolute(sizes)``.
    """
    ds = require("datasets", "hf", "load_dataset")
    from .store import SPLITS

    sizes = {s: sum(i.n_events for i in store.shards(s)) for s in SPLITS}
    try:
        instructions = ds.ReadInstruction.from_spec(split).to_absolute(sizes)
    except (ValueError, AssertionError) as exc:
        raise HepfmError(f"{store.url}: bad split {split!r}: {exc} (splits and sizes: {sizes})") from None
    parts: list[Part] = []
    for ins in instructions:
        first = 0
        for info in store.shards(ins.splitname):
            lo, hi = max(ins.from_, first), min(ins.to, first + info.n_events)
            if lo < hi:
                parts.append(Part(store.url, info, lo - first, hi - first, label))
            first += info.n_events
    return parts


def _key(*items: Any) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()


# ----------------------------------------------------------------------------- non-streaming


class _Materializer:
    """Shards -> memory-mapped Arrow files in ``<cache_dir>/arrow/``; a remote shard is read through the
    one shard cache (``<cache_dir>/shards/<sha256>/``: fetched whole, verified, bounded)."""

    def __init__(self, cache_dir: Path, features: Features, cache_bytes: int | None = None):
        from .store.cache import RemoteShards

        self.cache_dir, self.features = cache_dir, features
        self.remote = RemoteShards(cache_dir, cache_bytes)

    def arrow_file(self, store: Store, part: Part) -> Path:
        """The cached Arrow file of ``part.shard`` (whole shard), converting it if absent."""
        info = part.shard
        key = _key(ARROW_FORMAT, info.sha256, part.label, self.features.to_dict())
        out = self.cache_dir / config.ARROW_CACHE / key[:2] / f"{key}.arrow"
        if out.exists():
            return out
        ds = require("datasets", "hf", "load_dataset")
        with contextlib.ExitStack() as stack:
            read = (lambda lo, hi: store.read_shard(info, lo, hi)) if not _is_remote(store.fs) else \
                stack.enter_context(self.remote.reader(store, info))  # held (never evicted) while converting
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:12]}.part")
            try:
                with ds.arrow_writer.ArrowWriter(features=self.features, path=str(tmp)) as writer:
                    for lo in range(0, info.n_events, CHUNK_EVENTS):
                        data = read(lo, min(lo + CHUNK_EVENTS, info.n_events))
                        writer.write_table(shard_table(data, part.label, self.features))
                    writer.finalize()
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
        return out

    def dataset(self, stores: dict[str, Store], parts: list[Part], info, split: str) -> Dataset:
        ds = require("datasets", "hf", "load_dataset")
        pieces = []
        for part in parts:
            store = stores[part.url]
            piece = ds.Dataset.from_file(str(self.arrow_file(store, part)), info=info.copy(),
                                         split=ds.NamedSplit(split))
            if (part.start, part.stop) != (0, part.shard.n_events):
                piece = piece.select(range(part.start, part.stop))
            pieces.append(piece)
        if not pieces:
            empty = {k: [] for k in self.features}
            return ds.Dataset.from_dict(empty, features=self.features, info=info.copy(), split=ds.NamedSplit(split))
        if len(pieces) == 1:
            return pieces[0]
        return ds.concatenate_datasets(pieces, info=info.copy(), split=ds.NamedSplit(split))


# ----------------------------------------------------------------------------- streaming

def _stream_tables(parts: list[dict[str, Any]]) -> Iterator[tuple[str, Any]]:
    """ArrowExamplesIterable generator: Arrow tables of ``CHUNK_EVENTS`` events, part after part.

    Module-level and fed picklable dicts (the Store, its manifest and fs travel along) so that
    DataLoader workers can run it; each worker reads only its share of the parts.
    """
    for p in parts:
        store: Store = p["store"]
        part: Part = p["part"]
        for lo in range(part.start, part.stop, CHUNK_EVENTS):
            hi = min(lo + CHUNK_EVENTS, part.stop)
            data = store.read_shard(part.shard, lo, hi)
            yield f"{part.shard.path}:{lo}", shard_table(data, part.label, p["features"])


def _streaming(stores: dict[str, Store], parts: list[Part], features: Features, info, split: str) -> IterableDataset:
    ds = require("datasets", "hf", "load_dataset")
    from datasets.iterable_dataset import ArrowExamplesIterable

    kwargs = {"parts": [{"store": stores[p.url], "part": p, "features": features} for p in parts]}
    return ds.IterableDataset(ArrowExamplesIterable(_stream_tables, kwargs), info=info.copy(),
                              split=ds.NamedSplit(split))


# ----------------------------------------------------------------------------- entry point


@overload
def load_dataset(name: str, split: str = ..., *, streaming: Literal[False] = ..., storage: str | os.PathLike | None = ...,
                 cache_dir: str | os.PathLike | None = ..., storage_options: dict[str, Any] | None = ...,
                 build: bool | int = ..., catalog: Catalog | None = ..., retry: RetryPolicy | None = ...) -> Dataset: ...
@overload
def load_dataset(name: str, split: None, *, streaming: Literal[False] = ..., storage: str | os.PathLike | None = ...,
                 cache_dir: str | os.PathLike | None = ..., storage_options: dict[str, Any] | None = ...,
                 build: bool | int = ..., catalog: Catalog | None = ..., retry: RetryPolicy | None = ...
                 ) -> DatasetDict: ...
@overload
def load_dataset(name: str, split: str = ..., *, streaming: Literal[True], storage: str | os.PathLike | None = ...,
                 cache_dir: str | os.PathLike | None = ..., storage_options: dict[str, Any] | None = ...,
                 build: bool | int = ..., catalog: Catalog | None = ..., retry: RetryPolicy | None = ...
                 ) -> IterableDataset: ...
@overload
def load_dataset(name: str, split: None, *, streaming: Literal[True], storage: str | os.PathLike | None = ...,
                 cache_dir: str | os.PathLike | None = ..., storage_options: dict[str, Any] | None = ...,
                 build: bool | int = ..., catalog: Catalog | None = ..., retry: RetryPolicy | None = ...
                 ) -> IterableDatasetDict: ...


def load_dataset(name: str, split: str | None = "train", *, streaming: bool = False,
                 storage: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                 storage_options: dict[str, Any] | None = None, build: bool | int = False,
                 catalog: Catalog | None = None, retry: RetryPolicy | None = None):
    """A hepfm store (or a task's two stores) as a ``datasets.Dataset`` / ``IterableDataset``.

    ``split``: HF split spec (``"train[:10%]+test"``), or ``None`` for a dict of
    ``train``/``validation``/``test``. ``storage``: root holding ``<root>/<process>``.
    ``storage_options``: fsspec options for a remote root (copied, never mutated).
    ``build``: when a generatable process's store is missing, run ``hepfm-data build``
    (``True``: 10,000 events, or the number given); otherwise the error prints that command.
    Columns: event_id u64, weight f32, label ClassLabel, multilabel u8 [38], n_node i32,
    and one list per node feature: pt (GeV), eta, phi (rad), energy (GeV), btag, charge, type.
    """
    ds = require("datasets", "hf", "load_dataset")
    cat = catalog or load_catalog()
    target = resolve_name(name, cat)
    root = storage_root(storage)
    options = copy.deepcopy(storage_options) if storage_options else None  # a private copy
    stores = [open_process_store(p, root, options, build, cat, retry) for p in target.processes]
    features = features_for(target, cat.labels.n_labels)
    check_stores(target, stores, cat)
    info = ds.DatasetInfo(
        description=target.description + " Multilabel order: " + ", ".join(cat.labels.names) + ".",
        citation=_citation(cat), homepage=cat.upstream.url, features=features)
    by_url = {s.url: s for s in stores}

    def one(spec: str):
        parts = [p for s, label in zip(stores, target.labels) for p in plan(s, spec, label)]
        if streaming:
            return _streaming(by_url, parts, features, info, spec)
        mat = _Materializer(config.cache_dir(cache_dir), features)
        return mat.dataset(by_url, parts, info, spec)

    if split is not None:
        return one(str(split))
    from .store import SPLITS

    present = [s for s in SPLITS if any(st.shards(s) for st in stores)]
    return (ds.IterableDatasetDict if streaming else ds.DatasetDict)({s: one(s) for s in present})


def _citation(cat: Catalog) -> str:
    c = cat.citations.get("ho2024") or next(iter(cat.citations.values()))
    return f"{c.authors}, \"{c.title}\", arXiv:{c.arxiv}"
