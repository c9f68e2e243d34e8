"""Large-R jet constituent kernels: pure numpy on flat arrays + offsets (docs/tutorials/representations.md).

``select_jets`` picks jets by the representation's cuts, ``constituent_features`` computes the
15 RS3L features of every constituent, ``pad_points`` packs the first ``P`` (highest-pT)
constituents of each jet into ``[J, P, F]`` + mask. Units: GeV, radians, mm.
"""

from __future__ import annotations

import numpy as np

#: RS3L constituent features (Harris et al., arXiv:2403.07066), in this order
CONSTITUENT_FEATURES = ("log_pt", "log_pt_rel", "log_e", "log_e_rel", "deta", "dphi", "dr", "tanh_d0", "tanh_dz",
                        "charge", "is_photon", "is_muon", "is_electron", "is_charged_hadron", "is_neutral_hadron")
#: jet-level features (GeV, rad)
JET_FEATURES = ("pt", "eta", "phi", "mass", "sd_mass", "n2")
#: ``kind`` codes of the record (readers/particleflow.py) behind the one-hot flags, in feature order
KIND_FLAGS = (2, 4, 3, 0, 1)  # photon, muon, electron, charged hadron, neutral hadron


def jet_energy(pt: np.ndarray, eta: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """E (GeV) of jets from pT, η and mass."""
    return np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2)


def select_jets(pt: np.ndarray, eta: np.ndarray, mass: np.ndarray, jet_offsets: np.ndarray, *, pt_min: float,
                abs_eta_max: float, mass_min: float, max_jets: int | None) -> np.ndarray:
    """Boolean [n_jets]: jets passing pT > pt_min, |η| < abs_eta_max, mass >= mass_min; with ``max_jets``
    only the first ``max_jets`` passing jets of each event (jets are pT-ordered within an event)."""
    keep = (pt > pt_min) & (np.abs(eta) < abs_eta_max) & (mass >= mass_min)
    if max_jets is None or keep.size == 0:
        return keep
    counts = np.diff(jet_offsets)
    event = np.repeat(np.arange(counts.size), counts)
    rank = np.cumsum(keep) - 1  # running count of passing jets
    first = np.concatenate([[0], np.cumsum(keep)])[jet_offsets[:-1]]  # passing jets before each event
    return keep & ((rank - first[event]) < max_jets)


def constituent_features(c: dict[str, np.ndarray], jet: dict[str, np.ndarray], jet_of: np.ndarray) -> np.ndarray:
    """[n, 15] float32 features (:data:`CONSTITUENT_FEATURES`) of constituents ``c`` (flat: pt, eta, phi,
    energy, charge, kind, d0, dz) of jets ``jet`` (pt, eta, phi, mass) with ``jet_of`` [n] their jet row."""
    jpt, jeta, jphi = jet["pt"][jet_of], jet["eta"][jet_of], jet["phi"][jet_of]
    je = jet_energy(jet["pt"], jet["eta"], jet["mass"])[jet_of]
    pt, e = np.maximum(c["pt"], 1e-6), np.maximum(c["energy"], 1e-6)  # a log needs a positive argument
    deta = c["eta"] - jeta
    dphi = (c["phi"] - jphi + np.pi) % (2 * np.pi) - np.pi
    cols = [np.log(pt), np.log(pt / jpt), np.log(e), np.log(e / je), deta, dphi, np.hypot(deta, dphi),
            np.tanh(c["d0"]), np.tanh(c["dz"]), c["charge"].astype(np.float64)]
    cols += [(c["kind"] == k).astype(np.float64) for k in KIND_FLAGS]
    return np.stack(cols, axis=1).astype(np.float32)


def pad_points(features: np.ndarray, pt: np.ndarray, offsets: np.ndarray, max_points: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """The ``max_points`` highest-pT rows of each jet (rows ``offsets[j]:offsets[j+1]`` of ``features``)
    as ``[J, P, F]`` float32 (zeros where padded) + mask ``[J, P]`` bool."""
    n_jets = offsets.size - 1
    counts = np.diff(offsets)
    jet_of = np.repeat(np.arange(n_jets), counts)
    order = np.lexsort((-pt, jet_of))  # by jet, then decreasing pT
    pos = np.arange(order.size) - offsets[:-1][jet_of]
    keep = pos < max_points
    points = np.zeros((n_jets, max_points, features.shape[1]), np.float32)
    mask = np.zeros((n_jets, max_points), bool)
    points[jet_of[keep], pos[keep]] = features[order[keep]]
    mask[jet_of[keep], pos[keep]] = True
    return points, mask


def match_jets(eta_a: np.ndarray, phi_a: np.ndarray, off_a: np.ndarray, eta_b: np.ndarray, phi_b: np.ndarray,
               off_b: np.ndarray, dr_max: float = 0.4) -> np.ndarray:
    """For each jet of ``a`` [Na] the index (into ``b``) of the nearest jet of ``b`` in the same event
    (offsets ``off_a`` / ``off_b`` [n+1], same events) in ΔR = sqrt(Δη² + Δφ²) (φ wrapped, radians)
    if ΔR < ``dr_max``, else -1. Two anti-kt R = 0.8 jets of ``a`` are > 0.8 apart, so for
    ``dr_max`` <= 0.4 no jet of ``b`` is the match of two jets of ``a``."""
    na, nb = np.diff(off_a), np.diff(off_b)
    ev_a = np.repeat(np.arange(na.size), na)
    m = nb[ev_a]  # candidates per jet of a
    a_idx = np.repeat(np.arange(ev_a.size), m)
    first = np.concatenate([[0], np.cumsum(m)])[:-1]
    b_idx = np.repeat(off_b[:-1][ev_a], m) + np.arange(int(m.sum())) - np.repeat(first, m)
    dphi = (phi_a[a_idx] - phi_b[b_idx] + np.pi) % (2 * np.pi) - np.pi
    dr = np.hypot(eta_a[a_idx] - eta_b[b_idx], dphi)
    out = np.full(ev_a.size, -1, np.int64)
    if dr.size:
        order = np.lexsort((dr, a_idx))
        lead = order[np.concatenate([[True], a_idx[order][1:] != a_idx[order][:-1]])]
        ok = dr[lead] < dr_max
        out[a_idx[lead[ok]]] = b_idx[lead[ok]]
    return out
