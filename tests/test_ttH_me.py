"""Numerical checks of the LO gg/qq̄ -> t t̄ φ helicity amplitudes (hepfm_data/readers/generation/ttH_me.py).

Pure numpy on random phase-space points (no generator): each test prints its figure.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

pytest.importorskip("vector")

from hepfm_data.readers.generation import ttH_me as me  # noqa: E402

MT, MH = 172.5, 125.0


def _iso(rng, n):
    c, f = rng.uniform(-1, 1, n), rng.uniform(0, 2 * np.pi, n)
    s = np.sqrt(1 - c * c)
    return np.stack([s * np.cos(f), s * np.sin(f), c], axis=1)


def phase_space(n: int, seed: int = 1, rs: float = 900.0, beta_z: float = 0.3):
    """Random t t̄ φ points at √ŝ = ``rs`` (GeV) from beams along z, boosted by ``beta_z``: k1, k2, p3, p4, p5."""
    rng = np.random.default_rng(seed)
    pmax = math.sqrt((rs**2 - (2 * MT + MH) ** 2) * (rs**2 - (2 * MT - MH) ** 2)) / (2 * rs)
    ph = rng.uniform(0.02, 0.98, n) * pmax
    p5 = np.concatenate([np.sqrt(ph**2 + MH**2)[:, None], ph[:, None] * _iso(rng, n)], axis=1)
    ptt = np.concatenate([(rs - p5[:, 0])[:, None], -p5[:, 1:]], axis=1)
    mtt = np.sqrt(me.mdot(ptt, ptt))
    q = np.sqrt(mtt**2 / 4 - MT**2)[:, None] * _iso(rng, n)
    beta = ptt[:, 1:] / ptt[:, :1]
    p3 = me.boost(np.concatenate([(mtt / 2)[:, None], q], axis=1), beta)
    p4 = me.boost(np.concatenate([(mtt / 2)[:, None], -q], axis=1), beta)
    k1 = np.tile([rs / 2, 0, 0, rs / 2], (n, 1))
    k2 = np.tile([rs / 2, 0, 0, -rs / 2], (n, 1))
    bz = np.tile([0.0, 0.0, beta_z], (n, 1))
    return [me.boost(p, bz) for p in (k1, k2, p3, p4, p5)]


def test_spinors_are_complete_and_solve_the_dirac_equation():
    """Σ_λ u ū = p̸ + m, Σ_λ v v̄ = p̸ - m, (p̸ - m) u = 0 and (p̸ + m) v = 0 for massive tops and
    massless quarks (incl. momenta along ±z): the spinor normalisation the amplitudes rely on."""
    k1, k2, p3, p4, _ = phase_space(50)
    worst = 0.0
    for p, m in ((p3, MT), (p4, MT), (k1, 0.0), (k2, 0.0)):
        ps = me.slash(p)
        su = sum(np.einsum("ni,nj->nij", me.u_spinor(p, lam), me.bar(me.u_spinor(p, lam))) for lam in (1, -1))
        sv = sum(np.einsum("ni,nj->nij", me.v_spinor(p, lam), me.bar(me.v_spinor(p, lam))) for lam in (1, -1))
        worst = max(worst, np.abs(su - ps - m * me.ID4).max(), np.abs(sv - ps + m * me.ID4).max())
        for lam in (1, -1):
            worst = max(worst, np.abs(np.einsum("nij,nj->ni", ps - m * me.ID4, me.u_spinor(p, lam))).max(),
                        np.abs(np.einsum("nij,nj->ni", ps + m * me.ID4, me.v_spinor(p, lam))).max())
    scale = p3[:, 0].max()
    print(f"spinor completeness / Dirac equation: max deviation {worst / scale:.2e} of E")
    assert worst / scale < 1e-12


def test_gauge_invariance_gluon_polarisation_replaced_by_momentum():
    """Ward identity: with ε(k1) -> k1 (the other gluon physical), both colour-ordered amplitudes vanish
    for every top helicity, for the scalar and the pseudoscalar Yukawa, relative to the amplitude scale
    of a physical polarisation; likewise ε(k2) -> k2. Fails if any of the 8 diagrams has a wrong sign,
    momentum or colour assignment."""
    k1, k2, p3, p4, p5 = phase_space(200, seed=2)
    worst = 0.0
    for y in (me.ID4, me.GAMMA5):
        for phys in me.polarisations(k2):
            ref = me.gg_amplitudes(k1, k2, p3, p4, p5, MT, me.polarisations(k1)[0], phys, y)
            gauge = me.gg_amplitudes(k1, k2, p3, p4, p5, MT, k1 / k1[:, :1], phys, y)
            scale = np.max([np.abs(a) for pair in ref for a in pair], axis=0)
            worst = max(worst, (np.max([np.abs(a) for pair in gauge for a in pair], axis=0) / scale).max())
        for phys in me.polarisations(k1):
            ref = me.gg_amplitudes(k1, k2, p3, p4, p5, MT, phys, me.polarisations(k2)[1], y)
            gauge = me.gg_amplitudes(k1, k2, p3, p4, p5, MT, phys, k2 / k2[:, :1], y)
            scale = np.max([np.abs(a) for pair in ref for a in pair], axis=0)
            worst = max(worst, (np.max([np.abs(a) for pair in gauge for a in pair], axis=0) / scale).max())
    print(f"gauge invariance: max |A(eps -> k)| / |A(eps)| = {worst:.2e} over 200 points")
    assert worst < 1e-10
    # the check has teeth: with the s-channel diagrams' sign flipped the identity fails at O(1)
    e2 = me.polarisations(k2)[0]
    g1, _ = me._gg_gammas(k1, k2, p3, p4, p5, MT, k1 / k1[:, :1], e2, me.ID4, s_channel=-1.0)
    r1, _ = me._gg_gammas(k1, k2, p3, p4, p5, MT, me.polarisations(k1)[0], e2, me.ID4)
    ub, v = me._top_spinors(p3, p4)[0]
    broken = np.abs(me._sandwich(ub, g1, v)) / np.abs(me._sandwich(ub, r1, v))
    print(f"  with a wrong s-channel sign: median ratio {np.median(broken):.2f}")
    assert np.median(broken) > 1e-2


def test_lorentz_invariance_and_bose_symmetry():
    """|M|² (S and P parts, gg and qq̄) is unchanged by a longitudinal boost and a rotation of all momenta,
    and gg is symmetric under exchanging the two gluons (relative deviation printed)."""
    k1, k2, p3, p4, p5 = phase_space(100, seed=3, beta_z=0.0)
    moved = phase_space(100, seed=3, beta_z=0.6)
    c, s = math.cos(0.7), math.sin(0.7)
    rot = np.array([[1, 0, 0, 0], [0, c, 0, s], [0, 0, 1, 0], [0, -s, 0, c]])
    rotated = [p @ rot.T for p in (k1, k2, p3, p4, p5)]
    worst = 0.0
    for fn in (me.gg_parts, me.qq_parts):
        ref = fn(k1, k2, p3, p4, p5, MT)
        for other in (moved, rotated):
            got = fn(*other, MT)
            worst = max(worst, np.abs(got.S / ref.S - 1).max(), np.abs(got.P / ref.P - 1).max())
    ref, swapped = me.gg_parts(k1, k2, p3, p4, p5, MT), me.gg_parts(k2, k1, p3, p4, p5, MT)
    bose = max(np.abs(swapped.S / ref.S - 1).max(), np.abs(swapped.P / ref.P - 1).max())
    print(f"Lorentz invariance: max rel. deviation {worst:.2e}; gluon exchange: {bose:.2e}")
    assert worst < 1e-9 and bose < 1e-10


def _gell_mann() -> np.ndarray:
    """The eight SU(3) generators T^a = λ^a / 2."""
    lam = np.zeros((8, 3, 3), dtype=complex)
    for i, (a, b) in enumerate([(0, 1), (0, 2), (1, 2)]):
        lam[2 * i, a, b] = lam[2 * i, b, a] = 1  # symmetric λ1, λ4, λ6
        lam[2 * i + 1, a, b], lam[2 * i + 1, b, a] = -1j, 1j  # antisymmetric λ2, λ5, λ7
    lam[6] = np.diag([1, -1, 0])
    lam[7] = np.diag([1, 1, -2]) / math.sqrt(3)
    return lam / 2


def test_colour_decomposition_equals_explicit_colour_sum():
    """The gg colour factors (16/3 diagonal, -2/3 off-diagonal) and the qq̄ factor 2 equal explicit sums
    over gluon and quark colours with Gell-Mann generators T = λ/2 (Tr T^a T^b = δ/2 checked)."""
    t = _gell_mann()
    assert np.allclose(np.einsum("aij,bji->ab", t, t), np.eye(8) / 2)
    rng = np.random.default_rng(4)
    a1, a2 = rng.normal(size=2) + 1j * rng.normal(size=2)
    tab = np.einsum("aik,bkj->abij", t, t)
    explicit = np.sum(np.abs(a1 * tab + a2 * np.swapaxes(tab, 0, 1)) ** 2)
    decomposed = me.C_DIAG * (abs(a1) ** 2 + abs(a2) ** 2) + 2 * me.C_OFF * np.real(a1 * np.conj(a2))
    qq = np.sum(np.abs(np.einsum("cji,ckl->ijkl", t, t)) ** 2)
    print(f"colour: explicit {explicit:.6f} vs decomposed {decomposed:.6f}; qq explicit {qq:.6f} vs {me.C_QQ}")
    assert abs(explicit / decomposed - 1) < 1e-12 and abs(qq - me.C_QQ) < 1e-12


def test_helicity_sum_equals_trace_formula():
    """Independent spin sum: Σ_{λ3 λ4} |ū3 Γ v4|² = Tr[(p̸3 + m) Γ (p̸4 - m) γ0 Γ† γ0] for the gg and qq̄
    chains Γ (fixed gluon polarisations / quark currents), scalar and pseudoscalar Yukawa."""
    k1, k2, p3, p4, p5 = phase_space(40, seed=5)
    g0 = me.GAMMA[0]
    worst = 0.0
    chains = []
    for y in (me.ID4, me.GAMMA5):
        for e1, e2 in itertools.product(me.polarisations(k1), me.polarisations(k2)):
            chains += list(me._gg_gammas(k1, k2, p3, p4, p5, MT, e1, e2, y))
        for cur in me.quark_currents(k1, k2):
            chains.append(me._qq_gamma(k1, k2, p3, p4, p5, MT, cur, y))
    for gam in chains:
        spins = sum(np.abs(me._sandwich(ub, gam, v)) ** 2 for ub, v in me._top_spinors(p3, p4))
        gbar = g0 @ np.conj(np.swapaxes(gam, 1, 2)) @ g0
        trace = np.real(np.einsum("nii->n", (me.slash(p3) + MT * me.ID4) @ gam @ (me.slash(p4) - MT * me.ID4) @ gbar))
        scale = np.abs(trace).max()
        if scale < 1e-300:  # same-helicity massless q q̄ currents vanish identically
            assert spins.max() < 1e-300
            continue
        worst = max(worst, (np.abs(spins - trace) / scale).max())
    print(f"helicity sum vs trace: max deviation / scale {worst:.2e} over {len(chains)} chains x 40 points")
    assert worst < 1e-9


def test_mixing_is_incoherent_and_cp_odd_is_suppressed_near_threshold():
    """Σ A_S A_P* vanishes after the helicity sum (tree level: no absorptive phase), so
    |M_α|² = κ² cos²α S + κ̃² sin²α P; and near threshold the pseudoscalar (P-wave) is suppressed
    relative to the scalar while far above threshold it is not."""
    near = phase_space(200, seed=6, rs=2 * MT + MH + 30.0)
    far = phase_space(200, seed=6, rs=3000.0)
    ratio = {}
    for name, pts in (("near", near), ("far", far)):
        for fn in (me.gg_parts, me.qq_parts):
            part = fn(*pts, MT)
            assert np.abs(part.I).max() < 1e-9 * part.S.max()
            alpha = 0.6
            assert np.allclose(part.me2(alpha, 1.3, 0.7), 1.3**2 * math.cos(alpha) ** 2 * part.S
                               + 0.7**2 * math.sin(alpha) ** 2 * part.P, rtol=1e-12)
        part = me.gg_parts(*pts, MT)
        ratio[name] = float(np.mean(part.P) / np.mean(part.S))
    print(f"gg P/S: {ratio['near']:.4f} at sqrt(s) = threshold + 30 GeV, {ratio['far']:.3f} at 3 TeV")
    assert ratio["near"] < 0.1 < ratio["far"]


def test_on_shell_projection_keeps_total_momentum():
    """Breit-Wigner-smeared tops moved on shell: masses = mt, Σp unchanged, Higgs mass unchanged; a point
    below threshold gets the heaviest shell it reaches."""
    k1, k2, p3, p4, p5 = phase_space(20, seed=7)
    rng = np.random.default_rng(8)
    off3, off4 = (p * (1 + rng.normal(0, 0.01, (20, 1))) for p in (p3, p4))
    q3, q4, q5, m = me.on_shell(off3, off4, p5, MT)
    tot_in, tot_out = off3 + off4 + p5, q3 + q4 + q5
    print(f"on_shell: |Δ(Σp)| max {np.abs(tot_in - tot_out).max():.2e} GeV, "
          f"|m_t - {MT}| max {np.abs(np.sqrt(me.mdot(q3, q3)) - MT).max():.2e} GeV")
    assert np.allclose(tot_in, tot_out, atol=1e-8) and np.allclose(m, MT)
    assert np.allclose(np.sqrt(me.mdot(q3, q3)), MT) and np.allclose(np.sqrt(me.mdot(q4, q4)), MT)
    assert np.allclose(me.mdot(q5, q5), me.mdot(p5, p5))
    low = [np.array([[170.1, 1.0, 0, 0]]), np.array([[170.1, -1.0, 0, 0]]), np.array([[125.0, 0, 0, 0]])]
    *_, mlow = me.on_shell(*low, MT)  # sqrt(s) = 465.2 GeV < 2 mt + mH
    print(f"  below threshold: shell {mlow[0]:.3f} GeV")
    assert 169.0 < mlow[0] < 170.1
