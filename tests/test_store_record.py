"""Store format 2 (issue 11): the stored event record with its declared schema, the representations
(paper materialized at build time, others derived from the record), fingerprints, format-1 stores."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from hepfm_data import load_dataset
from hepfm_data.core.catalog import load_catalog
from hepfm_data.core.errors import StoreError
from hepfm_data.core.events import SampleInfo, validate_events
from hepfm_data.inputs.delphes import DelphesFiles
from hepfm_data.pipelines.build import build_store, write_store
from hepfm_data.pipelines.derive import derive
from hepfm_data.readers.delphes import read_delphes
from hepfm_data.representations import PAPER
from hepfm_data.store import open_store
from hepfm_data.store import record as rec
from hepfm_data.testing import DELPHES_FILE, synthetic_events

SHARD_FIELDS = ("event_id", "weight", "label", "multilabel", "n_node", "offsets", "nodes")


def _by_id(arr: ak.Array) -> ak.Array:
    return arr[np.argsort(ak.to_numpy(arr.event_id), kind="stable")]


def _same_shards(a, b) -> None:
    for i, (x, y) in enumerate(zip(a.manifest.shards, b.manifest.shards)):
        da, db = a.read_shard(x), b.read_shard(y)
        for k in SHARD_FIELDS:
            np.testing.assert_array_equal(getattr(da, k), getattr(db, k), err_msg=f"shard {i} {k}")


@pytest.fixture(scope="module", params=["zarr", "parquet"])
def delphes_store(request, tmp_path_factory):
    """The real Delphes ttH file built through build_store in 3 units, 4 events per shard."""
    root = tmp_path_factory.mktemp(f"rec-{request.param}")
    st = build_store(DelphesFiles("ttH", str(DELPHES_FILE), entries_per_unit=4), str(root / "stores"),
                     layout=request.param, events_per_shard=4, progress=False, scheduler="sync")
    return st


def test_record_read_back_through_load_dataset_equals_the_source_events(delphes_store, tmp_path):
    """The record a build keeps is every collection and field the Delphes reader produced (taus,
    isolation, jet mass, b-tag flag, truth...), lossless, in Zarr and Parquet: load_dataset(
    representation="record") -> ak.from_arrow gives exactly the validated reader events; the manifest
    declares each field's dtype and unit; streaming gives the same rows."""
    st = delphes_store
    src = validate_events(ak.concatenate(list(read_delphes(str(DELPHES_FILE)))))
    root = str(Path(st.url).parent)
    ds = load_dataset("hepfm/ttH", split="train+validation+test", storage=root, cache_dir=tmp_path / "c",
                      representation="record")
    got = ak.from_arrow(ds.data.table)
    assert set(got.fields) == set(src.fields) | {"label"} and set(ds["label"]) == {st.manifest.label}
    assert ak.to_list(_by_id(got[list(src.fields)])) == ak.to_list(src)
    sch = st.manifest.schema
    assert sch["collections"]["jets"]["fields"]["pt"] == {"dtype": "float32", "unit": "GeV"}
    assert sch["collections"]["taus"]["fields"]["tag"]["dtype"] == "int8"
    assert sch["collections"]["met"]["kind"] == "record" and sch["collections"]["jets"]["offsets"] == "n"
    assert sch["collections"]["jets"]["n_objects"] == int(ak.sum(ak.num(src.jets)))
    # a physicist's own selection on the record with datasets: events with >= 8 jets above 30 GeV
    sel = ds.filter(lambda e: sum(j["pt"] > 30 for j in e["jets"]) >= 8)
    assert len(sel) == int(ak.sum(ak.sum(src.jets.pt > 30, axis=1) >= 8))
    stream = load_dataset("hepfm/ttH", split="train+validation+test", storage=root, streaming=True,
                          representation="record")
    rows = sorted(stream, key=lambda r: r["event_id"])
    assert [r["jets"] for r in rows] == ak.to_list(src.jets)


def test_paper_shards_are_byte_identical_to_a_build_without_the_record(delphes_store, tmp_path):
    """The paper representation keeps the format-1 columns and codecs: the same build with
    record=False writes shards/ with the same sha256 per shard; the default load_dataset reads them
    as before, and the paper view of a format-2 store is the store itself."""
    st = delphes_store
    plain = build_store(DelphesFiles("ttH", str(DELPHES_FILE), entries_per_unit=4), str(tmp_path / "plain"),
                        layout=st.manifest.layout, events_per_shard=4, progress=False, record=False,
                        scheduler="sync")
    assert [s.sha256 for s in plain.manifest.shards] == [s.sha256 for s in st.manifest.shards]
    assert not plain.manifest.record_shards and plain.manifest.schema == {}
    assert PAPER.open(st, load_catalog()) is st and st.manifest.default_representation == "paper"
    assert [r.path for r in st.manifest.record_shards] == [s.path.replace("shards/", "record/")
                                                           for s in st.manifest.shards]


def test_derive_from_the_record_resumes_after_an_interruption(delphes_store, tmp_path):
    """derive re-creates the paper graph from the stored record alone (inputs gone) with the same
    columns as the build; a derive interrupted by a corrupt record shard fails naming it, keeps the
    shards it finished, and a re-run after the repair re-uses them (same files, untouched); verify counts
    the paper, record and derived shards it re-hashed."""
    st_path = tmp_path / "copy" / "ttH"
    shutil.copytree(Path(delphes_store.path), st_path)
    last = sorted((st_path / "record").iterdir())[-1]
    backup = tmp_path / "backup"
    shutil.copytree(last, backup) if last.is_dir() else shutil.copyfile(last, backup)
    if last.is_dir():  # Zarr: damage the jet-mass chunk file (its crc32c fails)
        victim = next(p for p in (last / "jets" / "mass").rglob("*") if p.is_file() and p.name != "zarr.json")
    else:
        victim = last
    data = bytearray(victim.read_bytes())
    for i in range(len(data) // 3, min(len(data), len(data) // 3 + 64)):
        data[i] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=rf"{last.name}"):
        derive(str(st_path), "paper", progress=False)
    assert [p.split(":")[0] for p in open_store(str(st_path)).verify()] == [f"record/{last.name}"]  # verify sees it
    done = sorted(p.name for p in (st_path / "_derive" / "paper").glob("*.json"))
    assert len(done) == len(delphes_store.manifest.shards) - 1
    mtimes = {p.name: os.stat(p).st_mtime_ns for p in (st_path / "representations" / "paper").iterdir()}
    assert "paper" in open_store(str(st_path)).manifest.representations  # the build's entry only
    assert open_store(str(st_path)).manifest.representations["paper"]["shards"] is None
    shutil.rmtree(last) if last.is_dir() else last.unlink()
    shutil.copytree(backup, last) if backup.is_dir() else shutil.copyfile(backup, last)
    out = derive(str(st_path), "paper", progress=False)
    for name, t in mtimes.items():
        assert os.stat(st_path / "representations" / "paper" / name).st_mtime_ns == t
    view = PAPER.open(out, load_catalog())
    assert all(s.path.startswith("representations/paper/") for s in view.manifest.shards)
    _same_shards(delphes_store, view)
    report = out.verify_report()  # paper, record and derived shards re-hash to the manifest
    n = len(delphes_store.manifest.shards)
    assert report.problems == [] and report.checked == {"paper": n, "record": n, "representations/paper": n}
    assert not (st_path / "_derive").exists()


def test_record_codecs_store_paper_values_once_and_read_back_bit_equal(delphes_store, tmp_path):
    """Format 3: the manifest declares per record column how it is stored (event_id, weight, MET pt/φ
    taken from the paper shard; the selected jets', leptons', photons' pt, η, φ from its nodes, the
    other objects' stored beside a mask); every event range of the record reads back bit-equal to a
    format-2 build of the same input (record_codecs=False: every column stored, still opened), which
    is larger; Zarr arrays record their own codec (blosc shuffle or pcodec, chosen per column)."""
    st = delphes_store
    m = st.manifest
    old = build_store(DelphesFiles("ttH", str(DELPHES_FILE), entries_per_unit=4), str(tmp_path / "f2"),
                      layout=m.layout, events_per_shard=4, progress=False, scheduler="sync", record_codecs=False)
    assert (m.format_version, old.manifest.format_version, old.manifest.record_codecs) == (3, 2, {})
    types = m.object_types
    assert m.record_codecs["event_id"] == {"codec": "paper", "column": "event_id"}
    assert m.record_codecs["met/phi"] == {"codec": "paper", "column": "phi", "node_type": types["met"]}
    assert m.record_codecs["jets/eta"] == {"codec": "paper-selected", "column": "eta", "node_type": types["jet"],
                                           "mask": "jets/_paper"}
    assert "jets/mass" not in m.record_codecs and "truth/pt" not in m.record_codecs
    for s, o in zip(m.shards, old.manifest.shards):
        n = s.n_events
        for lo, hi in ((0, n), (1, n), (0, n - 1), (n // 2, n // 2 + 1), (2, 2)):
            a, b = st.read_record(s, lo, hi), old.read_record(o, lo, hi)
            assert list(a) == list(b)
            for k in a:
                assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes(), (s.name, lo, hi, k)
    assert sum(r.bytes for r in m.record_shards) < sum(r.bytes for r in old.manifest.record_shards)
    if m.layout == "zarr":
        first = Path(st.path) / m.record_shards[0].path
        assert not (first / "event_id").exists() and not (first / "met" / "pt").exists()
        meta = json.loads((first / "jets" / "mass" / "zarr.json").read_text())
        inner = [c["name"] for c in meta["codecs"][0]["configuration"]["codecs"]]
        assert inner in (["bytes", "blosc", "crc32c"], ["numcodecs.pcodec", "crc32c"])
        assert (first / "jets" / "_paper" / "zarr.json").exists()


def test_record_encoding_refuses_paper_columns_of_another_record():
    """encode_record checks what it drops: paper columns that are not this record's (a jet pT changed
    by one ulp, another event id) raise StoreError naming the event / column instead of a lossy store."""
    from hepfm_data.representations.paper import paper_columns

    cat = load_catalog()
    ev = validate_events(synthetic_events(30, 4))
    schema = rec.schema_of(ev)
    cols = rec.to_columns(ev, schema)
    paper = paper_columns(ev, 0, cat, 0)
    codecs = rec.plan_codecs(schema, dict(cat.graph.object_types))
    stored = rec.encode_record(cols, paper, schema, codecs, "here")
    back = rec.decode_record(stored, paper, schema, codecs)
    assert all(back[k].tobytes() == cols[k].tobytes() for k in cols) and list(back) == list(cols)
    jet = int(np.flatnonzero(paper.nodes["type"] == cat.graph.object_types["jet"])[0])
    paper.nodes["pt"] = paper.nodes["pt"].copy()
    paper.nodes["pt"][jet] = np.nextafter(paper.nodes["pt"][jet], np.float32(np.inf))
    with pytest.raises(StoreError, match=r"here: event \d+: paper nodes of type 0 are not among its record jets"):
        rec.encode_record(cols, paper, schema, codecs, "here")
    paper = paper_columns(ev, 0, cat, 0)
    paper.events["event_id"] = paper.events["event_id"] + np.uint64(1)  # a copy: the record's ids stay
    with pytest.raises(StoreError, match=r"here: record column event_id differs from the paper column"):
        rec.encode_record(cols, paper, schema, codecs, "here")


def test_changed_selection_fails_with_the_derive_command_and_derive_fixes_it(tmp_path):
    """A store built with the packaged catalog, opened with a catalog whose jet cut changed, fails in
    load_dataset and make_loader with the `hepfm-data derive` command; running it (Dask, 2 worker
    processes) derives the paper graph under the new cut, which then loads (no jet below 120 GeV)."""
    import hepfm_data
    from hepfm_data.loader import make_loader

    text = (Path(hepfm_data.__file__).parent / "core" / "catalog.yaml").read_text()
    jet = "  jet:      {pt_min: 25.0, pt_inclusive: true,  abs_eta_max: 2.5,  eta_crack: null}"
    (tmp_path / "cat.yaml").write_text(text.replace(jet, jet.replace("25.0", "120.0")))
    cat = load_catalog(tmp_path / "cat.yaml")
    root = tmp_path / "stores"
    st = write_store(str(root), "ttH", [(synthetic_events(120, 3), SampleInfo(process="ttH", source="x"))],
                     events_per_shard=30, progress=False)
    msg = rf"selection.*\n  hepfm-data derive {st.url} --representation paper --catalog {tmp_path / 'cat.yaml'}"
    with pytest.raises(StoreError, match=msg):
        load_dataset("hepfm/ttH", storage=root, cache_dir=tmp_path / "c", catalog=cat)
    with pytest.raises(StoreError, match=msg):
        make_loader(st.url, catalog=cat, num_workers=0)
    derive(st.url, "paper", catalog=cat, workers=2, progress=False)
    ds = load_dataset("hepfm/ttH", storage=root, cache_dir=tmp_path / "c", catalog=cat)
    pts = np.concatenate([np.asarray(p)[np.asarray(t) == 0] for p, t in zip(ds["pt"], ds["type"])])
    assert len(pts) and pts.min() >= 120.0
    with pytest.raises(StoreError, match="hepfm-data derive"):  # the packaged catalog now mismatches
        load_dataset("hepfm/ttH", storage=root, cache_dir=tmp_path / "c")


def test_a_representation_whose_inputs_the_record_lacks_names_store_representation_and_field(tmp_path):
    """paper_taus reads taus.*; a store whose record has no taus refuses it in derive, load_dataset and
    make_loader, naming the store, the representation and the missing fields; where the record has
    taus (Delphes) it derives, and make_loader reads it (every τ node type 5 before MET)."""
    from hepfm_data.loader import make_loader

    st = write_store(str(tmp_path), "ttH", [(synthetic_events(40, 1), SampleInfo(process="ttH", source="x"))],
                     progress=False)
    msg = rf"{st.url}: representation 'paper_taus' needs record field\(s\) \['taus.pt'"
    with pytest.raises(StoreError, match=msg):
        derive(st.url, "paper_taus", progress=False)
    with pytest.raises(StoreError, match=msg):
        load_dataset("hepfm/ttH", storage=tmp_path, cache_dir=tmp_path / "c", representation="paper_taus")
    with pytest.raises(StoreError, match=msg):
        make_loader(st.url, representation="paper_taus", num_workers=0)
    d = build_store(DelphesFiles("ttH", str(DELPHES_FILE)), str(tmp_path / "d"), progress=False)
    with pytest.raises(StoreError, match=r"not derived yet.*\n  hepfm-data derive .* --representation paper_taus"):
        make_loader(d.url, representation="paper_taus", num_workers=0)
    derive(d.url, "paper_taus", progress=False)
    loader = make_loader(d.url, representation="paper_taus", num_workers=0, batch_size=4, shuffle=False,
                         device="cpu")
    n = 0
    for b in loader:
        n += int(b.graph_mask.sum())
        last = np.cumsum(b.n_node.numpy()) - 1
        assert (b.nodes[last, 6].numpy() == 4).all()  # MET still last
    assert n == d.manifest.split_sizes()["train"]


def test_nested_collection_with_parent_index_round_trips_in_both_layouts(tmp_path):
    """A nested collection (each jet's constituents, declared with its parent) is stored with its own
    offsets and read back exactly for any event range, in Zarr and Parquet; the schema names the parent."""
    from hepfm_data.sources import resolve

    ev = validate_events(synthetic_events(300, 5))
    n_jets = ak.num(ev.jets)
    flat = ak.flatten(ev.jets)
    k = np.random.default_rng(0).integers(0, 6, len(flat))
    cons = ak.unflatten(ak.zip({"pt": np.repeat(ak.to_numpy(flat.pt), k) / 3,
                                "pid": np.full(int(k.sum()), 211, np.int32)}), k)
    jets = ak.unflatten(ak.zip({**{f: flat[f] for f in flat.fields}, "constituents": cons}, depth_limit=1), n_jets)
    events = ak.zip({**{f: ev[f] for f in ev.fields if f != "jets"}, "jets": jets}, depth_limit=1)
    schema = rec.schema_of(events)
    assert schema["collections"]["jets.constituents"]["parent"] == "jets"
    schema = rec.check_schema(json.loads(json.dumps(schema, sort_keys=True)), "here")
    cols = rec.to_columns(events, schema)
    for layout in ("zarr", "parquet"):
        path = str(tmp_path / f"r.{layout}")
        rec.write_record(layout, cols, path, {"codec": "zstd", "level": 3}, schema)
        fs, p = resolve(path)
        for lo, hi in ((0, 300), (17, 203), (299, 300), (5, 5)):
            if layout == "zarr":
                arrays = rec.open_zarr_record(fs, p, schema)
                got = rec.read_zarr_record(arrays, rec.check_lengths(arrays, schema, 300), schema, lo, hi)
            else:
                got = rec.read_parquet_record(fs, p, schema, 300, lo, hi)
            assert ak.to_list(rec.to_events(got, schema)) == ak.to_list(events[lo:hi]), (layout, lo, hi)


def test_format1_store_opens_read_only_and_record_needs_a_rebuild(tmp_path):
    """A format-1 manifest (no schema, record, representations) opens and loads as before (paper);
    asking it for the record or another representation names the store and says to rebuild; info
    lists collections and representations of a format-2 store."""
    from hepfm_data.cli.commands.info import format_summary, summarise

    st = write_store(str(tmp_path), "ttH", [(synthetic_events(60, 2), SampleInfo(process="ttH", source="x"))],
                     progress=False)
    s = summarise(st)
    assert s["record"]["collections"]["jets"]["fields"]["pt"] == "float32 [GeV]"
    assert s["record"]["collections"]["jets"]["mean_multiplicity"] == pytest.approx(
        st.manifest.schema["collections"]["jets"]["n_objects"] / 60)
    assert "paper" in s["representations"] and "record     " in format_summary(s)
    mpath = Path(st.path) / "manifest.json"
    d = json.loads(mpath.read_text())
    for k in ("schema", "record_shards", "representations", "default_representation", "record_codecs"):
        d.pop(k)
    d["format_version"] = 1
    mpath.write_text(json.dumps(d))
    old = open_store(st.url)
    assert old.manifest.format_version == 1 and PAPER.open(old, load_catalog()) is old
    assert len(load_dataset("hepfm/ttH", storage=tmp_path, cache_dir=tmp_path / "c")) == st.manifest.split_sizes()["train"]
    with pytest.raises(StoreError, match=rf"{old.url}: this format-1 store keeps no event record.*rebuild"):
        load_dataset("hepfm/ttH", storage=tmp_path, cache_dir=tmp_path / "c", representation="record")
    with pytest.raises(StoreError, match=rf"{old.url}: representation 'paper_taus' reads the stored event record"):
        derive(old.url, "paper_taus", progress=False)


def test_record_columns_take_pcodec_where_it_compresses_smaller_and_read_back_bit_equal(tmp_path):
    """The Zarr record codec is chosen per column: a Breit-Wigner mass column with repeated quark masses
    (as the generated truth record) gets pcodec, which encodes it smaller than any blosc shuffle; an int8
    flag gets blosc bit shuffle; without ``pcodec`` in the compression every column is blosc. Both stores
    read back bit-equal to the columns written, over chunk boundaries (40,000 values > one chunk)."""
    from hepfm_data.sources import resolve

    rng = np.random.default_rng(3)
    n = 40_000
    counts = np.full(4_000, 10, np.int32)
    mass = np.where(rng.random(n) < 0.6, np.float32(4.8), rng.standard_cauchy(n) * 1.4 + 172.5).astype(np.float32)
    schema = {"events": {"weight": {"dtype": "float32", "unit": ""}},
              "collections": {"truth": {"kind": "list", "offsets": "n", "fields": {"mass": {"dtype": "float32", "unit": "GeV"},
                                                                   "flag": {"dtype": "int8", "unit": ""}}}}}
    schema = rec.check_schema(schema, "here")
    cols = {"weight": np.ones(4_000, np.float32), "truth/n": counts, "truth/mass": mass,
            "truth/flag": rng.integers(0, 2, n).astype(np.int8)}
    sizes = {}
    for pco in (True, False):
        path = tmp_path / f"r{int(pco)}.zarr"
        rec.write_record("zarr", cols, str(path), {"codec": "blosc-zstd", "level": 8, "pcodec": pco}, schema)
        inner = {k: [c["name"] for c in json.loads((path / k / "zarr.json").read_text())["codecs"][0]
                     ["configuration"]["codecs"]] for k in ("truth/mass", "truth/flag")}
        assert inner["truth/mass"] == (["numcodecs.pcodec", "crc32c"] if pco else ["bytes", "blosc", "crc32c"])
        flag = json.loads((path / "truth/flag/zarr.json").read_text())["codecs"][0]["configuration"]["codecs"][1]
        assert inner["truth/flag"] == ["bytes", "blosc", "crc32c"] and flag["configuration"]["shuffle"] == "bitshuffle"
        sizes[pco] = sum(f.stat().st_size for f in (path / "truth" / "mass" / "c").rglob("*") if f.is_file())
        fs, p = resolve(str(path))
        arrays = rec.open_zarr_record(fs, p, schema)
        got = rec.read_zarr_record(arrays, rec.check_lengths(arrays, schema, 4_000), schema, 0, 4_000)
        for k, v in cols.items():
            assert got[k].tobytes() == v.tobytes(), k
        part = rec.read_zarr_record(arrays, rec.check_lengths(arrays, schema, 4_000), schema, 3_201, 3_999)
        assert part["truth/mass"].tobytes() == mass[32_010:39_990].tobytes()
    assert sizes[True] < sizes[False]


def test_a_pcodec_record_without_the_pcodec_package_fails_with_the_install_hint(tmp_path, monkeypatch):
    """Opening a record whose column is pcodec-compressed where pcodec cannot be imported raises a
    StoreError naming the package and the pip command, before any chunk is decoded."""
    import sys

    from hepfm_data.sources import resolve

    schema = rec.check_schema({"events": {"mass": {"dtype": "float32", "unit": "GeV"}}, "collections": {}}, "here")
    rng = np.random.default_rng(4)
    mass = np.where(rng.random(5_000) < 0.6, np.float32(4.8), rng.standard_cauchy(5_000) + 172.5).astype(np.float32)
    path = tmp_path / "r.zarr"
    rec.write_record("zarr", {"mass": mass}, str(path), {"codec": "blosc-zstd", "level": 8, "pcodec": True}, schema)
    assert "numcodecs.pcodec" in (path / "mass" / "zarr.json").read_text()
    monkeypatch.setitem(sys.modules, "numcodecs.pcodec", None)  # import numcodecs.pcodec -> ImportError
    fs, p = resolve(str(path))
    with pytest.raises(StoreError, match=r"pip install 'pcodec"):
        rec.open_zarr_record(fs, p, schema)
