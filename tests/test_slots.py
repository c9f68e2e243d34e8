"""Typed object slots (SPEC §7.3): SlotBatch from packed nodes, the object-replacement pretext,
and slot batches through the real streaming loader (DataLoader worker processes)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hepfm_data.errors import HepfmError
from hepfm_data.events import SampleInfo
from hepfm_data.loader import BoostZ, Compose, FlipEta, HostBatch, RotatePhi, make_loader
from hepfm_data.slots import (
    NONE_CLASS,
    PRETEXT_CLASSES,
    SLOT_TYPES,
    ObjectReplacement,
    SlotBatch,
    SlotLayout,
    SlotTransform,
    slot_arrays,
)
from hepfm_data.store import open_store, write_store
from hepfm_data.testing import packed_nodes as random_nodes
from hepfm_data.testing import synthetic_events


def reference_slots(nodes: np.ndarray, n_node: np.ndarray, layout: SlotLayout) -> tuple[np.ndarray, np.ndarray]:
    """The plain per-event Python definition of the slots."""
    b, s = len(n_node), layout.n_slots
    x, mask = np.zeros((b, s, 11), np.float32), np.zeros((b, s), bool)
    start = 0
    for i, n in enumerate(n_node):
        groups: dict[int, list] = {k: [] for k in range(5)}
        for row in nodes[start:start + n]:
            t = int(row[6])
            st = {1: 0, 2: 0, 5: 1, 4: 4}.get(t, (2 if row[4] > 0.5 else 3) if t == 0 else None)
            if st is not None:
                groups[st].append(row)
        start += n
        slot0 = 0
        for st, count in enumerate(layout.counts):
            for j, row in enumerate(sorted(groups[st], key=lambda r: -float(r[0]))[:count]):
                pt, eta, phi, e = (float(v) for v in row[:4])
                if st == 4:
                    eta, e = 0.0, pt
                m = math.sqrt(max(e * e - (pt * math.cosh(eta)) ** 2, 0.0))
                onehot = [1.0 if k == st else 0.0 for k in range(5)]
                charge = float(row[5]) if st in (0, 1) else 0.0
                x[i, slot0 + j] = [math.log1p(e), eta, math.sin(phi), math.cos(phi), math.log1p(m), charge, *onehot]
                mask[i, slot0 + j] = True
            slot0 += count
    return x, mask


@pytest.mark.parametrize("layout", [SlotLayout(), SlotLayout(n_lepton=2, n_tau=1, n_bjet=3, n_light=5)])
def test_slots_match_the_per_event_reference(layout):
    """The vectorised slot builder equals the per-event Python reference (types, pT order with ties,
    truncation per type, photons dropped, MET last with eta 0, log E / log m, charge of leptons and
    taus only) for the default layout and for other counts."""
    nodes, n_node = random_nodes(40, seed=3)
    x, mask = slot_arrays(nodes, np.r_[0, np.cumsum(n_node)], layout)
    rx, rmask = reference_slots(nodes, n_node, layout)
    assert x.shape == (40, layout.n_slots, 11) and np.array_equal(mask, rmask)
    np.testing.assert_allclose(x, rx, atol=2e-4, rtol=1e-5)
    assert (x[~mask] == 0).all() and mask[:, -1].all()  # zero padding; MET always present
    host = HostBatch(torch.from_numpy(nodes), torch.from_numpy(n_node), torch.arange(40), torch.ones(40),
                     torch.arange(40) + 7)
    sb = SlotBatch.from_host(host, layout)
    assert torch.equal(sb.x, torch.from_numpy(x)) and sb.slot_type.shape == (40, layout.n_slots)
    assert sb.slot_type[0].tolist() == np.repeat(np.arange(5), layout.counts).tolist()
    with pytest.raises(HepfmError, match="nodes must have shape"):
        slot_arrays(nodes[:, :6], np.r_[0, np.cumsum(n_node)])
    with pytest.raises(HepfmError, match="n_met"):
        SlotLayout(n_met=2)


def _batch(seed: int = 5, n: int = 64) -> SlotBatch:
    nodes, n_node = random_nodes(n, seed)
    return SlotBatch.from_nodes(nodes, n_node, np.zeros(n), np.ones(n), np.arange(n))


@pytest.mark.parametrize("resort", [True, False])
def test_object_replacement_labels_agree_with_replacements(resort):
    """Label none => the event is unchanged; label t => exactly one object of type t differs, the
    slot ``replaced`` holds an object of type t copied from another event of the batch, every other
    slot (other types, mask) is as before; with resort the block stays pT-ordered. Same rng seed ->
    same bytes; every class occurs."""
    b = _batch()
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
        # the multiset of the block: one original object removed, the donor's added
        kept = sum(bool(((after - r).abs().max(1).values < 1e-6).any()) for r in before)
        assert kept >= len(before) - 1
        if resort:
            e = after[:, 0].exp() - 1
            pt = e / torch.cosh(after[:, 1])
            assert bool((pt[:-1] >= pt[1:] - 1e-3).all())


def test_object_replacement_policies():
    """p_none = 1 leaves every event unchanged; the 'none' empty-slot policy labels events lacking the
    drawn type as none (unchanged), 'redraw' never does for events that have replaceable objects; a
    restricted type list only replaces those types; bad settings raise HepfmError."""
    b = _batch(seed=9, n=48)
    out = ObjectReplacement(p_none=1.0)(b, np.random.default_rng(0))
    assert (out.labels == NONE_CLASS).all() and torch.equal(out.x, b.x)
    only_tau = ObjectReplacement(p_none=0.0, types=("tau",), empty="none")(b, np.random.default_rng(0))
    has_tau = b.mask[:, 4:8].any(1)
    assert torch.equal(only_tau.labels == 1, has_tau) and (only_tau.labels[~has_tau] == NONE_CLASS).all()
    redraw = ObjectReplacement(p_none=0.0)(b, np.random.default_rng(0))
    assert (redraw.labels != NONE_CLASS).all()  # MET is in every event
    for bad in (dict(p_none=1.5), dict(types=("photon",)), dict(empty="fill")):
        with pytest.raises(HepfmError):
            ObjectReplacement(**bad)


@pytest.fixture(scope="module")
def store_urls(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("slot_stores")
    out = []
    for i, proc in enumerate(("ttbar", "ttH")):
        ev = synthetic_events(200, seed=40 + i, first_event_id=1_000_000 * (i + 1))
        write_store(str(root), proc, [(ev, SampleInfo(process=proc, source="synthetic"))], events_per_shard=70,
                    progress=False)
        out.append(str(root / proc))
    return out


def test_loader_yields_slot_batches_exactly_once_same_bytes_any_workers(store_urls):
    """``make_loader(transform=SlotTransform(pretext=ObjectReplacement()))`` with the SPEC §7.3
    augmentations: every train event exactly once per epoch as SlotBatch; the same bytes (slots,
    pretext labels, replaced slots) with 0 and 2 DataLoader worker processes; without the pretext
    the slots equal SlotBatch.from_host of the plain HostBatch stream."""
    aug = Compose(RotatePhi(), FlipEta(), BoostZ(0.3))
    kw = dict(device="cpu", batch_size=32, seed=3, block_size=32, window_blocks=3, augment=aug,
              transform=SlotTransform(pretext=ObjectReplacement()))
    a = list(make_loader(store_urls, num_workers=0, **kw))
    b = list(make_loader(store_urls, num_workers=2, **kw))
    assert all(isinstance(x, SlotBatch) for x in a + b) and len(a) == len(b)
    expected = set()
    for u in store_urls:
        st = open_store(u)
        for info in st.shards("train"):
            expected |= set(st.read_shard(info).event_id.tolist())
    ids = [i for x in a for i in x.event_id.tolist()]
    assert len(ids) == len(set(ids)) and set(ids) == expected
    by = {tuple(y.event_id.tolist()): y for y in b}
    for x in a:
        y = by[tuple(x.event_id.tolist())]
        for f in ("x", "mask", "labels", "replaced", "weights"):
            assert torch.equal(getattr(x, f), getattr(y, f)), f
    plain_kw = {**kw, "transform": SlotTransform()}
    slots = list(make_loader(store_urls, num_workers=0, **plain_kw))
    host = list(make_loader(store_urls, num_workers=0, **{k: v for k, v in kw.items() if k != "transform"}))
    for s, h in zip(slots, host):
        assert torch.equal(s.x, SlotBatch.from_host(h).x) and s.replaced is None
        assert torch.equal(s.labels, h.labels)
    assert SLOT_TYPES[-1] == "met"
