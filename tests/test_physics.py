"""Physics validation of Pythia 8 + the ATLAS-like emulation on small fixed-seed samples."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")
vector = pytest.importorskip("vector")

from hepfm_data import load_catalog  # noqa: E402
from hepfm_data.readers.generation import generate  # noqa: E402
from hepfm_data.readers.generation.detector import ecal_resolution  # noqa: E402
from hepfm_data.serving.plotting import apply_cuts  # noqa: E402

CAT = load_catalog()


@pytest.fixture(scope="module")
def samples():
    """Lazily generated samples shared by the tests of this module: name -> (events, info)."""
    cache: dict = {}

    def get(name: str, n: int, seed: int):
        if (name, n, seed) not in cache:
            cache[name, n, seed] = generate(name, n, seed)
        return cache[name, n, seed]

    return get


def _diphoton(events):
    photons = events.photons[ak.num(events.photons) >= 2][:, :2]
    p4 = vector.zip({"pt": photons.pt, "eta": photons.eta, "phi": photons.phi, "mass": ak.zeros_like(photons.pt)})
    return (p4[:, 0] + p4[:, 1]).mass, photons


def test_diphoton_mass_peak_and_resolution(samples):
    """ttH_cp_even (H -> γγ): the leading-diphoton mass peaks at 125 GeV with a width equal to the
    ECal resolution of the card propagated to the mass (σ_m/m = ½·sqrt(Σ (σ_E/E)²)) within 25%."""
    events, info = samples("ttH_cp_even", 300, 101)
    mass, photons = _diphoton(events)
    mass = ak.to_numpy(mass)
    assert len(mass) > 90  # ~40% of events: acceptance x 0.9² efficiency x isolation (ΔR 0.5) in tt̄H
    window = (mass > 115) & (mass < 135)
    assert window.mean() > 0.8
    core = mass[window]
    assert abs(np.median(core) - 125.0) < 0.5
    measured = 1.4826 * np.median(np.abs(core - np.median(core)))
    energy = ak.to_numpy(photons.pt * np.cosh(photons.eta))[window]
    rel = ecal_resolution(energy, np.abs(ak.to_numpy(photons.eta)[window])) / energy
    predicted = np.median(0.5 * 125.0 * np.sqrt((rel**2).sum(axis=1)))
    assert 0.75 < measured / predicted < 1.25, (measured, predicted)
    # truth: exactly one Higgs, no other resonance at 125 GeV
    assert ak.all(ak.sum(events.truth.pid == 25, axis=1) == 1)


def test_btag_efficiency_of_b_matched_jets_matches_card(samples):
    """tt̄: among selected jets matched (ΔR < 0.4) to a truth b quark, the fraction tagged by the store's
    b-tag kernel equals the card formula 0.80·tanh(0.003 pT)·30/(1+0.086 pT) averaged over those jets
    within 4 standard errors; truth b quarks are present for ~2 jets per event."""
    kernels_btag = pytest.importorskip("hepfm_data.kernels.btag")
    kernels_sel = pytest.importorskip("hepfm_data.kernels.selection")
    events, _ = samples("ttbar", 300, 102)
    jets = events.jets
    ok = (jets.pt >= CAT.selection.jet.pt_min) & (abs(jets.eta) <= CAT.selection.jet.abs_eta_max)
    jets = jets[ok]
    off = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(jets)))]).astype(np.int64)
    toff = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(events.truth)))]).astype(np.int64)
    flat = lambda a, t=np.float32: np.ascontiguousarray(ak.to_numpy(ak.flatten(a)), dtype=t)  # noqa: E731
    pt = flat(jets.pt)
    flav = kernels_sel.jet_flavour(flat(jets.eta), flat(jets.phi), off, flat(events.truth.pid, np.int32),
                                   flat(events.truth.eta), flat(events.truth.phi), toff, 0.4)
    tags = kernels_btag.btag_decisions(flav, pt, off, ak.to_numpy(events.event_id).astype(np.uint64),
                                       kernels_btag.efficiency_table(CAT.selection.btag), kernels_btag.seed_key(7))
    is_b = flav == 5
    assert is_b.sum() / len(events) > 1.2  # t -> W b twice: most b quarks give a selected jet
    card = 0.80 * np.tanh(0.003 * pt[is_b]) * 30.0 / (1.0 + 0.086 * pt[is_b])
    expected, sigma = card.mean(), np.sqrt((card * (1 - card)).sum()) / is_b.sum()
    observed = tags[is_b].mean()
    assert abs(observed - expected) < 4 * sigma, (observed, expected, sigma)
    # light jets are rarely tagged (card: 0.002 + 7.3e-6 pT)
    assert tags[flav == 0].mean() < 0.05


def test_object_multiplicities_are_sane(samples):
    """Selected-jet multiplicity: tt̄ > ggF; lepton multiplicity: WH > ggF; photons: ttH(γγ) > tt̄."""
    sel = CAT.selection

    def mean_count(events, name, cuts):
        return float(ak.mean(ak.num(apply_cuts(events[name], cuts))))

    ggf, _ = samples("ggF_H", 200, 103)
    wh, _ = samples("WH", 200, 104)
    tt, _ = samples("ttbar", 300, 102)
    tth, _ = samples("ttH_cp_even", 300, 101)
    assert mean_count(tt, "jets", sel.jet) > mean_count(ggf, "jets", sel.jet) + 1.5
    leptons = lambda ev: mean_count(ev, "electrons", sel.electron) + mean_count(ev, "muons", sel.muon)  # noqa: E731
    assert leptons(wh) > leptons(ggf) + 0.1
    assert mean_count(tth, "photons", sel.photon) > mean_count(tt, "photons", sel.photon) + 1.0
    # MET: tt̄ (neutrinos from W decays) well above ggF's mostly-visible final states
    assert float(ak.mean(tt.met.pt)) > float(ak.mean(ggf.met.pt)) + 10.0


#: process -> {(|pid|, ...): minimum count per event}, exact when marked "=="
TRUTH_CONTENT = {
    "ggF_H": {(25,): 1}, "VBF_H": {(25,): 1}, "WH": {(25,): 1, (24,): 1}, "ZH": {(25,): 1, (23,): 1},
    "ttH": {(25,): 1, (6,): "==2"}, "single_top": {(6,): "==1"}, "ttbar": {(6,): "==2"},
    "ttyy_proxy": {(6,): "==2"}, "ttW_proxy": {(6,): "==2", (24,): 3}, "ttt_proxy": {(6,): "==3"},
    "tttt_proxy": {(6,): "==4"},
    "ttH_cp_even": {(25,): "==1", (6,): "==2"}, "ttH_cp_odd": {(25,): "==1", (6,): "==2"},
    "stop": {(25,): 2, (6,): "==2"}, "fcnc": {(25,): 1, (6,): "==2"},
}


@pytest.mark.parametrize("name", sorted(TRUTH_CONTENT))
def test_every_generatable_process_has_its_truth_content(name):
    """Each catalog process Pythia can generate yields valid events whose truth record holds the process's
    resonances (e.g. 4 tops for tttt_proxy, the CP-odd A0 for ttH_cp_odd, two h for stop)."""
    proc = CAT.process(name)
    assert proc.generatable
    events, info = generate(name, 20, 200 + proc.index)
    assert len(events) == 20 and info.fidelity == proc.fidelity
    apid = abs(events.truth.pid)
    for pids, need in TRUTH_CONTENT[name].items():
        n = ak.to_numpy(sum(ak.sum(apid == p, axis=1) for p in pids))
        if isinstance(need, str):
            assert (n == int(need[2:])).all(), (name, pids, n)
        else:
            assert (n >= need).all(), (name, pids, n)
    higgs = ak.flatten(events.truth.mass[(apid == 25) | (apid == 36)])
    if len(higgs):
        assert abs(float(np.median(higgs)) - 125.0) < 1.0
    if name == "ttH_cp_odd":  # A0 -> γγ only: the diphoton mass sits at 125 GeV
        mass, _ = _diphoton(events)
        assert len(mass) >= 4 and abs(float(np.median(ak.to_numpy(mass))) - 125.0) < 3.0
    if name == "stop":  # two invisible neutralinos
        assert float(ak.mean(events.met.pt)) > 80.0
    if name == "fcnc":  # one top decays t -> H c: a c quark from the top decay, a Higgs, one W
        assert ak.all(ak.sum(apid == 24, axis=1) >= 1)
