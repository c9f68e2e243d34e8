"""Pythia 8 generation: event record, provenance, determinism, and input errors before generation."""

from __future__ import annotations

import dataclasses

import awkward as ak
import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from hepfm_data import load_catalog  # noqa: E402
from hepfm_data.core.errors import GenerationError, InputFileError, UnknownNameError  # noqa: E402
from hepfm_data.core.events import validate_events  # noqa: E402
from hepfm_data.readers.generation import generate  # noqa: E402


def _bytes(events: ak.Array) -> bytes:
    form, length, buffers = ak.to_buffers(ak.to_packed(events))
    return form.to_json().encode() + str(length).encode() + b"".join(
        np.asarray(buffers[k]).tobytes() for k in sorted(buffers))


@pytest.fixture(scope="module")
def ttbar():
    return generate("ttbar", 60, 11)


def test_ttbar_event_record_and_provenance(ttbar):
    """Generated tt̄ events form a valid event record with Pythia provenance and a truth record of tops and Ws."""
    events, info = ttbar
    validate_events(events)
    assert len(events) == 60
    assert events.event_id.tolist() == list(range(60))
    assert info.process == "ttbar" and info.source == "pythia8" and info.fidelity == "native"
    assert info.seed == 11
    gen = info.generator
    assert gen["pythia_version"].startswith("8.317")
    assert "Top:gg2ttbar = on" in gen["settings"] and "Random:seed = 11" in gen["settings"]
    assert 200 < gen["sigma_pb"] < 1500 and 0 < gen["sigma_err_pb"] < gen["sigma_pb"]
    assert gen["n_accepted"] == 60
    pid = events.truth.pid
    # exactly one last-copy t and t̄ and one W+ and W- per event (top -> W b)
    assert ak.all(ak.sum(pid == 6, axis=1) == 1) and ak.all(ak.sum(pid == -6, axis=1) == 1)
    assert ak.all(ak.sum(pid == 24, axis=1) == 1) and ak.all(ak.sum(pid == -24, axis=1) == 1)
    top_mass = ak.flatten(events.truth.mass[abs(pid) == 6])
    assert abs(float(np.median(top_mass)) - 172.5) < 3.0
    w_mass = ak.flatten(events.truth.mass[abs(pid) == 24])
    assert abs(float(np.median(w_mass)) - 80.4) < 2.0
    # at least one b quark per event passes pT > 5 GeV, |eta| < 2.5 in most events
    assert ak.mean(ak.sum(abs(pid) == 5, axis=1) >= 1) > 0.8
    # detector objects exist with sane ranges: jets above 20 GeV, phi wrapped
    assert ak.all(ak.flatten(events.jets.pt) > 20.0)
    assert ak.mean(ak.num(events.jets)) > 3.0
    phi = ak.flatten(events.jets.phi)
    assert ak.all((phi >= -np.pi) & (phi < np.pi))
    assert ak.all(ak.flatten(abs(events.electrons.charge)) == 1)


def test_same_seed_same_bytes_different_seed_differs(ttbar):
    """Same seed gives byte-identical arrays; another seed gives different events."""
    again, _ = generate("ttbar", 60, 11)
    assert _bytes(again) == _bytes(ttbar[0])
    other, _ = generate("ttbar", 20, 12)
    assert _bytes(other) != _bytes(ttbar[0][:20])


def test_proxy_is_labelled():
    """A SecondHard proxy process carries fidelity 'proxy' and the catalog's proxy note in its metadata."""
    events, info = generate("ttW_proxy", 5, 3)
    assert info.fidelity == "proxy"
    assert "PROXY" in info.generator["proxy_note"]
    assert len(events) == 5


def test_unknown_process_is_rejected():
    """An unknown process name raises UnknownNameError listing the known names."""
    with pytest.raises(UnknownNameError, match="ttbar"):
        generate("not_a_process", 10, 1)


def test_invalid_setting_names_the_setting():
    """A setting Pythia 8 does not know raises GenerationError naming the setting, before generating."""
    bad = dataclasses.replace(load_catalog().process("ggF_H"), pythia=("HiggsSM:gg2H = on", "Foo:bar = on"))
    with pytest.raises(GenerationError, match="Foo:bar = on"):
        generate(bad, 10, 1)


def test_external_only_process_explains_inputs():
    """An external-only process (no local hard process) raises GenerationError saying how to supply LHE or Delphes
    input."""
    ext = dataclasses.replace(load_catalog().process("ttbar"), name="ext_only", fidelity="external-only", pythia=None)
    with pytest.raises(GenerationError) as err:
        generate(ext, 10, 1)
    msg = str(err.value)
    assert "Beams:frameType = 4" in msg and "--lhe" in msg and "hepfm-data build ext_only --input" in msg


def test_missing_lhe_and_slha_files(tmp_path):
    """A missing LHE file or a missing user SLHA file raises InputFileError naming the file."""
    with pytest.raises(InputFileError, match="nope.lhe"):
        generate("tHq", 10, 1, lhe=tmp_path / "nope.lhe")
    stop = dataclasses.replace(load_catalog().process("stop"), slha=str(tmp_path / "missing.slha"))
    with pytest.raises(InputFileError, match="missing.slha"):
        generate(stop, 10, 1)
    with pytest.raises(GenerationError, match="seed"):
        generate("ttbar", 10, 0)


# ------------------------------------------------------------------ Dask production


@pytest.mark.slow
def test_produce_blocks_resume_and_determinism(tmp_path):
    """CLI production writes atomic Parquet+JSON blocks; an interrupted run resumes, regenerating only the
    missing block with identical bytes (1 worker of a cluster given by scheduler address vs 2 LocalCluster
    workers); the blocks load back as valid event records and plot to a PNG."""
    from hepfm_data.cli.main import main
    from hepfm_data.pipelines.production import produce
    from hepfm_data.readers.generation.blocks import block_paths, id_base, load_block

    out = tmp_path / "gen"
    rc = main(["generate", "ggF_H", "--events", "100", "--seed", "21", "--out", str(out),
               "--block-size", "40", "--workers", "2", "--no-progress"])
    assert rc == 0
    blocks = [block_paths(out, "ggF_H", i) for i in range(3)]
    assert all(p.exists() and s.exists() for p, s in blocks)
    assert not list((out / "ggF_H").glob("*.tmp"))
    loaded = [load_block(p) for p, _ in blocks]
    assert [len(e) for e, _ in loaded] == [40, 40, 20]
    ids = np.concatenate([e.event_id.to_numpy() for e, _ in loaded])
    assert ids.tolist() == [id_base("ggF_H", 21) + k for k in range(100)]  # unique across processes/seeds
    seeds = [i.seed for _, i in loaded]
    assert len(set(seeds)) == 3 and all(1 <= s <= 900_000_000 for s in seeds)
    assert {i.process for _, i in loaded} == {"ggF_H"} and loaded[0][1].generator["sigma_pb"] > 0

    # simulate an interruption: block 1 lost (its sidecar never written), a stale temp file left behind
    original = blocks[1][0].read_bytes()
    kept = {i: blocks[i][0].stat().st_mtime_ns for i in (0, 2)}
    blocks[1][1].unlink()
    blocks[1][0].write_bytes(b"half-written")
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:  # an existing cluster, by address
        paths = produce("ggF_H", 100, 21, out, block_size=40, scheduler=cluster.scheduler_address, progress=False)
    assert paths == [p for p, _ in blocks]
    assert blocks[1][0].read_bytes() == original  # same seed -> same bytes, whatever the worker count
    assert {i: blocks[i][0].stat().st_mtime_ns for i in (0, 2)} == kept  # finished blocks were skipped

    # the plot command reads the blocks back and writes a PNG; an absent process is a clear error
    png = tmp_path / "plot.png"
    assert main(["plot", "ggF_H", "--input", str(out), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert main(["plot", "ttbar", "--input", str(out), "--out", str(png)]) == 1

    # a different production into the same directory is refused, naming the difference
    with pytest.raises(GenerationError, match="base_seed"):
        produce("ggF_H", 100, 22, out, block_size=40, n_workers=1, progress=False)
    blocks[2][1].unlink()
    with pytest.raises(InputFileError, match="sidecar"):
        load_block(blocks[2][0])


def test_produce_rejects_bad_input_before_workers(tmp_path):
    """produce() reports an external-only process or an unknown process without creating any output."""
    from hepfm_data.pipelines.production import produce

    ext = dataclasses.replace(load_catalog().process("ttbar"), name="ext_only", fidelity="external-only", pythia=None)
    with pytest.raises(GenerationError, match="LHE"):
        produce(ext, 10, 1, tmp_path / "x", progress=False)
    with pytest.raises(UnknownNameError):
        produce("nope", 10, 1, tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def _write_lhe(path, n_events: int, seed: int = 0) -> None:
    """A minimal LHEF file of gg -> tt̄ at √ŝ = 800 GeV with random scattering angles (tops decayed by Pythia)."""
    rng = np.random.default_rng(seed)
    e, m = 400.0, 172.5
    p = np.sqrt(e**2 - m**2)
    lines = ['<LesHouchesEvents version="1.0">', "<init>",
             " 2212 2212 6.500000e+03 6.500000e+03 0 0 -1 -1 3 1", " 1.0e+00 1.0e-02 1.0e+00 1", "</init>"]
    for _ in range(n_events):
        cos, phi = rng.uniform(-1, 1), rng.uniform(-np.pi, np.pi)
        sin = np.sqrt(1 - cos**2)
        px, py, pz = p * sin * np.cos(phi), p * sin * np.sin(phi), p * cos
        lines += ["<event>", " 4 1 1.0e+00 4.0e+02 7.8e-03 1.0e-01",
                  f" 21 -1 0 0 501 502 0 0 {e:.6e} {e:.6e} 0 0 9",
                  f" 21 -1 0 0 503 501 0 0 {-e:.6e} {e:.6e} 0 0 9",
                  f" 6 1 1 2 503 0 {px:.6e} {py:.6e} {pz:.6e} {e:.6e} {m:.6e} 0 9",
                  f" -6 1 1 2 0 502 {-px:.6e} {-py:.6e} {-pz:.6e} {e:.6e} {m:.6e} 0 9", "</event>"]
    lines.append("</LesHouchesEvents>")
    path.write_text("\n".join(lines) + "\n")


def test_lhe_input_is_showered_and_detected(tmp_path):
    """Pythia reads an LHE file (Beams:frameType = 4) given for a process (tHq: the file replaces its LO generator):
    events carry the LHE tops (√ŝ = 800 GeV, back-to-back), the sample is labelled lhe+pythia8; a short file ends the run early,
    and skipped events are not regenerated."""
    lhe = tmp_path / "tt.lhe"
    _write_lhe(lhe, 12)
    events, info = generate("tHq", 50, 5, lhe=lhe)
    validate_events(events)
    assert len(events) == 12  # the file holds 12 events
    assert info.source == "lhe+pythia8" and info.inputs == [str(lhe)]
    assert "Beams:frameType = 4" in info.generator["settings"]
    tops = events.truth[abs(events.truth.pid) == 6]
    assert ak.all(ak.num(tops) == 2)
    assert ak.mean(ak.num(events.jets)) > 2.0
    rest, _ = generate("tHq", 50, 5, lhe=lhe, lhe_skip=5)
    assert len(rest) == 7
    bad = tmp_path / "not.lhe"
    bad.write_text("hello\n")
    with pytest.raises(InputFileError, match="LesHouchesEvents"):
        generate("tHq", 5, 5, lhe=bad)
