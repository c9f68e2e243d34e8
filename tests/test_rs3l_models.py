"""hepfm_models.rs3l: NT-Xent against a direct numpy formula, the per-event kNN against brute
force, the EdgeConv backbone's shapes and per-event independence, Wasserstein against its definition."""

from __future__ import annotations

import numpy as np
import torch

from hepfm_models import EdgeConvBackbone, LinearProbe, nt_xent, wasserstein_1d
from hepfm_models.rs3l import BackboneConfig, knn_indices


def nt_xent_numpy(a: np.ndarray, b: np.ndarray, t: float) -> float:
    z = np.concatenate([a, b])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n = len(a)
    total = 0.0
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        num = np.exp(z[i] @ z[p] / t)
        den = sum(np.exp(z[i] @ z[k] / t) for k in range(2 * n) if k != i)  # the positive is in it
        total += -np.log(num / den)
    return total / (2 * n)


def test_nt_xent_matches_numpy_formula_and_masks_padding():
    """Loss = mean over 2B anchors of -log(exp(s_pos/T) / sum_{k != anchor} exp(s_k/T)), default T 0.1;
    a masked pair changes nothing for the rest; aligned pairs give a lower loss than shuffled ones."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    for t in (0.1, 0.5):
        got = nt_xent(torch.tensor(a), torch.tensor(b), t).item()
        assert abs(got - nt_xent_numpy(a, b, t)) < 1e-9
    assert abs(nt_xent(torch.tensor(a), torch.tensor(b)).item() - nt_xent_numpy(a, b, 0.1)) < 1e-9
    mask = torch.tensor([True] * 5 + [False])
    assert abs(nt_xent(torch.tensor(a), torch.tensor(b), mask=mask).item() - nt_xent_numpy(a[:5], b[:5], 0.1)) < 1e-9
    near = a + 0.05 * rng.normal(size=a.shape)
    assert nt_xent(torch.tensor(a), torch.tensor(near)).item() < nt_xent(torch.tensor(a), torch.tensor(b)).item()


def test_knn_matches_brute_force_per_event_with_wrapped_phi():
    """Neighbours are the k nearest other nodes of the same event in (eta, phi) with phi wrapped at ±π;
    events smaller than k + 1 mark the missing neighbours invalid."""
    rng = np.random.default_rng(1)
    n_node = torch.tensor([5, 1, 9, 3])
    coords = torch.tensor(np.stack([rng.normal(size=18), rng.uniform(-np.pi, np.pi, 18)], 1))
    nbr, valid = knn_indices(coords, n_node, k=4)
    start = np.concatenate([[0], np.cumsum(n_node.numpy())])
    for e in range(4):
        for i in range(start[e], start[e + 1]):
            d = []
            for j in range(start[e], start[e + 1]):
                if j != i:
                    dphi = (coords[i, 1] - coords[j, 1] + np.pi) % (2 * np.pi) - np.pi
                    d.append(((coords[i, 0] - coords[j, 0]) ** 2 + dphi ** 2, j))
            want = [j for _, j in sorted(d)[:4]]
            got = nbr[i][valid[i]].tolist()
            assert got == want


def test_backbone_is_per_event_and_permutation_invariant():
    """[B, 8] embeddings; an event's embedding depends only on its own nodes (batching with another
    event changes nothing) and not on their order; the fixed probe trains only its Linear layer."""
    torch.manual_seed(0)
    model = EdgeConvBackbone(BackboneConfig(width=16, k=3)).double()
    rng = np.random.default_rng(2)

    def event(n):
        x = np.zeros((n, 7))
        x[:, 0] = rng.uniform(20, 200, n)
        x[:, 1], x[:, 2] = rng.normal(size=n), rng.uniform(-np.pi, np.pi, n)
        x[:, 3] = x[:, 0] * np.cosh(x[:, 1])
        x[:, 6] = rng.integers(0, 4, n)
        return torch.tensor(x)

    e1, e2 = event(6), event(4)
    both = model.forward_points(torch.cat([e1, e2]), torch.tensor([6, 4]))
    alone = model.forward_points(e1, torch.tensor([6]))
    perm = model.forward_points(e1[torch.randperm(6)], torch.tensor([6]))
    assert both.shape == (2, 8)
    torch.testing.assert_close(both[0], alone[0])
    torch.testing.assert_close(perm[0], alone[0])
    probe = LinearProbe(model, fixed=True)
    assert [n for n, p in probe.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]


def test_wasserstein_matches_sorted_difference():
    """For equal-size unweighted samples the 1-D Wasserstein distance is mean |sort(a) - sort(b)|."""
    rng = np.random.default_rng(3)
    a, b = rng.uniform(size=500), rng.beta(2, 3, size=500)
    assert abs(wasserstein_1d(torch.tensor(a), torch.tensor(b)) - np.mean(np.abs(np.sort(a) - np.sort(b)))) < 1e-12
    assert wasserstein_1d(torch.tensor(a), torch.tensor(a)) == 0.0


def test_edgeconv_factored_first_layer_matches_the_edge_mlp_on_concatenated_features():
    """forward_points' factored first edge layer equals the edge MLP applied to [h_i, h_j - h_i] per edge."""
    from hepfm_models.rs3l import EdgeConvBackbone

    torch.manual_seed(0)
    model = EdgeConvBackbone.for_constituents(BackboneConfig(width=16, k=5))
    n_node = torch.tensor([7, 3, 1])
    nodes = torch.randn(int(n_node.sum()), 15)
    got = model.forward_points(nodes, n_node)
    nbr, valid = knn_indices(nodes[:, list(model.coords)], n_node, 5)
    w = valid.float()
    h = model.embed(nodes)
    for _ in range(model.config.n_iter):
        hi = h[:, None, :].expand(-1, nbr.shape[1], -1)
        msg = model.edge(torch.cat([hi, h[nbr] - hi], dim=-1))
        h = model.norm(h + (msg * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp_min(1.0))
    per_node = model.out(h)
    graph = torch.repeat_interleave(torch.arange(3), n_node)
    want = per_node.new_zeros(3, per_node.shape[1]).index_add_(0, graph, per_node)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
