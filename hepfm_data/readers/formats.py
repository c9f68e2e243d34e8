"""Input-format detection: which reader a ROOT file needs, from the trees it holds."""

from __future__ import annotations

from typing import Any

from ..errors import InputFileError
from ._root import branch_names, first_line, open_root

#: format -> (tree, a branch that tree must have in that format)
SIGNATURES: dict[str, tuple[str, str]] = {
    "delphes": ("Delphes", "Jet.PT"),
    "nanoaod": ("Events", "Jet_pt"),
    "physlite": ("CollectionTree", "EventInfoAuxDyn.eventNumber"),
}
FORMATS = tuple(SIGNATURES)


def detect_format(url: str, storage_options: dict[str, Any] | None = None) -> str:
    """"delphes" | "nanoaod" | "physlite" for the ROOT file at ``url`` (any fsspec URL).

    Raises :class:`InputFileError` naming the file and the trees it holds when no
    format matches (or the file is not ROOT, truncated, missing).
    """
    f, _ = open_root(url, storage_options)
    with f:
        names = sorted({k.split(";")[0] for k in f.keys(recursive=False)})
        for fmt, (tree, branch) in SIGNATURES.items():
            if tree in names:
                try:
                    if branch in branch_names(f[tree]):
                        return fmt
                except Exception as exc:  # a damaged tree header
                    raise InputFileError(f"{url}: cannot read tree {tree!r}: {first_line(exc)}") from None
    known = "; ".join(f"{fmt}: tree {t!r} with {b!r}" for fmt, (t, b) in SIGNATURES.items())
    raise InputFileError(f"{url}: not a known input format (file holds {names}; known: {known})")


def detect_formats(urls: list[str], storage_options: dict[str, Any] | None = None) -> str:
    """The one format of several files; InputFileError naming two files that differ."""
    found: dict[str, str] = {}
    for u in urls:
        found.setdefault(detect_format(u, storage_options), u)
    if len(found) > 1:
        raise InputFileError("input files have different formats: "
                             + ", ".join(f"{u} is {fmt}" for fmt, u in found.items()))
    return next(iter(found))
