"""``hepfm-data build PROCESS (--input GLOB... | --generate N) --out ROOT``: build a store.

From Delphes ROOT files (``--input``, any fsspec URL or glob) or from locally
generated events (``--generate N --seed S``: ``hepfm_data.production.produce``
blocks, resumable). Re-running an interrupted command resumes it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import HepfmError

HELP = "build a sharded store from Delphes ROOT or generated events"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..store import DEFAULT_EVENTS_PER_SHARD, LAYOUTS

    p.add_argument("process", help="catalog process name (sets the multiclass label)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", nargs="+", metavar="URL",
                     help="ROOT files (Delphes, CMS NanoAOD or ATLAS PHYSLITE): paths, globs or fsspec URLs")
    src.add_argument("--generate", type=int, metavar="N", help="generate N events with Pythia 8 + emulation")
    p.add_argument("--format", choices=["delphes", "nanoaod", "physlite"],
                   help="input format of --input (default: detected from the trees of the files)")
    p.add_argument("--out", required=True, help="store root (local path or fsspec URL); the store is OUT/PROCESS")
    p.add_argument("--layout", choices=sorted(LAYOUTS), default="zarr")
    p.add_argument("--events-per-shard", type=int, default=DEFAULT_EVENTS_PER_SHARD)
    p.add_argument("--seed", type=int, default=1, help="generation seed (1..900000000) and b-tag random seed (default 1)")
    p.add_argument("--step-size", type=int, default=10_000, help="Delphes entries read per chunk (bounds memory)")
    p.add_argument("--block-size", type=int, default=500, help="events per generation block (--generate)")
    p.add_argument("--workdir", help="generation work directory (default OUT/_generated, must be local)")
    p.add_argument("--scheduler", help="Dask scheduler address for generation (default: a LocalCluster)")
    p.add_argument("--workers", type=int, help="LocalCluster workers for generation (default: all cores)")
    p.add_argument("--split-salt", default="hepfm-v1", help="salt of the event-id hash that assigns splits")
    p.add_argument("--fractions", default="0.8,0.1,0.1", help="train,validation,test fractions")
    p.add_argument("--codec", help="compression codec (zarr: zstd, blosc-zstd, blosc-lz4, none; parquet: zstd, ...)")
    p.add_argument("--level", type=int, help="compression level")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--append", action="store_true", help="add shards to an existing store")
    mode.add_argument("--overwrite", action="store_true", help="delete an existing store first")
    p.add_argument("--storage-options", default=None, help="JSON dict of fsspec storage options for input and output")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _generated_blocks(args: argparse.Namespace):
    try:
        from .. import production
    except ImportError as exc:  # pragma: no cover - the generation layer is part of the package
        raise HepfmError(f"--generate needs hepfm_data.production (event generation): {exc}") from None
    if "://" in args.out and not args.workdir:
        raise HepfmError("--generate with a remote --out needs a local --workdir for the generated blocks")
    workdir = Path(args.workdir or Path(args.out) / "_generated")
    paths = production.produce(args.process, args.generate, args.seed, workdir, block_size=args.block_size,
                               scheduler=args.scheduler, n_workers=args.workers, progress=not args.quiet)
    for path in paths:
        yield production.load_block(path)


def _input_blocks(args: argparse.Namespace, opts):
    """(blocks, event-id rule) of ``--input`` through the event source of its (detected) format."""
    from ..inputs import open_source
    from ..readers.delphes import expand_inputs
    from ..readers.formats import detect_formats

    urls = expand_inputs(args.input, opts)
    fmt = args.format or detect_formats(urls, opts)
    source = open_source(fmt, args.process, urls, step_size=args.step_size, storage_options=opts)
    if not args.quiet:
        print(f"input format: {fmt}{'' if args.format else ' (detected)'}; {len(urls)} file(s)")
    return (b for unit in source.units() for b in source.read(unit)), source.event_id_rule


def run(args: argparse.Namespace) -> int:
    from ..store import LAYOUTS, write_store

    opts = json.loads(args.storage_options) if args.storage_options else None
    try:
        fractions = tuple(float(x) for x in args.fractions.split(","))
    except ValueError:
        raise HepfmError(f"--fractions must be three comma-separated numbers, got {args.fractions!r}") from None
    compression = None
    if args.codec or args.level is not None:
        compression = dict(LAYOUTS[args.layout].default_compression)
        if args.codec:
            compression["codec"] = args.codec
        if args.level is not None:
            compression["level"] = args.level
    if args.input:
        blocks, rule = _input_blocks(args, opts)
    else:
        blocks = _generated_blocks(args)
        rule = "generator: block index * block_size + event index (hepfm_data.production)"
    mode = "append" if args.append else "overwrite" if args.overwrite else "create"
    store = write_store(args.out, args.process, blocks, layout=args.layout, events_per_shard=args.events_per_shard,
                        split_salt=args.split_salt, fractions=fractions, seed=args.seed, storage_options=opts,
                        compression=compression, mode=mode, event_id_rule=rule, progress=not args.quiet)
    m = store.manifest
    sizes = ", ".join(f"{k} {v}" for k, v in m.split_sizes().items())
    print(f"{store.url}: {m.n_events} events in {len(m.shards)} {m.layout} shards ({sizes}); "
          f"{m.bytes / max(m.n_events, 1):.1f} bytes/event")
    return 0
