"""Slot batches from the event record through the streaming loader: with the object-replacement
pretext vs without, and vs the raw record read, same run.

    python benchmarks/slots.py [--events 30000] [--batch 512] [--workers 0] [--repeats 3] [--root DIR]

Builds (or reuses, with ``--root``) two Zarr stores of synthetic events with τ candidates and
times, interleaved ``--repeats`` times (a shared machine is noisy; a warm-up pass first):

* the raw read of the train record shards (``Store.read_record``, what the representation reads),
* ``make_loader(representation=SlotRepresentation(sel))`` (typed slots from the record, in the worker),
* ``make_loader(representation=SlotRepresentation(sel, pretext=ObjectReplacement()))`` (slots + the pretext task),

the loaders with the SPEC §7.3 augmentations (rotation, η flip, boost); prints the best events/s
of each and the ratios replacement / slots and slots / raw read.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

PROCESSES = ("ttbar", "Hplus_tb")


def build(root: Path, n: int) -> list[str]:
    from hepfm_data.core.events import SampleInfo
    from hepfm_data.pipelines.build import write_store
    from hepfm_data.testing import synthetic_events

    urls = []
    for i, p in enumerate(PROCESSES):
        if not (root / p / "manifest.json").exists():
            write_store(str(root), p, [(synthetic_events(n, seed=i, first_event_id=i * 10 * n, taus=True),
                                        SampleInfo(p, "synthetic", seed=i))], events_per_shard=16384, progress=True)
        urls.append(str(root / p))
    return urls


def main(argv=None) -> int:
    from hepfm_data import load_catalog
    from hepfm_data.batches.slots import ObjectReplacement
    from hepfm_data.loader import BoostZ, Compose, FlipEta, RotatePhi, make_loader
    from hepfm_data.representations import SlotRepresentation, SlotSelection
    from hepfm_data.store import open_store

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=30_000, help="events per process")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--root", type=Path, default=None)
    a = ap.parse_args(argv)
    root = a.root or Path(tempfile.mkdtemp(prefix="hepfm-bench-slots-"))
    urls = build(root, a.events)
    cat = load_catalog()
    sel = SlotSelection.from_catalog(cat)
    aug = Compose(RotatePhi(), FlipEta(), BoostZ(0.3))
    kw = dict(device="cpu", batch_size=a.batch, num_workers=a.workers, seed=1, augment=aug, catalog=cat)
    stores = [open_store(u) for u in urls]

    def raw() -> int:
        n = 0
        for st in stores:
            for info in st.shards("train"):
                n += int(st.read_record(info)["event_id"].shape[0])
        return n

    def loader(rep):
        ld = make_loader(urls, representation=rep, **kw)

        def run(epoch: int) -> int:
            ld.set_epoch(epoch)
            return sum(int(b.labels.shape[0]) for b in ld)
        return run

    contenders = {"raw record read (Store.read_record)": lambda epoch: raw(),
                  "slots (SlotRepresentation)": loader(SlotRepresentation(sel)),
                  "slots + ObjectReplacement": loader(SlotRepresentation(sel, pretext=ObjectReplacement()))}
    for fn in contenders.values():  # warm-up: handles opened, Numba compiled
        fn(0)
    best = {k: 0.0 for k in contenders}
    for r in range(a.repeats):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            n = fn(r + 1)
            best[name] = max(best[name], n / (time.perf_counter() - t0))
    for name, v in best.items():
        print(f"{name:<38} {v:>12,.0f} events/s")
    raw_v = best["raw record read (Store.read_record)"]
    print(f"ratio slots + replacement / slots: {best['slots + ObjectReplacement'] / best['slots (SlotRepresentation)']:.3f}")
    print(f"ratio slots / raw record read:     {best['slots (SlotRepresentation)'] / raw_v:.3f}")
    print(f"ratio slots + replacement / raw:   {best['slots + ObjectReplacement'] / raw_v:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
