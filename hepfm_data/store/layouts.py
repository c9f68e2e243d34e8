"""Physical layouts of one shard behind one interface: Zarr v3 (sharding codec) and Parquet.

Logical schema per shard (B events, N nodes):
events: event_id u64, weight f32, label i16, multilabel u8 [B, L], n_node i32;
nodes: pt, eta, phi f32, btag, charge, type i8. ``LAYOUTS[name]`` gives the
writer/reader pair; writers produce a local file or directory, readers read
through an fsspec filesystem.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._arrays import counts_to_offsets
from ..errors import StoreError

EVENT_COLUMNS = {"event_id": np.uint64, "weight": np.float32, "label": np.int16, "multilabel": np.uint8,
                 "n_node": np.int32}
NODE_COLUMNS = {"pt": np.float32, "eta": np.float32, "phi": np.float32, "btag": np.int8, "charge": np.int8,
                "type": np.int8}
NODE_FEATURES = ("pt", "eta", "phi", "energy", "btag", "charge", "type")


@dataclass
class ShardData:
    """Events ``[start, stop)`` of one shard as numpy arrays.

    event_id u64 [B], weight f32 [B], label i16 [B], multilabel u8 [B, L],
    n_node i32 [B], offsets i64 [B+1] (into ``nodes``, starting at 0), nodes
    f32 [N, 7] = (pt GeV, eta, phi rad, energy GeV, btag, charge, type).
    """

    event_id: np.ndarray
    weight: np.ndarray
    label: np.ndarray
    multilabel: np.ndarray
    n_node: np.ndarray
    offsets: np.ndarray
    nodes: np.ndarray

    def __len__(self) -> int:
        return int(self.event_id.shape[0])


@dataclass
class Columns:
    """Stored columns of a shard (writer input / raw reader output)."""

    events: dict[str, np.ndarray]
    nodes: dict[str, np.ndarray]

    @property
    def n_events(self) -> int:
        return int(self.events["event_id"].shape[0])

    @property
    def n_nodes(self) -> int:
        return int(self.nodes["pt"].shape[0])

    def offsets(self) -> np.ndarray:
        return counts_to_offsets(self.events["n_node"])

    def take(self, idx: np.ndarray) -> Columns:
        """Events ``idx`` (sorted int indices) with their nodes."""
        off = self.offsets()
        counts = self.events["n_node"][idx].astype(np.int64)
        starts = off[idx]
        total = int(counts.sum())
        first = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        node_idx = first + np.arange(total, dtype=np.int64)
        return Columns({k: v[idx] for k, v in self.events.items()}, {k: v[node_idx] for k, v in self.nodes.items()})

    def slice(self, start: int, stop: int) -> Columns:
        off = self.offsets()
        return Columns({k: v[start:stop] for k, v in self.events.items()},
                       {k: v[off[start]:off[stop]] for k, v in self.nodes.items()})

    @staticmethod
    def concat(parts: list[Columns]) -> Columns:
        return Columns({k: np.concatenate([p.events[k] for p in parts]) for k in parts[0].events},
                       {k: np.concatenate([p.nodes[k] for p in parts]) for k in parts[0].nodes})

    def to_shard_data(self) -> ShardData:
        from ..kernels.features import node_matrix

        n = self.nodes
        nodes = node_matrix(n["pt"], n["eta"], n["phi"], n["btag"], n["charge"], n["type"])
        e = self.events
        return ShardData(e["event_id"], e["weight"], e["label"], e["multilabel"], e["n_node"], self.offsets(), nodes)


# ----------------------------------------------------------------------------- checksums


def local_sha256(path: str) -> tuple[str, int]:
    """(sha256 hex, bytes) of a local file or directory (see ``tree_sha256``)."""
    if os.path.isfile(path):
        return _file_digest(open(path, "rb")), os.path.getsize(path)
    files = sorted(os.path.relpath(os.path.join(d, f), path).replace(os.sep, "/")
                   for d, _, fs in os.walk(path) for f in fs)
    return tree_sha256((r, open(os.path.join(path, r), "rb")) for r in files), \
        sum(os.path.getsize(os.path.join(path, r)) for r in files)


def _file_digest(fh) -> str:
    h = hashlib.sha256()
    with fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_sha256(files: Iterable[tuple[str, Any]]) -> str:
    """sha256 of a directory: over sorted ``relpath + NUL + sha256(file) + NUL`` lines.

    ``files`` may be a generator: each file is opened only when reached and closed once hashed."""
    h = hashlib.sha256()
    for rel, fh in files:
        h.update(rel.encode() + b"\0" + _file_digest(fh).encode() + b"\0")
    return h.hexdigest()


def remote_sha256(fs, path: str) -> tuple[str, int]:
    """(sha256, bytes) of a shard through fsspec (file or directory, as ``local_sha256``)."""
    if not fs.exists(path):
        raise FileNotFoundError(path)
    if fs.isfile(path):
        return _file_digest(fs.open(path, "rb")), int(fs.size(path))
    found = fs.find(path, detail=True)
    base = path.rstrip("/") + "/"
    rels = sorted((p[len(base):] if p.startswith(base) else p.split(base.lstrip("/"), 1)[-1], p) for p in found)
    return tree_sha256((r, fs.open(p, "rb")) for r, p in rels), sum(int(found[p]["size"]) for _, p in rels)


# ----------------------------------------------------------------------------- Zarr v3


ZARR_EVENT_CHUNK = 4096
ZARR_NODE_CHUNK = 32768


def _zarr_compressors(compression: dict[str, Any]):
    """Codecs after ``bytes`` per dtype; every chunk ends in a crc32c, so a corrupt chunk fails to decode
    (a named StoreError) instead of decoding to other numbers."""
    from zarr.codecs import BloscCodec, BloscShuffle, Crc32cCodec, ZstdCodec

    codec, level = compression.get("codec", "zstd"), int(compression.get("level", 5))
    if codec == "zstd":
        return lambda dtype: [ZstdCodec(level=level), Crc32cCodec()]
    if codec.startswith("blosc-"):
        cname = codec.split("-", 1)[1]
        return lambda dtype: [BloscCodec(cname=cname, clevel=level, typesize=np.dtype(dtype).itemsize,
                                         shuffle=BloscShuffle.shuffle if np.dtype(dtype).itemsize > 1
                                         else BloscShuffle.bitshuffle), Crc32cCodec()]
    if codec == "none":
        return lambda dtype: [Crc32cCodec()]
    raise StoreError(f"unknown zarr codec {codec!r}; use zstd, blosc-zstd, blosc-lz4 or none")


def _zarr_local_store(path: str, read_only: bool):
    from zarr.storage import LocalStore

    return LocalStore(path, read_only=read_only)


def write_zarr(cols: Columns, path: str, compression: dict[str, Any]) -> None:
    """Write a shard as a Zarr v3 group at local ``path``: one sharded array per column."""
    import zarr

    comp = _zarr_compressors(compression)
    group = zarr.open_group(_zarr_local_store(path, False), mode="w", zarr_format=3)
    for part, chunk in ((cols.events, ZARR_EVENT_CHUNK), (cols.nodes, ZARR_NODE_CHUNK)):
        for name, arr in part.items():
            n = arr.shape[0]
            c = min(chunk, max(n, 1))
            shard0 = -(-max(n, 1) // c) * c
            a = group.create_array(name, shape=arr.shape, dtype=arr.dtype, chunks=(c, *arr.shape[1:]),
                                   shards=(shard0, *arr.shape[1:]), compressors=comp(arr.dtype),
                                   fill_value=0)
            a[...] = arr


def _zarr_group(fs, path: str):
    import zarr

    from ..sources.fs import is_local

    if is_local(fs):
        store = _zarr_local_store(path, True)
    else:
        from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
        from zarr.storage import FsspecStore

        # the sync API of any fsspec filesystem (async ones run on fsspec's own loop, which
        # differs from zarr's): wrapped so zarr's event loop calls it in worker threads
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*asynchronous=True.*")
            store = FsspecStore(AsyncFileSystemWrapper(fs), read_only=True, path=path)
    return zarr.open_group(store, mode="r", zarr_format=3)


def open_zarr(fs, path: str) -> dict[str, Any]:
    """The opened column arrays of a Zarr shard (metadata read once; reuse for many range reads)."""
    g = _zarr_group(fs, path)
    return {k: g[k] for k in (*EVENT_COLUMNS, *NODE_COLUMNS)}


def read_zarr(fs, path: str, start: int, stop: int | None, n_node_all: np.ndarray | None,
              arrays: dict[str, Any] | None = None, offsets_all: np.ndarray | None = None) -> Columns:
    """Events ``[start, stop)``; ``arrays`` from :func:`open_zarr` skips re-opening the metadata and
    ``offsets_all`` (``counts_to_offsets(n_node_all)``, cached by the caller) the per-read cumulative sum."""
    g = arrays if arrays is not None else open_zarr(fs, path)
    n_node = n_node_all if n_node_all is not None else g["n_node"][...]
    stop = n_node.shape[0] if stop is None else stop
    off = offsets_all if offsets_all is not None else counts_to_offsets(n_node)
    events = {k: g[k][start:stop] for k in EVENT_COLUMNS if k != "n_node"}
    events["n_node"] = np.asarray(n_node[start:stop])
    nodes = {k: g[k][off[start]:off[stop]] for k in NODE_COLUMNS}
    return Columns({k: events[k] for k in EVENT_COLUMNS}, nodes)


# ----------------------------------------------------------------------------- Parquet

PARQUET_ROW_GROUP = 16384


def _arrow_table(cols: Columns):
    import pyarrow as pa

    off = cols.offsets().astype(np.int32) if cols.n_nodes < 2**31 else cols.offsets()
    list_type = pa.LargeListArray if off.dtype == np.int64 else pa.ListArray
    arrays, names = [], []
    for k, v in cols.events.items():
        if v.ndim == 2:
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1]))
        else:
            arrays.append(pa.array(v))
        names.append(k)
    for k, v in cols.nodes.items():
        arrays.append(list_type.from_arrays(pa.array(off), pa.array(v)))
        names.append(k)
    return pa.Table.from_arrays(arrays, names=names)


def write_parquet(cols: Columns, path: str, compression: dict[str, Any]) -> None:
    """Write a shard as one Parquet file at local ``path``: row per event, list columns for nodes."""
    import pyarrow.parquet as pq

    codec, level = compression.get("codec", "zstd"), compression.get("level", 5)
    bss = bool(compression.get("byte_stream_split", False))
    pq.write_table(_arrow_table(cols), path, row_group_size=PARQUET_ROW_GROUP,
                   compression=codec, compression_level=level if codec in ("zstd", "gzip", "brotli") else None,
                   use_byte_stream_split=bss, write_page_checksum=True,
                   use_dictionary=["label", "type", "btag", "charge"], write_statistics=["event_id"])


def open_parquet(fs, path: str) -> None:
    """No handle: a Parquet range read opens the file and reads its footer itself."""
    return None


def read_parquet(fs, path: str, start: int, stop: int | None, n_node_all: np.ndarray | None,
                 handle: None = None, offsets_all: np.ndarray | None = None) -> Columns:
    """Events ``[start, stop)`` (``n_node_all``, ``handle`` and ``offsets_all`` are unused)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as fh:
        pf = pq.ParquetFile(fh, page_checksum_verification=True)  # pages carry a CRC32 (write_parquet)
        md = pf.metadata
        total = md.num_rows
        stop = total if stop is None else stop
        groups, first, row = [], None, 0
        for i in range(md.num_row_groups):
            n = md.row_group(i).num_rows
            if row + n > start and row < stop:
                groups.append(i)
                first = row if first is None else first
            row += n
        if not groups:
            table = pf.schema_arrow.empty_table()
            first = start
        else:
            table = pf.read_row_groups(groups)
    table = table.slice(start - first, stop - start)
    events = {}
    for k, dt in EVENT_COLUMNS.items():
        col = table.column(k).combine_chunks()
        if k == "multilabel":
            flat = np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=dt)
            events[k] = flat.reshape(len(col), -1) if len(col) else flat.reshape(0, 0)
        else:
            events[k] = col.to_numpy(zero_copy_only=False).astype(dt, copy=False)
    nodes = {}
    for k, dt in NODE_COLUMNS.items():
        col = table.column(k).combine_chunks()
        if isinstance(col, (pa.ListArray, pa.LargeListArray)):
            col = col.flatten()
        nodes[k] = col.to_numpy(zero_copy_only=False).astype(dt, copy=False)
    return Columns(events, nodes)


# ----------------------------------------------------------------------------- metadata limits
# A shard's metadata is data from the store: checked once when the shard is opened, before any
# chunk is read, so that a tiny file cannot ask for gigabytes or for an unexpected decoder.

#: bytes of one decoded Zarr inner chunk (the writer's are 4096 events / 32768 nodes: <= 1.3 MB)
MAX_CHUNK_BYTES = 64 << 20
#: inner chunks per Zarr shard file (its index: 16 bytes each)
MAX_CHUNKS_PER_SHARD = 1 << 20
#: decoded bytes and rows of one Parquet row group / column chunk (the writer's: 16384 events)
MAX_ROW_GROUP_BYTES = 1 << 30
MAX_ROW_GROUP_ROWS = 1 << 22
#: Zarr codecs a shard may use (all of them decode bytes only; no object or pickle codec)
ZARR_CODECS = frozenset({"ShardingCodec", "BytesCodec", "BloscCodec", "ZstdCodec", "GzipCodec", "Crc32cCodec",
                         "TransposeCodec"})


def _codec_names(codecs) -> Iterable[str]:
    for c in codecs:
        yield type(c).__name__
        for inner in ("codecs", "index_codecs"):
            yield from _codec_names(getattr(c, inner, ()) or ())


def check_shard(layout: str, fs, path: str, handle: Any, n_events: int, n_nodes: int, n_labels: int) -> None:
    """Raise :class:`StoreError` unless the shard's metadata matches the manifest and the limits above.

    Zarr (``handle`` from :func:`open_zarr`): per column dtype, rank, length (``n_events`` or ``n_nodes``;
    multilabel ``[n_events, n_labels]``), inner chunk bytes, chunks per shard, codecs. Parquet: rows,
    column types, row-group rows and decoded bytes (the footer only)."""
    if layout == "zarr":
        for name, arr in handle.items():
            dt = EVENT_COLUMNS.get(name) or NODE_COLUMNS[name]
            shape = (n_events, n_labels) if name == "multilabel" else (n_events if name in EVENT_COLUMNS else n_nodes,)
            if np.dtype(arr.dtype) != np.dtype(dt) or tuple(arr.shape) != shape:
                raise StoreError(f"column {name!r}: {arr.dtype} {tuple(arr.shape)}, the manifest implies "
                                 f"{np.dtype(dt)} {shape}")
            chunks, outer = tuple(arr.chunks), tuple(arr.shards or arr.chunks)
            if any(c < 1 for c in chunks) or int(np.prod(chunks, dtype=np.float64)) * np.dtype(dt).itemsize \
                    > MAX_CHUNK_BYTES or np.prod([-(-o // c) for o, c in zip(outer, chunks)], dtype=np.float64) \
                    > MAX_CHUNKS_PER_SHARD:
                raise StoreError(f"column {name!r}: chunks {chunks} / shards {outer} exceed the limits "
                                 f"({MAX_CHUNK_BYTES} bytes per chunk, {MAX_CHUNKS_PER_SHARD} chunks per shard)")
            bad = set(_codec_names(arr.metadata.codecs)) - ZARR_CODECS
            if bad:
                raise StoreError(f"column {name!r}: codecs {sorted(bad)} are not accepted")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as fh:
        pf = pq.ParquetFile(fh)
        md, schema = pf.metadata, pf.schema_arrow
        if md.num_rows != n_events:
            raise StoreError(f"{md.num_rows} rows, the manifest says {n_events} events")
        for name, dt in (*EVENT_COLUMNS.items(), *NODE_COLUMNS.items()):
            want = pa.from_numpy_dtype(dt)
            got = schema.field(name).type if name in schema.names else None
            if name == "multilabel":
                ok = pa.types.is_fixed_size_list(got) and got.value_type == want and got.list_size == n_labels
            elif name in NODE_COLUMNS:
                ok = (pa.types.is_list(got) or pa.types.is_large_list(got)) and got.value_type == want
            else:
                ok = got == want
            if not ok:
                raise StoreError(f"column {name!r} has type {got}, expected {want} ({n_labels} labels)")
        for i in range(md.num_row_groups):
            rg = md.row_group(i)
            if rg.num_rows > MAX_ROW_GROUP_ROWS or rg.total_byte_size > MAX_ROW_GROUP_BYTES or any(
                    rg.column(j).total_uncompressed_size > MAX_ROW_GROUP_BYTES for j in range(rg.num_columns)):
                raise StoreError(f"row group {i}: {rg.num_rows} rows, {rg.total_byte_size} bytes exceed the "
                                 f"limits ({MAX_ROW_GROUP_ROWS} rows, {MAX_ROW_GROUP_BYTES} bytes)")


@dataclass(frozen=True)
class Layout:
    name: str
    suffix: str
    write: Callable[[Columns, str, dict[str, Any]], None]
    read: Callable[..., Columns]  # (fs, path, start, stop, n_node_all, handle=None, offsets_all=None)
    default_compression: dict[str, Any]
    open: Callable[[Any, str], Any]  # (fs, path) -> handle reused by ``read`` for one shard (or None)


LAYOUTS: dict[str, Layout] = {
    # defaults chosen by benchmarks/ingest.py (BENCHMARKS.md): smallest lossless size, writes >> ingestion rate
    "zarr": Layout("zarr", ".zarr", write_zarr, read_zarr, {"codec": "blosc-zstd", "level": 5}, open_zarr),
    "parquet": Layout("parquet", ".parquet", write_parquet, read_parquet,
                      {"codec": "zstd", "level": 5, "byte_stream_split": True}, open_parquet),
}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise StoreError(f"unknown store layout {name!r}; known: {', '.join(LAYOUTS)}") from None
