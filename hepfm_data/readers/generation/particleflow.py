r"""Particle-flow-like candidates and anti-kt R = 0.8 large-R jets from a Pythia final state.

Used by :mod:`hepfm_data.readers.generation.pythia` for processes whose catalog entry sets
``particle_flow: true`` (the RS3L / Vigl et al. inputs, docs/tutorials/representations.md).
All random numbers come from the ``numpy.random.Generator`` passed in (same seed ->
same bytes). Units: GeV, radians, mm (impact parameters).

Candidates (``kind``: 0 charged hadron, 1 neutral hadron, 2 photon, 3 electron, 4 muon),
from visible final-state particles (no neutrinos / LSP) with |η| < 4.9:

* Charged hadrons with |η| ≤ 2.5 are tracks, kept with the Delphes 3.4.2 ATLAS card's
  ``ChargedHadronTrackingEfficiency``: 0.70 (|η| ≤ 1.5, 0.1 < pT ≤ 1), 0.95 (|η| ≤ 1.5,
  pT > 1), 0.60 (1.5 < |η| ≤ 2.5, 0.1 < pT ≤ 1), 0.85 (1.5 < |η| ≤ 2.5, pT > 1); pT
  smeared (card ``ChargedHadronMomentumSmearing``, Gaussian) with σ(pT)/pT =
  sqrt(a² + (b·pT)²), (a, b) = (0.06, 1.3e-3) |η| ≤ 0.5, (0.10, 1.7e-3) ≤ 1.5,
  (0.25, 3.1e-3) ≤ 2.5 (``cards/delphes_card_ATLAS.tcl``). A charged hadron without a track (lost or |η| > 2.5) deposits its
  energy as a neutral hadron (the card's EFlowMerger of towers).
* Electrons / muons: the card's tracking efficiencies and momentum resolutions
  (:func:`~hepfm_data.readers.generation.detector.tracking_efficiency`, ``lepton_resolution``);
  an untracked electron becomes a photon, an untracked muon is lost.
* Photons: ECal resolution (card ``ECal``), kept with smeared E > 0.5 GeV (card
  ``ECalEnergyMin``); neutral hadrons: HCal resolution (card ``HCal``), E > 1.0 GeV
  (``HCalEnergyMin``). Log-normal smearing of E, direction unchanged.
* Impact parameters of tracks from the Pythia production vertex (x, y, z in mm; the origin when
  Pythia gives none, i.e. for particles made at the primary vertex) along a
  straight line (no field bending): d0 = (x·py − y·px)/pT, dz = z − (x·px + y·py)/pT ·
  pz/pT, each smeared with a Gaussian of σ(d0) = sqrt(0.010² + (0.140/pT)²) mm,
  σ(dz) = sqrt(0.090² + (0.190/pT)²) mm (typical ATLAS Run-2 inner-detector resolution,
  ATL-PHYS-PUB-2015-018; the Delphes ATLAS card has no impact-parameter smearing).
  Neutral candidates have d0 = dz = 0.

Large-R jets: anti-kt R = 0.8 (FastJet) on all candidates, kept with pT > 150 GeV
(Vigl et al.'s threshold; RS3L's 450 GeV is applied by the representation). Jet
four-momentum = the sum of its constituents. Soft-drop mass (β = 0, z_cut = 0.1,
R0 = 0.8; the constituents reclustered with Cambridge/Aachen) and N2^(β=1) =
2e3 / (1e2)² from the generalized energy correlation functions (Moult, Necib, Thaler,
JHEP 12 (2016) 153), both with FastJet contrib through FastJet's awkward interface.

Truth label (``truth_label``): 1 = H → bb̄ (the last-copy Higgs and both b quarks of its
decay within ΔR < 0.8 of the axis), 2 = quark, 3 = gluon (the closest outgoing
hard-process parton, |status| 23 and not a Higgs decay product, within ΔR < 0.8), 0 = none.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from hepfm_data.core.events import wrap_phi
from hepfm_data.readers.generation.detector import (
    ETA_MAX_CALO,
    ETA_MAX_TRACK,
    INVISIBLE,
    _fastjet,
    ecal_resolution,
    hcal_resolution,
    lepton_resolution,
    log_normal,
    particle_charge,
    tracking_efficiency,
)

FATJET_R = 0.8
FATJET_PT_MIN = 150.0  # GeV
SD_BETA, SD_ZCUT = 0.0, 0.1
N2_BETA = 1
MATCH_DR = 0.8
ECAL_E_MIN, HCAL_E_MIN = 0.5, 1.0  # GeV
TRACK_PT_MIN = 0.1  # GeV: every card tracking efficiency is 0 below
#: candidate kinds (the ``kind`` field)
CHARGED_HADRON, NEUTRAL_HADRON, PHOTON, ELECTRON, MUON = 0, 1, 2, 3, 4
KIND_NAMES = ("charged_hadron", "neutral_hadron", "photon", "electron", "muon")
#: truth labels (the ``truth_label`` field)
LABEL_NONE, LABEL_HBB, LABEL_QUARK, LABEL_GLUON = 0, 1, 2, 3


def hadron_tracking_efficiency(pt: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
    """Card ChargedHadronTrackingEfficiency vs pT (GeV) and |η|."""
    barrel, endcap = abs_eta <= 1.5, (abs_eta > 1.5) & (abs_eta <= ETA_MAX_TRACK)
    low, high = (pt > TRACK_PT_MIN) & (pt <= 1.0), pt > 1.0
    return np.select([barrel & low, barrel & high, endcap & low, endcap & high], [0.70, 0.95, 0.60, 0.85], 0.0)


def hadron_resolution(pt: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
    """Card ChargedHadronMomentumSmearing: relative σ(pT)/pT."""
    a = np.select([abs_eta <= 0.5, abs_eta <= 1.5], [0.06, 0.10], 0.25)
    b = np.select([abs_eta <= 0.5, abs_eta <= 1.5], [1.3e-3, 1.7e-3], 3.1e-3)
    return np.sqrt(a**2 + (b * pt) ** 2)


def impact_resolution(pt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(σ(d0), σ(dz)) in mm vs track pT (GeV)."""
    return np.sqrt(0.010**2 + (0.140 / pt) ** 2), np.sqrt(0.090**2 + (0.190 / pt) ** 2)


def _flat(a) -> np.ndarray:
    return ak.to_numpy(ak.flatten(a, axis=1))


def candidates(prt: ak.Array, rng: np.random.Generator) -> ak.Array:
    """Particle-flow candidates of a ``nextBatch`` particle list:
    var * {pt, eta, phi, energy f32 (GeV, rad), charge i8, kind i8, d0, dz f32 (mm)}."""
    fs = prt[prt.status > 0]
    counts = ak.to_numpy(ak.num(fs.id, axis=1))
    event = np.repeat(np.arange(len(counts)), counts)
    pid = _flat(fs.id).astype(np.int64)
    px, py, pz, e = (_flat(fs.p[k]).astype(np.float64) for k in ("px", "py", "pz", "e"))
    # production vertex (mm); Pythia gives NaN for particles without one (made at the primary vertex)
    vx, vy, vz = (np.nan_to_num(_flat(fs.vProd[k]).astype(np.float64)) for k in ("px", "py", "pz"))
    apid = np.abs(pid)
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), 0.0)
    phi = np.arctan2(py, px)
    vis = ~np.isin(apid, INVISIBLE) & (pt > 0) & (np.abs(eta) < ETA_MAX_CALO)
    q = particle_charge(pid)
    aeta = np.abs(eta)
    u = rng.random(pid.shape[0])  # one uniform per particle: efficiencies
    is_e, is_mu, is_gam = apid == 11, apid == 13, apid == 22
    is_ch = (q != 0) & ~is_e & ~is_mu
    eff = np.zeros_like(pt)
    eff[is_ch] = hadron_tracking_efficiency(pt[is_ch], aeta[is_ch])
    eff[is_e] = tracking_efficiency("electron", pt[is_e], aeta[is_e])
    eff[is_mu] = tracking_efficiency("muon", pt[is_mu], aeta[is_mu])
    tracked = vis & (q != 0) & (u < eff)
    kind = np.full(pid.shape[0], -1, np.int8)
    kind[tracked & is_ch] = CHARGED_HADRON
    kind[tracked & is_e] = ELECTRON
    kind[tracked & is_mu] = MUON
    kind[vis & ~tracked & (is_gam | is_e)] = PHOTON
    kind[vis & ~tracked & ~is_gam & ~is_e & ~is_mu] = NEUTRAL_HADRON  # neutral hadrons, untracked charged
    # resolutions: relative pT for tracks (Gaussian), energy for calorimeter deposits (log-normal)
    rel = np.zeros_like(pt)
    rel[kind == CHARGED_HADRON] = hadron_resolution(pt[kind == CHARGED_HADRON], aeta[kind == CHARGED_HADRON])
    rel[kind == ELECTRON] = lepton_resolution("electron", pt[kind == ELECTRON], aeta[kind == ELECTRON])
    rel[kind == MUON] = lepton_resolution("muon", pt[kind == MUON], aeta[kind == MUON])
    g = rng.standard_normal(pid.shape[0])
    scale = np.where(kind >= 0, np.clip(1.0 + rel * g, 0.0, None), 0.0)
    calo = (kind == PHOTON) | (kind == NEUTRAL_HADRON)
    sig = np.zeros_like(e)
    sig[kind == PHOTON] = ecal_resolution(e[kind == PHOTON], aeta[kind == PHOTON])
    sig[kind == NEUTRAL_HADRON] = hcal_resolution(e[kind == NEUTRAL_HADRON], aeta[kind == NEUTRAL_HADRON])
    e_new = np.where(calo, log_normal(rng, np.where(calo, e, 1.0), np.where(calo, sig, 0.0)), e * scale)
    scale = np.where(calo, e_new / np.where(e > 0, e, 1.0), scale)
    e_min = np.where(kind == PHOTON, ECAL_E_MIN, np.where(kind == NEUTRAL_HADRON, HCAL_E_MIN, 0.0))
    keep = (kind >= 0) & (scale > 0) & (e_new > e_min)
    # impact parameters (tracks only), straight line from the production vertex
    trk = keep & tracked
    safe_pt = np.where(pt > 0, pt, 1.0)
    d0 = (vx * py - vy * px) / safe_pt
    dz = vz - (vx * px + vy * py) / safe_pt * pz / safe_pt
    s0, sz = impact_resolution(safe_pt)
    n0, nz = rng.standard_normal(pid.shape[0]), rng.standard_normal(pid.shape[0])
    d0 = np.where(trk, d0 + s0 * n0, 0.0)
    dz = np.where(trk, dz + sz * nz, 0.0)
    rec = {"pt": (pt * scale)[keep], "eta": eta[keep], "phi": wrap_phi(phi[keep]), "energy": e_new[keep],
           "charge": np.where(tracked, q, 0)[keep].astype(np.int8), "kind": kind[keep],
           "d0": d0[keep], "dz": dz[keep]}
    rec = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in rec.items()}
    return ak.unflatten(ak.zip(rec), np.bincount(event[keep], minlength=len(counts)))


def _p4(c: ak.Array) -> ak.Array:
    """px, py, pz, E records of candidates (massless when E < |p| after smearing: E kept)."""
    pt, eta, phi = c.pt, c.eta, c.phi
    return ak.zip({"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "E": c.energy},
                  with_name="Momentum4D")


def _substructure(constituents: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """Soft-drop mass (GeV) and N2 of jets given as var * {px, py, pz, E} (one list per jet)."""
    fastjet = _fastjet()
    n = len(constituents)
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    ca = fastjet.JetDefinition(fastjet.cambridge_algorithm, FATJET_R)
    cs = fastjet.ClusterSequence(constituents, ca)
    sd = cs.exclusive_jets_softdrop_grooming(njets=1, beta=SD_BETA, symmetry_cut=SD_ZCUT, R0=FATJET_R)
    msd = ak.to_numpy(sd.msoftdrop).astype(np.float32)
    e2 = ak.to_numpy(cs.exclusive_jets_energy_correlator(njets=1, beta=N2_BETA, npoint=2, angles=1,
                                                         func="generalized", normalized=True))
    e3 = ak.to_numpy(cs.exclusive_jets_energy_correlator(njets=1, beta=N2_BETA, npoint=3, angles=2,
                                                         func="generalized", normalized=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        n2 = np.where(e2 > 0, e3 / e2**2, 0.0)
    return msd, np.nan_to_num(n2).astype(np.float32)


def _delta_r(eta1, phi1, eta2, phi2):
    dphi = (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi  # works on awkward arrays too
    return np.sqrt((eta1 - eta2) ** 2 + dphi**2)


def hard_partons(prt: ak.Array) -> tuple[ak.Array, ak.Array]:
    """(Higgs → bb̄ systems var * {eta, phi, b1_eta, b1_phi, b2_eta, b2_phi}, partons var * {pid, eta, phi})."""
    counts = ak.to_numpy(ak.num(prt.id, axis=1))
    off = np.concatenate([[0], np.cumsum(counts)])
    event = np.repeat(np.arange(counts.size), counts)
    base = off[:-1][event]
    pid = _flat(prt.id).astype(np.int64)
    status = _flat(prt.status)
    m1, d1, d2 = (_flat(prt[k]).astype(np.int64) + base for k in ("mother1", "daughter1", "daughter2"))
    px, py, pz = (_flat(prt.p[k]).astype(np.float64) for k in ("px", "py", "pz"))
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.where(pt > 0, pt, 1.0))
    phi = np.arctan2(py, px)
    last_h = (pid == 25) & (pid[d1] != 25) & (pid[d2] != 25)
    hbb = np.flatnonzero(last_h & (np.abs(pid[d1]) == 5) & (np.abs(pid[d2]) == 5))
    higgs = ak.unflatten(ak.zip({"eta": eta[hbb], "phi": phi[hbb], "b1_eta": eta[d1[hbb]], "b1_phi": phi[d1[hbb]],
                                 "b2_eta": eta[d2[hbb]], "b2_phi": phi[d2[hbb]]}),
                         np.bincount(event[hbb], minlength=counts.size))
    apid = np.abs(pid)
    parton = np.flatnonzero((np.abs(status) == 23) & ((apid <= 5) | (apid == 21)) & (pid[m1] != 25))
    partons = ak.unflatten(ak.zip({"pid": pid[parton], "eta": eta[parton], "phi": phi[parton]}),
                           np.bincount(event[parton], minlength=counts.size))
    return higgs, partons


def truth_labels(jets: ak.Array, prt: ak.Array) -> ak.Array:
    """Per-jet truth label (int8, see the module docstring) of var * {eta, phi} jets."""
    higgs, partons = hard_partons(prt)
    h = ak.cartesian({"j": jets, "h": higgs}, nested=True)
    in_h = ((_delta_r(h.j.eta, h.j.phi, h.h.eta, h.h.phi) < MATCH_DR)
            & (_delta_r(h.j.eta, h.j.phi, h.h.b1_eta, h.h.b1_phi) < MATCH_DR)
            & (_delta_r(h.j.eta, h.j.phi, h.h.b2_eta, h.h.b2_phi) < MATCH_DR))
    is_hbb = ak.any(in_h, axis=2)
    c = ak.cartesian({"j": jets, "p": partons}, nested=True)
    dr = _delta_r(c.j.eta, c.j.phi, c.p.eta, c.p.phi)
    best = ak.argmin(dr, axis=2, keepdims=True)
    best_dr = ak.fill_none(ak.firsts(dr[best], axis=2), 99.0)
    best_pid = ak.fill_none(ak.firsts(c.p.pid[best], axis=2), 0)
    matched = best_dr < MATCH_DR
    lab = ak.where(is_hbb, LABEL_HBB, ak.where(matched, ak.where(best_pid == 21, LABEL_GLUON, LABEL_QUARK),
                                                 LABEL_NONE))
    return ak.values_astype(lab, np.int8)


def large_r_jets(cands: ak.Array, prt: ak.Array | None = None) -> ak.Array:
    """Anti-kt R = 0.8 jets (pT > 150 GeV, pT-ordered) of ``cands`` with their constituents (pT-ordered):
    var * {pt, eta, phi, mass, sd_mass, n2 f32, [truth_label i8,] constituents: var * candidate}."""
    fastjet = _fastjet()
    cs = fastjet.ClusterSequence(_p4(cands), fastjet.JetDefinition(fastjet.antikt_algorithm, FATJET_R))
    jets = cs.inclusive_jets(min_pt=FATJET_PT_MIN)
    idx = cs.constituent_index(min_pt=FATJET_PT_MIN)
    order = ak.argsort(jets.px**2 + jets.py**2, axis=1, ascending=False)
    jets, idx = jets[order], idx[order]
    starts = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(cands, axis=1)))])[:-1]
    n_per_jet = ak.to_numpy(ak.flatten(ak.num(idx, axis=2)))
    event_of = np.repeat(np.arange(len(cands)), ak.to_numpy(ak.sum(ak.num(idx, axis=2), axis=1)))
    rows = ak.to_numpy(ak.flatten(idx, axis=None)).astype(np.int64) + starts[event_of]
    per_jet = ak.unflatten(ak.flatten(cands, axis=1)[rows], n_per_jet)  # one list per jet
    per_jet = per_jet[ak.argsort(per_jet.pt, axis=1, ascending=False)]
    jpx, jpy, jpz, je = (ak.to_numpy(ak.flatten(jets[k])).astype(np.float64) for k in ("px", "py", "pz", "E"))
    jpt = np.hypot(jpx, jpy)
    jeta = np.arcsinh(jpz / np.where(jpt > 0, jpt, 1.0))
    jphi = wrap_phi(np.arctan2(jpy, jpx))
    jmass = np.sqrt(np.clip(je**2 - jpx**2 - jpy**2 - jpz**2, 0.0, None))
    msd, n2 = _substructure(_p4(per_jet))
    n_jets = ak.to_numpy(ak.num(jets, axis=1))
    fields = {"pt": jpt, "eta": jeta, "phi": jphi, "mass": jmass, "sd_mass": msd, "n2": n2}
    flat = {k: ak.Array(np.asarray(v, np.float32)) for k, v in fields.items()}
    flat["constituents"] = per_jet
    out = ak.unflatten(ak.zip(flat, depth_limit=1), n_jets)
    if prt is not None:
        out = ak.with_field(out, truth_labels(out[["eta", "phi"]], prt), "truth_label")
    return out


def fatjets(prt: ak.Array, rng: np.random.Generator) -> ak.Array:
    """The record's ``fatjets`` collection of one ``nextBatch`` particle list (candidates + jets + labels)."""
    return large_r_jets(candidates(prt, rng), prt)


# ------------------------------------------------------------------ Delphes EFlow + FatJet

#: Delphes branches read for ``fatjets`` (all needed; the collection is absent when any is missing)
DELPHES_BRANCHES = {
    "EFlowTrack": ("EFlowTrack.PT", "EFlowTrack.Eta", "EFlowTrack.Phi", "EFlowTrack.P", "EFlowTrack.Charge",
                   "EFlowTrack.PID", "EFlowTrack.D0", "EFlowTrack.DZ"),
    "EFlowPhoton": ("EFlowPhoton.ET", "EFlowPhoton.Eta", "EFlowPhoton.Phi", "EFlowPhoton.E"),
    "EFlowNeutralHadron": ("EFlowNeutralHadron.ET", "EFlowNeutralHadron.Eta", "EFlowNeutralHadron.Phi",
                           "EFlowNeutralHadron.E"),
    "FatJet": ("FatJet.PT", "FatJet.Eta", "FatJet.Phi", "FatJet.Mass"),
}


def delphes_candidates(arrays: ak.Array) -> ak.Array:
    """Particle-flow candidates (same fields as :func:`candidates`) from Delphes EFlow collections:
    tracks (kind by |PID|: 11 electron, 13 muon, else charged hadron; E = |p|, D0/DZ in mm),
    EFlowPhoton (photon) and EFlowNeutralHadron (neutral hadron; E from the branch)."""
    t = "EFlowTrack."
    apid = abs(arrays[t + "PID"])
    kind = ak.where(apid == 11, ELECTRON, ak.where(apid == 13, MUON, CHARGED_HADRON))
    tracks = ak.zip({"pt": arrays[t + "PT"], "eta": arrays[t + "Eta"], "phi": arrays[t + "Phi"],
                     "energy": arrays[t + "P"], "charge": arrays[t + "Charge"], "kind": kind,
                     "d0": arrays[t + "D0"], "dz": arrays[t + "DZ"]})
    parts = [tracks]
    for coll, k in (("EFlowPhoton", PHOTON), ("EFlowNeutralHadron", NEUTRAL_HADRON)):
        pt = arrays[f"{coll}.ET"]
        zero = pt * 0
        parts.append(ak.zip({"pt": pt, "eta": arrays[f"{coll}.Eta"], "phi": arrays[f"{coll}.Phi"],
                             "energy": arrays[f"{coll}.E"], "charge": zero, "kind": zero + k, "d0": zero, "dz": zero}))
    c = ak.concatenate(parts, axis=1)
    types = {"pt": np.float32, "eta": np.float32, "phi": np.float32, "energy": np.float32, "charge": np.int8,
             "kind": np.int8, "d0": np.float32, "dz": np.float32}
    return ak.zip({k: ak.values_astype(c[k], v) for k, v in types.items()})


def delphes_fatjets(arrays: ak.Array) -> ak.Array:
    """The record's ``fatjets`` from Delphes ``FatJet`` (pT, η, φ, mass as stored, pT-ordered) with constituents =
    the EFlow candidates within ΔR < 0.8 of the axis (the file's TRefArray links are not read); soft-drop mass
    and N2 recomputed from them with FastJet as for generated events; no truth label."""
    cands = delphes_candidates(arrays)
    jets = ak.zip({k: ak.values_astype(arrays[f"FatJet.{b}"], np.float32)
                   for k, b in (("pt", "PT"), ("eta", "Eta"), ("phi", "Phi"), ("mass", "Mass"))})
    jets = jets[ak.argsort(jets.pt, axis=1, ascending=False)]
    pairs = ak.cartesian({"j": jets, "c": cands}, nested=True)
    inside = _delta_r(pairs.j.eta, pairs.j.phi, pairs.c.eta, pairs.c.phi) < FATJET_R
    const = pairs.c[inside]
    const = const[ak.argsort(const.pt, axis=2, ascending=False)]
    per_jet = ak.flatten(const, axis=1)
    msd, n2 = _substructure(_p4(per_jet))
    n_jets = ak.to_numpy(ak.num(jets, axis=1))
    flat = {k: ak.Array(ak.to_numpy(ak.flatten(jets[k]))) for k in ("pt", "eta", "phi", "mass")}
    flat["phi"] = ak.Array(wrap_phi(ak.to_numpy(flat["phi"])).astype(np.float32))
    flat.update(sd_mass=ak.Array(msd), n2=ak.Array(n2), constituents=per_jet)
    return ak.unflatten(ak.zip(flat, depth_limit=1), n_jets)
