"""Jet-pair loading (RS3L, ``Paired(jet_constituents, views)``) vs plain jet loading (``jet_constituents``), same run.

    python benchmarks/rs3l_pairs.py [--events 300] [--views seed,fsr_up] [--repeats 3]

Builds rs3l_hz with kept hard processes and its views in a temporary directory (Pythia, not timed),
then reads the train split with each representation (0 workers, one core), alternating baseline and pairs
``--repeats`` times (load drifts hit both alike). Prints jets/s, pairs/s, seconds per epoch and the
ratio of nominal events/s (same events read), pairs over plain: a pair batch reads the nominal and every view's record shards
and computes the features of each ((K+1)x the work), so ~1/(K+1) is expected. Jet cuts relaxed to
|eta| < 2.5, pT > 300 GeV (``testing.wide_jet_constituents``) so a few hundred events give jets.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--views", default="seed,fsr_up")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import torch

    from hepfm_data.loader import make_loader
    from hepfm_data.representations import Paired
    from hepfm_data.testing import build_resimulated, wide_jet_constituents

    torch.set_num_threads(1)
    views = args.views.split(",")
    spec = wide_jet_constituents()
    with tempfile.TemporaryDirectory() as tmp:
        urls = build_resimulated(tmp, ("rs3l_hz",), views, args.events, events_per_shard=100)["rs3l_hz"]

        def run(rep) -> tuple[float, int, int]:
            ld = make_loader([urls["nominal"]], batch_size=64, seed=1, device="cpu", mixing="none", representation=rep)
            t0, n_ev, n_ex = time.perf_counter(), 0, 0
            for b in ld:
                n_ex += len(b)
                n_ev += len(set(b.event_id.tolist()))
            return time.perf_counter() - t0, n_ev, n_ex

        rows = []
        for _ in range(args.repeats):
            base = run(spec)
            pairs = run(Paired(spec, {urls["nominal"]: [urls[v] for v in views]}, names=views))
            rows.append((base, pairs))
    print(f"rs3l_hz, {args.events} events generated, views {views}, train split, 0 workers, one core")
    print(f"{'repeat':>6s} {'plain jets/s':>13s} {'pairs/s':>9s} {'plain s':>8s} {'pairs s':>8s} {'ratio':>6s}")
    for i, ((tb, _, jb), (tp, _, jp)) in enumerate(rows):  # ratio: nominal events/s, pairs over plain
        print(f"{i:6d} {jb / tb:13.1f} {jp / 2 / tp:9.1f} {tb:8.2f} {tp:8.2f} {tb / tp:6.2f}")
    print(f"selected nominal jets {rows[0][0][2]}, pairs {rows[0][1][2] // 2} (the rest unpaired)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
