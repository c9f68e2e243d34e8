"""SPEC §2 object selection on flat arrays + offsets (Numba, pure functions).

Offsets are int64 ``[B+1]``: event ``i`` owns elements ``offsets[i]:offsets[i+1]``.
pT in GeV, angles in radians. Masks are bool arrays aligned with the flat inputs.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

TWO_PI = 2.0 * math.pi


@nb.njit(cache=True, inline="always")
def delta_phi(phi_i, phi_j):
    """phi_j - phi_i wrapped into [-pi, pi)."""
    d = (phi_j - phi_i + math.pi) % TWO_PI
    if d < 0.0:
        d += TWO_PI
    return d - math.pi


@nb.njit(cache=True, inline="always")
def delta_r2(eta_i, phi_i, eta_j, phi_j):
    """ΔR² = Δη² + Δφ² with Δφ wrapped into [-pi, pi)."""
    de = eta_j - eta_i
    dp = delta_phi(phi_i, phi_j)
    return de * de + dp * dp


@nb.njit(cache=True)
def object_mask(pt, eta, pt_min, pt_inclusive, abs_eta_max, crack_lo, crack_hi):
    """Kinematic selection of one object type: bool [n].

    Keeps pT > pt_min (>= when ``pt_inclusive``), |eta| <= abs_eta_max and not
    crack_lo < |eta| < crack_hi (pass crack_lo >= crack_hi for no crack). Compared in float32.
    """
    n = pt.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    # thresholds rounded to float32, the precision of the event record: |eta| stored as
    # float32(2.47) counts as exactly 2.47 (on the boundary, kept)
    p_min, e_max = np.float32(pt_min), np.float32(abs_eta_max)
    c_lo, c_hi = np.float32(crack_lo), np.float32(crack_hi)
    for k in range(n):
        a = np.float32(abs(eta[k]))
        p = np.float32(pt[k])
        ok_pt = p >= p_min if pt_inclusive else p > p_min
        in_crack = c_lo < a < c_hi
        out[k] = ok_pt and a <= e_max and not in_crack
    return out


@nb.njit(cache=True)
def overlap_mask(jet_eta, jet_phi, jet_offsets, other_eta, other_phi, other_keep, other_offsets, dr_max):
    """bool [n_jets]: False for jets within dR < dr_max of a kept ``other`` object of the same event."""
    out = np.ones(jet_eta.shape[0], dtype=np.bool_)
    dr2 = dr_max * dr_max
    for i in range(jet_offsets.shape[0] - 1):
        for j in range(jet_offsets[i], jet_offsets[i + 1]):
            for o in range(other_offsets[i], other_offsets[i + 1]):
                if other_keep[o] and delta_r2(jet_eta[j], jet_phi[j], other_eta[o], other_phi[o]) < dr2:
                    out[j] = False
                    break
    return out


@nb.njit(cache=True)
def jet_flavour(jet_eta, jet_phi, jet_offsets, truth_pid, truth_eta, truth_phi, truth_offsets, dr_max):
    """int8 [n_jets]: 5 if a truth b quark lies within dR < dr_max, else 4 for a c quark, else 0."""
    out = np.zeros(jet_eta.shape[0], dtype=np.int8)
    dr2 = dr_max * dr_max
    for i in range(jet_offsets.shape[0] - 1):
        for j in range(jet_offsets[i], jet_offsets[i + 1]):
            flav = 0
            for t in range(truth_offsets[i], truth_offsets[i + 1]):
                a = abs(truth_pid[t])
                if a > flav and (a == 5 or a == 4) and delta_r2(jet_eta[j], jet_phi[j], truth_eta[t],
                                                                truth_phi[t]) < dr2:
                    flav = a
            out[j] = flav
    return out
