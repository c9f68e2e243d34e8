"""Helicity-amplitude building blocks shared by the LO matrix elements (numpy, vectorised over events).

Conventions (those documented in :mod:`.ttH_me`): metric (+,-,-,-); four-vectors [..., 4] = (E, px, py, pz)
in GeV; chiral (Weyl) representation γ0 = [[0,1],[1,0]], γi = [[0,σi],[-σi,0]], γ5 = diag(-1,-1,1,1);
HELAS helicity spinors u(p,λ), v(p,λ) with Σ u ū = p̸ + m, Σ v v̄ = p̸ - m; real transverse
polarisation vectors ε1, ε2 of a momentum's direction (and, for massive vectors, the longitudinal
ε_L = (|p|, E p̂)/m). Used by :mod:`.ttH_me` and the LO generator :mod:`.lo`.
"""

from __future__ import annotations

import numpy as np

METRIC = np.array([1.0, -1.0, -1.0, -1.0])
_I2 = np.eye(2, dtype=complex)
_Z2 = np.zeros((2, 2), dtype=complex)
_SIGMA = (np.array([[0, 1], [1, 0]], dtype=complex), np.array([[0, -1j], [1j, 0]]),
          np.array([[1, 0], [0, -1]], dtype=complex))
#: γ^μ, μ = 0..3, chiral representation, shape [4, 4, 4]
GAMMA = np.stack([np.block([[_Z2, _I2], [_I2, _Z2]])]
                 + [np.block([[_Z2, s], [-s, _Z2]]) for s in _SIGMA])
GAMMA5 = np.diag([-1.0, -1.0, 1.0, 1.0]).astype(complex)
ID4 = np.eye(4, dtype=complex)


def mdot(p, q):
    """Minkowski product of [..., 4] arrays."""
    return p[..., 0] * q[..., 0] - p[..., 1] * q[..., 1] - p[..., 2] * q[..., 2] - p[..., 3] * q[..., 3]


def slash(q):
    """q̸ = γ^μ q_μ: [..., 4] (real or complex) -> [..., 4, 4]."""
    return np.einsum("mij,...m->...ij", GAMMA, q * METRIC)


def propagator(q, m):
    """(q̸ + m)/(q² - m²): [N, 4], m scalar or [N] -> [N, 4, 4]."""
    m = np.broadcast_to(np.asarray(m, dtype=float), q.shape[:1])
    return (slash(q) + m[:, None, None] * ID4) / (mdot(q, q) - m * m)[:, None, None]


def _chi(p, lam: int):
    """Two-component helicity eigenstates χ_λ(p̂): [N, 4] -> [N, 2] complex."""
    pabs = np.sqrt(np.sum(p[:, 1:] ** 2, axis=1))
    cos = np.divide(p[:, 3], pabs, out=np.ones_like(pabs), where=pabs > 0)
    c, s = np.sqrt(np.clip((1 + cos) / 2, 0, 1)), np.sqrt(np.clip((1 - cos) / 2, 0, 1))
    pt = np.hypot(p[:, 1], p[:, 2])
    phase = np.where(pt > 0, (p[:, 1] + 1j * p[:, 2]) / np.where(pt > 0, pt, 1.0), 1.0)
    if lam > 0:
        return np.stack([c + 0j, phase * s], axis=1)
    return np.stack([-np.conj(phase) * s, c + 0j], axis=1)


def u_spinor(p, lam: int):
    """u(p, λ), λ = ±1: [N, 4] -> [N, 4] (mass from p², so massless quarks give m = 0)."""
    e, pabs = p[:, 0], np.sqrt(np.sum(p[:, 1:] ** 2, axis=1))
    chi = _chi(p, lam)
    lo, hi = np.sqrt(np.clip(e - lam * pabs, 0, None)), np.sqrt(np.clip(e + lam * pabs, 0, None))
    return np.concatenate([lo[:, None] * chi, hi[:, None] * chi], axis=1)


def v_spinor(p, lam: int):
    """v(p, λ), λ = ±1: [N, 4] -> [N, 4]."""
    e, pabs = p[:, 0], np.sqrt(np.sum(p[:, 1:] ** 2, axis=1))
    chi = _chi(p, -lam)
    lo, hi = np.sqrt(np.clip(e - lam * pabs, 0, None)), np.sqrt(np.clip(e + lam * pabs, 0, None))
    return np.concatenate([-lam * hi[:, None] * chi, lam * lo[:, None] * chi], axis=1)


def bar(spinor):
    """Dirac adjoint ψ̄ = ψ† γ0 as a row: [N, 4] -> [N, 4]."""
    return np.conj(spinor) @ GAMMA[0]


def polarisations(k):
    """The two real transverse polarisation vectors of massless momenta k: [N, 4] -> 2 x [N, 4]."""
    kabs = np.sqrt(np.sum(k[:, 1:] ** 2, axis=1))
    cos = k[:, 3] / kabs
    sin = np.sqrt(np.clip(1 - cos * cos, 0, 1))
    kt = np.hypot(k[:, 1], k[:, 2])
    cphi = np.where(kt > 0, k[:, 1] / np.where(kt > 0, kt, 1), 1.0)
    sphi = np.where(kt > 0, k[:, 2] / np.where(kt > 0, kt, 1), 0.0)
    zero = np.zeros_like(cos)
    e1 = np.stack([zero, cos * cphi, cos * sphi, -sin], axis=1)
    e2 = np.stack([zero, -sphi, cphi, zero], axis=1)
    return e1, e2


def longitudinal(k):
    """Longitudinal polarisation ε_L = (|p|, E p̂)/m of massive momenta k: [N, 4] -> [N, 4] (real)."""
    pabs = np.sqrt(np.sum(k[:, 1:] ** 2, axis=1))
    m = np.sqrt(np.clip(mdot(k, k), 1e-300, None))
    unit = k[:, 1:] / np.where(pabs > 0, pabs, 1.0)[:, None]
    unit[pabs == 0] = (0.0, 0.0, 1.0)
    return np.concatenate([(pabs / m)[:, None], (k[:, :1] / m[:, None]) * unit], axis=1)


def boost(p, beta):
    """Boost four-vectors p [N, 4] by velocity beta [N, 3] (vector's boost_beta3)."""
    import vector

    v = vector.array({"E": p[:, 0], "px": p[:, 1], "py": p[:, 2], "pz": p[:, 3]})
    b = vector.array({"x": beta[:, 0], "y": beta[:, 1], "z": beta[:, 2]})
    out = v.boost_beta3(b)
    return np.stack([np.asarray(out.E), np.asarray(out.px), np.asarray(out.py), np.asarray(out.pz)], axis=1)

