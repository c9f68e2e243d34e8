"""``hepfm-data build PROCESS (--input GLOB... | --generate N) --out ROOT``: build a store.

From ROOT files (``--input``, any fsspec URL or glob: Delphes, CMS NanoAOD or ATLAS
PHYSLITE, ``--format`` or detected from the trees) or from locally
generated events (``--generate N --seed S``, Pythia 8 blocks): both are event
sources (``hepfm_data.inputs``) built by ``hepfm_data.pipelines.build.build_store``, one Dask
task per unit (``--workers N``, ``--scheduler ADDRESS``). Re-running an interrupted
command resumes it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hepfm_data.core.errors import HepfmError

HELP = "build a sharded store from Delphes / NanoAOD / PHYSLITE ROOT files or generated events"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from hepfm_data.inputs.delphes import DEFAULT_ENTRIES_PER_UNIT
    from hepfm_data.inputs.generated import DEFAULT_BLOCK_SIZE, DEFAULT_EVENTS_PER_UNIT
    from hepfm_data.store import DEFAULT_EVENTS_PER_SHARD, LAYOUTS

    p.add_argument("process", help="catalog process name (sets the multiclass label)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", nargs="+", metavar="URL",
                     help="ROOT files (Delphes, CMS NanoAOD or ATLAS PHYSLITE): paths, globs or fsspec URLs")
    src.add_argument("--generate", type=int, metavar="N", help="generate N events with Pythia 8 + emulation")
    p.add_argument("--out", required=True, help="store root (local path or fsspec URL); the store is OUT/PROCESS")
    p.add_argument("--layout", choices=sorted(LAYOUTS), default="zarr")
    p.add_argument("--events-per-shard", type=int, default=DEFAULT_EVENTS_PER_SHARD)
    p.add_argument("--seed", type=int, default=1, help="generation seed (1..900000000) and b-tag random seed (default 1)")
    p.add_argument("--step-size", type=int, default=10_000, help="Delphes entries read per chunk (bounds memory)")
    p.add_argument("--format", default=None, help="input format of --input: delphes, nanoaod, physlite (default: "
                   "detected from the trees of the files; hepfm_data.inputs.register_source adds more)")
    p.add_argument("--entries-per-unit", type=int, default=None,
                   help=f"input entries (--input; default {DEFAULT_ENTRIES_PER_UNIT:,}) or generated events (--generate; "
                        f"default {DEFAULT_EVENTS_PER_UNIT:,}, whole blocks) per build task; each task writes one shard "
                        "per split")
    p.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE,
                   help=f"events per generation block = Pythia seed (--generate; default {DEFAULT_BLOCK_SIZE}): the "
                        "generated events depend on it, the unit size only groups blocks")
    p.add_argument("--keep-hard-process", action="store_true",
                   help="--generate: keep every event's hard process in the record (needed by hepfm-data resimulate)")
    p.add_argument("--workdir", help="generated blocks are kept here (default OUT/_generated, must be local)")
    p.add_argument("--scheduler", help="Dask scheduler address, or 'sync' for this process (default: a "
                   "LocalCluster when there is more than one unit)")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: all cores)")
    p.add_argument("--catalog", help="catalog YAML (default: the packaged catalog.yaml)")
    p.add_argument("--split-salt", default="hepfm-v1", help="salt of the event-id hash that assigns splits")
    p.add_argument("--fractions", default="0.8,0.1,0.1", help="train,validation,test fractions")
    p.add_argument("--codec", help="compression codec (zarr: zstd, blosc-zstd, blosc-lz4, none; parquet: zstd, ...)")
    p.add_argument("--level", type=int, help="compression level")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--append", action="store_true", help="add shards to an existing store")
    mode.add_argument("--overwrite", action="store_true", help="delete an existing store first")
    p.add_argument("--storage-options", default=None, help="JSON dict of fsspec storage options for input and output")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def source_from_args(args: argparse.Namespace, catalog, opts):
    """The event source of the command line: Delphes-like files (``--input``, ``--format``) or generation."""
    from hepfm_data.inputs import open_source
    from hepfm_data.inputs.delphes import DEFAULT_ENTRIES_PER_UNIT
    from hepfm_data.inputs.generated import DEFAULT_EVENTS_PER_UNIT, PythiaGeneration

    if args.input:
        fmt = args.format
        if fmt is None:
            from hepfm_data.readers.delphes import expand_inputs
            from hepfm_data.readers.formats import detect_formats

            fmt = detect_formats(expand_inputs(args.input, opts), opts)
            if not args.quiet:
                print(f"input format: {fmt} (detected)")
        per_unit = args.entries_per_unit or DEFAULT_ENTRIES_PER_UNIT
        return open_source(fmt, args.process, args.input, entries_per_unit=per_unit, step_size=args.step_size,
                           storage_options=opts)
    if "://" in args.out and not args.workdir:
        raise HepfmError("--generate with a remote --out needs a local --workdir for the generated blocks")
    workdir = args.workdir or str(Path(args.out) / "_generated")
    return PythiaGeneration(catalog.process(args.process), args.generate, args.seed, block_size=args.block_size,
                            workdir=workdir, keep_hard_process=args.keep_hard_process,
                            events_per_unit=args.entries_per_unit or DEFAULT_EVENTS_PER_UNIT)


def run(args: argparse.Namespace) -> int:
    from hepfm_data.core.catalog import load_catalog
    from hepfm_data.pipelines.build import build_store
    from hepfm_data.store import LAYOUTS

    cat = load_catalog(args.catalog) if args.catalog else load_catalog()
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
    source = source_from_args(args, cat, opts)
    mode = "append" if args.append else "overwrite" if args.overwrite else "create"
    store = build_store(source, args.out, catalog=cat, layout=args.layout, events_per_shard=args.events_per_shard,
                        split_salt=args.split_salt, fractions=fractions, seed=args.seed, storage_options=opts,
                        compression=compression, mode=mode, scheduler=args.scheduler, workers=args.workers,
                        progress=not args.quiet)
    m = store.manifest
    sizes = ", ".join(f"{k} {v}" for k, v in m.split_sizes().items())
    print(f"{store.url}: {m.n_events} events in {len(m.shards)} {m.layout} shards ({sizes}); "
          f"{m.bytes / max(m.n_events, 1):.1f} bytes/event")
    from hepfm_data.representations.registry import unservable

    for name, missing in unservable(m.schema).items():
        if missing:
            colls = sorted({x.rsplit(".", 1)[0] for x in missing})
            print(f"cannot serve representation {name!r}: the record lacks {', '.join(colls)}")
    return 0
