"""``hepfm-data build / info / verify`` end to end on real inputs (the Delphes file,
uproot-written Delphes-like files, Pythia 8 generation)."""

from __future__ import annotations

import json
import shutil

import numpy as np

from hepfm_data.cli.main import main
from hepfm_data.readers.delphes import write_delphes_like
from hepfm_data.store import open_store
from hepfm_data.testing import synthetic_events


def test_build_info_verify_append_from_delphes(tmp_path, delphes_file, capsys):
    """build --input (glob) writes a verified store; info reports events, bytes/event, splits and
    ranges; a corrupted shard makes verify exit 1 naming it; --append adds a file; re-building fails clearly."""
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copyfile(delphes_file, inp / "ttH_a.root")
    write_delphes_like(str(inp / "ttH_b.root"), synthetic_events(60, seed=2))
    out = tmp_path / "stores"
    # --workers 1: the 2 units in this process (a LocalCluster start costs more than the build; the Dask path
    # is test_build's killed-build test)
    assert main(["build", "ttH", "--input", str(inp / "*.root"), "--out", str(out), "--events-per-shard", "20",
                 "--step-size", "25", "--workers", "1", "--quiet"]) == 0
    assert "70 events" in capsys.readouterr().out
    store = open_store(str(out / "ttH"))
    assert store.manifest.n_events == 70 and store.manifest.event_id_rule.startswith("blake2b")
    assert main(["info", str(out / "ttH"), "--quiet", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["events"] == 70 and sum(info["splits"].values()) == 70
    assert info["bytes_per_event"] == store.manifest.bytes / 70
    assert info["features"]["type"] == {"min": 0.0, "max": 4.0, "mean": info["features"]["type"]["mean"]}
    assert -np.pi <= info["features"]["phi"]["min"] and info["features"]["phi"]["max"] < np.pi
    assert info["nodes_per_type"]["met"] == 70
    assert main(["info", str(out / "ttH"), "--quiet"]) == 0
    assert "bytes/event" in capsys.readouterr().out
    assert main(["verify", str(out / "ttH"), "--quiet"]) == 0
    assert "all" in capsys.readouterr().out

    assert main(["build", "ttH", "--input", str(inp / "ttH_a.root"), "--out", str(out), "--quiet"]) == 1
    assert "already exists" in capsys.readouterr().err
    write_delphes_like(str(tmp_path / "ttH_c.root"), synthetic_events(15, seed=3))
    assert main(["build", "ttH", "--input", str(tmp_path / "ttH_c.root"), "--out", str(out), "--append",
                 "--events-per-shard", "20", "--quiet"]) == 0
    assert open_store(str(out / "ttH")).manifest.n_events == 85

    bad = store.shards()[1]
    victim = next(p for p in sorted((out / "ttH" / bad.path).rglob("*")) if p.is_file() and p.parent.name == "c")
    victim.write_bytes(victim.read_bytes()[:-5] + b"xxxxx")
    assert main(["verify", str(out / "ttH"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"BAD {bad.path}" in err and "1 of" in err


def test_build_errors_are_one_line(tmp_path, capsys):
    """Missing inputs and a non-ROOT input give exit 1 with a message naming the file, not a traceback."""
    assert main(["build", "ttH", "--input", str(tmp_path / "none-*.root"), "--out", str(tmp_path / "s")]) == 1
    assert "no input file matches" in capsys.readouterr().err
    (tmp_path / "x.root").write_text("hello")
    assert main(["build", "ttH", "--input", str(tmp_path / "x.root"), "--out", str(tmp_path / "s"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "x.root: not a ROOT file" in err and "Traceback" not in err
    assert main(["verify", str(tmp_path / "nostore")]) == 1
    assert "not a store" in capsys.readouterr().err


def test_build_generate_runs_pythia_and_resumes(tmp_path, capsys):
    """build --generate N produces Pythia 8 blocks (hepfm_data.pipelines.production) and builds a store whose
    provenance names the generator, one build unit per --entries-per-unit events (2 here); re-running with
    --overwrite reuses the blocks and gives the same bytes."""
    out = tmp_path / "stores"
    args = ["build", "ttH", "--generate", "40", "--block-size", "20", "--entries-per-unit", "20", "--workers", "1",
            "--seed", "3", "--out", str(out), "--events-per-shard", "16", "--quiet"]
    assert main(args) == 0
    store = open_store(str(out / "ttH"))
    assert {s.path.split("-")[1] for s in store.shards()} == {"00000", "00001"}  # <split>-<unit>-<j>
    assert store.manifest.n_events == 40 and store.manifest.btag_seed == 3
    assert {p["source"] for p in store.manifest.provenance} == {"pythia8"}
    assert store.verify() == []
    d = store.read_shard(0)
    assert np.all(d.nodes[d.offsets[1:] - 1, 6] == 4)
    first = [s.sha256 for s in store.shards()]
    assert main([*args, "--overwrite"]) == 0
    assert [s.sha256 for s in open_store(str(out / "ttH")).shards()] == first


def test_verify_and_info_cover_every_store_under_a_storage_root(tmp_path, capsys):
    """`verify ROOT` / `info ROOT` on a storage root check and summarise each store under it, counting
    every shard re-hashed (paper + record); a damaged shard in one store fails `verify ROOT` naming that
    shard and the count checked; an empty directory is still 'not a store'."""
    from hepfm_data.testing import write_synthetic_stores

    root = tmp_path / "root"
    write_synthetic_stores(str(root), {"ttH": ("zarr", 60, 1, 0), "ZH": ("parquet", 60, 2, 1000)})
    assert main(["verify", str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    counts = {}
    for proc in ("ZH", "ttH"):
        m = open_store(str(root / proc)).manifest
        counts[proc] = (len(m.shards), len(m.record_shards))
        assert counts[proc][1] == counts[proc][0] > 0  # one record shard per paper shard, both re-hashed
        p, r = counts[proc]
        assert f"{root}/{proc}: all {p + r} shards OK ({p} paper + {r} record; 60 events," in out
    assert main(["info", str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "process ZH" in out and "process ttH" in out
    victim = sorted((root / "ZH" / "shards").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    assert main(["verify", str(root), "--quiet"]) == 1
    err = capsys.readouterr().err
    p, r = counts["ZH"]
    assert victim.name in err and f"{root}/ZH: 1 of {p + r} shards failed verification ({p} paper, {r} record)" in err
    (tmp_path / "empty").mkdir()
    assert main(["verify", str(tmp_path / "empty")]) == 1
    assert "not a store" in capsys.readouterr().err
