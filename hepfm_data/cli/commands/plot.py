"""``hepfm-data plot PROCESS... --input DIR --out plot.png``: distributions of generated blocks."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "plot kinematic distributions per process (PNG)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("processes", nargs="+", metavar="PROCESS", help="process names (blocks under DIR/PROCESS/)")
    p.add_argument("--input", default="generated",
                   help="directory written by hepfm-data generate --out (default: ./generated)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--catalog", help="catalog YAML (default: the shipped catalog)")
    p.add_argument("--jets", action="store_true",
                   help="large-R jets instead: constituent multiplicity, soft-drop mass and N2, Higgs vs QCD "
                        "(processes with particle_flow: true, e.g. rs3l_hz rs3l_zjet)")


def run(args: argparse.Namespace) -> int:
    from hepfm_data.core.catalog import load_catalog
    from hepfm_data.core.errors import InputFileError
    from hepfm_data.core.events import concatenate
    from hepfm_data.readers.generation.blocks import load_block
    from hepfm_data.serving.plotting import plot_jets, plot_processes

    cat = load_catalog(args.catalog)
    samples, labels = {}, {}
    for name in args.processes:
        proc = cat.process(name)
        blocks = sorted((Path(args.input) / name).glob("block-*.parquet"))
        if not blocks:
            raise InputFileError(f"no generated blocks for {name!r} under {str(Path(args.input) / name)!r} "
                                 f"(run: hepfm-data generate {name} --events N --seed S --out {args.input})")
        samples[name] = concatenate([load_block(b)[0] for b in blocks])
        labels[name] = f"{name} (PROXY)" if proc.fidelity == "proxy" else name
    out = plot_jets(samples, args.out) if args.jets else plot_processes(samples, args.out, cat, labels)
    print(f"wrote {out}")
    return 0
