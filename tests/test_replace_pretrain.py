"""recipes/replace_pretrain.py end to end on CPU: object-replacement pretraining on an unlabelled
mixture of real Zarr stores through the streaming loader, then fine-tuning with and without it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from hepfm_data.core.events import SampleInfo
from hepfm_data.pipelines.build import write_store
from hepfm_data.store import open_store
from hepfm_data.testing import synthetic_events

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recipes import replace_pretrain  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_recipe_runs_end_to_end(tmp_path):
    """The recipe pretrains on the pretext labels only (6 classes, mixture of three stores), with the
    study's event selection (>= 1 lepton, >= 2 jets, >= 1 record-b-tagged jet: ~40% of these events;
    fine-tuning and test sets hold selected events only), then fine-tunes 'finetuned' and 'scratch'
    at two sizes x two seeds; writes the AUC table, the PNG
    plot and the checkpoints; a re-run resumes from the finished runs and gives the same results."""
    root = tmp_path / "stores"
    for i, p in enumerate(("ttbar", "Hplus_tb", "ttH_bb")):
        write_store(str(root), p, [(synthetic_events(360, seed=20 + i, first_event_id=10_000 * i, taus=True, btag=0.5),
                                    SampleInfo(p, "synthetic", seed=i))], progress=False)
    out = tmp_path / "run"
    argv = [str(REPO / "recipes/configs/replace_pretrain.yaml"), f"--data.stores={root}", "--data.batch_size=64",
            "--data.num_workers=0", "--pretrain.epochs=2", "--finetune.epochs=2", "--pretrain.progress=false",
            "--finetune.progress=false", "--model.width=16", "--model.n_layers=1", "--model.ff_width=32",
            "--sizes=[40,80]", "--seeds=[0,1]", "--n_val_per_class=8", "--n_test_per_class=8", f"--out={out}"]
    doc = replace_pretrain.run(replace_pretrain.parse_args(replace_pretrain.ReplaceConfig, argv))
    hist = json.loads((out / "pretrain" / "history.json").read_text())
    assert hist["classes"] == ["lepton", "tau", "bjet", "light", "met", "none"] and len(hist["history"]) == 2
    assert {(r["n_per_class"], r["variant"]) for r in doc["table"]} == {
        (n, v) for n in (40, 80) for v in ("finetuned", "scratch")}
    assert all(r["n_models"] == 2 and 0.0 <= r["test_auc_mean"] <= 1.0 for r in doc["table"])
    assert (out / "accuracy_vs_size.png").stat().st_size > 1000 and "| 40 |" in (out / "results.md").read_text()
    assert all(r["pretrained"] for r in doc["runs"] if r["variant"] == "finetuned")
    again = replace_pretrain.run(replace_pretrain.parse_args(replace_pretrain.ReplaceConfig, argv))
    assert [r["test_auc"] for r in again["runs"]] == [r["test_auc"] for r in doc["runs"]]
    cfg = replace_pretrain.parse_args(replace_pretrain.ReplaceConfig, argv)
    test_set = replace_pretrain.task_slots(cfg, "test", 0, seed=0, shuffle=False)
    n_test = sum(i.n_events for p in ("ttbar", "Hplus_tb") for i in open_store(str(root / p)).shards("test"))
    assert test_set.selected.all() and 0.2 * n_test < test_set.n_graph < 0.7 * n_test


def test_nanoaod_store_pretrains_on_slots_with_taus(tmp_path):
    """The same path on CMS NanoAOD (tests/data, 40 events): `hepfm-data build` a store from the real
    file, stream its event record as slot batches with the replacement pretext (jet masses and the
    DeepJet b-tag of the record, tau slots from NanoAOD's Tau collection where it has candidates) and
    take an optimisation step of the slot Transformer through the training engine."""
    import numpy as np

    from hepfm_data import load_catalog
    from hepfm_data.batches.slots import LOG_M, ObjectReplacement
    from hepfm_data.cli.main import main
    from hepfm_data.loader import make_loader
    from hepfm_data.representations import SlotRepresentation, SlotSelection
    from hepfm_data.testing import NANOAOD_FILE
    from hepfm_models import TrainConfig, fit
    from hepfm_models.slots_model import SlotConfig

    root = tmp_path / "st"
    assert main(["build", "ttbar", "--input", str(NANOAOD_FILE), "--out", str(root), "--quiet"]) == 0
    rep = SlotRepresentation(SlotSelection.from_catalog(load_catalog(), btag="record"), pretext=ObjectReplacement())
    loader = make_loader([str(root / "ttbar")], device="cpu", num_workers=0, batch_size=16, labels={"ttbar": 0},
                         mixing="none", representation=rep)
    batches = list(loader)
    n = sum(b.n_graph for b in batches)
    assert n > 20 and all(b.mask[:, -1].all() for b in batches)  # every event has its MET slot
    jets = torch.cat([b.x[:, 8:20, LOG_M][b.mask[:, 8:20]] for b in batches])
    assert jets.numel() > 5 and (jets > 0).all()  # NanoAOD (Drell-Yan) jet masses, not 0
    assert np.isin(np.concatenate([b.labels.numpy() for b in batches]), np.arange(6)).all()
    model = SlotConfig(width=16, n_layers=1, ff_width=32).build()
    res = fit(model, lambda e: batches, None, TrainConfig(epochs=1, progress=False))
    assert np.isfinite(res.history[0]["train_loss"])


def test_recipe_under_torchrun_two_ranks(tmp_path):
    """A real torchrun job (2 ranks, gloo, CPU) of `recipes/replace_pretrain.py` on a tiny config:
    DDP pretraining on the pretext labels, then fine-tuning; rank 0 writes the results, both ranks
    report the 2-rank world and finish (exit code 0)."""
    import os
    import subprocess

    root = tmp_path / "stores"
    for i, p in enumerate(("ttbar", "Hplus_tb", "ttH_bb")):
        write_store(str(root), p, [(synthetic_events(200, seed=30 + i, first_event_id=10_000 * i, taus=True, btag=0.5),
                                    SampleInfo(p, "synthetic", seed=i))], progress=False)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           str(REPO / "recipes/replace_pretrain.py"), str(REPO / "recipes/configs/replace_pretrain.yaml"),
           f"--data.stores={root}", "--data.batch_size=32", "--data.num_workers=0", "--pretrain.epochs=1",
           "--finetune.epochs=1", "--pretrain.progress=false", "--finetune.progress=false", "--model.width=16",
           "--model.n_layers=1", "--model.ff_width=32", "--sizes=[30]", "--seeds=[0]", "--n_val_per_class=3",
           "--n_test_per_class=3", "--device=cpu", "--threads=1", f"--out={out}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 rank(s)" in proc.stdout
    doc = json.loads((out / "results.json").read_text())
    assert {(r["n_per_class"], r["variant"]) for r in doc["table"]} == {(30, "finetuned"), (30, "scratch")}
    assert len(json.loads((out / "pretrain" / "history.json").read_text())["history"]) == 1
