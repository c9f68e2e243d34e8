"""The tree is the architecture: layers import one way and no module imports itself through others.

Every import of every module of ``hepfm_data``, ``hepfm_models`` and ``recipes`` is parsed from its AST:
top-level, lazy (inside functions) and ``TYPE_CHECKING`` ones alike, relative ones resolved. The test
proves that (1) no module of a ``hepfm_data`` layer imports a module of a higher layer (the list
below, bottom first; the package face ``hepfm_data/__init__.py`` is exempt, it only re-exports),
(2) ``hepfm_data`` imports neither ``hepfm_models`` nor ``recipes``, and ``hepfm_models`` imports only
``hepfm_data.batches`` (the batch types are the contract), (3) the import graph has no cycle
(``graphlib``; an implicit import of a parent package does not count), (4) nothing but ``__init__.py``
sits at the top of ``hepfm_data/``.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hepfm_data", "hepfm_models", "recipes")

#: hepfm_data's layers, bottom first: a module may import its own layer and those below it
LAYERS = ("core", "sources", "kernels", "batches", "readers", "inputs", "store", "representations", "pipelines",
          "loader", "serving", "cli", "testing")


def modules() -> dict[str, Path]:
    """{dotted module name: path} of every module of the three packages."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that module ``name`` (at ``path``) imports anywhere in its code."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                mod = ".".join(base[:len(base) - (node.level - 1)] + ([mod] if mod else []))
            # ``from pkg import sub``: the submodule (the package itself only when a name is not a module)
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            # the longest known module the name starts with (``a.b.func`` -> ``a.b``)
            parts = t.split(".")
            for k in range(len(parts), 0, -1):
                cand = ".".join(parts[:k])
                if cand in known:
                    if cand != name:
                        found.add(cand)
                    break
    return found


def layer(name: str) -> int | None:
    parts = name.split(".")
    if parts[0] != "hepfm_data" or len(parts) < 2:
        return None
    return LAYERS.index(parts[1])


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_hepfm_data_module_is_in_a_layer_and_nothing_but_the_face_at_the_top():
    top = sorted(p.name for p in (REPO / "hepfm_data").glob("*.py"))
    assert top == ["__init__.py"], top
    unknown = sorted({n.split(".")[1] for n in modules() if n.startswith("hepfm_data.")} - set(LAYERS))
    assert not unknown, f"packages of hepfm_data in no layer: {unknown}"


def test_imports_point_down_the_layer_list():
    bad = []
    for name, deps in graph().items():
        pkg = name.split(".")[0]
        for dep in sorted(deps):
            dpkg = dep.split(".")[0]
            if pkg == "hepfm_data" and dpkg in ("hepfm_models", "recipes"):
                bad.append(f"{name} -> {dep} (hepfm_data never imports {dpkg})")
            elif pkg == "hepfm_models" and dpkg == "hepfm_data" and not (
                    dep == "hepfm_data.batches" or dep.startswith("hepfm_data.batches.")):
                bad.append(f"{name} -> {dep} (hepfm_models imports only hepfm_data.batches)")
            elif pkg == "hepfm_models" and dpkg == "recipes":
                bad.append(f"{name} -> {dep} (recipes sit above hepfm_models)")
            elif pkg == "hepfm_data" and name != "hepfm_data" and dpkg == "hepfm_data":
                if dep == "hepfm_data":
                    bad.append(f"{name} -> hepfm_data (the package face: import from the layer itself)")
                elif layer(dep) > layer(name):
                    bad.append(f"{name} ({LAYERS[layer(name)]}) -> {dep} ({LAYERS[layer(dep)]}): points up")
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    try:
        tuple(graphlib.TopologicalSorter(graph()).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_the_checker_sees_lazy_and_type_checking_imports(tmp_path):
    """The parser itself: an import inside a function and one under TYPE_CHECKING both count."""
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hepfm_data.loader import x\n"
                   "def f():\n    from .store import y\n")
    known = {"hepfm_data.loader": src, "hepfm_data.store": src, "hepfm_data.core.m": src}
    assert imports("hepfm_data.core.m", src, known) == {"hepfm_data.loader"}
    known["hepfm_data.core.store"] = src
    assert imports("hepfm_data.core.m", src, known) == {"hepfm_data.loader", "hepfm_data.core.store"}
