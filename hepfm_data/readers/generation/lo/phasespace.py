"""Phase space: a sequential two-body parametrisation of the unit hypercube, adapted by VEGAS.

Map (D = 2 + 3n - 4 random numbers per point for n final-state particles):

* (u1, u2) -> τ = τ_min (1/τ_min)^u1 (the 1/ŝ falloff of the luminosity flattened), rapidity
  y ∈ [ln √τ, -ln √τ] uniform; x1,2 = √τ e^(±y). Jacobian τ ln(1/τ_min) · ln(1/τ).
* the final state in the partonic rest frame as a chain of two-body splits P -> p1 + Q1,
  Q1 -> p2 + Q2, ...: intermediate invariant masses uniform in M², each split isotropic in its rest
  frame (cos θ, φ uniform); weight Π |q_k|/(4π M_k) Π (M²_max - M²_min)/(2π) (dΦ_n with the
  (2π)^4 δ⁴ Π d³p/((2π)³ 2E) normalisation). The order of the chain is the process's final-state
  order: the first particle is split off first (for tHq the light quark: its t-channel forward peak is then
  one variable, cos θ_1).
* :class:`Vegas` (Lepage's adaptive grid, 1978) reshapes each of the D variables independently toward
  |f|: the importance sampling of the s- and t-channel structures (the ŝ threshold, the forward
  quark's cos θ, the photons' soft and collinear regions) happens here.
* Multichannel: a process may list several chain orders (its ``channels``). Each is a channel with its own
  VEGAS grid; a point of channel i carries f / Σ_j (1/W_j), W_j the weight chain j would give the same
  momenta (:func:`chain_weight`, analytic from the invariants), so the channels add up to the integral of f
  and each is importance-sampled where its chain's density is high (tHq: the light quark first, with the
  t-channel mapping, the top first, the Higgs first).

Momenta are returned in the laboratory frame (the partonic frame boosted along z by y).
"""

from __future__ import annotations

import math

import numpy as np

from hepfm_data.core.errors import GenerationError


def _kallen_q(m, ma, mb):
    """Two-body momentum |q| of M -> ma mb [N]."""
    arg = (m * m - (ma + mb) ** 2) * (m * m - (ma - mb) ** 2)
    return np.sqrt(np.clip(arg, 0.0, None)) / (2.0 * m)


def _boost_z(p, y):
    """Boost [N, k, 4] along z by rapidity y [N]."""
    ch, sh = np.cosh(y)[:, None], np.sinh(y)[:, None]
    out = p.copy()
    out[..., 0] = ch * p[..., 0] + sh * p[..., 3]
    out[..., 3] = sh * p[..., 0] + ch * p[..., 3]
    return out


def _boost(p, q):
    """Boost p [N, 4] from the rest frame of q [N, 4] to the frame where q has its momentum."""
    m = np.sqrt(np.clip(q[:, 0] ** 2 - np.sum(q[:, 1:] ** 2, axis=1), 1e-300, None))
    b = q[:, 1:] / m[:, None]
    g = q[:, 0] / m
    bp = np.sum(b * p[:, 1:], axis=1)
    e = g * p[:, 0] + bp
    k = (bp / (g + 1.0) + p[:, 0])
    return np.concatenate([e[:, None], p[:, 1:] + k[:, None] * b], axis=1)


def dimension(n_final: int) -> int:
    """Random numbers per point for ``n_final`` final-state particles."""
    return 2 + 3 * n_final - 4


def _tchannel_cos(v: np.ndarray, a: np.ndarray):
    """cos θ ∈ [-1, 1] from v ∈ [0, 1] with density g = [1/(a - c) + 1/(a + c)] / (2 ln((a+1)/(a-1))) (forward and
    backward t-channel peaks, a > 1) -> (cos θ, (1/2)/g: the weight relative to uniform cos θ)."""
    lg = np.log((a + 1.0) / (a - 1.0))
    fwd = v < 0.5
    w = np.where(fwd, 2.0 * v, 2.0 * v - 1.0)
    c = a - (a + 1.0) * np.exp(-w * lg)          # density ∝ 1/(a - c) on [-1, 1]
    c = np.clip(np.where(fwd, c, -c), -1.0, 1.0)
    g = (1.0 / (a - c) + 1.0 / (a + c)) / (2.0 * lg)
    return c, 0.5 / g


def _tchannel_weight(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """(1/2)/g(c) of :func:`_tchannel_cos` at cos θ = c."""
    lg = np.log((a + 1.0) / (a - 1.0))
    return 0.5 / ((1.0 / (a - c) + 1.0 / (a + c)) / (2.0 * lg))


def _tau_min(sqrt_s: float, masses, tau_min: float | None) -> float:
    out = max(tau_min or 0.0, (float(sum(masses)) * 1.000001) ** 2 / sqrt_s**2)
    if out <= 0.0:
        raise GenerationError("phase space: a massless final state needs tau_min > 0 (a lower bound on ŝ/s)")
    return out


def generate(u: np.ndarray, sqrt_s: float, masses: tuple[float, ...], tau_min: float | None = None,
             tchannel_mass: float | None = None, order: tuple[int, ...] | None = None):
    """Points u [N, D] of the unit hypercube -> (x1 [N], x2 [N], momenta [N, 2 + n, 4] lab frame GeV (the two
    incoming partons along +z, -z first), weight [N] = Jacobian × dΦ_n in GeV^(2n-4); 0 outside phase space).

    ``tchannel_mass``: sample the first particle's polar angle with the t-channel mapping of a propagator
    1/(t - M²), M = ``tchannel_mass`` (peaks along both beams; a = 1 + 2M²/ŝ). ``order``: the chain splits off
    the final-state particles in this order (a multichannel channel); momenta come back in the order of
    ``masses`` whatever the chain's."""
    u = np.asarray(u, dtype=float)
    nev, n = len(u), len(masses)
    order = tuple(range(n)) if order is None else tuple(order)
    if sorted(order) != list(range(n)):
        raise GenerationError(f"phase-space channel {order} is not a permutation of the {n} final-state particles")
    slot = order
    masses = tuple(masses[i] for i in order)
    if n < 2:
        raise GenerationError("phase space needs at least two final-state particles")
    if u.shape[1] != dimension(n):
        raise GenerationError(f"phase space of {n} particles needs {dimension(n)} random numbers, got {u.shape[1]}")
    s = sqrt_s**2
    tmin = _tau_min(sqrt_s, masses, tau_min)
    tau = tmin * (1.0 / tmin) ** u[:, 0]
    ymax = -0.5 * np.log(tau)
    y = ymax * (2.0 * u[:, 1] - 1.0)
    x1, x2 = np.sqrt(tau) * np.exp(y), np.sqrt(tau) * np.exp(-y)
    weight = tau * math.log(1.0 / tmin) * (2.0 * ymax)
    rs = np.sqrt(tau * s)
    p = np.zeros((nev, 2 + n, 4))
    p[:, 0] = np.stack([rs / 2, np.zeros(nev), np.zeros(nev), rs / 2], axis=1)
    p[:, 1] = np.stack([rs / 2, np.zeros(nev), np.zeros(nev), -rs / 2], axis=1)
    parent = np.zeros((nev, 4))
    parent[:, 0] = rs
    m_parent = rs
    col = 2
    for k in range(n - 1):
        ma = masses[k]
        rest_min = float(sum(masses[k + 1:]))
        if k < n - 2:
            lo, hi = rest_min**2, np.clip(m_parent - ma, rest_min, None) ** 2
            m2 = lo + (hi - lo) * u[:, col]
            col += 1
            weight = weight * (hi - lo) / (2.0 * math.pi)
            m_rest = np.sqrt(m2)
        else:
            m_rest = np.full(nev, masses[k + 1])
        q = _kallen_q(m_parent, ma, m_rest)
        if k == 0 and tchannel_mass:
            cos, wt = _tchannel_cos(u[:, col], 1.0 + 2.0 * tchannel_mass**2 / (rs * rs))
            weight = weight * wt
        else:
            cos = 2.0 * u[:, col] - 1.0
        phi = 2.0 * math.pi * u[:, col + 1]
        col += 2
        sin = np.sqrt(np.clip(1.0 - cos * cos, 0.0, None))
        d = np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], axis=1)
        pa = np.concatenate([np.sqrt(q * q + ma * ma)[:, None], q[:, None] * d], axis=1)
        pb = np.concatenate([np.sqrt(q * q + m_rest**2)[:, None], -q[:, None] * d], axis=1)
        pa, pb = _boost(pa, parent), _boost(pb, parent)
        weight = weight * q / (4.0 * math.pi * m_parent)
        p[:, 2 + slot[k]] = pa
        parent, m_parent = pb, m_rest
    p[:, 2 + slot[n - 1]] = parent
    weight = np.where(np.isfinite(weight) & (weight > 0), weight, 0.0)
    return x1, x2, _boost_z(p, y), weight


def chain_weight(p: np.ndarray, sqrt_s: float, masses: tuple[float, ...], order: tuple[int, ...],
                 tau_min: float | None = None, tchannel_mass: float | None = None) -> np.ndarray:
    """The weight [N] :func:`generate` gives with chain ``order`` to the point whose lab momenta are p [N, 2 + n, 4]
    (any channel's point): 1/weight is the a-priori density of channel ``order`` there, computed from the
    invariants (ŝ, rapidity, the chain's sub-system masses) and, with ``tchannel_mass``, the first particle's
    angle in the partonic frame. Multichannel: channel i's points carry f · W_i / Σ_j (W_i / W_j)."""
    n = len(masses)
    x1 = (p[:, 0, 0] + p[:, 0, 3]) / sqrt_s
    x2 = (p[:, 1, 0] - p[:, 1, 3]) / sqrt_s
    tau = x1 * x2
    tmin = _tau_min(sqrt_s, masses, tau_min)
    weight = tau * math.log(1.0 / tmin) * (-np.log(tau))
    rs = np.sqrt(tau) * sqrt_s
    fin = p[:, 2:]
    m_parent = rs
    for k in range(n - 1):
        a = order[k]
        rest = list(order[k + 1:])
        ma = masses[a]
        if k < n - 2:
            q_rest = fin[:, rest].sum(axis=1)
            m_rest = np.sqrt(np.clip(q_rest[:, 0] ** 2 - np.sum(q_rest[:, 1:] ** 2, axis=1), 0.0, None))
            lo = float(sum(masses[i] for i in rest)) ** 2
            hi = np.clip(m_parent - ma, math.sqrt(lo), None) ** 2
            weight = weight * (hi - lo) / (2.0 * math.pi)
        else:
            m_rest = np.full(len(p), masses[rest[0]])
        q = _kallen_q(m_parent, ma, m_rest)
        weight = weight * q / (4.0 * math.pi * m_parent)
        if k == 0 and tchannel_mass:
            y = 0.5 * np.log(x1 / x2)
            pa = _boost_z(fin[:, a:a + 1], -y)[:, 0]
            cos = pa[:, 3] / np.sqrt(np.sum(pa[:, 1:] ** 2, axis=1))
            weight = weight * _tchannel_weight(np.clip(cos, -1.0, 1.0), 1.0 + 2.0 * tchannel_mass**2 / (rs * rs))
        m_parent = m_rest
    return weight


class Vegas:
    """Lepage's VEGAS grid on [0, 1]^D: ``bins`` adaptive bins per dimension (seeded sampling, exact refits)."""

    def __init__(self, dim: int, bins: int = 64, alpha: float = 1.5):
        self.dim, self.bins, self.alpha = dim, bins, alpha
        self.edges = np.tile(np.linspace(0.0, 1.0, bins + 1), (dim, 1))

    def sample(self, n: int, rng: np.random.Generator):
        """(x [n, D], jacobian [n], bin index [n, D]) for n points."""
        y = rng.random((n, self.dim)) * self.bins
        idx = np.minimum(y.astype(np.int64), self.bins - 1)
        frac = y - idx
        dims = np.arange(self.dim)[None, :]
        lo = self.edges[dims, idx]
        width = self.edges[dims, idx + 1] - lo
        return lo + frac * width, np.prod(width * self.bins, axis=1), idx

    def adapt(self, idx: np.ndarray, f: np.ndarray) -> None:
        """Refit the grid to the weights f [n] (integrand × Jacobian) of the points in bins idx [n, D]."""
        f2 = f * f
        if not np.any(f2 > 0):
            return
        for d in range(self.dim):
            acc = np.bincount(idx[:, d], weights=f2, minlength=self.bins)
            acc = np.convolve(np.pad(acc, 1, mode="edge"), np.ones(3) / 3.0, mode="valid")
            tot = acc.sum()
            if tot <= 0:
                continue
            r = np.clip(acc / tot, 1e-30, 1.0)
            w = np.where(r < 1.0, ((1.0 - r) / -np.log(r)) ** self.alpha, 1.0)
            w = np.where(acc > 0, w, 1e-12)
            cum = np.concatenate([[0.0], np.cumsum(w)])
            targets = np.linspace(0.0, cum[-1], self.bins + 1)
            new = np.interp(targets, cum, self.edges[d])
            new[0], new[-1] = 0.0, 1.0
            self.edges[d] = np.maximum.accumulate(new)
