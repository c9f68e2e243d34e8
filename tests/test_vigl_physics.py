"""The Vigl et al. samples (SPEC §7.1) are what their catalog entries say: a few hundred events of the
1.5 TeV G* -> HH -> bb̄bb̄ signal and of one QCD pT-hat slice, generated with Pythia 8 + the emulated particle
flow through the one build path (``PythiaGeneration`` -> ``build_store``) and read back from the stored
record. The signal's two leading large-R jets are Higgs jets (soft-drop mass near 125 GeV) whose di-jet mass
is the G* mass; the QCD jets are not; the QCD events carry their slice's cross section as event weight."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from hepfm_data import load_catalog  # noqa: E402

N_EVENTS = 240
BLOCK = 120  # two generation blocks per sample: the cross-section weight is per block
SIGNAL, QCD = "vigl_gstar_1500", "vigl_qcd_500_800"
M_GSTAR = 1500.0


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict:
    """{process: (event record of every split, store)} built from generated events (sync, no Dask)."""
    from hepfm_data.inputs.generated import PythiaGeneration
    from hepfm_data.pipelines.build import build_store

    root = tmp_path_factory.mktemp("vigl")
    cat = load_catalog()
    out = {}
    for name in (SIGNAL, QCD):
        src = PythiaGeneration(cat.process(name), N_EVENTS, seed=11, block_size=BLOCK, events_per_unit=N_EVENTS)
        st = build_store(src, str(root), catalog=cat, seed=11, fractions=(0.45, 0.05, 0.5), scheduler="sync",
                         progress=False)
        out[name] = (ak.concatenate([st.read_events(s) for s in st.shards()]), st)
    return out


def _leading_two(events: ak.Array) -> ak.Array:
    """The two leading large-R jets (pT > 150 GeV, |η| < 2.5: event_jets' cuts) of events with at least two."""
    fj = events.fatjets
    fj = fj[(fj.pt > 150.0) & (abs(fj.eta) < 2.5)]
    return fj[ak.num(fj) >= 2][:, :2]


def _mode(values: np.ndarray, lo: float, hi: float, width: float) -> float:
    """Centre of the most populated bin of ``width`` in [lo, hi)."""
    counts, edges = np.histogram(values, bins=np.arange(lo, hi + width, width))
    k = int(np.argmax(counts))
    return float(0.5 * (edges[k] + edges[k + 1]))


def _dijet_mass(j: ak.Array) -> np.ndarray:
    pt, eta, phi, m = (ak.to_numpy(j[k]).astype(np.float64) for k in ("pt", "eta", "phi", "mass"))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    return np.sqrt(np.clip(e.sum(1) ** 2 - px.sum(1) ** 2 - py.sum(1) ** 2 - pz.sum(1) ** 2, 0, None))


def test_leading_jets_soft_drop_mass_peaks_at_the_higgs_for_the_signal_only(samples):
    """Signal: most events have two large-R jets and their soft-drop masses peak (10 GeV bins) and have their
    median in [90, 150] GeV, the H -> bb̄ window; QCD: median below 90 GeV, peak below 60 GeV, and a far smaller
    share of jets in that window."""
    sig, qcd = (_leading_two(samples[n][0]) for n in (SIGNAL, QCD))
    assert len(sig) > 0.8 * N_EVENTS and len(qcd) > 0.8 * N_EVENTS
    msd_s, msd_q = (ak.to_numpy(ak.flatten(j.sd_mass)) for j in (sig, qcd))
    window = lambda m: float(np.mean((m > 90) & (m < 150)))  # noqa: E731
    print(f"\nsoft-drop mass of the two leading jets: signal median {np.median(msd_s):.1f} GeV, peak "
          f"{_mode(msd_s, 0, 300, 10):.0f} GeV, {window(msd_s):.0%} in [90, 150]; QCD median {np.median(msd_q):.1f} "
          f"GeV, peak {_mode(msd_q, 0, 300, 10):.0f} GeV, {window(msd_q):.0%} in [90, 150]")
    assert 90 < np.median(msd_s) < 150 and 100 <= _mode(msd_s, 0, 300, 10) <= 140
    assert window(msd_s) > 0.5
    assert np.median(msd_q) < 90 and _mode(msd_q, 0, 300, 10) < 60
    assert window(msd_q) < 0.5 * window(msd_s)


def test_dijet_mass_of_the_two_leading_jets_peaks_at_the_graviton_mass(samples):
    """The invariant mass of the two leading large-R jets of the 1.5 TeV sample peaks (50 GeV bins) and has its
    median within 15% of 1.5 TeV (the jets' resolution and out-of-cone radiation lower it a little)."""
    mjj = _dijet_mass(_leading_two(samples[SIGNAL][0]))
    peak = _mode(mjj, 500, 2500, 50)
    print(f"\nm(jj) of the 1.5 TeV G*: median {np.median(mjj):.0f} GeV, peak {peak:.0f} GeV")
    assert abs(np.median(mjj) - M_GSTAR) < 0.15 * M_GSTAR and abs(peak - M_GSTAR) < 0.15 * M_GSTAR
    assert np.mean(np.abs(mjj - M_GSTAR) < 0.15 * M_GSTAR) > 0.5


def test_qcd_events_weigh_their_slice_cross_section(samples):
    """weight: cross_section: the events of one generation block weigh σ_block / N pb (N = the sample's 240
    events), so the weights add up to the slice's cross section (Pythia's 500-800 GeV pT-hat QCD: ~580 pb);
    block 0 regenerated alone has the same weights (deterministic per block seed); the signal is unweighted."""
    from hepfm_data.readers.generation.blocks import generate_block

    qcd, _ = samples[QCD]
    w = ak.to_numpy(qcd.weight).astype(np.float64)
    block_of = (ak.to_numpy(qcd.event_id).astype(np.uint64) & np.uint64(0xFFFFFFFF)) // np.uint64(BLOCK)
    per_block = [np.unique(w[block_of == b]) for b in (0, 1)]
    assert all(len(u) == 1 for u in per_block)  # one weight per block
    total = sum(float(u[0]) * BLOCK for u in per_block)
    print(f"\nQCD 500-800: weights {[f'{u[0]:.3f}' for u in per_block]} pb/event, sum {total:.0f} pb")
    assert 450 < total < 700
    again, info = generate_block(load_catalog().process(QCD), 11, 0, BLOCK, BLOCK, sample_events=N_EVENTS)
    assert np.all(ak.to_numpy(again.weight) == np.float32(per_block[0][0]))
    assert info.generator["weighting"]["sample_events"] == N_EVENTS
    assert np.all(ak.to_numpy(samples[SIGNAL][0].weight) == 1.0)
