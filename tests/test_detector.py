"""ATLAS-like emulation: card formulas, isolation kernel vs reference, objects on hand-made events."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

pytest.importorskip("fastjet")

from hepfm_data.readers.generation import detector as det  # noqa: E402


def _particle(pid, pt, eta, phi, mass=0.0):
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return {"pid": pid, "px": px, "py": py, "pz": pz, "e": float(np.sqrt(px**2 + py**2 + pz**2 + mass**2))}


def _events(lists):
    return ak.Array(lists)


def test_card_formulas_at_reference_points():
    """Efficiency and resolution functions give the Delphes ATLAS card's numbers in each (pT, |eta|) bin."""
    pt, eta = np.array([5.0, 50.0, 50.0, 50.0, 200.0]), np.array([0.3, 0.3, 2.0, 2.6, 1.0])
    assert det.id_efficiency("electron", pt, eta).tolist() == [0.0, 0.95, 0.85, 0.0, 0.95]
    assert det.id_efficiency("muon", pt, eta).tolist() == [0.0, 0.95, 0.85, 0.85, 0.95]
    assert det.tracking_efficiency("electron", pt, eta).tolist() == [0.95, 0.95, 0.83, 0.0, 0.99]
    assert det.tracking_efficiency("muon", pt, eta).tolist() == [0.99, 0.99, 0.98, 0.0, 0.99]
    np.testing.assert_allclose(det.lepton_resolution("electron", np.array([100.0]), np.array([0.2])),
                               np.sqrt(0.03**2 + (100 * 1.3e-3) ** 2))
    np.testing.assert_allclose(det.lepton_resolution("muon", np.array([100.0]), np.array([2.0])),
                               np.sqrt(0.025**2 + (100 * 3.5e-4) ** 2))
    np.testing.assert_allclose(det.ecal_resolution(np.array([100.0]), np.array([1.0])),
                               np.sqrt((0.0017 * 100) ** 2 + 0.101**2 * 100))
    np.testing.assert_allclose(det.hcal_resolution(np.array([100.0, 100.0]), np.array([1.0, 2.0])),
                               [np.sqrt((0.0302 * 100) ** 2 + 0.5205**2 * 100 + 1.59**2),
                                np.sqrt((0.05 * 100) ** 2 + 0.706**2 * 100)])


def test_log_normal_mean_and_width():
    """log_normal draws positive numbers with the requested mean and standard deviation."""
    rng = np.random.default_rng(0)
    x = det.log_normal(rng, np.full(200_000, 50.0), np.full(200_000, 5.0))
    assert x.min() > 0
    assert abs(x.mean() - 50.0) < 0.05 and abs(x.std() - 5.0) < 0.05


def test_isolation_kernel_matches_reference():
    """The numba isolation kernel equals the plain numpy reference on random events (incl. phi wrap)."""
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 40, 50)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    n = int(offsets[-1])
    eta, phi = rng.uniform(-2.5, 2.5, n), rng.uniform(-np.pi, np.pi, n)
    pt, use = rng.exponential(5.0, n), rng.random(n) < 0.8
    event = np.repeat(np.arange(50), counts)
    cand = np.flatnonzero(rng.random(n) < 0.2)
    got = det.isolation_sums(cand, event[cand], offsets, eta, phi, pt, use, 0.5)
    want = det.isolation_reference(cand, event[cand], offsets, eta, phi, pt, use, 0.5)
    np.testing.assert_allclose(got, want)
    assert (want > 0).any()


def test_objects_on_hand_made_events():
    """Isolated lepton/photon become objects (not jets); a hadron spray becomes a jet; neutrinos give MET."""
    spray = [_particle(211, 15.0, 0.5 + 0.05 * k, 1.0 + 0.03 * k, 0.139) for k in range(4)]
    visible = [_particle(11, 60.0, 0.2, -2.0, 0.000511), _particle(22, 80.0, -1.0, 0.5), *spray]
    nu_px, nu_py = -sum(p["px"] for p in visible), -sum(p["py"] for p in visible)  # balances the event
    nu_pt, nu_phi = float(np.hypot(nu_px, nu_py)), float(np.arctan2(nu_py, nu_px))
    ev0 = [*visible, _particle(12, nu_pt, 0.0, nu_phi)]
    ev1 = [_particle(-13, 40.0, 1.0, 2.5, 0.1057), _particle(211, 30.0, 1.1, 2.55, 0.139)]  # non-isolated muon
    rng = np.random.default_rng(5)
    objs = None
    # efficiencies are random: find a seed-stable realisation where the electron/photon pass (P ~ 0.85)
    for _ in range(20):
        objs = det.emulate(_events([ev0, ev1]), rng)
        if ak.num(objs.electrons)[0] == 1 and ak.num(objs.photons)[0] == 1:
            break
    assert ak.num(objs.electrons).tolist() == [1, 0] and ak.num(objs.photons).tolist() == [1, 0]
    assert objs.electrons.charge[0, 0] == -1
    assert abs(objs.electrons.pt[0, 0] - 60.0) < 10.0 and abs(objs.photons.eta[0, 0] + 1.0) < 1e-5
    assert ak.num(objs.muons).tolist() == [0, 0]  # iso ratio 30/40 > 0.25
    assert ak.num(objs.jets)[0] == 1  # the spray only: electron and photon are not clustered
    assert abs(objs.jets.pt[0, 0] - 60.0) < 20.0 and abs(objs.jets.eta[0, 0] - 0.58) < 0.1
    assert ak.num(objs.jets)[1] == 1  # the pion (30 GeV) is a jet; the muon is not a jet input
    # MET = the neutrino (up to the smearing of the electron, photon and jet)
    assert abs(objs.met.pt[0] - nu_pt) < 0.3 * nu_pt
    assert abs(np.angle(np.exp(1j * (objs.met.phi[0] - nu_phi)))) < 0.3


def test_photon_efficiency_and_resolution_statistics():
    """Isolated 50 GeV central photons: kept fraction = 0.95 and energy spread = card ECal resolution."""
    n = 4000
    events = _events([[_particle(22, 50.0, 0.5, 0.0)] for _ in range(n)])
    objs = det.emulate(events, np.random.default_rng(9))
    kept = int(ak.sum(ak.num(objs.photons)))
    assert abs(kept / n - 0.95) < 4 * np.sqrt(0.95 * 0.05 / n)
    energy = ak.to_numpy(ak.flatten(objs.photons.pt)) * np.cosh(0.5)
    e_true = 50.0 * np.cosh(0.5)
    sigma = det.ecal_resolution(np.array([e_true]), np.array([0.5]))[0]
    assert abs(energy.std() / sigma - 1.0) < 0.06
    assert abs(energy.mean() - e_true) < 4 * sigma / np.sqrt(kept)


def test_same_seed_same_objects():
    """Two runs with the same generator seed give identical objects; another seed differs."""
    events = _events([[_particle(22, 50.0, 0.5, 0.0), _particle(211, 40.0, -1.0, 1.0, 0.139)]] * 50)
    a = det.emulate(events, np.random.default_rng(1))
    b = det.emulate(events, np.random.default_rng(1))
    c = det.emulate(events, np.random.default_rng(2))
    assert a.photons.pt.tolist() == b.photons.pt.tolist() and a.jets.pt.tolist() == b.jets.pt.tolist()
    assert a.jets.pt.tolist() != c.jets.pt.tolist()
