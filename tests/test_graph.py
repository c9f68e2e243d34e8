"""GraphBatch contract: edges from the torch path, the Numba kernel and a plain numpy reference agree."""

from __future__ import annotations

import dataclasses
import importlib.util
import math

import numpy as np
import pytest
import torch

from hepfm_data.batches.graph import ETA, PHI, GraphBatch, edge_features, fully_connected
from hepfm_data.core.errors import HepfmError
from hepfm_data.kernels.edges import edge_counts, fully_connected_edges, fully_connected_graph


def numpy_reference(eta: np.ndarray, phi: np.ndarray, n_node: np.ndarray):
    """Plain double loop in float64: senders, receivers, [E, 3] features."""
    s, r, f = [], [], []
    start = 0
    for n in n_node:
        for i in range(start, start + n):
            for j in range(start, start + n):
                if i != j:
                    de = float(eta[j]) - float(eta[i])
                    dp = (float(phi[j]) - float(phi[i]) + math.pi) % (2 * math.pi) - math.pi
                    s.append(i)
                    r.append(j)
                    f.append((de, dp, math.hypot(de, dp)))
        start += n
    return np.array(s, np.int64), np.array(r, np.int64), np.array(f, np.float64).reshape(-1, 3)


def random_nodes(seed: int, n_events: int = 40):
    rng = np.random.default_rng(seed)
    n_node = rng.integers(0, 12, n_events)
    n_node[:3] = [0, 1, 2]  # empty, single-node and two-node events are edge cases
    n = int(n_node.sum())
    nodes = np.zeros((n, 7), np.float32)
    nodes[:, 0] = rng.exponential(40, n)
    nodes[:, ETA] = rng.uniform(-3, 3, n)
    nodes[:, PHI] = rng.uniform(-math.pi, math.pi, n)
    return nodes, n_node


@pytest.mark.parametrize("seed", [0, 1])
def test_numba_kernel_equals_numpy_reference_and_torch(seed):
    """The Numba kernel, the torch path of graph.py and a float64 double loop give the same edge
    list (order included, no self-edges) and the same features within float32 rounding."""
    nodes, n_node = random_nodes(seed)
    offsets = np.concatenate([[0], np.cumsum(n_node)])
    s, r, deta, dphi, dr, n_edge = fully_connected_edges(nodes[:, ETA], nodes[:, PHI], offsets)
    rs, rr, rf = numpy_reference(nodes[:, ETA], nodes[:, PHI], n_node)
    np.testing.assert_array_equal(s, rs)
    np.testing.assert_array_equal(r, rr)
    assert (s != r).all()
    np.testing.assert_array_equal(n_edge, n_node * (n_node - 1))
    np.testing.assert_array_equal(edge_counts(offsets), n_edge)
    got = np.stack([deta, dphi, dr], 1)
    # dphi is periodic: compare the wrapped difference
    np.testing.assert_allclose(got[:, [0, 2]], rf[:, [0, 2]], atol=2e-6)
    assert np.abs((got[:, 1] - rf[:, 1] + np.pi) % (2 * np.pi) - np.pi).max() < 2e-6
    assert (dphi >= -np.pi).all() and (dphi < np.pi + 1e-6).all()

    # the one-pass batch kernel (CPU GraphBatches): the same edges, plus node graph and globals
    g, gs, gr, gf, gn, glob = fully_connected_graph(nodes[:, ETA], nodes[:, PHI], n_node)
    np.testing.assert_array_equal(gs, s)
    np.testing.assert_array_equal(gr, r)
    assert gf.tobytes() == got.astype(np.float32).tobytes()
    np.testing.assert_array_equal(gn, n_edge)
    np.testing.assert_array_equal(g, np.repeat(np.arange(len(n_node)), n_node))
    np.testing.assert_array_equal(glob[:, 0], n_node.astype(np.float32))
    with pytest.raises(ValueError, match="sum to"):
        fully_connected_graph(nodes[:, ETA], nodes[:, PHI], n_node + 1)

    ts, tr, tn = fully_connected(torch.from_numpy(n_node))
    tf = edge_features(torch.from_numpy(nodes[:, ETA]), torch.from_numpy(nodes[:, PHI]), ts, tr)
    np.testing.assert_array_equal(ts.numpy(), s)
    np.testing.assert_array_equal(tr.numpy(), r)
    np.testing.assert_array_equal(tn.numpy(), n_edge)
    np.testing.assert_allclose(tf.numpy(), got, atol=2e-6)


def test_from_nodes_backends_agree_and_fill_every_field():
    """GraphBatch.from_nodes builds the same batch with the Numba and the torch edge backends."""
    nodes, n_node = random_nodes(3, 10)
    args = (torch.from_numpy(nodes), torch.from_numpy(n_node), torch.arange(10))
    ml = torch.from_numpy(np.random.default_rng(3).integers(0, 2, (10, 38)).astype(np.uint8))
    a = GraphBatch.from_nodes(*args, edge_backend="numba", event_id=torch.arange(10) + 100, multilabels=ml)
    b = GraphBatch.from_nodes(*args, edge_backend="torch", event_id=torch.arange(10) + 100, multilabels=ml)
    for name in ("senders", "receivers", "n_edge", "node_graph", "n_node", "labels", "event_id", "globals",
                 "nodes", "weights", "graph_mask", "multilabels"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for f in dataclasses.fields(a):  # the CPU fast path keeps every dtype and shape of the contract
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert (x.dtype, x.shape) == (y.dtype, y.shape), f.name
    torch.testing.assert_close(a.edges, b.edges, atol=2e-6, rtol=0)
    assert a.n_graph == 10 and a.graph_mask.all() and a.weights.eq(1).all()
    assert torch.equal(a.globals[:, 0], torch.from_numpy(n_node).float())
    assert torch.equal(a.edge_graph, a.node_graph[a.receivers])


def test_bad_inputs_raise_clear_errors():
    """Mismatched node counts, a wrong node width and an unknown backend raise HepfmError."""
    with pytest.raises(HepfmError, match="n_node sums to 3"):
        GraphBatch.from_nodes(torch.zeros(4, 7), torch.tensor([1, 2]), torch.zeros(2))
    with pytest.raises(HepfmError, match=r"shape \[N, 7\]"):
        GraphBatch.from_nodes(torch.zeros(3, 6), torch.tensor([1, 2]), torch.zeros(2))
    with pytest.raises(HepfmError, match="edge_backend"):
        GraphBatch.from_nodes(torch.zeros(3, 7), torch.tensor([1, 2]), torch.zeros(2), edge_backend="cuda")


def test_pad_to_fixed_shape_masks_padding():
    """pad_to gives the requested shapes; padding events are masked, weightless and edge-free for real nodes."""
    nodes, n_node = random_nodes(4, 6)
    g = GraphBatch.from_nodes(torch.from_numpy(nodes), torch.from_numpy(n_node), torch.ones(6, dtype=torch.long),
                              event_id=torch.arange(6))
    n, e = g.nodes.shape[0], g.senders.shape[0]
    p = g.pad_to(9, n + 5, e + 7)
    assert p.nodes.shape == (n + 5, 7) and p.senders.shape == (e + 7,) and p.n_graph == 9
    assert int(p.n_node.sum()) == n + 5 and int(p.n_edge.sum()) == e + 7
    assert p.graph_mask.tolist() == [True] * 6 + [False] * 3
    assert p.weights[6:].eq(0).all() and p.event_id[6:].eq(-1).all()
    assert (p.senders[e:] >= n).all() and (p.receivers[e:] >= n).all()
    assert torch.equal(p.node_graph[n:], torch.full((5,), 6))
    with pytest.raises(HepfmError, match="cannot pad"):
        g.pad_to(6, n, e)


@pytest.mark.skipif(importlib.util.find_spec("torch_geometric") is None, reason="torch_geometric not installed")
def test_to_pyg_round_trip():
    """to_pyg keeps nodes, edges and the batch vector."""
    nodes, n_node = random_nodes(5, 5)
    g = GraphBatch.from_nodes(torch.from_numpy(nodes), torch.from_numpy(n_node), torch.zeros(5, dtype=torch.long))
    p = g.to_pyg()
    assert torch.equal(p.x, g.nodes) and torch.equal(p.edge_index, g.edge_index)
    assert torch.equal(p.batch, g.node_graph) and p.num_graphs == 5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_edges_equal_numba_kernel():
    """Edges computed on the GPU by torch equal the Numba CPU kernel."""
    nodes, n_node = random_nodes(6, 200)
    args = (torch.from_numpy(nodes), torch.from_numpy(n_node), torch.zeros(200, dtype=torch.long))
    gpu = GraphBatch.from_nodes(*args, device="cuda")
    cpu = GraphBatch.from_nodes(*args, edge_backend="numba")
    assert gpu.device.type == "cuda"
    assert torch.equal(gpu.senders.cpu(), cpu.senders) and torch.equal(gpu.receivers.cpu(), cpu.receivers)
    torch.testing.assert_close(gpu.edges.cpu(), cpu.edges, atol=2e-6, rtol=0)
