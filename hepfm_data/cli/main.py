"""``hepfm-data``: the command line. Each subcommand lives in its own module
``hepfm_data.cli.commands.<name>`` exposing ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so a
missing optional dependency only affects that command. Other packages add commands
through the ``hepfm_data.commands`` entry-point group (name = module with the same three
members): hepfm's model layer registers ``demo`` (``recipes.demo``) that way, so
this package never imports ``hepfm_models``."""

from __future__ import annotations

import argparse
import importlib
import sys

from hepfm_data.core.errors import HepfmError, MissingDependencyError

#: command name -> (module, one-line help). Order is the order of ``--help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "catalog": ("hepfm_data.cli.commands.catalog", "list the catalog's processes and tasks, or show one entry"),
    "generate": ("hepfm_data.cli.commands.generate", "generate events with Pythia 8 + the ATLAS-like emulation"),
    "plot": ("hepfm_data.cli.commands.plot", "plot kinematic distributions per process (PNG)"),
    "build": ("hepfm_data.cli.commands.build", "build a sharded store from Delphes ROOT or generated events"),
    "verify": ("hepfm_data.cli.commands.verify", "re-check every shard checksum of a store"),
    "derive": ("hepfm_data.cli.commands.derive", "derive a representation from a store's stored event record"),
    "info": ("hepfm_data.cli.commands.info", "summarise a store: events, bytes/event, splits, feature ranges"),
    "export": ("hepfm_data.cli.commands.export", "export a store as a Hugging Face dataset folder"),
    "resimulate": ("hepfm_data.cli.commands.resimulate", "re-simulated views of a store with kept hard processes (RS3L)"),
}
PLUGIN_GROUP = "hepfm_data.commands"


def _commands() -> dict[str, tuple[str, str]]:
    """The built-in commands plus those registered in the ``hepfm_data.commands`` entry-point group."""
    from importlib.metadata import entry_points

    out = dict(COMMANDS)
    for ep in entry_points(group=PLUGIN_GROUP):
        out.setdefault(ep.name, (ep.value, f"(provided by {ep.value})"))
    if "demo" not in out:  # hepfm_models not installed with its entry point
        out["demo"] = ("", "the small end-to-end job (needs hepfm_models: pip install -e .)")
    return out


def _load(name: str, commands: dict[str, tuple[str, str]]):
    module, _ = commands[name]
    return importlib.import_module(module)


def build_parser(commands: dict[str, tuple[str, str]] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hepfm-data", description="hepfm dataset layer for collider-physics foundation models")
    from hepfm_data.core.version import __version__

    parser.add_argument("--version", action="version", version=f"hepfm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in (commands or _commands()).items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_command=name)
        # arguments are added lazily in main() for the chosen command only
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    parser = build_parser(commands)
    if not argv or argv[0] not in commands:
        parser.parse_args(argv or ["--help"])
        return 2
    name = argv[0]
    if not commands[name][0]:
        print(f"hepfm-data {name}: not installed: {commands[name][1]}", file=sys.stderr)
        return 2
    try:
        module = _load(name, commands)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("hepfm_data.cli.commands"):
            print(f"hepfm-data {name}: not available in this version", file=sys.stderr)
            return 2
        print(f"hepfm-data {name}: missing dependency {exc.name!r} (pip install 'hepfm[all]')", file=sys.stderr)
        return 2
    p = argparse.ArgumentParser(prog=f"hepfm-data {name}", description=getattr(module, "HELP", commands[name][1]))
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
