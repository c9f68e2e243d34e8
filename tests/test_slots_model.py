"""The slot Transformer (SPEC §7.3): padding mask, permutation invariance, the shared fine-tuning
tools (head swap, freeze, parameter groups, checkpoints) and learning the object-replacement task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepfm_data.batches.slots import PRETEXT_CLASSES, ObjectReplacement, SlotBatch
from hepfm_data.testing import synthetic_slots
from hepfm_models import (
    TrainConfig,
    count_parameters,
    fit,
    freeze,
    load_checkpoint,
    parameter_groups,
    replace_head,
    save_checkpoint,
)
from hepfm_models.slots_model import SlotConfig, SlotTransformer
from hepfm_models.training import evaluate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def slots(n: int, seed: int) -> SlotBatch:
    return synthetic_slots(n, seed)


def test_mask_and_permutation_invariance():
    """Empty slots do not change the output whatever they hold; a permutation of the slots (types are
    in the one-hot, not the position) gives the same output; shapes [B, n_out] and [B, width]."""
    torch.manual_seed(0)
    model = SlotTransformer(SlotConfig(width=32, n_layers=2, n_heads=4, ff_width=64)).eval()
    b = slots(16, 1)
    with torch.no_grad():
        out, z = model(b), model.embed(b)
        assert out.shape == (16, len(PRETEXT_CLASSES)) and z.shape == (16, 32)
        junk = b.x.clone()
        junk[~b.mask] = torch.randn(int((~b.mask).sum()), b.x.shape[-1])
        torch.testing.assert_close(model(SlotBatch(**{**b.__dict__, "x": junk})), out, atol=1e-5, rtol=1e-5)
        perm = torch.randperm(b.x.shape[1])
        shuffled = SlotBatch(**{**b.__dict__, "x": b.x[:, perm], "mask": b.mask[:, perm],
                                "slot_type": b.slot_type[:, perm]})
        torch.testing.assert_close(model(shuffled), out, atol=1e-5, rtol=1e-5)


def test_pretext_is_learned_and_finetuning_tools_apply(tmp_path):
    """A few CPU epochs of object-replacement pretraining (fit, the graph network's engine) lower the
    validation loss below the uniform 6-class loss ln 6; then the graph network's head / freeze /
    parameter-group tools and checkpoints work on the slot model unchanged."""
    torch.manual_seed(0)
    pre = ObjectReplacement()
    train = [pre(slots(128, 100 + i), np.random.default_rng(i)) for i in range(8)]
    val = [pre(slots(256, 7), np.random.default_rng(99))]
    model = SlotConfig(width=32, n_layers=2, n_heads=4, ff_width=64).build()
    cfg = TrainConfig(epochs=5, lr=3e-3, progress=False, patience=10)
    res = fit(model, lambda e: train, lambda: val, cfg)
    assert res.history[-1]["val_loss"] < 0.9 * np.log(6), res.history
    path = tmp_path / "slots"
    save_checkpoint(path, model, meta={"stage": "pretrain"})
    loaded, meta = load_checkpoint(path)
    assert isinstance(loaded, SlotTransformer) and meta["stage"] == "pretrain"
    torch.testing.assert_close(loaded(val[0]), model(val[0]))
    replace_head(loaded, 2, seed=1)
    assert loaded.head.out_features == 2 and loaded.config.n_out == 2
    groups = {g["name"]: g["lr"] for g in parameter_groups(loaded, 1e-4, 1e-5)}
    assert groups == {"head": 1e-4, "backbone": 1e-5}
    freeze(loaded, "decoder")
    trainable = count_parameters(loaded, trainable_only=True)
    assert trainable == sum(p.numel() for m in (loaded.head, loaded.decoder) for p in m.parameters())
    m = evaluate(loaded, [SlotBatch(**{**val[0].__dict__, "labels": (val[0].labels == 5).long()})], "multiclass",
                 torch.device("cpu"))
    assert 0.0 <= m["auc"] <= 1.0
