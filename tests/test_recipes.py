"""recipes/: config parsing, pretrain -> finetune -> scaling -> CKA on small real stores, torchrun DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hepfm_data.core.events import SampleInfo
from hepfm_data.pipelines.build import write_store
from hepfm_data.testing import synthetic_events
from hepfm_models import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # recipes/ are scripts beside the package, not installed

from recipes import cka, finetune, pretrain, scaling  # noqa: E402
from recipes.common import ConfigError, load_config  # noqa: E402

PROCESSES = ("ggF_H", "VBF_H", "WH", "ZH")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def stores(tmp_path_factory) -> Path:
    """Four real Zarr stores (write_store) of 500 synthetic events each."""
    root = tmp_path_factory.mktemp("stores")
    for i, p in enumerate(PROCESSES):
        write_store(str(root), p, [(synthetic_events(500, seed=i), SampleInfo(p, "synthetic", seed=i))],
                    progress=False)
    return root


def _overrides(stores: Path, out: Path) -> list[str]:
    return [f"--data.stores={stores}", "--data.batch_size=128", "--data.num_workers=0", "--train.epochs=2",
            "--train.progress=false", f"--out={out}", "--threads=1"]


# ----------------------------------------------------------------------------- configs
def test_config_yaml_and_overrides(tmp_path):
    """YAML -> nested dataclasses; --key=value overrides parsed as YAML (numbers, lists, bools);
    unknown keys and wrong types raise ConfigError naming the key."""
    path = tmp_path / "c.yaml"
    path.write_text("task: ttW_vs_ttt\ntrain: {epochs: 7, betas: [0.8, 0.95]}\ndata: {processes: [WH]}\n")
    cfg = load_config(finetune.FinetuneConfig, path, ["--train.lr=3e-4", "--n_per_class=10",
                                                       "--data.processes=[ggF_H,ZH]", "--model.shared_block=false"])
    assert cfg.task == "ttW_vs_ttt" and cfg.train.epochs == 7 and cfg.train.betas == (0.8, 0.95)
    assert cfg.train.lr == 3e-4 and cfg.n_per_class == 10 and cfg.data.processes == ["ggF_H", "ZH"]
    assert cfg.model.model_config(2).shared_block is False
    with pytest.raises(ConfigError, match="train.epoch"):
        load_config(finetune.FinetuneConfig, None, ["--train.epoch=3"])
    with pytest.raises(ConfigError, match="n_per_class.*expected int"):
        load_config(finetune.FinetuneConfig, None, ["--n_per_class=many"])
    with pytest.raises(ConfigError, match="expected --key=value"):
        load_config(finetune.FinetuneConfig, None, ["epochs=3"])
    for name in ("pretrain", "finetune", "scaling", "cka"):
        cls = {"pretrain": pretrain.PretrainConfig, "finetune": finetune.FinetuneConfig,
               "scaling": scaling.ScalingConfig, "cka": cka.CKAConfig}[name]
        load_config(cls, REPO / "recipes" / "configs" / f"{name}.yaml")  # shipped configs parse


# ----------------------------------------------------------------------------- end to end
def test_pretrain_finetune_scaling_cka_on_small_stores(stores, tmp_path):
    """A tiny pretrain (4 processes found in the stores) then fine-tuning of WH_vs_ZH: the
    finetuned model starts from the pretrained backbone (moved only a little at LR 1e-5), the
    frozen one keeps it exactly; results carry test accuracy/AUC and time-to-99%; a re-run
    resumes (returns the saved results); the scaling study and CKA write their tables and plot."""
    pre_out = tmp_path / "pre"
    pretrain.main([str(REPO / "recipes/configs/pretrain.yaml"), *_overrides(stores, pre_out)])
    pre, meta = load_checkpoint(pre_out / "model")
    assert meta["classes"] == list(PROCESSES) and pre.head.out_features == 4
    assert len(json.loads((pre_out / "history.json").read_text())["history"]) == 2

    ft_out = tmp_path / "ft"
    args = [*_overrides(stores, ft_out), f"--pretrained={pre_out / 'model'}", "--n_per_class=100",
            "--n_val_per_class=40", "--n_test_per_class=40"]
    cfg = load_config(finetune.FinetuneConfig, REPO / "recipes/configs/finetune.yaml", args)
    results = finetune.run(cfg)
    assert set(results) == {"scratch", "finetuned", "frozen"}
    for r in results.values():
        assert 0 <= r["test_accuracy"] <= 1 and 0 <= r["test_auc"] <= 1 and r["test_n_events"] == 80
    assert results["scratch"]["relative_time"] is not None
    pre_state = pre.state_dict()
    frozen, _ = load_checkpoint(ft_out / "frozen" / "model")
    tuned, _ = load_checkpoint(ft_out / "finetuned" / "model")
    for k, v in frozen.state_dict().items():
        if not k.startswith("head."):
            torch.testing.assert_close(v, pre_state[k], rtol=0, atol=0)
            assert (tuned.state_dict()[k] - v).abs().max() < 0.01
    assert results["frozen"]["n_trainable"] == 130
    assert finetune.run(cfg) == json.loads(json.dumps(results))  # resumed from result.json

    sc = load_config(scaling.ScalingConfig, None, [
        f"--base.data.stores={stores}", f"--base.pretrained={pre_out / 'model'}", "--sizes=[30,60]",
        "--n_models=2", "--base.variants=[scratch,finetuned]", "--base.n_val_per_class=20",
        "--base.n_test_per_class=30", "--base.train.epochs=1", "--base.train.progress=false",
        f"--out={tmp_path / 'sc'}", "--base.data.batch_size=64"])
    doc = scaling.run(sc)
    assert len(doc["runs"]) == 8 and {(r["n_per_class"], r["variant"]) for r in doc["table"]} == {
        (30, "scratch"), (30, "finetuned"), (60, "scratch"), (60, "finetuned")}
    assert all(r["n_models"] == 2 and r["test_accuracy_std"] is not None for r in doc["table"])
    assert (tmp_path / "sc" / "results.md").read_text().count("\n| ") == 5
    assert (tmp_path / "sc" / "accuracy_vs_size.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = cka.run(cka.CKAConfig(scaling_dir=str(tmp_path / "sc"), n_events=30))
    pairs = {(r["n_per_class"], r["a"], r["b"]) for r in out["rows"]}
    assert (30, "scratch", "finetuned") in pairs and (60, "finetuned", "pretrained") in pairs
    assert all(0 <= r["cka"][0] <= 1 + 1e-9 for r in out["rows"])


def test_multilabel_pretraining_uses_the_38_labels(stores, tmp_path):
    """mode=multilabel pretrains a 38-output head on the stores' truth labels."""
    out = tmp_path / "ml"
    pretrain.main([*_overrides(stores, out), "--train.mode=multilabel", "--train.epochs=1",
                   "--data.processes=[WH,ZH]"])
    model, meta = load_checkpoint(out / "model")
    assert model.head.out_features == 38 and meta["mode"] == "multilabel"
    assert meta["history"][0]["train_loss"] > 0


def test_missing_store_is_a_clear_error(stores, tmp_path):
    """Asking for a process without a store names the process and the path."""
    with pytest.raises(ConfigError, match="ttbar"):
        pretrain.main([*_overrides(stores, tmp_path), "--data.processes=[WH,ttbar]"])


# ----------------------------------------------------------------------------- DDP
_DDP_SCRIPT = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {repo!r})
    from safetensors.torch import save_file
    from recipes import pretrain
    from recipes.common import load_config
    cfg = load_config(pretrain.PretrainConfig, None, sys.argv[1:])
    model, result = pretrain.run(cfg)
    import os
    save_file({{k: v.contiguous() for k, v in model.state_dict().items()}},
              os.path.join(cfg.out, "rank%s.safetensors" % os.environ["RANK"]))
""")


def test_torchrun_two_ranks_gloo_finish_with_identical_parameters(stores, tmp_path):
    """torchrun --nproc_per_node=2 (gloo on CPU): both ranks read disjoint shares of the data,
    finish the pretraining, and hold bit-identical parameters equal to the saved best model."""
    script = tmp_path / "ddp_pretrain.py"
    script.write_text(_DDP_SCRIPT.format(repo=str(REPO)))
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         *_overrides(stores, out), "--data.processes=[WH,ZH]"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))
    assert r0.keys() == r1.keys()
    for k in r0:
        torch.testing.assert_close(r0[k], r1[k], rtol=0, atol=0)
    saved = load_file(str(out / "model.safetensors"))
    for k in r0:
        torch.testing.assert_close(saved[f"model.{k}"], r0[k], rtol=0, atol=0)
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["history"]) == 2


# ----------------------------------------------------------------------------- the README's main command
def test_demo_command_end_to_end_and_resume(tmp_path, capsys):
    """`hepfm-data demo` (recipes.demo) at the smallest scale: real Pythia 8 generation of WH and
    ZH, stores, pretraining, the three fine-tuning variants and the result table; a second run reuses
    every stage (no new generation blocks, same results)."""
    from recipes.demo import main as cli

    args = ["--workdir", str(tmp_path / "demo"), "--task", "WH_vs_ZH", "--pretrain", "WH,ZH", "--events", "200",
            "--finetune-events", "20", "--pretrain-epochs", "1", "--finetune-epochs", "1", "--workers", "1",
            "--threads", "1", "--no-progress"]
    assert cli(args) == 0
    first = capsys.readouterr().out
    assert "variant     accuracy" in first and "finetuned" in first and "frozen" in first
    for name in ("WH", "ZH"):
        assert (tmp_path / "demo" / "stores" / name / "manifest.json").exists()
    results = {v: json.loads((tmp_path / "demo" / "finetune" / "WH_vs_ZH-n20-b32" / v / "result.json").read_text())
               for v in ("scratch", "finetuned", "frozen")}
    blocks = sorted((tmp_path / "demo" / "generated").rglob("*.parquet"))
    mtimes = [p.stat().st_mtime_ns for p in blocks]
    assert cli(args) == 0
    second = capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in sorted((tmp_path / "demo" / "generated").rglob("*.parquet"))] == mtimes
    table = lambda out: out.split("[4/4]")[1].split("fine-tuned minus")[0]  # noqa: E731
    assert table(second) == table(first)
    for v, r in results.items():
        assert json.loads((tmp_path / "demo" / "finetune" / "WH_vs_ZH-n20-b32" / v / "result.json").read_text()) == r
