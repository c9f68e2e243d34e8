"""CMS NanoAOD reader (uproot 5 + awkward) -> event records, chunk by chunk.

Reads the ``Events`` tree of CMS NanoAOD (v5 ... v12 branch names) from any
fsspec URL, ``step_size`` entries at a time. Units are already GeV/radians.
The field table (NanoAOD branch -> record field) is :data:`REQUIRED` +
:data:`OPTIONAL` and docs/reference/input-formats.md.

* required: ``Jet_{pt,eta,phi,mass}``, ``Electron_{pt,eta,phi,charge}``,
  ``Muon_{pt,eta,phi,charge}``, ``Photon_{pt,eta,phi}``, ``MET_{pt,phi}`` and
  ``run``, ``luminosityBlock``, ``event``; a missing one -> :class:`InputFileError`
  naming the file and every missing branch.
* optional (absent from the record when the file lacks them): ``Jet_btagDeepFlavB``
  -> ``jets.btag_score`` and ``jets.btag`` = score > ``btag_wp`` (default: DeepJet
  medium working point of 2016 post-VFP UL, 0.2489 — the era of the BTagCSV
  Run2016G/H records; pass the era's value for other data); ``*_pfRelIso03_all``
  (electrons, photons) and ``Muon_pfRelIso04_all`` -> ``isolation``;
  ``MET_sumEt`` -> ``met.sumet``; ``Tau_{pt,eta,phi,mass,charge}`` -> ``taus``
  with ``tag`` = DeepTau VSjet Medium (``Tau_idDeepTau2018v2p5VSjet >= 5`` or bit 16
  of ``Tau_idDeepTau2017v2p1VSjet``); ``genWeight`` -> ``weight`` (1.0 without).
* truth from ``GenPart_*`` when present: particles with |pdgId| in
  :data:`~hepfm_data.core.events.TRUTH_PIDS` that are last copies (``statusFlags`` bit 13
  *isLastCopy*; without ``statusFlags``: no daughter, found through
  ``genPartIdxMother``, with the same id). Collision data have no ``GenPart``: the
  record has no ``truth`` and :class:`SampleInfo` says ``truth=False``.

event_id = chained splitmix64 of (run, luminosityBlock, event) — the CMS event
identity, unique across files and independent of file names (:func:`event_ids`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import awkward as ak
import numpy as np

from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import InputFileError
from hepfm_data.core.events import TRUTH_PIDS, SampleInfo
from hepfm_data.readers._root import (
    branch_names,
    collection,
    describe_file,
    flat_counts,
    hash_ids,
    jagged,
    last_copies_from_mothers,
    phi32,
    read_chunks,
    require_branches,
)

TREE = "Events"
FORMAT = "nanoaod"
#: record collection -> {record field: branch}; every branch must be present
REQUIRED: dict[str, dict[str, str]] = {
    "jets": {"pt": "Jet_pt", "eta": "Jet_eta", "phi": "Jet_phi", "mass": "Jet_mass"},
    "electrons": {"pt": "Electron_pt", "eta": "Electron_eta", "phi": "Electron_phi", "charge": "Electron_charge"},
    "muons": {"pt": "Muon_pt", "eta": "Muon_eta", "phi": "Muon_phi", "charge": "Muon_charge"},
    "photons": {"pt": "Photon_pt", "eta": "Photon_eta", "phi": "Photon_phi"},
    "met": {"pt": "MET_pt", "phi": "MET_phi"},
    "ids": {"run": "run", "lumi_block": "luminosityBlock", "event_number": "event"},
}
#: optional single fields: (record collection, field) -> branch
OPTIONAL: dict[tuple[str, str], str] = {
    ("jets", "btag_score"): "Jet_btagDeepFlavB",
    ("electrons", "isolation"): "Electron_pfRelIso03_all",
    ("muons", "isolation"): "Muon_pfRelIso04_all",
    ("photons", "isolation"): "Photon_pfRelIso03_all",
    ("met", "sumet"): "MET_sumEt",
}
#: optional collections: all-or-nothing (a partial one is an error naming the missing branches)
TAUS = {"pt": "Tau_pt", "eta": "Tau_eta", "phi": "Tau_phi", "mass": "Tau_mass", "charge": "Tau_charge"}
#: τ identification, first present wins: (branch, rule, value); "ge": id >= value, "bit": id & value
TAU_ID = (("Tau_idDeepTau2018v2p5VSjet", "ge", 5), ("Tau_idDeepTau2017v2p1VSjet", "bit", 16))
GENPART = {"pid": "GenPart_pdgId", "pt": "GenPart_pt", "eta": "GenPart_eta", "phi": "GenPart_phi",
           "mass": "GenPart_mass", "mother": "GenPart_genPartIdxMother"}
GEN_FLAGS = "GenPart_statusFlags"
IS_LAST_COPY = 1 << 13
WEIGHT = "genWeight"
#: DeepJet (btagDeepFlavB) medium working point, 2016 post-VFP UL (CMS BTV recommendation)
DEEPJET_MEDIUM_2016_POSTVFP = 0.2489
EVENT_ID_RULE = "splitmix64 chain of (run, luminosityBlock, event) (NanoAOD reader)"
DEFAULT_STEP = 50_000


def event_ids(run: np.ndarray, lumi: np.ndarray, event: np.ndarray) -> np.ndarray:
    """uint64 event ids from the CMS event identity."""
    return hash_ids(run, lumi, event)


class _Plan:
    """What one file provides: the branches to read and the optional parts present."""

    def __init__(self, tree, url: str):
        have = branch_names(tree)
        require_branches(url, TREE, have, {c: list(m.values()) for c, m in REQUIRED.items()}, "NanoAOD")
        self.optional = {k: b for k, b in OPTIONAL.items() if b in have}
        self.taus = _all_or_none(url, "Tau", TAUS, have)
        self.tau_id = next(((b, r, v) for b, r, v in TAU_ID if b in have), None) if self.taus else None
        self.truth = _all_or_none(url, "GenPart", GENPART, have)
        self.flags = self.truth and GEN_FLAGS in have
        self.weight = WEIGHT in have
        branches = [b for m in REQUIRED.values() for b in m.values()] + list(self.optional.values())
        if self.taus:
            branches += list(TAUS.values()) + ([self.tau_id[0]] if self.tau_id else [])
        if self.truth:
            branches += list(GENPART.values()) + ([GEN_FLAGS] if self.flags else [])
        if self.weight:
            branches.append(WEIGHT)
        self.branches = branches


def _all_or_none(url: str, name: str, mapping: dict[str, str], have: set[str]) -> bool:
    present = [b for b in mapping.values() if b in have]
    if present and len(present) < len(mapping):
        missing = [b for b in mapping.values() if b not in have]
        raise InputFileError(f"{url}: tree {TREE!r} has collection {name} but lacks its branches "
                             f"{', '.join(missing)}")
    return bool(present)


def _truth(arrays: ak.Array, url: str, flags: bool) -> ak.Array:
    cols, counts = collection(arrays, {k: b for k, b in GENPART.items() if k not in ("pid", "mother")}, url,
                              "GenPart")
    pid = flat_counts(arrays[GENPART["pid"]])[0].astype(np.int32)
    off = counts_to_offsets(counts)
    if flags:
        last = (flat_counts(arrays[GEN_FLAGS])[0].astype(np.int64) & IS_LAST_COPY) != 0
    else:
        last = last_copies_from_mothers(pid, flat_counts(arrays[GENPART["mother"]])[0].astype(np.int64), off)
    keep = last & np.isin(np.abs(pid), TRUTH_PIDS)
    cs = counts_to_offsets(keep)
    out = {"pid": pid[keep], **{k: v[keep] for k, v in cols.items()}}
    return jagged(out, cs[off[1:]] - cs[off[:-1]])


def _record(arrays: ak.Array, url: str, plan: _Plan, btag_wp: float) -> ak.Array:
    n = len(arrays)
    ids = {k: ak.to_numpy(arrays[b]) for k, b in REQUIRED["ids"].items()}
    out: dict[str, Any] = {
        "event_id": event_ids(ids["run"], ids["lumi_block"], ids["event_number"]),
        "weight": ak.to_numpy(arrays[WEIGHT]).astype(np.float32) if plan.weight else np.ones(n, np.float32),
        "run": ids["run"].astype(np.uint32), "lumi_block": ids["lumi_block"].astype(np.uint32),
        "event_number": ids["event_number"].astype(np.uint64),
    }
    for name in ("jets", "electrons", "muons", "photons"):
        mapping = dict(REQUIRED[name])
        mapping.update({k: b for (c, k), b in plan.optional.items() if c == name})
        cols, counts = collection(arrays, mapping, url, name)
        if "btag_score" in cols:
            cols["btag"] = (cols["btag_score"] > btag_wp).astype(np.int8)
        out[name] = jagged(cols, counts)
    met = {"pt": ak.to_numpy(arrays["MET_pt"]).astype(np.float32), "phi": phi32(ak.to_numpy(arrays["MET_phi"]))}
    if ("met", "sumet") in plan.optional:
        met["sumet"] = ak.to_numpy(arrays[OPTIONAL["met", "sumet"]]).astype(np.float32)
    out["met"] = ak.zip(met)
    if plan.taus:
        cols, counts = collection(arrays, TAUS, url, "Tau")
        if plan.tau_id is not None:
            b, rule, value = plan.tau_id
            raw = flat_counts(arrays[b])[0].astype(np.int64)
            cols["tag"] = ((raw >= value) if rule == "ge" else ((raw & value) != 0)).astype(np.int8)
        out["taus"] = jagged(cols, counts)
    if plan.truth:
        out["truth"] = _truth(arrays, url, plan.flags)
    return ak.zip(out, depth_limit=1)


def read_nanoaod(url: str, *, step_size: int | str = DEFAULT_STEP, storage_options: dict[str, Any] | None = None,
                 btag_wp: float = DEEPJET_MEDIUM_2016_POSTVFP, entry_start: int | None = None,
                 entry_stop: int | None = None) -> Iterator[ak.Array]:
    """Yield event records of one NanoAOD file, ``step_size`` entries (or bytes: "50 MB") at a time.

    Raises :class:`InputFileError` naming ``url`` for a missing, non-ROOT or truncated
    file, a missing ``Events`` tree or required branch, or a damaged basket.
    """
    for arrays, _, plan in read_chunks(url, storage_options, TREE, "NanoAOD", _Plan, step_size=step_size,
                                       entry_start=entry_start, entry_stop=entry_stop):
        yield _record(arrays, url, plan, btag_wp)


def describe(url: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a file provides: release, truth present, τ identification and optional fields used."""
    return describe_file(url, storage_options, TREE, "NanoAOD", _Plan, lambda tree, plan: {
        "truth": plan.truth, "taus": plan.taus, "tau_id": plan.tau_id[0] if plan.tau_id else None,
        "optional": sorted(plan.optional.values()), "weight": WEIGHT if plan.weight else None})


def n_entries(url: str, storage_options: dict[str, Any] | None = None) -> int:
    """Entries of the tree of ``url``; checks header, tree and required branches first."""
    return describe(url, storage_options)["entries"]


def sample_info(process: str, url: str, storage_options: dict[str, Any] | None = None, *,
                described: dict[str, Any] | None = None,
                btag_wp: float = DEEPJET_MEDIUM_2016_POSTVFP) -> SampleInfo:
    """The SampleInfo (provenance: format, release, truth present) of one input file."""
    import uproot

    d = described or describe(url, storage_options)
    info = SampleInfo(
        process=process, source=FORMAT, fidelity="external-input", input_format=FORMAT, release=d["release"],
        truth=d["truth"], inputs=[url],
        generator={"reader": f"uproot {uproot.__version__}", "tree": TREE, "event_id_rule": EVENT_ID_RULE,
                   "btag": f"btagDeepFlavB > {btag_wp}", "tau_id": d["tau_id"], "optional": d["optional"],
                   "truth": "GenPart last copies" if d["truth"] else
                   "absent: no GenPart_* branches (collision data); no truth labels"})
    return info


def iterate_nanoaod(pattern: str | list[str], process: str, *, step_size: int | str = DEFAULT_STEP,
                    storage_options: dict[str, Any] | None = None,
                    btag_wp: float = DEEPJET_MEDIUM_2016_POSTVFP) -> Iterator[tuple[ak.Array, SampleInfo]]:
    """(event record, SampleInfo) blocks over all files matching ``pattern`` (for ``write_store``)."""
    from hepfm_data.readers.delphes import expand_inputs

    for url in expand_inputs(pattern, storage_options):
        info = sample_info(process, url, storage_options, btag_wp=btag_wp)
        for block in read_nanoaod(url, step_size=step_size, storage_options=storage_options, btag_wp=btag_wp):
            yield block, info


#: the protocol name of the reader function (hepfm_data.inputs.experiments)
read = read_nanoaod
