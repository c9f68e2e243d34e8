"""``hepfm-data verify STORE``: re-hash every shard against the manifest; exit 1 naming bad shards."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "re-check every shard checksum of a store"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="store directory or URL (ROOT/PROCESS)")
    p.add_argument("--storage-options", default=None, help="JSON dict of fsspec storage options")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..store import open_store

    store = open_store(args.store, json.loads(args.storage_options) if args.storage_options else None)
    problems = store.verify(progress=not args.quiet)
    n = len(store.manifest.shards)
    if problems:
        for line in problems:
            print(f"BAD {line}", file=sys.stderr)
        print(f"{store.url}: {len(problems)} of {n} shards failed verification", file=sys.stderr)
        return 1
    print(f"{store.url}: all {n} shards OK ({store.manifest.n_events} events, {store.manifest.bytes} bytes)")
    return 0
