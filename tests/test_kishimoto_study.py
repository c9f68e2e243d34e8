"""recipes/kishimoto_study.py (SPEC §7.3) end to end on recipes/configs/kishimoto_study_tiny.yaml: real Pythia 8
stores of tt̄, H± -> tb and tt̄H(bb̄) (200 events each), the study's event selection on typed slots, one
object-replacement pretraining (pretext accuracy per replaced type), both variants x 2 sizes x 2 seeds per task on
one fixed test set; a resume re-executes only a deleted run, with the same AUC; the report renders from the results
alone; bad configurations are refused naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pythia8mc")

from recipes import kishimoto_study as ks  # noqa: E402  (tests/conftest.py puts the repository on sys.path)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = "kishimoto_study_tiny.yaml"


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_study):
    root = tmp_path_factory.mktemp("kishimoto")
    cfg = tiny_study(ks, TINY, root)
    return root, cfg, ks.run(cfg, TINY)


def test_tiny_study_end_to_end(study):
    """3 stores, 1 pretraining and 2 tasks x 2 sizes x 2 seeds x 2 variants leave one result each; fine-tuning
    sets hold only selected events of the task's two classes, the test set is the same for every run of a task;
    the pretext accuracy covers the six classes; the report tables every cell and links both plots."""
    root, cfg, out = study
    plan = ks.make_plan(cfg)
    res = ks.Results(cfg.results)
    keys = [s["key"] for s in plan.values()] + [ks.pretrain_key(cfg, plan)] + [k for *_, k in ks.grid(cfg, plan)]
    assert len(keys) == 3 + 1 + 16 and sorted(out["executed"]) == sorted(keys)
    pre = res.get(ks.pretrain_key(cfg, plan))
    assert set(pre["pretext"]["per_class"]) == {"lepton", "tau", "bjet", "light", "met", "none"}
    assert 0 <= pre["pretext"]["accuracy"] <= 1 and pre["pretext"]["n_events"] > 0
    assert (res.root / "backbones" / f"{ks.pretrain_key(cfg, plan)}.safetensors").stat().st_size > 0
    n_test = {}
    for task, size, seed, variant, key in ks.grid(cfg, plan):
        doc = res.get(key)
        assert (doc["task"], doc["size"], doc["seed"], doc["variant"]) == (task, size, seed, variant)
        assert doc["n_train"] == 2 * size and 0 <= doc["test_auc"] <= 1 and doc["events_per_s"] > 0
        assert (doc["pretrained"] is not None) == (variant == "finetuned")
        assert n_test.setdefault(task, doc["n_test"]) == doc["n_test"]
    sets = ks.slot_sets(cfg, plan)
    for name in plan:
        for split in ("train", "validation", "test"):
            assert bool(sets[name][split]["selected"].all())
    text = (root / "REPORT.md").read_text()
    assert "Verdict" in text or "Not enough results" in text
    assert "| ttbar_vs_Hplus_tb | 10 |" in text and "| ttbar_vs_ttH_bb | 20 |" in text and "Stand-ins" in text
    for name in ("auc_vs_size", "pretraining"):
        assert (root / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG" and f"plots/{name}.png" in text


def test_resume_reruns_only_the_deleted_run(study):
    """Deleting one run's result re-executes that run alone (same subset, same seed: the same AUC)."""
    root, cfg, _ = study
    plan = ks.make_plan(cfg)
    key = ks.grid(cfg, plan)[3][-1]
    path = ks.Results(cfg.results).path(key)
    before = json.loads(path.read_text())
    path.unlink()
    again = ks.run(cfg, TINY)
    assert again["executed"] == [key]
    assert json.loads(path.read_text())["test_auc"] == before["test_auc"]


def test_report_renders_from_results_alone(study, tmp_path, tiny_study):
    """--report-only with the stores gone renders the same tables; a larger grid names its missing runs."""
    root, cfg, _ = study
    cfg2 = tiny_study(ks, TINY, root, f"--data.stores={root / 'stores'}", f"--report={tmp_path / 'R.md'}",
                      f"--plots={tmp_path / 'plots'}")
    assert ks.run(cfg2, TINY, report_only=True)["executed"] == []
    assert "missing" not in (tmp_path / "R.md").read_text()
    cfg3 = tiny_study(ks, TINY, root, "--finetune.seeds=3", f"--report={tmp_path / 'R3.md'}",
                      f"--plots={tmp_path / 'plots3'}")
    assert "8 run(s) missing" in Path(ks.run(cfg3, TINY, report_only=True)["report"]).read_text()


def test_config_checks(tiny_study, tmp_path):
    """Unknown processes or tasks, a task whose class is not generated, and empty grids are refused by name."""
    with pytest.raises(ks.ConfigError, match="finetune.seeds"):
        tiny_study(ks, TINY, tmp_path, "--finetune.seeds=0")
    with pytest.raises(ks.ConfigError, match=r"data.processes: unknown \['nope'\]"):
        ks.make_plan(tiny_study(ks, TINY, tmp_path, "--data.processes=[ttbar,nope]"))
    with pytest.raises(ks.ConfigError, match="ttbar_vs_ttH_bb needs \\['ttH_bb'\\]"):
        ks.make_plan(tiny_study(ks, TINY, tmp_path, "--data.processes=[ttbar,Hplus_tb]"))
    with pytest.raises(ks.ConfigError, match="unknown task 'nope'"):
        ks.make_plan(tiny_study(ks, TINY, tmp_path, "--finetune.tasks=[nope]"))
