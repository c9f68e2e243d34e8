"""recipes/reproduce.py: the paper's study in one command — layer-wise CKA, the tiny study end to end, its
resume, the shipped-backbone mechanism (one Pythia-generated tiny study shared by the module, ~2 min on 2 cores)."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch

from hepfm_models import GraphNet, ModelConfig, PretrainedError, layerwise_cka, linear_cka, pretrained
from hepfm_models.backbones import available_pretrained, model_card
from hepfm_models.testing import random_batch
from hepfm_models.training import collect_stages

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # recipes/ are scripts beside the package, not installed

from recipes import reproduce  # noqa: E402
from recipes.common import ConfigError, load_config  # noqa: E402

TINY = REPO / "recipes" / "configs" / "reproduce_tiny.yaml"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- layer-wise CKA
def _t(values):
    return torch.tensor(values, dtype=torch.float64)


def test_layerwise_cka_matches_a_hand_computed_two_layer_case():
    """Two 'layers' of three events, two models per ensemble, every CKA worked out by hand:
    layer a (2-d): B2 is B1 rotated by 90° and scaled (CKA 1); F1 = B1 with one axis stretched x2, F2 = B1 with
    the other: CKA(B, F1) = CKA(B, F2) = 25 / sqrt(10 * 76) ≈ 0.907 (worked out below). Layer b (1-d): linear
    CKA is the squared Pearson correlation; B1 = B2 = (0, 1, 2), F1 = (0, 2, 1) (r = 1/2 -> 1/4), F2 = (2, 1, 0)
    (r = -1 -> 1). So baseline vs baseline = (1, 0) at both layers; baseline vs fine-tuned: layer a mean 0.907,
    std 0; layer b pairs (B, F1) = 1/4 twice and (B, F2) = 1 twice: mean 5/8, std 3/8."""
    # layer a: events (1, 0), (0, 1), (-1, -1): centred already (columns sum to 0)
    b1_a = _t([[1, 0], [0, 1], [-1, -1]])
    b2_a = 3.0 * b1_a @ _t([[0, -1], [1, 0]])  # rotation + isotropic scale
    f1_a, f2_a = b1_a * _t([2, 1]), b1_a * _t([1, 2])
    # by hand: X^T X = [[2, 1], [1, 2]] (|.|_F^2 = 10); Y = X diag(2, 1): Y^T X = [[4, 2], [1, 2]] (|.|^2 = 25),
    # Y^T Y = [[8, 2], [2, 2]] (|.|^2 = 76): CKA = 25 / sqrt(10 * 76)
    by_hand_a = 25 / math.sqrt(10 * 76)
    assert linear_cka(b1_a, f1_a) == pytest.approx(by_hand_a, abs=1e-12)
    b = _t([[0], [1], [2]])
    base = [{"a": b1_a, "b": b}, {"a": b2_a, "b": b.clone()}]
    tuned = [{"a": f1_a, "b": _t([[0], [2], [1]])}, {"a": f2_a, "b": _t([[2], [1], [0]])}]

    within = layerwise_cka(base)
    assert list(within) == ["a", "b"]
    assert within["a"] == pytest.approx((1.0, 0.0), abs=1e-12) and within["b"] == pytest.approx((1.0, 0.0), abs=1e-12)
    between = layerwise_cka(base, tuned)
    assert between["a"] == pytest.approx((by_hand_a, 0.0), abs=1e-12)
    assert between["b"] == pytest.approx((5 / 8, 3 / 8), abs=1e-12)
    # a layer missing from one model is left out
    assert list(layerwise_cka(base, [{"b": b}, {"b": b}])) == ["b"]


def test_graphnet_stages_are_the_forward_pass_and_collect_them_row_aligned():
    """GraphNet.stages gives the encoder output and every message-passing step for nodes, edges and globals, then
    the decoder output, which equals embed(); the model's logits are unchanged by the in-place first layer / ReLU
    (reference_forward); collect_stages keeps the same node/edge rows for any two models (CKA of a model with
    itself is 1 at every stage) and drops nothing but padding."""
    from hepfm_models import reference_forward

    g = random_batch(40, seed=3, max_nodes=8)
    torch.manual_seed(0)
    model = GraphNet(ModelConfig(n_out=2)).eval()
    with torch.no_grad():
        st = model.stages(g)
        assert list(st) == [f"{s}/{k}" for s in ["encoder", "step1", "step2", "step3", "step4"]
                            for k in ("nodes", "edges", "globals")] + ["decoder"]
        assert st["step4/nodes"].shape == (int(g.n_node.sum()), 64) and st["step4/edges"].shape == (int(g.n_edge.sum()), 64)
        torch.testing.assert_close(st["decoder"], model.embed(g))
        torch.testing.assert_close(model(g), reference_forward(model, g), rtol=1e-5, atol=1e-5)
    batches = [random_batch(30, seed=s, max_nodes=8) for s in (4, 5)]
    torch.manual_seed(1)
    other = GraphNet(ModelConfig(n_out=2))
    a = collect_stages(model, batches, torch.device("cpu"), max_rows=100, seed=7)
    b = collect_stages(other, batches, torch.device("cpu"), max_rows=100, seed=7)
    assert a["encoder/edges"].shape == (100, 64) and a["decoder"].shape == (60, 64)
    full = collect_stages(model, batches, torch.device("cpu"))
    assert full["encoder/nodes"].shape[0] == sum(int(x.n_node.sum()) for x in batches)
    for k in a:
        assert linear_cka(a[k], collect_stages(model, batches, torch.device("cpu"), 100, 7)[k]) == pytest.approx(1.0)
    assert layerwise_cka([a], [b])["decoder"][0] < 1.0


# ----------------------------------------------------------------------------- configuration
def test_config_is_validated_on_load_and_scale_grows_the_study():
    """The shipped configs parse into frozen dataclasses; unknown keys and bad values are refused by name;
    --scale multiplies the event counts and adds one decade of fine-tuning size per factor of 10."""
    default = load_config(reproduce.ReproduceConfig, REPO / "recipes" / "configs" / "reproduce.yaml")
    tiny = load_config(reproduce.ReproduceConfig, TINY)
    assert tiny.finetune.seeds == 2 and len(tiny.finetune.sizes) == 2
    with pytest.raises(Exception, match="cannot assign|frozen"):
        default.data.events = 1  # type: ignore[misc]
    with pytest.raises(ConfigError, match="finetune.seed'"):
        load_config(reproduce.ReproduceConfig, TINY, ["--finetune.seed=3"])
    with pytest.raises(ConfigError, match="unknown.*'finetuned'"):
        load_config(reproduce.ReproduceConfig, TINY, ["--finetune.variants=[scratch,finetuned]"])
    with pytest.raises(ConfigError, match="needs the multilabel backbone"):
        load_config(reproduce.ReproduceConfig, TINY, ["--pretrain.modes=[multiclass]"])
    with pytest.raises(ConfigError, match="fractions"):
        load_config(reproduce.ReproduceConfig, TINY, ["--data.fractions=[0.5,0.5,0.5]"])
    big = reproduce.scaled(default, 10)
    assert big.data.events == 10 * default.data.events
    assert big.finetune.sizes == (*default.finetune.sizes, 10 * max(default.finetune.sizes))
    cfg, opts = reproduce.parse([str(TINY), "--scale=2", "--finetune.seeds=3"])
    assert cfg.data.events == 2 * tiny.data.events and cfg.finetune.seeds == 3 and opts["scale"] == 2


def test_run_keys_depend_on_what_affects_the_run_only():
    """Keys: more task events change the task stores' keys but not the pretraining key (it reads the first events
    of each store's stream, the same in a bigger store); more seeds or sizes, other paths or worker counts change no
    existing key; a changed learning rate changes the fine-tuning keys."""
    tiny = load_config(reproduce.ReproduceConfig, TINY)
    plan = reproduce.make_plan(tiny)
    key = reproduce.pretrain_key(tiny, plan, "multiclass")
    bigger = load_config(reproduce.ReproduceConfig, TINY, ["--data.task_events=400", "--finetune.seeds=3",
                                                            "--finetune.sizes=[40,80,160]", "--results=elsewhere",
                                                            "--workers=1", "--data.workers=1"])
    plan2 = reproduce.make_plan(bigger)
    assert reproduce.pretrain_key(bigger, plan2, "multiclass") == key
    assert plan2.stores["WH"].key != plan.stores["WH"].key and plan2.stores["WH"].stream == plan.stores["WH"].stream
    assert plan2.stores["ggF_H"].key == plan.stores["ggF_H"].key
    assert reproduce.study_hash(bigger) != reproduce.study_hash(tiny)
    same = load_config(reproduce.ReproduceConfig, TINY, ["--results=elsewhere", "--workers=1", "--threads=2"])
    assert reproduce.study_hash(same) == reproduce.study_hash(tiny)
    ft = reproduce.finetune_key(tiny, plan, "WH_vs_ZH", 40, "scratch", 0, 20, 30)
    assert ft == reproduce.finetune_key(same, reproduce.make_plan(same), "WH_vs_ZH", 40, "scratch", 0, 20, 30)
    lr = load_config(reproduce.ReproduceConfig, TINY, ["--finetune.lr=3e-4"])
    assert reproduce.finetune_key(lr, reproduce.make_plan(lr), "WH_vs_ZH", 40, "scratch", 0, 20, 30) != ft


# ----------------------------------------------------------------------------- the tiny study
def _legacy_catalog(path: Path) -> Path:
    """The shipped catalog as it was before the LO generator (issue #28), written to ``path``: tHq external-only,
    ttyy/ttW/ttt/tttt the SecondHard proxies. The tiny study uses it so that its skip and proxy paths stay
    exercised (and cheap); its resumed copies read the same file."""
    import yaml

    doc = yaml.safe_load((REPO / "hepfm_data" / "core" / "catalog.yaml").read_text())
    procs = {p["name"]: p for p in doc["processes"]}
    for name in ("ttyy", "ttW", "ttt", "tttt"):
        proxy = procs.pop(f"{name}_proxy")
        procs[name].update(fidelity="proxy", pythia=proxy["pythia"], description=proxy["description"])
        procs[name].pop("generator")
    procs["tHq"].update(fidelity="external-only", pythia=None)
    procs["tHq"].pop("generator")
    doc["processes"] = list(procs.values())
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return path


def _args(root: Path, catalog: str) -> list[str]:
    return [str(TINY), f"--results={root / 'results'}", f"--report={root / 'REPRODUCTION.md'}",
            f"--plots={root / 'results' / 'plots'}", f"--workdir={root / 'work'}", f"--data.stores={root / 'stores'}",
            f"--data.catalog={catalog}"]


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """The tiny study run once: (root, config, the run's return value)."""
    root = tmp_path_factory.mktemp("study")
    cfg, _ = reproduce.parse(_args(root, str(_legacy_catalog(root / "legacy-catalog.yaml"))))
    out = reproduce.run(cfg, "reproduce_tiny.yaml")
    return root, cfg, out


def test_tiny_study_end_to_end(tiny_study):
    """One command runs every stage of the tiny study (Pythia 8 stores through build_store on Dask, multiclass +
    multilabel pretraining, 2 tasks x 2 sizes x 4 variants x 2 seeds, CKA) and writes one result per run, the
    backbones, REPRODUCTION.md and its plots; tHq (external-only) and the task that needs it are skipped and say
    so, the proxies are flagged, the report states the test-set size and its statistical error."""
    root, cfg, out = tiny_study
    keys = out["keys"]
    assert len(keys["store"]) == 6 and len(keys["pretrain"]) == 2 and len(keys["finetune"]) == 32
    assert len(keys["cka"]) == 4
    assert sorted(out["executed"]) == sorted(k for ks in keys.values() for k in ks)
    for k in (k for ks in keys.values() for k in ks):
        doc = json.loads((root / "results" / f"{k}.json").read_text())
        assert doc["key"] == k and doc["machine"]["cores"] >= 1
    for mode in ("multiclass", "multilabel"):
        key = next(k for k in keys["pretrain"] if mode in k)
        assert (root / "results" / "backbones" / f"{key}.safetensors").exists()
        assert not (root / "results" / "partial" / key).exists()  # the resume state goes once the run is done
    runs = [json.loads((root / "results" / f"{k}.json").read_text()) for k in keys["finetune"]]
    assert all(0 <= r["test_accuracy"] <= 1 and r["test_n_events"] > 0 for r in runs)
    subsets = {(r["task"], r["n_per_class"], r["variant"]): r for r in runs}
    assert len(subsets) == 16
    cka = json.loads((root / "results" / f"{keys['cka'][0]}.json").read_text())
    assert set(cka["cka"]) == {"baseline vs baseline", "baseline vs finetuned-multiclass",
                               "baseline vs finetuned-multilabel"}
    assert all(0 <= v[0] <= 1 + 1e-9 for table in cka["cka"].values() for v in table.values())
    report = (root / "REPRODUCTION.md").read_text()
    for needle in ("## Fine-tuning (Table I style)", "## CKA (Table III style)", "## Layer-wise CKA",
                   "## What matches the paper", "**Skipped: tHq**", "fcnc_vs_tHq**: not run", "**PROXY**",
                   "ttW_vs_ttt † (proxy: ttW, ttt)", "fixed test set of", "sqrt(a(1−a)/N)", "Status: complete"):
        assert needle in report, needle
    for png in ("accuracy_vs_size.png", "cka_layerwise.png"):
        assert (root / "results" / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _timing_free(report: str) -> list[str]:
    """The report without the sections that print wall times of runs (Cost, Where and when)."""
    keep, lines = True, []
    for line in report.splitlines():
        if line.startswith("## "):
            keep = line not in ("## Cost (SPEC §6)", "## Where and when")
        if keep:
            lines.append(line)
    return lines


def test_resume_reruns_only_the_missing_run_and_rebuilds_stores_bit_identically(tiny_study, tmp_path):
    """A fresh sitting on a copy of the results: with nothing missing nothing runs and the report is rewritten
    byte for byte. Then one fine-tuning result, its weights and one store are deleted: the store is rebuilt
    bit-identically (same shard checksums), only that run executes, with the same test accuracy (deterministic),
    the report differs at most in its timing sections, and putting the old result back restores it byte for byte.
    A store needed by no absent run (ggF_H: pretraining is done) is not rebuilt.
    A CKA result missing where one member's weights are gone re-trains that member and gives the same CKA."""
    root, cfg, out = tiny_study
    shutil.copytree(root, tmp_path / "s")
    cfg2, _ = reproduce.parse(_args(tmp_path / "s", cfg.data.catalog))
    first = (tmp_path / "s" / "REPRODUCTION.md").read_text()
    again = reproduce.run(cfg2, "reproduce_tiny.yaml")
    assert again["executed"] == [] and (tmp_path / "s" / "REPRODUCTION.md").read_text() == first

    key = next(k for k in out["keys"]["finetune"] if "finetuned-multiclass-s1" in k)
    result = tmp_path / "s" / "results" / f"{key}.json"
    old = result.read_text()
    result.unlink()
    shutil.rmtree(tmp_path / "s" / "work" / "finetune" / key)
    plan = reproduce.make_plan(cfg2)
    spec = plan.stores[json.loads(old)["classes"][0]]  # a class of the missing run's task: rebuilt
    unused = plan.stores["ggF_H"]  # pretraining only, and pretraining is done: not rebuilt
    shutil.rmtree(spec.root(cfg2))
    shutil.rmtree(unused.root(cfg2))
    resumed = reproduce.run(cfg2, "reproduce_tiny.yaml")
    assert resumed["executed"] == [key]
    assert not Path(unused.root(cfg2)).exists()
    store_doc = json.loads((tmp_path / "s" / "results" / f"{spec.key}.json").read_text())
    from hepfm_data.store import open_store

    assert reproduce.digest([s.sha256 for s in open_store(spec.url(cfg2)).shards()], 64) == store_doc["shards_sha256"]
    new = json.loads(result.read_text())
    assert new["test_accuracy"] == json.loads(old)["test_accuracy"] and new["history"][0]["train_loss"] == \
        json.loads(old)["history"][0]["train_loss"]
    assert _timing_free((tmp_path / "s" / "REPRODUCTION.md").read_text()) == _timing_free(first)
    result.write_text(old)
    reproduce.run(cfg2, "reproduce_tiny.yaml", report_only=True)
    assert (tmp_path / "s" / "REPRODUCTION.md").read_text() == first

    # a CKA result missing on a machine without one member's weights: the member is re-trained (not re-recorded)
    # and the CKA comes out the same
    cka_key = out["keys"]["cka"][0]
    cka_file = tmp_path / "s" / "results" / f"{cka_key}.json"
    cka_old = json.loads(cka_file.read_text())
    member = cka_old["members"]["scratch"][0]
    cka_file.unlink()
    shutil.rmtree(tmp_path / "s" / "work" / "finetune" / member)
    again = reproduce.run(cfg2, "reproduce_tiny.yaml")
    assert again["executed"] == [cka_key]
    cka_new = json.loads(cka_file.read_text())["cka"]
    assert cka_new.keys() == cka_old["cka"].keys()
    for name, layers in cka_old["cka"].items():
        assert cka_new[name].keys() == layers.keys()
        for layer, value in layers.items():
            assert cka_new[name][layer] == pytest.approx(value, abs=1e-9), (name, layer)


# ----------------------------------------------------------------------------- shipped backbones
def test_export_backbones_writes_cards_and_pretrained_loads_them_by_name(tiny_study, tmp_path):
    """--export-backbones ships the study's two backbones with model cards (process list with fidelity, events,
    epochs, validation metric over all classes and per class, code version, sha256); check_backbone re-measures
    one class alone on regenerated events; pretrained(name) loads them and refuses tampered weights."""
    root, cfg, _ = tiny_study
    dest = tmp_path / "shipped"
    assert reproduce.main([*_args(root, cfg.data.catalog), f"--export-backbones={dest}"]) == 0
    assert available_pretrained(dest) == ["gn-multiclass", "gn-multilabel"]
    model, card = pretrained("gn-multiclass", dest)
    assert model.head.out_features == 4 and card["classes"] == ["ggF_H", "VBF_H", "WH", "ZH"]
    assert [p["fidelity"] for p in card["training_data"]["processes"]] == ["native"] * 4
    assert card["training_data"]["skipped"] == {"tHq": reproduce.make_plan(cfg).skipped_processes["tHq"]}
    assert card["validation"]["metric"] == "accuracy" and card["training"]["epochs"] == 1
    assert model_card("gn-multilabel", dest)["validation"]["metric"] == "loss"
    per_class = card["validation"]["per_class"]
    assert sorted(per_class) == sorted(card["classes"])
    assert sum(c["n_events"] for c in per_class.values()) == card["validation"]["n_events"]
    # re-measuring one class alone labels its events by the card's class index: the same value as in a check of all
    (everything,) = reproduce.check_backbone("gn-multiclass", 150, tmp_path / "sample", dest, workers=2)
    (wh,) = reproduce.check_backbone("gn-multiclass", 150, tmp_path / "sample", dest, processes=["WH"])
    assert everything["what"] == "all" and wh["what"] == "WH" and wh["card"] == per_class["WH"]["value"]
    assert 0 < wh["n_events"] < everything["n_events"]
    with pytest.raises(ConfigError, match="ttH not among its classes"):
        reproduce.check_backbone("gn-multiclass", 150, tmp_path / "sample", dest, processes=["ttH"])
    weights = dest / "gn-multiclass.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    with pytest.raises(PretrainedError, match="does not match its model card"):
        pretrained("gn-multiclass", dest)
    with pytest.raises(PretrainedError, match="no pretrained backbone 'gn-other'"):
        pretrained("gn-other", dest)


@pytest.fixture(scope="module")
def backbone_sample(tmp_path_factory):
    """One regenerated sample for both shipped backbones (the same processes, seeds and block size: the
    stores of the first check are reused by the second)."""
    return tmp_path_factory.mktemp("backbone_sample")


@pytest.mark.parametrize("name", ["gn-multiclass", "gn-multilabel"])
def test_shipped_backbones_match_their_cards(name, backbone_sample):
    """Each backbone shipped in hepfm_models/pretrained/ loads, matches its card's sha256 and reproduces the card's
    per-class validation metric of every process Pythia 8 makes alone on a small regenerated sample (the first 400
    events of each, same seeds: a subset of the card's validation events) within 3 sigma of the sample's
    statistical error. The LO-generated classes are left out for time: their integrations alone take minutes
    (tHq 34 s, ttt 74 s in the 20k study's stores); the card's metric over all classes covers them."""
    if name not in available_pretrained():
        pytest.skip(f"no {name} shipped in hepfm_models/pretrained/ yet (exported after the full study: "
                    f"python -m recipes.reproduce recipes/configs/reproduce_20k.yaml --export-backbones)")
    from hepfm_data.core.catalog import load_catalog

    model, card = pretrained(name)  # checks the fingerprint
    cat = load_catalog()
    native = [p["name"] for p in card["training_data"]["processes"] if cat.process(p["name"]).generator is None]
    assert len(native) >= 6
    checks = reproduce.check_backbone(name, 400, backbone_sample, workers=2, processes=native)
    assert [c["what"] for c in checks] == native
    for c in checks:
        assert c["n_events"] > 10, c
        assert abs(c["value"] - c["card"]) <= 3 * c["stat_error"], c
