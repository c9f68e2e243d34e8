"""Numba kernels against plain numpy / awkward / vector references, on random
inputs and edge cases (empty events, zero events, single object, phi wrap-around)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import vector

from hepfm_data.core.catalog import load_catalog
from hepfm_data.kernels import process_block
from hepfm_data.kernels._hash import uniform01
from hepfm_data.kernels.btag import btag_decisions, efficiency, efficiency_table, seed_key
from hepfm_data.kernels.features import (
    assemble_nodes,
    gather_event_node_matrix,
    node_matrix,
    pack_node_rows,
)
from hepfm_data.kernels.labels import label_tables, multilabels
from hepfm_data.kernels.selection import delta_phi, jet_flavour, object_mask, overlap_mask
from hepfm_data.testing import synthetic_events

CAT = load_catalog()


def offsets_of(counts):
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def jagged(rng, n_events, mean, max_eta=3.0, ones_at=1):
    counts = rng.poisson(mean, n_events)
    counts[0], counts[2] = 0, 0  # empty events
    counts[ones_at] = 1  # a single-object event
    n = int(counts.sum())
    return counts, {
        "pt": (rng.exponential(40.0, n) + 5).astype(np.float32),
        "eta": rng.uniform(-max_eta, max_eta, n).astype(np.float32),
        "phi": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
    }


def vec(counts, cols):
    return vector.zip({k: ak.unflatten(v, counts) for k, v in cols.items()} | {
        "mass": ak.unflatten(np.zeros(len(cols["pt"]), np.float32), counts)})


def test_delta_phi_wraps_into_minus_pi_pi():
    """delta_phi matches the vector library and lands in [-pi, pi) across the +-pi seam."""
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-np.pi, np.pi, 500), rng.uniform(-np.pi, np.pi, 500)
    a[:3], b[:3] = [3.1, -3.1, np.pi - 1e-3], [-3.1, 3.1, -np.pi + 1e-3]
    got = np.array([delta_phi(x, y) for x, y in zip(a, b)])
    ref = vector.array({"pt": np.ones(500), "phi": b}).deltaphi(vector.array({"pt": np.ones(500), "phi": a}))
    np.testing.assert_allclose(got, ref, atol=1e-12)
    assert np.all(got >= -np.pi) and np.all(got < np.pi)
    assert abs(got[0] - (2 * np.pi - 6.2)) < 1e-9  # 3.1 -> -3.1 is a small step across the seam


@pytest.mark.parametrize("obj", ["photon", "electron", "muon", "jet"])
def test_object_mask_matches_numpy_with_boundaries(obj):
    """Kinematic cuts equal a numpy expression, including pT exactly at threshold and the crack edges."""
    c = getattr(CAT.selection, obj)
    rng = np.random.default_rng(2)
    pt = rng.uniform(0, 60, 2000).astype(np.float32)
    eta = rng.uniform(-3, 3, 2000).astype(np.float32)
    pt[:4] = c.pt_min
    eta[4:8] = [c.abs_eta_max, -c.abs_eta_max, 1.37, 1.52]
    lo, hi = c.eta_crack or (1.0, 0.0)
    got = object_mask(pt, eta, c.pt_min, c.pt_inclusive, c.abs_eta_max, lo, hi)
    a = np.abs(eta)
    ref = ((pt >= c.pt_min) if c.pt_inclusive else (pt > c.pt_min)) & (a <= c.abs_eta_max)
    if c.eta_crack:
        ref &= ~((a > lo) & (a < hi))
    np.testing.assert_array_equal(got, ref)
    assert got[0] == c.pt_inclusive or abs(eta[0]) > c.abs_eta_max


def test_overlap_removal_matches_vector_delta_r():
    """Jets within dR < 0.4 of a kept object are removed, as computed by vector's deltaR (phi wrap included)."""
    rng = np.random.default_rng(3)
    n_ev = 300
    jc, jets = jagged(rng, n_ev, 5)  # event 1 holds a single jet
    oc, oth = jagged(rng, n_ev, 2)
    n_o = int(oc.sum())
    jo, oo = offsets_of(jc), offsets_of(oc)
    jets["eta"][jo[1]], jets["phi"][jo[1]] = 0.5, np.float32(3.10)
    oth["eta"][oo[1]], oth["phi"][oo[1]] = 0.52, np.float32(-3.12)
    keep_o = rng.uniform(size=n_o) < 0.7
    keep_o[oo[1]] = True
    got = overlap_mask(jets["eta"], jets["phi"], jo, oth["eta"], oth["phi"], keep_o, oo, 0.4)
    vj, vo = vec(jc, jets), vec(oc, oth)[ak.unflatten(keep_o, oc)]
    pairs = ak.cartesian({"j": vj, "o": vo}, axis=1, nested=True)
    ref = ~ak.any(pairs.j.deltaR(pairs.o) < 0.4, axis=2)
    np.testing.assert_array_equal(got, ak.to_numpy(ak.flatten(ref)))
    assert not got[jo[1]]


def test_jet_flavour_prefers_b_over_c():
    """Flavour is 5 when a b quark is within dR, else 4 for a c quark, else 0 (awkward/vector reference)."""
    rng = np.random.default_rng(4)
    n_ev = 300
    jc, jets = jagged(rng, n_ev, 4)
    tc, tru = jagged(rng, n_ev, 3, max_eta=2.5)
    pid = rng.choice(np.array([5, -5, 4, -4, 6, 25], np.int32), int(tc.sum()))
    got = jet_flavour(jets["eta"], jets["phi"], offsets_of(jc), pid, tru["eta"], tru["phi"], offsets_of(tc), 0.4)
    vj, vt = vec(jc, jets), vec(tc, tru)
    apid = np.abs(ak.unflatten(pid, tc))
    pairs = ak.cartesian({"j": vj, "t": vt}, axis=1, nested=True)
    close = pairs.j.deltaR(pairs.t) < 0.4
    p = ak.broadcast_arrays(apid[:, None, :], close)[0]
    has_b, has_c = ak.any(close & (p == 5), axis=2), ak.any(close & (p == 4), axis=2)
    ref = ak.to_numpy(ak.flatten(ak.where(has_b, 5, ak.where(has_c, 4, 0))))
    np.testing.assert_array_equal(got, ref)
    assert set(np.unique(got)) == {0, 4, 5}


def _py_uniform(key: int, event_id: int, index: int) -> float:
    m = (1 << 64) - 1

    def mix(x):
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
        return x ^ (x >> 31)

    g = 0x9E3779B97F4A7C15
    h = mix(key ^ mix((event_id + g) & m) ^ mix((index * g + 1) & m))
    return (h >> 11) / 2.0**53


def test_btag_matches_reference_and_ignores_chunking():
    """b-tag = uniform(seed, event_id, jet index) < catalog efficiency; same decisions in any chunking."""
    table = efficiency_table(CAT.selection.btag)
    pts = np.array([5.0, 30.0, 100.0, 400.0])
    for flav, eff in ((5, CAT.selection.btag.b), (4, CAT.selection.btag.c), (0, CAT.selection.btag.light)):
        np.testing.assert_allclose([efficiency(flav, p, table) for p in pts], eff(pts), rtol=1e-12)
    rng = np.random.default_rng(5)
    counts = rng.poisson(4, 2000)
    off = offsets_of(counts)
    n = int(counts.sum())
    flav = rng.choice(np.array([0, 4, 5], np.int8), n)
    pt = rng.uniform(20, 300, n).astype(np.float32)
    eid = rng.permutation(10**6)[:2000].astype(np.uint64)
    key = seed_key(7)
    got = btag_decisions(flav, pt, off, eid, table, key)
    for i in range(0, 2000, 97):
        for k in range(counts[i]):
            j = off[i] + k
            u = _py_uniform(int(key), int(eid[i]), k)
            assert u == uniform01(key, eid[i], np.uint64(k))
            assert got[j] == (u < efficiency(int(flav[j]), float(pt[j]), table))
    half = 1000
    a = btag_decisions(flav[: off[half]], pt[: off[half]], off[: half + 1], eid[:half], table, key)
    b = btag_decisions(flav[off[half]:], pt[off[half]:], off[half:] - off[half], eid[half:], table, key)
    np.testing.assert_array_equal(np.concatenate([a, b]), got)
    bj = flav == 5
    expected = CAT.selection.btag.b(pt[bj]).mean()
    assert abs(got[bj].mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / bj.sum())
    assert not np.array_equal(got, btag_decisions(flav, pt, off, eid, table, seed_key(8)))


def test_assemble_nodes_matches_awkward_concatenation():
    """Nodes = kept jets, electrons, muons, photons then MET (eta 0), with btag/charge/type columns."""
    rng = np.random.default_rng(6)
    n_ev = 200
    cols, offs, keeps = {}, {}, {}
    for name, mean in (("jet", 4), ("el", 1), ("mu", 1), ("ph", 1)):
        c, d = jagged(rng, n_ev, mean)
        cols[name], offs[name], keeps[name] = d, offsets_of(c), rng.uniform(size=int(c.sum())) < 0.6
    btag = rng.integers(0, 2, offs["jet"][-1]).astype(np.int8)
    ech = rng.choice(np.array([-1, 1], np.int8), offs["el"][-1])
    mch = rng.choice(np.array([-1, 1], np.int8), offs["mu"][-1])
    met_pt = rng.exponential(50, n_ev).astype(np.float32)
    met_phi = rng.uniform(-np.pi, np.pi, n_ev).astype(np.float32)
    types = np.array([0, 1, 2, 3, 4], np.int8)
    j, e, m, p = cols["jet"], cols["el"], cols["mu"], cols["ph"]
    off, npt, neta, nphi, nb, nc, nt = assemble_nodes(
        j["pt"], j["eta"], j["phi"], keeps["jet"], btag, offs["jet"],
        e["pt"], e["eta"], e["phi"], keeps["el"], ech, offs["el"],
        m["pt"], m["eta"], m["phi"], keeps["mu"], mch, offs["mu"],
        p["pt"], p["eta"], p["phi"], keeps["ph"], offs["ph"], met_pt, met_phi, types)

    def coll(name, extra_b=None, extra_c=None, t=0):
        d, o, k = cols[name], offs[name], keeps[name]
        n = len(d["pt"])
        rec = ak.zip({"pt": d["pt"], "eta": d["eta"], "phi": d["phi"],
                      "btag": extra_b if extra_b is not None else np.zeros(n, np.int8),
                      "charge": extra_c if extra_c is not None else np.zeros(n, np.int8),
                      "type": np.full(n, t, np.int8)})
        return ak.unflatten(rec, np.diff(o))[ak.unflatten(k, np.diff(o))]

    met = ak.zip({"pt": met_pt, "eta": np.zeros(n_ev, np.float32), "phi": met_phi, "btag": np.zeros(n_ev, np.int8),
                  "charge": np.zeros(n_ev, np.int8), "type": np.full(n_ev, 4, np.int8)})[:, None]
    ref = ak.concatenate([coll("jet", extra_b=btag), coll("el", extra_c=ech, t=1), coll("mu", extra_c=mch, t=2),
                          coll("ph", t=3), met], axis=1)
    np.testing.assert_array_equal(np.diff(off), ak.to_numpy(ak.num(ref)))
    flat = ak.flatten(ref)
    for name, got in (("pt", npt), ("eta", neta), ("phi", nphi), ("btag", nb), ("charge", nc), ("type", nt)):
        np.testing.assert_array_equal(got, ak.to_numpy(flat[name]))
    mat = node_matrix(npt, neta, nphi, nb, nc, nt)
    e_ref = vector.array({"pt": npt, "eta": neta, "phi": nphi, "mass": np.zeros_like(npt)}).E
    np.testing.assert_allclose(mat[:, 3], e_ref, rtol=2e-6)
    np.testing.assert_array_equal(mat[:, [0, 1, 2, 4, 5, 6]], np.stack([npt, neta, nphi, nb, nc, nt], 1))


def _label_reference(pid, pt, eta, phi, counts, schema):
    rows = []
    o = offsets_of(counts)
    for i in range(len(counts)):
        sl = slice(o[i], o[i + 1])
        p, t, e, f = np.abs(pid[sl]), pt[sl], eta[sl], phi[sl]
        row = [min(int(np.isin(p, c.pids).sum()), 255) for c in schema.counts]
        for part in schema.particles:
            sel = np.flatnonzero(np.isin(p, part.pids))
            sel = sel[np.argsort(-t[sel], kind="stable")]
            vecs = []
            for x, edges in ((t, part.pt_edges), (e, schema.eta_edges), (f, schema.phi_edges)):
                v = np.zeros(len(edges) + 1, np.uint8)
                if len(sel) > part.rank:
                    v[np.searchsorted(edges, x[sel[part.rank]], side="right")] = 1
                vecs.append(v)
            row += list(np.concatenate(vecs))
        rows.append(row)
    return np.array(rows, dtype=np.uint8).reshape(len(counts), schema.n_labels)


def test_multilabels_match_numpy_reference():
    """38 labels = 5 counts + 3 x (pt 3 + eta 4 + phi 4) one-hot bins; tops by pT; zeros when absent."""
    rng = np.random.default_rng(7)
    n_ev = 400
    counts = rng.integers(0, 7, n_ev)
    counts[:2] = [0, 1]
    n = int(counts.sum())
    pid = rng.choice(np.array([25, 36, 6, -6, 23, 24, -24, 5, 4], np.int32), n)
    pt = rng.choice(np.array([10.0, 30.0, 150.0, 200.0, 300.0, 500.0], np.float32), n)
    eta = rng.choice(np.array([-2.0, -1.5, 0.0, 0.7, 1.5, 3.0], np.float32), n)
    phi = rng.uniform(-np.pi, np.pi, n).astype(np.float32)
    schema = CAT.labels
    got = multilabels(pid, pt, eta, phi, offsets_of(counts), *label_tables(schema))
    assert got.shape == (n_ev, 38) == (n_ev, schema.n_labels)
    np.testing.assert_array_equal(got, _label_reference(pid, pt, eta, phi, counts, schema))
    assert not got[0].any()
    many = multilabels(np.full(300, 6, np.int32), np.ones(300, np.float32), np.zeros(300, np.float32),
                       np.zeros(300, np.float32), np.array([0, 300]), *label_tables(schema))
    assert many[0, 1] == 255  # counts clip to uint8


def test_process_block_edge_cases():
    """Zero events and events without objects give MET-only graphs; ids, weights and shapes carry through."""
    ev = synthetic_events(40, seed=9, first_event_id=1000)
    empty = ak.with_field(ev, ev.jets[:, :0], "jets")
    for f in ("electrons", "muons", "photons", "truth"):
        empty = ak.with_field(empty, empty[f][:, :0], f)
    b = process_block(empty, CAT)
    np.testing.assert_array_equal(np.diff(b.offsets), 1)
    assert np.all(b.type == 4) and not b.multilabel.any()
    np.testing.assert_array_equal(b.event_id, np.arange(1000, 1040))
    z = process_block(ev[:0], CAT)
    assert z.offsets.tolist() == [0] and z.pt.shape == (0,) and z.multilabel.shape == (0, 38)


def test_gather_of_single_node_events_equals_node_matrix_rows():
    """The loader's window gather, on events of one node each, gives exactly ``node_matrix(...)[rows]``
    (energy bits included) for rows in random order, repeated and empty gathers included."""
    rng = np.random.default_rng(7)
    n = 5000
    cols = (rng.exponential(40, n).astype(np.float32), rng.normal(0, 2, n).astype(np.float32),
            rng.uniform(-np.pi, np.pi, n).astype(np.float32), rng.integers(0, 2, n).astype(np.int8),
            rng.integers(-1, 2, n).astype(np.int8), rng.integers(0, 5, n).astype(np.int8))
    ref = node_matrix(*cols)
    for rows in (rng.permutation(n), rng.integers(0, n, 3 * n), np.zeros(0, np.int64)):
        rows = rows.astype(np.int64)
        packed = pack_node_rows(*cols, np.empty((n, 4), np.float32))
        out, _ = gather_event_node_matrix(packed, np.arange(n + 1, dtype=np.int64), rows,
                                          np.empty((rows.shape[0], 7), np.float32))
        assert out.view(np.uint32).tobytes() == ref[rows].view(np.uint32).tobytes()


def test_gather_event_node_matrix_equals_numpy_event_gather():
    """The loader's prefetched gather by event gives exactly the numpy reference
    ``node_matrix(...)[rows of events perm]`` (energy bits included) with its offsets, for a
    permutation, repeated events, empty events, events read in several packed parts and no events;
    too small an output buffer is refused."""
    rng = np.random.default_rng(11)
    counts = rng.integers(0, 15, 3000)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    n = int(offsets[-1])
    cols = (rng.exponential(40, n).astype(np.float32), rng.normal(0, 2, n).astype(np.float32),
            rng.uniform(-np.pi, np.pi, n).astype(np.float32), rng.integers(0, 2, n).astype(np.int8),
            rng.integers(-1, 2, n).astype(np.int8), rng.integers(0, 5, n).astype(np.int8))
    ref = node_matrix(*cols)
    packed = np.empty((n, 4), np.float32)
    cut = int(offsets[1234])  # two parts packed into one row matrix, as the loader packs a window's blocks
    pack_node_rows(*(c[:cut] for c in cols), packed[:cut])
    pack_node_rows(*(c[cut:] for c in cols), packed[cut:])
    for perm in (rng.permutation(3000), rng.integers(0, 3000, 5000), np.zeros(0, np.int64)):
        rows = np.concatenate([np.arange(offsets[e], offsets[e + 1]) for e in perm] + [np.zeros(0, np.int64)])
        out, new = gather_event_node_matrix(packed, offsets, perm, np.empty((rows.shape[0] + 3, 7), np.float32))
        assert out.view(np.uint32).tobytes() == ref[rows.astype(np.int64)].view(np.uint32).tobytes()
        np.testing.assert_array_equal(new, np.concatenate([[0], np.cumsum(counts[perm])]))
    with pytest.raises(ValueError, match="out has 2 rows"):
        gather_event_node_matrix(packed, offsets, np.arange(10), np.empty((2, 7), np.float32))
