"""Untrusted stores (issue 17): hostile manifests served by a real HTTP server and a real moto S3
server on loopback are refused at open, before anything is read or written; the one shard cache
writes only inside its own root; Zarr metadata that asks for more than a shard can hold is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hepfm_data import load_dataset
from hepfm_data.core.errors import StoreError
from hepfm_data.sources.testing import http_server
from hepfm_data.store import open_store
from hepfm_data.testing import write_synthetic_stores

STORES = {"ttH": ("parquet", 120, 1, 0), "stop": ("zarr", 100, 2, 1_000_000)}


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()} if path.exists() else set()


@pytest.fixture
def www(tmp_path):
    """``tmp/www/stores/<process>`` (served root) with valid stores; ``tmp/`` also holds the cache."""
    root = tmp_path / "www" / "stores"
    write_synthetic_stores(str(root), STORES)
    return tmp_path / "www"


def edit_manifest(store_dir: Path, fn) -> dict:
    path = store_dir / "manifest.json"
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))
    return d


def test_issue17_dotdot_shard_path_over_http_is_refused_and_writes_nothing(www, tmp_path):
    """The issue's reproduction: a manifest served over HTTP lists its first shard at
    ``shards/../../../../x.parquet`` (the shard's real bytes are also served at the place the
    ``..`` lead to, so the sha256 matches). load_dataset must refuse the manifest with an error
    naming the store URL and the entry, and write nothing outside the cache (nothing at all)."""
    store = www / "stores" / "ttH"
    first = json.loads((store / "manifest.json").read_text())["shards"][0]
    shutil.copy(store / first["path"], www / "x.parquet")  # where the traversal points, seen from the server

    def hostile(d):
        d["shards"][0]["path"] = "shards/../../../../x.parquet"

    edit_manifest(store, hostile)
    cache = tmp_path / "cache" / "inner"
    before = files_under(tmp_path) - files_under(www)
    with http_server(www) as srv:
        with pytest.raises(StoreError, match=r"(?s)127\.0\.0\.1.*/ttH/manifest\.json.*shards/\.\./\.\./\.\./\.\./x\.parquet"):
            load_dataset("hepfm/ttH", split="train", storage=f"{srv.url}/stores", cache_dir=cache)
    assert files_under(tmp_path) - files_under(www) == before  # nothing written anywhere


def test_issue17_local_manifest_cannot_point_outside_the_store(www, tmp_path):
    """Locally, a manifest path ``../../outside.parquet`` made open_store read a shard outside the
    store's root; it is now refused at open_store, naming the manifest and the entry."""
    store = www / "stores" / "ttH"
    first = json.loads((store / "manifest.json").read_text())["shards"][0]
    shutil.copy(store / first["path"], www / "outside.parquet")
    edit_manifest(store, lambda d: d["shards"][0].__setitem__("path", "../../outside.parquet"))
    with pytest.raises(StoreError, match=r"ttH/manifest\.json.*shard 0.*\.\./\.\./outside\.parquet"):
        open_store(str(store))


# ----------------------------------------------------------------------------- hostile manifests

def _set(path: str, value):
    """A manifest edit: ``path`` like ``shards.0.path`` or ``format_version``; ``value`` a callable (d -> v) or a value."""

    def edit(d):
        *head, last = path.split(".")
        obj = d
        for k in head:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        key = int(last) if isinstance(obj, list) else last
        obj[key] = value(d) if callable(value) else value

    return edit


#: (case id, edit, what the error names)
HOSTILE = [
    ("dotdot", _set("shards.0.path", "shards/../../../x.parquet"), r"shard 0 .*contains '\.\.'"),
    ("absolute", _set("shards.0.path", "/etc/passwd"), r"shard 0 .*absolute"),
    ("scheme", _set("shards.0.path", "s3://elsewhere/shards/train-00000.parquet"), r"shard 0 .*URL scheme"),
    ("file-scheme", _set("shards.0.path", "file:///etc/passwd"), r"shard 0 .*URL scheme"),
    ("chain", _set("shards.0.path", "simplecache::shards/train-00000.parquet"), r"shard 0 .*'::' chain"),
    ("dot", _set("shards.0.path", "shards/./train-00000.parquet"), r"shard 0 .*not normalised"),
    ("double-slash", _set("shards.0.path", "shards//train-00000.parquet"), r"shard 0 .*not normalised"),
    ("backslash", _set("shards.0.path", "shards\\..\\x.parquet"), r"shard 0 .*backslash"),
    ("dotfile", _set("shards.0.path", "shards/.bashrc"), r"shard 0 .*not of the form"),
    ("outside-shards", _set("shards.0.path", "other/train-00000.parquet"), r"shard 0 .*inside shards/"),
    ("nested", _set("shards.0.path", "shards/a/train-00000.parquet"), r"shard 0 .*inside shards/"),
    ("wrong-suffix", _set("shards.0.path", "shards/train-00000.zarr"), r"shard 0 .*does not end in '\.parquet'"),
    ("split-mismatch", _set("shards.0.split", "test"), r"shard 0 .*does not match its split"),
    ("unicode-digits", _set("shards.0.path", "shards/train-\u0660\u0660\u0660\u0660\u0660.parquet"),
     r"shard 0 .*non-ASCII"),
    ("duplicate-path", _set("shards.1.path", lambda d: d["shards"][0]["path"]), r"shard 1 .*duplicates shard 0"),
    ("duplicate-sha", _set("shards.1.sha256", lambda d: d["shards"][0]["sha256"]), r"shard 1 .*duplicates shard 0"),
    ("bad-sha", _set("shards.0.sha256", "../" * 21 + "a"), r"shard 0 .*sha256"),
    ("negative-events", _set("shards.0.n_events", -1), r"shard 0 .*n_events -1"),
    ("bool-events", _set("shards.0.n_events", True), r"shard 0 .*n_events True"),
    ("float-bytes", _set("shards.0.bytes", 1.5), r"shard 0 .*bytes 1\.5"),
    ("huge-events", _set("shards.0.n_events", 1 << 40), r"shard 0 .*n_events"),
    ("nodes-below-events", _set("shards.0.n_nodes", 0), r"shard 0 .*n_nodes 0 < n_events"),
    ("total-mismatch", _set("n_events", 7), r"n_events: total 7 != the sum"),
    ("version-4", _set("format_version", 4), r"format_version 4"),
    ("version-true", _set("format_version", True), r"format_version True"),
    ("layout", _set("layout", "pickle"), r"layout: unknown layout 'pickle'"),
    ("process-path", _set("process", "../../etc"), r"process: invalid value"),
    ("shards-not-list", _set("shards", {"path": "x"}), r"shards: must be a list"),
    ("entry-not-object", _set("shards.0", "shards/train-00000.parquet"), r"shard 0: not an object"),
    # format 2 (issue 11): the declared record schema, record shards, representations
    ("schema-dtype", _set("schema.collections.jets.fields.pt.dtype", "object"),
     r"schema collection 'jets'\.pt: unknown dtype 'object'"),
    ("schema-no-offsets", _set("schema.collections.jets.offsets", None),
     r"schema collection 'jets': a list collection must declare its offsets"),
    ("schema-orphan", _set("schema.collections", lambda d: {**d["schema"]["collections"], "jets.parts": {
        "kind": "list", "offsets": "n", "parent": "jetz", "fields": {}}}), r"collection 'jets\.parts': parent 'jetz'"),
    ("record-outside", _set("record_shards.0.path", "shards/../x.parquet"), r"record shard 0 .*contains '\.\.'"),
    ("record-unpaired", _set("record_shards", lambda d: d["record_shards"][:1]), r"record: 1 shards, the store has"),
    ("rep-fingerprint", _set("representations.paper.fingerprint", "x"), r"representation 'paper'.*sha256 fingerprint"),
    # format 3: record codecs are declared per column; a reader refuses what it does not know
    ("record-codec-unknown", _set("record_codecs.jets/pt.codec", "delta-zigzag"),
     r"record_codecs 'jets/pt': unknown record codec 'delta-zigzag'; this hepfm reads stored, paper"),
    ("record-codec-column", _set("record_codecs.jets/mass", {"codec": "paper", "column": "label"}),
     r"record_codecs 'jets/mass': needs a float32 paper node column"),
    ("record-codec-v2", _set("format_version", 2), r"record_codecs: only format 3 manifests may declare it"),
]


@pytest.fixture(scope="module")
def hostile_www(tmp_path_factory):
    """One served root per hostile case: ``www/<case>/ttH`` (a valid Parquet store, then the case's edit)."""
    base = tmp_path_factory.mktemp("hostile")
    clean = base / "clean"
    write_synthetic_stores(str(clean), {"ttH": STORES["ttH"]})
    www = base / "www"
    for case, edit, _ in HOSTILE:
        shutil.copytree(clean / "ttH", www / case / "ttH")
        edit_manifest(www / case / "ttH", edit)
    with http_server(www) as srv:
        yield www, srv


@pytest.mark.parametrize("case,edit,names", HOSTILE, ids=[c for c, _, _ in HOSTILE])
def test_hostile_manifest_over_http_is_refused_at_open(hostile_www, tmp_path, case, edit, names):
    """Each hostile manifest served over HTTP is refused by open_store with ManifestError naming the
    manifest's URL and the offending entry; load_dataset refuses it too and writes nothing."""
    from hepfm_data.core.errors import ManifestError

    www, srv = hostile_www
    url = f"{srv.url}/{case}/ttH"
    with pytest.raises(ManifestError, match=rf"^{url}/manifest\.json: (?s:.*){names}"):
        open_store(url)
    if case in ("dotdot", "absolute", "scheme", "chain", "duplicate-path"):
        with pytest.raises(ManifestError, match=names):
            load_dataset("hepfm/ttH", split="train", storage=f"{srv.url}/{case}", cache_dir=tmp_path / "c")
        assert not files_under(tmp_path)


def test_hostile_manifests_on_s3_are_refused(s3_bucket, tmp_path):
    """The same rules hold for a store on a real (moto) S3 server: a traversal, an absolute path and an
    other-bucket URL in the manifest are refused at open with the s3:// URL; nothing is cached."""
    import s3fs

    from hepfm_data.core.errors import ManifestError

    bucket, opts = s3_bucket
    fs = s3fs.S3FileSystem(**opts)
    local = tmp_path / "local"
    write_synthetic_stores(str(local), {"ttH": STORES["ttH"]})
    clean = (local / "ttH" / "manifest.json").read_text()
    for case, edit, names in HOSTILE[:3]:
        (local / "ttH" / "manifest.json").write_text(clean)
        edit_manifest(local / "ttH", edit)
        fs.put(str(local / "ttH"), f"{bucket}/{case}/ttH", recursive=True)
        url = f"s3://{bucket}/{case}/ttH"
        with pytest.raises(ManifestError, match=rf"^{url}/manifest\.json: (?s:.*){names}"):
            open_store(url, opts)
        with pytest.raises(ManifestError, match=names):
            load_dataset("hepfm/ttH", split="train", storage=f"s3://{bucket}/{case}", storage_options=opts,
                         cache_dir=tmp_path / "c")
    assert not files_under(tmp_path / "c")


def test_store_claiming_another_process_is_refused(www, tmp_path):
    """A store at <root>/ttH whose manifest says it is another process is refused by load_dataset."""
    edit_manifest(www / "stores" / "ttH", _set("process", "stop"))
    with pytest.raises(StoreError, match=r"ttH: manifest is for process 'stop', expected 'ttH'"):
        load_dataset("hepfm/ttH", split="train", storage=www / "stores", cache_dir=tmp_path / "c")


# ----------------------------------------------------------------------------- hostile bytes and listings

def _reseal(store_dir: Path, index: int = 0) -> None:
    """Recompute shard ``index``'s sha256 and bytes in the manifest (a hostile server controls both)."""
    from hepfm_data.store.layouts import local_sha256

    d = json.loads((store_dir / "manifest.json").read_text())
    entry = d["shards"][index]
    old = entry["bytes"]
    entry["sha256"], entry["bytes"] = local_sha256(str(store_dir / entry["path"]))
    d["bytes"] += entry["bytes"] - old
    (store_dir / "manifest.json").write_text(json.dumps(d))


def test_zarr_listing_with_hostile_links_writes_nothing_outside_the_cache(www, tmp_path):
    """The HTTP listing of a Zarr shard directory also links ``../`` paths (kept by fsspec as names under
    the shard): load_dataset refuses with StoreError naming the link before writing any file. Links
    to an absolute path or another host (dropped by fsspec's listing) change nothing. In every case
    no file is written outside the cache and no temporary is left."""
    first = json.loads((www / "stores" / "stop" / "manifest.json").read_text())["shards"][0]["path"]
    outside = files_under(tmp_path) - files_under(www)
    with http_server(www) as srv:
        for i, (link, refused) in enumerate((("../../../../../evil.txt", True), ("pt/../../x", True),
                                             ("..%2F..%2Fevil.txt", True), ("/abs-evil.txt", False),
                                             ("http://10.0.0.1/evil.txt", False))):
            srv.extra_links = {first: [link]}
            cache = tmp_path / f"cache{i}"
            kwargs = dict(split="train", storage=f"{srv.url}/stores", cache_dir=cache)
            if refused:
                with pytest.raises(StoreError, match=r"stop/shards/train-[0-9-]+\.zarr: the listing names"):
                    load_dataset("hepfm/stop", **kwargs)
            else:
                assert load_dataset("hepfm/stop", **kwargs).num_rows > 0
            written = files_under(tmp_path) - files_under(www)
            assert {p for p in written if not p.relative_to(tmp_path).parts[0].startswith("cache")} == outside
            assert not [p for p in (cache / "shards").iterdir() if p.name.startswith(".")]


def test_download_larger_than_the_manifest_declares_is_cut(www, tmp_path):
    """A shard whose served bytes exceed the manifest's ``bytes`` is aborted while downloading (the
    server cannot fill the disk) with StoreError naming the URL; the cache keeps nothing."""
    store = www / "stores" / "ttH"
    edit_manifest(store, lambda d: (d["shards"][0].update(bytes=100), d.update(bytes=d["bytes"] - 100)) and None)
    d = json.loads((store / "manifest.json").read_text())
    d["bytes"] = sum(s["bytes"] for s in d["shards"])
    (store / "manifest.json").write_text(json.dumps(d))
    with http_server(www) as srv:
        with pytest.raises(StoreError, match=r"ttH/shards/train-[0-9-]+\.parquet: the server sent more than the 100"):
            load_dataset("hepfm/ttH", split="train", storage=f"{srv.url}/stores", cache_dir=tmp_path / "c")
    assert not files_under(tmp_path / "c")


def _zarr_json(store_dir: Path, column: str, fn) -> None:
    first = json.loads((store_dir / "manifest.json").read_text())["shards"][0]["path"]
    path = store_dir / first / column / "zarr.json"
    meta = json.loads(path.read_text())
    fn(meta)
    path.write_text(json.dumps(meta))


ZARR_BOMBS = [
    ("huge-shape", "pt", lambda m: m.update(shape=[1 << 40]), r"column 'pt': float32 \(1099511627776,\)"),
    ("huge-chunk", "pt", lambda m: (m["chunk_grid"]["configuration"].update(chunk_shape=[1 << 34]),
                                    m["codecs"][0]["configuration"].update(chunk_shape=[1 << 34])),
     r"column 'pt'.*(exceed the limits|float32)"),
    ("index-bomb", "n_node", lambda m: (m["chunk_grid"]["configuration"].update(chunk_shape=[1 << 30]),
                                        m["codecs"][0]["configuration"].update(chunk_shape=[1])),
     r"column 'n_node'.*exceed the limits"),  # a 2**30-entry shard index (16 GiB) from a 1 kB file
    ("dtype", "weight", lambda m: m.update(data_type="float64"), r"column 'weight': float64"),
    ("codec", "eta", lambda m: m["codecs"][0]["configuration"]["codecs"].__setitem__(1, {"name": "numcodecs.zlib",
                                                                                        "configuration": {"level": 1}}),
     r"column 'eta': codecs \['Zlib'\] are not accepted"),
    ("multilabel-width", "multilabel", lambda m: m.update(shape=[m["shape"][0], 4096]), r"column 'multilabel'"),
]


@pytest.mark.parametrize("case,column,fn,names", ZARR_BOMBS, ids=[c[0] for c in ZARR_BOMBS])
def test_zarr_metadata_limits_checked_when_a_shard_is_opened(www, tmp_path, case, column, fn, names):
    """A served Zarr shard whose metadata (resealed into the manifest, as a hostile server would) asks
    for a huge shape or chunk, another dtype or a codec outside the accepted set is refused when the
    shard is opened, before any chunk is read; reads through the cache (over HTTP) and directly agree."""
    store = www / "stores" / "stop"
    _zarr_json(store, column, fn)
    _reseal(store)
    with http_server(www) as srv:
        kwargs = dict(split="train", storage=f"{srv.url}/stores", cache_dir=tmp_path / "c")
        with pytest.raises(StoreError, match=rf"stop: shard train-[0-9-]+\.zarr: {names}"):
            load_dataset("hepfm/stop", **kwargs)
    local = open_store(str(store))
    with pytest.raises(StoreError, match=names):
        local.read_shard(local.shards("train")[0])


def test_parquet_column_types_checked_when_a_shard_is_opened(www, tmp_path):
    """A Parquet shard whose n_node column is float64 (resealed) is refused with the column named."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = www / "stores" / "ttH"
    first = json.loads((store / "manifest.json").read_text())["shards"][0]["path"]
    table = pq.read_table(store / first)
    i = table.schema.get_field_index("n_node")
    pq.write_table(table.set_column(i, "n_node", table["n_node"].cast(pa.float64())), store / first)
    _reseal(store)
    with http_server(www) as srv:
        with pytest.raises(StoreError, match=r"ttH: shard train-[0-9-]+\.parquet: column 'n_node' has type double"):
            load_dataset("hepfm/ttH", split="train", storage=f"{srv.url}/stores", cache_dir=tmp_path / "c")


def test_oversized_manifest_is_refused(www, monkeypatch):
    """A manifest larger than the bound (lowered here to 1 kB) is refused without being parsed."""
    from hepfm_data.store import manifest, reader

    monkeypatch.setattr(manifest, "MAX_MANIFEST_BYTES", 1000)
    monkeypatch.setattr(reader, "MAX_MANIFEST_BYTES", 1000)
    with pytest.raises(StoreError, match=r"larger than 1000 bytes"):
        open_store(str(www / "stores" / "ttH"))


# ----------------------------------------------------------------------------- export cards

def test_export_card_escapes_text_from_the_manifest(www, tmp_path):
    """Provenance text in a manifest (lines, table cells, HTML, links) reaches the exported card only as
    escaped text in its table cell: the card keeps its structure and its YAML front matter."""
    import yaml

    from hepfm_data.serving.export import export_dataset

    hostile = "synthetic |x| \n---\n# Injected <script>alert(1)</script> [click](http://evil)"
    edit_manifest(www / "stores" / "ttH", lambda d: d["provenance"][0].update(source=hostile))
    export_dataset("hepfm/ttH", tmp_path / "out", storage=www / "stores", progress=False)
    card = (tmp_path / "out" / "README.md").read_text()
    row = next(line for line in card.splitlines() if line.startswith("| ttH |"))
    assert row.count("|") - row.count("\\|") == 6 and "\\<script\\>" in row and "\\[click\\]" in row
    assert "\n# Injected" not in card and card.count("\n---\n") == 1
    assert yaml.safe_load(card.split("---\n")[1])["pretty_name"] == "hepfm/ttH"


@pytest.mark.parametrize("proc,column", [("stop", "pt/c/0"), ("ttH", None)])
def test_corrupt_data_bytes_read_directly_give_a_named_error(www, proc, column):
    """A few bytes changed in the middle of a shard's data (a Zarr chunk file of pt, or the Parquet
    file) read directly, without the sha256 check of the cache: the per-chunk crc32c (Zarr) or page
    CRC32 (Parquet) turns it into a StoreError naming the store and the shard, not other numbers."""
    store_dir = www / "stores" / proc
    first = json.loads((store_dir / "manifest.json").read_text())["shards"][0]["path"]
    victim = store_dir / first / column if column else store_dir / first
    raw = bytearray(victim.read_bytes())
    at = len(raw) // 3  # inside the compressed payload (Zarr: before the shard index at the end)
    raw[at:at + 4] = bytes(b ^ 0x5A for b in raw[at:at + 4])
    victim.write_bytes(bytes(raw))
    store = open_store(str(store_dir))
    with pytest.raises(StoreError, match=rf"stores/{proc}: shard {Path(first).name}"):
        store.read_shard(store.shards()[0])
