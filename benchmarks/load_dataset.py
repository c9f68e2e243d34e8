"""hepfm ``load_dataset`` vs ``datasets`` reading the same Parquet shards directly, same run.

    python benchmarks/load_dataset.py [--events 50000] [--events-per-shard 8192] [--batch 256] [--repeat 3]

Builds a Parquet store of synthetic events (``hepfm_data.testing.synthetic_events``)
in a temporary folder, then measures for both readers:

* cold load: fresh cache folder (hepfm converts shards to Arrow; datasets' parquet
  builder prepares its Arrow cache); warm load: the same call again;
* iteration rows/s over the train split (best of ``--repeat`` alternating passes), ``with_format("numpy")`` and
  ``with_format("torch")``, ``ds.iter(batch_size)``;
* streaming rows/s (``streaming=True``, Arrow batches through ``with_format("arrow")``).

The baseline is ``datasets.load_dataset("parquet", data_files=<train shards>)``: it
has 6 node columns (no energy, which hepfm derives), labels as stored (int16), and
no checksums/catalog. Prints each figure and the ratio hepfm / baseline.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _rows_per_s(ds, fmt: str, batch: int) -> float:
    next(iter(ds.with_format(fmt).iter(batch_size=batch)))  # warm-up: lazy imports, first file open
    n, t = 0, time.perf_counter()
    for b in ds.with_format(fmt).iter(batch_size=batch):
        n += len(b["event_id"])
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--events-per-shard", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3, help="iteration passes per reader (best is kept)")
    args = ap.parse_args(argv)

    import datasets
    import torch  # noqa: F401 - imported before timing (the torch formatter needs it)

    from hepfm_data import load_dataset
    from hepfm_data.core.events import SampleInfo
    from hepfm_data.pipelines.build import write_store
    from hepfm_data.store import open_store
    from hepfm_data.testing import synthetic_events

    datasets.disable_progress_bars()
    work = Path(tempfile.mkdtemp(prefix="hepfm-bench-"))
    try:
        root = work / "stores"
        blocks = ((synthetic_events(min(10_000, args.events - i), seed=i, first_event_id=i),
                   SampleInfo(process="ttH", source="synthetic")) for i in range(0, args.events, 10_000))
        _, t_build = _timed(lambda: write_store(str(root), "ttH", blocks, layout="parquet",
                                                events_per_shard=args.events_per_shard, progress=False))
        store = open_store(f"{root}/ttH")
        files = [str(root / "ttH" / s.path) for s in store.shards("train")]
        n_train = sum(s.n_events for s in store.shards("train"))
        print(f"store: {store.manifest.n_events} events, {len(store.manifest.shards)} Parquet shards "
              f"({n_train} train, {len(files)} files), built in {t_build:.1f} s")

        def hepfm(cache, streaming=False):
            return load_dataset("hepfm/ttH", split="train", storage=root, cache_dir=work / cache, streaming=streaming)

        def baseline(cache, streaming=False):
            return datasets.load_dataset("parquet", data_files={"train": files}, split="train",
                                         cache_dir=None if streaming else str(work / cache), streaming=streaming)

        rows = []
        ours, cold = _timed(lambda: hepfm("c1"))
        _, warm = _timed(lambda: hepfm("c1"))
        base, bcold = _timed(lambda: baseline("b1"))
        _, bwarm = _timed(lambda: baseline("b1"))
        assert ours.num_rows == base.num_rows == n_train
        rows += [("load, cold (s)", cold, bcold), ("load, warm (s)", warm, bwarm)]
        def best(a, b, fmt):  # alternate the two readers, best of --repeat (shared machines are noisy)
            ra, rb = [], []
            for _ in range(args.repeat):
                ra.append(_rows_per_s(a, fmt, args.batch))
                rb.append(_rows_per_s(b, fmt, args.batch))
            return max(ra), max(rb)

        for fmt in ("numpy", "torch"):
            rows.append((f"iterate {fmt}, rows/s", *best(ours, base, fmt)))
        for fmt in ("arrow", "torch"):
            rows.append((f"streaming {fmt}, rows/s", *best(hepfm("s", True), baseline("s", True), fmt)))
        print(f"{'measure':<26} {'hepfm':>12} {'datasets parquet':>17} {'ratio':>7}")
        for name, a, b in rows:
            print(f"{name:<26} {a:>12.3g} {b:>17.3g} {a / b:>7.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
