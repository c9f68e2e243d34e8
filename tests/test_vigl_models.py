"""The Vigl et al. networks and metrics (SPEC §7.1; hepfm_models/vigl.py, hepfm_models/metrics.py): shapes,
masks (a missing jet, padded constituents and the order of the jets change nothing), the frozen backbone,
and the weighted ROC, rejection at 90% signal efficiency, maximum SIC, AUC and data efficiency against
values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from hepfm_data.batches.pointcloud import PointCloudBatch
from hepfm_models import (
    DeepSetsHead,
    EventClassifier,
    JetBackbone,
    JetBackboneConfig,
    JetTagger,
    background_rejection,
    data_efficiency,
    max_sic,
    rejection_statistics,
    roc_auc,
    roc_curve,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = JetBackboneConfig(dim=16, heads=2, layers=2, ffn=32, max_constituents=12, n_out=8)


def event_batch(b: int = 4, j: int = 5, p: int = 16, seed: int = 0) -> PointCloudBatch:
    """A random event_jets-shaped batch: 2-4 real jets per event (pT-ordered), 3-p real constituents per jet."""
    g = torch.Generator().manual_seed(seed)
    n_jets = torch.randint(2, 5, (b,), generator=g)
    jet_mask = torch.arange(j)[None] < n_jets[:, None]
    n_const = torch.randint(3, p + 1, (b, j), generator=g)
    mask = (torch.arange(p)[None, None] < n_const[..., None]) & jet_mask[..., None]
    points = torch.randn(b, j, p, 15, generator=g)
    points[..., 0] = 3 + torch.rand(b, j, p, generator=g)  # log pT
    points[..., 4:6] *= 0.3  # Δη, Δφ within the jet
    points = points * mask[..., None]
    jets = torch.rand(b, j, 6, generator=g)
    jets[..., 0] = 1000 - 100 * torch.arange(j)  # pT-ordered
    jets[..., 2] = torch.rand(b, j, generator=g) * 6 - 3
    jets = jets * jet_mask[..., None]
    return PointCloudBatch(points=points, mask=mask, jets=jets, jet_labels=torch.full((b, j), -1),
                           labels=torch.zeros(b, dtype=torch.long), weights=torch.ones(b),
                           event_id=torch.arange(b), jet_mask=jet_mask)


def model(seed: int = 0, freeze: bool = False) -> EventClassifier:
    torch.manual_seed(seed)
    return EventClassifier(JetBackbone(CFG), DeepSetsHead(CFG.n_out, width=16), freeze_backbone=freeze).eval()


def test_shapes_of_backbone_head_classifier_and_tagger():
    """[B, 5, P, 15] events -> [B] logits; jets [N, P, 15] -> [N, n_out] embeddings; JetTagger -> [N] logits;
    a jet_constituents batch into the classifier (or an event batch into the backbone) is refused."""
    batch = event_batch()
    net = model()
    assert net(batch).shape == (4,)
    emb = net.embed(batch.points, batch.mask, batch.jet_mask)
    assert emb.shape == (4, 5, CFG.n_out) and torch.all(emb[~batch.jet_mask] == 0)
    jets = PointCloudBatch(points=batch.points[batch.jet_mask], mask=batch.mask[batch.jet_mask],
                           jets=batch.jets[batch.jet_mask], jet_labels=torch.zeros(int(batch.jet_mask.sum())),
                           labels=torch.zeros(int(batch.jet_mask.sum())), weights=torch.ones(1),
                           event_id=torch.zeros(1))
    assert JetBackbone(CFG)(jets).shape == (len(jets), CFG.n_out)
    assert JetTagger(JetBackbone(CFG))(jets).shape == (len(jets),)
    with pytest.raises(ValueError, match="event_jets batch"):
        net(jets)
    with pytest.raises(ValueError, match="jet_constituents points"):
        JetBackbone(CFG)(batch)


def test_missing_jet_padding_and_jet_order_change_nothing():
    """A masked-out jet (whatever its points, kinematics and constituent mask hold), garbage in padded
    constituent slots, extra padding and any order of the jets give the same logits; a real jet does matter."""
    batch = event_batch(seed=3)
    net = model(seed=1)
    ref = net(batch)
    # a missing jet: slot 4 is masked in every event (2-4 real jets); fill it with garbage
    junk = event_batch(seed=9)
    j4 = ~batch.jet_mask[:, 4]
    assert bool(j4.all())
    pts, msk, jets = batch.points.clone(), batch.mask.clone(), batch.jets.clone()
    pts[:, 4], msk[:, 4], jets[:, 4] = junk.points[:, 0] * 50, True, junk.jets[:, 0] * 7
    torch.testing.assert_close(net(_replace(batch, points=pts, mask=msk, jets=jets)), ref)
    # padded constituents hold garbage; more padding slots
    pts = batch.points.clone()
    pts[~batch.mask] = torch.randn(int((~batch.mask).sum()), 15) * 100
    torch.testing.assert_close(net(_replace(batch, points=pts)), ref)
    wider = torch.cat([batch.points, torch.randn(4, 5, 6, 15)], dim=2)
    torch.testing.assert_close(net(_replace(batch, points=wider, mask=torch.cat(
        [batch.mask, torch.zeros(4, 5, 6, dtype=torch.bool)], dim=2))), ref)
    # permuted jets (real and missing alike)
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(net(_replace(batch, points=batch.points[:, perm], mask=batch.mask[:, perm],
                                             jets=batch.jets[:, perm], jet_mask=batch.jet_mask[:, perm])),
                               ref, rtol=1e-5, atol=1e-5)
    # dropping a real jet changes the logit
    jm = batch.jet_mask.clone()
    jm[:, 1] = False
    assert not torch.allclose(net(_replace(batch, jet_mask=jm)), ref)


def test_frozen_backbone_gets_no_gradient_and_precomputed_embeddings_agree():
    """freeze_backbone: only the head trains, the backbone stays in eval mode; the logits from embeddings
    computed once equal those computed in the forward pass."""
    batch = event_batch(seed=5)
    net = model(freeze=True).train()
    assert not net.backbone.training and net.head.training
    loss = net(batch).sum()
    loss.backward()
    assert all(p.grad is None for p in net.backbone.parameters())
    assert all(p.grad is not None for p in net.head.parameters())
    emb = net.embed(batch.points, batch.mask, batch.jet_mask)
    torch.testing.assert_close(net(batch, embeddings=emb), net(batch))
    free = model()
    free.train()
    free(batch).sum().backward()
    assert all(p.grad is not None for p in free.backbone.out.parameters())


def _replace(batch: PointCloudBatch, **kw) -> PointCloudBatch:
    fields = {k: getattr(batch, k) for k in ("points", "mask", "jets", "jet_labels", "labels", "weights", "event_id",
                                             "jet_mask")}
    return PointCloudBatch(**{**fields, **kw})


# ----------------------------------------------------------------------------- metrics by hand
#: 4 signal events (weight 1) and 4 background events with weights; scores descending:
#:   score  0.9 0.8 0.7 0.6 0.5 0.4 0.3 0.2
#:   label   1   0   1   1   0   1   0   0
#:   weight  1   1   1   1   2   1   3   3      (background total 1 + 2 + 3 + 3 = 9, signal total 4)
SCORES = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
LABELS = torch.tensor([1, 0, 1, 1, 0, 1, 0, 0])
WEIGHTS = torch.tensor([1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 3.0, 3.0])
#: cumulative at each threshold: eff_S = 1/4, 1/4, 2/4, 3/4, 3/4, 1, 1, 1; eff_B = 0, 1/9, 1/9, 1/9, 3/9, 3/9, 6/9, 1
EFF_S = [0.25, 0.25, 0.5, 0.75, 0.75, 1.0, 1.0, 1.0]
EFF_B = [0.0, 1 / 9, 1 / 9, 1 / 9, 3 / 9, 3 / 9, 6 / 9, 1.0]


def test_weighted_roc_rejection_sic_and_auc_by_hand():
    """The weighted ROC points; rejection at eff_S = 0.9: the first threshold reaching it (score 0.4) has
    eff_B = 3/9 -> 3; at 0.5: score 0.7, eff_B 1/9 -> 9. Max SIC = eff_S / sqrt(eff_B): 0.75 / sqrt(1/9) = 2.25
    (score 0.6). The effective background count (Σw)²/Σw² passing each threshold is 1, 9/5, 36/14, 81/23 after
    the background events at 0.8, 0.5, 0.3, 0.2: with at least 1.5 effective events the best is 1 / sqrt(3/9) =
    1.732 (score 0.4), with at least 2: 1 / sqrt(6/9) = 1.225 (score 0.3).
    rejection_statistics adds the effective background count at the working point and the sample's limit.
    AUC = sum over signal of the background weight below it (+ half of ties) / (4 x 9):
    (9 + 8 + 8 + 6) / 36 = 31/36. Unweighted AUC: (4 + 3 + 3 + 2) / 16 = 12/16."""
    eff_s, eff_b = roc_curve(SCORES, LABELS, WEIGHTS)
    torch.testing.assert_close(eff_s, torch.tensor(EFF_S, dtype=torch.float64))
    torch.testing.assert_close(eff_b, torch.tensor(EFF_B, dtype=torch.float64))
    assert background_rejection(SCORES, LABELS, 0.9, WEIGHTS) == pytest.approx(3.0)
    assert background_rejection(SCORES, LABELS, 0.5, WEIGHTS) == pytest.approx(9.0)
    # what the rejection rests on: at eff_S = 0.9 the background at 0.8 (w 1) and 0.5 (w 2) passes: n_eff =
    # 3² / (1 + 4) = 1.8; the sample's limit Σw / (3 w_max) = 9 / 9 = 1
    stats = rejection_statistics(SCORES, LABELS, 0.9, WEIGHTS)
    assert stats == pytest.approx({"rejection": 3.0, "n_eff": 1.8, "lower_limit": 1.0})
    assert rejection_statistics(SCORES, LABELS, 0.5)["n_eff"] == pytest.approx(1.0)  # unit weights: the count
    assert max_sic(SCORES, LABELS, WEIGHTS) == pytest.approx(2.25)
    assert max_sic(SCORES, LABELS, WEIGHTS, min_background=1.5) == pytest.approx(1 / math.sqrt(3 / 9))
    assert max_sic(SCORES, LABELS, WEIGHTS, min_background=2) == pytest.approx(1 / math.sqrt(6 / 9))
    assert max_sic(SCORES, LABELS, WEIGHTS, min_background=4) == 0.0
    assert max_sic(SCORES, LABELS, min_background=2) == pytest.approx(1 / math.sqrt(2 / 4))  # unit weights: counts
    assert roc_auc(SCORES, LABELS, WEIGHTS) == pytest.approx(31 / 36)
    assert roc_auc(SCORES, LABELS) == pytest.approx(12 / 16)
    # the weights are what counts: the same background as 1 + 2 + 3 + 3 unit-weight copies gives the same ROC
    rep = torch.tensor([1, 1, 1, 1, 2, 1, 3, 3])
    eff_s2, eff_b2 = roc_curve(SCORES.repeat_interleave(rep), LABELS.repeat_interleave(rep))
    torch.testing.assert_close(eff_b2, eff_b)
    assert max_sic(SCORES.repeat_interleave(rep), LABELS.repeat_interleave(rep)) == pytest.approx(2.25)


def test_data_efficiency_interpolates_in_log_size():
    """The size where a curve reaches the target, linear in log(size) between the bracketing sizes: 100 -> 10,
    1000 -> 20 reaches 15 at sqrt(100 x 1000) = 316.2; already reached at the first size -> that size; never
    reached -> inf; a curve that dips is read at its first crossing."""
    assert data_efficiency([100, 1000], [10.0, 20.0], 15.0) == pytest.approx(math.sqrt(1e5))
    assert data_efficiency([100, 1000, 10000], [10.0, 12.0, 20.0], 16.0) == pytest.approx(1000 * 10 ** 0.5)
    assert data_efficiency([100, 1000], [30.0, 40.0], 20.0) == 100.0
    assert data_efficiency([100, 1000], [10.0, 12.0], 20.0) == math.inf
    assert data_efficiency([100, 1000, 10000], [10.0, 25.0, 22.0], 20.0) == pytest.approx(10 ** (2 + 10 / 15))
    with pytest.raises(ValueError, match="increasing"):
        data_efficiency([1000, 100], [1.0, 2.0], 1.5)
