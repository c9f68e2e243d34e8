"""Ingestion benchmark: Delphes ROOT -> store.

Prints, all measured in this run on a Delphes-like input made from the real
Delphes 3.4.2 ttH file (its 10 events replicated with a random azimuthal
rotation, eta flip and 5% pT smearing per copy, full Particle record kept so the
read cost is realistic; written with uproot in several baskets):

1. events/s of plain uproot reading the reader's branches (baseline), of the
   reader (baseline + event-record assembly), of the kernels, and of the whole
   ``write_store`` build; ratio of the build to the plain read;
2. bytes/event for each layout x codec (lossless; labels included);
3. peak RSS of a build in a fresh process for two input sizes and two chunk
   sizes: it follows the chunk size, not the file size;
4. parallel ingestion: ``build_store`` of the same input split into units, on a Dask
   LocalCluster of 1 and of 2 worker processes (workers warmed up first), events/s of each,
   their ratio, and the projected wall time of 120M events on 100 workers;
5. store formats 2 and 3 (issue 11): bytes/event of the stored event record and of the paper
   representation, separately, on this Delphes-like input and on generated ttH (Pythia 8 +
   emulation), format 3 (record columns the paper shards hold stored once, the default) and
   format 2 (every record column stored); bytes per record and paper column (Zarr, metadata
   apart); build events/s without the record (the format-1 content), with it in format 2 and
   in format 3; loader events/s on the paper representation of the format-1 build and of the
   format-3 store; record read events/s (``Store.read_record``) of format 2 vs 3; all
   interleaved in this run.

    python -m benchmarks.ingest [--events 20000] [--step 2000] [--generated 2000] [--workdir /tmp/hepfm-bench]
    python -m benchmarks.ingest --only parallel [--workers 1,2] [--units 8]
    python -m benchmarks.ingest --only record [--events 4000] [--generated 25000]   # 25000: one generation unit
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np

REAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "delphes-3.4.2-ttH-10events.root"
KIN = {"Jet": ("PT", "Eta", "Phi", "Mass"), "Electron": ("PT", "Eta", "Phi"), "Muon": ("PT", "Eta", "Phi"),
       "Photon": ("PT", "Eta", "Phi"), "MissingET": ("MET", None, "Phi"), "Particle": ("PT", "Eta", "Phi", "Mass")}
EXTRA = {"Electron": ("Charge",), "Muon": ("Charge",), "Particle": ("PID", "Status", "D1", "D2")}


def _real_collections() -> dict[str, ak.Array]:
    import uproot

    tree = uproot.open(REAL)["Delphes"]
    out = {}
    for coll, kin in KIN.items():
        names = [k for k in kin if k] + list(EXTRA.get(coll, ()))
        arr = tree.arrays([f"{coll}.{n}" for n in names], library="ak")
        out[coll] = ak.zip({n: arr[f"{coll}.{n}"] for n in names})
    out["Event"] = ak.zip({"Weight": tree["Event.Weight"].array()})
    return out


def _replica(real: dict[str, ak.Array], n: int, rng: np.random.Generator) -> dict[str, ak.Array]:
    """``n`` events drawn from the real ones, each rotated in phi, maybe eta-flipped, boosted along
    the beam (eta + d, d ~ U(-0.3, 0.3): exact for massless objects) and pT-smeared by 5%."""
    pick = rng.integers(0, len(real["Jet"]), n)
    boost = rng.uniform(-0.3, 0.3, n)
    rot = rng.uniform(-np.pi, np.pi, n)
    flip = rng.choice([-1.0, 1.0], n)
    scale = rng.lognormal(0.0, 0.05, n)
    out = {}
    for coll, arr in real.items():
        a = arr[pick]
        if coll == "Event":
            out[coll] = a
            continue
        pt_name, eta_name, phi_name = KIN[coll][:3]
        fields = {f: a[f] for f in a.fields}
        fields[pt_name] = ak.values_astype(a[pt_name] * scale, np.float32)
        if eta_name:
            fields[eta_name] = ak.values_astype(a[eta_name] * flip + boost, np.float32)
        phi = (a[phi_name] + rot + np.pi) % (2 * np.pi) - np.pi
        fields[phi_name] = ak.values_astype(phi, np.float32)
        if "Mass" in fields and coll == "Jet":
            fields["Mass"] = ak.values_astype(a["Mass"] * scale, np.float32)
        out[coll] = ak.zip(fields)
    return out


def make_input(path: Path, n_events: int, basket: int = 5000, seed: int = 0) -> Path:
    """A Delphes-like ROOT file of ``n_events`` (cached by name)."""
    from hepfm_data.readers.delphes import write_delphes_tree

    if path.exists():
        return path
    real = _real_collections()
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    write_delphes_tree(str(tmp), (_replica(real, min(basket, n_events - lo), rng) for lo in range(0, n_events, basket)))
    tmp.rename(path)
    return path


def _branches() -> list[str]:
    from hepfm_data.readers.delphes import COLLECTIONS, WEIGHT_BRANCH

    return [b for _, br in COLLECTIONS.values() for b in br.values()] + [WEIGHT_BRANCH]


def time_plain_uproot(path: Path, step: int) -> float:
    import uproot

    t = time.perf_counter()
    with uproot.open(path) as f:
        for _ in f["Delphes"].iterate(_branches(), step_size=step, library="ak"):
            pass
    return time.perf_counter() - t


def time_reader(path: Path, step: int) -> tuple[float, list[ak.Array]]:
    from hepfm_data.readers.delphes import read_delphes

    t = time.perf_counter()
    blocks = list(read_delphes(str(path), step_size=step))
    return time.perf_counter() - t, blocks


def time_kernels(blocks: list[ak.Array]) -> float:
    from hepfm_data.core.catalog import load_catalog
    from hepfm_data.kernels import process_block

    cat = load_catalog()
    t = time.perf_counter()
    for b in blocks:
        process_block(b, cat)
    return time.perf_counter() - t


def time_build(path: Path, step: int, out: Path, layout: str = "zarr", compression=None,
               record: bool = True, record_codecs: bool = True) -> tuple[float, object]:
    from hepfm_data.pipelines.build import write_store
    from hepfm_data.readers.delphes import iterate_delphes

    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    store = write_store(str(out), "ttH", iterate_delphes(str(path), "ttH", step_size=step), layout=layout,
                        compression=compression, progress=False, record=record, record_codecs=record_codecs)
    return time.perf_counter() - t, store


def record_sizes(store) -> dict[str, float]:
    """Bytes/event of the record shards and of the paper representation's shards (manifest sizes)."""
    m = store.manifest
    rec = sum(r.bytes for r in m.record_shards)
    return {"record": rec / m.n_events, "paper": m.bytes / m.n_events, "total": (rec + m.bytes) / m.n_events}


def time_loader(store, batch_size: int = 512) -> float:
    """Seconds for one epoch of make_loader (num_workers=0, CPU) over the store's train split."""
    from hepfm_data.loader import make_loader

    loader = make_loader(store, device="cpu", num_workers=0, batch_size=batch_size, seed=0)
    t = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - t


def generated_store(n: int, out: Path, layout: str = "zarr", workdir: Path | None = None, record_codecs: bool = True,
                    events_per_unit: int | None = None):
    """ttH generated with Pythia 8 + the emulation (seed 1, blocks of 2,500 kept in ``workdir``: every
    variant holds the same events), built through build_store (kept between runs)."""
    from hepfm_data.core.catalog import load_catalog
    from hepfm_data.inputs.generated import DEFAULT_EVENTS_PER_UNIT, PythiaGeneration
    from hepfm_data.pipelines.build import build_store
    from hepfm_data.store import open_store

    if (out / "ttH" / "manifest.json").exists():
        return open_store(str(out / "ttH"))
    gen = PythiaGeneration(load_catalog().process("ttH"), n, seed=1, workdir=str(workdir) if workdir else None,
                           events_per_unit=events_per_unit or DEFAULT_EVENTS_PER_UNIT)
    return build_store(gen, str(out), seed=1, layout=layout, progress=True, scheduler="sync",
                       record_codecs=record_codecs)


def column_bytes(store) -> dict[str, dict[str, float]]:
    """Bytes/event per stored column of a Zarr store: ``{"record/jets/pt": ..., "paper/pt": ...}`` (chunk
    files: data + shard index) and, apart, every zarr.json (``metadata``) — the profile behind the codecs."""
    m = store.manifest
    out: dict[str, dict[str, float]] = {"data": {}, "metadata": {}}
    for kind, shards in (("record", m.record_shards), ("paper", m.shards)):
        for r in shards:
            base = Path(store.path) / r.path
            for f in base.rglob("*"):
                if not f.is_file():
                    continue
                parts = f.relative_to(base).parts
                if f.name == "zarr.json":
                    out["metadata"][kind] = out["metadata"].get(kind, 0.0) + f.stat().st_size / m.n_events
                    continue
                key = f"{kind}/" + "/".join(parts[:parts.index("c")])
                out["data"][key] = out["data"].get(key, 0.0) + f.stat().st_size / m.n_events
    out["data"] = dict(sorted(out["data"].items(), key=lambda kv: -kv[1]))
    return out


SWEEP = [(f"blosc-zstd {lv}", {"codec": "blosc-zstd", "level": lv}) for lv in (5, 7, 8, 9)] + \
    [("blosc-zstd 8 + pcodec (default)", {"codec": "blosc-zstd", "level": 8, "pcodec": True})]


def record_codec_sweep(store, work: Path, sweep=SWEEP) -> list[tuple[str, float, float]]:
    """(codec label, record B/event, record-write events/s) of a format-3 Zarr store's record shards
    rewritten by ``write_zarr_record`` with each compression (their stored form; codec chosen per column)."""
    from hepfm_data.store import record as rec
    from hepfm_data.store.layouts import local_sha256

    m = store.manifest
    parts = [rec.encode_record(store.read_record(s), store.read_columns(s), m.schema, m.record_codecs, s.name)
             for s in m.shards]
    out = []
    for label, comp in sweep:
        size, t = 0, 0.0
        for i, cols in enumerate(parts):
            path = work / f"sweep-{i}.zarr"
            shutil.rmtree(path, ignore_errors=True)
            t0 = time.perf_counter()
            rec.write_zarr_record(cols, str(path), comp)
            t += time.perf_counter() - t0
            size += local_sha256(str(path))[1]
        out.append((label, size / m.n_events, m.n_events / t))
    return out


def time_record_read(store) -> float:
    """Seconds to read every record shard back (``Store.read_record``, all events) in a fresh Store."""
    from hepfm_data.store import open_store

    st = open_store(store.url)
    t = time.perf_counter()
    for s in st.manifest.shards:
        st.read_record(s)
    return time.perf_counter() - t


CODECS = [
    ("zarr", {"codec": "none"}), ("zarr", {"codec": "zstd", "level": 3}), ("zarr", {"codec": "zstd", "level": 5}),
    ("zarr", {"codec": "zstd", "level": 9}), ("zarr", {"codec": "blosc-zstd", "level": 5}),
    ("zarr", {"codec": "blosc-zstd", "level": 9}), ("zarr", {"codec": "blosc-lz4", "level": 5}),
    ("parquet", {"codec": "none"}), ("parquet", {"codec": "snappy"}), ("parquet", {"codec": "zstd", "level": 3}),
    ("parquet", {"codec": "zstd", "level": 5}), ("parquet", {"codec": "zstd", "level": 9}),
    ("parquet", {"codec": "zstd", "level": 5, "byte_stream_split": True}),
    ("parquet", {"codec": "zstd", "level": 9, "byte_stream_split": True}),
]


def bytes_per_event(store, workdir: Path) -> list[dict]:
    """Rewrite the built store's columns with each layout x codec; shard bytes / events (+ write/read time)."""
    from hepfm_data.sources import resolve
    from hepfm_data.store.layouts import Columns, get_layout, local_sha256

    cols = Columns.concat([store.read_columns(s) for s in store.shards()])
    n = cols.n_events
    rows = []
    for layout, comp in CODECS:
        lay = get_layout(layout)
        path = workdir / f"codec{lay.suffix}"
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        t = time.perf_counter()
        lay.write(cols, str(path), dict(comp))
        t_write = time.perf_counter() - t
        _, size = local_sha256(str(path))
        fs, p = resolve(str(path))
        n_node = cols.events["n_node"] if layout == "zarr" else None
        t = time.perf_counter()
        back = lay.read(fs, p, 0, None, n_node)
        t_read = time.perf_counter() - t
        for k in cols.nodes:
            if not np.array_equal(back.nodes[k], cols.nodes[k]):
                raise RuntimeError(f"{layout} {comp}: column {k} not lossless")
        rows.append({"layout": layout, "compression": comp, "bytes_per_event": size / n,
                     "write_ev_s": n / t_write, "read_ev_s": n / t_read})
    raw = sum(v.nbytes for v in cols.events.values()) + sum(v.nbytes for v in cols.nodes.values())
    rows.append({"layout": "raw stored columns (no compression)", "compression": {}, "bytes_per_event": raw / n})
    rows.append({"layout": "raw float32 [n,7] nodes only", "compression": {},
                 "bytes_per_event": 7 * 4 * cols.n_nodes / n})
    return rows


def rss_worker(path: str, step: int, out: str) -> None:
    """Run one build and print its peak RSS (MiB) as JSON (called in a fresh process)."""
    import psutil

    from hepfm_data.pipelines.build import write_store
    from hepfm_data.readers.delphes import iterate_delphes

    # warm-up on 20 events: every library imported and every kernel loaded before the baseline
    with tempfile.TemporaryDirectory() as d:
        blocks = iterate_delphes(path, "ttH", step_size=10)
        write_store(d, "ttH", [next(blocks), next(blocks)], progress=False)
        write_store(d + "/p", "ttH", [next(blocks)], layout="parquet", progress=False)
        del blocks
    base = psutil.Process().memory_info().rss / 2**20
    t, store = time_build(Path(path), step, Path(out))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mib": peak, "after_imports_mib": base, "events": store.manifest.n_events,
                      "seconds": t}))


def measure_rss(path: Path, step: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.ingest", "--rss-worker", str(path), str(step), str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(res.stdout.strip().splitlines()[-1])


PAPER_EVENTS = 120_000_000
PROJECTED_WORKERS = 100


def time_parallel(path: Path, n: int, step: int, work: Path, workers: list[int], n_units: int) -> dict[int, float]:
    """Seconds of ``build_store`` of ``path`` in ``n_units`` entry-range units on a LocalCluster of k workers."""
    from dask.distributed import LocalCluster

    from hepfm_data.inputs.delphes import DelphesFiles
    from hepfm_data.pipelines.build import build_store

    per_unit = -(-n // n_units)
    small = make_input(work / "delphes_like_warmup.root", 4 * max(workers))
    out: dict[int, float] = {}
    best = float("inf")
    for _ in range(2):  # baseline: the same build_store in this process (scheduler="sync")
        shutil.rmtree(work / "par-sync", ignore_errors=True)
        t = time.perf_counter()
        build_store(DelphesFiles("ttH", str(path), entries_per_unit=per_unit, step_size=step), str(work / "par-sync"),
                    scheduler="sync", progress=False)
        best = min(best, time.perf_counter() - t)
    out[0] = best
    for k in workers:
        with LocalCluster(n_workers=k, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=40) as cluster:
            # warm-up: every worker imports the libraries and loads the JIT caches
            shutil.rmtree(work / "par-warm", ignore_errors=True)
            build_store(DelphesFiles("ttH", str(small), entries_per_unit=4, step_size=step), str(work / "par-warm"),
                        scheduler=cluster.scheduler_address, progress=False)
            best = float("inf")
            for _ in range(2):  # best of 2: the sandbox is shared
                shutil.rmtree(work / f"par-{k}", ignore_errors=True)
                t = time.perf_counter()
                store = build_store(DelphesFiles("ttH", str(path), entries_per_unit=per_unit, step_size=step),
                                    str(work / f"par-{k}"), scheduler=cluster.scheduler_address, progress=False)
                best = min(best, time.perf_counter() - t)
            assert store.manifest.n_events == n
            out[k] = best
    m = [json.loads((work / f"par-{k}" / "ttH" / "manifest.json").read_text())["shards"] for k in ["sync", *workers]]
    if any(x != m[0] for x in m):
        raise RuntimeError("stores built with different worker counts differ")
    return out


def report_parallel(path: Path, n: int, step: int, work: Path, workers: list[int], n_units: int) -> None:
    print(f"\n== Parallel ingestion: build_store on a Dask LocalCluster ({n_units} units of "
          f"{-(-n // n_units)} entries; {os.cpu_count()} cores; best of 2) ==")
    t = time_parallel(path, n, step, work, workers, n_units)
    print(f"in-process build_store (scheduler='sync', baseline): {n / t[0]:>10,.0f} ev/s")
    base = t[workers[0]]
    for k in workers:
        print(f"{k} worker(s): {n / t[k]:>10,.0f} ev/s   speed-up vs {workers[0]} worker: {base / t[k]:5.2f}x")
    k_max = workers[-1]
    eff = (base / t[k_max]) / (k_max / workers[0])
    per_worker = n / base / workers[0]
    wall = PAPER_EVENTS / (per_worker * PROJECTED_WORKERS * eff)
    print(f"parallel efficiency at {k_max} workers: {eff:.2f}; projected {PAPER_EVENTS / 1e6:.0f}M events on "
          f"{PROJECTED_WORKERS} workers (per-worker {per_worker:,.0f} ev/s x efficiency {eff:.2f}): "
          f"{wall / 60:.1f} min ({wall / 3600:.2f} h); at efficiency 1: "
          f"{PAPER_EVENTS / (per_worker * PROJECTED_WORKERS) / 60:.1f} min")
    print("stores built in-process and with each worker count: identical shard lists (same bytes)")


def report_record(path: Path, n: int, step: int, work: Path, generated: int) -> None:
    """Section 5: record vs paper bytes/event (formats 2, 3), build, loader and record-read events/s."""
    print("\n== Store formats 2 and 3: record + paper representation (issue 11) ==")
    t_f1 = t_f2 = t_f3 = l_f1 = l_f3 = r_f2 = r_f3 = float("inf")
    for _ in range(2):  # interleaved, best of 2
        t, plain = time_build(path, step, work / "store-f1", record=False)
        t_f1 = min(t_f1, t)
        t, f2 = time_build(path, step, work / "store-f2", record=True, record_codecs=False)
        t_f2 = min(t_f2, t)
        t, full = time_build(path, step, work / "store-f3", record=True)
        t_f3 = min(t_f3, t)
    time_loader(plain), time_loader(full)  # warm-up: JIT caches, page cache
    for _ in range(9):  # an epoch is short: interleaved, best of 9
        l_f1 = min(l_f1, time_loader(plain))
        l_f3 = min(l_f3, time_loader(full))
    for _ in range(5):
        r_f2 = min(r_f2, time_record_read(f2))
        r_f3 = min(r_f3, time_record_read(full))
    n_train = full.manifest.split_sizes()["train"]
    rows = [("build without the record (format-1 content; baseline)", n / t_f1, None),
            ("build with the record, format 2 (every column stored)", n / t_f2, t_f1 / t_f2),
            ("build with the record, format 3 (default)", n / t_f3, t_f1 / t_f3),
            ("loader, paper columns of the format-1 build (baseline)", n_train / l_f1, None),
            ("loader, paper representation of the format-3 store", n_train / l_f3, l_f1 / l_f3),
            ("record read (Store.read_record), format 2 (baseline)", n / r_f2, None),
            ("record read, format 3 (+ the paper columns it takes)", n / r_f3, r_f2 / r_f3)]
    for label, rate, ratio in rows:
        print(f"{label:<58} {rate:>10,.0f} ev/s" + ("" if ratio is None else f"   ratio {ratio:5.2f}"))
    same = [s.sha256 for s in plain.manifest.shards] == [s.sha256 for s in full.manifest.shards]
    print(f"paper shards of the format-1 build and of the format-3 store: {'identical' if same else 'DIFFERENT'} "
          f"sha256 (the loader reads the same bytes through the same code: its ratio is the machine's noise)")
    sizes = [("Delphes-like ttH, zarr, format 3", record_sizes(full)),
             ("Delphes-like ttH, zarr, format 2", record_sizes(f2))]
    _, st = time_build(path, step, work / "store-f3-parquet", layout="parquet")
    sizes.append(("Delphes-like ttH, parquet, format 3", record_sizes(st)))
    _, st = time_build(path, step, work / "store-f2-parquet", layout="parquet", record_codecs=False)
    sizes.append(("Delphes-like ttH, parquet, format 2", record_sizes(st)))
    gen = {}
    if generated:
        blocks = work / "generated-blocks"  # one set of generated blocks for every variant and size
        for layout, codecs in (("zarr", True), ("zarr", False), ("parquet", True), ("parquet", False)):
            st = gen[layout, codecs] = generated_store(generated, work / f"generated-{generated}-{layout}-f{2 + codecs}",
                                                       layout, blocks, codecs)
            sizes.append((f"generated ttH ({st.manifest.n_events} ev, {len(st.manifest.shards)} shards), {layout}, "
                          f"format {st.manifest.format_version}", record_sizes(st)))
        st = generated_store(generated, work / f"generated-{generated}-zarr-f3-unit2500", "zarr", blocks,
                             events_per_unit=2500)
        sizes.append((f"  same, units of one 2,500-event block ({len(st.manifest.shards)} shards)", record_sizes(st)))
    for label, sz in sizes:
        print(f"{label:<58} record {sz['record']:7.1f} B/event + paper {sz['paper']:6.1f} B/event = "
              f"{sz['total']:7.1f} B/event (goal <= 250, lossless)")
    stores = [("Delphes-like ttH", full)] + ([("generated ttH", gen["zarr", True])] if generated else [])
    for label, st in stores:
        print(f"record codec (Zarr, format 3, {label}; record shards rewritten): " + ", ".join(
            f"{c}: {b:.1f} B/event at {r:,.0f} ev/s written" for c, b, r in record_codec_sweep(st, work)))
    for label, st in [("Delphes-like, format 3", full), ("Delphes-like, format 2", f2)] + \
            ([("generated ttH, format 3", gen["zarr", True])] if generated else []):
        prof = column_bytes(st)
        top = ", ".join(f"{k} {v:.1f}" for k, v in list(prof["data"].items())[:14])
        meta = ", ".join(f"{k} {v:.1f}" for k, v in prof["metadata"].items())
        print(f"bytes/event by column (Zarr, {label}; {len(st.manifest.shards)} shards): data "
              f"{sum(prof['data'].values()):.1f}: {top}; zarr.json metadata: {meta}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=20000)
    p.add_argument("--step", type=int, default=2000, help="Delphes entries per chunk")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hepfm-bench-ingest"))
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    p.add_argument("--generated", type=int, default=2000, help="generated ttH events for the record sizes (0: skip)")
    p.add_argument("--only", choices=["parallel", "record"], help="run only this section")
    p.add_argument("--workers", default="1,2", help="Dask worker counts of the parallel section")
    p.add_argument("--units", type=int, default=4,
                   help="units (tasks) the input is split into (default 4 = one per 5000-entry basket)")
    p.add_argument("--rss-worker", nargs=3, metavar=("PATH", "STEP", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rss_worker:
        rss_worker(args.rss_worker[0], int(args.rss_worker[1]), args.rss_worker[2])
        return 0
    from tqdm.auto import tqdm

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    n, step = args.events, args.step
    with tqdm(total=1, desc=f"write {n}-event Delphes-like input", leave=False) as bar:
        path = make_input(work / f"delphes_like_{n}.root", n)
        bar.update()
    print(f"input: {path} ({path.stat().st_size / 1e6:.1f} MB, {n} events, {-(-n // step)} chunks of {step})")

    workers = [int(x) for x in args.workers.split(",")]
    if args.only == "parallel":
        report_parallel(path, n, step, work, workers, args.units)
        return 0
    if args.only == "record":
        report_record(path, n, step, work, args.generated)
        return 0
    # warm-up: JIT caches, OS page cache
    _, warm = time_reader(path, step)
    time_kernels(warm[:1])
    del warm
    # interleaved, best of 2: the sandbox is shared, so contenders alternate within the run
    t_plain = t_reader = t_kernels = t_build = float("inf")
    for _ in range(2):
        t_plain = min(t_plain, time_plain_uproot(path, step))
        t, blocks = time_reader(path, step)
        t_reader = min(t_reader, t)
        t_kernels = min(t_kernels, time_kernels(blocks))
        del blocks
        t, store = time_build(path, step, work / "store")
        t_build = min(t_build, t)
    print("\n== Ingestion throughput (events/s; ratio = time / plain-uproot time, same run) ==")
    for name, t in (("plain uproot read of the same branches (baseline)", t_plain),
                    ("reader: uproot + event record (truth last copies)", t_reader),
                    ("kernels: selection, b-tag, nodes, labels", t_kernels),
                    ("full build: read + kernels + split + zarr write + sha256", t_build)):
        print(f"{name:<58} {n / t:>10,.0f} ev/s   ratio {t / t_plain:5.2f}")
    print(f"build cost beyond the plain read: {(t_build - t_plain) / t_plain:.2f} x the read")

    print("\n== Bytes/event by layout x codec (lossless, labels included; one shard of all events) ==")
    rows = bytes_per_event(store, work)
    for r in rows:
        comp = ",".join(f"{k}={v}" for k, v in r["compression"].items())
        extra = f"   write {r['write_ev_s']:>9,.0f} ev/s   read {r['read_ev_s']:>9,.0f} ev/s" if "write_ev_s" in r else ""
        print(f"{r['layout']:<36} {comp:<40} {r['bytes_per_event']:7.1f} B/event{extra}")
    m = store.manifest
    print(f"nodes/event {m.n_nodes / m.n_events:.2f}; default store ({m.layout} {m.compression}, "
          f"{len(m.shards)} shards): {m.bytes / m.n_events:.1f} B/event")

    report_record(path, n, step, work, args.generated)

    if not args.no_rss:
        print("\n== Peak RSS of a build in a fresh process (MiB) ==")
        small = make_input(work / f"delphes_like_{n // 8}.root", n // 8)
        for label, inp, st in (("1/8 input, same chunk", small, step), ("full input, same chunk", path, step),
                               ("full input, 4x chunk", path, 4 * step)):
            r = measure_rss(inp, st, work / "rss-store")
            print(f"{label:<24} {inp.stat().st_size / 1e6:8.1f} MB input, step {st:>6}: "
                  f"peak RSS {r['peak_rss_mib']:6.0f} MiB (after warm-up {r['after_imports_mib']:.0f}; "
                  f"{r['events']} events, {r['events'] / r['seconds']:,.0f} ev/s)")
    report_parallel(path, n, step, work, workers, args.units)
    return 0


if __name__ == "__main__":
    sys.exit(main())
