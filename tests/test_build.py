"""The one build path (hepfm_data.pipelines.build) over event sources (hepfm_data.inputs): units, Dask
workers, kill + resume, failing units, generated event ids, guard-free scripts, explicit
catalogs, and the one-way import rule."""

from __future__ import annotations

import ast
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from hepfm_data.core.catalog import load_catalog
from hepfm_data.core.errors import HepfmError, InputFileError, StoreError, UnknownNameError
from hepfm_data.core.events import SampleInfo
from hepfm_data.inputs import EventSource, open_source
from hepfm_data.inputs.delphes import DelphesFiles
from hepfm_data.pipelines.build import build_store, write_store
from hepfm_data.readers.delphes import read_delphes
from hepfm_data.store import open_store
from hepfm_data.testing import DELPHES_FILE, synthetic_events

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def copies(tmp_path: Path, n: int) -> list[str]:
    """``n`` copies of the real Delphes file under distinct base names (distinct event ids)."""
    d = tmp_path / "in"
    d.mkdir(exist_ok=True)
    out = []
    for i in range(n):
        p = d / f"ttH-{i:02d}.root"
        shutil.copyfile(DELPHES_FILE, p)
        out.append(str(p))
    return out


def test_delphes_source_units_cover_the_file_and_follow_the_protocol():
    """DelphesFiles is an EventSource: entry-range units tile the real file, and reading every unit
    gives exactly the reader's events and ids; the format registry opens it by name."""
    src = open_source("delphes", "ttH", str(DELPHES_FILE), entries_per_unit=3)
    assert isinstance(src, EventSource) and isinstance(src, DelphesFiles)
    units = src.units()
    assert [(u.spec["start"], u.spec["stop"]) for u in units] == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert all(str(DELPHES_FILE) in u.key for u in units)
    got = ak.concatenate([b for u in units for b, _ in src.read(u)])
    assert ak.to_list(got) == ak.to_list(ak.concatenate(list(read_delphes(str(DELPHES_FILE)))))
    with pytest.raises(Exception, match="unknown input format 'lcio'"):
        open_source("lcio", "ttH", str(DELPHES_FILE))


class DiesOnce(DelphesFiles):
    """Kills its worker process (os._exit) the first time it reads the unit ``victim``."""

    def __init__(self, *a, flag: str, victim: int, **kw):
        super().__init__(*a, **kw)
        self.flag, self.victim = flag, victim

    def read(self, unit):
        if unit.index == self.victim and not os.path.exists(self.flag):
            Path(self.flag).write_text("died")
            os._exit(17)
        yield from super().read(unit)


def test_killed_driver_and_killed_worker_lose_and_double_nothing(tmp_path):
    """`hepfm-data build --workers 2` (a real Dask LocalCluster) is SIGKILLed with its workers after
    the first finished unit: no manifest, finished units kept. The rerun on 2 workers, during which
    one worker process dies mid-unit (Dask re-runs the unit elsewhere), gives a store byte-identical
    to an uninterrupted in-process build: same manifest bytes, same shard files, none extra."""
    files = copies(tmp_path, 2)  # 4 units: the kill lands after the first, the death on one left unfinished
    clean = build_store(DelphesFiles("ttH", files, entries_per_unit=5), str(tmp_path / "clean"), seed=1,
                        scheduler="sync", progress=False)
    n_units = 4
    assert len(clean.manifest.shards) >= n_units
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "hepfm_data.cli.main", "build", "ttH", "--input", *files, "--out", str(out),
           "--entries-per-unit", "5", "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    markers = out / "ttH" / "_build" / "units"
    deadline = time.monotonic() + 300
    try:
        while not (markers.exists() and any(markers.glob("*.json"))):
            assert proc.poll() is None and time.monotonic() < deadline, "build ended before it could be killed"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "ttH" / "manifest.json").exists()
    with pytest.raises(StoreError, match="incomplete store"):
        open_store(str(out / "ttH"))
    done = {int(p.stem) for p in markers.glob("*.json")}
    assert 1 <= len(done) < n_units
    flag = tmp_path / "died.flag"
    # the victim: the last unit the killed build left unfinished (on a loaded machine the kill may land after
    # the workers finished any of the units they had been sent ahead)
    victim = max(set(range(n_units)) - done)
    src = DiesOnce("ttH", files, entries_per_unit=5, flag=str(flag), victim=victim)
    store = build_store(src, str(out), seed=1, workers=2, progress=False)
    assert flag.exists()  # a worker really died mid-build
    assert (out / "ttH" / "manifest.json").read_bytes() == (tmp_path / "clean" / "ttH" / "manifest.json").read_bytes()
    assert sorted(p.name for p in (out / "ttH" / "shards").iterdir()) == sorted(s.name for s in clean.shards())
    assert store.verify() == []


def test_failing_unit_names_file_and_unit_and_keeps_finished_units(tmp_path):
    """A file with damaged baskets fails the build with an InputFileError naming the file and the unit;
    the units before it stay finished, no manifest is written; once the file is replaced, the rerun
    finishes without rewriting the finished units' shards."""
    files = copies(tmp_path, 2)
    bad = Path(files[1])
    raw = bytearray(bad.read_bytes())
    raw[2000:400000] = b"\0" * (400000 - 2000)
    bad.write_bytes(bytes(raw))
    src = DelphesFiles("ttH", files, entries_per_unit=5)
    with pytest.raises(InputFileError, match=r"unit \d \(.*ttH-01\.root entries \[\d+, \d+\)\)") as err:
        build_store(src, str(tmp_path / "s"), scheduler="sync", progress=False)
    assert "ttH-01.root" in str(err.value)
    base = tmp_path / "s" / "ttH"
    assert not (base / "manifest.json").exists()
    assert sorted(p.name for p in (base / "_build" / "units").glob("*.json")) == ["00000.json", "00001.json"]
    before = {p.name: p.stat().st_mtime_ns for p in (base / "shards").iterdir()}
    shutil.copyfile(DELPHES_FILE, bad)
    store = build_store(DelphesFiles("ttH", files, entries_per_unit=5), str(tmp_path / "s"), scheduler="sync",
                        progress=False)
    assert store.manifest.n_events == 20
    assert all((base / "shards" / n).stat().st_mtime_ns == t for n, t in before.items() if n.split("-")[1] < "00002")


def test_generation_units_group_blocks_without_changing_the_events(tmp_path):
    """PythiaGeneration's unit size groups whole seed blocks into one build task: 60 real Pythia 8 ZH
    events in blocks of 15 built with a unit per block (4 units) and with the default unit (25,000
    events: one unit) hold the same events, bit for bit (event ids, record, paper nodes incl. b-tags and
    labels, in event-id order), in 3 shards instead of up to 12; a unit size below a block still makes whole blocks."""
    from hepfm_data.inputs.generated import PythiaGeneration
    from hepfm_data.store import record as rec

    cat = load_catalog()
    proc = cat.process("ZH")
    units = PythiaGeneration(proc, 60, 2, block_size=15, events_per_unit=31).units()
    assert [u.spec["blocks"] for u in units] == [[0, 1], [2, 3]] and [u.n_events for u in units] == [30, 30]
    assert [u.spec["blocks"] for u in PythiaGeneration(proc, 60, 2, block_size=15, events_per_unit=7).units()] == \
        [[0], [1], [2], [3]]

    def content(st):
        cols = [st.read_record(s) for s in st.shards()]
        paper = [st.read_shard(s) for s in st.shards()]
        ids = np.concatenate([d.event_id for d in paper])
        order = np.argsort(ids, kind="stable")
        events = ak.concatenate([rec.to_events(c, st.manifest.schema) for c in cols])[order]
        nodes = ak.concatenate([ak.unflatten(d.nodes, d.n_node) for d in paper])[order]
        labels = np.concatenate([d.multilabel for d in paper])[order]
        return ids[order], ak.to_list(events), ak.to_list(nodes), labels.tobytes()

    per_block = build_store(PythiaGeneration(proc, 60, 2, block_size=15, events_per_unit=15), str(tmp_path / "a"),
                            catalog=cat, scheduler="sync", progress=False)
    grouped = build_store(PythiaGeneration(proc, 60, 2, block_size=15), str(tmp_path / "b"), catalog=cat,
                          scheduler="sync", progress=False)
    assert len(grouped.shards()) == 3 < len(per_block.shards())
    a, b = content(per_block), content(grouped)
    assert a[0].tolist() == b[0].tolist() and len(a[0]) == 60 and a[1:] == b[1:]
    # the one unit's 4 blocks read by 2 worker processes, written in block order by the driver: same bytes
    build_store(PythiaGeneration(proc, 60, 2, block_size=15), str(tmp_path / "c"), catalog=cat,
                workers=2, progress=False)
    assert (tmp_path / "c" / "ZH" / "manifest.json").read_bytes() == (tmp_path / "b" / "ZH" / "manifest.json").read_bytes()
    files = [f for f in (tmp_path / "b" / "ZH").rglob("*") if f.is_file() and "_build" not in f.parts]
    assert len(files) > 3 and all((tmp_path / "c" / f.relative_to(tmp_path / "b")).read_bytes() == f.read_bytes()
                                  for f in files)


def test_generated_event_ids_are_unique_across_processes_and_seeds(tmp_path):
    """Real Pythia 8 blocks: ZH seed 1, ZH seed 2 and WH seed 1 have disjoint event ids (blake2b of
    (process, seed) in the high bits), a task dataset holds no id twice, and the three samples'
    split assignments are not copies of each other."""
    from hepfm_data.inputs.generated import PythiaGeneration
    from hepfm_data.readers.generation.blocks import id_base
    from hepfm_data.store.splits import assign_splits

    cat = load_catalog()
    ids = {}
    for name, seed in (("ZH", 1), ("ZH", 2), ("WH", 1)):
        root = tmp_path / f"{name}-{seed}"
        st = build_store(PythiaGeneration(cat.process(name), 30, seed, block_size=15), str(root), catalog=cat,
                         scheduler="sync", progress=False)
        ids[name, seed] = np.concatenate([st.read_shard(s).event_id for s in st.shards()])
        assert len(ids[name, seed]) == 30 and np.all(ids[name, seed] >> np.uint64(32) == id_base(name, seed) >> 32)
        assert "blake2b" in st.manifest.event_id_rule
    allids = np.concatenate(list(ids.values()))
    assert len(np.unique(allids)) == len(allids) == 90
    splits = [assign_splits(np.sort(v), "hepfm-v1", (0.8, 0.1, 0.1)) for v in ids.values()]
    assert not (np.array_equal(splits[0], splits[1]) and np.array_equal(splits[0], splits[2]))


def test_default_build_gives_ten_thousand_training_rows():
    """load_dataset(build=True) generates DEFAULT_BUILD_EVENTS per process; with the generated-id rule and
    the split hash, every generatable process (e.g. hepfm/ttH_cp_odd once generatable) then has at least
    10,000 train events, so split="train[:10000]" returns 10,000 rows."""
    from hepfm_data.readers.generation.blocks import id_base
    from hepfm_data.serving.hub import DEFAULT_BUILD_EVENTS
    from hepfm_data.store.splits import assign_splits

    for proc in load_catalog().processes:
        ids = np.uint64(id_base(proc.name, 1)) + np.arange(DEFAULT_BUILD_EVENTS, dtype=np.uint64)
        assert int((assign_splits(ids, "hepfm-v1", (0.8, 0.1, 0.1)) == 0).sum()) >= 10_000, proc.name


SCRIPT = """\
import os
from hepfm_data.pipelines.build import build_store
from hepfm_data.inputs.delphes import DelphesFiles


class Where(DelphesFiles):
    def read(self, unit):
        with open(os.path.join({pids!r}, f"{{os.getpid()}}-{{unit.index}}"), "w"):
            pass
        yield from super().read(unit)


st = build_store(Where("ttH", {delphes!r}, entries_per_unit=5), {root!r}, workers=2, progress=False)
print("delphes", st.manifest.n_events, len(st.shards()), "driver", os.getpid())
"""


def _worker_pids(pids: Path, driver: int) -> set[int]:
    found = {int(p.name.split("-")[0]) for p in pids.iterdir()}
    assert driver not in found, "units ran in the calling process"
    return found


def test_build_uses_worker_processes_without_main_guard_in_scripts_and_stdin(tmp_path):
    """A plain script without `if __name__ == "__main__":` (and the same code on `python -`) builds a
    2-unit store with workers=2 in worker processes (neither re-runs the script: the units ran in
    other processes than the script's, nothing ran twice, no Dask "Nanny failed to start"); load_dataset's
    build takes the same path."""
    for i, how in enumerate(("script", "stdin")):
        pids = tmp_path / f"pids{i}"
        pids.mkdir()
        code = SCRIPT.format(delphes=str(DELPHES_FILE), root=str(tmp_path / f"s{i}"), pids=str(pids))
        if how == "script":
            script = tmp_path / "plain.py"
            script.write_text(code)
            res = subprocess.run([sys.executable, str(script)], env=ENV, capture_output=True, text=True, timeout=600)
        else:
            res = subprocess.run([sys.executable, "-"], input=code, env=ENV, capture_output=True, text=True,
                                 timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        assert "delphes 10" in res.stdout and "Nanny failed" not in res.stderr
        assert res.stdout.count("delphes 10") == 1  # the script ran once
        driver = int(res.stdout.split("driver ")[1].split()[0])
        assert len(_worker_pids(pids, driver)) >= 1 and len(list(pids.iterdir())) == 2


def test_build_progress_moves_within_a_block_from_the_workers(tmp_path, monkeypatch):
    """The build's bar counts generated events as the workers produce them (Dask events from the
    block tasks), not when a unit finishes: a 2-worker build of one unit of two 250-event blocks
    updates the bar in steps smaller than a block (Pythia batches of 200), and ends at exactly the
    events stored; before the first events, the bar says what it is doing (starting the workers)."""
    import hepfm_data.pipelines.build as build
    from hepfm_data.inputs.generated import PythiaGeneration

    steps = []

    class Bar:
        n = 0

        def update(self, k):
            steps.append(k)
            self.n += k

        def set_postfix_str(self, text, refresh=True):
            status.append(text)

        def close(self):
            pass

    status = []
    monkeypatch.setattr(build, "_progress", lambda *a, **k: Bar())
    st = build_store(PythiaGeneration(load_catalog().process("ZH"), 500, 3, block_size=250), str(tmp_path),
                     workers=2)
    assert sum(steps) == st.manifest.n_events == 500
    print(f"progress steps: {steps}")
    assert len([k for k in steps if 0 < k < 250]) >= 2
    assert status[0] == "starting 2 workers" and status[1].endswith("workers, 2 tasks")  # what it does before events


def _custom_catalog(tmp_path: Path):
    import hepfm_data

    text = (Path(hepfm_data.__file__).parent / "core" / "catalog.yaml").read_text()
    jet = "  jet:      {pt_min: 25.0, pt_inclusive: true,  abs_eta_max: 2.5,  eta_crack: null}"
    assert jet in text
    text = text.replace(jet, jet.replace("25.0", "120.0"))
    text = text.replace("tasks:\n", "tasks:\n  - name: my_ttH_vs_ZH\n    description: a user's own task.\n"
                                    "    classes: [ttH, ZH]\n", 1)
    path = tmp_path / "my-catalog.yaml"
    path.write_text(text)
    return path, load_catalog(path)


def test_a_custom_catalog_reaches_build_loader_hub_and_recipes(tmp_path):
    """A user catalog with a harder jet cut (pT > 120 GeV) and a new task reaches every layer: the
    build's kernels apply the cut (no stored jet below 120 GeV, recorded in the manifest), load_dataset,
    StreamingDataset and the recipes resolve the new task — which the packaged catalog does not know; the
    loader refuses to read those stores as the packaged catalog's paper graph (fingerprint)."""
    from hepfm_data import load_dataset
    from hepfm_data.loader import StreamingDataset
    from recipes.common import DataConfig, task_split

    path, cat = _custom_catalog(tmp_path)
    root = tmp_path / "stores"
    for k, name in enumerate(("ttH", "ZH")):
        write_store(str(root), name, [(synthetic_events(300, k, 10_000 * k), SampleInfo(process=name, source="x"))],
                    catalog=cat, events_per_shard=100, progress=False)
    st = open_store(str(root / "ttH"))
    assert st.manifest.selection["jet"]["pt_min"] == 120.0
    d = st.read_shard(st.shards("train")[0])
    jets = d.nodes[d.nodes[:, 6] == cat.graph.object_types["jet"]]
    assert len(jets) and jets[:, 0].min() >= 120.0
    ds = load_dataset("hepfm/my_ttH_vs_ZH", split="train", storage=root, cache_dir=tmp_path / "c", catalog=cat)
    assert set(ds["label"]) == {0, 1}
    with pytest.raises(UnknownNameError):
        load_dataset("hepfm/my_ttH_vs_ZH", split="train", storage=root, cache_dir=tmp_path / "c")
    sds = StreamingDataset([str(root / "ttH"), str(root / "ZH")], labels="my_ttH_vs_ZH", catalog=cat)
    assert sds.source_labels.tolist() == [0, 1]
    with pytest.raises(StoreError, match="another definition"):  # built with the user's cuts: not the packaged graph
        StreamingDataset([str(root / "ttH"), str(root / "ZH")], labels="my_ttH_vs_ZH")
    got = task_split(str(root), "my_ttH_vs_ZH", DataConfig(stores=str(root), catalog=str(path), batch_size=16),
                     "test", 5, shuffle=False)
    assert len(got) == 10


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


#: the data-layer modules hepfm_models may import: the batch types (contracts between data and models)
BATCH_TYPE_MODULES = ("hepfm_data.batches.graph", "hepfm_data.batches.pointcloud", "hepfm_data.batches.slots")


def test_import_rule_is_one_way():
    """The AST of every module: no module of hepfm_data imports hepfm_models (or recipes); hepfm_models'
    library modules import from hepfm_data only the batch types (hepfm_data.batches.graph, .pointcloud, .slots); only the demo
    (recipes level) uses more of hepfm_data."""
    bad = []
    for path in sorted((REPO / "hepfm_data").rglob("*.py")):
        for name in _imports(path):
            if name.split(".")[0] in ("hepfm_models", "recipes"):
                bad.append(f"{path.relative_to(REPO)} imports {name}")
    for path in sorted((REPO / "hepfm_models").rglob("*.py")):
        if path.name == "demo.py":
            continue
        for name in _imports(path):
            if name.split(".")[0] == "hepfm_data" and name not in BATCH_TYPE_MODULES:
                bad.append(f"{path.relative_to(REPO)} imports {name}")
    assert not bad, bad


def test_demo_is_a_hepfm_data_command_through_its_entry_point(tmp_path):
    """`hepfm-data demo` is found through the `hepfm_data.commands` entry point declared in pyproject.toml
    (a real dist-info on sys.path here; `pip install -e .` writes the same): --help reaches recipes.demo."""
    text = (REPO / "pyproject.toml").read_text()
    assert '[project.entry-points."hepfm_data.commands"]\ndemo = "recipes.demo"' in text
    dist = tmp_path / "hepfm_demo_probe-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hepfm-demo-probe\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[hepfm_data.commands]\ndemo = recipes.demo\n")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path), ENV["PYTHONPATH"]])}
    res = subprocess.run([sys.executable, "-m", "hepfm_data.cli.main", "demo", "--help"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "--finetune-events" in res.stdout and "--threads" in res.stdout


def test_input_format_of_another_package_through_its_entry_point(tmp_path, monkeypatch):
    """A format registered by another package in the ``hepfm_data.inputs`` entry-point group (a real
    dist-info on sys.path) is opened by name by ``open_source`` (and so by ``hepfm-data build --format``);
    an unknown name lists the known ones and names the group."""
    from hepfm_data.inputs import SOURCES, open_source

    (tmp_path / "probe_source.py").write_text(
        "class Probe:\n    def __init__(self, process, inputs, **options):\n"
        "        self.process, self.inputs, self.options = process, inputs, options\n")
    dist = tmp_path / "hepfm_source_probe-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hepfm-source-probe\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[hepfm_data.inputs]\nprobe-format = probe_source:Probe\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("hepfm_data.inputs.SOURCES", dict(SOURCES))
    src = open_source("probe-format", "ttH", ["a.parquet"], entries_per_unit=5)
    assert type(src).__name__ == "Probe" and src.process == "ttH" and src.options == {"entries_per_unit": 5}
    with pytest.raises(HepfmError, match="unknown input format 'nope'.*delphes.*hepfm_data.inputs"):
        open_source("nope", "ttH", [])
