"""Delphes ROOT reader on the real Delphes 3.4.2 file, on uproot-written Delphes-like
files, over S3 (moto), and its errors for broken inputs."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from hepfm_data.core.errors import InputFileError
from hepfm_data.core.events import TRUTH_PIDS, validate_events
from hepfm_data.inputs import open_source
from hepfm_data.pipelines.build import build_store
from hepfm_data.readers import expand_inputs, read_delphes
from hepfm_data.readers.delphes import file_key, write_delphes_like
from hepfm_data.store import open_store
from hepfm_data.testing import synthetic_events


def _python_last_copies(pid, d1, d2):
    """Plain-python truth selection: wanted |pid| and no daughter with the same pid."""
    keep = []
    for k in range(len(pid)):
        if abs(pid[k]) not in TRUTH_PIDS:
            continue
        daughters = range(d1[k], max(d1[k], d2[k]) + 1) if d1[k] >= 0 else range(0)
        if all(d >= len(pid) or pid[d] != pid[k] for d in daughters):
            keep.append(k)
    return keep


def test_real_file_events_and_truth(delphes_file):
    """The real ttH file gives 10 valid events; chunking does not change them; truth = last copies
    (python reference) with one Higgs and two tops per event; ids are unique and keyed by file name."""
    whole = ak.concatenate(list(read_delphes(str(delphes_file), step_size=100)))
    chunks = list(read_delphes(str(delphes_file), step_size=3))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    assert ak.to_list(ak.concatenate(chunks)) == ak.to_list(whole)
    validate_events(whole)
    raw = uproot.open(delphes_file)["Delphes"].arrays(
        ["Jet.PT", "Particle.PID", "Particle.D1", "Particle.D2", "Particle.PT", "MissingET.MET"], library="np")
    for i in range(10):
        pid, d1, d2 = raw["Particle.PID"][i], raw["Particle.D1"][i], raw["Particle.D2"][i]
        keep = _python_last_copies(pid, d1, d2)
        np.testing.assert_array_equal(whole.truth.pid[i], pid[keep])
        np.testing.assert_array_equal(whole.truth.pt[i], raw["Particle.PT"][i][keep])
        np.testing.assert_array_equal(whole.jets.pt[i], raw["Jet.PT"][i])
        assert whole.met.pt[i] == raw["MissingET.MET"][i][0]
        tp = np.asarray(whole.truth.pid[i])
        assert np.sum(tp == 25) == 1 and np.sum(np.abs(tp) == 6) == 2
    ids = whole.event_id.to_numpy()
    assert len(set(ids.tolist())) == 10
    np.testing.assert_array_equal(ids >> np.uint64(32), file_key(str(delphes_file)))
    np.testing.assert_array_equal(ids & np.uint64(0xFFFFFFFF), np.arange(10))
    phi = ak.to_numpy(ak.flatten(whole.jets.phi))
    assert np.all((phi >= -np.pi) & (phi < np.pi))


def test_uproot_written_delphes_like_round_trips(tmp_path):
    """A record written as Delphes branches (Jet.PT, ...) reads back field for field, in several chunks."""
    ev = synthetic_events(120, seed=4)
    no_truth = np.arange(120) % 7 == 0
    no_truth[-1] = True  # empty truth lists, including the last event
    ev = ak.with_field(ev, ak.where(no_truth, ev.truth[:, :0], ev.truth), "truth")
    ev = ak.with_field(ev, ak.where(np.arange(120) % 5 == 0, ev.jets[:, :0], ev.jets), "jets")
    path = tmp_path / "sample_a.root"
    write_delphes_like(str(path), ev, chunk=50)
    got = ak.concatenate(list(read_delphes(str(path), step_size=45)))
    for field in ("weight", "jets", "electrons", "muons", "photons", "met", "truth"):
        assert ak.to_list(got[field]) == ak.to_list(ev[field]), field


def test_broken_inputs_raise_errors_naming_the_file(tmp_path, delphes_copy):
    """Not ROOT, truncated, missing tree/collection, missing file, empty glob and clashing
    base names each raise InputFileError naming the file and the problem."""
    text = tmp_path / "notes.root"
    text.write_text("this is not a ROOT file\n" * 20)
    with pytest.raises(InputFileError, match=r"notes\.root: not a ROOT file"):
        list(read_delphes(str(text)))
    raw = delphes_copy.read_bytes()
    delphes_copy.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputFileError, match=r"copy\.root: .*truncated"):
        list(read_delphes(str(delphes_copy)))
    nophoton = tmp_path / "nophoton.root"
    write_delphes_like(str(nophoton), synthetic_events(5), drop=("Photon",))
    with pytest.raises(InputFileError, match=r"nophoton\.root: tree 'Delphes' lacks collection Photon"):
        list(read_delphes(str(nophoton)))
    other = tmp_path / "other.root"
    with uproot.recreate(other) as f:
        f["Events"] = {"x": np.arange(3)}
    with pytest.raises(InputFileError, match=r"other\.root: no TTree 'Delphes'.*Events"):
        list(read_delphes(str(other)))
    with pytest.raises(InputFileError, match=r"absent\.root: file not found"):
        list(read_delphes(str(tmp_path / "absent.root")))
    with pytest.raises(InputFileError, match="no input file matches"):
        expand_inputs(str(tmp_path / "nothing-*.root"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        write_delphes_like(str(tmp_path / d / "same.root"), synthetic_events(3))
    with pytest.raises(InputFileError, match="share base names"):
        expand_inputs(str(tmp_path / "*" / "same.root"))


def test_corrupt_basket_is_reported(tmp_path, delphes_file):
    """Overwriting bytes inside the data (not the header) gives an InputFileError naming the file."""
    path = tmp_path / "damaged.root"
    raw = bytearray(delphes_file.read_bytes())
    raw[2000:400000] = b"\0" * (400000 - 2000)
    path.write_bytes(bytes(raw))
    with pytest.raises(InputFileError, match=r"damaged\.root"):
        list(read_delphes(str(path)))


def test_read_over_s3_equals_local_and_builds_a_store(tmp_path, delphes_file, s3_bucket):
    """The real file read from s3:// (moto) gives the same events and ids as locally; a glob over
    several files builds a store whose events are all the files' events."""
    import s3fs

    bucket, opts = s3_bucket
    fs = s3fs.S3FileSystem(**opts)
    fs.put(str(delphes_file), f"{bucket}/in/{delphes_file.name}")
    write_delphes_like(str(tmp_path / "extra.root"), synthetic_events(30, seed=5))
    fs.put(str(tmp_path / "extra.root"), f"{bucket}/in/extra.root")
    local = ak.concatenate(list(read_delphes(str(delphes_file))))
    remote = ak.concatenate(list(read_delphes(f"s3://{bucket}/in/{delphes_file.name}", storage_options=opts,
                                              step_size=4)))
    assert ak.to_list(remote) == ak.to_list(local)
    # the one build path: one unit per file (the two files are of different productions: the
    # real one has Jet.BTag / IsolationVar, the Delphes-like one does not; the store declares the
    # fields both have)
    source = open_source("delphes", "ttH", f"s3://{bucket}/in/*.root", storage_options=opts, step_size=7)
    with pytest.warns(UserWarning, match="not in every unit"):
        store = build_store(source, str(tmp_path / "stores"), events_per_shard=16,
                            progress=False, scheduler="sync")
    assert store.manifest.n_events == 40
    assert sorted(p["inputs"][0] for p in store.manifest.provenance) == sorted(
        [f"s3://{bucket}/in/{delphes_file.name}", f"s3://{bucket}/in/extra.root"])
    ids = np.concatenate([store.read_shard(s).event_id for s in store.shards()])
    assert set(local.event_id.to_numpy().tolist()) <= set(ids.tolist()) and len(set(ids.tolist())) == 40
    assert open_store(str(tmp_path / "stores" / "ttH")).verify() == []


def test_optional_fields_and_tau_jets(delphes_file, tmp_path):
    """The real file's optional fields equal its branches (btag = Jet.BTag bit 0, isolation =
    IsolationVar); a Delphes-like file with Jet.TauTag/Charge gives taus = the τ-tagged jets with
    their charge; without TauTag the record has no taus and no jets.tau_tag (absent, not zero)."""
    from hepfm_data.readers.delphes import write_delphes_tree

    ev = ak.concatenate(list(read_delphes(str(delphes_file))))
    raw = uproot.open(delphes_file)["Delphes"].arrays(["Jet.BTag", "Electron.IsolationVar", "Jet.TauTag"])
    assert ak.to_list(ev.jets.btag) == ak.to_list(raw["Jet.BTag"] & 1)
    assert ak.to_list(ev.jets.tau_tag) == ak.to_list(raw["Jet.TauTag"] & 1)
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(ev.electrons.isolation)),
                               ak.to_numpy(ak.flatten(raw["Electron.IsolationVar"])), rtol=1e-6)
    syn = synthetic_events(30, seed=2)
    tau = ak.values_astype(syn.jets.pt > 60, np.int32)
    charge = ak.values_astype(ak.where(syn.jets.eta > 0, 1, -1), np.int32)
    one = np.ones(30, np.int64)
    chunk = {"Event": ak.zip({"Weight": ak.unflatten(np.ones(30, np.float32), one)}),
             "Jet": ak.zip({"PT": syn.jets.pt, "Eta": syn.jets.eta, "Phi": syn.jets.phi, "Mass": syn.jets.mass,
                            "TauTag": tau, "Charge": charge}),
             "Electron": ak.zip({"PT": syn.electrons.pt, "Eta": syn.electrons.eta, "Phi": syn.electrons.phi,
                                 "Charge": ak.values_astype(syn.electrons.charge, np.int32)}),
             "Muon": ak.zip({"PT": syn.muons.pt, "Eta": syn.muons.eta, "Phi": syn.muons.phi,
                             "Charge": ak.values_astype(syn.muons.charge, np.int32)}),
             "Photon": ak.zip({"PT": syn.photons.pt, "Eta": syn.photons.eta, "Phi": syn.photons.phi}),
             "MissingET": ak.zip({"MET": ak.unflatten(syn.met.pt.to_numpy(), one),
                                  "Phi": ak.unflatten(syn.met.phi.to_numpy(), one)}),
             "Particle": ak.zip({"PID": syn.truth.pid, "PT": syn.truth.pt, "Eta": syn.truth.eta, "Phi": syn.truth.phi,
                                 "Mass": syn.truth.mass, "D1": syn.truth.pid * 0 - 1, "D2": syn.truth.pid * 0 - 1})}
    path = tmp_path / "taus.root"
    write_delphes_tree(str(path), [chunk])
    got = validate_events(ak.concatenate(list(read_delphes(str(path)))))
    sel = syn.jets.pt > 60
    assert ak.to_list(got.taus.pt) == ak.to_list(syn.jets.pt[sel])
    assert ak.to_list(got.taus.charge) == ak.to_list(ak.values_astype(charge[sel], np.int8))
    plain = tmp_path / "plain.root"
    write_delphes_like(str(plain), syn)
    got = ak.concatenate(list(read_delphes(str(plain))))
    assert "taus" not in got.fields and "tau_tag" not in got.jets.fields and "btag" not in got.jets.fields
