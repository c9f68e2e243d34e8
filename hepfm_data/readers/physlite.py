"""ATLAS DAOD_PHYSLITE reader (uproot 5 + awkward) -> event records, chunk by chunk.

Reads the ``CollectionTree`` of DAOD_PHYSLITE (the ATLAS Open Data research
format) from any fsspec URL: the dynamic-aux branches ``<Container>AuxDyn.<var>``
of the calibrated analysis containers. Energies and momenta are stored in MeV
and converted to GeV (× 1e-3). The field table is docs/reference/input-formats.md.

* required: ``AnalysisJets{pt,eta,phi,m}``, ``AnalysisElectrons{pt,eta,phi,charge}`` (a
  release without the ``charge`` decoration: the sign of q/p of the electron's first
  ``trackParticleLinks`` entry in ``GSFTrackParticles``),
  ``AnalysisMuons{pt,eta,phi,charge}``, ``AnalysisPhotons{pt,eta,phi}``,
  ``MET_Core_AnalysisMET{mpx,mpy,source}``, ``EventInfo{runNumber,eventNumber}``.
* EventInfo: each field from the dynamic store ``EventInfoAuxDyn.<var>`` (release 22+), else
  from the static store ``EventInfoAux.<var>`` (release 21.2, :data:`EVENT_INFO_STORES`). Object
  collections are read from their dynamic stores only: one found only in a static aux store
  (``<Container>Aux.``) is refused naming that layout.
* optional: ``AnalysisTauJets{pt,eta,phi,m,charge}`` -> ``taus`` (``tag`` =
  ``JetDeepSetMedium``); isolation = ``ptvarcone30_Nonprompt_All_MaxWeightTTVA(LooseCone)_pt1000``
  / pT (electrons, muons) and ``topoetcone40`` / pT (photons); b-tagging through
  ``AnalysisJets.btaggingLink`` into ``BTagging_AntiKt4EMPFlow``: ``btag_score`` =
  DL1dv01 D = ln(p_b / (f_c p_c + (1 - f_c) p_u)) with f_c = 0.018 and ``btag`` = D >
  2.456 (the 77 % fixed-cut working point), or GN2v00 with f_c = 0.1 (score only:
  no working point is assumed); ``lumiBlock``, ``mcChannelNumber``;
  ``mcEventWeights[0]`` -> ``weight`` (1.0 for data).
* MET: PHYSLITE stores only the soft terms (``MET_Core_AnalysisMET``); the
  record's MET is rebuilt like ATLAS' METMaker, simplified: minus the vector sum
  of electrons (pT > 10 GeV, ``DFCommonElectronsLHMedium``), muons (pT > 10 GeV),
  photons (pT > 25 GeV, ``DFCommonPhotonsIsEMTight``, not within ΔR < 0.1 of such an
  electron), jets (pT > 20 GeV, ``NNJvtPass`` below 60 GeV within |η| < 2.4, not
  within ΔR < 0.2 of those electrons/photons), plus the track soft term
  (``PVSoftTrkCore``: source bits SoftEvent 0x20 | Track 0x4000). Flags missing
  from a file are not applied. No object association map: an approximation,
  compared with ``MET_Truth`` in the tests.
* truth when present: ``TruthBoson``, ``TruthTop``, ``TruthBottom``,
  ``TruthCharm`` (``pdgId``, ``px``, ``py``, ``pz``, ``m``; collections whose
  dynamic branches are absent are skipped) as the derivation selected them, kept
  for |pdgId| in :data:`~hepfm_data.core.events.TRUTH_PIDS`. Data (``eventTypeBitmask``
  bit 0 clear, no truth containers) have no ``truth``; SampleInfo says ``truth=False``.

event_id = chained splitmix64 of (runNumber, mcChannelNumber or 0, eventNumber).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import awkward as ak
import numpy as np

from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import InputFileError
from hepfm_data.core.events import TRUTH_PIDS, SampleInfo, wrap_phi
from hepfm_data.readers._root import (
    branch_names,
    collection,
    describe_file,
    flat_counts,
    hash_ids,
    jagged,
    read_chunks,
    require_branches,
)

TREE = "CollectionTree"
FORMAT = "physlite"
MEV = 1e-3  # MeV -> GeV


def _aux(container: str, **fields: str) -> dict[str, str]:
    return {k: f"{container}AuxDyn.{v}" for k, v in fields.items()}


_KIN = {"pt": "pt", "eta": "eta", "phi": "phi"}
#: record collection -> (xAOD container, {record field: variable}); read from ``<container>AuxDyn.<variable>``
OBJECTS: dict[str, tuple[str, dict[str, str]]] = {
    "jets": ("AnalysisJets", {**_KIN, "mass": "m"}),
    "electrons": ("AnalysisElectrons", {**_KIN, "charge": "charge"}),
    "muons": ("AnalysisMuons", {**_KIN, "charge": "charge"}),
    "photons": ("AnalysisPhotons", _KIN),
    "met": ("MET_Core_AnalysisMET", {"mpx": "mpx", "mpy": "mpy", "source": "source"}),
}
REQUIRED: dict[str, dict[str, str]] = {name: _aux(c, **v) for name, (c, v) in OBJECTS.items()}
OPTIONAL: dict[tuple[str, str], str] = {
    ("electrons", "isolation"): "AnalysisElectronsAuxDyn.ptvarcone30_Nonprompt_All_MaxWeightTTVALooseCone_pt1000",
    ("muons", "isolation"): "AnalysisMuonsAuxDyn.ptvarcone30_Nonprompt_All_MaxWeightTTVA_pt1000",
    ("photons", "isolation"): "AnalysisPhotonsAuxDyn.topoetcone40",
}
#: EventInfo fields read: key -> variable (``run``, ``event_number`` required, the others optional;
#: ``lumi_block`` and ``mc_channel`` become record fields)
EVENT_INFO: dict[str, str] = {"run": "runNumber", "event_number": "eventNumber", "lumi_block": "lumiBlock",
                              "mc_channel": "mcChannelNumber", "weights": "mcEventWeights",
                              "event_type": "eventTypeBitmask"}
EVENT_INFO_REQUIRED = ("run", "event_number")
#: aux store -> its layout in words; each EventInfo field is looked up in the stores in this order.
#: Release 22+ PHYSLITE: every field in the dynamic store (the shipped test file). Release 21.2:
#: runNumber, eventNumber, lumiBlock, eventTypeBitmask are members of the static store
#: xAOD::EventAuxInfo_v1 (athena xAODEventInfo/versions/EventAuxInfo_v1.h), a split branch
#: ``EventInfoAux.`` whose sub-branches uproot lists as ``EventInfoAux.<var>``, while
#: mcChannelNumber and mcEventWeights stay in ``EventInfoAuxDyn.``. Checked by opening a real
#: release-21.2 file, coffea's former test sample tests/samples/DAOD_PHYSLITE_21.2.108.0.art.pool.root
#: (40 tt̄ events, removed from coffea in commit e48e92fc): its object collections are dynamic
#: (``AnalysisJetsAuxDyn.pt``, ...) next to empty static parents (``AnalysisJetsAux.``), and this
#: reader reads it whole.
EVENT_INFO_STORES: dict[str, str] = {
    "EventInfoAuxDyn": "a dynamic aux store (EventInfoAuxDyn., release 22+ layout)",
    "EventInfoAux": "a static aux store (EventInfoAux., release 21.2 layout)",
}
#: the branches that mark a PHYSLITE ``CollectionTree`` (formats.detect_format), one per EventInfo layout
EVENT_NUMBER_BRANCHES = tuple(f"{store}.{EVENT_INFO['event_number']}" for store in EVENT_INFO_STORES)
#: identification flags used to pick the objects entering the rebuilt MET (when the file has them)
MET_ID = {"electrons": "AnalysisElectronsAuxDyn.DFCommonElectronsLHMedium",
          "photons": "AnalysisPhotonsAuxDyn.DFCommonPhotonsIsEMTight",
          "jets": "AnalysisJetsAuxDyn.NNJvtPass"}
#: electron charge when a release does not decorate ``charge``: sign of q/p of the first
#: track particle link (the GSF track) of each electron
ELECTRON_TRACKS = "AnalysisElectronsAuxDyn.trackParticleLinks"
GSF_QOVERP = "GSFTrackParticlesAuxDyn.qOverP"
TAUS = _aux("AnalysisTauJets", **_KIN, mass="m", charge="charge")
TAU_ID = "AnalysisTauJetsAuxDyn.JetDeepSetMedium"
BTAG_LINK = "AnalysisJetsAuxDyn.btaggingLink/AnalysisJetsAuxDyn.btaggingLink.m_persIndex"
BTAG_CONTAINER = "BTagging_AntiKt4EMPFlowAuxDyn"
#: (tagger, f_c, 77 % working-point cut or None), first present wins
TAGGERS = (("DL1dv01", 0.018, 2.456), ("GN2v00", 0.1, None))
TRUTH = ("TruthBoson", "TruthTop", "TruthBottom", "TruthCharm")
TRUTH_VARS = ("pdgId", "px", "py", "pz", "m")
SOFT_TRACK = 0x20 | 0x4000  # MissingETBase::Source SoftEvent | Track (the PVSoftTrkCore term)
MET_CUTS = {"electrons": 10.0, "muons": 10.0, "photons": 25.0, "jets": 20.0}  # GeV
MET_JET_OVERLAP_DR = 0.2
MET_PHOTON_OVERLAP_DR = 0.1  # a photon sharing an electron's cluster is not counted twice
EVENT_ID_RULE = "splitmix64 chain of (runNumber, mcChannelNumber or 0, eventNumber) (PHYSLITE reader)"
DEFAULT_STEP = 20_000


def _has_store(have: set[str], store: str) -> bool:
    """Whether the file has any branch of the aux store ``store`` (``EventInfoAux``, ``AnalysisJetsAuxDyn``)."""
    prefix = f"{store}."
    return any(b.startswith(prefix) for b in have)


def event_info_layout(have: set[str]) -> str:
    """The EventInfo layout(s) of a file's branches, in words (for messages and provenance)."""
    found = [desc for store, desc in EVENT_INFO_STORES.items() if _has_store(have, store)]
    if not found:
        return "no EventInfo aux store (neither " + " nor ".join(f"{s}." for s in EVENT_INFO_STORES) + ")"
    return "EventInfo in " + " and ".join(found)


def event_info_branches(have: set[str], url: str) -> dict[str, str]:
    """{key of :data:`EVENT_INFO`: branch} of the EventInfo fields the file has, each from the first
    store of :data:`EVENT_INFO_STORES` holding it. InputFileError naming the file and the layout
    found when the run or event number is in neither store."""
    found = {}
    for key, var in EVENT_INFO.items():
        branch = next((f"{store}.{var}" for store in EVENT_INFO_STORES if f"{store}.{var}" in have), None)
        if branch is not None:
            found[key] = branch
    missing = [EVENT_INFO[k] for k in EVENT_INFO_REQUIRED if k not in found]
    if missing:
        stores = [store for store in EVENT_INFO_STORES if _has_store(have, store)]
        lacks = f" but no {', '.join(f'{s}.{v}' for s in stores for v in missing)}" if stores else ""
        raise InputFileError(f"{url}: tree {TREE!r} has {event_info_layout(have)}{lacks}; the PHYSLITE reader "
                             f"needs {' and '.join(missing)} in one of: {'; '.join(EVENT_INFO_STORES.values())}")
    return found


def _refuse_static_objects(have: set[str], url: str, needed: dict[str, list[str]]) -> None:
    """InputFileError naming the file and the layout when a required collection is only in a static aux
    store (``<Container>Aux.``, no ``<Container>AuxDyn.`` branch): objects are read from dynamic stores."""
    for name, (container, _) in OBJECTS.items():
        missing = [b for b in needed[name] if b not in have]
        if missing and not _has_store(have, f"{container}AuxDyn") and _has_store(have, f"{container}Aux"):
            raise InputFileError(f"{url}: tree {TREE!r}: collection {name}: {container} is in a static aux store "
                                 f"({container}Aux.) without the dynamic branches {', '.join(missing)}; the "
                                 f"PHYSLITE reader reads object collections from their dynamic aux store "
                                 f"({container}AuxDyn.<var>, as release 21.2 and 22+ PHYSLITE write them) only")


class _Plan:
    """What one file provides: the branches to read and the optional parts present."""

    def __init__(self, tree, url: str):
        have = branch_names(tree)
        charge = REQUIRED["electrons"]["charge"]
        self.charge_from_tracks = charge not in have and ELECTRON_TRACKS in have and GSF_QOVERP in have
        needed = {c: [b for b in m.values() if not (self.charge_from_tracks and b == charge)]
                  for c, m in REQUIRED.items()}
        _refuse_static_objects(have, url, needed)
        require_branches(url, TREE, have, needed, "PHYSLITE")
        #: {key of EVENT_INFO: branch}, dynamic or static store; the layout of the event number
        self.event_info = event_info_branches(have, url)
        self.event_info_layout = EVENT_INFO_STORES[self.event_info["event_number"].rsplit(".", 1)[0]]
        self.optional = {k: b for k, b in OPTIONAL.items() if b in have}
        present = [b for b in TAUS.values() if b in have]
        if present and len(present) < len(TAUS):
            raise InputFileError(f"{url}: tree {TREE!r} has AnalysisTauJets but lacks "
                                 f"{', '.join(b for b in TAUS.values() if b not in have)}")
        self.taus = bool(present)
        self.tau_id = self.taus and TAU_ID in have
        self.tagger = None
        if BTAG_LINK in have:
            for name, fc, cut in TAGGERS:
                probs = [f"{BTAG_CONTAINER}.{name}_p{x}" for x in "bcu"]
                if all(p in have for p in probs):
                    self.tagger = (name, fc, cut, probs)
                    break
        self.truth = [c for c in TRUTH if all(f"{c}AuxDyn.{v}" in have for v in TRUTH_VARS)]
        self.met_id = {k: b for k, b in MET_ID.items() if b in have}
        branches = [b for c in needed.values() for b in c] + list(self.event_info.values())
        branches += list(self.optional.values())
        branches += [ELECTRON_TRACKS, GSF_QOVERP] if self.charge_from_tracks else []
        branches += list(TAUS.values()) if self.taus else []
        branches += [TAU_ID] if self.tau_id else []
        branches += [BTAG_LINK, *self.tagger[3]] if self.tagger else []
        branches += [f"{c}AuxDyn.{v}" for c in self.truth for v in TRUTH_VARS]
        branches += list(self.met_id.values())
        self.branches = branches


def _btag(arrays: ak.Array, url: str, tagger, jet_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(score float32 [n_jets], flag int8 [n_jets] or None) through the jets' b-tagging links."""
    name, fc, cut, probs = tagger
    link, n_link = flat_counts(arrays[BTAG_LINK])
    if not np.array_equal(n_link, jet_counts):
        raise InputFileError(f"{url}: {BTAG_LINK} does not have one link per jet")
    pb, n_bt = flat_counts(arrays[probs[0]])
    pc, pu = flat_counts(arrays[probs[1]])[0], flat_counts(arrays[probs[2]])[0]
    link = link.astype(np.int64)
    bad = link >= np.repeat(n_bt, jet_counts)
    glob = np.repeat(counts_to_offsets(n_bt)[:-1], jet_counts) + np.where(bad, 0, link)
    if bad.any():
        raise InputFileError(f"{url}: {BTAG_LINK} points past the end of {BTAG_CONTAINER} "
                             f"(jet {int(np.flatnonzero(bad)[0])} of the chunk)")
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.log(pb[glob] / (fc * pc[glob] + (1 - fc) * pu[glob]))
    score = np.nan_to_num(score, nan=-99.0, posinf=99.0, neginf=-99.0).astype(np.float32)
    return score, (score > cut).astype(np.int8) if cut is not None else None


def electron_charge_from_tracks(arrays: ak.Array, url: str) -> ak.Array:
    """var * float: sign of q/p of each electron's first track particle link (GSFTrackParticles)."""
    first = ak.firsts(arrays[ELECTRON_TRACKS].m_persIndex, axis=2)
    if ak.any(ak.is_none(first, axis=1)):
        raise InputFileError(f"{url}: an electron has no track particle link ({ELECTRON_TRACKS}) to take its charge from")
    qoverp = arrays[GSF_QOVERP]
    if ak.any(first >= ak.num(qoverp, axis=1)):
        raise InputFileError(f"{url}: {ELECTRON_TRACKS} points past the end of {GSF_QOVERP}")
    return np.sign(qoverp[ak.values_astype(first, np.int64)])


def _truth(arrays: ak.Array, names: list[str]) -> ak.Array:
    parts = []
    for c in names:
        v = {k: arrays[f"{c}AuxDyn.{k}"] for k in TRUTH_VARS}
        parts.append(ak.zip(v))
    rec = ak.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    counts = ak.to_numpy(ak.num(rec, axis=1))
    flat = {k: ak.to_numpy(ak.flatten(rec[k], axis=1)) for k in TRUTH_VARS}
    keep = np.isin(np.abs(flat["pdgId"]), TRUTH_PIDS)
    px, py, pz = (flat[k].astype(np.float64) * MEV for k in ("px", "py", "pz"))
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), 0.0)
    cols = {"pid": flat["pdgId"].astype(np.int32)[keep], "pt": pt[keep].astype(np.float32),
            "eta": eta[keep].astype(np.float32), "phi": wrap_phi(np.arctan2(py, px))[keep].astype(np.float32),
            "mass": (flat["m"].astype(np.float64) * MEV)[keep].astype(np.float32)}
    off = counts_to_offsets(counts)
    cs = counts_to_offsets(keep)
    return jagged(cols, cs[off[1:]] - cs[off[:-1]])


def _overlaps(eta: np.ndarray, phi: np.ndarray, event: np.ndarray, used: list[tuple[np.ndarray, ...]], n: int,
              dr: float) -> np.ndarray:
    """bool per object: within ΔR < dr of one of the ``used`` (event, eta, phi) objects of its event."""
    from hepfm_data.readers.generation.detector import cone_sums

    if not used or not len(eta):
        return np.zeros(len(eta), bool)
    ue, uh, up = (np.concatenate([u[k] for u in used]) for k in range(3))
    order = np.argsort(ue, kind="stable")
    off = counts_to_offsets(np.bincount(ue, minlength=n))
    return cone_sums(eta, phi, event, off, uh[order], up[order], np.ones(len(ue)), dr) > 0


def _rebuilt_met(objs: dict[str, tuple[dict, np.ndarray]], ids: dict[str, np.ndarray], soft_x: np.ndarray,
                 soft_y: np.ndarray) -> ak.Array:
    """Simplified METMaker (module docstring): GeV, radians. ``ids``: per-object flags (:data:`MET_ID`)."""
    n = len(soft_x)
    mex, mey = soft_x.astype(np.float64).copy(), soft_y.astype(np.float64).copy()
    used: list[tuple[np.ndarray, ...]] = []  # (event, eta, phi) of the electrons and photons counted
    for name in ("electrons", "muons", "photons", "jets"):
        cols, counts = objs[name]
        ev = np.repeat(np.arange(n), counts)
        pt, eta, phi = (cols[k].astype(np.float64) for k in ("pt", "eta", "phi"))
        keep = pt > MET_CUTS[name]
        if name in ids:
            flag = ids[name] != 0
            keep &= flag | ((pt > 60.0) | (np.abs(eta) > 2.4)) if name == "jets" else flag
        if name in ("jets", "photons"):
            dr = MET_JET_OVERLAP_DR if name == "jets" else MET_PHOTON_OVERLAP_DR
            keep &= ~_overlaps(eta, phi, ev, used, n, dr)
        if name in ("electrons", "photons"):
            used.append((ev[keep], eta[keep], phi[keep]))
        mex -= np.bincount(ev[keep], weights=pt[keep] * np.cos(phi[keep]), minlength=n)
        mey -= np.bincount(ev[keep], weights=pt[keep] * np.sin(phi[keep]), minlength=n)
    return ak.zip({"pt": np.hypot(mex, mey).astype(np.float32),
                   "phi": wrap_phi(np.arctan2(mey, mex)).astype(np.float32)})


def _soft_term(arrays: ak.Array, url: str, start: int) -> tuple[np.ndarray, np.ndarray]:
    m = REQUIRED["met"]
    src = arrays[m["source"]]
    is_trk = (src & SOFT_TRACK) == SOFT_TRACK
    n_trk = ak.to_numpy(ak.sum(is_trk, axis=1))
    if np.any(n_trk != 1):
        bad = int(np.flatnonzero(n_trk != 1)[0]) + start
        raise InputFileError(f"{url}: entry {bad}: MET_Core_AnalysisMET has {n_trk[bad - start]} track soft "
                             f"terms (PVSoftTrkCore), expected 1")
    mpx = ak.to_numpy(ak.flatten(arrays[m["mpx"]][is_trk])) * MEV
    mpy = ak.to_numpy(ak.flatten(arrays[m["mpy"]][is_trk])) * MEV
    return mpx, mpy


def _record(arrays: ak.Array, url: str, start: int, plan: _Plan) -> ak.Array:
    n = len(arrays)
    ei = plan.event_info
    run = ak.to_numpy(arrays[ei["run"]]).astype(np.uint32)
    evn = ak.to_numpy(arrays[ei["event_number"]]).astype(np.uint64)
    out: dict[str, Any] = {}
    opt_ids = {k: ak.to_numpy(arrays[ei[k]]).astype(np.uint32) for k in ("lumi_block", "mc_channel") if k in ei}
    out["event_id"] = hash_ids(run, opt_ids.get("mc_channel", np.zeros(n, np.uint32)), evn)
    if "weights" in ei:
        out["weight"] = ak.to_numpy(ak.fill_none(ak.firsts(arrays[ei["weights"]]), 1.0)).astype(np.float32)
    else:
        out["weight"] = np.ones(n, np.float32)
    out["run"], out["event_number"] = run, evn
    out.update(opt_ids)
    objs = {}
    if plan.charge_from_tracks:
        arrays = ak.with_field(arrays, electron_charge_from_tracks(arrays, url), REQUIRED["electrons"]["charge"])
    for name in ("jets", "electrons", "muons", "photons"):
        mapping = dict(REQUIRED[name])
        iso = plan.optional.get((name, "isolation"))
        if iso:
            mapping["isolation"] = iso
        cols, counts = collection(arrays, mapping, url, name, scale={"pt": MEV, "mass": MEV})
        if iso:
            with np.errstate(divide="ignore", invalid="ignore"):
                cols["isolation"] = np.where(cols["pt"] > 0, cols["isolation"] * MEV / cols["pt"], 0.0
                                             ).astype(np.float32)
        if name == "jets" and plan.tagger:
            score, flag = _btag(arrays, url, plan.tagger, counts)
            cols["btag_score"] = score
            if flag is not None:
                cols["btag"] = flag
        objs[name] = (cols, counts)
        out[name] = jagged(cols, counts)
    if plan.taus:
        cols, counts = collection(arrays, TAUS, url, "AnalysisTauJets", scale={"pt": MEV, "mass": MEV})
        if plan.tau_id:
            cols["tag"] = flat_counts(arrays[TAU_ID])[0].astype(np.int8)
        out["taus"] = jagged(cols, counts)
    met_ids = {k: flat_counts(arrays[b])[0] for k, b in plan.met_id.items()}
    out["met"] = _rebuilt_met(objs, met_ids, *_soft_term(arrays, url, start))
    if plan.truth:
        out["truth"] = _truth(arrays, plan.truth)
    return ak.zip(out, depth_limit=1)


def read_physlite(url: str, *, step_size: int | str = DEFAULT_STEP, storage_options: dict[str, Any] | None = None,
                  entry_start: int | None = None, entry_stop: int | None = None) -> Iterator[ak.Array]:
    """Yield event records of one DAOD_PHYSLITE file, ``step_size`` entries (or bytes) at a time.

    Raises :class:`InputFileError` naming ``url`` for a missing, non-ROOT or truncated
    file, a missing ``CollectionTree`` or required branch, or a damaged basket.
    """
    for arrays, start, plan in read_chunks(url, storage_options, TREE, "DAOD_PHYSLITE", _Plan, step_size=step_size,
                                           entry_start=entry_start, entry_stop=entry_stop):
        yield _record(arrays, url, start, plan)


def describe(url: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a file provides: release, simulation or data, truth containers, tagger, optional fields."""
    def summary(tree, plan) -> dict[str, Any]:
        simulation = None
        if "event_type" in plan.event_info and tree.num_entries:
            flags = tree[plan.event_info["event_type"]].array(entry_stop=1, library="np")
            simulation = bool(int(flags[0]) & 1)
        return {"simulation": simulation, "truth": bool(plan.truth), "truth_containers": plan.truth,
                "taus": plan.taus, "tagger": plan.tagger[0] if plan.tagger else None,
                "event_info": plan.event_info_layout, "optional": sorted(plan.optional.values())}

    return describe_file(url, storage_options, TREE, "DAOD_PHYSLITE", _Plan, summary)


def n_entries(url: str, storage_options: dict[str, Any] | None = None) -> int:
    """Entries of the tree of ``url``; checks header, tree and required branches first."""
    return describe(url, storage_options)["entries"]


def sample_info(process: str, url: str, storage_options: dict[str, Any] | None = None, *,
                described: dict[str, Any] | None = None) -> SampleInfo:
    """The SampleInfo (provenance: format, release, truth present) of one input file."""
    import uproot

    d = described or describe(url, storage_options)
    info = SampleInfo(
        process=process, source=FORMAT, fidelity="external-input", input_format=FORMAT, release=d["release"],
        truth=d["truth"], inputs=[url],
        generator={"reader": f"uproot {uproot.__version__}", "tree": TREE, "event_id_rule": EVENT_ID_RULE,
                   "simulation": d["simulation"], "btag": d["tagger"], "event_info": d["event_info"],
                   "optional": d["optional"],
                   "truth": f"containers {d['truth_containers']}" if d["truth"] else
                   "absent: no truth containers (collision data); no truth labels",
                   "met": "rebuilt: simplified METMaker (objects + PVSoftTrkCore)"})
    return info


def iterate_physlite(pattern: str | list[str], process: str, *, step_size: int | str = DEFAULT_STEP,
                     storage_options: dict[str, Any] | None = None) -> Iterator[tuple[ak.Array, SampleInfo]]:
    """(event record, SampleInfo) blocks over all files matching ``pattern`` (for ``write_store``)."""
    from hepfm_data.readers.delphes import expand_inputs

    for url in expand_inputs(pattern, storage_options):
        info = sample_info(process, url, storage_options)
        for block in read_physlite(url, step_size=step_size, storage_options=storage_options):
            yield block, info


#: the protocol name of the reader function (hepfm_data.inputs.experiments)
read = read_physlite
