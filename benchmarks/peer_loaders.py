"""Peer loaders vs hepfm's loader: the same train events into the same packed batches, in the same run.

    /work/peers/bin/python benchmarks/peer_loaders.py [--events 50000] [--batch 512] [--workers 0 2]
        [--repeats 3] [--peer-shards 8] [--peers litdata,litdata_sdl,mosaic,webdataset,weaver] [--root DIR]

Run it with an interpreter that has the peers installed *beside* hepfm, never into the project's
environment and never as package dependencies, e.g. a venv that sees the project's site-packages::

    python3 -m venv /work/peers
    echo <project venv>/lib/python3.11/site-packages > /work/peers/lib/python3.11/site-packages/hepfm_base.pth
    /work/peers/bin/pip install webdataset weaver-core   # litdata, streaming-community: see BENCHMARKS.md

The script puts its own checkout first on ``sys.path`` (the measured ``hepfm_data`` is the one beside it).

It builds (or reuses, ``--root``) the Zarr stores of ``benchmarks/loader.py`` (synthetic events, two
processes), reads the train split once through hepfm's loader unshuffled into packed node arrays (nodes
[N, 7] float32 + per-event n_node, label, weight, event id: the paper representation, with the loader's
own labels and mixing weights), and converts those arrays, untimed but timed apart, into each peer's own
format in ``--peer-shards`` shards/chunks/files:

* LitData: ``litdata.optimize`` chunks (one item per event: ``nodes`` ndarray, label, weight, event id),
  read by ``litdata.StreamingDataset(shuffle=True)`` through a torch DataLoader (``litdata``) and through
  LitData's own ``StreamingDataLoader`` subclass (``litdata_sdl``: resumable; much slower with workers);
* MosaicML Streaming (``streaming``; the ``streaming-community`` continuation installs the same module):
  ``MDSWriter`` shards (``ndarray:float32`` nodes), read by ``streaming.StreamingDataset(shuffle=True)``;
* WebDataset: tar shards (``nodes.npy`` + ``meta.pyd`` per event), read by ``wds.WebDataset`` with shard
  shuffle, a 5000-event shuffle buffer, ``.decode()`` and ``.batched`` in the workers;
* weaver-core: it reads only ROOT / HDF5 / awkd / Parquet through a data-config YAML, so a Parquet file
  per shard (one list<float32> column per feature) read by ``weaver.utils.dataset.SimpleIterDataset``
  (training mode: per-file fetch, shuffle; inputs padded to the longest event, as weaver does), the
  padded [B, 7, L] batch then packed back through the n_node mask.

Each contender's torch ``DataLoader`` (batch 512, shuffle on, ``--workers`` 0 and 2, persistent workers)
yields one epoch of the train events packed into hepfm's ``HostBatch`` (nodes [N, 7] + n_node [B] + labels,
weights, event ids): the peers pack in their collate function (in the workers); hepfm's loader is
``make_loader(device="cpu")``'s own DataLoader (workers pack, the main process unpacks the one-buffer
batch; the edges a ``GraphBatch`` would add are left out for every contender). The raw read
(``Store.read_shard`` of every train shard) is the limit they are measured against. A warm-up epoch of
each checks that it delivers every event once with the same nodes, labels and weights. Then ``--repeats`` rounds interleave all
contenders (a shared machine is noisy) and the best epoch of each is kept: events/s of wall-clock time and
per CPU-second of the main process and its workers together, with ratios to hepfm's loader (same workers)
and to the raw read. Prints a markdown table, with each peer's conversion time and size on disk.
"""

from __future__ import annotations

import argparse
import glob
import math
import multiprocessing
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path[:1]:
    sys.path.insert(0, str(ROOT))  # this checkout's hepfm_data, not an installed one

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.loader import PROCESSES, build  # noqa: E402
from hepfm_data.batches import HostBatch  # noqa: E402

PEERS = ("litdata", "litdata_sdl", "mosaic", "webdataset", "weaver")
FORMAT_OF = {"litdata_sdl": "litdata"}  # contenders that read another contender's copy
LABELS = {"hepfm": "hepfm `make_loader` (Zarr store)", "litdata": "LitData (`optimize` chunks)",
          "litdata_sdl": "LitData, its `StreamingDataLoader`", "mosaic": "MosaicML Streaming (MDS shards)",
          "webdataset": "WebDataset (tar shards)", "weaver": "weaver-core (Parquet)"}
SHUFFLE_BUFFER = 5000  # webdataset's in-worker sample shuffle buffer
_MDS: dict = {}  # local directory -> its streaming.StreamingDataset


# ---------------------------------------------------------------------------------------- measuring

def _descendants(pid: int) -> list[int]:
    out = []
    for f in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            kids = [int(x) for x in open(f).read().split()]
        except OSError:
            continue
        for k in kids:
            out += [k, *_descendants(k)]
    return out


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its descendants: live ones from /proc, reaped ones
    from ``RUSAGE_CHILDREN`` (a difference of two readings counts each child's CPU in between once)."""
    tick = os.sysconf("SC_CLK_TCK")
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = time.process_time() + ru.ru_utime + ru.ru_stime
    for pid in _descendants(os.getpid()):
        try:
            rest = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(rest[11]) + int(rest[12])) / tick
        except (OSError, IndexError):
            pass
    return total


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    mem = next((int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemTotal")), 0)
    return (f"{os.cpu_count()} cores (nproc {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}), "
            f"{cpu}, {mem / 2**20:.0f} GiB RAM, {platform.system()} {platform.release()}")


def ratio(x: float) -> str:
    """Two significant figures below 0.1 (a peer at 0.004 of hepfm is not 0.00)."""
    return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"


def loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def du_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20


# ---------------------------------------------------------------------------------------- packing

def host_batch(nodes: np.ndarray, n_node: np.ndarray, labels, weights, event_id) -> HostBatch:
    return HostBatch(nodes=torch.from_numpy(np.ascontiguousarray(nodes, dtype=np.float32)),
                     n_node=torch.from_numpy(np.asarray(n_node, dtype=np.int64)),
                     labels=torch.from_numpy(np.asarray(labels, dtype=np.int64)),
                     weights=torch.from_numpy(np.asarray(weights, dtype=np.float32)),
                     event_id=torch.from_numpy(np.asarray(event_id, dtype=np.int64)))


def pack_dicts(items: list[dict]) -> HostBatch:
    """LitData / MDS items (one dict per event) -> HostBatch."""
    arrs = [np.asarray(it["nodes"], dtype=np.float32).reshape(-1, 7) for it in items]
    return host_batch(np.concatenate(arrs), [len(a) for a in arrs], [int(it["label"]) for it in items],
                      [float(it["weight"]) for it in items], [int(it["event_id"]) for it in items])


def pack_wds(items: list[tuple]) -> HostBatch:
    """webdataset (nodes.npy, meta.pyd) samples -> HostBatch."""
    arrs = [x[0] for x in items]
    meta = np.array([x[1] for x in items], dtype=np.float64)
    return host_batch(np.concatenate(arrs), [len(a) for a in arrs], meta[:, 0].astype(np.int64), meta[:, 1],
                      meta[:, 2].astype(np.int64))


def pack_weaver(items: list[tuple]) -> HostBatch:
    """weaver (X, y, Z) samples, nodes padded to [7, L] -> HostBatch through the n_node mask."""
    padded = np.stack([x["nodes"] for x, _, _ in items])  # [B, 7, L]
    n = np.array([z["n_node"] for _, _, z in items], dtype=np.int64)
    mask = np.arange(padded.shape[2])[None, :] < n[:, None]
    return host_batch(padded.transpose(0, 2, 1)[mask], n, [y["label"] for _, y, _ in items],
                      [z["weight"] for _, _, z in items], [z["event_id"] for _, _, z in items])


def epoch(it) -> tuple[int, int]:
    """(events, nodes) of one pass; hepfm's worker batches arrive as one buffer and are unpacked here."""
    from hepfm_data.batches.base import PackedBatch

    ev = nn = 0
    for b in it:
        if isinstance(b, PackedBatch):
            b = b.unpack()
        ev += int(b.n_node.shape[0])
        nn += int(b.nodes.shape[0])
    return ev, nn


def event_sums(nodes: np.ndarray, n_node: np.ndarray) -> np.ndarray:
    """Sum of every feature of each event's nodes (float64): a per-event fingerprint of the node arrays."""
    owner = np.repeat(np.arange(len(n_node)), n_node)
    return np.bincount(owner, weights=nodes.astype(np.float64).sum(axis=1), minlength=len(n_node))


def check(name: str, it, ref: dict) -> None:
    """Every event once, with its nodes (row sums per event), label and weight."""
    from hepfm_data.batches.base import PackedBatch

    ids, sums, labels, weights = [], [], [], []
    for b in it:
        if isinstance(b, PackedBatch):
            b = b.unpack()
        sums.append(event_sums(b.nodes.numpy(), b.n_node.numpy()))
        ids.append(b.event_id.numpy())
        labels.append(b.labels.numpy())
        weights.append(b.weights.numpy())
    ids = np.concatenate(ids)
    order = np.argsort(ids)
    ok = (np.array_equal(ids[order], ref["ids_sorted"])
          and np.allclose(np.concatenate(sums)[order], ref["sums"], rtol=1e-6, atol=1e-4)
          and np.array_equal(np.concatenate(labels)[order], ref["labels"])
          and np.allclose(np.concatenate(weights)[order], ref["weights"], rtol=1e-6))
    if not ok:
        raise SystemExit(f"{name}: the events differ from the store's ({len(ids)} seen, {len(ref['ids_sorted'])} expected)")


# ---------------------------------------------------------------------------------------- the events

def export(urls: list[str]) -> dict:
    """The train events as hepfm's loader reads them, unshuffled: packed nodes + per-event arrays."""
    from hepfm_data.loader import StreamingDataset

    ds = StreamingDataset(urls, build_edges=False, shuffle=False, batch_size=8192, seed=0)
    parts = list(ds)
    ev = {"nodes": np.concatenate([b.nodes.numpy() for b in parts]).astype(np.float32),
          "n_node": np.concatenate([b.n_node.numpy() for b in parts]).astype(np.int64),
          "labels": np.concatenate([b.labels.numpy() for b in parts]).astype(np.int64),
          "weights": np.concatenate([b.weights.numpy() for b in parts]).astype(np.float32),
          "ids": np.concatenate([b.event_id.numpy() for b in parts]).astype(np.int64)}
    ev["offsets"] = np.concatenate([[0], np.cumsum(ev["n_node"])]).astype(np.int64)
    order = np.argsort(ev["ids"])
    sums = event_sums(ev["nodes"], ev["n_node"])
    ev["ref"] = {"ids_sorted": ev["ids"][order], "sums": sums[order], "labels": ev["labels"][order],
                 "weights": ev["weights"][order]}
    return ev


def ranges(n: int, k: int) -> list[tuple[int, int]]:
    step = math.ceil(n / k)
    return [(a, min(n, a + step)) for a in range(0, n, step)]


def events_of(ev: dict, a: int, b: int):
    """(nodes [n, 7], label, weight, event id) of events [a, b)."""
    off = ev["offsets"]
    for i in range(a, b):
        yield ev["nodes"][off[i]:off[i + 1]], int(ev["labels"][i]), float(ev["weights"][i]), int(ev["ids"][i])


def _litdata_fn(part):
    nodes, n_node, labels, weights, ids = part
    off = np.concatenate([[0], np.cumsum(n_node)])
    for i in range(len(n_node)):
        yield {"nodes": nodes[off[i]:off[i + 1]], "label": int(labels[i]), "weight": float(weights[i]),
               "event_id": int(ids[i])}


def import_streaming():
    """``import streaming`` (MosaicML Streaming). Its package ``__init__`` imports ``streaming.vision``, which
    imports torchvision; PyPI's torchvision wheels link the CUDA libtorch and do not load beside a CPU-only
    torch, so when torchvision cannot be imported a stand-in module with the two names ``streaming.vision``
    imports takes its place (its vision datasets are not used here)."""
    import importlib
    import types

    try:
        import torchvision  # noqa: F401
    except Exception:
        for k in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[k]
        # transformers probes for torchvision: import what streaming needs from it before the stand-in exists
        importlib.import_module("transformers.feature_extraction_utils")
        importlib.import_module("transformers.tokenization_utils_base")
        tv, ds, tr, fn = (types.ModuleType(n) for n in ("torchvision", "torchvision.datasets", "torchvision.transforms",
                                                         "torchvision.transforms.functional"))

        class VisionDataset:  # noqa: D401 - stand-in
            """Stand-in: torchvision is not importable here."""

        def unavailable(*a, **k):
            raise ImportError("torchvision is not importable with this torch")

        ds.VisionDataset, ds.CIFAR10, fn.to_tensor = VisionDataset, unavailable, unavailable
        tv.datasets, tv.transforms, tr.functional = ds, tr, fn
        sys.modules.update({m.__name__: m for m in (tv, ds, tr, fn)})
    return importlib.import_module("streaming")


def convert(peer: str, ev: dict, out: Path, shards: int) -> None:
    """Write the events in ``peer``'s own format under ``out`` (``shards`` shards / chunks / files)."""
    n = len(ev["n_node"])
    parts = ranges(n, shards)
    if peer == "litdata":
        import litdata

        inputs = [(ev["nodes"][ev["offsets"][a]:ev["offsets"][b]], ev["n_node"][a:b], ev["labels"][a:b],
                   ev["weights"][a:b], ev["ids"][a:b]) for a, b in parts]
        method = multiprocessing.get_start_method(allow_none=True)
        try:
            litdata.optimize(fn=_litdata_fn, inputs=inputs, output_dir=str(out), chunk_size=math.ceil(n / shards),
                             num_workers=1, mode="overwrite", verbose=False)
        finally:  # optimize sets the global start method (spawn) for good: the readers below keep the default
            multiprocessing.set_start_method(method, force=True)
    elif peer == "mosaic":
        streaming = import_streaming()
        total = ev["nodes"].nbytes + 64 * n
        cols = {"nodes": "ndarray:float32", "label": "int64", "weight": "float32", "event_id": "int64"}
        with streaming.MDSWriter(out=str(out), columns=cols, size_limit=math.ceil(total / shards) + 4096) as w:
            for nodes, label, weight, eid in events_of(ev, 0, n):
                w.write({"nodes": nodes, "label": label, "weight": np.float32(weight), "event_id": eid})
    elif peer == "webdataset":
        import webdataset as wds

        out.mkdir(parents=True, exist_ok=True)
        with wds.ShardWriter(str(out / "events-%04d.tar"), maxcount=math.ceil(n / shards), verbose=0) as w:
            for nodes, label, weight, eid in events_of(ev, 0, n):
                w.write({"__key__": f"{eid:016d}", "nodes.npy": nodes, "meta.pyd": (label, weight, eid)})
    elif peer == "weaver":
        import pyarrow as pa
        import pyarrow.parquet as pq

        out.mkdir(parents=True, exist_ok=True)
        for k, (a, b) in enumerate(parts):
            o = ev["offsets"][a:b + 1] - ev["offsets"][a]
            x = ev["nodes"][ev["offsets"][a]:ev["offsets"][b]]
            cols = {f"f{j}": pa.ListArray.from_arrays(pa.array(o.astype(np.int32)), pa.array(x[:, j])) for j in range(7)}
            cols.update(n_node=pa.array(ev["n_node"][a:b]), label=pa.array(ev["labels"][a:b]),
                        weight=pa.array(ev["weights"][a:b]), event_id=pa.array(ev["ids"][a:b]))
            pq.write_table(pa.table(cols), out / f"events-{k:04d}.parquet")
        length = int(ev["n_node"].max())
        feats = "\n".join(f"      - [f{j}, null]" for j in range(7))
        (out / "data.yaml").write_text(f"""selection: null
new_variables: {{}}
preprocess:
  method: manual
  data_fraction: 0.1
inputs:
  nodes:
    length: {length}
    pad_mode: constant
    vars:
{feats}
labels:
  type: custom
  value:
    label: label
observers: []
monitor_variables: [n_node, weight, event_id]
weights: null
""")
    else:
        raise ValueError(peer)


def reader(peer: str, out: Path, workers: int, batch: int, seed: int):
    """An iterable over one epoch of HostBatches from ``peer``'s copy under ``out``."""
    from torch.utils.data import DataLoader

    kw = dict(num_workers=workers, persistent_workers=workers > 0)
    if peer in ("litdata", "litdata_sdl"):
        import litdata

        ds = litdata.StreamingDataset(str(out), shuffle=True, seed=seed)
        loader = litdata.StreamingDataLoader if peer == "litdata_sdl" else DataLoader
        return loader(ds, batch_size=batch, collate_fn=pack_dicts, **kw)
    if peer == "mosaic":
        streaming = import_streaming()
        if str(out) not in _MDS:  # streaming allows one StreamingDataset per local directory and process
            _MDS[str(out)] = streaming.StreamingDataset(local=str(out), shuffle=True, shuffle_seed=seed, batch_size=batch)
        ds = _MDS[str(out)]
        return DataLoader(ds, batch_size=batch, collate_fn=pack_dicts, **kw)
    if peer == "webdataset":
        import webdataset as wds

        urls = sorted(str(p) for p in out.glob("*.tar"))
        pipe = (wds.WebDataset(urls, shardshuffle=len(urls), seed=seed, empty_check=False)
                .shuffle(SHUFFLE_BUFFER).decode().to_tuple("nodes.npy", "meta.pyd")
                .batched(batch, collation_fn=pack_wds, partial=True))
        return DataLoader(pipe, batch_size=None, **kw)
    if peer == "weaver":
        from weaver.utils.dataset import SimpleIterDataset

        files = sorted(str(p) for p in out.glob("*.parquet"))
        ds = SimpleIterDataset({"events": files}, str(out / "data.yaml"), for_training=True, fetch_by_files=True,
                               fetch_step=1, name="train")
        return DataLoader(ds, batch_size=batch, collate_fn=pack_weaver, **kw)
    raise ValueError(peer)


def version(peer: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as v

    for dist in {"litdata": ("litdata",), "litdata_sdl": ("litdata",), "mosaic": ("mosaicml-streaming", "streaming-community"),
                 "webdataset": ("webdataset",), "weaver": ("weaver-core",)}[peer]:
        try:
            return f"{dist} {v(dist)}"
        except PackageNotFoundError:
            continue
    return "?"


# ---------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000, help="events before the train/val/test split")
    ap.add_argument("--events-per-shard", type=int, default=25_000, help="hepfm store shard size")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--window-blocks", type=int, default=8, help="hepfm loader windows (blocks shuffled together)")
    ap.add_argument("--peer-shards", type=int, default=8, help="shards / chunks / files of each peer's copy")
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--repeats", type=int, default=3, help="measured epochs per contender (best is kept)")
    ap.add_argument("--root", type=Path, default=None, help="keep/reuse the stores and the peers' copies here")
    args = ap.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    for p in peers:
        if p not in PEERS:
            ap.error(f"unknown peer {p!r}; known: {', '.join(PEERS)}")

    import logging
    import warnings

    from hepfm_data.loader import make_loader
    from hepfm_data.store import open_store

    logging.getLogger("weaver").setLevel(logging.WARNING)
    logging.getLogger("litdata").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load0 = loadavg()
    work = args.root or Path(tempfile.mkdtemp(prefix="hepfm-bench-peers-"))
    try:
        build(work, args.events, args.events_per_shard, layouts=("zarr",))
        urls = [str(work / "zarr" / p) for p in PROCESSES]
        stores = [open_store(u) for u in urls]
        ev = export(urls)
        n_train, n_nodes = len(ev["n_node"]), len(ev["nodes"])
        print(f"machine: {machine()}")
        print(f"date: {started}; load average at start {load0}")
        print(f"store: {n_train} train events, {n_nodes / n_train:.2f} nodes/event x 7 features, {len(PROCESSES)} processes, "
              f"{sum(len(s.shards('train')) for s in stores)} train shards, Zarr under {work}")
        hepfm_mib = sum(du_mib(Path(u)) for u in urls)

        conv = {}
        for peer in dict.fromkeys(FORMAT_OF.get(p, p) for p in peers):
            out = work / "peers" / peer
            if out.exists() and any(out.iterdir()) and (out / ".done").exists():
                conv[peer] = (float((out / ".done").read_text()), du_mib(out))
                continue
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            convert(peer, ev, out, args.peer_shards)
            dt = time.perf_counter() - t
            size = du_mib(out)
            (out / ".done").write_text(f"{dt:.3f}")
            conv[peer] = (dt, size)
            print(f"converted for {version(peer)}: {dt:.1f} s, {size:.1f} MiB")

        def raw():
            for s in stores:
                for info in s.shards("train"):
                    s.read_shard(info)
            return n_train, n_nodes

        contenders = {}  # name -> iterable of one epoch
        kw = dict(batch_size=args.batch, seed=0, window_blocks=args.window_blocks)
        for w in args.workers:
            contenders["hepfm", w] = make_loader(urls, device="cpu", num_workers=w, **kw).loader
            for peer in peers:
                contenders[peer, w] = reader(peer, work / "peers" / FORMAT_OF.get(peer, peer), w, args.batch, 0)

        raw()
        for name, it in contenders.items():  # warm-up: page cache, imports, JIT, persistent workers; and the check
            check(f"{name[0]} ({name[1]} workers)", it, ev["ref"])
        wall = {k: [] for k in [*contenders, "raw"]}
        cpu = {k: [] for k in wall}

        def measure(key, fn):
            t, c = time.perf_counter(), cpu_seconds()
            got = fn()
            dt, dc = time.perf_counter() - t, cpu_seconds() - c
            if got != (n_train, n_nodes):
                raise SystemExit(f"{key}: an epoch gave {got} (events, nodes), expected {(n_train, n_nodes)}")
            wall[key].append(n_train / dt)
            cpu[key].append(n_train / max(dc, 1e-9))

        for _ in range(args.repeats):
            measure("raw", raw)
            for key, it in contenders.items():
                measure(key, lambda it=it: epoch(it))
        load1 = loadavg()
        best = {k: max(v) for k, v in wall.items()}
        best_cpu = {k: max(v) for k, v in cpu.items()}

        print(f"\nload average at end {load1}; best of {args.repeats} interleaved epochs; batch {args.batch}, shuffle on; "
              f"{n_train} train events into HostBatch (nodes [N, 7] + n_node [B] + labels, weights, event ids)\n")
        print("| loader (format) | workers | events/s (wall) | events/CPU-s | vs hepfm, wall | vs hepfm, CPU | "
              "CPU vs raw read | conversion | on disk |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| raw read (`Store.read_shard`, Zarr) | 0 | {best['raw']:,.0f} | {best_cpu['raw']:,.0f} | | | 1.00 | "
              f"(store build) | {hepfm_mib:.1f} MiB |")
        for w in args.workers:
            h, hc = best["hepfm", w], best_cpu["hepfm", w]
            for name in ("hepfm", *peers):
                k = (name, w)
                dt, size = (None, hepfm_mib) if name == "hepfm" else conv[FORMAT_OF.get(name, name)]
                print(f"| {LABELS[name]} | {w} | {best[k]:,.0f} | {best_cpu[k]:,.0f} | {ratio(best[k] / h)} | "
                      f"{ratio(best_cpu[k] / hc)} | {ratio(best_cpu[k] / best_cpu['raw'])} | "
                      f"{'—' if dt is None else f'{dt:.1f} s'} | {size:.1f} MiB |")
        versions = ", ".join(dict.fromkeys(version(p) for p in peers))
        print(f"\npeers: {versions}; torch {torch.__version__}, numpy {np.__version__}, Python {platform.python_version()}")
        print("per round, events/s wall: " + "; ".join(f"{k if isinstance(k, str) else f'{k[0]}/{k[1]}'} "
                                                        f"{[round(x) for x in v]}" for k, v in wall.items()))
        for it in contenders.values():
            del it
    finally:
        if args.root is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
