"""The documentation is code that runs: README.md and every page of docs/.

What this file proves:

* every ```` ```python ```` block of README.md and of docs/**/*.md runs without error, in order, one
  namespace per file (later blocks use the names of earlier ones), in a fresh working directory —
  on small stores this test writes (synthetic event records, the real Delphes / NanoAOD / PHYSLITE
  test files), with ``HEPFM_STORAGE`` and ``HEPFM_CACHE`` pointing into that directory, so that the
  snippets run as written (``load_dataset(..., build=True)`` finds the store and builds nothing;
  nothing is downloaded); the number of blocks run is asserted per file and in total;
* every ``hepfm-data ...`` command line of the ```` ```bash ```` blocks parses with that command's
  own argument parser (options and arguments exist; the commands are not run);
* every module, class or function named as ``hepfm_data....`` / ``hepfm_models....`` in inline code
  exists, and every repository path named in inline code (``hepfm_data/...``, ``recipes/...``,
  ``tests/...::test_name``) exists;
* the process tables agree with the catalog (each process's fidelity).

The shipped backbones (``hepfm_models/pretrained/gn-*``) are used when the checkout has them; otherwise a
stand-in with the same names and card fields (random weights) is written for the snippets that load them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shlex
import shutil
import sys
import time
import traceback
import types
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)]
pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: file -> number of python blocks run (filled by test_python_blocks_run, checked by the total test)
RAN: dict[str, int] = {}


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def fences(path: Path, lang: str) -> list[tuple[int, str]]:
    """(first line, code) of every fenced block of ``lang`` in a Markdown file, in order (markdown-it,
    the parser MyST uses, so inline mentions of a fence are not blocks)."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(path.read_text())
    return [(t.map[0] + 1, t.content) for t in tokens
            if t.type == "fence" and (t.info.split() or [""])[0] == lang]


def inline_code(path: Path) -> list[str]:
    from markdown_it import MarkdownIt

    out = []
    for t in MarkdownIt("commonmark").parse(path.read_text()):
        for child in t.children or []:
            if child.type == "code_inline":
                out.append(child.content)
    return out


# ----------------------------------------------------------------------------- the data the snippets see

def jet_events(n: int, seed: int, first_event_id: int, view: int = 0):
    """:func:`synthetic_events` (with taus) plus 1-2 large-R jets per event (pT 460-800 GeV, |η| < 0.1 before
    a view's smearing) with 10-40 constituents each. ``view`` > 0: the same events (ids, jet axes within
    ΔR ~ 0.05) re-drawn as another view would be: other objects, other constituents."""
    import awkward as ak

    from hepfm_data.testing import synthetic_events

    ev = synthetic_events(n, seed + 100 * view, first_event_id, taus=True)
    rng = np.random.default_rng(seed)  # the nominal jets of these events
    n_jets = rng.integers(1, 3, n)
    m = int(n_jets.sum())
    pt, eta = rng.uniform(460, 800, m), rng.uniform(-0.09, 0.09, m)
    phi, mass = rng.uniform(-np.pi, np.pi, m), rng.uniform(20, 150, m)
    vrng = np.random.default_rng([seed, view])
    if view:
        eta, phi = eta + vrng.normal(0, 0.03, m), phi + vrng.normal(0, 0.03, m)
        phi = (phi + np.pi) % (2 * np.pi) - np.pi
    n_const = vrng.integers(10, 40, m)
    k = int(n_const.sum())
    jet = np.repeat(np.arange(m), n_const)
    c_eta = eta[jet] + vrng.normal(0, 0.2, k)
    c_pt = 1.0 + vrng.exponential(20.0, k)
    f32 = np.float32
    constituents = ak.unflatten(ak.zip({
        "pt": c_pt.astype(f32), "eta": c_eta.astype(f32),
        "phi": ((phi[jet] + vrng.normal(0, 0.2, k) + np.pi) % (2 * np.pi) - np.pi).astype(f32),
        "energy": (c_pt * np.cosh(c_eta)).astype(f32), "charge": vrng.integers(-1, 2, k).astype(np.int8),
        "kind": vrng.integers(0, 5, k).astype(np.int8), "d0": vrng.normal(0, 0.05, k).astype(f32),
        "dz": vrng.normal(0, 0.05, k).astype(f32)}), n_const)
    fatjets = ak.zip({"pt": pt.astype(f32), "eta": eta.astype(f32), "phi": phi.astype(f32), "mass": mass.astype(f32),
                      "sd_mass": (0.9 * mass).astype(f32), "n2": vrng.uniform(0.1, 0.5, m).astype(f32),
                      "truth_label": vrng.integers(1, 4, m).astype(np.int8), "constituents": constituents},
                     depth_limit=1)
    return ak.with_field(ev, ak.unflatten(fatjets, n_jets), "fatjets")


#: process -> events of its synthetic store (a few hundred: every loader example has several batches)
GRAPH_STORES = {"ttH_cp_even": 400, "ttH_cp_odd": 400, "WH": 250, "ZH": 250, "ttH": 300, "ttbar": 300,
                "ttW": 300, "ttt": 300, "tttt": 300}
JET_STORES = {"rs3l_hz": 160, "rs3l_zjet": 160}
VIEWS = ("seed",)  # aligned view stores of ZH (events) and rs3l_hz (jets)


def write_backbones(directory: Path) -> None:
    """Stand-ins of the shipped backbones (random weights, complete model cards) in ``directory``."""
    import torch

    from hepfm_models import GraphNet, ModelConfig, save_checkpoint
    from hepfm_models.backbones import NAMES, write_pretrained

    classes = ["ggF_H", "VBF_H", "WH", "ZH", "ttH", "single_top", "ttbar", "ttyy", "ttW", "ttt", "tttt"]
    for mode, name in NAMES.items():
        torch.manual_seed(0)
        model = GraphNet(ModelConfig(n_out=len(classes) if mode == "multiclass" else 38))
        save_checkpoint(directory / "checkpoints" / name, model)
        write_pretrained(directory / "checkpoints" / name, {
            "name": name, "mode": mode, "classes": classes, "code_version": "docs test stand-in",
            "training_data": {"processes": [{"name": p, "fidelity": "stand-in"} for p in classes]},
            "training": {"epochs": 0}, "validation": {"metric": "none", "value": None}}, directory)


@pytest.fixture(scope="session")
def docs_world(tmp_path_factory) -> Path:
    """The working directory every page starts from (copied per page): ``stores/`` (synthetic graph stores
    of the processes the pages name, jet stores with large-R jets, aligned views of ZH and rs3l_hz),
    ``data/ttH/``, ``cms/``, ``atlas/`` (the real test files), and ``pretrained/`` when the checkout ships
    no backbones."""
    from hepfm_data.core.events import SampleInfo
    from hepfm_data.pipelines.build import write_store
    from hepfm_data.testing import DELPHES_FILE, NANOAOD_FILE, PHYSLITE_FILE, synthetic_events
    from hepfm_models.backbones import available_pretrained

    world = tmp_path_factory.mktemp("docs_world")
    stores = world / "stores"
    kw = dict(layout="parquet", events_per_shard=200, progress=False)

    def write(root: Path, process: str, events) -> None:
        write_store(str(root), process, [(events, SampleInfo(process=process, source="synthetic"))], **kw)

    for i, (process, n) in enumerate(GRAPH_STORES.items()):
        write(stores, process, synthetic_events(n, seed=i, first_event_id=100_000 * (i + 1), taus=True))
    for v, view in enumerate(VIEWS, start=1):  # the same ZH events, other realisations
        i = list(GRAPH_STORES).index("ZH")
        write(stores / "ZH" / "views" / view, "ZH",
              synthetic_events(GRAPH_STORES["ZH"], seed=50 + v, first_event_id=100_000 * (i + 1), taus=True))
    for j, (process, n) in enumerate(JET_STORES.items()):
        first = 10_000_000 * (j + 1)
        write(stores, process, jet_events(n, seed=70 + j, first_event_id=first))
        if process == "rs3l_hz":
            for v, view in enumerate(VIEWS, start=1):
                write(stores / process / "views" / view, process, jet_events(n, 70 + j, first, view=v))
    for folder, src in (("data/ttH", DELPHES_FILE), ("cms", NANOAOD_FILE), ("atlas", PHYSLITE_FILE)):
        (world / folder).mkdir(parents=True)
        shutil.copyfile(src, world / folder / {"data/ttH": "delphes.root", "cms": "nanoaod.root",
                                               "atlas": "physlite.root"}[folder])
    if not {"gn-multiclass", "gn-multilabel"} <= set(available_pretrained()):
        (world / "pretrained").mkdir()
        write_backbones(world / "pretrained")
    return world


# ----------------------------------------------------------------------------- the python blocks


def stop_loader_workers(namespace: dict) -> None:
    """Stop the DataLoader worker processes of the loaders a page leaves behind. A worker whose
    prefetched batches were never read (``next(iter(loader))``) blocks on its full pipe, and torch's
    shutdown waits 5 s for each before terminating it: done here, at once, instead of whenever the
    garbage collector reaches them during a later page."""
    import gc

    from torch.utils.data import DataLoader

    values = list(namespace.values())
    values += [v for x in list(values) if isinstance(x, (list, tuple)) for v in x]
    for obj in values:
        dl = getattr(obj, "loader", None)
        it = getattr(dl, "_iterator", None) if isinstance(dl, DataLoader) else None
        if it is not None and hasattr(it, "_workers"):
            for w in it._workers:
                if w.is_alive():
                    w.terminate()
            it._shutdown_workers()
            dl._iterator = None
    namespace.clear()
    gc.collect()


@pytest.mark.parametrize("path", DOC_FILES, ids=rel)
def test_python_blocks_run(path, docs_world, tmp_path, monkeypatch, capsys):
    """Every python block of one page, in order, in one namespace, in a copy of the docs world."""
    from hepfm_models import backbones

    blocks = fences(path, "python")
    work = tmp_path / "work"
    if blocks:
        shutil.copytree(docs_world, work)
    else:
        work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HEPFM_STORAGE", str(work / "stores"))
    monkeypatch.setenv("HEPFM_CACHE", str(work / "cache"))
    if (work / "pretrained").exists():
        monkeypatch.setattr(backbones, "PRETRAINED_DIR", work / "pretrained")
    module = types.ModuleType(f"docs_{path.stem.replace('-', '_')}")  # a real module: dataclasses, pickling
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    seconds = []
    for line, code in blocks:
        t0 = time.perf_counter()
        try:
            exec(compile(code, f"{rel(path)}:{line}", "exec"), namespace)  # noqa: S102 - the documented code
        except Exception:
            pytest.fail(f"{rel(path)}: the python block at line {line} failed:\n{traceback.format_exc()}")
        seconds.append(time.perf_counter() - t0)
    if blocks:
        stop_loader_workers(namespace)
    assert not any(work.rglob("_generated")), "a snippet generated events (build=True found no store)"
    RAN[rel(path)] = len(blocks)
    with capsys.disabled():
        print(f"\n  {rel(path)}: {len(blocks)} python block(s) ran"
              + (f" ({', '.join(f'{t:.1f}' for t in seconds)} s)" if blocks else ""), end="")


def test_every_python_block_ran(capsys):
    """Runs after the per-page tests of this file (run the whole file): every page ran, every block of it."""
    expected = {rel(p): len(fences(p, "python")) for p in DOC_FILES}
    assert RAN == expected, "run the whole file: some pages did not run (or their block counts changed)"
    total = sum(RAN.values())
    with capsys.disabled():
        print(f"\n  {total} python blocks ran, from {sum(1 for n in RAN.values() if n)} of {len(RAN)} files", end="")
    assert total > 0


# ----------------------------------------------------------------------------- commands, names, tables


def cli_lines() -> list[tuple[str, str]]:
    """(where, command line) of every ``hepfm-data ...`` command in the bash blocks (loops and comments cut)."""
    out = []
    for path in DOC_FILES:
        for line_no, code in fences(path, "bash"):
            for k, line in enumerate(code.splitlines()):
                for m in re.finditer(r"hepfm-data\s[^;|&#\n]*", line):
                    out.append((f"{rel(path)}:{line_no + k + 1}", m.group(0).strip()))
    return out


def test_hepfm_data_command_lines_parse():
    """Each documented ``hepfm-data`` line is accepted by its command's parser (nothing is run)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # recipes.demo provides `demo`
    from hepfm_data.cli.main import COMMANDS

    commands = {**{k: v[0] for k, v in COMMANDS.items()}, "demo": "recipes.demo"}
    lines = cli_lines()
    assert len(lines) > 30
    for where, line in lines:
        args = shlex.split(line)
        assert args[1] in commands, f"{where}: unknown command in {line!r}"
        parser = argparse.ArgumentParser(prog=f"hepfm-data {args[1]}", exit_on_error=False)
        importlib.import_module(commands[args[1]]).add_arguments(parser)
        try:
            parser.parse_args(args[2:])
        except (argparse.ArgumentError, SystemExit) as exc:
            pytest.fail(f"{where}: {line!r} does not parse: {exc}")


def resolve_name(dotted: str) -> object:
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ModuleNotFoundError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def test_named_modules_objects_and_paths_exist():
    """Inline code naming ``hepfm_data.x.y`` / ``hepfm_models.x`` resolves (or is one of the entry-point
    groups hepfm reads); repository paths exist."""
    from hepfm_data.cli.main import PLUGIN_GROUP
    from hepfm_data.representations.registry import ENTRY_POINT_GROUP

    groups = {PLUGIN_GROUP, ENTRY_POINT_GROUP}
    dotted = re.compile(r"^((?:hepfm_data|hepfm_models)(?:\.[A-Za-z_]\w*)+)")
    path_like = re.compile(r"^((?:hepfm_data|hepfm_models|recipes|tests|benchmarks|results|docs)/[\w./-]*\w)(::\w+)?")
    checked = 0
    for page in DOC_FILES:
        for code in inline_code(page):
            if code in groups:
                checked += 1
            elif m := dotted.match(code):
                try:
                    resolve_name(m.group(1))
                except (ImportError, AttributeError) as exc:
                    pytest.fail(f"{rel(page)}: `{code}` names nothing: {exc!r}")
                checked += 1
            elif (m := path_like.match(code)) and "<" not in code and "*" not in code:
                target = ROOT / m.group(1)
                assert target.exists(), f"{rel(page)}: `{code}`: no {m.group(1)} in the repository"
                if m.group(2):
                    assert re.search(rf"def {m.group(2)[2:]}\b", target.read_text()), f"{rel(page)}: `{code}`"
                checked += 1
    assert checked > 50


def test_process_tables_match_the_catalog():
    """Every table row naming a catalog process and a fidelity states the catalog's fidelity."""
    from hepfm_data import load_catalog

    cat = load_catalog()
    fidelity = {p.name: p.fidelity for p in cat.processes}
    rows = 0
    for page in DOC_FILES:
        for line in page.read_text().splitlines():
            cells = [c.strip().strip("*`") for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
            names = [c for c in cells if c in fidelity]
            stated = [c for c in cells if c in ("native", "proxy", "external-only")]
            if names and stated:
                assert stated[0] == fidelity[names[0]], f"{rel(page)}: {line}"
                rows += 1
    assert rows >= 2 * len(fidelity) - 1  # the catalog reference and the fidelity page list them all


def test_readme_is_short_and_ci_runs_its_two_commands():
    """README.md stays an entry page (<= 1,500 words), its links into docs/ exist, and .ci/run runs exactly
    its two commands, then the docs build."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.split()) <= 1500
    commands = [code.strip() for _, code in fences(ROOT / "README.md", "bash")][:2]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert all(c in ci for c in commands), (commands, ci)
    assert any(line.strip().endswith("sphinx-build -W -b html docs docs/_build/html") for line in ci)
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
    from markdown_it import MarkdownIt

    links = [c.attrs["href"] for t in MarkdownIt("commonmark").parse(readme) for c in t.children or []
             if c.type == "link_open" and "://" not in c.attrs["href"]]
    assert len(links) > 20 and all((ROOT / h.split("#")[0]).exists() for h in links), links
