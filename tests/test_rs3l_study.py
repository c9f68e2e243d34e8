"""recipes/rs3l_study.py on the tiny config (recipes/configs/rs3l_study_tiny.yaml): real Pythia 8 generation of
rs3l_hz / rs3l_zjet with two re-simulated views, contrastive pretraining per seed, three variants x two seeds,
one result per run; the resume re-executes only a deleted run; the report renders from the results alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("pythia8mc")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # recipes/ are scripts beside the package, not installed

from recipes import rs3l_study  # noqa: E402

TINY = REPO / "recipes" / "configs" / "rs3l_study_tiny.yaml"


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_study):
    root = tmp_path_factory.mktemp("rs3l_study")
    cfg = tiny_study(rs3l_study, TINY.name, root)
    return root, cfg, rs3l_study.run(cfg, "rs3l_study_tiny.yaml")


def test_tiny_study_end_to_end(study):
    """Two stores, two pretraining runs (backbones saved), 3 variants x 2 seeds, each with rejection at
    0.3/0.5/0.7, a Wasserstein distance per view and the training loop's jets/s; the report and plots."""
    root, cfg, out = study
    plan = rs3l_study.make_plan(cfg)
    res = rs3l_study.Results(cfg.results)
    keys = [s["key"] for s in plan.values()] + [rs3l_study.pretrain_key(cfg, plan, s) for s in range(2)]
    keys += [k for _, _, k in rs3l_study.grid(cfg, plan)]
    assert len(keys) == 10 and sorted(out["executed"]) == sorted(keys)
    for s in plan.values():
        doc = res.get(s["key"])
        assert doc["views"] == ["seed", "fsr_up"] and doc["generation_events_per_s"] > 0
        assert sum(doc["splits"].values()) == 24
    for s in range(2):
        key = rs3l_study.pretrain_key(cfg, plan, s)
        assert res.get(key)["jets_per_s"] > 0 and (res.root / "backbones" / f"{key}.safetensors").stat().st_size > 0
    for variant, seed, key in rs3l_study.grid(cfg, plan):
        doc = res.get(key)
        assert (doc["variant"], doc["seed"]) == (variant, seed) and doc["jets_per_s"] > 0 and doc["n_test"] > 0
        assert set(doc["rejection"]) == {"0.3", "0.5", "0.7"} and all(v >= 1 for v in doc["rejection"].values())
        assert set(doc["wasserstein"]) == {"seed", "fsr_up"} and all(0 <= w < 1 for w in doc["wasserstein"].values())
    text = Path(out["report"]).read_text()
    assert "Verdict: the study's direction" in text and "| supervised |" in text and "±" in text
    assert (root / "plots" / "rejection.png").stat().st_size > 0
    assert (root / "plots" / "wasserstein.png").stat().st_size > 0


def test_resume_reruns_only_the_deleted_run(study):
    root, cfg, _ = study
    plan = rs3l_study.make_plan(cfg)
    _, _, key = rs3l_study.grid(cfg, plan)[1]
    path = rs3l_study.Results(cfg.results).path(key)
    before = json.loads(path.read_text())
    path.unlink()
    again = rs3l_study.run(cfg, "rs3l_study_tiny.yaml")
    assert again["executed"] == [key]
    after = json.loads(path.read_text())
    assert after["rejection"] == before["rejection"] and after["wasserstein"] == before["wasserstein"]


def test_report_renders_from_results_alone(study, tmp_path, tiny_study):
    """--report-only with the stores gone: the report comes from the result files; a missing run is named."""
    root, cfg, _ = study
    cfg2 = tiny_study(rs3l_study, TINY.name, root, f"--data.stores={tmp_path / 'absent'}", f"--report={tmp_path / 'R.md'}",
                f"--plots={tmp_path / 'plots'}")
    out = rs3l_study.run(cfg2, "rs3l_study_tiny.yaml", report_only=True)
    assert out["executed"] == []
    text = (tmp_path / "R.md").read_text()
    assert "| fixed |" in text and "missing" not in text and (tmp_path / "plots" / "rejection.png").exists()
    cfg3 = tiny_study(rs3l_study, TINY.name, root, "--train.seeds=3", f"--report={tmp_path / 'R3.md'}",
                      f"--plots={tmp_path / 'plots3'}")
    assert "3 run(s) missing" in Path(rs3l_study.run(cfg3, "x", report_only=True)["report"]).read_text()


def test_config_checks():
    with pytest.raises(rs3l_study.ConfigError, match="supervised"):
        rs3l_study.parse([str(TINY), "--train.variants=[fixed]"])
    with pytest.raises(rs3l_study.ConfigError, match="data.views: unknown"):
        rs3l_study.make_plan(rs3l_study.parse([str(TINY), "--data.views=[nope]"])[0])


def test_rejection_over_seeds_survives_a_seed_with_no_background_passing():
    """R = 1/<ε_B>: a seed whose test sample passes no background (R = ∞) counts ε_B = 0 instead of making the
    mean infinite; the spread is the seed spread of ε_B propagated; ∞ only when every seed passes nothing."""
    import math

    r, s, n = rs3l_study.rejection_cell([math.inf, 100.0, 50.0])
    assert n == 3 and math.isclose(r, 1 / ((0 + 0.01 + 0.02) / 3)) and s > 0
    assert rs3l_study.rejection_cell([math.inf, math.inf]) == (math.inf, None, 2)
    assert rs3l_study.rejection_cell([20.0, 20.0]) == (20.0, 0.0, 2)
