"""Events/s/core of the generation chain vs Pythia alone, measured in the same run.

    python benchmarks/generate.py [--process ttbar] [--events 1000] [--seed 1]

Baseline: ``Pythia.nextBatch`` alone (same settings, same seed, one core),
measured in batches alternating with the chain's so machine load hits both alike.
Chain: the same Pythia events + truth extraction + the ATLAS-like emulation
(FastJet, isolation, smearing) + the store's selection kernels
(``hepfm_data.kernels.process_block``: selection, overlap removal, b-tag,
nodes, labels) when available. Prints events/s of each and the overhead ratio
(goal: chain/Pythia time < 1.25). Warm-up batches (numba cache, imports) are
excluded from both measurements.
"""

from __future__ import annotations

import argparse
import os
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--process", default="ttbar")
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=200)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from hepfm_data import load_catalog
    from hepfm_data.readers.generation import pythia as P

    cat = load_catalog()
    proc = cat.process(args.process)
    try:
        from hepfm_data.kernels import process_block
    except ImportError:  # the store layer's kernels are optional for this benchmark
        process_block = None

    def pythia_for_run():
        return P.make_pythia(P.process_settings(proc, args.seed), f"benchmark {proc.name}")

    # warm-up: imports, numba caches, FastJet banner
    py = P.make_pythia(P.process_settings(proc, args.seed + 1))
    warm = P.batch_to_events(py.nextBatch(20, 10.0), P.detector_rng(0), 0)
    if process_block is not None:
        process_block(warm, cat, seed=0)

    # Two identical Pythia streams, measured in alternating batches so that machine load hits both alike:
    # A = Pythia alone; B = the chain (generation + truth + emulation (+ kernels)).
    py_a, py_b = pythia_for_run(), pythia_for_run()
    rng = P.detector_rng(args.seed)
    t_pythia, t_gen, t_emul, t_kern, done = 0.0, 0.0, 0.0, 0.0, 0
    while done < args.events:
        k = min(args.batch, args.events - done)
        t0 = time.perf_counter()
        py_a.nextBatch(k, 10.0)
        t1 = time.perf_counter()
        run = py_b.nextBatch(k, 10.0)
        t2 = time.perf_counter()
        events = P.batch_to_events(run, rng, done)
        t3 = time.perf_counter()
        if process_block is not None:
            process_block(events, cat, seed=args.seed)
        t4 = time.perf_counter()
        t_pythia, t_gen, t_emul, t_kern = t_pythia + t1 - t0, t_gen + t2 - t1, t_emul + t3 - t2, t_kern + t4 - t3
        done += len(run)
    t_chain = t_gen + t_emul + t_kern
    n = args.events
    print(f"process {proc.name} ({proc.fidelity}), {n} events, batch {args.batch}, 1 core")
    print(f"pythia alone:            {n / t_pythia:8.1f} events/s/core")
    print(f"chain (pythia+emulation{'+kernels' if process_block else ''}): {n / t_chain:8.1f} events/s/core")
    print(f"  of which emulation+truth {t_emul / n * 1e3:.2f} ms/event, kernels {t_kern / n * 1e3:.3f} ms/event, "
          f"pythia in chain {t_gen / n * 1e3:.2f} ms/event")
    print(f"overhead ratio (chain time / pythia time): {t_chain / t_pythia:.3f}  (goal < 1.25)")
    print(f"overhead vs the chain's own pythia time:   {(t_emul + t_kern) / t_gen:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
