"""ROOT plumbing shared by the Delphes, NanoAOD and PHYSLITE readers (uproot 5).

Opening any fsspec URL with a header check, finding a tree and its branches,
iterating chunks with every uproot failure turned into an :class:`InputFileError`
naming the file (and the branch where uproot says which), hashing event ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import awkward as ak
import numpy as np

from hepfm_data.core.errors import InputFileError
from hepfm_data.core.events import wrap_phi


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type name)."""
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def open_root(url: str, storage_options: dict[str, Any] | None):
    """(uproot file, size in bytes) of a ROOT file at any fsspec URL; errors name the file."""
    import uproot
    from fsspec.implementations.local import LocalFileSystem

    from hepfm_data.sources import resolve

    try:
        fs, path = resolve(url, storage_options)
        size = int(fs.size(path))
    except FileNotFoundError:
        raise InputFileError(f"{url}: file not found") from None
    check_header(fs, path, url, size)
    try:
        f = uproot.open(path) if isinstance(fs, LocalFileSystem) else uproot.open(fs.open(path, "rb"))
    except Exception as exc:
        msg = first_line(exc)
        if "not a ROOT file" in msg:
            raise InputFileError(f"{url}: not a ROOT file ({msg})") from None
        raise InputFileError(f"{url}: cannot open as ROOT (truncated or corrupt? {size} bytes): {msg}") from None
    return f, size


def check_header(fs, path: str, url: str, size: int) -> None:
    """ROOT magic and fEND (file length recorded in the header) against the stored size."""
    with fs.open(path, "rb") as fh:
        head = fh.read(64)
    if head[:4] != b"root":
        raise InputFileError(f"{url}: not a ROOT file (first bytes {head[:4]!r}, expected b'root')")
    if len(head) < 20:
        raise InputFileError(f"{url}: truncated: {size} bytes, shorter than a ROOT header")
    version = int.from_bytes(head[4:8], "big")
    end = int.from_bytes(head[12:20], "big") if version >= 1000000 else int.from_bytes(head[12:16], "big")
    if end > size:
        raise InputFileError(f"{url}: truncated: {size} bytes on storage but the ROOT header says {end}")


def trees_of(f) -> list[str]:
    """Names of the TTrees at the top of an open file."""
    return sorted({k.split(";")[0] for k, c in f.classnames().items() if c in ("TTree", "TNtuple")})


def get_tree(f, url: str, name: str, what: str):
    """The TTree ``name``; InputFileError naming the file, the tree and the trees it does hold."""
    try:
        return f[name]
    except Exception:
        raise InputFileError(f"{url}: no TTree {name!r} (not a {what} file?); file holds "
                             f"{sorted({k.split(';')[0] for k in f.keys(recursive=False)})}") from None


def branch_names(tree) -> set[str]:
    """Every branch name of a tree (full paths and leaf names)."""
    return set(tree.keys(recursive=True, full_paths=False)) | set(tree.keys(recursive=True))


def require_branches(url: str, tree_name: str, have: set[str], needed: dict[str, list[str]], what: str) -> None:
    """InputFileError naming the file, the tree and every missing branch of each collection."""
    missing = {c: [b for b in bs if b not in have] for c, bs in needed.items()}
    missing = {c: bs for c, bs in missing.items() if bs}
    if missing:
        text = "; ".join(f"collection {c} (branches {', '.join(bs)})" for c, bs in missing.items())
        raise InputFileError(f"{url}: tree {tree_name!r} lacks {text} required by the {what} reader")


def iterate(tree, branches: list[str], url: str, *, step_size, entry_start=None, entry_stop=None,
            aliases: dict[str, str] | None = None) -> Iterator[tuple[ak.Array, int]]:
    """(arrays, first entry) chunks of ``branches``; every uproot failure -> InputFileError naming
    the file and, when it can be found, the branch that failed (damaged basket, bad interpretation)."""
    it = tree.iterate(branches, step_size=step_size, library="ak", report=True, entry_start=entry_start,
                      entry_stop=entry_stop, aliases=aliases)
    done = entry_start
    while True:
        try:
            arrays, report = next(it)
        except StopIteration:
            return
        except Exception as exc:  # uproot raises many kinds on damaged baskets
            where = _failing_branch(tree, branches, exc, done, entry_stop)
            raise InputFileError(f"{url}: cannot read tree {tree.name!r}{where} "
                                 f"(truncated or corrupt): {type(exc).__name__}: {first_line(exc)}") from None
        done = int(report.tree_entry_stop)
        yield arrays, int(report.tree_entry_start)


def _failing_branch(tree, branches: list[str], exc: BaseException, start, stop) -> str:
    """", branch 'X'" for the first branch that fails to read alone over ``[start, stop)``
    (uproot's decompression errors do not say which basket), else ""."""
    for b in branches:
        try:
            tree[b].array(entry_start=start, entry_stop=stop, library="np")
        except Exception:
            return f", branch {b!r}"
    return ""


def phi32(flat: np.ndarray) -> np.ndarray:
    """Azimuth as float32 in [-pi, pi); values already in range are kept bit for bit."""
    flat = np.asarray(flat).astype(np.float32, copy=False)
    bad = (flat < -np.pi) | (flat >= np.pi)
    if bad.any():
        flat = flat.copy()
        flat[bad] = wrap_phi(flat[bad].astype(np.float64)).astype(np.float32)
    return flat


def flat_counts(array: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """(flat numpy values, counts per event) of a jagged array (zero-copy for uproot's
    ListOffsetArray of numbers; ``ak.flatten``/``ak.num`` otherwise)."""
    layout = ak.to_layout(array)
    if isinstance(layout, ak.contents.ListOffsetArray) and isinstance(layout.content, ak.contents.NumpyArray):
        offsets = np.asarray(layout.offsets.data)
        return np.asarray(layout.content.data)[offsets[0]:offsets[-1]], np.diff(offsets)
    return ak.to_numpy(ak.flatten(array, axis=1)), ak.to_numpy(ak.num(array, axis=1))


def jagged(cols: dict[str, np.ndarray], counts: np.ndarray) -> ak.Array:
    """var * record from flat columns and counts."""
    return ak.unflatten(ak.zip(cols), counts)


_M1, _M2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def hash_ids(*columns: np.ndarray) -> np.ndarray:
    """uint64 event ids from integer id columns (run, lumi block, event, ...): a chained
    splitmix64 of every column, the same on any machine. Distinct tuples collide with
    probability ~2^-64 per pair (~4e-4 for a 1.2e8-event sample)."""
    h = np.full(len(columns[0]), _GOLDEN, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in columns:
            h = _mix(h ^ (np.asarray(c).astype(np.uint64) + _GOLDEN))
    return h


def root_version(f) -> str:
    """"ROOT 6.18/00"-style version of the ROOT library that wrote an open file."""
    v = int(f.file.fVersion) % 1000000
    return f"ROOT {v // 10000}.{v // 100 % 100:02d}/{v % 100:02d}"


def collection(arrays: ak.Array, mapping: dict[str, str], url: str, name: str, *,
               scale: dict[str, float] | None = None, ints: tuple[str, ...] = ("charge",)) -> tuple[dict, np.ndarray]:
    """(flat float32/int8 columns, counts) of one object collection from ``{record field: branch}``.

    ``scale`` multiplies fields (MeV -> GeV); ``phi`` is wrapped; ``ints`` become int8
    (charges are rounded first: PHYSLITE stores them as float). All branches must share
    one multiplicity per event, else InputFileError naming the file and the branches.
    """
    cols, counts, first = {}, None, None
    for k, b in mapping.items():
        flat, n = flat_counts(arrays[b])
        if counts is None:
            counts, first = n, b
        elif not np.array_equal(n, counts):
            raise InputFileError(f"{url}: collection {name}: branches {first} and {b} have different "
                                 f"multiplicities in the same events")
        if k == "phi":
            cols[k] = phi32(flat)
        elif k in ints:
            cols[k] = np.rint(flat).astype(np.int8)
        else:
            cols[k] = (flat * scale[k]).astype(np.float32) if scale and k in scale else flat.astype(np.float32)
    return cols, counts


def last_copies_from_mothers(pid: np.ndarray, mother: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """bool [n]: no particle of the event has this one as mother with the same PDG id
    (event-local mother indices, -1 for none)."""
    event = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    has_mother = mother >= 0
    child = np.flatnonzero(has_mother)
    glob = offsets[event[child]] + mother[child]
    ok = glob < offsets[event[child] + 1]
    child, glob = child[ok], glob[ok]
    same = pid[glob] == pid[child]
    last = np.ones(len(pid), dtype=bool)
    last[glob[same]] = False
    return last


def read_chunks(url: str, storage_options: dict[str, Any] | None, tree_name: str, what: str, plan_factory, *,
                step_size, entry_start=None, entry_stop=None) -> Iterator[tuple[ak.Array, int, Any]]:
    """(arrays, first entry, plan) chunks of one file: open, find the tree, ``plan_factory(tree, url)``
    (which checks the required branches and lists ``.branches``), iterate with errors naming the file."""
    f, _ = open_root(url, storage_options)
    with f:
        tree = get_tree(f, url, tree_name, what)
        plan = plan_factory(tree, url)
        for arrays, start in iterate(tree, plan.branches, url, step_size=step_size, entry_start=entry_start,
                                     entry_stop=entry_stop):
            yield arrays, start, plan


def describe_file(url: str, storage_options: dict[str, Any] | None, tree_name: str, what: str, plan_factory,
                  summary) -> dict[str, Any]:
    """``{"entries", "entry_offsets" (where every read branch starts a basket), "release",
    **summary(tree, plan)}`` of one file (opened once)."""
    f, _ = open_root(url, storage_options)
    with f:
        tree = get_tree(f, url, tree_name, what)
        plan = plan_factory(tree, url)
        return {"entries": int(tree.num_entries),
                "entry_offsets": [int(x) for x in tree.common_entry_offsets(filter_name=plan.branches)],
                "release": f"{root_version(f)}; {what} ({tree_name} tree, {len(branch_names(tree))} branches)",
                **summary(tree, plan)}
