"""``hepfm-data verify STORE|ROOT``: re-hash every shard against its manifest (every store under a
storage root); exit 1 naming bad shards."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "re-check every shard checksum of a store (or of every store under a storage root)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="store (ROOT/PROCESS) or storage root (ROOT): directory or URL")
    p.add_argument("--storage-options", default=None, help="JSON dict of fsspec storage options")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from hepfm_data.cli.commands._stores import stores_at

    bad = 0
    for store in stores_at(args.store, json.loads(args.storage_options) if args.storage_options else None):
        report = store.verify_report(progress=not args.quiet)
        n = report.n_checked
        if report.problems:
            bad += 1
            for line in report.problems:
                print(f"BAD {line}", file=sys.stderr)
            print(f"{store.url}: {len(report.problems)} of {n} shards failed verification ({report.breakdown()})",
                  file=sys.stderr)
        else:
            print(f"{store.url}: all {n} shards OK ({report.breakdown(' + ')}; {store.manifest.n_events} events, "
                  f"{store.manifest.bytes} bytes)")
    return 1 if bad else 0
