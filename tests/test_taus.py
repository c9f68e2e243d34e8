"""Hadronic τ in the emulation: the card's τ-tag efficiency on true τ jets and mistag rate on
the others, measured on a small real Pythia 8 Z -> ττ sample; the τ charge; the record's taus."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from hepfm_data.core.events import validate_events  # noqa: E402
from hepfm_data.readers.generation import detector as det  # noqa: E402
from hepfm_data.readers.generation.pythia import BASE_SETTINGS, batch_to_events, detector_rng, make_pythia, visible_taus  # noqa: E402

N_EVENTS = 400
ZTAUTAU = ["WeakSingleBoson:ffbar2gmZ = on", "WeakZ0:gmZmode = 2", "23:onMode = off", "23:onIfAny = 15",
           "PhaseSpace:mHatMin = 60", "Random:seed = 4242"]


@pytest.fixture(scope="module")
def ztautau():
    """400 Z -> ττ events from Pythia 8 through the emulation: (Pythia batch, event record)."""
    pythia = make_pythia([*BASE_SETTINGS, *ZTAUTAU], "Z -> tau tau test sample")
    run = pythia.nextBatch(N_EVENTS, 10.0)
    return run, batch_to_events(run, detector_rng(4242), 0)


def _binomial_ok(k: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    return abs(k - n * p) <= sigmas * np.sqrt(n * p * (1 - p))


def test_tau_tag_rate_on_true_tau_jets_matches_the_card(ztautau):
    """Jets matched (ΔR < 0.4) to a visible hadronic τ are τ-tagged at 0.6, other jets at 0.01
    (binomial, 4σ); the record's taus are exactly the τ-tagged jets."""
    run, ev = ztautau
    ev = validate_events(ev)
    vis = visible_taus(run.prt)
    assert 0.5 < ak.mean(ak.num(vis)) < 1.5  # Z -> ττ: 2 τ, each hadronic with BR ~0.65
    jets = ev.jets[(ev.jets.pt > 20) & (abs(ev.jets.eta) < 2.5)]
    pairs = ak.cartesian([jets, vis[(vis.pt > 1) & (abs(vis.eta) < 2.5)]], nested=True)
    dr = np.hypot(pairs["0"].eta - pairs["1"].eta, (pairs["0"].phi - pairs["1"].phi + np.pi) % (2 * np.pi) - np.pi)
    true_tau = ak.to_numpy(ak.flatten(ak.any(dr < 0.4, axis=2)))
    tag = ak.to_numpy(ak.flatten(jets.tau_tag)) == 1
    n_true, n_fake = int(true_tau.sum()), int((~true_tau).sum())
    assert n_true > 150 and n_fake > 100
    assert _binomial_ok(int(tag[true_tau].sum()), n_true, det.TAU_EFFICIENCY), tag[true_tau].mean()
    assert _binomial_ok(int(tag[~true_tau].sum()), n_fake, det.TAU_MISTAG), tag[~true_tau].mean()
    taus = ev.taus
    assert ak.all(ak.num(taus) == ak.sum(ev.jets.tau_tag, axis=1)) and ak.all(taus.tag == 1)
    assert ak.to_list(taus.pt) == ak.to_list(ev.jets.pt[ev.jets.tau_tag == 1])
    print(f"tau tag rate: true tau jets {tag[true_tau].mean():.3f} (n={n_true}), "
          f"other jets {tag[~true_tau].mean():.4f} (n={n_fake})")


def test_tau_charge_of_matched_tagged_jets(ztautau):
    """A τ-tagged jet matched to a visible τ has the τ lepton's charge in > 75 % of cases."""
    run, ev = ztautau
    prt = run.prt
    is_tau = (abs(prt.id) == 15)
    last = is_tau & (abs(prt.id[prt.daughter1]) != 15)
    vis = visible_taus(prt)
    # visible_taus keeps the order of the last-copy hadronic τs; recompute their charges in the same order
    agree = total = 0
    for i in range(len(ev)):
        ids = ak.to_numpy(prt.id[i][last[i]])
        d1 = ak.to_numpy(prt.daughter1[i][last[i]])
        d2 = ak.to_numpy(prt.daughter2[i][last[i]])
        all_ids = ak.to_numpy(prt.id[i])
        q = []
        for pid, a, b in zip(ids, d1, d2):
            daughters = all_ids[a:max(a, b) + 1] if b >= a else all_ids[[a, b]]
            if not np.isin(np.abs(daughters), (11, 13)).any():
                q.append(-np.sign(pid))
        assert len(q) == len(vis[i])
        for tq, v_eta, v_phi in zip(q, ak.to_numpy(vis.eta[i]), ak.to_numpy(vis.phi[i])):
            t = ev.taus[i]
            if len(t) == 0:
                continue
            dr = np.hypot(ak.to_numpy(t.eta) - v_eta, (ak.to_numpy(t.phi) - v_phi + np.pi) % (2 * np.pi) - np.pi)
            k = int(np.argmin(dr))
            if dr[k] < 0.2 and t.pt[k] > 20:
                total += 1
                agree += int(t.charge[k] == tq)
    print(f"tau charge agreement {agree}/{total}")
    assert total > 50 and agree / total > 0.75, (agree, total)


def test_emulation_without_tau_truth_leaves_taus_absent_and_other_objects_unchanged(ztautau):
    """emulate() without τ truth makes no tau information; with it, every other object is identical
    (the τ-tag draws come last)."""
    from hepfm_data.readers.generation.pythia import final_state

    run, _ = ztautau
    fs = final_state(run.prt[:50])
    a = det.emulate(fs, np.random.default_rng(1))
    b = det.emulate(fs, np.random.default_rng(1), taus=visible_taus(run.prt[:50]))
    assert a.taus is None and "tau_tag" not in a.jets.fields
    for name in ("electrons", "muons", "photons", "met"):
        assert ak.to_list(getattr(a, name)) == ak.to_list(getattr(b, name)), name
    assert ak.to_list(a.jets) == ak.to_list(b.jets[["pt", "eta", "phi", "mass"]])


def test_mistag_rate_on_jets_without_taus():
    """20000 jets in events without τ leptons are τ-tagged at the card's mistag rate 0.01 (4σ)."""
    rng = np.random.default_rng(7)
    n_ev, per = 2000, 10
    jets = ak.unflatten(ak.zip({k: rng.uniform(-2, 2, n_ev * per).astype(np.float32) for k in ("eta", "phi")}
                               | {"pt": np.full(n_ev * per, 30.0, np.float32),
                                  "mass": np.full(n_ev * per, 5.0, np.float32)}), np.full(n_ev, per))
    no_taus = ak.unflatten(ak.zip({k: np.zeros(0, np.float32) for k in ("pt", "eta", "phi")}), np.zeros(n_ev, int))
    out, taus = det._tau_tagging(jets, no_taus, rng, np.zeros(n_ev * per), np.repeat(np.arange(n_ev), per), n_ev)
    k = int(ak.sum(out.tau_tag))
    assert _binomial_ok(k, n_ev * per, det.TAU_MISTAG) and int(ak.sum(ak.num(taus))) == k
