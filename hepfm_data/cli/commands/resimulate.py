"""``hepfm-data resimulate STORE --views seed,fsr_up,fsr_down,vincia,lund_z [--seed S] [--out ROOT]
[--workers N | --scheduler ADDR]``: re-simulated views of a store generated with --keep-hard-process."""

from __future__ import annotations

import argparse
import json

HELP = "re-simulate a generated store's events from their kept hard processes (RS3L views)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="nominal store (ROOT/PROCESS) built with --generate N --keep-hard-process")
    p.add_argument("--views", required=True,
                   help="comma-separated view names of the catalog's resimulation.views "
                        "(shipped: seed, fsr_up, fsr_down, vincia, lund_z, lund_pt)")
    p.add_argument("--seed", type=int, default=1, help="re-simulation seed (per view, unit and attempt; default 1)")
    p.add_argument("--out", default=None, help="root of the view stores (default STORE/views; store OUT/VIEW/PROCESS)")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: all cores)")
    p.add_argument("--scheduler", help="Dask scheduler address, or 'sync' for this process")
    p.add_argument("--catalog", default=None, help="catalog YAML (default: the packaged catalog.yaml)")
    p.add_argument("--storage-options", default=None, help="JSON dict of fsspec storage options")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from hepfm_data.core.catalog import load_catalog
    from hepfm_data.pipelines.resimulate import resimulate

    opts = json.loads(args.storage_options) if args.storage_options else None
    views = [v.strip() for v in args.views.split(",") if v.strip()]
    out = resimulate(args.store, views, catalog=load_catalog(args.catalog), seed=args.seed, out=args.out,
                     workers=args.workers, scheduler=args.scheduler, storage_options=opts, progress=not args.quiet)
    for name, store in out.items():
        print(f"{name}: {store.url} ({store.manifest.n_events} events, aligned with {args.store})")
    return 0
