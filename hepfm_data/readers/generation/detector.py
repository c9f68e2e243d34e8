r"""Fast ATLAS-like detector emulation on generator final states (vectorised).

Follows the Delphes 3.4.2 ATLAS card (``cards/delphes_card_ATLAS.tcl``) at the
level of physics objects: the card's efficiencies, resolutions and isolation
are applied to final-state particles directly (no tracks/towers). All random
numbers come from one ``numpy.random.Generator`` (same seed -> same bytes).
Units: GeV, radians; pT in GeV inside every formula; "|η|" bins as in the card.

Inputs: visible = final-state particles except neutrinos (12, 14, 16) and the
invisible SUSY LSP/gravitino (1000022, 1000039), with |η| < 4.9 and pT > 0.

Tracking efficiency (card: *TrackingEfficiency), ε_trk, zero for |η| > 2.5:
  electrons  |η|≤1.5: 0.73 (0.1<pT≤1), 0.95 (1<pT≤100), 0.99 (pT>100);
             1.5<|η|≤2.5: 0.50, 0.83, 0.90 in the same pT bins
  muons      |η|≤1.5: 0.75 (0.1<pT≤1), 0.99 (pT>1); 1.5<|η|≤2.5: 0.70, 0.98

Identification efficiency (card: *Efficiency), ε_id, zero for pT ≤ 10 GeV:
  electrons, photons  0.95 (|η|≤1.5), 0.85 (1.5<|η|≤2.5), 0 beyond
  muons               0.95 (|η|≤1.5), 0.85 (1.5<|η|≤2.7), 0 beyond
Electrons and muons are kept with probability ε_trk·ε_id, photons with ε_id.

Momentum/energy resolution (card: *MomentumSmearing, ECal), log-normal
smearing with the given mean and standard deviation (Delphes ``LogNormal``):
  electrons  σ(pT)/pT = sqrt(a² + (b·pT)²), (a, b) = (0.03, 1.3e-3) |η|≤0.5,
             (0.05, 1.7e-3) 0.5<|η|≤1.5, (0.15, 3.1e-3) 1.5<|η|≤2.5
  muons      same form, (0.01, 1.0e-4), (0.015, 1.5e-4), (0.025, 3.5e-4)
  photons    σ(E) = sqrt((0.0017·E)² + 0.101²·E) for |η|≤3.2 (ECal), E in GeV
  η and φ are not smeared.

Isolation (card: *Isolation): I = Σ pT(particles within ΔR < 0.5, pT > 0.5
GeV, not the candidate, not electrons/muons — the card's EFlowFilter) / pT(candidate);
isolated when I < 0.12 (electrons, photons) or I < 0.25 (muons).
ΔR = sqrt(Δη² + Δφ²), Δφ wrapped.

Jets: anti-kt R = 0.4 (FastJet: Cacciari, Salam, Soyez, EPJC 72 (2012) 1896,
arXiv:1111.6097; anti-kt: JHEP 04 (2008) 063) on visible particles, excluding all muons
(minimum-ionising in the calorimeters) and the isolated electrons/photons kept
as objects (the card's UniqueObjectFinder gives those precedence). Jet energy
resolution = the card's HCal resolution applied to the jet energy:
  σ(E) = sqrt((0.0302·E)² + 0.5205²·E + 1.59²)   |η|≤1.7
         sqrt((0.0500·E)² + 0.706²·E)            1.7<|η|≤3.2
         sqrt((0.0942·E)² + 1.00²·E)             3.2<|η|≤4.9
log-normal smearing of E, the four-momentum scaled by E'/E; jets kept with
smeared pT > 20 GeV (the card's JetPTMin). The card's JetEnergyScale corrects
tower-level response that particle-level jets do not have, so it is not applied.

MET: minus the vector sum of the visible pT (|η| < 4.9, muons included), with
each reconstructed object's smearing (smeared − true pT vector) propagated.

Isolation values are kept as the objects' ``isolation`` field (I above).

Hadronic τ (card: TauTagging, Delphes 3.4.2 ATLAS card): a jet is a true τ jet
when the visible momentum of a hadronically decaying τ (τ minus its neutrino;
pT > 1 GeV, |η| < 2.5 — the card's TauPTMin, TauEtaMax) lies within ΔR < 0.4 of
its axis; it is τ-tagged with probability 0.6 (card: EfficiencyFormula {15}
{0.6}), any other jet with 0.01 (EfficiencyFormula {0} {0.01}). ``jets.tau_tag``
holds the decision and ``taus`` the tagged jets (pt, eta, phi, mass; charge = Σ
charge of charged final-state particles with pT > 1 GeV within ΔR < 0.2 of the
axis, clipped to [-1, 1]; tag = 1). The τ-tag random numbers are drawn after
every other draw, so the other objects do not depend on whether τs are emulated.

No SPEC §2 selection and no b-tagging here: the kernels apply them.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numba
import numpy as np

from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.events import wrap_phi

#: |PDG id| of invisible final-state particles
INVISIBLE = (12, 14, 16, 1000022, 1000039)
ETA_MAX_CALO = 4.9
ETA_MAX_TRACK = 2.5
ISO_DR = 0.5
ISO_PT_MIN = 0.5
ISO_MAX = {"electron": 0.12, "photon": 0.12, "muon": 0.25}
OBJECT_PT_MIN = 10.0  # GeV: every ID efficiency of the card is 0 at or below this
JET_R = 0.4
JET_PT_MIN = 20.0  # GeV, after smearing
JET_CLUSTER_PT_MIN = 10.0  # GeV, before smearing (jets that may fluctuate above JET_PT_MIN)
TAU_DR = 0.4  # card TauTagging DeltaR
TAU_PT_MIN = 1.0  # GeV, card TauPTMin (visible τ momentum)
TAU_ETA_MAX = 2.5  # card TauEtaMax
TAU_EFFICIENCY = 0.6  # card EfficiencyFormula {15}
TAU_MISTAG = 0.01  # card EfficiencyFormula {0}
TAU_CHARGE_DR = 0.2
TAU_TRACK_PT_MIN = 1.0  # GeV
#: |PDG id| -> charge of the particle (positive id) for the charged particles stable in Pythia's final state
CHARGED = {11: -1, 13: -1, 211: 1, 321: 1, 2212: 1, 3222: 1, 3112: -1, 3312: -1, 3334: -1}


@dataclass(frozen=True)
class DetectorObjects:
    """The emulated objects of a batch of events (awkward arrays, float32, GeV, rad)."""

    jets: ak.Array  # var * {pt, eta, phi, mass}
    electrons: ak.Array  # var * {pt, eta, phi, charge}
    muons: ak.Array  # var * {pt, eta, phi, charge}
    photons: ak.Array  # var * {pt, eta, phi}
    met: ak.Array  # {pt, phi}
    taus: ak.Array | None = None  # var * {pt, eta, phi, mass, charge, tag}; None when no τ truth was given


# ------------------------------------------------------------------ card formulas


def tracking_efficiency(kind: str, pt: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
    """Card tracking efficiency of electrons/muons vs pT (GeV) and |η|."""
    barrel, endcap = abs_eta <= 1.5, (abs_eta > 1.5) & (abs_eta <= ETA_MAX_TRACK)
    low, mid = (pt > 0.1) & (pt <= 1.0), pt > 1.0
    if kind == "electron":
        high = pt > 100.0
        mid = mid & ~high
        table = [(barrel & low, 0.73), (barrel & mid, 0.95), (barrel & high, 0.99),
                 (endcap & low, 0.50), (endcap & mid, 0.83), (endcap & high, 0.90)]
    elif kind == "muon":
        table = [(barrel & low, 0.75), (barrel & mid, 0.99), (endcap & low, 0.70), (endcap & mid, 0.98)]
    else:
        raise ValueError(f"no tracking efficiency for {kind!r}")
    return np.select([c for c, _ in table], [v for _, v in table], 0.0)


def id_efficiency(kind: str, pt: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
    """Card identification efficiency of electrons/muons/photons vs pT (GeV) and |η|."""
    outer = 2.7 if kind == "muon" else 2.5
    above = pt > OBJECT_PT_MIN
    return np.select([above & (abs_eta <= 1.5), above & (abs_eta > 1.5) & (abs_eta <= outer)], [0.95, 0.85], 0.0)


def lepton_resolution(kind: str, pt: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
    """Card relative pT resolution σ(pT)/pT of electrons/muons (track momentum smearing)."""
    pars = {"electron": ((0.03, 1.3e-3), (0.05, 1.7e-3), (0.15, 3.1e-3)),
            "muon": ((0.01, 1.0e-4), (0.015, 1.5e-4), (0.025, 3.5e-4))}[kind]
    a = np.select([abs_eta <= 0.5, abs_eta <= 1.5], [pars[0][0], pars[1][0]], pars[2][0])
    b = np.select([abs_eta <= 0.5, abs_eta <= 1.5], [pars[0][1], pars[1][1]], pars[2][1])
    return np.sqrt(a**2 + (b * pt) ** 2)


def ecal_resolution(energy: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
    """Card ECal absolute energy resolution σ(E) in GeV (E in GeV)."""
    central = np.sqrt((0.0017 * energy) ** 2 + 0.101**2 * energy)
    forward = np.sqrt((0.0350 * energy) ** 2 + 0.285**2 * energy)
    return np.where(abs_eta <= 3.2, central, forward)


def hcal_resolution(energy: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
    """Card HCal absolute energy resolution σ(E) in GeV, used as the jet energy resolution."""
    return np.select(
        [abs_eta <= 1.7, abs_eta <= 3.2],
        [np.sqrt((0.0302 * energy) ** 2 + 0.5205**2 * energy + 1.59**2),
         np.sqrt((0.0500 * energy) ** 2 + 0.706**2 * energy)],
        np.sqrt((0.0942 * energy) ** 2 + 1.00**2 * energy),
    )


def log_normal(rng: np.random.Generator, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Positive random numbers with the given mean and standard deviation (Delphes LogNormal)."""
    mean = np.asarray(mean, dtype=np.float64)
    ratio2 = (np.asarray(sigma, dtype=np.float64) / np.where(mean > 0, mean, 1.0)) ** 2
    s = np.sqrt(np.log1p(ratio2))
    mu = np.log(np.where(mean > 0, mean, 1.0)) - 0.5 * s**2
    return np.where(mean > 0, np.exp(mu + s * rng.standard_normal(mean.shape)), 0.0)


# ------------------------------------------------------------------ kernels


def isolation_sums(cand_index, cand_event, offsets, eta, phi, pt, use, dr_max):
    """Σ pT of particles ``use``-flagged within ΔR < dr_max of each candidate.

    ``cand_index``: flat particle index of each candidate (excluded from its own
    sum); ``cand_event``: its event; ``offsets``: particle offsets per event
    (length n_events + 1); ``eta``, ``phi``, ``pt``, ``use``: flat per particle.
    Returns float64 [n_candidates] in GeV (:func:`cone_sums` around each candidate).
    """
    return _cone_sums(eta[cand_index], phi[cand_index], cand_event, cand_index, offsets, eta, phi,
                      np.where(use, pt, 0.0), dr_max)


def isolation_reference(cand_index, cand_event, offsets, eta, phi, pt, use, dr_max) -> np.ndarray:
    """Plain numpy reference of :func:`isolation_sums` (for tests)."""
    out = np.zeros(len(cand_index))
    for c, (i, ev) in enumerate(zip(cand_index, cand_event)):
        j = np.arange(offsets[ev], offsets[ev + 1])
        j = j[(j != i) & use[j]]
        dr = np.hypot(eta[j] - eta[i], wrap_phi(phi[j] - phi[i]))
        out[c] = pt[j][dr < dr_max].sum()
    return out


# ------------------------------------------------------------------ emulation


def _kinematics(px, py, pz):
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), np.sign(pz) * 1e9)
    return pt, eta, np.arctan2(py, px)


def _unflatten(fields: dict[str, np.ndarray], event: np.ndarray, n_events: int, order_key=None) -> ak.Array:
    """Jagged array from flat object columns and their event index (objects sorted by event, then -pT)."""
    key = order_key if order_key is not None else -fields["pt"]
    order = np.lexsort((key, event))
    counts = np.bincount(event, minlength=n_events)
    return ak.unflatten(ak.zip({k: v[order] for k, v in fields.items()}), counts)


def tau_tag_efficiency(is_true_tau: np.ndarray) -> np.ndarray:
    """Card τ-tag probability of jets: 0.6 for true τ jets, 0.01 (mistag) for the others."""
    return np.where(is_true_tau, TAU_EFFICIENCY, TAU_MISTAG)


def cone_sums(axis_eta, axis_phi, axis_event, offsets, eta, phi, weight, dr_max):
    """Σ ``weight`` of the particles of each axis' event within ΔR < dr_max of the axis.

    ``axis_*``: flat per axis (jet); ``offsets``: particle offsets per event; ``eta``,
    ``phi``, ``weight``: flat per particle. Returns float64 [n_axes]."""
    return _cone_sums(axis_eta, axis_phi, axis_event, np.full(axis_eta.shape[0], -1, np.int64), offsets, eta, phi,
                      weight, dr_max)


@numba.njit(cache=True)
def _cone_sums(axis_eta, axis_phi, axis_event, skip, offsets, eta, phi, weight, dr_max):
    """The one cone kernel: Σ ``weight`` (zero weights skipped) of the particles of each axis' event within
    ΔR < dr_max of the axis, leaving out particle ``skip[a]`` (-1: none). float64 [n_axes]."""
    out = np.zeros(axis_eta.shape[0], dtype=np.float64)
    dr2 = dr_max * dr_max
    for a in range(axis_eta.shape[0]):
        ev = axis_event[a]
        total = 0.0
        for j in range(offsets[ev], offsets[ev + 1]):
            if j == skip[a] or weight[j] == 0.0:
                continue
            deta = eta[j] - axis_eta[a]
            dphi = (phi[j] - axis_phi[a] + np.pi) % (2.0 * np.pi) - np.pi
            if deta * deta + dphi * dphi < dr2:
                total += weight[j]
        out[a] = total
    return out


def particle_charge(pid: np.ndarray) -> np.ndarray:
    """Charge (e) of final-state particles from their PDG ids (:data:`CHARGED`; 0 for neutrals)."""
    apid = np.abs(pid)
    q = np.zeros(len(pid), np.float64)
    for code, c in CHARGED.items():
        q[apid == code] = c
    return q * np.sign(pid)


def _tau_tagging(jets: ak.Array, taus: ak.Array, rng: np.random.Generator, charge_sum: np.ndarray,
                 j_event: np.ndarray, n_events: int) -> tuple[ak.Array, ak.Array]:
    """(jets with ``tau_tag``, the τ-tagged jets as ``taus``); see the module docstring."""
    jcounts = ak.to_numpy(ak.num(jets, axis=1))
    jf = {k: ak.to_numpy(ak.flatten(jets[k])) for k in jets.fields}
    t_ok = (taus.pt > TAU_PT_MIN) & (abs(taus.eta) < TAU_ETA_MAX)
    t = taus[t_ok]
    t_off = counts_to_offsets(ak.to_numpy(ak.num(t, axis=1)))
    t_event = np.repeat(np.arange(n_events), np.diff(t_off))
    ones = np.ones(len(t_event))
    near = cone_sums(jf["eta"].astype(np.float64), jf["phi"].astype(np.float64), j_event, t_off,
                     ak.to_numpy(ak.flatten(t.eta)).astype(np.float64), ak.to_numpy(ak.flatten(t.phi)).astype(np.float64),
                     ones, TAU_DR) if len(j_event) else np.zeros(0)
    tagged = rng.random(len(j_event)) < tau_tag_efficiency(near > 0)
    jf["tau_tag"] = tagged.astype(np.int8)
    out_jets = ak.unflatten(ak.zip(jf), jcounts)
    cs = counts_to_offsets(tagged)
    off = counts_to_offsets(jcounts)
    tau_cols = {k: jf[k][tagged] for k in ("pt", "eta", "phi", "mass")}
    tau_cols["charge"] = np.clip(np.rint(charge_sum[tagged]), -1, 1).astype(np.int8)
    tau_cols["tag"] = np.ones(int(tagged.sum()), np.int8)
    return out_jets, ak.unflatten(ak.zip(tau_cols), cs[off[1:]] - cs[off[:-1]])


def emulate(particles: ak.Array, rng: np.random.Generator, taus: ak.Array | None = None) -> DetectorObjects:
    """Detector objects for final-state ``particles`` (var * {pid, px, py, pz, e}, GeV).

    ``taus``: visible momenta of the hadronically decaying τ leptons (var * {pt, eta, phi},
    GeV) for the τ tagging; without it no τ information is made (``jets.tau_tag`` and
    ``taus`` absent). Returns :class:`DetectorObjects`; every collection is sorted by
    decreasing pT.
    """
    fastjet = _fastjet()
    n_events = len(particles)
    offsets = counts_to_offsets(ak.to_numpy(ak.num(particles, axis=1)))
    flat = ak.flatten(particles, axis=1)
    pid = ak.to_numpy(flat.pid).astype(np.int64)
    px, py, pz, e = (ak.to_numpy(flat[k]).astype(np.float64) for k in ("px", "py", "pz", "e"))
    event = np.repeat(np.arange(n_events), np.diff(offsets))
    apid = np.abs(pid)
    pt, eta, phi = _kinematics(px, py, pz)
    abs_eta = np.abs(eta)
    visible = ~np.isin(apid, INVISIBLE) & (abs_eta < ETA_MAX_CALO) & (pt > 0)
    iso_use = visible & (apid != 11) & (apid != 13) & (pt > ISO_PT_MIN)

    chosen = np.zeros(len(pid), dtype=bool)  # particles turned into e/mu/photon objects
    dpx = np.zeros(n_events)  # smeared minus true object pT vectors, per event
    dpy = np.zeros(n_events)
    objects = {}
    for kind, code in (("photon", 22), ("electron", 11), ("muon", 13)):
        idx = np.flatnonzero((apid == code) & visible & (pt > OBJECT_PT_MIN * 0.5))
        c_pt, c_eta, c_aeta = pt[idx], eta[idx], abs_eta[idx]
        if kind == "photon":
            energy = e[idx]
            new_e = log_normal(rng, energy, ecal_resolution(energy, c_aeta))
            new_pt = new_e / np.cosh(c_eta)
            eff = id_efficiency(kind, new_pt, c_aeta)
        else:
            new_pt = log_normal(rng, c_pt, lepton_resolution(kind, c_pt, c_aeta) * c_pt)
            eff = tracking_efficiency(kind, c_pt, c_aeta) * id_efficiency(kind, new_pt, c_aeta)
        accept = rng.random(len(idx)) < eff
        iso = isolation_sums(idx, event[idx], offsets, eta, phi, pt, iso_use, ISO_DR)
        keep = accept & (iso < ISO_MAX[kind] * new_pt)
        idx, new_pt = idx[keep], new_pt[keep]
        chosen[idx] = True
        scale = new_pt / pt[idx] - 1.0
        np.add.at(dpx, event[idx], scale * px[idx])
        np.add.at(dpy, event[idx], scale * py[idx])
        cols = {"pt": new_pt.astype(np.float32), "eta": eta[idx].astype(np.float32),
                "phi": wrap_phi(phi[idx]).astype(np.float32), "isolation": (iso[keep] / new_pt).astype(np.float32)}
        if kind != "photon":
            cols["charge"] = (-np.sign(pid[idx])).astype(np.int8)  # e-/mu- have positive PDG id
        objects[kind] = _unflatten(cols, event[idx], n_events)

    # jets: anti-kt R=0.4 on visible particles except muons and the chosen objects
    jet_in = visible & (apid != 13) & ~chosen
    sel = np.flatnonzero(jet_in)
    inputs = ak.unflatten(ak.zip({"px": px[sel], "py": py[sel], "pz": pz[sel], "E": e[sel]}, with_name="Momentum4D"),
                          np.bincount(event[sel], minlength=n_events))
    cluster = fastjet.ClusterSequence(inputs, fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R))
    raw = cluster.inclusive_jets(min_pt=JET_CLUSTER_PT_MIN)
    j_counts = ak.to_numpy(ak.num(raw, axis=1))
    j_event = np.repeat(np.arange(n_events), j_counts)
    rflat = ak.flatten(raw, axis=1)
    jpx, jpy, jpz, je = (ak.to_numpy(rflat[k]).astype(np.float64) for k in ("px", "py", "pz", "E"))
    jpt, jeta, jphi = _kinematics(jpx, jpy, jpz)
    new_e = log_normal(rng, je, hcal_resolution(je, np.abs(jeta)))
    scale = np.where(je > 0, new_e / np.where(je > 0, je, 1.0), 0.0)
    keep = (jpt * scale > JET_PT_MIN) & (np.abs(jeta) < ETA_MAX_CALO)
    np.add.at(dpx, j_event[keep], (scale[keep] - 1.0) * jpx[keep])
    np.add.at(dpy, j_event[keep], (scale[keep] - 1.0) * jpy[keep])
    m2 = (je**2 - jpx**2 - jpy**2 - jpz**2)[keep]
    jets = _unflatten({
        "pt": (jpt * scale)[keep].astype(np.float32), "eta": jeta[keep].astype(np.float32),
        "phi": wrap_phi(jphi[keep]).astype(np.float32),
        "mass": (scale[keep] * np.sqrt(np.clip(m2, 0.0, None))).astype(np.float32),
    }, j_event[keep], n_events)

    # MET: minus visible pT sum, object smearing propagated
    mex = -(np.bincount(event[visible], weights=px[visible], minlength=n_events) + dpx)
    mey = -(np.bincount(event[visible], weights=py[visible], minlength=n_events) + dpy)
    met = ak.zip({"pt": np.hypot(mex, mey).astype(np.float32),
                  "phi": wrap_phi(np.arctan2(mey, mex)).astype(np.float32)})
    tau_objects = None
    if taus is not None:  # last: its random numbers come after every other draw
        sorted_event = np.repeat(np.arange(n_events), ak.to_numpy(ak.num(jets, axis=1)))
        jflat = ak.flatten(jets)
        track = visible & (pt > TAU_TRACK_PT_MIN)
        q = np.where(track, particle_charge(pid), 0.0)
        charge_sum = cone_sums(ak.to_numpy(jflat.eta).astype(np.float64), ak.to_numpy(jflat.phi).astype(np.float64),
                               sorted_event, offsets, eta, phi, q, TAU_CHARGE_DR) if len(sorted_event) else np.zeros(0)
        jets, tau_objects = _tau_tagging(jets, taus, rng, charge_sum, sorted_event, n_events)
    return DetectorObjects(jets=jets, electrons=objects["electron"], muons=objects["muon"],
                           photons=objects["photon"], met=met, taus=tau_objects)


def _fastjet():
    from hepfm_data.core.errors import require

    fastjet = require("fastjet", "gen", "jet clustering of generated events")
    global _BANNER_OFF
    if not _BANNER_OFF:  # keep progress bars readable; FastJet is cited in the module docstring and the docs
        try:
            from fastjet import _swig

            _swig.ClusterSequence.set_fastjet_banner_stream(None)
        except (ImportError, AttributeError):  # pragma: no cover - other fastjet builds
            pass
        _BANNER_OFF = True
    return fastjet


_BANNER_OFF = False


@numba.njit(cache=True)
def hadronic_tau_visible(pid, d1, d2, px, py, pz, offsets):
    """(event, px, py, pz) of the visible momentum of each hadronically decaying τ.

    Flat Pythia record (event-local daughter indices ``d1``, ``d2``; Pythia's convention:
    range d1..d2 when 0 < d1 <= d2, single d1 when d2 == 0, the pair when d1 > d2 > 0).
    τ: |pid| 15 without a τ daughter (last copy) and without an e/μ daughter.
    """
    n_ev = offsets.shape[0] - 1
    ev_out = []
    x_out = []
    y_out = []
    z_out = []
    for i in range(n_ev):
        lo, hi = offsets[i], offsets[i + 1]
        for k in range(lo, hi):
            if abs(pid[k]) != 15:
                continue
            a, b = d1[k], d2[k]
            if a <= 0:
                continue
            if b == 0:
                b = a
            pair = a > b
            vx, vy, vz = px[k], py[k], pz[k]
            hadronic = True
            n_d = 2 if pair else b - a + 1
            for m in range(n_d):
                d = (a if m == 0 else b) if pair else a + m
                if d >= hi - lo:
                    continue
                ad = abs(pid[lo + d])
                if ad == 15 or ad == 11 or ad == 13:
                    hadronic = False
                    break
                if ad == 12 or ad == 14 or ad == 16:
                    vx -= px[lo + d]
                    vy -= py[lo + d]
                    vz -= pz[lo + d]
            if hadronic:
                ev_out.append(i)
                x_out.append(vx)
                y_out.append(vy)
                z_out.append(vz)
    n = len(ev_out)
    ev = np.empty(n, np.int64)
    x = np.empty(n, np.float64)
    y = np.empty(n, np.float64)
    z = np.empty(n, np.float64)
    for j in range(n):
        ev[j] = ev_out[j]
        x[j] = x_out[j]
        y[j] = y_out[j]
        z[j] = z_out[j]
    return ev, x, y, z
