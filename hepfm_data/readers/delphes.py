"""Delphes ROOT reader (uproot 5 + awkward) -> event records, chunk by chunk.

Reads the standard ``Delphes`` tree of Delphes 3 (Jet, Electron, Muon, Photon,
MissingET, Particle, Event) from any fsspec URL (``hepfm_data.sources.resolve``),
``step_size`` entries (or bytes, e.g. "50 MB") at a time so memory stays flat for
any file size.

event_id = ``blake2b-32(file base name) << 32 | entry number`` — unique across the
files of a sample as long as their base names differ (checked by
:func:`iterate_delphes`), and the same whether the file is read locally or
remotely. ``Event.Number`` is not used: Delphes restarts it in every file.

Truth record: the last copies (no daughter with the same PDG id) of H (25, 35,
36), t (6), W (24), Z (23), b (5) and c (4) from ``Particle.PID/D1/D2``.

Optional fields, read when the file has them (:data:`OPTIONAL`): ``jets.btag``
= ``Jet.BTag & 1`` (bit 0: the card's BTagging module, BitNumber 0),
``jets.tau_tag`` = ``Jet.TauTag & 1``, ``{electrons,muons,photons}.isolation``
= ``IsolationVar`` (Σ pT in the card's cone / pT); ``taus`` = the τ-tagged jets
(pt, eta, phi, mass, ``Jet.Charge``; tag = 1; absent without ``Jet.TauTag`` and
``Jet.Charge``). ``fatjets`` (large-R jets + particle-flow constituents,
readers/particleflow.py) when the file has every :data:`~.particleflow.DELPHES_BRANCHES`
branch; absent otherwise (the jet_constituents / event_jets representations then
cannot be served). The field table is docs/reference/input-formats.md.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from typing import Any

import awkward as ak
import numba as nb
import numpy as np

from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import InputFileError
from hepfm_data.core.events import TRUTH_PIDS, SampleInfo
from hepfm_data.readers._root import (
    branch_names,
    flat_counts,
    get_tree,
    iterate,
    jagged,
    open_root,
    phi32,
    require_branches,
    root_version,
)

TREE = "Delphes"
#: event-record field -> (Delphes collection, {record field: branch})
COLLECTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "jets": ("Jet", {"pt": "Jet.PT", "eta": "Jet.Eta", "phi": "Jet.Phi", "mass": "Jet.Mass"}),
    "electrons": ("Electron", {"pt": "Electron.PT", "eta": "Electron.Eta", "phi": "Electron.Phi",
                               "charge": "Electron.Charge"}),
    "muons": ("Muon", {"pt": "Muon.PT", "eta": "Muon.Eta", "phi": "Muon.Phi", "charge": "Muon.Charge"}),
    "photons": ("Photon", {"pt": "Photon.PT", "eta": "Photon.Eta", "phi": "Photon.Phi"}),
    "met": ("MissingET", {"pt": "MissingET.MET", "phi": "MissingET.Phi"}),
    "truth": ("Particle", {"pid": "Particle.PID", "pt": "Particle.PT", "eta": "Particle.Eta", "phi": "Particle.Phi",
                           "mass": "Particle.Mass", "d1": "Particle.D1", "d2": "Particle.D2"}),
}
#: optional record fields: (record collection, field) -> branch; absent from the record when the file lacks it
OPTIONAL: dict[tuple[str, str], str] = {
    ("jets", "btag"): "Jet.BTag", ("jets", "tau_tag"): "Jet.TauTag", ("jets", "charge"): "Jet.Charge",
    ("electrons", "isolation"): "Electron.IsolationVar", ("muons", "isolation"): "Muon.IsolationVar",
    ("photons", "isolation"): "Photon.IsolationVar",
}
WEIGHT_BRANCH = "Event.Weight"  # optional; 1.0 when absent
EVENT_ID_RULE = "blake2b-32(file base name) << 32 | entry (Delphes reader)"
DEFAULT_STEP = 10_000


def file_key(url: str) -> int:
    """32-bit key of a file's base name (the high half of its event ids)."""
    name = os.path.basename(str(url).rstrip("/"))
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "little")


def event_ids(url: str, start: int, stop: int) -> np.ndarray:
    """uint64 event ids of entries ``[start, stop)`` of file ``url``."""
    if stop > 2**32:
        raise InputFileError(f"{url}: more than 2^32 entries; event ids would collide")
    return (np.uint64(file_key(url)) << np.uint64(32)) | np.arange(start, stop, dtype=np.uint64)


@nb.njit(cache=True)
def last_copy_mask(pid, d1, d2, offsets, keep_pids):
    """bool [n]: particle has |pid| in ``keep_pids`` and no daughter (D1..D2, event-local indices) with its pid."""
    out = np.zeros(pid.shape[0], dtype=np.bool_)
    for i in range(offsets.shape[0] - 1):
        lo, hi = offsets[i], offsets[i + 1]
        n = hi - lo
        for k in range(lo, hi):
            a = abs(pid[k])
            wanted = False
            for p in keep_pids:
                if a == p:
                    wanted = True
            if not wanted:
                continue
            first, last = d1[k], max(d1[k], d2[k])
            last_copy = True
            if first >= 0:
                for d in range(first, last + 1):
                    if d < n and pid[lo + d] == pid[k]:
                        last_copy = False
                        break
            out[k] = last_copy
    return out


_phi32_flat = phi32


def _flat(arrays: ak.Array, branch: str) -> tuple[np.ndarray, np.ndarray]:
    """(flat numpy values, counts) of a jagged branch."""
    return flat_counts(arrays[branch])


_jagged = jagged


def _open(url: str, storage_options: dict[str, Any] | None):
    """(uproot file, size in bytes); errors name the file."""
    return open_root(url, storage_options)


def _tree(f, url: str):
    """(tree, has weight, optional branches present); InputFileError for a missing tree/collection."""
    tree = get_tree(f, url, TREE, "Delphes")
    have = branch_names(tree)
    require_branches(url, TREE, have, {c: list(b.values()) for c, b in COLLECTIONS.values()}, "Delphes")
    optional = {k: b for k, b in OPTIONAL.items() if b in have}
    from hepfm_data.readers.generation.particleflow import DELPHES_BRANCHES

    pflow = [b for bs in DELPHES_BRANCHES.values() for b in bs]
    if all(b in have for b in pflow):  # large-R jets + EFlow constituents: all or nothing
        optional.update({("fatjets", b): b for b in pflow})
    return tree, WEIGHT_BRANCH in have, optional


def _record(arrays: ak.Array, url: str, start: int, has_weight: bool,
            optional: dict[tuple[str, str], str] | None = None) -> ak.Array:
    """Event record of one uproot chunk (flat numpy throughout; awkward only to zip)."""
    n = len(arrays)
    f32, out = np.float32, {}
    out["event_id"] = event_ids(url, start, start + n)
    if has_weight:
        out["weight"] = ak.to_numpy(ak.fill_none(ak.firsts(arrays[WEIGHT_BRANCH]), 1.0)).astype(f32)
    else:
        out["weight"] = np.ones(n, f32)
    for field in ("jets", "electrons", "muons", "photons"):
        cols, counts = {}, None
        for k, b in COLLECTIONS[field][1].items():
            flat, counts = _flat(arrays, b)
            cols[k] = _phi32_flat(flat) if k == "phi" else flat.astype(np.int8 if k == "charge" else f32)
        for (coll, k), b in (optional or {}).items():
            if coll == field and k != "charge":
                flat = _flat(arrays, b)[0]
                cols[k] = (flat.astype(np.int64) & 1).astype(np.int8) if k in ("btag", "tau_tag") else flat.astype(f32)
        out[field] = _jagged(cols, counts)
        if field == "jets" and "tau_tag" in cols and ("jets", "charge") in optional:
            out["taus"] = _tau_jets(cols, counts, _flat(arrays, OPTIONAL["jets", "charge"])[0])
    met, met_n = _flat(arrays, "MissingET.MET")
    if np.any(met_n < 1):
        bad = int(np.flatnonzero(met_n < 1)[0]) + start
        raise InputFileError(f"{url}: entry {bad} has no MissingET object")
    first = counts_to_offsets(met_n)[:-1]
    out["met"] = ak.zip({"pt": met[first].astype(f32), "phi": _phi32_flat(_flat(arrays, "MissingET.Phi")[0][first])})
    t = COLLECTIONS["truth"][1]
    pid, counts = _flat(arrays, t["pid"])
    off = counts_to_offsets(counts)
    keep = last_copy_mask(pid.astype(np.int32), _flat(arrays, t["d1"])[0].astype(np.int64),
                          _flat(arrays, t["d2"])[0].astype(np.int64), off, np.array(TRUTH_PIDS, np.int32))
    cs = counts_to_offsets(keep)
    kept = cs[off[1:]] - cs[off[:-1]]
    truth = {"pid": pid[keep].astype(np.int32)}
    for k in ("pt", "eta", "phi", "mass"):
        flat = _flat(arrays, t[k])[0][keep]
        truth[k] = _phi32_flat(flat) if k == "phi" else flat.astype(f32)
    out["truth"] = _jagged(truth, kept)
    if any(coll == "fatjets" for coll, _ in (optional or {})):
        from hepfm_data.readers.generation.particleflow import delphes_fatjets

        out["fatjets"] = delphes_fatjets(arrays)
    return ak.zip(out, depth_limit=1)


def _tau_jets(jets: dict[str, np.ndarray], counts: np.ndarray, charge: np.ndarray) -> ak.Array:
    """The τ-tagged jets as the record's ``taus`` (tag = 1; charge = Jet.Charge)."""
    sel = jets["tau_tag"] == 1
    cs = counts_to_offsets(sel)
    off = counts_to_offsets(counts)
    cols = {k: jets[k][sel] for k in ("pt", "eta", "phi", "mass")}
    cols["charge"] = charge[sel].astype(np.int8)
    cols["tag"] = np.ones(int(sel.sum()), np.int8)
    return _jagged(cols, cs[off[1:]] - cs[off[:-1]])


def read_delphes(url: str, *, step_size: int | str = DEFAULT_STEP, storage_options: dict[str, Any] | None = None,
                 entry_start: int | None = None, entry_stop: int | None = None) -> Iterator[ak.Array]:
    """Yield event records of one Delphes ROOT file, ``step_size`` entries (or bytes: "50 MB") at a time.

    Raises :class:`InputFileError` naming ``url`` for a missing file, a non-ROOT or
    truncated file, a missing ``Delphes`` tree or a missing collection/branch.
    """
    f, _ = _open(url, storage_options)
    with f:
        tree, has_weight, optional = _tree(f, url)
        branches = _branches(has_weight, optional)
        for arrays, start in iterate(tree, branches, url, step_size=step_size, entry_start=entry_start,
                                     entry_stop=entry_stop):
            yield _record(arrays, url, start, has_weight, optional)


def _branches(has_weight: bool, optional: dict[str, str]) -> list[str]:
    """The branches a read of the ``Delphes`` tree needs: every collection's, the weight, the optional ones present."""
    return ([b for _, br in COLLECTIONS.values() for b in br.values()] + ([WEIGHT_BRANCH] if has_weight else [])
            + sorted(set(optional.values())))


def entry_offsets(url: str, storage_options: dict[str, Any] | None = None) -> list[int]:
    """Entry numbers where every branch of the ``Delphes`` tree of ``url`` starts a basket
    (``[0, ..., num_entries]``); checks header, tree and branches first."""
    f, _ = _open(url, storage_options)
    with f:
        tree, has_weight, optional = _tree(f, url)
        branches = _branches(has_weight, optional)
        return [int(x) for x in tree.common_entry_offsets(filter_name=branches)]


def expand_inputs(pattern: str | list[str], storage_options: dict[str, Any] | None = None) -> list[str]:
    """URLs matching a glob (or list of globs/URLs), sorted; error when nothing matches."""
    from hepfm_data.sources import resolve

    urls: list[str] = []
    for pat in [pattern] if isinstance(pattern, str) else list(pattern):
        fs, path = resolve(pat, storage_options)
        if any(ch in path for ch in "*?["):
            found = sorted(fs.glob(path))
            if not found:
                raise InputFileError(f"{pat}: no input file matches")
            proto = pat.split("://", 1)[0] + "://" if "://" in pat else ""
            urls += [f"{proto}{p}" if proto and not p.startswith(proto) else p for p in found]
        else:
            urls.append(pat)
    names = [os.path.basename(u.rstrip("/")) for u in urls]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputFileError(f"input files share base names {dup}: their event ids would collide; rename them")
    return urls


def iterate_delphes(pattern: str | list[str], process: str, *, step_size: int | str = DEFAULT_STEP,
                    storage_options: dict[str, Any] | None = None) -> Iterator[tuple[ak.Array, SampleInfo]]:
    """(event record, SampleInfo) blocks over all files matching ``pattern`` (for ``write_store``)."""
    for url in expand_inputs(pattern, storage_options):
        info = None
        for block in read_delphes(url, step_size=step_size, storage_options=storage_options):
            if info is None:
                info = sample_info(process, url, storage_options)
            yield block, info


def sample_info(process: str, url: str, storage_options: dict[str, Any] | None = None) -> SampleInfo:
    """The SampleInfo (provenance: format, release) of one Delphes input file."""
    import uproot

    f, _ = _open(url, storage_options)
    with f:
        release = f"{root_version(f)} (Delphes version not recorded in the file)"
    return SampleInfo(process=process, source="delphes", fidelity="external-input", input_format="delphes",
                      release=release, generator={"reader": f"uproot {uproot.__version__}", "tree": TREE,
                                                  "event_id_rule": EVENT_ID_RULE}, inputs=[url])


def write_delphes_like(path: str, events: ak.Array, *, drop: tuple[str, ...] = (), chunk: int = 50_000) -> None:
    """Write an event record as a Delphes-like ROOT file (tree ``Delphes``, branches ``Jet.PT``...).

    For tests and benchmarks: truth particles get D1 = D2 = -1 (all last copies),
    ``Event.Weight`` holds the weights; collections named in ``drop`` are left out.
    Written ``chunk`` events per basket so large files need bounded memory.
    """
    names = {"pt": "PT", "eta": "Eta", "phi": "Phi", "mass": "Mass", "charge": "Charge", "pid": "PID"}

    def branches(ev: ak.Array) -> dict[str, Any]:
        one = np.ones(len(ev), np.int64)
        out: dict[str, Any] = {"Event": ak.zip({"Weight": ak.unflatten(ak.to_numpy(ev.weight), one)})}
        for field, (coll, _) in COLLECTIONS.items():
            if coll in drop:
                continue
            arr = ev[field]
            if field == "met":
                out[coll] = ak.zip({"MET": ak.unflatten(ak.to_numpy(arr.pt), one),
                                    "Phi": ak.unflatten(ak.to_numpy(arr.phi), one)})
                continue
            cols = {names[k]: arr[k] if k != "charge" else ak.values_astype(arr[k], np.int32) for k in arr.fields}
            if field == "truth":
                cols["D1"] = ak.values_astype(arr.pid * 0 - 1, np.int32)
                cols["D2"] = cols["D1"]
            out[coll] = ak.zip(cols)
        return out

    write_delphes_tree(path, (branches(events[lo:lo + chunk]) for lo in range(0, max(len(events), 1), chunk)))


def write_delphes_tree(path: str, chunks: Iterable[dict[str, ak.Array]]) -> None:
    """Write chunks of ``{collection: jagged record}`` (e.g. ``{"Jet": [{PT, Eta, ...}]}``) as a
    ``Delphes`` tree with Delphes branch names (``Jet.PT``, counter ``Jet_size``), one basket per chunk."""
    import uproot

    with uproot.recreate(path) as f:
        tree = None
        for data in chunks:
            if tree is None:
                tree = f.mktree(TREE, {k: v.type.content for k, v in data.items()},
                                field_name=lambda outer, inner: f"{outer}.{inner}",
                                counter_name=lambda counted: f"{counted}_size")
            tree.extend(data)
