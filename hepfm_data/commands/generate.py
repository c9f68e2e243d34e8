"""``hepfm-data generate PROCESS --events N --seed S --out DIR [--scheduler ADDR] [--workers N] [--lhe FILE]``."""

from __future__ import annotations

import argparse

HELP = "generate events with Pythia 8 + the ATLAS-like emulation"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("process", help="catalog process name (hepfm-data catalog lists them)")
    p.add_argument("--events", type=int, required=True, help="number of events to generate")
    p.add_argument("--seed", type=int, required=True, help="run seed (1..900000000); blocks derive their own")
    p.add_argument("--out", default="generated",
                   help="output directory (blocks go to OUT/PROCESS/block-NNNNN.*; default: ./generated)")
    p.add_argument("--block-size", type=int, default=500, help="events per Dask task (default 500)")
    p.add_argument("--scheduler", help="Dask scheduler address (default: a LocalCluster on this machine)")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: number of cores)")
    p.add_argument("--lhe", help="read the hard process from this LHE file (Beams:frameType = 4)")
    p.add_argument("--catalog", help="catalog YAML (default: the shipped catalog)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..catalog import load_catalog
    from ..production import load_block, produce

    cat = load_catalog(args.catalog)
    paths = produce(args.process, args.events, args.seed, args.out, block_size=args.block_size,
                    scheduler=args.scheduler, n_workers=args.workers, progress=not args.no_progress,
                    lhe=args.lhe, catalog=cat)
    n, sigma = 0, []
    for path in paths:
        events, info = load_block(path)
        n += len(events)
        if info.generator.get("sigma_pb") is not None:
            sigma.append(info.generator["sigma_pb"])
    proc = cat.process(args.process)
    label = f" [{proc.fidelity.upper()}: {proc.description}]" if proc.fidelity != "native" else ""
    xs = f", Pythia sigma ~ {sum(sigma) / len(sigma):.4g} pb" if sigma else ""
    print(f"{args.process}: {n} events in {len(paths)} blocks under {args.out}/{args.process}{xs}{label}")
    return 0
