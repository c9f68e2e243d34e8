"""Re-simulation events/s per view vs a fresh generation of the same process, in the same run.

    python benchmarks/resimulate.py [--process ttbar] [--events 300] [--views seed,fsr_up,...]

Baseline: ``readers.pythia.generate`` (Pythia hard process + shower + hadronisation + the ATLAS-like
emulation, one core), measured again right before each measurement (so machine-load drifts hit both
alike; the ratio is the figure to read). A view: ``readers.pythia.shower`` of the same number of kept hard processes (LHE
columns written, read by Pythia with ``Beams:frameType = 4``) with the view's settings + the same
emulation. Also the two-stage generation with hard processes kept (``keep_hard_process=True``).
Prints events/s and the ratio to the fresh generation (> 1: a view costs less than a new event).
Pythia's initialisation is included in every measurement (it is part of each re-simulated block).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--process", default="ttbar")
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--views", default="seed,fsr_up,fsr_down,vincia,lund_z,lund_pt")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import numpy as np

    from hepfm_data import load_catalog
    from hepfm_data.readers.generation import pythia as P
    from hepfm_data.readers.lhe import read_hard

    cat = load_catalog()
    proc = cat.process(args.process)
    P.generate(proc, 20, args.seed + 7)  # warm-up: imports, numba caches, FastJet banner

    def fresh(seed: int) -> float:
        t0 = time.perf_counter()
        ev, _ = P.generate(proc, args.events, seed)
        return len(ev) / (time.perf_counter() - t0)

    rows = []  # (name, events/s, fresh events/s measured just before it): load drifts hit both alike
    base = fresh(args.seed)
    t0 = time.perf_counter()
    kept, _ = P.generate(proc, args.events, args.seed + 1, keep_hard_process=True)
    rows.append(("generate, hard process kept", len(kept) / (time.perf_counter() - t0), base))
    with tempfile.TemporaryDirectory() as tmp:
        P.generate_hard(proc, args.events, args.seed + 2, f"{tmp}/h.lhe", workdir=tmp)
        init, hard, hard_event = read_hard(f"{tmp}/h.lhe")
        ids = np.arange(args.events, dtype=np.uint64)
        for k, name in enumerate(args.views.split(",")):
            view = cat.resimulation.view(name)
            base = fresh(args.seed + 10 + k)
            t0 = time.perf_counter()
            ev, ok, _, _ = P.shower(proc, init, hard, hard_event, ids, args.seed + 3, settings=view.settings,
                                    workdir=tmp)
            rows.append((f"view {name}", int(ok.sum()) / (time.perf_counter() - t0), base))
    print(f"{proc.name}, {args.events} events per measurement, one core")
    print(f"{'measurement':30s} {'events/s':>9s} {'fresh ev/s':>11s} {'ratio':>6s}")
    for name, r, b in rows:
        print(f"{name:30s} {r:9.1f} {b:11.1f} {r / b:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
