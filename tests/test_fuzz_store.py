"""Fuzzing (hypothesis) of what a store hands hepfm: manifest text and shard bytes.

Manifest parsing: mutated fields, mutated JSON text and random bytes either parse into a
manifest that obeys every rule (shard paths inside ``shards/``, unique, counts consistent) or
raise ManifestError naming the manifest; never another exception. Shard reading: a shard file
overwritten, truncated or extended at random ends, read directly or through the verifying
cache, in a named hepfm error or in exactly the original data; never a write outside the
store copy and the cache, never another exception, never a hang (pytest-timeout)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hepfm_data.core.errors import HepfmError, ManifestError
from hepfm_data.store import open_store
from hepfm_data.store.cache import RemoteShards
from hepfm_data.store.manifest import SHARD_DIR, Manifest, shard_path_problem
from hepfm_data.testing import shard_digest as _digest
from hepfm_data.testing import write_synthetic_stores

WHERE = "fuzz://host/stores/ttH/manifest.json"
HOSTILE_TEXT = ["shards/../../x.zarr", "/etc/passwd", "s3://b/k", "a::b", "shards/.x", "shards/train-00000.zarr",
                "shards/train-00001.parquet", "shards/test-00000.parquet", "..", "", "~/x", "C:\\x", "shards\\x",
                "shards/train-0000\u0661.parquet", "train", "validation", "test", "a" * 300, "0" * 64, "zarr",
                "parquet", "hepfm-store"]
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A small Parquet store and a small Zarr store (a few shards each)."""
    root = tmp_path_factory.mktemp("pristine")
    write_synthetic_stores(str(root), {"ttH": ("parquet", 150, 1, 0), "stop": ("zarr", 150, 2, 10_000)},
                           events_per_shard=48)
    return root


# ----------------------------------------------------------------------------- manifests

scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | \
    st.sampled_from(HOSTILE_TEXT) | st.text(max_size=12)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                      max_leaves=6)
DELETE = object()


def _keys(d: dict) -> list[tuple]:
    keys = [(k,) for k in d]
    for i, s in enumerate(d["shards"]):
        keys += [("shards", i)] + [("shards", i, k) for k in s]
    return keys


def _apply(d: dict, key: tuple, value) -> None:
    obj = d
    for k in key[:-1]:
        obj = obj[k]
    if value is DELETE:
        del obj[key[-1]]
    else:
        obj[key[-1]] = value


def _check_parsed(m: Manifest) -> None:
    """Invariants of every manifest that parsing accepted."""
    paths = [s.path for s in m.shards]
    assert len(set(paths)) == len(paths) and len({s.sha256 for s in m.shards}) == len(paths)
    for s in m.shards:
        assert shard_path_problem(s.path) is None and s.path.startswith(f"{SHARD_DIR}/")
        assert s.path == str(Path(s.path)) and ".." not in s.path and ":" not in s.path
        for v in (s.n_events, s.n_nodes, s.bytes):
            assert type(v) is int and v >= 0
        assert s.n_nodes >= s.n_events and s.split in s.name
    assert type(m.format_version) is int and m.format_version in (1, 2, 3)
    # format 2: record and derived shards obey the same path rules in their own folders, paired 1:1
    for listed, folder in [(m.record_shards, "record")] + [(r["shards"] or [], f"representations/{n}")
                                                         for n, r in m.representations.items()]:
        assert not listed or len(listed) == len(m.shards)
        for s, base in zip(listed, m.shards):
            assert shard_path_problem(s.path, directory=folder) is None and s.name == base.name
            assert ".." not in s.path and ":" not in s.path and s.n_events == base.n_events


def _parse(text) -> Manifest | None:
    try:
        m = Manifest.from_json(text, WHERE)
    except ManifestError as exc:
        assert str(exc).startswith(WHERE), exc
        return None
    _check_parsed(m)
    return m


@SETTINGS
@given(data=st.data())
def test_fuzz_manifest_fields(pristine, data):
    """Up to four fields (top level or in shard entries) replaced by arbitrary JSON values, hostile
    strings or deleted: a ManifestError naming the manifest, or a manifest obeying every rule."""
    for proc in ("ttH", "stop"):
        d = json.loads((pristine / proc / "manifest.json").read_text())
        for _ in range(data.draw(st.integers(1, 4))):
            key = data.draw(st.sampled_from(_keys(d)))
            _apply(d, key, data.draw(values | st.just(DELETE)))
            if not isinstance(d.get("shards"), list) or not all(isinstance(s, dict) for s in d["shards"]):
                break
        _parse(json.dumps(d))


@SETTINGS
@given(data=st.data())
def test_fuzz_manifest_text(pristine, data):
    """The manifest's JSON text with characters overwritten, inserted or cut, or random bytes."""
    text = (pristine / "stop" / "manifest.json").read_text()
    if data.draw(st.booleans()):
        _parse(data.draw(st.binary(max_size=400)))
        return
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(text)))
        j = data.draw(st.integers(i, min(len(text), i + 8)))
        text = text[:i] + data.draw(st.text(alphabet='0123456789-.:/\\"{}[],truefalsn ', max_size=6)) + text[j:]
    _parse(text)


def test_clean_manifests_parse(pristine):
    """The unmutated manifests parse (the fuzz starts from valid input)."""
    for proc in ("ttH", "stop"):
        assert _parse((pristine / proc / "manifest.json").read_text()) is not None


# ----------------------------------------------------------------------------- shard bytes

def _files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def reference(pristine):
    out = {}
    for proc in ("ttH", "stop"):
        store = open_store(str(pristine / proc))
        out[proc] = {i.path: _digest(store.read_shard(i)) for i in store.shards()}
    return out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.timeout(900)
def test_fuzz_corrupted_shard_bytes(pristine, reference, data):
    """One file of one shard (a Parquet file, or any file of a Zarr shard: metadata, chunks, index)
    gets bytes overwritten, is truncated, or gets bytes appended. Reading every shard directly and
    through the verifying cache (RemoteShards) ends, per shard, in a HepfmError or in exactly the
    original data; the cache path additionally never serves changed bytes; nothing is written
    outside the store copy and the cache."""
    proc = data.draw(st.sampled_from(["ttH", "stop"]))
    with tempfile.TemporaryDirectory(prefix="hepfm-fuzz-") as tmp:
        tmp = Path(tmp)
        store_dir = tmp / "store" / proc
        # hard links: the copy costs no bytes (a Zarr shard is ~90 files); the victim is replaced, not
        # written through its link, so the pristine store stays intact (a write through any other link
        # would show in the store copy and fail the last assertion)
        shutil.copytree(pristine / proc, store_dir, copy_function=os.link)
        victims = sorted(p for p in (store_dir / "shards").rglob("*") if p.is_file())
        victim = data.draw(st.sampled_from(victims))
        raw = bytearray(victim.read_bytes())
        how = data.draw(st.sampled_from(["overwrite", "truncate", "append"]))
        if how == "overwrite" and raw:
            at = data.draw(st.integers(0, len(raw) - 1))
            new = data.draw(st.binary(min_size=1, max_size=16))
            raw[at:at + len(new)] = new
        elif how == "truncate":
            raw = raw[:data.draw(st.integers(0, max(len(raw) - 1, 0)))]
        else:
            raw += data.draw(st.binary(min_size=1, max_size=64))
        victim.unlink()
        victim.write_bytes(bytes(raw))
        changed = victim.relative_to(store_dir).parts[:2]
        before = _files(tmp)
        store = open_store(str(store_dir))
        for info in store.shards():
            try:
                got = _digest(store.read_shard(info))
            except HepfmError:
                continue
            assert got == reference[proc][info.path], f"{how} of {victim.name}: shard {info.path} read other data"
        shards = RemoteShards(tmp / "cache", max_bytes=1 << 30)
        for info in store.shards():
            try:
                got = _digest(shards.read(store, info))
            except HepfmError:
                continue
            assert got == reference[proc][info.path]
            assert tuple(info.path.split("/")) != changed or bytes(raw) == (pristine / proc / victim.relative_to(
                store_dir)).read_bytes()  # a changed shard never passes the checksum
        after = _files(tmp)
        assert {p: b for p, b in after.items() if tmp / "cache" not in p.parents} == before
