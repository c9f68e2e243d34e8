"""hepfm_models: the SPEC §5 network, losses, fine-tuning tools, metrics, checkpoints, training engine."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hepfm_data.batches.graph import GraphBatch
from hepfm_models import (
    GraphNet,
    ModelConfig,
    TrainConfig,
    accuracy,
    background_rejection,
    count_parameters,
    fit,
    freeze,
    load_checkpoint,
    multiclass_loss,
    multilabel_loss,
    parameter_groups,
    reference_forward,
    replace_head,
    roc_auc,
    save_checkpoint,
    time_to_accuracy,
)
from hepfm_models.testing import random_batch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(seed: int = 0, **kw) -> GraphNet:
    torch.manual_seed(seed)
    return GraphNet(ModelConfig(**kw))


# ----------------------------------------------------------------------------- architecture
def test_parameter_count_is_reported_and_stable():
    """The shared-weight network of SPEC §5 has 135,564 parameters (12 outputs); with one block
    per step (not shared) 372,492 — the paper's ~400k. These are the figures quoted in the README."""
    assert count_parameters(GraphNet(ModelConfig(n_out=12))) == 135_564
    assert count_parameters(GraphNet(ModelConfig(n_out=12, shared_block=False))) == 372_492
    m = GraphNet(ModelConfig(n_out=2))
    assert len(m.blocks) == 1
    # every MLP: 4 Linear layers of width 64 then LayerNorm
    for mlp in (m.node_encoder, m.edge_encoder, m.global_encoder, m.blocks[0].edge, m.blocks[0].node,
                m.blocks[0].glob, m.decoder):
        assert len(mlp.layers) == 4 and all(lin.out_features == 64 for lin in mlp.layers)
        assert mlp.norm.normalized_shape == (64,)


def test_split_first_layer_matches_plain_edge_list_forward():
    """The optimised forward (split first Linear, gather after projecting) equals the plain
    gather-concatenate edge-list implementation with the same parameters."""
    m = _model(1, n_out=3)
    g = random_batch(50, seed=3, n_classes=3)
    torch.testing.assert_close(m(g), reference_forward(m, g), rtol=1e-5, atol=1e-5)
    m2 = _model(2, n_out=3, shared_block=False)
    torch.testing.assert_close(m2(g), reference_forward(m2, g), rtol=1e-5, atol=1e-5)


def test_shared_block_is_reused_at_every_step():
    """With shared weights, changing the one block changes all 4 iterations: doubling
    n_steps changes the output although no parameter is added."""
    m = _model(0)
    g = random_batch(8, seed=0)
    out4 = m(g)
    m.config = ModelConfig(n_steps=8)
    assert count_parameters(m) == 135_564
    assert not torch.allclose(out4, m(g))


def test_events_do_not_interact_and_node_order_does_not_matter():
    """Sum aggregation within events: an event's output is the same alone or in a batch,
    and does not change when its nodes are permuted."""
    m = _model(0).eval()
    g = random_batch(6, seed=5)
    out = m(g)
    starts = torch.cumsum(g.n_node, 0) - g.n_node
    gen = torch.Generator().manual_seed(0)
    for b in range(g.n_graph):
        s, n = int(starts[b]), int(g.n_node[b])
        nodes = g.nodes[s:s + n]
        alone = GraphBatch.from_nodes(nodes, g.n_node[b:b + 1], g.labels[b:b + 1])
        torch.testing.assert_close(m(alone)[0], out[b], rtol=1e-5, atol=1e-5)
        perm = torch.randperm(n, generator=gen)
        shuffled = GraphBatch.from_nodes(nodes[perm], g.n_node[b:b + 1], g.labels[b:b + 1])
        torch.testing.assert_close(m(shuffled)[0], out[b], rtol=1e-4, atol=1e-5)


def test_padding_events_are_ignored():
    """A fixed-shape padded batch (graph_mask False for the dummy event) gives the same outputs
    for the real events, the same losses and the same gradients."""
    m = _model(0, n_out=38)
    g = random_batch(10, seed=2, n_multilabels=38)
    p = g.pad_to(12, int(g.nodes.shape[0]) + 7, int(g.senders.shape[0]) + 20)
    torch.testing.assert_close(m(p)[:10], m(g), rtol=1e-5, atol=1e-5)
    m.head = torch.nn.Linear(64, 2)
    for fn in (multiclass_loss,):
        m.zero_grad()
        fn(m(g), g).backward()
        grads = [q.grad.clone() for q in m.parameters()]
        m.zero_grad()
        fn(m(p), p).backward()
        for a, b in zip(grads, [q.grad for q in m.parameters()]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    m.head = torch.nn.Linear(64, 38)
    torch.testing.assert_close(multilabel_loss(m(p), p), multilabel_loss(m(g), g))


# ----------------------------------------------------------------------------- losses
def test_multiclass_loss_is_weighted_cross_entropy():
    """Unit weights: plain cross-entropy. An event with weight 0 does not change the loss;
    weight 2 counts like a duplicate."""
    g = random_batch(5, seed=1, n_classes=3)
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(multiclass_loss(logits, g), F.cross_entropy(logits, g.labels))
    g.weights = torch.tensor([1.0, 1.0, 0.0, 2.0, 1.0])
    keep = [0, 1, 3, 3, 4]
    torch.testing.assert_close(multiclass_loss(logits, g), F.cross_entropy(logits[keep], g.labels[keep]))


def test_multilabel_loss_is_mean_of_mse_on_counts_and_bce_on_bins():
    """SPEC §4/§6: loss = (MSE over the 5 count labels + BCE over the 33 one-hot bins) / 2."""
    g = random_batch(4, seed=1, n_multilabels=38)
    out = torch.randn(4, 38, generator=torch.Generator().manual_seed(1))
    y = g.multilabels
    expect = 0.5 * (((out[:, :5] - y[:, :5]) ** 2).mean()
                    + F.binary_cross_entropy_with_logits(out[:, 5:], y[:, 5:]))
    torch.testing.assert_close(multilabel_loss(out, g), expect)
    with pytest.raises(ValueError, match="do not match"):
        multilabel_loss(out[:, :30], g)
    with pytest.raises(ValueError, match="no multilabels"):
        multilabel_loss(out, random_batch(4, seed=1))


# ----------------------------------------------------------------------------- fine-tuning tools
def test_replace_head_parameter_groups_and_freezing():
    """replace_head swaps only the final Linear (seeded); parameter_groups puts it at 1e-4 and
    everything else at 1e-5; freeze leaves only the head (or decoder + head) trainable, and an
    optimiser step then leaves every other weight unchanged."""
    m = _model(0, n_out=12)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    replace_head(m, 2, seed=7)
    assert m.head.out_features == 2 and m.config.n_out == 2
    again = replace_head(_model(0, n_out=12), 2, seed=7)
    torch.testing.assert_close(m.head.weight, again.head.weight)
    for k, v in m.state_dict().items():
        if not k.startswith("head."):
            torch.testing.assert_close(v, before[k])
    groups = parameter_groups(m, 1e-4, 1e-5)
    assert [(g["name"], g["lr"]) for g in groups] == [("head", 1e-4), ("backbone", 1e-5)]
    assert sum(len(g["params"]) for g in groups) == len(list(m.parameters()))
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in m.head.parameters()}

    freeze(m, "head")
    assert count_parameters(m, trainable_only=True) == 64 * 2 + 2
    assert [g["name"] for g in parameter_groups(m)] == ["head"]
    opt = torch.optim.Adam(parameter_groups(m), lr=1e-2)
    frozen = {k: v.clone() for k, v in m.state_dict().items() if not k.startswith("head.")}
    g = random_batch(16, seed=0)
    multiclass_loss(m(g), g).backward()
    opt.step()
    for k, v in frozen.items():
        torch.testing.assert_close(m.state_dict()[k], v)
    freeze(m, "decoder")
    assert count_parameters(m, trainable_only=True) == count_parameters(m.decoder) + 130
    with pytest.raises(ValueError, match="head"):
        freeze(m, "everything")


# ----------------------------------------------------------------------------- metrics
def _brute_auc(scores, labels, weights):
    num = den = 0.0
    for i, j in itertools.product(range(len(scores)), repeat=2):
        if labels[i] == 1 and labels[j] == 0:
            w = weights[i] * weights[j]
            num += w * (1.0 if scores[i] > scores[j] else 0.5 if scores[i] == scores[j] else 0.0)
            den += w
    return num / den


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 1), st.floats(0.1, 3.0)), min_size=2, max_size=40))
def test_roc_auc_matches_brute_force_pairwise(rows):
    """The sorting AUC (with ties and weights) equals the O(n^2) pairwise definition."""
    scores, labels, weights = zip(*rows)
    if len(set(labels)) < 2:
        with pytest.raises(ValueError, match="both classes"):
            roc_auc(torch.tensor(scores, dtype=torch.float64), torch.tensor(labels))
        return
    got = roc_auc(torch.tensor(scores, dtype=torch.float64), torch.tensor(labels),
                  torch.tensor(weights, dtype=torch.float64))
    assert got == pytest.approx(_brute_auc(scores, labels, weights), abs=1e-12)


def test_accuracy_and_auc_known_cases():
    """Accuracy thresholds p(signal) at 0.5 ([B, 2] softmax or [B] sigmoid logits) or takes the
    argmax for > 2 classes; AUC is 1 / 0 / 0.5 for perfect / inverted / constant scores."""
    labels = torch.tensor([0, 1, 1, 0])
    two = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])  # p1 = .12, .73, .27, .5
    assert accuracy(two, labels) == pytest.approx(0.5)
    assert accuracy(torch.tensor([-1.0, 1.0, 1.0, -0.1]), labels) == pytest.approx(1.0)
    assert accuracy(torch.tensor([[0, 5.0, 0], [0, 0, 1.0]]), torch.tensor([1, 1])) == 0.5
    assert accuracy(two, labels, torch.tensor([1.0, 1.0, 0.0, 0.0])) == 1.0
    s = torch.tensor([0.1, 0.9, 0.8, 0.2])
    assert roc_auc(s, labels) == 1.0
    assert roc_auc(-s, labels) == 0.0
    assert roc_auc(torch.zeros(4), labels) == 0.5
    assert background_rejection(s, labels, 0.5) == math.inf
    assert background_rejection(torch.tensor([0.1, 0.9, 0.8, 0.85]), labels, 1.0) == 2.0


# ----------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_without_pickle(tmp_path):
    """save/load reproduces the outputs and the Adam state exactly (training continues
    identically); files are safetensors + JSON only; an incomplete checkpoint raises."""
    g = random_batch(32, seed=4, learnable=True)
    m = _model(3, n_out=2)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    for _ in range(2):
        opt.zero_grad()
        multiclass_loss(m(g), g).backward()
        opt.step()
    save_checkpoint(tmp_path / "ck", m, opt, meta={"epoch": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.json", "ck.safetensors"]
    doc = json.loads((tmp_path / "ck.json").read_text())
    assert doc["model_config"]["n_out"] == 2 and doc["meta"] == {"epoch": 2}
    header_len = int.from_bytes((tmp_path / "ck.safetensors").read_bytes()[:8], "little")
    json.loads((tmp_path / "ck.safetensors").read_bytes()[8:8 + header_len])  # a safetensors header

    m2 = GraphNet(ModelConfig(n_out=2))
    opt2 = torch.optim.Adam(m2.parameters(), lr=1e-3)
    loaded, meta = load_checkpoint(tmp_path / "ck", optimizer=opt2)
    m2.load_state_dict(loaded.state_dict())
    assert meta == {"epoch": 2}
    torch.testing.assert_close(m2(g), m(g), rtol=0, atol=0)
    for model, optim in ((m, opt), (m2, opt2)):
        optim.zero_grad()
        multiclass_loss(model(g), g).backward()
        optim.step()
    for a, b in zip(m.parameters(), m2.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    (tmp_path / "ck.json").unlink()
    with pytest.raises(ValueError, match="ck.json"):
        load_checkpoint(tmp_path / "ck")


# ----------------------------------------------------------------------------- training engine
def _data(seed: int, n: int = 512, batch: int = 64):
    g = random_batch(n, seed=seed, learnable=True)
    starts = (torch.cumsum(g.n_node, 0) - g.n_node).tolist()
    out = []
    for k in range(0, n, batch):
        s, e = starts[k], starts[min(k + batch, n) - 1] + int(g.n_node[min(k + batch, n) - 1])
        out.append(GraphBatch.from_nodes(g.nodes[s:e], g.n_node[k:k + batch], g.labels[k:k + batch]))
    return out


@pytest.fixture(scope="module")
def learnable():
    return _data(10, n=384), _data(11, n=256)


def test_fit_learns_a_learnable_rule_with_the_lr_schedule(learnable):
    """fit() trains to > 80% validation accuracy on 'scalar sum of pT > 1050 GeV', applies
    LR0 * 0.99^epoch, and records cumulative wall time (used for time-to-99%)."""
    train, val = learnable
    m = _model(0, n_out=2)
    cfg = TrainConfig(epochs=8, lr=3e-3, patience=20, progress=False)
    res = fit(m, lambda epoch: train, lambda: val, cfg)
    h = res.history
    assert [r["lr"] for r in h] == pytest.approx([3e-3 * 0.99 ** e for e in range(8)])
    assert max(r["val_accuracy"] for r in h) > 0.8 and max(r["val_auc"] for r in h) > 0.9
    assert all(b["wall_s"] > a["wall_s"] for a, b in zip(h, h[1:]))
    best = h[res.best_epoch]
    assert best["val_loss"] == min(r["val_loss"] for r in h)
    assert time_to_accuracy(h, 0.0) == h[0]["wall_s"] and time_to_accuracy(h, 1.01) is None


def test_fit_stops_early_on_a_plateau(learnable):
    """With LR 0 the validation loss never improves: training stops after 1 + patience epochs."""
    train, val = learnable
    res = fit(_model(0, n_out=2), lambda e: train[:2], lambda: val[:1],
              TrainConfig(epochs=50, lr=0.0, lr_backbone=0.0, patience=2, progress=False))
    assert res.stopped_early and len(res.history) == 3


def test_fit_resumes_from_its_checkpoint_directory(tmp_path, learnable):
    """An interrupted run (2 epochs) resumed to 4 epochs ends with the same weights and history
    length as an uninterrupted 4-epoch run."""
    train, val = learnable
    train, val = train[:3], val[:1]
    cfg = TrainConfig(epochs=4, lr=1e-3, patience=10, progress=False)
    full = _model(0, n_out=2)
    fit(full, lambda e: train, lambda: val, cfg)
    part = _model(0, n_out=2)
    fit(part, lambda e: train, lambda: val, TrainConfig(**{**cfg.__dict__, "epochs": 2}), checkpoint_dir=tmp_path)
    resumed = _model(99, n_out=2)
    res = fit(resumed, lambda e: train, lambda: val, cfg, checkpoint_dir=tmp_path)
    assert [h["epoch"] for h in res.history] == [0, 1, 2, 3]
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_autocast_and_compile_train(learnable):
    """On CUDA, fit() takes the bf16-autocast + torch.compile path by default; the bf16 forward
    agrees with fp32 to bf16 precision and training still lowers the loss."""
    dev = torch.device("cuda")
    m = _model(0, n_out=2).to(dev)
    g = learnable[1][0].to(dev)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        low = m(g).float()
    torch.testing.assert_close(low, m(g), rtol=0.05, atol=0.05)
    from hepfm_models import DistInfo

    res = fit(m, lambda e: learnable[0], lambda: learnable[1], TrainConfig(epochs=4, lr=3e-3, patience=10,
              progress=False), DistInfo(device=dev))
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
