"""The event record contract and the catalog command line."""

from __future__ import annotations

import subprocess
import sys

import awkward as ak
import numpy as np
import pytest

from hepfm_data import HepfmError
from hepfm_data.cli.main import main
from hepfm_data.core.events import EVENT_FIELDS, concatenate, empty_events, validate_events, wrap_phi
from hepfm_data.testing import synthetic_events


def test_synthetic_events_are_valid_and_deterministic():
    """testing.synthetic_events gives a valid record; the same seed gives the same bytes."""
    a = validate_events(synthetic_events(50, seed=7))
    b = validate_events(synthetic_events(50, seed=7))
    c = validate_events(synthetic_events(50, seed=8))
    assert len(a) == 50 and set(a.fields) == set(EVENT_FIELDS)
    assert ak.to_list(a) == ak.to_list(b)
    assert ak.to_list(a) != ak.to_list(c)
    assert a.jets.pt.type.content.content.primitive == "float32"  # var * float32
    assert str(a.electrons.charge.type).endswith("int8")


def test_validate_events_names_the_bad_field():
    """Missing fields and non-finite values are reported by name, not deep in awkward."""
    ev = synthetic_events(5, seed=1)
    with pytest.raises(HepfmError, match=r"block-3: event record lacks field\(s\) \['met'\]"):
        validate_events(ev[[f for f in ev.fields if f != "met"]], where="block-3")
    bad_pt = ak.to_numpy(ak.flatten(ev.jets.pt)).copy()
    bad_pt[0] = np.nan
    jets = ak.with_field(ev.jets, ak.unflatten(bad_pt, ak.num(ev.jets)), "pt")
    with pytest.raises(HepfmError, match=r"jets\.pt holds non-finite"):
        validate_events(ak.with_field(ev, jets, "jets"))
    with pytest.raises(HepfmError, match="muons.*lacks \\['charge'\\]"):
        validate_events(ak.with_field(ev, ev.muons[["pt", "eta", "phi"]], "muons"))
    with pytest.raises(HepfmError, match="expected an awkward Array"):
        validate_events({"jets": []})


def test_empty_and_concatenate():
    """An empty record is valid; concatenation keeps the schema."""
    e = validate_events(empty_events())
    assert len(e) == 0
    both = concatenate([synthetic_events(3, 0), synthetic_events(4, 1, first_event_id=3)])
    assert len(validate_events(both)) == 7
    assert ak.to_list(both.event_id) == list(range(7))


def test_wrap_phi():
    """φ is wrapped into [-π, π)."""
    out = wrap_phi(np.array([np.pi, -np.pi, 3 * np.pi / 2, 0.1]))
    np.testing.assert_allclose(out, [-np.pi, -np.pi, -np.pi / 2, 0.1])


def test_cli_catalog_table_and_entry(capsys):
    """`hepfm-data catalog` lists 12 + 4 processes and 5 tasks; NAME shows one entry."""
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    assert "12 pretraining, 4 evaluation," in out and "Tasks (5 of the paper," in out
    for name in ("ggF_H", "tttt", "ttH_cp_odd", "stop_vs_ttH"):
        assert name in out
    assert main(["catalog", "ttW_proxy"]) == 0
    out = capsys.readouterr().out
    assert "fidelity: proxy" in out and "SecondHard:SingleW = on" in out and "HWresearch/Delphes" in out
    assert main(["catalog", "fcnc_vs_tHq"]) == 0
    assert "label 1: fcnc" in capsys.readouterr().out


def test_cli_errors_are_one_line(capsys, tmp_path):
    """Unknown names and broken catalog files give a one-line error and exit code 1."""
    assert main(["catalog", "ttZ"]) == 1
    err = capsys.readouterr().err
    assert "unknown process 'ttZ'" in err and "Traceback" not in err
    bad = tmp_path / "c.yaml"
    bad.write_text("schema_version: 1\n")
    assert main(["catalog", "--file", str(bad)]) == 1
    assert "c.yaml" in capsys.readouterr().err


def test_console_script_installed():
    """The `hepfm-data` entry point is installed and runs in a fresh process."""
    exe = [sys.executable, "-m", "hepfm_data.cli.main", "catalog"]
    res = subprocess.run(exe, capture_output=True, text=True, check=True)
    assert "Processes (12 pretraining, 4 evaluation," in res.stdout


def test_public_api_resolves():
    """Every name in hepfm_data.__all__ resolves (lazy names import their module)."""
    import hepfm_data

    for name in hepfm_data.__all__:
        assert getattr(hepfm_data, name) is not None, name
