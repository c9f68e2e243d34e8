"""``hepfm-data generate PROCESS --events N --seed S --out DIR [--scheduler ADDR] [--workers N] [--lhe FILE]
[--cp-angle DEG [--kappa K] [--kappa-tilde KT] [--cp-weighted]] [--keep-hard-process]``."""

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
    p.add_argument("--keep-hard-process", action="store_true",
                   help="keep every event's hard process (LHE columns) in its record, for hepfm-data resimulate")
    p.add_argument("--cp-angle", type=float, metavar="DEG",
                   help="tt̄H only: CP-mixing angle alpha in degrees of the top Yukawa "
                        "kappa cos(alpha) + i kappa_tilde gamma5 sin(alpha) (LO matrix-element reweighting "
                        "of SM tt̄H; 0 = SM, 90 = CP-odd); overrides the catalog's cp_mixing")
    p.add_argument("--kappa", type=float, help="with --cp-angle: CP-even coupling modifier (default 1)")
    p.add_argument("--kappa-tilde", type=float, help="with --cp-angle: CP-odd coupling modifier (default 1)")
    p.add_argument("--cp-weighted", action="store_true",
                   help="with CP mixing: keep every SM event with weight w = |M_alpha|^2/|M_SM|^2 (no unweighting)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def with_cp_options(proc, angle, kappa, kappa_tilde, weighted):
    """``proc`` with the command line's CP-mixing options applied (GenerationError when not tt̄H)."""
    import dataclasses

    from hepfm_data.core.catalog import TTH_SWITCHES, CPMixing
    from hepfm_data.core.errors import GenerationError

    if angle is None and kappa is None and kappa_tilde is None and not weighted:
        return proc
    if not any(s.split("=")[0].strip() in TTH_SWITCHES for s in proc.pythia or ()):
        raise GenerationError(f"--cp-angle/--kappa/--kappa-tilde/--cp-weighted reweight SM tt̄H: process "
                              f"{proc.name!r} is not tt̄H (needs {' or '.join(TTH_SWITCHES)})")
    if angle is None and proc.cp_mixing is None:
        raise GenerationError(f"process {proc.name!r} has no catalog cp_mixing: give --cp-angle")
    base = proc.cp_mixing if angle is None else CPMixing(alpha_deg=angle)  # a new angle: kappas default to 1
    cp = CPMixing(alpha_deg=base.alpha_deg, kappa=base.kappa if kappa is None else kappa,
                  kappa_tilde=base.kappa_tilde if kappa_tilde is None else kappa_tilde,
                  weighted=weighted or base.weighted,
                  max_overweight=proc.cp_mixing.max_overweight if proc.cp_mixing is not None else 0.0)
    return dataclasses.replace(proc, cp_mixing=cp)


def run(args: argparse.Namespace) -> int:
    from hepfm_data.core.catalog import load_catalog
    from hepfm_data.pipelines.production import produce
    from hepfm_data.readers.generation.blocks import load_block

    cat = load_catalog(args.catalog)
    proc = with_cp_options(cat.process(args.process), args.cp_angle, args.kappa, args.kappa_tilde, args.cp_weighted)
    paths = produce(proc, args.events, args.seed, args.out, block_size=args.block_size,
                    scheduler=args.scheduler, n_workers=args.workers, progress=not args.no_progress,
                    lhe=args.lhe, catalog=cat, keep_hard_process=args.keep_hard_process)
    n, sigma = 0, []
    for path in paths:
        events, info = load_block(path)
        n += len(events)
        if info.generator.get("sigma_pb") is not None:
            sigma.append(info.generator["sigma_pb"])
    label = f" [{proc.fidelity.upper()}: {proc.description}]" if proc.fidelity != "native" else ""
    xs = f", Pythia sigma ~ {sum(sigma) / len(sigma):.4g} pb" if sigma else ""
    cp = info.generator.get("cp_reweighting") if paths else None
    if cp:
        print(f"{args.process}: CP mixing alpha = {cp['alpha_deg']} deg, kappa = {cp['kappa']}, kappa_tilde = "
              f"{cp['kappa_tilde']}: mean weight (sigma ratio to SM) {cp['mean_weight']:.4f}, "
              f"w_max {cp['w_max']:.4g}, acceptance {cp['acceptance']:.4f} (last block)")
    print(f"{args.process}: {n} events in {len(paths)} blocks under {args.out}/{args.process}{xs}{label}")
    return 0
