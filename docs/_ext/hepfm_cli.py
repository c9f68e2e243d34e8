"""``{hepfm-cli}``: the reference of every ``hepfm-data`` command, generated from its argument parser.

Each command (built in, or registered in the ``hepfm_data.commands`` entry-point group, or ``demo`` from
``recipes.demo``) becomes a section holding its one-line help and its ``--help`` text, so the page can
never disagree with the parser.
"""

from __future__ import annotations

import argparse
import importlib

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def commands() -> dict[str, tuple[str, str]]:
    """command -> (module, one-line help): hepfm_data's own, plus demo (recipes.demo, an entry point)."""
    from hepfm_data.cli.main import COMMANDS

    out = dict(COMMANDS)
    out.setdefault("demo", ("recipes.demo", "the small end-to-end job: generate, build, pretrain, fine-tune"))
    return out


def help_text(name: str, module: str, one_line: str) -> str:
    mod = importlib.import_module(module)
    parser = argparse.ArgumentParser(prog=f"hepfm-data {name}", description=getattr(mod, "HELP", one_line),
                                     formatter_class=lambda prog: argparse.HelpFormatter(prog, width=100))
    mod.add_arguments(parser)
    return parser.format_help()


class HepfmCli(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        for name, (module, one_line) in commands().items():
            title = f"hepfm-data {name}"
            section = nodes.section(ids=[nodes.make_id(title)], names=[nodes.fully_normalize_name(title)])
            section += nodes.title(title, "", nodes.literal(title, title))
            section += nodes.paragraph(text=one_line[0].upper() + one_line[1:] + ".")
            text = help_text(name, module, one_line)
            section += nodes.literal_block(text, text, language="text")
            self.state.document.note_implicit_target(section, section)
            out.append(section)
        return out


def setup(app):
    app.add_directive("hepfm-cli", HepfmCli)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
