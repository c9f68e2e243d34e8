"""Input-format detection: which reader a ROOT file needs, from the trees it holds."""

from __future__ import annotations

from typing import Any

from hepfm_data.core.errors import InputFileError
from hepfm_data.readers import physlite
from hepfm_data.readers._root import branch_names, first_line, open_root

#: format -> (tree, branches of which that tree must have one in that format); PHYSLITE: the event
#: number in either EventInfo layout (release 22+ dynamic, release 21.2 static aux store)
SIGNATURES: dict[str, tuple[str, tuple[str, ...]]] = {
    "delphes": ("Delphes", ("Jet.PT",)),
    "nanoaod": ("Events", ("Jet_pt",)),
    "physlite": (physlite.TREE, physlite.EVENT_NUMBER_BRANCHES),
}
FORMATS = tuple(SIGNATURES)
#: format -> what a tree of that name but without a signature branch holds, in words
_EXPLAIN = {"physlite": physlite.event_info_layout}


def detect_format(url: str, storage_options: dict[str, Any] | None = None) -> str:
    """"delphes" | "nanoaod" | "physlite" for the ROOT file at ``url`` (any fsspec URL).

    Raises :class:`InputFileError` naming the file and the trees it holds when no
    format matches (or the file is not ROOT, truncated, missing); for a tree of a known
    name without the format's branches, what it holds instead (e.g. the EventInfo layout).
    """
    f, _ = open_root(url, storage_options)
    near: list[str] = []
    with f:
        names = sorted({k.split(";")[0] for k in f.keys(recursive=False)})
        for fmt, (tree, branches) in SIGNATURES.items():
            if tree in names:
                try:
                    have = branch_names(f[tree])
                except Exception as exc:  # a damaged tree header
                    raise InputFileError(f"{url}: cannot read tree {tree!r}: {first_line(exc)}") from None
                if any(b in have for b in branches):
                    return fmt
                why = f": {_EXPLAIN[fmt](have)}" if fmt in _EXPLAIN else ""
                near.append(f"tree {tree!r} has none of {', '.join(map(repr, branches))}{why}")
    known = "; ".join(f"{fmt}: tree {t!r} with {' or '.join(map(repr, b))}" for fmt, (t, b) in SIGNATURES.items())
    found = f"; {'; '.join(near)}" if near else ""
    raise InputFileError(f"{url}: not a known input format (file holds {names}{found}; known: {known})")


def detect_formats(urls: list[str], storage_options: dict[str, Any] | None = None) -> str:
    """The one format of several files; InputFileError naming two files that differ."""
    found: dict[str, str] = {}
    for u in urls:
        found.setdefault(detect_format(u, storage_options), u)
    if len(found) > 1:
        raise InputFileError("input files have different formats: "
                             + ", ".join(f"{u} is {fmt}" for fmt, u in found.items()))
    return next(iter(found))
