"""Unweighted events/s per process and core of the LO generator, against plain Pythia tt̄H in the same run.

    python benchmarks/lo_generator.py [--processes tHq ttW ttt tttt ttyy] [--lhe-events 400] [--shower-events 100]

Per process (the catalog's generator settings: PDF, precision, max_overweight): the integration time (VEGAS to
the catalog precision), the unweighted hard-process rate (LHE events/s, one core: OMP_NUM_THREADS=1), the rate
of the shower + hadronisation + ATLAS-like emulation of those LHE events (Pythia, ``Beams:frameType = 4``), and the
whole cost of 10^4 events = integration + 10^4 / hard rate + 10^4 / shower rate. Baseline in the same run: the
catalog's ttH through plain Pythia (hard process + shower + emulation), and Pythia's tt̄H hard process alone
(PartonLevel/HadronLevel off). Prints one table (markdown) for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", nargs="*", default=["tHq", "ttW", "ttt", "tttt", "ttyy"])
    ap.add_argument("--lhe-events", type=int, default=400)
    ap.add_argument("--shower-events", type=int, default=100)
    ap.add_argument("--baseline-events", type=int, default=200)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from hepfm_data import load_catalog
    from hepfm_data.readers.generation import pythia as P
    from hepfm_data.readers.generation.lo.generator import LOGenerator

    cat = load_catalog()

    # baseline: plain Pythia ttH, full chain and hard process only
    tth = cat.process("ttH")
    t0 = time.perf_counter()
    P.generate(tth, args.baseline_events, args.seed)
    full_tth = args.baseline_events / (time.perf_counter() - t0)
    settings = P.process_settings(tth, args.seed) + ["PartonLevel:all = off", "HadronLevel:all = off",
                                                     "ProcessLevel:resonanceDecays = off"]
    pythia = P.make_pythia(settings, "ttH hard process")
    t0 = time.perf_counter()
    n = 0
    while n < 2000:
        n += bool(pythia.next())
    hard_tth = n / (time.perf_counter() - t0)
    print(f"baseline Pythia ttH: full chain {full_tth:.1f} ev/s, hard process only {hard_tth:.0f} ev/s", flush=True)

    rows = []
    for name in args.processes:
        proc = cat.process(name)
        spec = proc.generator
        t0 = time.perf_counter()
        gen = LOGenerator(spec.process, pdf=spec.pdf)
        gen.integrate(spec.precision)
        t_int = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            lhe = Path(tmp) / "lo.lhe"
            t0 = time.perf_counter()
            res = gen.write_lhe(lhe, args.lhe_events, args.seed, spec.max_overweight)
            hard = args.lhe_events / (time.perf_counter() - t0)
            shower_proc = __import__("dataclasses").replace(proc, generator=None)
            t0 = time.perf_counter()
            P.generate(shower_proc, args.shower_events, args.seed, lhe=lhe)
            shower = args.shower_events / (time.perf_counter() - t0)
        cost = t_int + 1e4 / hard + 1e4 / shower
        eff = args.lhe_events / res["tried"]
        rows.append((name, gen.sigma_pb, gen.error_pb, t_int, eff, hard, shower, 1.0 / (1 / hard + 1 / shower), cost))
        print(f"{name}: sigma {gen.sigma_pb:.4g} +- {gen.error_pb:.2g} pb, integration {t_int:.0f} s, "
              f"unweighting efficiency {eff:.4f}, LHE {hard:.1f} ev/s, shower+emulation {shower:.1f} ev/s, "
              f"10^4 events {cost / 60:.1f} min", flush=True)

    print("\n| process | σ LO (pb) | integration (s) | unweighting efficiency | unweighted LHE ev/s/core | "
          "shower + emulation ev/s/core | whole chain ev/s/core | vs Pythia tt̄H chain | 10⁴ events (min) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, s, e, ti, eff, h, sh, chain, cost in rows:
        print(f"| {name} | {s:.4g} ± {e:.2g} | {ti:.0f} | {eff:.4f} | {h:.1f} | {sh:.1f} | {chain:.1f} | "
              f"{chain / full_tth:.2f}× | {cost / 60:.1f} |")
    print(f"| Pythia tt̄H (baseline) | — | — | — | {hard_tth:.0f} (hard only) | — | {full_tth:.1f} | 1× | "
          f"{1e4 / full_tth / 60:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
