"""``hepfm-data catalog [NAME] [--file catalog.yaml]``."""

from __future__ import annotations

import argparse

from hepfm_data.core.catalog import Catalog, load_catalog

HELP = "list the catalog's processes and tasks, or show one entry"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="a process or task name to show in full")
    p.add_argument("--file", help="catalog YAML to read (default: the shipped catalog)")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def format_catalog(cat: Catalog) -> str:
    rows = [[p.index, p.name, p.role, p.fidelity, f"{p.paper_events:,}", p.upstream_name] for p in cat.processes]
    study = {p.name for p in cat.processes if p.role == "study"}
    n_paper = sum(1 for t in cat.tasks if not study & set(t.classes))
    out = [f"Processes ({len(cat.pretraining)} pretraining, {len(cat.evaluation)} evaluation, {len(study)} of "
           f"related studies) - {cat.source}",
           _table(rows, ["idx", "name", "role", "fidelity", "paper events", "upstream"]), "",
           f"Tasks ({n_paper} of the paper, {len(cat.tasks) - n_paper} of related studies)",
           _table([[t.name, t.classes[0], t.classes[1]] for t in cat.tasks], ["task", "label 0", "label 1"])]
    return "\n".join(out)


def format_entry(cat: Catalog, name: str) -> str:
    if cat.has_task(name):
        t = cat.task(name)
        return "\n".join([f"task: {t.name}", f"description: {t.description}",
                          f"label 0: {t.classes[0]}", f"label 1: {t.classes[1]}"])
    p = cat.process(name)
    cit = cat.citations[p.citation]
    lines = [
        f"process: {p.name}", f"role: {p.role}  (multiclass index {p.index})",
        f"description: {p.description}", f"paper events: {p.paper_events:,}",
        f"fidelity: {p.fidelity}",
        f"upstream: {cat.upstream.repository} ({cat.upstream.kind}) name {p.upstream_name!r}",
        f"paper chain: {cat.paper_chain.matrix_element}; {cat.paper_chain.decays}; "
        f"{cat.paper_chain.shower}; {cat.paper_chain.detector}; sqrt(s) = {cat.paper_chain.sqrt_s_gev:g} GeV",
        "local Pythia 8 settings:" if p.pythia else
        "local Pythia 8 settings: none" + ("" if p.generator else " (external input only)"),
        *[f"  {s}" for s in p.pythia or ()],
    ]
    if p.generator:
        g = p.generator
        lines.append(f"hard process: hepfm LO generator ({g.kind}) process {g.process!r}, PDF:pSet {g.pdf}, "
                     f"integration precision {g.precision:g}, max_overweight {g.max_overweight:g} "
                     "(LHE -> Pythia shower)")
    if p.slha:
        lines.append(f"SLHA spectrum: {p.slha}")
    if p.cp_mixing:
        c = p.cp_mixing
        lines.append(f"CP mixing (LO matrix-element reweighting of SM ttH): alpha = {c.alpha_deg} deg, "
                     f"kappa = {c.kappa}, kappa_tilde = {c.kappa_tilde}" + (", weighted" if c.weighted else ""))
    lines.append(f"citation: {cit.authors}, \"{cit.title}\", arXiv:{cit.arxiv}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    cat = load_catalog(args.file)
    print(format_entry(cat, args.name) if args.name else format_catalog(cat))
    return 0
