"""Planning cost per process of the loader's sampler at the paper's scale (no events written).

    python benchmarks/sampler_scale.py [--sources 12] [--shards 100] [--events 100000]
                                       [--ranks 16] [--workers 8] [--baseline GIT_REF]

Simulates the stores' shard sizes and node counts (Poisson(8.5) + 1 per event, int16, seeded
per shard; generated where the loader would read them) and runs the real
``StreamSampler`` as every process of a ``--ranks`` x ``--workers`` job would, for count
batching (``batch_size=512``) and node-budget batching (``max_nodes=4608``), default loader
blocks (32,768 events) and windows (8 blocks):

* rank main process: the node-count histograms (``summarize``: every shard's counts read
  once per process; DataLoader workers inherit the result), then ``n_batches``;
* each DataLoader worker: ``plan`` + ``partition`` + its ``assignment`` + its batches, one
  window of node counts at a time (what it plans before and while it reads).

Prints, per process, wall time and peak traced memory (``tracemalloc``: numpy buffers
included; the interpreter and imports are not). ``--baseline REF`` also runs the
sampler of git ``REF`` (``rank_bounds`` of the whole epoch, as every process did before)
once, for the ratio in the same run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hepfm_data.loader.sampler import BatchSpec, StreamSampler  # noqa: E402

BLOCK, WINDOW = 32768, 8


CHUNK = 4096  # simulated like the store's n_node column: only the chunks a range covers are made
POOL = (np.random.default_rng(0).poisson(8.5, 1 << 20) + 1).astype(np.int16)


def counts_reader(n_events: int):
    """``n_node_of(source, shard, start, stop)``: simulated node counts, Poisson(8.5) + 1, each
    4096-row chunk a seeded slice of one pre-drawn pool (so simulating costs what a read would)."""
    def n_node_of(s: int, k: int, a: int = 0, b: int | None = None) -> np.ndarray:
        b = n_events if b is None else b
        c0, c1 = a // CHUNK, -(-b // CHUNK)
        parts = []
        for c in range(c0, c1):
            o = hash((s, k, c)) % (len(POOL) - CHUNK)
            parts.append(POOL[o:o + min(CHUNK, n_events - c * CHUNK)])
        out = np.concatenate(parts) if parts else np.zeros(0, np.int16)
        return out[a - c0 * CHUNK:b - c0 * CHUNK]
    return n_node_of


def measure(fn):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, dt, peak / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=int, default=12)
    ap.add_argument("--shards", type=int, default=100)
    ap.add_argument("--events", type=int, default=100_000, help="events per shard")
    ap.add_argument("--ranks", type=int, default=16)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--baseline", default=None, help="git ref whose sampler (whole-epoch rank_bounds) to time once")
    args = ap.parse_args(argv)
    sizes = [[args.events] * args.shards for _ in range(args.sources)]
    total = args.sources * args.shards * args.events
    n_node_of = counts_reader(args.events)
    print(f"{args.sources} sources x {args.shards} shards x {args.events:,} events = {total:,}; "
          f"{args.ranks} ranks x {args.workers} workers; blocks {BLOCK}, windows of {WINDOW} blocks")
    specs = {"count (batch_size=512)": BatchSpec(512), "budget (max_nodes=4608)": BatchSpec(None, max_nodes=4608)}
    summary = {}
    warm = StreamSampler([[5000]], BatchSpec(None, max_nodes=4608), block_size=1000, window_blocks=2)
    warm._pack(np.ones(10, np.int16))  # JIT compile / cache load (not planning)
    for name, spec in specs.items():
        print(f"\n== {name}")
        sampler = StreamSampler(sizes, spec, seed=0, block_size=BLOCK, window_blocks=WINDOW)
        if spec.needs_sizes:
            _, dt, mb = measure(lambda sampler=sampler: sampler.summarize(n_node_of))
            print(f"node-count histograms (once per rank main process; workers inherit them): {dt:.2f} s, "
                  f"peak {mb:.0f} MiB, kept {sum(a.nbytes for a in sampler.summary.values()) / 2**20:.1f} MiB")
        hist = sampler.summary
        times, peaks = [], []
        for rank in range(args.ranks):
            row = []
            for w in range(-1, args.workers):
                fresh = StreamSampler(sizes, spec, seed=0, block_size=BLOCK, window_blocks=WINDOW)
                fresh.summary = hist  # inherited from the rank's main process

                def work(fresh=fresh, w=w, rank=rank):
                    plan = fresh.plan(0)
                    if w < 0:  # the rank's main process: len(loader)
                        return fresh.n_batches(plan, args.ranks, n_node_of, args.workers)
                    a = fresh.assignment(plan, rank, args.ranks, w, args.workers, 0, n_node_of)
                    return len(fresh.batches(plan, a, n_node_of))

                n, dt, mb = measure(work)
                times.append(dt)
                peaks.append(mb)
                row.append(f"{'main' if w < 0 else f'w{w}'} {dt:.2f}s/{mb:.0f}M/{n}b")
            print(f"rank {rank:2d}: " + "  ".join(row))
        print(f"per process: time median {np.median(times):.2f} s, max {max(times):.2f} s; "
              f"peak memory median {np.median(peaks):.0f} MiB, max {max(peaks):.0f} MiB")
        summary[name] = (max(times), max(peaks))
    if args.baseline:
        base = baseline(args.baseline, sizes, n_node_of, args.ranks)
        for name, (t, mb) in summary.items():
            if name in base:
                bt, bmb = base[name]
                print(f"baseline {args.baseline} {name}: rank_bounds of one process {bt:.2f} s, peak {bmb:.0f} MiB; "
                      f"now max per process {t:.2f} s ({bt / t:.1f}x less), {mb:.0f} MiB ({bmb / mb:.1f}x less)")
    return 0


def baseline(ref: str, sizes, n_node_of, ranks: int) -> dict:
    """The sampler of git ``ref`` (before window-bounded planning): one process's rank_bounds."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "-C", str(root), "show", f"{ref}:hepfm_data/loader/sampler.py"],
                         capture_output=True, text=True, check=True).stdout
    path = root / "benchmarks" / "_baseline_sampler.py"
    path.write_text(src.replace("from .._arrays", "from hepfm_data.core.arrays").replace("from ..errors",
                                                                                     "from hepfm_data.core.errors"))
    try:
        spec = importlib.util.spec_from_file_location("_baseline_sampler", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses look their module up
        spec.loader.exec_module(mod)
    finally:
        path.unlink()
    out = {}
    for name, bs in {"count (batch_size=512)": mod.BatchSpec(512),
                     "budget (max_nodes=4608)": mod.BatchSpec(None, max_nodes=4608)}.items():
        s = mod.StreamSampler(sizes, bs, seed=0, block_size=BLOCK, window_blocks=WINDOW)
        _, dt, mb = measure(lambda s=s: s.rank_bounds(s.plan(0), 0, ranks, lambda a, k: n_node_of(a, k)))
        out[name] = (dt, mb)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
