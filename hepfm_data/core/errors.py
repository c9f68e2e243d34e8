"""Exceptions of hepfm_data. Every data problem raises one of these, naming the
file, shard, field or value at fault; all derive from ``ValueError`` so callers
that catch ``ValueError`` keep working."""

from __future__ import annotations


class HepfmError(ValueError):
    """Base class of every data error raised by hepfm."""


class CatalogError(HepfmError):
    """The catalog YAML is malformed: names the file, the entry and the field."""

    def __init__(self, source: str, entry: str, field: str, problem: str):
        self.source, self.entry, self.field, self.problem = source, entry, field, problem
        super().__init__(f"{source}: entry {entry!r}, field {field!r}: {problem}")


class UnknownNameError(HepfmError, KeyError):
    """A process or task name that the catalog does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InputFileError(HepfmError):
    """An input file (ROOT, LHE, SLHA...) is missing, truncated or lacks a field."""


class GenerationError(HepfmError):
    """Event generation cannot start or failed (bad setting, external-only process)."""


class StoreError(HepfmError):
    """A store or one of its shards is missing, incomplete or corrupt."""


class ManifestError(StoreError):
    """A store manifest (data from the store, possibly remote) breaks a rule: names the store URL and
    the offending entry. Raised at open, before any shard is read or any file written."""


class ChecksumError(StoreError):
    """A shard's sha256 does not match the manifest."""


class RemoteError(HepfmError, OSError):
    """Remote storage failed after the last retry."""


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message names the extra."""


def require(module: str, extra: str, purpose: str, *, load: bool = True):
    """Import an optional module lazily, or raise with the install hint. ``load=False`` only checks that it is
    installed (returns None): the check before a long job whose result needs the module at the end.

    >>> np = require("numpy", "core", "arrays")
    """
    import importlib
    import importlib.util

    try:
        if not load:
            if importlib.util.find_spec(module) is None:
                raise ImportError(module)
            return None
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on environment
        raise MissingDependencyError(
            f"{purpose} needs the Python module {module!r}: "
            f"pip install 'hepfm[{extra}]'"
        ) from exc
