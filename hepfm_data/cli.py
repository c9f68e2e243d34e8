"""``hepfm-data``: the command line. Each subcommand lives in its own module
``hepfm_data.commands.<name>`` exposing ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so a
missing optional dependency only affects that command."""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import HepfmError, MissingDependencyError

#: command name -> (module, one-line help). Order is the order of ``--help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "catalog": ("hepfm_data.commands.catalog", "list the catalog's processes and tasks, or show one entry"),
    "generate": ("hepfm_data.commands.generate", "generate events with Pythia 8 + the ATLAS-like emulation"),
    "plot": ("hepfm_data.commands.plot", "plot kinematic distributions per process (PNG)"),
    "build": ("hepfm_data.commands.build", "build a sharded store from Delphes ROOT or generated events"),
    "verify": ("hepfm_data.commands.verify", "re-check every shard checksum of a store"),
    "info": ("hepfm_data.commands.info", "summarise a store: events, bytes/event, splits, feature ranges"),
    "export": ("hepfm_data.commands.export", "export a store as a Hugging Face dataset folder"),
    "demo": ("hepfm_data.commands.demo", "the small end-to-end job: generate, build, pretrain, fine-tune"),
}


def _load(name: str):
    module, _ = COMMANDS[name]
    return importlib.import_module(module)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hepfm-data", description="hepfm dataset layer for collider-physics foundation models")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"hepfm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_command=name)
        # arguments are added lazily in main() for the chosen command only
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])
        return 2
    name = argv[0]
    try:
        module = _load(name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("hepfm_data.commands"):
            print(f"hepfm-data {name}: not available in this version", file=sys.stderr)
            return 2
        print(f"hepfm-data {name}: missing dependency {exc.name!r} (pip install 'hepfm[all]')", file=sys.stderr)
        return 2
    p = argparse.ArgumentParser(prog=f"hepfm-data {name}", description=COMMANDS[name][1])
    module.add_arguments(p)
    args = p.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except (HepfmError, MissingDependencyError, FileNotFoundError) as exc:
        print(f"hepfm-data {name}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hepfm-data {name}: interrupted (re-run the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
