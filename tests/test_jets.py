"""Jet constituents and large-R jets (issue #12): real Pythia 8 + FastJet generation of the RS3L
processes, the stored record (nested ``fatjets.constituents``), the point-cloud loader with real
DataLoader workers, and the real Delphes file's EFlow / FatJet collections."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re

import awkward as ak
import numpy as np
import pytest
import torch

from hepfm_data.batches.pointcloud import PointCloudBatch
from hepfm_data.cli.main import main
from hepfm_data.core.catalog import load_catalog
from hepfm_data.core.errors import StoreError
from hepfm_data.inputs.delphes import DelphesFiles
from hepfm_data.inputs.generated import PythiaGeneration
from hepfm_data.kernels.constituents import CONSTITUENT_FEATURES, constituent_features, pad_points, select_jets
from hepfm_data.loader import make_loader
from hepfm_data.pipelines.build import build_store
from hepfm_data.readers.delphes import read_delphes, write_delphes_like
from hepfm_data.readers.generation.particleflow import LABEL_GLUON, LABEL_HBB, LABEL_QUARK
from hepfm_data.representations import EVENT_JETS
from hepfm_data.representations.registry import unservable
from hepfm_data.store import open_store
from hepfm_data.testing import DELPHES_FILE, synthetic_events, wide_jet_constituents

N_EVENTS = 150  # per process: ~110 H->bb jets, enough for the mass-peak test
#: jet_constituents with RS3L's pT cut relaxed in |eta| (a few hundred events hold few |eta| < 0.1 jets)
WIDE = wide_jet_constituents()
FAST = {"block_size": 16, "window_blocks": 3}


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, str]:
    """rs3l_hz and rs3l_zjet generated (2 blocks each) and built into Zarr stores in this process (one shard
    per split: each shard costs a record write)."""
    root = tmp_path_factory.mktemp("jets")
    cat = load_catalog()
    out = {}
    for name in ("rs3l_hz", "rs3l_zjet"):
        st = build_store(PythiaGeneration(cat.process(name), N_EVENTS, seed=5, block_size=N_EVENTS // 2),
                         str(root), catalog=cat, scheduler="sync", progress=False)
        out[name] = st.url
    return out


@functools.lru_cache(maxsize=16)
def all_events(url: str, split: str | None = None) -> ak.Array:
    """The stored record of a store's shards (of one split), read once per test module run."""
    st = open_store(url)
    return ak.concatenate([st.read_events(i) for i in st.shards(split)])


def leading_matched(ev: ak.Array, labels: tuple[int, ...]) -> ak.Array:
    fj = ev.fatjets[ak.num(ev.fatjets) > 0][:, 0]
    return fj[np.isin(ak.to_numpy(fj.truth_label), labels)]


def test_softdrop_mass_of_hbb_jets_peaks_near_125_gev_and_qcd_does_not(stores):
    """Physics: the soft-drop mass (β = 0, z_cut = 0.1) of truth-matched H -> bb̄ large-R jets peaks
    near the Higgs mass; that of quark/gluon jets from Z + jet does not (it sits at low mass), and
    N2 separates the two-prong Higgs jets from QCD (smaller N2)."""
    h = leading_matched(all_events(stores["rs3l_hz"]), (LABEL_HBB,))
    q = leading_matched(all_events(stores["rs3l_zjet"]), (LABEL_QUARK, LABEL_GLUON))
    assert len(h) >= 80 and len(q) >= 100
    mh, mq = ak.to_numpy(h.sd_mass), ak.to_numpy(q.sd_mass)
    counts, edges = np.histogram(mh, bins=np.arange(0, 205, 10))
    peak = edges[np.argmax(counts)] + 5
    assert 105 <= peak <= 135, (peak, counts)
    window = lambda m: np.mean((m > 100) & (m < 150))  # noqa: E731
    assert window(mh) > 0.5 and window(mq) < 0.15
    assert np.median(mq) < 50
    assert np.median(ak.to_numpy(h.n2)) < np.median(ak.to_numpy(q.n2))
    # the Z + jet sample is QCD: no jet is H -> bb̄; both q and g jets appear
    zl = ak.to_numpy(ak.flatten(all_events(stores["rs3l_zjet"]).fatjets.truth_label))
    assert not np.any(zl == LABEL_HBB) and np.any(zl == LABEL_QUARK) and np.any(zl == LABEL_GLUON)


def test_candidates_and_jets_are_consistent(stores):
    """The stored record: every candidate kind occurs; neutrals have charge 0 and no impact parameters,
    tracks charge ±1 and a spread of d0/dz; jets are pT-ordered above 150 GeV, hold their pT-ordered
    constituents within the R = 0.8 cone, and their four-momentum is the constituents' sum."""
    ev = all_events(stores["rs3l_hz"])
    fj = ak.flatten(ev.fatjets)
    c = ak.flatten(fj.constituents)
    kind, q = ak.to_numpy(c.kind), ak.to_numpy(c.charge)
    assert set(np.unique(kind)) >= {0, 1, 2}
    neutral = (kind == 1) | (kind == 2)
    assert np.all(q[neutral] == 0) and np.all(np.abs(q[~neutral]) == 1)
    d0 = ak.to_numpy(c.d0)
    assert np.all(d0[neutral] == 0) and np.std(d0[kind == 0]) > 0.005
    pt = ak.to_numpy(fj.pt)
    assert np.all(pt > 150) and ak.all(ev.fatjets.pt[:, :-1] >= ev.fatjets.pt[:, 1:])
    assert ak.all(fj.constituents.pt[:, :-1] >= fj.constituents.pt[:, 1:])
    px = ak.sum(fj.constituents.pt * np.cos(fj.constituents.phi), axis=1)
    py = ak.sum(fj.constituents.pt * np.sin(fj.constituents.phi), axis=1)
    np.testing.assert_allclose(np.hypot(ak.to_numpy(px), ak.to_numpy(py)), pt, rtol=1e-3)
    deta = fj.constituents.eta - fj.eta
    dphi = (fj.constituents.phi - fj.phi + np.pi) % (2 * np.pi) - np.pi
    assert np.quantile(ak.to_numpy(ak.flatten(np.hypot(deta, dphi))), 0.99) < 0.85
    m = open_store(stores["rs3l_hz"]).manifest.schema["collections"]
    assert m["fatjets.constituents"]["parent"] == "fatjets"
    assert m["fatjets.constituents"]["fields"]["d0"]["unit"] == "mm"


def reference_points(jet, max_points: int = 100) -> np.ndarray:
    """The 15 RS3L features of one jet's constituents, computed one by one (plain Python)."""
    e_jet = math.sqrt((jet["pt"] * math.cosh(jet["eta"])) ** 2 + jet["mass"] ** 2)
    rows = []
    for c in sorted(jet["constituents"], key=lambda c: -c["pt"])[:max_points]:
        deta = c["eta"] - jet["eta"]
        dphi = (c["phi"] - jet["phi"] + math.pi) % (2 * math.pi) - math.pi
        flags = [float(c["kind"] == k) for k in (2, 4, 3, 0, 1)]
        rows.append([math.log(c["pt"]), math.log(c["pt"] / jet["pt"]), math.log(c["energy"]),
                     math.log(c["energy"] / e_jet), deta, dphi, math.hypot(deta, dphi), math.tanh(c["d0"]),
                     math.tanh(c["dz"]), float(c["charge"]), *flags])
    return np.array(rows, np.float32)


def test_kernels_match_a_plain_python_reference(stores):
    """constituent_features + pad_points equal a per-constituent Python computation; select_jets
    keeps the first max_jets passing jets of each event."""
    ev = all_events(stores["rs3l_zjet"])[:30]
    fj = ak.flatten(ev.fatjets)
    c = ak.flatten(fj.constituents)
    n = ak.to_numpy(ak.num(fj.constituents))
    cols = {k: ak.to_numpy(c[k]) for k in c.fields}
    cols = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in cols.items()}
    jets = {k: ak.to_numpy(fj[k]).astype(np.float64) for k in ("pt", "eta", "phi", "mass")}
    feats = constituent_features(cols, jets, np.repeat(np.arange(len(n)), n))
    points, mask = pad_points(feats, cols["pt"], np.concatenate([[0], np.cumsum(n)]), 100)
    assert points.shape == (len(fj), 100, len(CONSTITUENT_FEATURES))
    for j, jet in enumerate(fj.to_list()):
        ref = reference_points(jet)
        assert mask[j].sum() == len(ref) and not mask[j, len(ref):].any()
        np.testing.assert_allclose(points[j, :len(ref)], ref, rtol=2e-5, atol=2e-5)
    pt = np.array([500.0, 400, 300, 200, 600, 100])
    off = np.array([0, 4, 4, 6])
    keep = select_jets(pt, np.zeros(6), np.full(6, 20.0), off, pt_min=150, abs_eta_max=1, mass_min=10, max_jets=2)
    assert keep.tolist() == [True, True, False, False, True, False]


def selected_jets(url: str, spec, split: str = "train") -> set[tuple[int, int]]:
    out = set()
    ev = all_events(url, split)
    for eid, jets in zip(ev.event_id.tolist(), ev.fatjets[["pt", "eta", "mass"]].to_list()):
        for i, j in enumerate(jets):
            if j["pt"] > spec.pt_min and abs(j["eta"]) < spec.abs_eta_max and j["mass"] >= spec.mass_min:
                out.add((eid, i))
    return out


def test_jet_constituents_batches_every_jet_once_identically_on_0_and_2_workers(stores):
    """jet_constituents: one epoch yields every selected train jet exactly once, the batches are the
    same with 0 and 2 real DataLoader workers (PointCloudBatch crosses the pipe; workers interleave them), and a batch's points
    equal the reference features of the stored jet it names (event_id, jet_index)."""
    urls = [stores["rs3l_hz"], stores["rs3l_zjet"]]
    kw = dict(device="cpu", batch_size=16, seed=3, representation=WIDE, **FAST)
    a = list(make_loader(urls, num_workers=0, **kw))
    b = list(make_loader(urls, num_workers=2, **kw))
    assert all(isinstance(x, PointCloudBatch) for x in a + b) and len(a) == len(b)
    by_events = {tuple(y.event_id.tolist()): y for y in b}  # workers interleave their batches
    assert len(by_events) == len(b)
    for x in a:
        y = by_events[tuple(x.event_id.tolist())]
        assert torch.equal(x.points, y.points) and torch.equal(x.jet_index, y.jet_index)
        assert torch.equal(x.mask, y.mask) and torch.equal(x.jets, y.jets) and torch.equal(x.jet_labels, y.jet_labels)
    seen = [(int(e), int(i)) for x in a for e, i in zip(x.event_id, x.jet_index)]
    expected = selected_jets(urls[0], WIDE) | selected_jets(urls[1], WIDE)
    assert len(seen) == len(set(seen)) == len(expected) and set(seen) == expected
    assert all(x.points.shape[1:] == (100, 15) and x.mask.shape[1:] == (100,) for x in a)
    labels = {int(x) for batch in a for x in batch.labels}
    assert labels == {load_catalog().process("rs3l_hz").index, load_catalog().process("rs3l_zjet").index}
    # one batch checked against the stored jet
    hz = all_events(urls[0], "train")
    row = {e: r for r, e in enumerate(hz.event_id.tolist())}
    x = next(x for x in a if any(int(e) in row for e in x.event_id))
    k = next(k for k, e in enumerate(x.event_id.tolist()) if e in row)
    jet = hz[row[x.event_id[k].item()]].fatjets[x.jet_index[k].item()].to_list()
    ref = reference_points(jet)
    np.testing.assert_allclose(x.points[k, :len(ref)].numpy(), ref, rtol=2e-5, atol=2e-5)
    assert x.mask[k].sum().item() == len(ref)
    np.testing.assert_allclose(x.jets[k].numpy(), [jet[f] for f in ("pt", "eta", "phi", "mass", "sd_mass", "n2")],
                               rtol=1e-6)


def test_point_cloud_loader_resumes_exactly(stores):
    """A JSON checkpoint after 3 batches, loaded into a fresh loader, yields exactly the remaining
    event_jets batches of the uninterrupted epoch."""
    urls = [stores["rs3l_hz"], stores["rs3l_zjet"]]
    kw = dict(device="cpu", batch_size=8, seed=9, num_workers=2, representation="event_jets", **FAST)
    full = [(x.event_id.tolist(), x.points) for x in make_loader(urls, **kw)]
    first = make_loader(urls, **kw)
    it = iter(first)
    head = [next(it) for _ in range(3)]
    state = json.loads(json.dumps(first.state_dict()))
    del it
    again = make_loader(urls, **kw)
    again.load_state_dict(state)
    got = [(x.event_id.tolist(), x.points) for x in head] + [(x.event_id.tolist(), x.points) for x in again]
    assert [g[0] for g in got] == [f[0] for f in full]
    assert all(torch.equal(g[1], f[1]) for g, f in zip(got, full))


def test_event_jets_batches_are_events_with_up_to_five_jets(stores):
    """event_jets: every train event once, points [B, 5, 100, 15], jet_mask marks the event's
    selected jets (pT > 150 GeV, |η| < 2.5, at most 5) and padded jets carry no constituents."""
    urls = [stores["rs3l_hz"], stores["rs3l_zjet"]]
    spec = EVENT_JETS
    batches = list(make_loader(urls, device="cpu", batch_size=12, seed=1, num_workers=0,
                               representation="event_jets", **FAST))
    ids = [int(e) for x in batches for e in x.event_id]
    events = {eid: jets for u in urls for eid, jets in zip(all_events(u, "train").event_id.tolist(),
                                                           all_events(u, "train").fatjets[["pt", "eta"]].to_list())}
    assert len(ids) == len(set(ids)) == len(events)
    for x in batches:
        assert x.points.shape[1:] == (5, 100, 15) and x.jet_mask.shape[1:] == (5,)
        assert not x.mask[~x.jet_mask].any()
        for k, e in enumerate(x.event_id.tolist()):
            n = sum(j["pt"] > spec.pt_min and abs(j["eta"]) < spec.abs_eta_max for j in events[e])
            assert x.jet_mask[k].sum().item() == min(n, 5)


def test_real_delphes_file_has_fatjets_and_serves_event_jets(tmp_path):
    """The real Delphes 3.4.2 file's FatJet + EFlowTrack/Photon/NeutralHadron become the record's
    fatjets (constituents within ΔR < 0.8, sd_mass and N2 recomputed); its store serves event_jets."""
    ev = next(read_delphes(str(DELPHES_FILE)))
    fj = ak.flatten(ev.fatjets)
    assert len(fj) > 0 and "truth_label" not in fj.fields
    assert ak.all(ak.num(fj.constituents) > 5)
    assert set(np.unique(ak.to_numpy(ak.flatten(fj.constituents.kind)))) >= {0, 1, 2}
    assert np.all(ak.to_numpy(fj.sd_mass) <= ak.to_numpy(fj.mass) * 1.05 + 1)
    st = build_store(DelphesFiles("ttH", str(DELPHES_FILE)), str(tmp_path), scheduler="sync", progress=False)
    assert not unservable(st.manifest.schema)["event_jets"]
    spec = dataclasses.replace(EVENT_JETS, name="event_jets_all")
    got = 0
    for split in ("train", "validation", "test"):
        if st.manifest.split_sizes().get(split):
            for x in make_loader(st.url, split=split, device="cpu", batch_size=4, num_workers=0,
                                 representation=spec):
                assert torch.all(x.jet_labels[x.jet_mask] == -1)  # no truth label in this file
                got += int(x.jet_mask.sum())
    assert got == int(ak.sum((fj.pt > 150) & (abs(fj.eta) < 2.5)))


def test_delphes_file_without_eflow_builds_the_object_record_and_refuses_jet_constituents(tmp_path, capsys):
    """A Delphes file without EFlow / FatJet builds the object-level record (`hepfm-data build`, which
    says which representations the store cannot serve); asking for jet_constituents fails naming the
    store and the missing collection."""
    ev = synthetic_events(40, seed=2)
    path = tmp_path / "objects-only.root"
    write_delphes_like(str(path), ev)  # Jet, Electron, Muon, Photon, MissingET, Particle: no EFlow, no FatJet
    assert main(["build", "ttH", "--input", str(path), "--out", str(tmp_path / "s"), "--scheduler", "sync",
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "cannot serve representation 'jet_constituents': the record lacks fatjets, fatjets.constituents" in printed
    assert "cannot serve representation 'event_jets'" in printed
    st = open_store(str(tmp_path / "s" / "ttH"))
    assert st.manifest.n_events == len(ev) and "jets" in st.manifest.schema["collections"]
    missing = unservable(st.manifest.schema)
    assert missing["jet_constituents"] and missing["event_jets"]
    split = next(s for s, n in st.manifest.split_sizes().items() if n)
    with pytest.raises(StoreError, match=re.escape(st.url) + r".*'jet_constituents'.*\['fatjets', 'fatjets.constituents'\]"):
        list(make_loader(st.url, split=split, device="cpu", batch_size=4, num_workers=0,
                         representation="jet_constituents"))


def test_plot_jets_writes_the_higgs_vs_qcd_png(stores, tmp_path):
    """plot_jets (hepfm-data plot --jets): a PNG of constituent multiplicity, soft-drop mass and N2
    of leading large-R jets, Higgs vs QCD, from the stored records."""
    from hepfm_data.serving.plotting import jet_distributions, plot_jets

    samples = {n: all_events(u) for n, u in stores.items()}
    d = jet_distributions(samples["rs3l_hz"])
    assert len(d["H -> bb (matched)"]["sd_mass"]) > 80 and len(d["QCD q/g (matched)"]["sd_mass"]) < 5
    out = plot_jets(samples, tmp_path / "jets.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
