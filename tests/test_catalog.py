"""The shipped catalog is complete and every kind of broken catalog is reported precisely."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from hepfm_data import CatalogError, UnknownNameError, load_catalog
from hepfm_data.core.catalog import parse_catalog

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "hepfm_data" / "core" / "catalog.yaml"


@pytest.fixture()
def raw() -> dict:
    return yaml.safe_load(SHIPPED.read_text())


def test_shipped_catalog_has_all_processes_and_tasks():
    """SPEC §1: 12 pretraining (indices 0..11), 4 evaluation processes, 5 binary tasks (plus SPEC §7's)."""
    cat = load_catalog()
    assert [p.index for p in cat.pretraining] == list(range(12))
    assert [p.name for p in cat.pretraining] == [
        "ggF_H", "VBF_H", "WH", "ZH", "ttH", "tHq", "single_top", "ttbar", "ttyy", "ttW", "ttt", "tttt"]
    # SPEC §1's 4 evaluation processes and 5 tasks, besides the related studies' (SPEC §7)
    assert {"ttH_cp_even", "ttH_cp_odd", "stop", "fcnc"} == {p.name for p in cat.evaluation}
    assert {"ttH_cp_even_vs_odd", "fcnc_vs_tHq", "ttW_vs_ttt", "stop_vs_ttH", "WH_vs_ZH"} <= {t.name for t in cat.tasks}
    assert cat.task("ttbar_vs_Hplus_tb").classes == ("ttbar", "Hplus_tb")  # SPEC §7.3
    assert cat.task("ttbar_vs_ttH_bb").classes == ("ttbar", "ttH_bb")
    assert cat.task("ttH_cp_even_vs_odd").classes == ("ttH_cp_even", "ttH_cp_odd")


def test_fidelity_and_provenance():
    """Proxies are labelled and kept under their own (non-pretraining) names; the paper's tHq, ttyy, ttW, ttt and
    tttt are native from the LO generator (issue #28); every entry has upstream and citation."""
    cat = load_catalog()
    proxies = {"ttyy_proxy", "ttW_proxy", "ttt_proxy", "tttt_proxy"}
    assert {p.name for p in cat.processes if p.fidelity == "proxy"} == proxies
    assert all(cat.process(n).role == "study" for n in proxies)
    for name in ("tHq", "ttyy", "ttW", "ttt", "tttt"):
        p = cat.process(name)
        assert p.fidelity == "native" and p.generatable and p.generator.kind == "lo" and p.generator.process == name
    thq = cat.process("tHq")
    assert thq.upstream_name == "tHjb"
    assert cat.upstream.repository == "HWresearch/Delphes"
    for p in cat.processes:
        assert p.citation in cat.citations
        assert "PROXY" in p.description or p.fidelity != "proxy"
    assert cat.process("stop").slha == "builtin:stop_582_400"


def test_vigl_samples_masses_slices_and_weights():
    """SPEC §7.1: one entry per G* mass (G* -> HH forced, H -> b b̄) and per QCD pT-hat slice (cross-section
    weighted), all with particle flow (large-R jets with constituents), study role, fidelity stated."""
    cat = load_catalog()
    sig = [p for p in cat.processes if p.name.startswith("vigl_gstar_")]
    qcd = [p for p in cat.processes if p.name.startswith("vigl_qcd_")]
    assert [p.name for p in sig] == [f"vigl_gstar_{m}" for m in (1000, 1500, 2000, 2500)]
    assert len(qcd) == 4 and all(p.weight == "cross_section" and "HardQCD:all = on" in p.pythia for p in qcd)
    for p in sig:
        m = p.name.rsplit("_", 1)[1]
        assert f"5100039:m0 = {m}" in p.pythia and "5100039:onIfMatch = 25 25" in p.pythia
        assert "25:onIfMatch = 5 -5" in p.pythia and p.weight == "generator"
    for p in sig + qcd:
        assert p.role == "study" and p.particle_flow and p.citation == "vigl2024"
        assert "no pile-up" in p.description and "instead of the CMS Open Data" in p.description
    assert all(p.weight == "generator" for p in cat.processes if not p.name.startswith("vigl_qcd_"))


def test_root_catalog_is_the_shipped_one():
    """catalog.yaml at the repository root is the file the installed package ships."""
    assert (ROOT / "catalog.yaml").read_bytes() == SHIPPED.read_bytes()


def test_selection_features_labels_declared():
    """SPEC §2-4 live in the catalog: cuts, b-tag efficiencies, 7 node features, 38 labels."""
    cat = load_catalog()
    sel = cat.selection
    assert sel.photon.pt_min == 20.0 and not sel.photon.pt_inclusive and sel.photon.eta_crack == (1.37, 1.52)
    assert sel.muon.abs_eta_max == 2.7 and sel.jet.pt_min == 25.0 and sel.overlap_dr == 0.4
    pt = 100.0
    assert sel.btag.b(pt) == pytest.approx(0.80 * __import__("math").tanh(0.3) * 30 / (1 + 8.6))
    assert sel.btag.light(pt) == pytest.approx(0.002 + 7.3e-4)
    assert cat.graph.node_feature_names == ("pt", "eta", "phi", "energy", "btag", "charge", "type")
    assert [f.name for f in cat.graph.edge_features] == ["deta", "dphi", "dr"]
    assert cat.labels.n_labels == 38 and cat.labels.n_counts == 5
    assert cat.labels.names[:5] == ("n_higgs", "n_top", "n_vector", "n_w", "n_z")
    assert cat.labels.names[5:8] == ("higgs_pt0", "higgs_pt1", "higgs_pt2")


def test_unknown_names():
    """Asking for a process or task that does not exist lists the valid names."""
    cat = load_catalog()
    with pytest.raises(UnknownNameError, match="unknown process 'ttZ'.*ggF_H"):
        cat.process("ttZ")
    with pytest.raises(UnknownNameError, match="unknown task"):
        cat.task("nope")


def _broken(raw: dict, mutate) -> dict:
    data = copy.deepcopy(raw)
    mutate(data)
    return data


def _set(path, value):
    def f(d):
        *head, last = path
        for k in head:
            d = d[k]
        d[last] = value
    return f


def _del(path):
    def f(d):
        *head, last = path
        for k in head:
            d = d[k]
        del d[last]
    return f


@pytest.mark.parametrize(
    ("mutate", "entry", "field", "problem"),
    [
        # unknown key
        (_set(["processes", 4, "colour"], "red"), "processes[4] ttH", "colour", "unknown key"),
        (_set(["selection", "jet", "pt_max"], 1.0), "selection.jet", "pt_max", "unknown key"),
        (_set(["extra_section"], {}), "<top level>", "extra_section", "unknown key"),
        # missing field
        (_del(["processes", 0, "fidelity"]), "processes[0] ggF_H", "fidelity", "missing required field"),
        (_del(["selection", "muon", "abs_eta_max"]), "selection.muon", "abs_eta_max", "missing required field"),
        (_del(["labels", "multilabel", "eta_edges"]), "labels.multilabel", "eta_edges", "missing required field"),
        # duplicate index / name
        (_set(["processes", 3, "index"], 2), "processes[3] ZH", "index", "duplicate index 2"),
        (_set(["processes", 3, "name"], "WH"), "processes[3] WH", "name", "duplicate process name"),
        # bad type
        (_set(["processes", 1, "index"], "one"), "processes[1] VBF_H", "index", "expected int, got str"),
        (_set(["processes", 1, "paper_events"], True), "processes[1] VBF_H", "paper_events", "got bool"),
        (_set(["selection", "photon", "pt_min"], "20 GeV"), "selection.photon", "pt_min", "expected float"),
        (_set(["processes", 0, "pythia"], ["HiggsSM:gg2H on"]), "processes[0] ggF_H", "pythia", "Key = value"),
        # bad values
        (_set(["processes", 0, "role"], "train"), "processes[0] ggF_H", "role", "'pretrain' or 'eval'"),
        (_set(["processes", 0, "fidelity"], "approximate"), "processes[0] ggF_H", "fidelity", "native, proxy"),
        (_set(["processes", 5, "pythia"], ["HiggsSM:all = on"]), "processes[5] tHq", "pythia", "particle-data"),
        (_set(["processes", 0, "citation"], "nobody"), "processes[0] ggF_H", "citation", "unknown citation"),
        (_set(["tasks", 0, "classes"], ["ttH_cp_even", "ttX"]), "tasks[0] ttH_cp_even_vs_odd", "classes",
         "unknown process 'ttX'"),
        (_set(["tasks", 1, "classes"], ["tHq"]), "tasks[1] fcnc_vs_tHq", "classes", "exactly 2"),
        (_set(["labels", "multilabel", "eta_edges"], [1.5, 0.0]), "labels.multilabel", "eta_edges", "increasing"),
        (_set(["schema_version"], 99), "<top level>", "schema_version", "schema_version 1"),
        (_set(["graph", "object_types", "tau"], 5), "graph", "object_types", "exactly"),
        # event weights: a known rule, and cross sections only for Pythia's own (not reweighted) processes
        (_set(["processes", 0, "weight"], "lumi"), "processes[0] ggF_H", "weight", "generator, cross_section"),
        (_set(["processes", 13, "weight"], "cross_section"), "processes[13] ttH_cp_odd", "weight", "cp_mixing"),
    ],
)
def test_broken_catalog_errors_name_file_entry_field(raw, tmp_path, mutate, entry, field, problem):
    """Each kind of defect raises CatalogError naming the file, the entry and the field."""
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(_broken(raw, mutate), sort_keys=False))
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    err = info.value
    assert err.source == str(path)
    assert (err.entry, err.field) == (entry, field)
    assert problem in err.problem
    assert str(path) in str(err) and field in str(err)


def test_invalid_yaml_and_unreadable_file(tmp_path):
    """YAML syntax errors and missing files name the file (and the line)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("processes: [\n  {name: x\n")
    with pytest.raises(CatalogError, match=r"bad\.yaml.*line \d+.*invalid YAML"):
        load_catalog(bad)
    with pytest.raises(CatalogError, match="missing.yaml.*cannot read"):
        load_catalog(tmp_path / "missing.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    """A python-object tag is refused (safe_load), never executed."""
    evil = tmp_path / "evil.yaml"
    evil.write_text("schema_version: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(CatalogError, match="invalid YAML"):
        load_catalog(evil)


def test_catalog_dataclasses_are_frozen():
    """Catalog entries cannot be mutated by a user by accident."""
    p = load_catalog().process("ttH")
    with pytest.raises(AttributeError):
        p.index = 3  # type: ignore[misc]


def test_parse_catalog_rejects_non_mapping():
    with pytest.raises(CatalogError, match="expected a mapping"):
        parse_catalog(["not", "a", "mapping"], "list.yaml")
