"""recipes/vigl.py (SPEC §7.1) end to end on recipes/configs/vigl_tiny.yaml: real Pythia 8 + particle-flow
stores of two G* masses, two QCD slices and the two pretraining samples (tens of events each), the backbone's
jet-level pretraining, the four strategies x 2 sizes x 2 seeds, the report and its plots; a re-run executes
nothing; bad inputs (a mass without a catalog sample, a process or a store without large-R jets) are refused
naming what is wrong."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # recipes/ are scripts beside the package, not installed

from recipes import vigl  # noqa: E402
from recipes.common import ConfigError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = REPO / "recipes" / "configs" / "vigl_tiny.yaml"


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_study):
    root = tmp_path_factory.mktemp("vigl")
    cfg = tiny_study(vigl, TINY.name, root)
    return root, cfg, vigl.run(cfg, "vigl_tiny.yaml")


def test_tiny_study_end_to_end(study):
    """6 stores, 1 pretraining run and 4 strategies x 2 sizes x 2 seeds each leave a result file; every run has
    the weighted metrics overall and per G* mass and its ROC; the report tables every cell and the data
    efficiency, and links the three plots (PNG files)."""
    root, cfg, out = study
    docs = {p.stem: json.loads(p.read_text()) for p in (root / "results").glob("*.json")}
    kinds = [d["kind"] for d in docs.values()]
    assert kinds.count("store") == 6 and kinds.count("pretrain") == 1 and kinds.count("finetune") == 16
    assert len(out["executed"]) == 6 + 1 + 16
    for d in (d for d in docs.values() if d["kind"] == "finetune"):
        assert d["rejection"] >= 1 and 0 <= d["auc"] <= 1 and d["max_sic"] >= 0
        assert set(d["per_mass"]) == {"1000", "2000"}
        assert len(d["roc"]["rejection"]) == len(vigl.ROC_GRID)
        assert d["frozen"] == (d["strategy"] in ("frozen-random", "frozen-pretrained"))
    qcd = [d for d in docs.values() if d["kind"] == "store" and d["role"] == "qcd"]
    assert all(d["sigma_pb"] > 1 for d in qcd)  # the slices' cross sections (pb)
    assert any((root / "results" / "backbones").glob("pretrain-*.safetensors"))
    text = (root / "REPORT.md").read_text()
    for s in vigl.STRATEGIES:
        for n in (10, 20):
            assert f"| {s} | {n} |" in text
    assert "## Data efficiency" in text and "Direction of the study" in text
    for name in ("roc", "rejection_vs_size", "data_efficiency"):
        png = root / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plots/{name}.png" in text


def test_rerun_executes_nothing_and_rewrites_the_same_report(study):
    root, cfg, _ = study
    before = (root / "REPORT.md").read_bytes()
    again = vigl.run(cfg, "vigl_tiny.yaml")
    assert again["executed"] == []
    assert (root / "REPORT.md").read_bytes() == before


def test_a_mass_without_generated_events_is_named(tmp_path, tiny_study):
    with pytest.raises(ConfigError, match=r"G\* mass 3000 GeV has no catalog process 'vigl_gstar_3000'.*1000"):
        vigl.make_plan(tiny_study(vigl, TINY.name, tmp_path, "--data.masses=[1000,3000]"))


def test_a_process_without_large_r_jets_is_named(tmp_path, tiny_study):
    with pytest.raises(ConfigError, match=r"'ttbar' \(qcd\).*fatjets.*particle_flow"):
        vigl.make_plan(tiny_study(vigl, TINY.name, tmp_path, "--data.qcd=[vigl_qcd_500_800,ttbar]"))


def test_a_store_without_large_r_jets_is_named(tmp_path):
    """A store whose record has no fatjets (synthetic events) asked for this study: StoreError naming the store
    and the missing collections."""
    from hepfm_data import load_catalog
    from hepfm_data.core.errors import StoreError
    from hepfm_data.testing import write_synthetic_stores

    write_synthetic_stores(str(tmp_path), {"ttbar": ("zarr", 20, 1, 0)})
    url = str(tmp_path / "ttbar")
    with pytest.raises(StoreError, match=r"ttbar.*'event_jets'.*\['fatjets', 'fatjets.constituents'\]") as info:
        vigl.check_store(url, load_catalog())
    assert url in str(info.value)
