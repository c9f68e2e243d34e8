"""Typed object slots (SPEC §7.3) from the stored event record: selection, masses, augmentations,
the object-replacement pretext, and slot batches through the real streaming loader (DataLoader
worker processes, Zarr stores written by the store writer)."""

from __future__ import annotations

import json
import math

import awkward as ak
import numpy as np
import pytest
import torch

from hepfm_data import load_catalog
from hepfm_data.batches.slots import (
    LOG_E,
    LOG_M,
    NONE_CLASS,
    PRETEXT_CLASSES,
    S_ETA,
    SLOT_TYPES,
    ObjectReplacement,
    SlotBatch,
    SlotLayout,
    slot_features,
    slot_pt,
)
from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import HepfmError, StoreError
from hepfm_data.core.events import SampleInfo
from hepfm_data.loader import BoostZ, Compose, FlipEta, RotatePhi, make_loader
from hepfm_data.pipelines.build import write_store
from hepfm_data.representations import SlotRepresentation, SlotSelection
from hepfm_data.representations.slots import lepton_masses, slot_batch, slot_objects
from hepfm_data.store import open_store
from hepfm_data.store.record import schema_of, to_columns
from hepfm_data.testing import synthetic_events, synthetic_slots

CAT = load_catalog()
SEL = SlotSelection.from_catalog(CAT)


def _record_with_btag(n: int, seed: int):
    """Synthetic events with taus, a record b-tag flag on the jets and pT ties (every third event's
    jet pT rounded to 10 GeV)."""
    ev = synthetic_events(n, seed, taus=True)
    rng = np.random.default_rng(seed)
    jets = ev.jets
    flat_pt = ak.to_numpy(ak.flatten(jets.pt))
    tie = np.repeat(np.arange(n) % 3 == 0, ak.to_numpy(ak.num(jets)))
    flat_pt = np.where(tie, np.round(flat_pt, -1) + 30.0, flat_pt).astype(np.float32)
    counts = ak.num(jets)
    jets = ak.with_field(jets, ak.unflatten(flat_pt, counts), "pt")
    jets = ak.with_field(jets, ak.unflatten(rng.integers(0, 2, len(flat_pt)).astype(np.int8), counts), "btag")
    return ak.with_field(ev, jets, "jets")


def _passes(pt, eta, c) -> bool:
    """The SPEC §2 cuts of one object, plainly (float32 like the record)."""
    pt, a = np.float32(pt), np.float32(abs(eta))
    ok = pt >= np.float32(c.pt_min) if c.pt_inclusive else pt > np.float32(c.pt_min)
    crack = c.eta_crack is not None and np.float32(c.eta_crack[0]) < a < np.float32(c.eta_crack[1])
    return bool(ok and a <= np.float32(c.abs_eta_max) and not crack)


def reference_slots(ev, layout: SlotLayout, masses: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """The plain per-event Python definition of the slots of an event record (record b-tag)."""
    b, s = len(ev), layout.n_slots
    x, mask = np.zeros((b, s, 11), np.float32), np.zeros((b, s), bool)
    sel = CAT.selection
    for i, e in enumerate(ev.to_list()):
        groups: dict[int, list] = {k: [] for k in range(5)}
        kept = {"electron": [], "muon": [], "photon": []}
        for coll, obj, cuts in (("electrons", "electron", sel.electron), ("muons", "muon", sel.muon),
                                ("photons", "photon", sel.photon)):
            for o in e[coll]:
                if _passes(o["pt"], o["eta"], cuts):
                    kept[obj].append(o)
                    if coll != "photons":
                        groups[0].append((o["pt"], o["eta"], o["phi"], masses[coll], o["charge"]))
        for t in e["taus"]:
            if t["pt"] > 20.0 and abs(t["eta"]) < 2.5 and t["tag"] == 1:
                groups[1].append((t["pt"], t["eta"], t["phi"], t["mass"], t["charge"]))
        for j in e["jets"]:
            near = any((j["eta"] - o["eta"]) ** 2 + ((j["phi"] - o["phi"] + math.pi) % (2 * math.pi) - math.pi) ** 2
                       < sel.overlap_dr ** 2 for obj in sel.overlap_against for o in kept[obj])
            if _passes(j["pt"], j["eta"], sel.jet) and not near:
                groups[2 if j["btag"] else 3].append((j["pt"], j["eta"], j["phi"], j["mass"], 0.0))
        groups[4].append((e["met"]["pt"], 0.0, e["met"]["phi"], 0.0, 0.0))
        slot0 = 0
        for st, count in enumerate(layout.counts):
            for k, (pt, eta, phi, m, q) in enumerate(sorted(groups[st], key=lambda r: -r[0])[:count]):
                energy = math.sqrt((pt * math.cosh(eta)) ** 2 + m * m)
                onehot = [1.0 if t == st else 0.0 for t in range(5)]
                x[i, slot0 + k] = [math.log1p(energy), eta, math.sin(phi), math.cos(phi), math.log1p(m), q, *onehot]
                mask[i, slot0 + k] = True
            slot0 += count
    return x, mask


def _slots_of(ev, layout: SlotLayout, selection: SlotSelection = SEL) -> SlotBatch:
    obj = slot_objects(to_columns(ev, schema_of(ev)), selection, layout)
    n = len(ev)
    return slot_batch(obj.nodes, obj.mass, obj.slot, counts_to_offsets(obj.counts), layout, np.zeros(n),
                      np.ones(n), np.arange(n))


@pytest.mark.parametrize("layout", [SlotLayout(), SlotLayout(n_lepton=2, n_tau=1, n_bjet=3, n_light=5)])
def test_slots_match_the_per_event_reference_with_record_masses(layout):
    """The vectorised slot builder equals the per-event Python reference on a record: SPEC §2 cuts,
    jet overlap removal, τ cuts and tag, record b-tag, pT order with ties (stored order), truncation
    per type, MET last with eta 0; E and the mass from the record's jet / τ masses and the PDG
    e / μ masses (the bug of the node-based slots: every mass 0)."""
    ev = _record_with_btag(60, seed=3)
    masses = lepton_masses()
    assert masses["electrons"] == pytest.approx(0.000511, rel=1e-3) and masses["muons"] == pytest.approx(0.10566, rel=1e-4)
    sb = _slots_of(ev, layout)
    rx, rmask = reference_slots(ev, layout, masses)
    assert sb.x.shape == (60, layout.n_slots, 11) and np.array_equal(sb.mask.numpy(), rmask)
    np.testing.assert_allclose(sb.x.numpy(), rx, atol=2e-5, rtol=1e-5)
    x, mask = sb.x.numpy(), sb.mask.numpy()
    assert (x[~mask] == 0).all() and mask[:, -1].all()
    st = layout.slot_types
    jet_m = np.expm1(x[:, np.isin(st, [2, 3]), LOG_M][mask[:, np.isin(st, [2, 3])]].astype(np.float64))
    assert jet_m.size > 50 and (jet_m > 0.01).mean() > 0.95  # record jet masses, uniform in [0, 20] GeV
    lep_m = np.expm1(x[:, st == 0, LOG_M][mask[:, st == 0]].astype(np.float64))
    assert lep_m.size > 10 and np.isin(np.round(lep_m, 6), np.round([masses["electrons"], masses["muons"]], 6)).all()
    assert (x[:, st == 1][mask[:, st == 1]][:, LOG_M] > 0.3).all()  # τ: the record's mass (0.5 - 1.8 GeV)
    with pytest.raises(HepfmError, match="nodes"):
        slot_features(np.zeros((3, 6)), np.zeros(3), np.zeros(3, np.int64), np.array([0, 3]))
    with pytest.raises(HepfmError, match="n_met"):
        SlotLayout(n_met=2)


def test_event_selection_of_the_study_masks_failing_events_which_neither_give_nor_receive():
    """``SlotSelection.kishimoto`` (SPEC §7.3: >= 1 lepton, >= 2 jets, >= 1 b-jet) marks exactly the
    events whose selected objects (counted before the slot counts truncate them, from the per-event
    reference with unbounded slots) pass; ``graph_mask`` is that mask; under object replacement a
    masked event keeps label none and its slots, and every replaced object is a copy of an object
    of another *selected* event."""
    ev = _record_with_btag(200, seed=11)
    wide = SlotLayout(n_lepton=30, n_tau=30, n_bjet=30, n_light=30)
    _, rmask = reference_slots(ev, wide, lepton_masses())
    per_type = np.stack([rmask[:, wide.slot_types == t].sum(1) for t in range(5)], 1)
    want = (per_type[:, 0] >= 1) & (per_type[:, 2] + per_type[:, 3] >= 2) & (per_type[:, 2] >= 1)
    assert 20 < want.sum() < 180  # the selection bites both ways on this sample
    sel = SlotSelection.kishimoto(CAT)
    obj = slot_objects(to_columns(ev, schema_of(ev)), sel, SlotLayout())
    np.testing.assert_array_equal(obj.selected, want)
    n = len(ev)
    sb = slot_batch(obj.nodes, obj.mass, obj.slot, counts_to_offsets(obj.counts), SlotLayout(), np.zeros(n),
                    np.ones(n), np.arange(n), obj.selected)
    assert torch.equal(sb.graph_mask, torch.from_numpy(want))
    assert _slots_of(ev, SlotLayout()).selected is None  # no event selection: no mask
    out = ObjectReplacement(p_none=0.0)(sb, np.random.default_rng(5))
    lab, rep = out.labels.numpy(), out.replaced.numpy()
    assert (lab[~want] == NONE_CLASS).all() and (rep[~want] == -1).all()
    assert torch.equal(out.x[~torch.from_numpy(want)], sb.x[~torch.from_numpy(want)])
    x0, m0 = sb.x.numpy(), sb.mask.numpy()
    rows = np.flatnonzero(rep >= 0)
    assert rows.size > 0.8 * want.sum()
    for i in rows:
        obj_x = out.x.numpy()[i, rep[i]]
        donors = [j for j in np.flatnonzero(want) if j != i and (m0[j] & (x0[j] == obj_x).all(1)).any()]
        assert donors, f"event {i}: replaced object not found in another selected event"
    with pytest.raises(HepfmError, match="min_jets"):
        SlotSelection.from_catalog(CAT, min_jets=-1)
    with pytest.raises(HepfmError, match="does not read"):
        slot_objects(to_columns(ev, schema_of(ev)), sel, SlotLayout(n_lepton=0))


def test_boost_keeps_the_mass_and_matches_vector():
    """BoostZ on massive slot objects is the Lorentz boost of ``vector`` (E, eta; pT, phi kept) with
    the same beta per event; the invariant mass is unchanged; MET is untouched; a massless object
    shifts eta by artanh(beta) exactly as before."""
    vector = pytest.importorskip("vector")
    ev = _record_with_btag(80, seed=5)
    obj = slot_objects(to_columns(ev, schema_of(ev)), SEL)
    off = counts_to_offsets(obj.counts)
    out = BoostZ(0.3)(obj.nodes, off, np.random.default_rng(7))
    beta = np.repeat(np.random.default_rng(7).uniform(0.0, 0.3, len(obj.counts)), obj.counts)
    met = obj.nodes[:, 6] == 4
    n, m = obj.nodes[~met], obj.mass[~met]
    v = vector.array({"pt": n[:, 0], "eta": n[:, 1], "phi": n[:, 2], "mass": m}).boostZ(beta=beta[~met])
    np.testing.assert_allclose(out[~met, 1], v.eta, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out[~met, 3], v.E, rtol=1e-9)
    np.testing.assert_allclose(out[:, [0, 2, 4, 5, 6]], obj.nodes[:, [0, 2, 4, 5, 6]])
    np.testing.assert_array_equal(out[met], obj.nodes[met])
    mass_after = np.sqrt(np.clip(out[:, 3] ** 2 - (out[:, 0] * np.cosh(out[:, 1])) ** 2, 0, None))
    np.testing.assert_allclose(mass_after[~met], m, atol=1e-6 * out[~met, 3].max())
    assert (np.abs(out[~met, 1] - n[:, 1]) > 0).mean() > 0.9
    # the slot features after the boost: same log mass, E of vector
    x, mask = slot_features(out, obj.mass, obj.slot, off)
    x0, _ = slot_features(obj.nodes, obj.mass, obj.slot, off)
    np.testing.assert_array_equal(x[..., LOG_M], x0[..., LOG_M])
    massless = np.array([[50.0, 0.7, 0.1, 50.0 * math.cosh(0.7), 0, 0, 0]])
    moved = BoostZ(0.3)(massless, np.array([0, 1]), np.random.default_rng(1))
    b1 = np.random.default_rng(1).uniform(0.0, 0.3, 1)[0]
    assert moved[0, 1] == pytest.approx(0.7 + math.atanh(b1), abs=1e-12)
    assert moved[0, 3] == pytest.approx(50.0 * math.cosh(moved[0, 1]), rel=1e-12)


@pytest.mark.parametrize("resort", [True, False])
def test_object_replacement_labels_agree_with_replacements(resort):
    """Label none => the event is unchanged; label t => exactly one object of type t differs, the
    slot ``replaced`` holds an object of type t copied from another event of the batch, every other
    slot (other types, mask) is as before; with resort the block stays pT-ordered (pT from E and the
    mass). Same rng seed -> same bytes; every class occurs."""
    b = synthetic_slots(64, 5)
    pre = ObjectReplacement(p_none=0.2, resort=resort)
    out = pre(b, np.random.default_rng(1))
    again = pre(b, np.random.default_rng(1))
    assert torch.equal(out.x, again.x) and torch.equal(out.labels, again.labels)
    assert set(out.labels.tolist()) == set(range(len(PRETEXT_CLASSES)))
    assert torch.equal(out.mask, b.mask)
    starts = np.r_[0, np.cumsum(SlotLayout().counts)]
    for i in range(b.n_graph):
        lab, slot = int(out.labels[i]), int(out.replaced[i])
        if lab == NONE_CLASS:
            assert slot == -1 and torch.equal(out.x[i], b.x[i])
            continue
        lo, hi = starts[lab], starts[lab + 1]
        assert lo <= slot < hi and out.mask[i, slot]
        outside = torch.ones(b.x.shape[1], dtype=torch.bool)
        outside[lo:hi] = False
        assert torch.equal(out.x[i, outside], b.x[i, outside])
        donor_obj = out.x[i, slot]
        others = torch.arange(b.n_graph) != i
        same = ((b.x[others, lo:hi] - donor_obj).abs().amax(-1) < 1e-6) & b.mask[others, lo:hi]
        assert bool(same.any())  # the donor's object comes from another event of the batch
        before = b.x[i, lo:hi][b.mask[i, lo:hi]]
        after = out.x[i, lo:hi][out.mask[i, lo:hi]]
        kept = sum(bool(((after - r).abs().max(1).values < 1e-6).any()) for r in before)
        assert kept >= len(before) - 1  # the multiset of the block: one object removed, the donor's added
        if resort:
            pt = slot_pt(after.numpy())
            assert bool((pt[:-1] >= pt[1:] - 1e-3).all())


def test_object_replacement_policies():
    """p_none = 1 leaves every event unchanged; the 'none' empty-slot policy labels events lacking the
    drawn type as none (unchanged), 'redraw' never does for events that have replaceable objects; a
    restricted type list only replaces those types; bad settings raise HepfmError."""
    b = synthetic_slots(48, 9)
    out = ObjectReplacement(p_none=1.0)(b, np.random.default_rng(0))
    assert (out.labels == NONE_CLASS).all() and torch.equal(out.x, b.x)
    only_tau = ObjectReplacement(p_none=0.0, types=("tau",), empty="none")(b, np.random.default_rng(0))
    has_tau = b.mask[:, 4:8].any(1)
    assert 0 < int(has_tau.sum()) < b.n_graph
    assert torch.equal(only_tau.labels == 1, has_tau) and (only_tau.labels[~has_tau] == NONE_CLASS).all()
    redraw = ObjectReplacement(p_none=0.0)(b, np.random.default_rng(0))
    assert (redraw.labels != NONE_CLASS).all()  # MET is in every event
    for bad in (dict(p_none=1.5), dict(types=("photon",)), dict(empty="fill")):
        with pytest.raises(HepfmError):
            ObjectReplacement(**bad)


@pytest.fixture(scope="module")
def store_urls(tmp_path_factory) -> list[str]:
    """Two Zarr stores of synthetic events with taus (no record b-tag: emulated like the paper graph),
    and one without taus."""
    root = tmp_path_factory.mktemp("slot_stores")
    out = []
    for i, proc in enumerate(("ttbar", "ttH", "tttt")):
        ev = synthetic_events(200, seed=40 + i, first_event_id=1_000_000 * (i + 1), taus=proc != "tttt")
        write_store(str(root), proc, [(ev, SampleInfo(process=proc, source="synthetic"))], events_per_shard=70,
                    progress=False, seed=11)
        out.append(str(root / proc))
    return out


def _loader_kw(**kw):
    aug = Compose(RotatePhi(), FlipEta(), BoostZ(0.3))
    return dict(device="cpu", batch_size=32, seed=3, block_size=32, window_blocks=3, augment=aug, catalog=CAT,
                representation=SlotRepresentation(SEL, pretext=ObjectReplacement())) | kw


def test_loader_slot_batches_exactly_once_same_bytes_any_workers_and_resume(store_urls):
    """``make_loader(representation=SlotRepresentation(sel, pretext=ObjectReplacement()))`` with the SPEC §7.3
    augmentations: every train event exactly once per epoch; the same bytes (slots, pretext labels,
    replaced slots) with 0 and 2 DataLoader worker processes; a JSON checkpoint after 2 batches
    resumes to exactly the rest of the epoch."""
    urls = store_urls[:2]
    a = list(make_loader(urls, num_workers=0, **_loader_kw()))
    b = list(make_loader(urls, num_workers=2, **_loader_kw()))
    assert all(isinstance(x, SlotBatch) for x in a + b) and len(a) == len(b)
    expected = set()
    for u in urls:
        st = open_store(u)
        for info in st.shards("train"):
            expected |= set(st.read_record(info)["event_id"].tolist())
    ids = [i for x in a for i in x.event_id.tolist()]
    assert len(ids) == len(set(ids)) and set(ids) == expected
    by = {tuple(y.event_id.tolist()): y for y in b}
    for x in a:
        y = by[tuple(x.event_id.tolist())]
        for f in ("x", "mask", "labels", "replaced", "weights"):
            assert torch.equal(getattr(x, f), getattr(y, f)), f
    assert (np.expm1(torch.cat([x.x[:, 8:20, LOG_M][x.mask[:, 8:20]] for x in a]).numpy()) > 0.01).mean() > 0.95
    first = make_loader(urls, num_workers=0, **_loader_kw())
    it = iter(first)
    head = [next(it) for _ in range(2)]
    state = json.loads(json.dumps(first.state_dict()))
    del it
    again = make_loader(urls, num_workers=0, **_loader_kw())
    again.load_state_dict(state)
    got = head + list(again)
    assert [g.event_id.tolist() for g in got] == [f.event_id.tolist() for f in a]
    assert all(torch.equal(g.x, f.x) and torch.equal(g.labels, f.labels) for g, f in zip(got, a))


def test_emulated_btag_and_selection_equal_the_paper_graph(store_urls):
    """On a record without a detector b-tag, the slots' b-jets and light jets are the paper graph's
    b-tagged and untagged jets of the same store (same cuts, overlap removal, truth flavour and
    b-tag seed), with the record's masses instead of 0; leptons are its electrons and muons."""
    st = open_store(store_urls[0])
    kw = _loader_kw(representation=SlotRepresentation(SEL), augment=None, shuffle=False)
    slots = {int(e): (x, m) for b in make_loader([store_urls[0]], num_workers=0, **kw)
             for e, x, m in zip(b.event_id, b.x.numpy(), b.mask.numpy())}
    lay = SlotLayout()
    checked = 0
    for info in st.shards("train"):
        d = st.read_shard(info)
        off = counts_to_offsets(d.n_node.astype(np.int64))
        for i, eid in enumerate(d.event_id.tolist()):
            nodes = d.nodes[off[i]:off[i + 1]]
            x, m = slots[int(eid)]
            for st_type, want in ((2, (nodes[:, 6] == 0) & (nodes[:, 4] == 1)), (3, (nodes[:, 6] == 0) & (nodes[:, 4] == 0)),
                                  (0, np.isin(nodes[:, 6], [1, 2]))):
                cols = lay.slot_types == st_type
                paper_pt = np.sort(nodes[want, 0])[::-1][:cols.sum()]
                np.testing.assert_allclose(slot_pt(x[cols][m[cols]]), paper_pt, rtol=2e-4)
            checked += 1
    assert checked > 100


def test_missing_record_fields_fail_naming_store_representation_and_field(store_urls, tmp_path):
    """A record without taus fails when the loader is made (the representation's one input check)
    naming the store, 'slots' and 'taus' (and works with SlotLayout(n_tau=0)); btag='record' on a
    record without jets.btag names jets.btag; a store without the record (record=False) says so."""
    no_tau = store_urls[2]
    with pytest.raises(StoreError, match=r"tttt.*'slots'.*taus\.pt"):
        next(iter(make_loader([no_tau], num_workers=0, **_loader_kw())))
    ok = next(iter(make_loader([no_tau], num_workers=0, **_loader_kw(
        representation=SlotRepresentation(SEL, layout=SlotLayout(n_tau=0))))))
    assert ok.x.shape[1] == 17
    with pytest.raises(StoreError, match=r"'slots'.*jets\.btag"):
        next(iter(make_loader([store_urls[0]], num_workers=0, **_loader_kw(
            representation=SlotRepresentation(SlotSelection.from_catalog(CAT, btag="record"))))))
    write_store(str(tmp_path), "ttbar", [(synthetic_events(40, 1, taus=True), SampleInfo("ttbar", "synthetic"))],
                progress=False, record=False)
    with pytest.raises(StoreError, match=r"ttbar.*'slots' reads the stored event record"):
        next(iter(make_loader([str(tmp_path / "ttbar")], num_workers=0, **_loader_kw())))
    with pytest.raises(HepfmError, match="btag must be"):
        SlotSelection.from_catalog(CAT, btag="maybe")
    assert SLOT_TYPES[-1] == "met" and S_ETA == 1 and LOG_E == 0
