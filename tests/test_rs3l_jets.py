"""RS3L on jet constituents (issue 13): real Pythia 8 + FastJet generation of rs3l_hz / rs3l_zjet with
kept hard processes, real re-simulation into two views (Zarr stores), the jet-pair loader with real
DataLoader workers, the ΔR jet matching against a brute-force reference, the EdgeConv backbone on
point clouds, and the RS3L recipe end to end on jet constituents."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hepfm_data.batches import PointCloudPairs
from hepfm_data.kernels.constituents import match_jets
from hepfm_data.loader import make_loader
from hepfm_data.representations import Paired
from hepfm_data.testing import wide_jet_constituents

pytest.importorskip("pythia8mc")

VIEWS = ("seed", "fsr_up")
N_EVENTS = 24
WIDE = wide_jet_constituents()


@pytest.fixture(scope="module")
def stores(rs3l_jet_stores) -> tuple[Path, dict]:
    return rs3l_jet_stores


def test_match_jets_against_brute_force():
    """Each jet of a is matched to the nearest jet of b in its own event (φ wrapped at ±π) when ΔR < 0.4,
    else -1; events without jets on either side are handled."""
    rng = np.random.default_rng(1)
    na, nb = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    oa, ob = np.concatenate([[0], np.cumsum(na)]), np.concatenate([[0], np.cumsum(nb)])
    ea, pa = rng.uniform(-1, 1, oa[-1]), rng.uniform(-np.pi, np.pi, oa[-1])
    eb, pb = rng.uniform(-1, 1, ob[-1]), rng.uniform(-np.pi, np.pi, ob[-1])
    eb[: min(len(eb), len(ea))] = ea[: len(eb)] + 0.01  # some near matches
    got = match_jets(ea, pa, oa, eb, pb, ob, 0.4)
    for e in range(50):
        for i in range(oa[e], oa[e + 1]):
            best, arg = np.inf, -1
            for j in range(ob[e], ob[e + 1]):
                d = np.hypot(ea[i] - eb[j], (pa[i] - pb[j] + np.pi) % (2 * np.pi) - np.pi)
                if d < best:
                    best, arg = d, j
            assert got[i] == (arg if best < 0.4 else -1)
    assert (got >= 0).any() and (got < 0).any()
    near = match_jets(np.array([0.0]), np.array([3.1]), np.array([0, 1]), np.array([0.0]), np.array([-3.1]),
                      np.array([0, 1]))
    assert near.tolist() == [0]


def test_bad_input_event_unit_and_point_cloud_shapes():
    """Pairing is per jet: an ``event_jets`` representation is refused naming it; pack_points refuses an
    [B, J, P, F] batch with a message (flatten the jets first)."""
    from hepfm_data.core.errors import HepfmError
    from hepfm_models.rs3l import pack_points

    with pytest.raises(HepfmError, match="view pairs of 'event_jets'.*unit 'event'"):
        Paired("event_jets", ["a", "b"])
    with pytest.raises(ValueError, match="flatten"):
        pack_points(torch.zeros(2, 5, 100, 15), torch.zeros(2, 5, 100, dtype=torch.bool))


def _loader(urls: dict, workers: int, epoch: int = 0, spec=WIDE):
    # windows of one block of one batch: each worker owns whole windows, so batches match across worker counts
    nominal = [urls[p]["nominal"] for p in ("rs3l_hz", "rs3l_zjet")]
    views = {urls[p]["nominal"]: [urls[p][v] for v in VIEWS] for p in ("rs3l_hz", "rs3l_zjet")}
    ld = make_loader(nominal, batch_size=8, seed=7, num_workers=workers, device="cpu", block_size=8,
                     window_blocks=1, mixing="none", representation=Paired(spec, views, names=list(VIEWS)))
    ld.set_epoch(epoch)
    return ld, nominal, views


def _pairs(urls: dict, workers: int, epoch: int = 0, spec=WIDE):
    ld, nominal, views = _loader(urls, workers, epoch, spec)
    return list(ld), nominal, views


def _jets(url: str, spec=WIDE) -> dict[tuple[int, int], np.ndarray]:
    """{(event id, jet index): points} of the selected train jets of one store (plain jet loader)."""
    ld = make_loader([url], batch_size=64, block_size=64, shuffle=False, device="cpu", mixing="none",
                     representation=spec)
    return {(int(e), int(j)): p.numpy() for b in ld for e, j, p in zip(b.event_id, b.jet_index, b.points)}


def test_jet_pairs_each_nominal_jet_once_with_its_view_jet(stores):
    """Every selected nominal train jet is in exactly one pair per epoch (or counted in ``unpaired`` when
    its drawn view has no selected jet within ΔR < 0.4): at an even position, its constituents those of
    the plain jet loader, followed by a jet of the same event from the drawn view, equal to that view
    store's selected jet, within ΔR < 0.4 of the nominal axis; both views are used; the batches are the
    same bytes with 0 and 2 DataLoader workers, and the view choice changes with the epoch."""
    _, urls = stores
    a, nominal, views = _pairs(urls, 0)
    b, _, _ = _pairs(urls, 2)
    assert all(isinstance(x, PointCloudPairs) for x in a)
    nom_jets = {k: v for u in nominal for k, v in _jets(u).items()}
    view_jets = [{k: v for u in nominal for k, v in _jets(views[u][i]).items()} for i in range(len(VIEWS))]
    got = [(int(e), int(j)) for x in a for e, j in zip(x.event_id[0::2], x.jet_index[0::2])]
    unpaired = sum(int(x.unpaired) for x in a)
    assert len(got) == len(set(got)) and set(got) <= set(nom_jets) and len(got) + unpaired == len(nom_jets)
    assert len(got) >= 12, (len(got), unpaired)
    used = set()
    for x in a:
        assert torch.equal(x.event_id[0::2], x.event_id[1::2]) and x.view[0::2].eq(-1).all()
        for i in range(0, len(x), 2):
            e, jn, jv, k = int(x.event_id[i]), int(x.jet_index[i]), int(x.jet_index[i + 1]), int(x.view[i + 1])
            np.testing.assert_array_equal(x.points[i].numpy(), nom_jets[(e, jn)])
            np.testing.assert_array_equal(x.points[i + 1].numpy(), view_jets[k][(e, jv)])
            d = np.hypot(float(x.jets[i, 1] - x.jets[i + 1, 1]),
                         (float(x.jets[i, 2] - x.jets[i + 1, 2]) + np.pi) % (2 * np.pi) - np.pi)
            assert d < 0.4
            used.add(k)
    assert used == {0, 1}
    by = {tuple(y.event_id.tolist()): y for y in b}
    assert len(by) == len(a)
    for x in a:
        y = by[tuple(x.event_id.tolist())]
        assert torch.equal(x.points, y.points) and torch.equal(x.view, y.view) and torch.equal(x.unpaired, y.unpaired)
    c, _, _ = _pairs(urls, 0, epoch=1)
    choice = lambda bs: {(int(e), int(j)): int(v) for x in bs for e, j, v in  # noqa: E731
                         zip(x.event_id[0::2], x.jet_index[0::2], x.view[1::2])}
    assert choice(a) != choice(c)


def test_backbone_on_point_clouds_matches_packed_nodes(stores):
    """EdgeConvBackbone on a PointCloudBatch = on its real constituents packed per jet (kNN in the Δη, Δφ
    columns of the 15 RS3L features); padding does not change a jet's embedding; NT-Xent of the pairs."""
    from hepfm_models import nt_xent
    from hepfm_models.rs3l import BackboneConfig, EdgeConvBackbone, pack_points

    _, urls = stores
    batch = next(b for b in _loader(urls, 0)[0] if len(b) >= 4)
    torch.manual_seed(0)
    model = EdgeConvBackbone.for_constituents(BackboneConfig(width=16, k=8))
    z = model(batch)
    assert z.shape == (len(batch), 8)
    nodes, n_node = pack_points(batch.points, batch.mask)
    assert int(n_node.sum()) == int(batch.mask.sum()) and nodes.shape[1] == 15
    torch.testing.assert_close(z, model.forward_points(nodes, n_node))
    one = model.forward_points(nodes[: int(n_node[0])], n_node[:1])
    torch.testing.assert_close(one, z[:1], rtol=1e-5, atol=1e-5)
    assert torch.isfinite(nt_xent(z[0::2], z[1::2]))


def test_rs3l_recipe_tiny_on_jet_constituents(stores, run_rs3l_tiny):
    """recipes/rs3l.py with input: jet_constituents (rs3l_hz vs rs3l_zjet, relaxed |η| cut): pretraining on
    jet pairs, three variants, rejection at 0.3/0.5/0.7 and a Wasserstein distance per view."""
    root, _ = stores
    _, saved = run_rs3l_tiny("rs3l_jets_tiny", root, VIEWS)
    assert saved["representation"] == "jet_constituents"
    assert saved["pretrain_history"] and all(h["pairs"] > 0 for h in saved["pretrain_history"])
