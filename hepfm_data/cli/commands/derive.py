"""``hepfm-data derive STORE --representation NAME``: derive a representation from a store's stored
event record (no input files needed); resumable, one Dask task per shard."""

from __future__ import annotations

import argparse
import json

HELP = "derive a representation (e.g. paper_taus, or paper after a selection change) from the stored record"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from hepfm_data.representations.registry import REPRESENTATIONS

    p.add_argument("store", help="store (ROOT/PROCESS) or storage root (every store under it): directory or URL")
    p.add_argument("--representation", required=True, choices=sorted(n for n, r in REPRESENTATIONS.items() if r.materialised),
                   help="representation to derive")
    p.add_argument("--catalog", default=None, help="catalog YAML whose selection/features/labels to use")
    p.add_argument("--workers", type=int, default=1, help="Dask worker processes (default 1: in this process)")
    p.add_argument("--storage-options", default=None, help="JSON dict of fsspec storage options")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from hepfm_data.cli.commands._stores import stores_at
    from hepfm_data.core.catalog import load_catalog
    from hepfm_data.pipelines.derive import derive

    opts = json.loads(args.storage_options) if args.storage_options else None
    cat = load_catalog(args.catalog) if args.catalog else None
    for store in stores_at(args.store, opts):
        out = derive(store, args.representation, catalog=cat, workers=args.workers, storage_options=opts,
                     progress=not args.quiet)
        entry = out.manifest.representations[args.representation]
        print(f"{out.url}: representation {args.representation!r} v{entry['version']} derived "
              f"({len(entry['shards'])} shards, fingerprint {entry['fingerprint'][:12]})")
    return 0
