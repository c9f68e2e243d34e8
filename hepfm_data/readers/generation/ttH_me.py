"""Leading-order |M|^2 of gg -> t t̄ φ and q q̄ -> t t̄ φ for a CP-mixed top Yukawa.

Numerical helicity amplitudes in numpy, vectorised over events: explicit
Dirac spinors, gamma matrices and gluon polarisation vectors; helicities and
colours summed, initial state averaged.

Conventions
-----------
* Metric (+,-,-,-); four-vectors are arrays [..., 4] = (E, px, py, pz) in GeV.
* Chiral (Weyl) representation: γ0 = [[0,1],[1,0]], γi = [[0,σi],[-σi,0]],
  γ5 = diag(-1,-1,1,1). Helicity spinors (HELAS):
  u(p,λ) = (√(E-λ|p|) χ_λ, √(E+λ|p|) χ_λ), v(p,λ) = (-λ√(E+λ|p|) χ_-λ, λ√(E-λ|p|) χ_-λ),
  so that Σ_λ u ū = p̸ + m and Σ_λ v v̄ = p̸ - m (checked in tests/test_ttH_me.py).
* Gluon polarisations: the two real transverse vectors ε1 = (0, cosθcosφ, cosθsinφ, -sinθ),
  ε2 = (0, -sinφ, cosφ, 0) of the gluon's direction; the sum over them equals the sum over
  helicities ± (a unitary change of basis).
* Feynman rules (Peskin-Schroeder signs): q-g vertex i g_s γ^μ T^a; three-gluon vertex
  g_s f^abc [g^μν(k1-k2)^ρ + g^νρ(k2-k3)^μ + g^ρμ(k3-k1)^ν] (momenta incoming); fermion
  propagator i(q̸+m)/(q²-m²); gluon propagator -i g_μν/q².
* Top Yukawa, Higgs Characterisation model (Artoisenet et al. arXiv:1306.6464, Demartin et
  al. arXiv:1407.5089) with g_Htt = g_Att = m_t/v:
  L = -ψ̄_t (m_t/v)(κ cos α + i κ̃ sin α γ5) ψ_t X0, vertex Y = -i (m_t/v)(a + b γ5),
  a = κ cos α, b = i κ̃ sin α. α = 0, κ = 1 is the SM; α = 90°, κ̃ = 1 the pure CP-odd state.

Every diagram has exactly one Yukawa vertex, so the amplitude is a·A_S + b·A_P with A_S
(Y → 1) and A_P (Y → γ5) computed once per event; |M_α|² = |a|² S + |b|² P + 2 Re(a b* I)
with the per-event colour/helicity sums S = Σ|A_S|², P = Σ|A_P|², I = Σ A_S A_P*
(:class:`YukawaParts`). Reweighting to any (α, κ, κ̃) is then three multiplications.
I vanishes (no absorptive phase at tree level), so mixed states are incoherent sums.

Diagrams (momenta: g(k1,a) g(k2,b) -> t(p3) t̄(p4) φ(p5); S(q) = (q̸+m)/(q²-m²))
-----------------------------------------------------------------------------------
gg, 8 diagrams, colour-decomposed M = g_s² g_Htt [(T^a T^b)_ij A1 + (T^b T^a)_ij A2]:
  A1 = ū3 [ Y S(p3+p5) ε̸1 S(k2-p4) ε̸2                 (φ on the outgoing top)
          + ε̸1 S(p3-k1) Y S(k2-p4) ε̸2                 (φ on the exchanged top)
          + ε̸1 S(p3-k1) ε̸2 S(-p4-p5) Y ] v4           (φ on the outgoing antitop)
       + K,
  A2 = (the same three with 1 <-> 2) - K,
  K  = ū3 [ Y S(p3+p5) J̸ + J̸ S(-p4-p5) Y ] v4 / s    (s-channel gluon, φ from t or t̄),
  J  = (ε1·ε2)(k1-k2) + 2(k2·ε1) ε2 - 2(k1·ε2) ε1,  s = (k1+k2)².
  Colour sum: Σ|M|² ∝ (16/3)(|A1|²+|A2|²) - (4/3) Re(A1 A2*); average 1/(4·64).
q q̄, 2 diagrams (q(k1) q̄(k2) -> t t̄ φ, s-channel gluon, φ from the top or the antitop):
  M ∝ [v̄2 γ_μ T^c u1] ū3 [ Y S(p3+p5) γ^μ + γ^μ S(-p4-p5) Y ] (T^c) v4 / s;
  colour sum Tr(T^c T^d) Tr(T^c T^d) = 2; average 1/(4·9).

Units: the returned sums omit g_s⁴ g_Htt² (multiply for an absolute |M|²; the
reweighting ratio is free of them, of the PDFs and of the scale choices).

External tops must be on shell (p² = m_t², the propagator mass) for gauge
invariance: :func:`on_shell` moves Pythia's Breit-Wigner-smeared tops onto the mass
shell in the partonic rest frame (directions kept, total four-momentum kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepfm_data.core.errors import GenerationError
from hepfm_data.readers.generation.helicity import (  # noqa: F401 (re-exported: the shared helpers)
    GAMMA,
    GAMMA5,
    ID4,
    METRIC,
    bar,
    boost,
    mdot,
    polarisations,
    propagator,
    slash,
    u_spinor,
    v_spinor,
)

#: colour sums for the gg amplitudes (N_c = 3): Σ Tr(TaTbTbTa), Σ Tr(TaTbTaTb)
C_DIAG, C_OFF = 16.0 / 3.0, -2.0 / 3.0
C_QQ = 2.0
AVG_GG, AVG_QQ = 1.0 / (4 * 64), 1.0 / (4 * 9)


def _sandwich(ubar, gam, v):
    """ū Γ v for [N, 4] x [N, 4, 4] x [N, 4] -> [N]."""
    return np.einsum("ni,nij,nj->n", ubar, gam, v)


def _yukawas():
    return {"S": ID4, "P": GAMMA5}


@dataclass(frozen=True)
class YukawaParts:
    """Per-event helicity- and colour-summed, initial-state-averaged pieces of |M|².

    ``S`` = Σ|A_S|², ``P`` = Σ|A_P|², ``I`` = Σ A_S A_P* (complex), each [N]; see the module doc.
    """

    S: np.ndarray
    P: np.ndarray
    I: np.ndarray  # noqa: E741 (the interference term, named as in the docs)

    def me2(self, alpha: float, kappa: float = 1.0, kappa_tilde: float = 1.0) -> np.ndarray:
        """|M|² [N] for the Yukawa κ cos α + i κ̃ γ5 sin α (α in radians), in units of g_s⁴ g_Htt²."""
        a, b = kappa * np.cos(alpha), 1j * kappa_tilde * np.sin(alpha)
        return abs(a) ** 2 * self.S + abs(b) ** 2 * self.P + 2 * np.real(a * np.conj(b) * self.I)

    def weight(self, alpha: float, kappa: float = 1.0, kappa_tilde: float = 1.0) -> np.ndarray:
        """w = |M_α|² / |M_SM|² [N] (SM: α = 0, κ = 1)."""
        return self.me2(alpha, kappa, kappa_tilde) / self.S


def _parts(amps_s: list, amps_p: list, colour) -> YukawaParts:
    s = sum(colour(a, a) for a in amps_s)
    p = sum(colour(a, a) for a in amps_p)
    i = sum(colour(a, b) for a, b in zip(amps_s, amps_p))
    return YukawaParts(np.real(s), np.real(p), i)


def gg_amplitudes(k1, k2, p3, p4, p5, mt, eps1, eps2, yukawa=ID4) -> list:
    """Colour-ordered amplitudes [(A1, A2) per top helicity pair (4)], each [N], for given gluon
    "polarisations" ``eps1``, ``eps2`` [N, 4] (any vectors: the gauge test passes ``eps1 = k1``)."""
    g1, g2 = _gg_gammas(k1, k2, p3, p4, p5, mt, eps1, eps2, yukawa)
    return [(_sandwich(ub, g1, v), _sandwich(ub, g2, v)) for ub, v in _top_spinors(p3, p4)]


def _gg_gammas(k1, k2, p3, p4, p5, mt, eps1, eps2, y, s_channel: float = 1.0):
    """The 4x4 chains Γ1, Γ2 [N, 4, 4] of the colour-ordered amplitudes A_i = ū3 Γ_i v4.

    ``s_channel`` scales the s-channel diagrams (1; other values only to show the gauge test fails)."""
    e1, e2 = slash(eps1), slash(eps2)
    s_a, s_d = propagator(p3 + p5, mt), propagator(-p4 - p5, mt)
    s_b, s_c = propagator(p3 - k1, mt), propagator(p3 - k2, mt)
    s_e, s_f = propagator(k2 - p4, mt), propagator(k1 - p4, mt)
    y = np.broadcast_to(y, e1.shape)
    g1 = y @ s_a @ e1 @ s_e @ e2 + e1 @ s_b @ y @ s_e @ e2 + e1 @ s_b @ e2 @ s_d @ y
    g2 = y @ s_a @ e2 @ s_f @ e1 + e2 @ s_c @ y @ s_f @ e1 + e2 @ s_c @ e1 @ s_d @ y
    j = (mdot(eps1, eps2)[:, None] * (k1 - k2) + 2 * mdot(k2, eps1)[:, None] * eps2
         - 2 * mdot(k1, eps2)[:, None] * eps1)
    s = mdot(k1 + k2, k1 + k2)[:, None, None]
    jj = slash(j)
    k = s_channel * (y @ s_a @ jj + jj @ s_d @ y) / s
    return g1 + k, g2 - k


def _gg_colour(a, b):
    (a1, a2), (b1, b2) = a, b
    return AVG_GG * (C_DIAG * (a1 * np.conj(b1) + a2 * np.conj(b2))
                     + C_OFF * (a1 * np.conj(b2) + a2 * np.conj(b1)))


def _qq_colour(a, b):
    return AVG_QQ * C_QQ * a * np.conj(b)


def _top_spinors(p3, p4):
    return [(bar(u_spinor(p3, l3)), v_spinor(p4, l4)) for l3 in (1, -1) for l4 in (1, -1)]


def gg_parts(k1, k2, p3, p4, p5, mt) -> YukawaParts:
    """:class:`YukawaParts` of g(k1) g(k2) -> t(p3) t̄(p4) φ(p5); momenta [N, 4] in GeV, on shell."""
    tops = _top_spinors(p3, p4)
    amps = {"S": [], "P": []}
    for eps1 in polarisations(k1):
        for eps2 in polarisations(k2):
            for name, y in _yukawas().items():
                g1, g2 = _gg_gammas(k1, k2, p3, p4, p5, mt, eps1, eps2, y)
                amps[name] += [(_sandwich(ub, g1, v), _sandwich(ub, g2, v)) for ub, v in tops]
    return _parts(amps["S"], amps["P"], _gg_colour)


def _qq_gamma(k1, k2, p3, p4, p5, mt, current, y):
    jj = slash(current)
    y = np.broadcast_to(y, jj.shape)
    s = mdot(k1 + k2, k1 + k2)[:, None, None]
    return (y @ propagator(p3 + p5, mt) @ jj + jj @ propagator(-p4 - p5, mt) @ y) / s


def quark_currents(k1, k2):
    """Currents L^μ = v̄(k2) γ^μ u(k1) [N, 4] (lower index applied by slash) for the 4 quark helicities."""
    out = []
    for l1 in (1, -1):
        for l2 in (1, -1):
            u, vb = u_spinor(k1, l1), bar(v_spinor(k2, l2))
            out.append(np.einsum("ni,mij,nj->nm", vb, GAMMA, u))
    return out


def qq_parts(k1, k2, p3, p4, p5, mt) -> YukawaParts:
    """:class:`YukawaParts` of q(k1) q̄(k2) -> t(p3) t̄(p4) φ(p5); momenta [N, 4] in GeV, on shell."""
    tops = _top_spinors(p3, p4)
    amps = {"S": [], "P": []}
    for cur in quark_currents(k1, k2):
        for name, y in _yukawas().items():
            gam = _qq_gamma(k1, k2, p3, p4, p5, mt, cur, y)
            amps[name] += [_sandwich(ub, gam, v) for ub, v in tops]
    return _parts(amps["S"], amps["P"], _qq_colour)


# ------------------------------------------------------------------ kinematics



def on_shell(p3, p4, p5, mt: float, iterations: int = 30):
    """Put t (p3) and t̄ (p4) on a common mass shell, keeping p3+p4+p5 and the CM-frame directions.

    Returns (p3, p4, p5, m) with m [N] = mt, except for events whose √ŝ is below 2 mt + m_φ
    (possible with Pythia's Breit-Wigner top masses, ~1e-4 of events): those get
    m = (1 - 1e-6)(√ŝ - m_φ)/2, the heaviest shell they reach (the matrix element is then
    evaluated with that mass in spinors and propagators alike, so it stays gauge invariant).
    In the final-state rest frame the three-momenta are scaled by a common λ solving
    Σ_i √(λ²|p_i|² + m_i²) = √ŝ (m_φ² = p5² kept), by Newton's method; [N, 4] each, GeV.
    """
    tot = p3 + p4 + p5
    beta = tot[:, 1:] / tot[:, :1]
    cms = [boost(p, -beta) for p in (p3, p4, p5)]
    rs = np.sqrt(mdot(tot, tot))
    mh = np.sqrt(np.clip(mdot(p5, p5), 0, None))
    m = np.minimum(float(mt), (1 - 1e-6) * (rs - mh) / 2)
    if np.any(m <= 0):
        raise GenerationError("on_shell: an event's final state has √ŝ below the Higgs mass")
    masses = [m, m, mh]
    p2 = [np.sum(c[:, 1:] ** 2, axis=1) for c in cms]
    lam = np.ones_like(rs)
    for _ in range(iterations):
        e = [np.sqrt(lam**2 * q + mi**2) for q, mi in zip(p2, masses)]
        df = sum(lam * q / ei for q, ei in zip(p2, e))
        step = np.divide(sum(e) - rs, df, out=np.zeros_like(df), where=df > 0)
        lam = np.clip(lam - step, 0.0, None)
    out = []
    for c, mi in zip(cms, masses):
        q = c[:, 1:] * lam[:, None]
        out.append(boost(np.concatenate([np.sqrt(np.sum(q**2, axis=1) + mi**2)[:, None], q], axis=1), beta))
    return (*out, m)


def ttH_parts(k1, k2, p3, p4, p5, channel, mt) -> YukawaParts:
    """:class:`YukawaParts` for a mix of events: ``channel`` [N] is 0 for gg, +1 for q(k1) q̄(k2).

    Momenta [N, 4] in GeV (k1, k2 massless along the beams; p3, p4 on shell at ``mt`` (scalar or [N]),
    see :func:`on_shell`).
    An event with a q̄ in k1 must be passed with k1 and k2 swapped (channel +1 always means k1 = q).
    """
    channel = np.asarray(channel)
    n = len(channel)
    mt = np.broadcast_to(np.asarray(mt, dtype=float), (n,))
    s, p, i = np.zeros(n), np.zeros(n), np.zeros(n, dtype=complex)
    for code, fn in ((0, gg_parts), (1, qq_parts)):
        sel = channel == code
        if sel.any():
            part = fn(k1[sel], k2[sel], p3[sel], p4[sel], p5[sel], mt[sel])
            s[sel], p[sel], i[sel] = part.S, part.P, part.I
    return YukawaParts(s, p, i)
