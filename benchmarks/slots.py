"""Slot batches through the streaming loader: with the object-replacement pretext vs without, same run.

    python benchmarks/slots.py [--events 60000] [--batch 512] [--workers 0] [--repeats 3] [--root DIR]

Builds (or reuses, with ``--root``) two Zarr stores of synthetic events and times epochs of
``make_loader(transform=SlotTransform())`` (typed slots built in the worker) against
``make_loader(transform=SlotTransform(pretext=ObjectReplacement()))`` (slots + the pretext task),
both with the SPEC §7.3 augmentations, interleaved ``--repeats`` times (a shared machine is noisy);
prints the best events/s of each, the plain GraphBatch loader's for reference, and the ratios.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

PROCESSES = ("ttbar", "Hplus_tb")


def build(root: Path, n: int) -> list[str]:
    from hepfm_data.events import SampleInfo
    from hepfm_data.store import write_store
    from hepfm_data.testing import synthetic_events

    urls = []
    for i, p in enumerate(PROCESSES):
        if not (root / p / "manifest.json").exists():
            write_store(str(root), p, [(synthetic_events(n, seed=i, first_event_id=i * 10 * n),
                                        SampleInfo(p, "synthetic", seed=i))], events_per_shard=16384, progress=True)
        urls.append(str(root / p))
    return urls


def epoch(loader) -> tuple[int, float]:
    t0, n = time.perf_counter(), 0
    for b in loader:
        n += int(b.labels.shape[0])
    return n, time.perf_counter() - t0


def main(argv=None) -> int:
    from hepfm_data.loader import BoostZ, Compose, FlipEta, RotatePhi, make_loader
    from hepfm_data.slots import ObjectReplacement, SlotTransform

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=60_000, help="events per process")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--root", type=Path, default=None)
    a = ap.parse_args(argv)
    root = a.root or Path(tempfile.mkdtemp(prefix="hepfm-bench-slots-"))
    urls = build(root, a.events)
    aug = Compose(RotatePhi(), FlipEta(), BoostZ(0.3))
    kw = dict(device="cpu", batch_size=a.batch, num_workers=a.workers, seed=1, augment=aug)
    loaders = {"graph (GraphBatch, edges)": make_loader(urls, **kw),
               "slots": make_loader(urls, transform=SlotTransform(), **kw),
               "slots + replacement": make_loader(urls, transform=SlotTransform(pretext=ObjectReplacement()), **kw)}
    best = {k: 0.0 for k in loaders}
    for r in range(a.repeats):
        for name, loader in loaders.items():
            loader.set_epoch(r)
            n, dt = epoch(loader)
            best[name] = max(best[name], n / dt)
    for name, v in best.items():
        print(f"{name:<28} {v:>12,.0f} events/s")
    print(f"ratio slots + replacement / slots: {best['slots + replacement'] / best['slots']:.3f}")
    print(f"ratio slots / graph:               {best['slots'] / best['graph (GraphBatch, edges)']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
