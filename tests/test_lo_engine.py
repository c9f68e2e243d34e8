"""The LO generator's tree-level engine (hepfm_data/readers/generation/lo): amplitudes checked against
independent results, gauge and Lorentz invariance of every generated process, bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

from hepfm_data.core.errors import GenerationError, UnknownNameError
from hepfm_data.readers.generation import helicity as hel
from hepfm_data.readers.generation import ttH_me
from hepfm_data.readers.generation.lo import model as sm
from hepfm_data.readers.generation.lo import phasespace as ps
from hepfm_data.readers.generation.lo.amplitude import Amplitude, Leg
from hepfm_data.readers.generation.lo.processes import PROCESSES, lo_process

GAUGE_TOL = 1e-10
LORENTZ_TOL = 1e-10


def _momenta(masses, n=4, seed=0, sqrt_s=13000.0):
    """[n, 2 + k, 4] physical momenta (incoming partons first) at random points of phase space."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0.2, 0.8, size=(n, ps.dimension(len(masses))))
    _, _, p, w = ps.generate(u, sqrt_s, masses)
    assert np.all(w > 0)
    return p


def _amp(initial, final, classes, orders, **kw):
    legs = [Leg(initial[0], True), Leg(initial[1], True)] + [Leg(f, False) for f in final]
    return Amplitude(legs, classes, orders, **kw)


def _subprocess_amplitudes():
    """(process name, Amplitude, masses) for every subprocess of every LO process."""
    params = sm.Parameters()
    out = []
    for name, proc in PROCESSES.items():
        for sub in proc.subprocesses:
            out.append((name, _amp(sub.initial, sub.final, proc.classes, sub.orders or proc.orders),
                        tuple(params.mass(f) for f in sub.final)))
    return out


def _two_to_two(n=5, seed=1, rs=100.0):
    rng = np.random.default_rng(seed)
    c, ph = rng.uniform(-0.9, 0.9, n), rng.uniform(0, 2 * np.pi, n)
    s = np.sqrt(1 - c * c)
    d = np.stack([s * np.cos(ph), s * np.sin(ph), c], 1)
    k1 = np.tile([rs / 2, 0, 0, rs / 2], (n, 1))
    k2 = np.tile([rs / 2, 0, 0, -rs / 2], (n, 1))
    p3 = np.concatenate([np.full((n, 1), rs / 2), rs / 2 * d], 1)
    p4 = k1 + k2 - p3
    mom = np.stack([k1, k2, p3, p4], 1)
    return mom, rs**2, hel.mdot(k1 - p3, k1 - p3), hel.mdot(k1 - p4, k1 - p4)


def test_engine_reproduces_ttH_me():
    """The recursion's gg -> tt̄H and qq̄ -> tt̄H |M|² equal the hand-written helicity amplitudes of ttH_me.py
    (eight and two diagrams, Yukawa -i m_t/v) to 1e-10: the Feynman rules, spinors, colour sums and the
    recursion agree with an independent implementation."""
    params = sm.Parameters()
    p = _momenta((params.mt, params.mt, params.mh), n=6, seed=3)
    k1, k2, p3, p4, p5 = (p[:, i] for i in range(5))
    y2 = (params.mt / params.vev) ** 2
    gg = _amp((21, 21), (6, -6, 25), ("qcd", "htt"), (2, 1)).me2(p)
    qq = _amp((2, -2), (6, -6, 25), ("qcd", "htt"), (2, 1)).me2(p)
    np.testing.assert_allclose(gg, ttH_me.gg_parts(k1, k2, p3, p4, p5, params.mt).S * y2 / ttH_me.AVG_GG, rtol=1e-10)
    np.testing.assert_allclose(qq, ttH_me.qq_parts(k1, k2, p3, p4, p5, params.mt).S * y2 / ttH_me.AVG_QQ, rtol=1e-10)


@pytest.mark.parametrize("initial,final,formula", [
    ((2, -2), (2, -2), lambda s, t, u: 4 / 9 * (s * s + u * u) / t**2 + 4 / 9 * (u * u + t * t) / s**2
     - 8 / 27 * u * u / (s * t)),
    ((2, 2), (2, 2), lambda s, t, u: 4 / 9 * (s * s + u * u) / t**2 + 4 / 9 * (s * s + t * t) / u**2
     - 8 / 27 * s * s / (u * t)),
    ((21, 21), (21, 21), lambda s, t, u: 9 / 2 * (3 - t * u / s**2 - s * u / t**2 - s * t / u**2)),
    ((21, 21), (2, -2), lambda s, t, u: 1 / 6 * (t * t + u * u) / (t * u) - 3 / 8 * (t * t + u * u) / s**2),
])
def test_two_to_two_textbook(initial, final, formula):
    """Massless 2 -> 2 QCD |M|² (spin/colour averaged, g_s = 1) equal the textbook formulas (e.g. ESW Table 7.1):
    u ū -> u ū and u u -> u u test the relative sign of graphs with exchanged identical fermions, gg -> gg the
    three- and four-gluon vertices and the exact colour sums."""
    mom, s, t, u = _two_to_two()
    avg = np.prod([2 * (8 if f == 21 else 3) for f in initial])
    got = _amp(initial, final, ("qcd",), (2, 0)).me2(mom) / avg
    np.testing.assert_allclose(got, formula(s, t, u), rtol=1e-10)


def test_w_vertex_single_top_s_channel():
    """u d̄ -> t b̄ through an s-channel W: Σ|M|² = 9 · (g⁴/4) · 16 (p_u·p_b̄)(p_d̄·p_t)/(s - m_W²)² (V-A)."""
    params = sm.Parameters()
    p = _momenta((params.mt, 0.0), n=5, seed=4)
    got = _amp((2, -1), (6, -5), ("w",), (0, 2)).me2(p)
    s = hel.mdot(p[:, 0] + p[:, 1], p[:, 0] + p[:, 1])
    want = 9 * params.g**4 / 4 * 16 * hel.mdot(p[:, 0], p[:, 3]) * hel.mdot(p[:, 1], p[:, 2]) / (s - params.mw**2) ** 2
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("name,amp,masses", _subprocess_amplitudes(),
                         ids=lambda x: x if isinstance(x, str) else "")
def test_lorentz_invariance(name, amp, masses):
    """Every subprocess's helicity- and colour-summed |M|² is unchanged (1e-10) when all momenta are rotated and
    boosted (β = 0.6 along a random axis)."""
    p = _momenta(masses, n=3, seed=7)
    ref = amp.me2(p)
    assert np.all(ref > 0) and np.all(np.isfinite(ref))
    rng = np.random.default_rng(11)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot = p.copy()
    rot[..., 1:] = p[..., 1:] @ q.T
    axis = rng.normal(size=3)
    beta = 0.6 * axis / np.linalg.norm(axis)
    flat = rot.reshape(-1, 4)
    boosted = hel.boost(flat, np.tile(beta, (len(flat), 1))).reshape(rot.shape)
    np.testing.assert_allclose(amp.me2(boosted), ref, rtol=LORENTZ_TOL)


def _gauge_cases():
    out = []
    for name, amp, masses in _subprocess_amplitudes():
        legs = [i for i, leg in enumerate(amp.legs) if leg.pdg in (21, 22)]
        if legs:
            out += [(name, amp, masses, i) for i in legs]
    return out


@pytest.mark.parametrize("name,amp,masses,leg", _gauge_cases(), ids=lambda x: x if isinstance(x, (str, int)) else "")
def test_ward_identity(name, amp, masses, leg):
    """Replacing an external gluon's or photon's polarisation by its momentum k/E makes the amplitude vanish
    (summed over every other helicity and colour, |A(ε -> k)| / |A(ε1)| < 1e-10): gauge invariance of
    every subprocess with a massless external boson (tt̄γγ, tt̄tt̄, tt̄tW, tt̄H)."""
    p = _momenta(masses, n=3, seed=5)
    k = p[:, leg]
    eps1, _ = hel.polarisations(k)
    ref = amp.me2(p, {leg: eps1})
    zero = amp.me2(p, {leg: k / k[:, :1]})
    assert np.all(ref > 0)
    assert np.max(np.sqrt(np.abs(zero) / ref)) < GAUGE_TOL


@pytest.mark.parametrize("name", ["ttW", "ttt"])
def test_gauge_parameter_independence(name):
    """Processes without an external massless boson (q q̄' -> tt̄W, q b -> t t t̄ q'): |M|² is independent (1e-10) of
    the gluon propagator's gauge parameter ξ (Feynman ξ = 1 against ξ = 0.3)."""
    proc = lo_process(name)
    params = sm.Parameters()
    for sub in proc.subprocesses:
        if 21 in sub.initial:
            continue
        masses = tuple(params.mass(f) for f in sub.final)
        p = _momenta(masses, n=3, seed=9)
        a = _amp(sub.initial, sub.final, proc.classes, sub.orders or proc.orders).me2(p)
        b = _amp(sub.initial, sub.final, proc.classes, sub.orders or proc.orders, xi=0.3).me2(p)
        np.testing.assert_allclose(b, a, rtol=1e-10)


def test_ward_check_can_fail():
    """The Ward check is not vacuous: a wrong three-gluon vertex (coupling doubled) breaks it for gg -> tt̄tt̄."""
    params = sm.Parameters()
    amp = _amp((21, 21), (6, -6, 6, -6), ("qcd",), (4, 0))
    p = _momenta((params.mt,) * 4, n=2, seed=5)
    k = p[:, 0]
    import dataclasses

    amp.vertices[:] = [dataclasses.replace(v, coupling=2 * v.coupling) if v.kind == "vvv" else v for v in amp.vertices]
    for s in amp.steps:
        if s.kind == "vvv":
            s.vertex = dataclasses.replace(s.vertex, coupling=2 * s.vertex.coupling)
    zero = amp.me2(p, {0: k / k[:, :1]})
    ref = amp.me2(p, {0: hel.polarisations(k)[0]})
    assert np.min(np.sqrt(np.abs(zero) / ref)) > 1e-3


def test_tHq_interference_is_destructive():
    """tHq's signature: the W-H and t-H graphs interfere destructively in the SM, so flipping the top Yukawa's sign
    (κ_t = -1) raises |M|² of u b -> d t H many times (by ~10 in the total rate)."""
    p = _momenta((0.0, 172.5, 125.0), n=50, seed=2)
    sm_ = _amp((2, 5), (1, 6, 25), ("w", "htt", "hvv"), (0, 3)).me2(p)
    flip = _amp((2, 5), (1, 6, 25), ("w", "htt", "hvv"), (0, 3), params=sm.Parameters(kappa_t=-1.0)).me2(p)
    assert flip.sum() / sm_.sum() > 4.0


def test_bad_input_is_named():
    """An unknown LO process, coupling class or particle, or an order no graph has, raises naming it."""
    with pytest.raises(UnknownNameError, match="'ttZZ'"):
        lo_process("ttZZ")
    with pytest.raises(GenerationError, match="gluino"):
        _amp((21, 21), (6, -6), ("qcd", "gluino"), (2, 0))
    with pytest.raises(GenerationError, match="1000021"):
        _amp((21, 21), (1000021, 1000021), ("qcd",), (2, 0))
    with pytest.raises(GenerationError, match=r"order \(1, 0\)"):
        _amp((21, 21), (6, -6), ("qcd",), (1, 0))


def test_colour_flows_decompose_the_amplitude():
    """The colour-flow amplitudes used to pick an event's LHE colours reconstruct the colour-summed |M|²:
    for gg -> tt̄ (two flows) and q q̄ -> tt̄tt̄ (several), Σ_h A_F G^flow_FG A_G* = me2 to 1e-10."""

    params = sm.Parameters()
    for initial, final, orders in (((21, 21), (6, -6), (2, 0)), ((2, -2), (6, -6, 6, -6), (4, 0))):
        amp = _amp(initial, final, ("qcd",), orders)
        p = _momenta(tuple(params.mass(f) for f in final), n=3, seed=6)
        strings, proj = amp.flow_basis()
        trip = [i for i, leg in enumerate(amp.legs) if sm.is_fermion(leg.field) and leg.field < 0]
        anti = [i for i, leg in enumerate(amp.legs) if sm.is_fermion(leg.field) and leg.field > 0]
        glu = [i for i, leg in enumerate(amp.legs) if leg.field == 21]
        tensors = np.stack([t.reshape(-1) for _, t in amp.basis.flows(trip, anti, glu)])
        gram = tensors @ tensors.conj().T
        amps = amp.amplitudes(p)
        a = np.stack([amps[k].reshape(len(p), -1) for k in amp.final_keys], axis=1)
        af = np.einsum("fc,nch->nfh", proj, a)
        got = np.real(np.einsum("nfh,fg,ngh->n", af, gram, np.conj(af)))
        np.testing.assert_allclose(got, amp.me2(p), rtol=1e-10)
        assert np.all(amp.flow_amplitudes(p, (strings, proj)) >= 0)


def test_phase_space_volume_and_channel_weights():
    """The two-body chain integrates to the exact phase-space volume (massless: Φ2 = 1/(8π), Φ3 = ŝ/(256 π³)), and
    the analytic chain weight of any channel order at any point equals the weight the generator gave it (the
    multichannel densities are consistent to 1e-10)."""
    rng = np.random.default_rng(4)
    for n, want in ((2, lambda s: 1 / (8 * np.pi)), (3, lambda s: s / (256 * np.pi**3))):
        u = rng.random((200_000, ps.dimension(n)))
        u[:, 0], u[:, 1] = 0.6, 0.5  # fixed ŝ, y = 0
        _, _, p, w = ps.generate(u, 13000.0, (0.0,) * n, tau_min=1e-4)
        s = hel.mdot(p[0, 0] + p[0, 1], p[0, 0] + p[0, 1])
        tmin = ps._tau_min(13000.0, (0.0,) * n, 1e-4)
        tau = s / 13000.0**2
        vol = w / (tau * np.log(1 / tmin) * (-np.log(tau)))
        assert abs(vol.mean() / want(s) - 1) < 4 * vol.std() / np.sqrt(len(vol)) / want(s) + 1e-12
    masses = (0.0, 172.5, 125.0)
    for order in ((0, 1, 2), (1, 0, 2), (2, 0, 1)):
        u = rng.random((50, ps.dimension(3)))
        tm = 80.4 if masses[order[0]] == 0 else None
        _, _, p, w = ps.generate(u, 13000.0, masses, tchannel_mass=tm, order=order)
        np.testing.assert_allclose(ps.chain_weight(p, 13000.0, masses, order, tchannel_mass=tm), w, rtol=1e-10)


@pytest.mark.parametrize("initial,final", [((2, 5), (1, 6, 25)), ((-1, 5), (-2, 6, 25)),
                                           ((-2, -5), (-1, -6, 25)), ((1, -5), (2, -6, 25))])
def test_tHq_gauge_invariance_unitary_equals_feynman(initial, final):
    """tHq's gauge check (it has no external gluon or photon): the unitary-gauge |M|² equals the Feynman-gauge one,
    where the W propagator loses its k^μ k^ν/m_W² term and the charged Goldstone graphs (G± t b, H W± G∓) appear,
    to 1e-10 for t and t̄, u- and d̄-initiated; flipping the H W G sign breaks the equality (the check can fail)."""
    import dataclasses

    p = _momenta((0.0, 172.5, 125.0), n=6, seed=8)
    unitary = _amp(initial, final, ("w", "htt", "hvv"), (0, 3)).me2(p)
    feyn = _amp(initial, final, ("w", "htt", "hvv", "goldstone"), (0, 3), gauge="feynman")
    np.testing.assert_allclose(feyn.me2(p), unitary, rtol=1e-10)
    for s in feyn.steps:
        if s.vertex.kind == "vss":
            s.vertex = dataclasses.replace(s.vertex, coupling=-s.vertex.coupling)
    assert np.min(np.abs(feyn.me2(p) / unitary - 1)) > 1e-3
