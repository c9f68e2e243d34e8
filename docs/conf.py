"""Sphinx configuration of the hepfm documentation (MyST Markdown, furo theme).

Build: ``sphinx-build -W -b html docs docs/_build/html`` from the repository root (``.ci/run`` does).
The reference pages are generated from the docstrings (autodoc) and from the ``hepfm-data`` argument
parsers (``_ext/hepfm_cli.py``); every ```` ```python ```` block of these pages is run by ``tests/test_docs.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # document this checkout's packages (and recipes/), not an installed copy
sys.path.insert(0, str(DOCS / "_ext"))

import re  # noqa: E402

from hepfm_data.core.version import __version__  # noqa: E402

project = "hepfm"
author = "hepfm developers"
copyright = "hepfm developers, BSD-3-Clause"  # noqa: A001
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "hepfm_cli",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}
autosummary_generate = False  # tables only: each object is documented once, on its module's page
napoleon_numpy_docstring = True
napoleon_google_docstring = False

html_theme = "furo"
html_title = f"hepfm {release}"
html_static_path: list[str] = []


# The docstrings write absolute values as |η|, |M|² or |pid|, which reStructuredText would read as
# substitution references: escape such bar pairs outside inline literals. Tables are left alone
# (an escape would shift their columns; a bar followed by a space is not markup anyway).
_LITERAL = re.compile(r"(``.*?``)")
_BARS = re.compile(r"(?<!\\)\|(?=\S)|(?<=[^\s\\])\|")
_TABLE_RULE = re.compile(r"^\s*(=+\s+)+=+\s*$|^\s*\+[-=+]+\+\s*$")


def _escape_bars(app, what, name, obj, options, lines):
    block: list[int] = []

    def flush():
        if not any(_TABLE_RULE.match(lines[j]) for j in block):
            for j in block:
                parts = _LITERAL.split(lines[j])
                lines[j] = "".join(p if p.startswith("``") else _BARS.sub(r"\\|", p) for p in parts)
        block.clear()

    for i, line in enumerate(lines):
        if line.strip():
            block.append(i)
        else:
            flush()
    flush()


def setup(app):
    app.connect("autodoc-process-docstring", _escape_bars)
