"""CP-mixed tt̄H by LO matrix-element reweighting of Pythia SM tt̄H (readers/ttH_reweight.py, readers/lhe.py).

Real Pythia 8 hard processes at 13 TeV, written to and read back from LHE; each test prints its figure.
"""

from __future__ import annotations

import dataclasses
import math

import awkward as ak
import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("vector")

from hepfm_data import load_catalog  # noqa: E402
from hepfm_data.core.catalog import CPMixing, parse_catalog  # noqa: E402
from hepfm_data.core.errors import CatalogError, GenerationError, InputFileError  # noqa: E402
from hepfm_data.readers import generation as gen  # noqa: E402
from hepfm_data.readers import lhe  # noqa: E402
from hepfm_data.readers.generation import pythia as py  # noqa: E402
from hepfm_data.readers.generation import ttH_reweight  # noqa: E402

CAT = load_catalog()
N_HARD = 4000


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    """N_HARD SM tt̄H hard processes (seed 11) as LHE, the first events' process records, and the top mass."""
    path = tmp_path_factory.mktemp("hard") / "sm.lhe"
    proc = CAT.process("ttH_cp_even")
    pythia = py.make_pythia(py.process_settings(proc, 11) + list(ttH_reweight.HARD_ONLY))
    records = []
    with lhe.HardProcessWriter(pythia, path) as out:
        while out.n_written < N_HARD:
            if pythia.next():
                out.write()
                if len(records) < 5:
                    ev = pythia.process
                    records.append([(ev[i].id(), ev[i].px(), ev[i].py(), ev[i].pz(), ev[i].e())
                                    for i in range(3, ev.size())])
    return path, records, float(pythia.particleData.m0(6))


def test_lhe_round_trip_keeps_the_process_record(hard, tmp_path):
    """HardProcessWriter + read_events: every event comes back with Pythia's ids and momenta (to 1e-7);
    select_events keeps exactly the chosen events, replaces XWGTUP, and a truncated file is refused."""
    path, records, _ = hard
    events = lhe.read_events(path)
    assert len(events) == N_HARD
    worst = 0.0
    for rec, got in zip(records, events[: len(records)].particles):
        assert [r[0] for r in rec] == ak.to_list(got.pid)
        mom = np.array([r[1:] for r in rec])
        back = np.stack([ak.to_numpy(got[c]) for c in ("px", "py", "pz", "e")], axis=1)
        worst = max(worst, np.abs(back - mom).max() / np.abs(mom).max())
    print(f"LHE round trip: max relative momentum deviation {worst:.1e}")
    assert worst < 1e-7  # LHEF3FromPythia8 writes momenta with ~8 significant digits
    keep = np.zeros(N_HARD, bool)
    keep[[3, 17, 400]] = True
    n = lhe.select_events([path], tmp_path / "sel.lhe", keep, np.array([0.5, 2.0, 7.25]))
    sel = lhe.read_events(tmp_path / "sel.lhe")
    assert n == 3 and ak.to_list(sel.weight) == [0.5, 2.0, 7.25]
    assert ak.to_list(sel.particles.px) == ak.to_list(events.particles.px[keep])
    (tmp_path / "cut.lhe").write_text(path.read_text()[:200_000])
    with pytest.raises(InputFileError, match="truncated"):
        lhe.read_events(tmp_path / "cut.lhe")


def test_cp_even_reweighting_of_sm_events_gives_unit_weight(hard):
    """α = 0, κ = 1 (and the catalog's ttH_cp_even setting) reweights Pythia's SM events by exactly 1:
    the CP-mixed matrix element at α = 0 is the SM one, at every event's kinematics."""
    path, _, mt = hard
    events = lhe.read_events(path)
    w_sm = ttH_reweight.cp_weights(events, CPMixing(alpha_deg=0.0), mt)
    w_cat = ttH_reweight.cp_weights(events, CAT.process("ttH_cp_even").cp_mixing, mt)
    dev = max(np.abs(w_sm - 1).max(), np.abs(w_cat - 1).max())
    print(f"CP-even reweighting of {N_HARD} SM events: max |w - 1| = {dev:.1e}")
    assert dev < 1e-12


def test_cross_section_ratio_cp_odd_to_sm_at_13_tev(hard):
    """σ(CP-odd)/σ(SM) = mean weight over SM events, κ = κ̃ = 1, 13 TeV: the Higgs Characterisation
    value (Demartin et al. arXiv:1407.5089, g_Att = g_Htt = m_t/v: the pure pseudoscalar tt̄X0 rate is
    ~0.4 of the SM one at 13 TeV) within 0.33-0.48 (PDF set, m_t and statistics); the gg channel's ratio
    exceeds the qq̄ one (the qq̄ initial state sits closer to threshold, where the P-wave 0⁻ is suppressed)."""
    path, _, mt = hard
    events = lhe.read_events(path)
    parts = ttH_reweight.yukawa_parts(events, mt)
    w = parts.weight(math.pi / 2, 1.0, 1.0)
    ratio, err = w.mean(), w.std() / math.sqrt(len(w))
    *_, channel = ttH_reweight.hard_momenta(events)
    gg, qq = w[channel == 0].mean(), w[channel == 1].mean()
    print(f"sigma(CP-odd)/sigma(SM) at 13 TeV = {ratio:.3f} +- {err:.3f} (gg {gg:.3f}, qq {qq:.3f}; "
          f"w_max {w.max():.1f}, {N_HARD} SM events); reference ~0.4 (arXiv:1407.5089)")
    assert 0.33 < ratio < 0.48
    assert gg > qq
    # any α: the rate interpolates as cos²α + sin²α·ratio (no interference term)
    w45 = parts.weight(math.pi / 4).mean()
    assert abs(w45 - 0.5 * (1 + ratio)) < 1e-6


def _dphi(p3, p4):
    d = np.arctan2(p3[:, 2], p3[:, 1]) - np.arctan2(p4[:, 2], p4[:, 1])
    return np.abs((d + np.pi) % (2 * np.pi) - np.pi)


def test_cp_odd_higgs_pt_is_harder_and_tops_less_back_to_back(hard):
    """Reweighted to CP-odd, SM events have a harder Higgs pT (mean and fraction above 200 GeV) and a
    smaller Δφ(t, t̄) (tops recoil together against the harder Higgs), each by > 5 standard errors:
    the known direction (Demartin et al. 2014, Figs. of tt̄X0 0⁺ vs 0⁻)."""
    path, _, mt = hard
    events = lhe.read_events(path)
    w = ttH_reweight.cp_weights(events, CAT.process("ttH_cp_odd").cp_mixing, mt)
    _, _, p3, p4, p5, _ = ttH_reweight.hard_momenta(events)
    pt, dphi = np.hypot(p5[:, 1], p5[:, 2]), _dphi(p3, p4)
    out = {}
    for name, x in (("Higgs pT", pt), ("dphi(t,tbar)", dphi), ("pT>200 fraction", (pt > 200).astype(float))):
        sm, odd = x.mean(), np.sum(w * x) / np.sum(w)
        err = math.hypot(x.std() / math.sqrt(len(x)), math.sqrt(np.sum(w**2 * (x - odd) ** 2)) / np.sum(w))
        out[name] = (sm, odd, (odd - sm) / err)
        print(f"{name}: SM {sm:.3f}, CP-odd {odd:.3f} ({(odd - sm) / err:+.1f} sigma)")
    assert out["Higgs pT"][2] > 5 and out["pT>200 fraction"][2] > 5
    assert out["dphi(t,tbar)"][2] < -5


def test_partial_unweighting_keeps_the_cp_odd_shifts_and_keeps_more_events(hard):
    """Partial unweighting (the catalog's max_overweight: the cap is the weight 1% of the SM hard events
    exceed; those kept carry w/cap as their event weight) of the same SM hard events gives weighted
    Higgs-pT, pT > 200 GeV fraction and Δφ(t, t̄) means within 3 standard errors of the exact
    reweighting of all events and of today's exact unweighting (cap = w_max), while keeping more than
    2.5x the events; the cap stays put as the sample grows while w_max grows (the cost of exact
    unweighting grows with the sample)."""
    path, _, mt = hard
    events = lhe.read_events(path)
    over = CAT.process("ttH_cp_odd").cp_mixing.max_overweight
    w = ttH_reweight.cp_weights(events, CAT.process("ttH_cp_odd").cp_mixing, mt)
    u = ttH_reweight.unweight_rng(5).random(len(w))
    _, _, p3, p4, p5, _ = ttH_reweight.hard_momenta(events)
    pt = np.hypot(p5[:, 1], p5[:, 2])
    exact, cap = u * w.max() < w, ttH_reweight.unweighting_cap(w, over)
    partial = u * cap < w
    kw = np.maximum(w[partial] / cap, 1.0)
    print(f"{len(w)} SM events: exact unweighting keeps {exact.sum()} (w_max {w.max():.2f}), partial "
          f"{partial.sum()} (cap {cap:.2f}, {int(np.sum(kw > 1))} weighted, max weight {kw.max():.2f})")
    assert partial.sum() > 2.5 * exact.sum()
    for name, x in (("Higgs pT", pt), ("pT>200 fraction", (pt > 200).astype(float)), ("dphi(t,tbar)", _dphi(p3, p4))):
        truth = np.sum(w * x) / np.sum(w)
        xp = x[partial]
        mp = np.sum(kw * xp) / np.sum(kw)
        ep = math.sqrt(np.sum(kw**2 * (xp - mp) ** 2)) / np.sum(kw)
        xe = x[exact]
        me, ee = xe.mean(), xe.std() / math.sqrt(len(xe))
        print(f"{name}: reweighted {truth:.3f}, partial {mp:.3f} +- {ep:.3f}, exact unweighting {me:.3f} +- {ee:.3f}")
        assert abs(mp - truth) < 3 * ep and abs(mp - me) < 3 * math.hypot(ep, ee)
    caps = [ttH_reweight.unweighting_cap(w[:n], over) for n in (500, 1000, 2000, 4000)]
    maxima = [w[:n].max() for n in (500, 1000, 2000, 4000)]
    print(f"cap at 500/1000/2000/4000 events: {np.round(caps, 2)}; w_max: {np.round(maxima, 2)}")
    assert max(caps) / min(caps) < 1.5 and maxima[-1] > maxima[0]


def test_generated_cp_odd_sample_is_reweighted_showered_and_reproducible():
    """generate('ttH_cp_odd') runs the whole chain: SM hard processes, reweighting, unweighting, LHE,
    shower + hadronisation + H -> γγ + emulation. The truth Higgs is the SM-like PDG 25 decaying to two
    photons (diphoton mass 125 GeV), the provenance records α, κ, κ̃, w_max and the acceptance, and the
    same seed gives the same bytes."""
    ev, info = gen.generate("ttH_cp_odd", 20, 31)
    cp = info.generator["cp_reweighting"]
    print(f"ttH_cp_odd block: n_hard {cp['n_hard']}, w_max {cp['w_max']:.2f}, cap {cp['w_cap']:.2f}, acceptance "
          f"{cp['acceptance']:.4f}, mean weight {cp['mean_weight']:.3f}, {cp['n_overweight']} events weighted")
    assert len(ev) == 20 and info.source == "pythia8+me-reweighting"
    assert (cp["alpha_deg"], cp["kappa"], cp["kappa_tilde"]) == (90.0, 1.0, 1.0)
    assert cp["n_selected"] == 20 and cp["n_shower_failed"] == 0
    assert cp["max_overweight"] == 0.01 and 0 < cp["w_cap"] <= cp["w_max"]
    weights = ak.to_numpy(ev.weight)  # partial unweighting: residual weights w/cap >= 1 of the events above the cap
    assert np.all(weights >= 1.0) and np.all(weights <= cp["w_max"] / cp["w_cap"] * (1 + 1e-6))
    assert int(np.sum(weights > 1.0)) == cp["n_overweight"]
    assert cp["hard_settings"][-1] == "PhaseSpace:useBreitWigners = off"
    assert ak.all(ak.sum(ev.truth.pid == 25, axis=1) == 1) and ak.all(ak.sum(abs(ev.truth.pid) == 6, axis=1) == 2)
    assert int(ak.sum(ak.num(ev.photons) >= 1)) >= 15
    again, _ = gen.generate("ttH_cp_odd", 20, 31)
    assert ak.to_list(again) == ak.to_list(ev)


def test_weighted_mode_keeps_every_event_with_its_weight():
    """CPMixing(weighted=True): no unweighting, every SM hard event is showered and carries
    w = |M_α|²/|M_SM|² as its event weight (through XWGTUP and Pythia's LHE input)."""
    proc = dataclasses.replace(CAT.process("ttH_cp_odd"), cp_mixing=CPMixing(alpha_deg=90.0, weighted=True))
    ev, info = gen.generate(proc, 15, 32)
    weights = ak.to_numpy(ev.weight)
    print(f"weighted CP-odd: weights {np.round(weights[:6], 3)} ..., mean {weights.mean():.3f}")
    assert len(ev) == 15 and info.generator["cp_reweighting"]["acceptance"] == 1.0
    assert weights.std() > 0 and np.all(weights >= 0)


def test_cp_mixing_settings_are_validated():
    """cp_mixing on a non-tt̄H process is a catalog error naming the entry; --cp-angle on tt̄ is a
    GenerationError; a null coupling is a GenerationError (not an endless unweighting loop);
    --cp-angle on ttH gives any α with κ̃ = 1 by default."""
    from hepfm_data.cli.commands.generate import with_cp_options

    raw = CAT.process("ttbar")
    with pytest.raises(GenerationError, match="vanishing"):
        gen.generate(dataclasses.replace(CAT.process("ttH"), cp_mixing=CPMixing(90.0, kappa_tilde=0.0)), 5, 3)
    doc = {"name": "x", "role": "eval", "index": 20, "description": "d", "paper_events": 1, "upstream_name": "x",
           "fidelity": "native", "pythia": list(raw.pythia), "citation": "ho2024", "cp_mixing": {"alpha_deg": 90}}
    from importlib import resources

    import yaml

    data = yaml.safe_load(resources.files("hepfm_data.core").joinpath("catalog.yaml").read_text())
    data["processes"].append(doc)
    with pytest.raises(CatalogError, match="cp_mixing"):
        parse_catalog(data, "test.yaml")
    with pytest.raises(GenerationError, match="not tt"):
        with_cp_options(raw, 45.0, None, None, False)
    proc = with_cp_options(CAT.process("ttH"), 45.0, None, None, False)
    assert proc.cp_mixing == CPMixing(alpha_deg=45.0, kappa=1.0, kappa_tilde=1.0)
    assert with_cp_options(CAT.process("ttH_cp_odd"), None, None, None, False) is CAT.process("ttH_cp_odd")
    # a new angle on ttH_cp_even (kappa_tilde = 0 in the catalog) gets kappa_tilde = 1, not a null coupling
    assert with_cp_options(CAT.process("ttH_cp_even"), 90.0, None, None, True).cp_mixing == \
        CPMixing(alpha_deg=90.0, kappa=1.0, kappa_tilde=1.0, weighted=True, max_overweight=0.01)
    doc["pythia"], doc["cp_mixing"] = list(CAT.process("ttH").pythia), {"alpha_deg": 90, "max_overweight": 0.7}
    with pytest.raises(CatalogError, match="max_overweight"):
        parse_catalog(data, "test.yaml")
