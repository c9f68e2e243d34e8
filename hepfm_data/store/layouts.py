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

from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import StoreError

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
        from hepfm_data.kernels.features import node_matrix

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


def _compact_metadata(path: str) -> None:
    """Rewrite every zarr.json under local ``path`` without indentation (the same JSON in ~40% fewer
    bytes: one metadata file per column is a visible share of a small shard)."""
    import json

    for d, _, files in sorted(os.walk(path)):
        if "zarr.json" in files:
            p = os.path.join(d, "zarr.json")
            with open(p, "rb") as fh:
                doc = json.load(fh)
            with open(p, "w") as fh:
                json.dump(doc, fh, separators=(",", ":"), allow_nan=True)


def write_zarr(cols: Columns, path: str, compression: dict[str, Any]) -> None:
    """Write a shard as a Zarr v3 group at local ``path``: one sharded array per column (compact metadata)."""
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
    _compact_metadata(path)


def _zarr_group(fs, path: str):
    import zarr

    from hepfm_data.sources.fs import is_local

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


#: zarr.json files larger than this are refused (a tiny file must not ask for gigabytes)
_MAX_META_BYTES = 1 << 20


class ZarrColumn:
    """One column of a Zarr shard read without the zarr API: the sharding codec's inner
    chunks are located through the shard index and decoded by numcodecs directly.

    ``write_zarr`` writes one shard file per column (``<col>/c/0``), inner chunks of
    ``chunk`` rows along axis 0, codecs ``bytes`` (+ ``blosc`` or ``zstd``), index at the end
    ([n_chunks, 2] uint64 offset/size + crc32c). Reading a row range is one byte-range read
    of the chunks it covers plus one decode per chunk (zarr's generic path spends ~90% of a
    shard read outside decompression). Metadata is checked against limits before use.
    """

    def __init__(self, fs, path: str, meta: dict[str, Any]):
        self.fs, self.path = fs, path
        try:
            self.shape = tuple(int(x) for x in meta["shape"])
            self.dtype = np.dtype(meta["data_type"])
            (codec,) = meta["codecs"]
            if codec["name"] != "sharding_indexed" or codec["configuration"].get("index_location", "end") != "end":
                raise _Unsupported(codec["name"])
            conf = codec["configuration"]
            self.chunk_shape = tuple(int(x) for x in conf["chunk_shape"])
            outer = tuple(int(x) for x in meta["chunk_grid"]["configuration"]["chunk_shape"])
            names = [c["name"] for c in conf["codecs"]]
            idx_names = [c["name"] for c in conf["index_codecs"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{path}: malformed zarr.json ({type(exc).__name__}: {exc})") from None
        if self.dtype.kind not in "iuf" or self.dtype.itemsize > 8 or len(self.shape) not in (1, 2):
            raise _Unsupported(str(self.dtype))
        if outer[0] < self.shape[0] or outer[1:] != self.shape[1:] or self.chunk_shape[1:] != self.shape[1:]:
            raise _Unsupported("more than one shard per column")  # not what write_zarr writes
        inner = names[1:]
        self.crc = bool(inner) and inner[-1] == "crc32c"  # each chunk ends in its crc32c (write_zarr)
        inner = inner[:-1] if self.crc else inner
        if names[:1] != ["bytes"] or len(inner) > 1 or idx_names != ["bytes", "crc32c"]:
            raise _Unsupported(",".join(names))
        self.codecs = names
        if any(c.get("configuration", {}).get("endian", "little") != "little"
               for c in conf["codecs"][:1]) or self.chunk_shape[0] < 1:
            raise _Unsupported("endian")
        self.chunk = self.chunk_shape[0]
        self.row_items = int(np.prod(self.shape[1:], dtype=np.int64))
        self.chunk_bytes = self.chunk * self.row_items * self.dtype.itemsize
        # the shard index has one entry per inner chunk of the outer chunk (the shard), used or not
        self.n_chunks = -(-outer[0] // self.chunk) if self.shape[0] else 0
        if self.chunk_bytes > MAX_CHUNK_BYTES or self.n_chunks > MAX_CHUNKS_PER_SHARD or self.shape[0] > 1 << 40:
            raise StoreError(f"column {path.rsplit('/', 1)[-1]!r} ({path}): chunks of {self.chunk_bytes} bytes x "
                             f"{self.n_chunks} or shape {self.shape} "
                             f"exceed the limits ({MAX_CHUNK_BYTES} bytes per chunk, {MAX_CHUNKS_PER_SHARD} chunks per shard)")
        self.decode = _decoder(inner[0] if inner else None)
        self._index: np.ndarray | None = None
        self._file = f"{path}/c/0" + ("/0" * (len(self.shape) - 1))
        self._local = _local_path(fs, self._file)

    def index(self) -> np.ndarray:
        """[n_chunks, 2] uint64 (offset, nbytes) of the inner chunks, read once."""
        if self._index is None:
            try:
                size = int(self.fs.size(self._file))
            except FileNotFoundError:  # zarr writes no shard file when every chunk is the fill value
                self._index = np.full((self.n_chunks, 2), _EMPTY, np.uint64)
                return self._index
            nbytes = self.n_chunks * 16 + 4
            if size < nbytes:
                raise StoreError(f"{self._file}: {size} bytes, too short for its {self.n_chunks}-chunk index")
            raw = self.fs.cat_file(self._file, start=size - nbytes, end=size - 4)
            idx = np.frombuffer(raw, "<u8").reshape(self.n_chunks, 2)
            ok = (idx[:, 0] == _EMPTY) | ((idx[:, 0] + idx[:, 1] <= size - nbytes) & (idx[:, 1] < 1 << 31))
            if not ok.all():
                raise StoreError(f"{self._file}: shard index points outside the file (chunk {int(np.argmin(ok))})")
            self._index = idx
        return self._index

    def read(self, lo: int, hi: int) -> np.ndarray:
        """Rows ``[lo, hi)`` as a new array."""
        c0, c1 = lo // self.chunk, -(-hi // self.chunk)
        idx = self.index()[c0:c1] if hi > lo else np.zeros((0, 2), np.uint64)
        full = idx[:, 0] != _EMPTY
        out = (np.empty if full.all() else np.zeros)((hi - lo, *self.shape[1:]), self.dtype)
        if hi <= lo:
            return out
        if full.any():
            a = int(idx[full, 0].min())
            b = int((idx[full, 0] + idx[full, 1]).max())
            buf = memoryview(self._range(a, b))
        flat = out.reshape(-1).view(np.uint8)
        row_bytes = self.row_items * self.dtype.itemsize
        for j, (off, n) in enumerate(idx.tolist()):
            if off == _EMPTY:
                continue  # fill value 0
            raw = self.decode(self._checked(buf[off - a:off - a + n], c0 + j))
            if len(raw) != self.chunk_bytes:
                raise StoreError(f"{self._file}: chunk {c0 + j} decodes to {len(raw)} bytes, expected {self.chunk_bytes}")
            r0 = (c0 + j) * self.chunk
            s, e = max(lo, r0), min(hi, r0 + self.chunk)
            flat[(s - lo) * row_bytes:(e - lo) * row_bytes] = np.frombuffer(raw, np.uint8)[
                (s - r0) * row_bytes:(e - r0) * row_bytes]
        return out

    def _range(self, a: int, b: int) -> bytes:
        """Bytes ``[a, b)`` of the column's shard file: one ``pread`` when local (the loader reads
        a shard in blocks: fsspec's open per call cost ~0.3 ms, a quarter of a block read), else fsspec."""
        if self._local is None:
            return self.fs.cat_file(self._file, start=a, end=b)
        fd = os.open(self._local, os.O_RDONLY)
        try:
            out = os.pread(fd, b - a, a)
            while len(out) < b - a:  # a short read: continue (ends at end of file, like cat_file)
                more = os.pread(fd, b - a - len(out), a + len(out))
                if not more:
                    break
                out += more
            return out
        finally:
            os.close(fd)

    def _checked(self, chunk: memoryview, j: int) -> memoryview:
        """The chunk's bytes without its trailing crc32c, which must match (else a named StoreError)."""
        if not self.crc:
            return chunk
        import google_crc32c

        if len(chunk) < 4 or np.uint32(google_crc32c.value(np.frombuffer(chunk, np.uint8)[:-4])).tobytes() != bytes(chunk[-4:]):
            raise StoreError(f"{self._file}: chunk {j} fails its crc32c check (corrupt bytes)")
        return chunk[:-4]

    def __getitem__(self, key) -> np.ndarray:  # ``col[...]`` / ``col[a:b]`` like a zarr array
        if key is Ellipsis:
            return self.read(0, self.shape[0])
        a, b, _ = key.indices(self.shape[0])
        return self.read(a, b)


_EMPTY = np.uint64(2**64 - 1)


def _local_path(fs, path: str) -> str | None:
    """The OS path of ``path`` when ``fs`` is fsspec's local filesystem, else None."""
    from hepfm_data.sources.fs import is_local

    return fs._strip_protocol(path) if is_local(fs) else None


class _Unsupported(Exception):
    """Metadata the direct reader does not handle (the zarr API reads it)."""


def _decoder(name: str | None) -> Callable[[Any], bytes]:
    if name is None:
        return bytes
    if name == "blosc":
        from numcodecs import blosc

        return blosc.decompress
    if name == "zstd":
        from numcodecs import Zstd

        z = Zstd()
        return z.decode
    raise _Unsupported(name)


def _read_meta(fs, path: str) -> dict[str, Any]:
    import json

    raw = fs.cat_file(f"{path}/zarr.json")
    if len(raw) > _MAX_META_BYTES:
        raise StoreError(f"{path}/zarr.json: {len(raw)} bytes, more than metadata may hold")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise StoreError(f"{path}/zarr.json: not JSON ({exc})") from None


class ZarrShard(dict):
    """Opened columns of one Zarr shard, ``name -> ZarrColumn``, each opened (metadata read)
    on first use — planning reads only ``n_node`` of a thousand shards — plus the node
    offset at each inner event chunk."""

    chunk_nodes: np.ndarray | None = None  # [n_event_chunks + 1] node offset at each event-chunk start
    #: (n_events, n_nodes, n_labels) from the manifest, set by :func:`check_shard`: every column opened
    #: later is checked against it before any chunk of it is read
    expect: tuple[int, int, int] | None = None

    def __init__(self, fs, path: str):
        super().__init__()
        self.fs, self.path = fs, path

    def __missing__(self, key: str):
        if key not in EVENT_COLUMNS and key not in NODE_COLUMNS:
            raise KeyError(key)
        try:
            col = ZarrColumn(self.fs, f"{self.path}/{key}", _read_meta(self.fs, f"{self.path}/{key}"))
        except _Unsupported:  # metadata write_zarr does not write: this column through the zarr API
            col = _ApiColumn(_zarr_group(self.fs, self.path)[key])
        if self.expect is not None:
            _check_zarr_column(key, col, *self.expect)
        self[key] = col
        return col

    def node_offset(self, row: int, n_node_from_chunk: np.ndarray) -> int:
        """Node offset of event ``row``; ``n_node_from_chunk``: n_node from the start of row's chunk."""
        col = self["n_node"]
        if self.chunk_nodes is None:
            n = col[...]
            c = col.chunk
            self.chunk_nodes = np.concatenate([[0], np.cumsum(np.add.reduceat(n.astype(np.int64), np.arange(0, len(n), c))
                                                             if len(n) else [])]).astype(np.int64)
        c0 = row // col.chunk
        return int(self.chunk_nodes[c0]) + int(n_node_from_chunk[:row - c0 * col.chunk].sum(dtype=np.int64))


class _ApiColumn:
    """A column read through the zarr API (``read(lo, hi)`` like :class:`ZarrColumn`)."""

    def __init__(self, array):
        self.array, self.shape = array, array.shape

    def read(self, lo: int, hi: int) -> np.ndarray:
        return np.asarray(self.array[lo:hi])

    def __getitem__(self, key) -> np.ndarray:
        return self.array[key]


def open_zarr(fs, path: str) -> dict[str, Any]:
    """The column arrays of a Zarr shard, opened lazily (metadata read once; reuse for many range
    reads). The direct reader when ``n_node`` has the metadata ``write_zarr`` writes, else zarr's."""
    out = ZarrShard(fs, path)
    try:
        out["n_node"] = ZarrColumn(fs, f"{path}/n_node", _read_meta(fs, f"{path}/n_node"))
    except _Unsupported:
        g = _zarr_group(fs, path)
        return {k: g[k] for k in (*EVENT_COLUMNS, *NODE_COLUMNS)}
    return out


def read_zarr(fs, path: str, start: int, stop: int | None, n_node_all: np.ndarray | None,
              arrays: dict[str, Any] | None = None, offsets_all: np.ndarray | None = None) -> Columns:
    """Events ``[start, stop)``; ``arrays`` from :func:`open_zarr` skips re-opening the metadata.

    Direct path (:class:`ZarrColumn`): the n_node chunks covering the range give the node
    range (the shard's per-chunk node offsets are computed once per handle), then every column
    decodes only the inner chunks it needs. ``n_node_all`` / ``offsets_all`` serve the zarr-API
    fallback."""
    g = arrays if arrays is not None else open_zarr(fs, path)
    if isinstance(g, ZarrShard):
        col = g["n_node"]
        stop = col.shape[0] if stop is None else stop
        lo = start // col.chunk * col.chunk
        n_from = col.read(lo, stop)
        a = g.node_offset(start, n_from)
        n_node = np.ascontiguousarray(n_from[start - lo:])
        b = a + int(n_node.sum(dtype=np.int64))
        events = {k: (n_node if k == "n_node" else g[k].read(start, stop)) for k in EVENT_COLUMNS}
        nodes = {k: g[k].read(a, b) for k in NODE_COLUMNS}
        return Columns(events, nodes)
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
#: Zarr codecs a shard may use (all of them decode bytes to numbers only; no object or pickle codec).
#: PCodec (numcodecs.pcodec: pcodec's numerical decoder) serves record columns.
ZARR_CODECS = frozenset({"ShardingCodec", "BytesCodec", "BloscCodec", "ZstdCodec", "GzipCodec", "Crc32cCodec",
                         "TransposeCodec", "PCodec"})


def _codec_names(codecs) -> Iterable[str]:
    for c in codecs:
        yield type(c).__name__
        for inner in ("codecs", "index_codecs"):
            yield from _codec_names(getattr(c, inner, ()) or ())


def _check_zarr_column(name: str, arr: Any, n_events: int, n_nodes: int, n_labels: int) -> None:
    """One Zarr column (a zarr array, :class:`ZarrColumn` or :class:`_ApiColumn`) against the
    manifest's counts and the limits above; ``ZarrColumn`` checked its chunk limits and codecs
    when it parsed its metadata."""
    dt = EVENT_COLUMNS.get(name) or NODE_COLUMNS[name]
    shape = (n_events, n_labels) if name == "multilabel" else (n_events if name in EVENT_COLUMNS else n_nodes,)
    if isinstance(arr, _ApiColumn):
        arr = arr.array
    if np.dtype(arr.dtype) != np.dtype(dt) or tuple(arr.shape) != shape:
        raise StoreError(f"column {name!r}: {arr.dtype} {tuple(arr.shape)}, the manifest implies "
                         f"{np.dtype(dt)} {shape}")
    if isinstance(arr, ZarrColumn):
        return
    chunks, outer = tuple(arr.chunks), tuple(arr.shards or arr.chunks)
    if any(c < 1 for c in chunks) or int(np.prod(chunks, dtype=np.float64)) * np.dtype(dt).itemsize \
            > MAX_CHUNK_BYTES or np.prod([-(-o // c) for o, c in zip(outer, chunks)], dtype=np.float64) \
            > MAX_CHUNKS_PER_SHARD:
        raise StoreError(f"column {name!r}: chunks {chunks} / shards {outer} exceed the limits "
                         f"({MAX_CHUNK_BYTES} bytes per chunk, {MAX_CHUNKS_PER_SHARD} chunks per shard)")
    bad = set(_codec_names(arr.metadata.codecs)) - ZARR_CODECS
    if bad:
        raise StoreError(f"column {name!r}: codecs {sorted(bad)} are not accepted")


def check_shard(layout: str, fs, path: str, handle: Any, n_events: int, n_nodes: int, n_labels: int) -> None:
    """Raise :class:`StoreError` unless the shard's metadata matches the manifest and the limits above.

    Zarr (``handle`` from :func:`open_zarr`): per column dtype, rank, length (``n_events`` or ``n_nodes``;
    multilabel ``[n_events, n_labels]``), inner chunk bytes, chunks per shard, codecs. Parquet: rows,
    column types, row-group rows and decoded bytes (the footer only)."""
    if layout == "zarr":
        if isinstance(handle, ZarrShard):  # columns open lazily: each is checked when it opens
            handle.expect = (n_events, n_nodes, n_labels)
        for name, arr in list(handle.items()):
            _check_zarr_column(name, arr, n_events, n_nodes, n_labels)
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
