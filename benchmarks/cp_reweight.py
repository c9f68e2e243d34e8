"""Cost of CP-mixed tt̄H by matrix-element reweighting vs Pythia generation, measured in the same run.

    python benchmarks/cp_reweight.py [--events 3000] [--seed 1] [--alpha 90]

Alternating rounds (so machine load hits all alike) of
  A. Pythia SM tt̄H hard processes only (``ttH_reweight.HARD_ONLY``) written to LHE: per event;
  B. the reweighting of those events: LHE parse + on-shell projection + both |M|² parts: per event;
  C. baseline: ordinary SM tt̄H generation (Pythia ``nextBatch`` with shower + hadronisation, the
     catalog's ttH_cp_even settings), per event.
Prints events/s of each, B/A and B/C, the unweighting acceptance for the requested α, exact
(mean(w)/max(w)) and partial (the catalog's ``max_overweight`` quantile cap c: mean(min(w, c))/c),
how w_max and c move as the sample grows, and the resulting cost of one accepted CP-mixed hard
process ((A+B)/acceptance) relative to C.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=3000, help="hard processes (A, B); C runs a quarter as many")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--alpha", type=float, default=90.0, help="CP-mixing angle (degrees)")
    ap.add_argument("--round", type=int, default=500)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import numpy as np

    from hepfm_data import load_catalog
    from hepfm_data.readers import lhe
    from hepfm_data.readers.generation import pythia as P
    from hepfm_data.readers.generation import ttH_reweight

    proc = load_catalog().process("ttH_cp_even")
    hard = P.make_pythia(P.process_settings(proc, args.seed) + list(ttH_reweight.HARD_ONLY))
    full = P.make_pythia(P.process_settings(proc, args.seed))
    mt = float(hard.particleData.m0(6))
    full.nextBatch(20, 10.0)  # warm-up
    t_a = t_b = t_c = 0.0
    n_a = n_c = 0
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(-(-args.events // args.round)):
            k = min(args.round, args.events - n_a)
            path = Path(tmp) / f"r{r}.lhe"
            t0 = time.perf_counter()
            with lhe.HardProcessWriter(hard, path) as out:
                while out.n_written < k:
                    if hard.next():
                        out.write()
            t1 = time.perf_counter()
            parts.append(ttH_reweight.yukawa_parts(lhe.read_events(path), mt))
            t2 = time.perf_counter()
            n_full = max(1, k // 4)
            full.nextBatch(n_full, 10.0)
            t3 = time.perf_counter()
            t_a, t_b, t_c = t_a + t1 - t0, t_b + t2 - t1, t_c + t3 - t2
            n_a, n_c = n_a + k, n_c + n_full
    w = np.concatenate([p.weight(math.radians(args.alpha)) for p in parts])
    over = load_catalog().process("ttH_cp_odd").cp_mixing.max_overweight
    cap = ttH_reweight.unweighting_cap(w, over)
    acc_exact, acc = float(w.mean() / w.max()), float(np.minimum(w, cap).mean() / cap)
    a, b, c = t_a / n_a, t_b / n_a, t_c / n_c
    print(f"A Pythia SM ttH hard process -> LHE : {1 / a:8.1f} ev/s ({a * 1e3:.3f} ms/event)")
    print(f"B ME reweighting (parse+on-shell+|M|^2): {1 / b:8.1f} ev/s ({b * 1e3:.3f} ms/event)")
    print(f"C Pythia SM ttH full generation     : {1 / c:8.1f} ev/s ({c * 1e3:.3f} ms/event)")
    print(f"B/A = {b / a:.3f}   B/C = {b / c:.3f}")
    print(f"alpha = {args.alpha} deg, {len(w)} events: mean w {w.mean():.4f}; exact unweighting: w_max {w.max():.2f}, "
          f"acceptance {acc_exact:.4f}; partial (max_overweight {over}): cap {cap:.2f}, acceptance {acc:.4f}")
    print("  as the sample grows:  n    w_max   cap  (exact acceptance, partial acceptance)")
    for n in sorted({min(len(w), k) for k in (500, 1000, 2000, 5000, 10000, 20000, 50000, len(w))}):
        wn, cn = w[:n], ttH_reweight.unweighting_cap(w[:n], over)
        print(f"  {n:20d} {wn.max():7.2f} {cn:5.2f}  ({wn.mean() / wn.max():.4f}, {np.minimum(wn, cn).mean() / cn:.4f})")
    for name, ac in (("exact", acc_exact), ("partial", acc)):
        print(f"one accepted CP-mixed hard process ({name} unweighting) costs (A+B)/acceptance = "
              f"{(a + b) / ac * 1e3:.1f} ms = {(a + b) / ac / c:.2f} x C (plus the shower from LHE, ~C)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
