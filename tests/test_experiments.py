"""CMS NanoAOD and ATLAS PHYSLITE readers on the real files (tests/data/), on modified copies
written with uproot (other productions: collections dropped, branches renamed, collision data
without truth), their errors for files of another format and damaged baskets, format detection
and the build command through the event sources."""

from __future__ import annotations

import json
import shutil

import awkward as ak
import numpy as np
import pytest
import uproot

from hepfm_data.cli.main import main
from hepfm_data.core.errors import InputFileError
from hepfm_data.core.events import TRUTH_PIDS, validate_events
from hepfm_data.readers import detect_format, nanoaod, physlite
from hepfm_data.readers._root import hash_ids
from hepfm_data.testing import write_modified_copy


def _nano_branches(path):
    return nanoaod._Plan(uproot.open(path)["Events"], str(path)).branches


def _lite_branches(path):
    # ElementLink sub-branches ("a/b") cannot be written by uproot: the copies have no b-tagging links
    return [b for b in physlite._Plan(uproot.open(path)["CollectionTree"], str(path)).branches if "/" not in b]


def _pair_mass(coll):
    """Invariant mass of the two leading objects (massless), events with >= 2 objects."""
    two = coll[ak.num(coll) >= 2]
    pt1, pt2 = ak.to_numpy(two.pt[:, 0]), ak.to_numpy(two.pt[:, 1])
    deta = ak.to_numpy(two.eta[:, 0] - two.eta[:, 1])
    dphi = ak.to_numpy(two.phi[:, 0] - two.phi[:, 1])
    return np.sqrt(2 * pt1 * pt2 * (np.cosh(deta) - np.cos(dphi)))


# ------------------------------------------------------------------ NanoAOD


def test_nanoaod_real_file(nanoaod_file):
    """The real DY file gives 40 valid events, chunking-invariant; fields equal the raw branches; b-tag flag
    = DeepJet score above the working point; truth = GenPart last copies (statusFlags bit 13) of the kept
    ids with one Z per event; ids = hash of (run, lumi, event), unique; the dilepton mass peaks at the Z."""
    whole = ak.concatenate(list(nanoaod.read_nanoaod(str(nanoaod_file))))
    chunks = list(nanoaod.read_nanoaod(str(nanoaod_file), step_size=15))
    assert [len(c) for c in chunks] == [15, 15, 10]
    assert ak.to_list(ak.concatenate(chunks)) == ak.to_list(whole)
    ev = validate_events(whole)
    raw = uproot.open(nanoaod_file)["Events"].arrays(
        ["Jet_pt", "Jet_btagDeepFlavB", "Tau_pt", "GenPart_pdgId", "GenPart_statusFlags", "run", "luminosityBlock",
         "event", "genWeight", "MET_pt"])
    assert ak.to_list(ev.jets.pt) == ak.to_list(raw.Jet_pt)
    assert ak.to_list(ev.taus.pt) == ak.to_list(raw.Tau_pt)
    assert ak.to_list(ev.jets.btag) == ak.to_list(ak.values_astype(raw.Jet_btagDeepFlavB > 0.2489, np.int8))
    np.testing.assert_array_equal(ev.met.pt.to_numpy(), raw.MET_pt.to_numpy())
    np.testing.assert_array_equal(ev.weight.to_numpy(), raw.genWeight.to_numpy())
    for i in range(40):
        pid, flags = raw.GenPart_pdgId[i].to_numpy(), raw.GenPart_statusFlags[i].to_numpy()
        keep = [k for k in range(len(pid)) if abs(pid[k]) in TRUTH_PIDS and flags[k] & (1 << 13)]
        np.testing.assert_array_equal(ev.truth.pid[i].to_numpy(), pid[keep])
        assert np.sum(ev.truth.pid[i].to_numpy() == 23) == 1  # Drell-Yan: exactly one Z last copy
    ids = ev.event_id.to_numpy()
    np.testing.assert_array_equal(ids, hash_ids(raw.run.to_numpy(), raw.luminosityBlock.to_numpy(),
                                                raw.event.to_numpy()))
    assert len(set(ids.tolist())) == 40
    mll = np.concatenate([_pair_mass(ev.muons), _pair_mass(ev.electrons)])
    assert len(mll) >= 8 and 80 < np.median(mll) < 100  # Z -> ll (the other events: Z -> tau tau, acceptance)
    info = nanoaod.sample_info("ttbar", str(nanoaod_file))
    assert info.input_format == "nanoaod" and info.truth and info.release.startswith("ROOT 6.18")


def test_nanoaod_other_production_reads_what_is_there(nanoaod_file, tmp_path):
    """A copy without btagDeepFlavB and Tau_*, with the electron isolation renamed, reads: the b-tag
    fields, the taus and the electron isolation are absent (not zero-filled), the rest unchanged."""
    ref = ak.concatenate(list(nanoaod.read_nanoaod(str(nanoaod_file))))
    path = tmp_path / "other.root"
    write_modified_copy(nanoaod_file, path, "Events", _nano_branches(nanoaod_file), sep="_",
                        drop=["Jet_btagDeepFlavB", *nanoaod.TAUS.values(), "Tau_idDeepTau2017v2p1VSjet"],
                        rename={"Electron_pfRelIso03_all": "Electron_isoRenamed"})
    got = validate_events(ak.concatenate(list(nanoaod.read_nanoaod(str(path)))))
    assert "taus" not in got.fields and "btag" not in got.jets.fields and "btag_score" not in got.jets.fields
    assert "isolation" not in got.electrons.fields and "isolation" in got.muons.fields
    for f in ("event_id", "weight", "met", "truth", "muons"):
        assert ak.to_list(got[f]) == ak.to_list(ref[f]), f
    assert ak.to_list(got.jets.pt) == ak.to_list(ref.jets.pt)


def test_nanoaod_collision_data_builds_without_truth(nanoaod_file, tmp_path, capsys):
    """A copy without GenPart_* and genWeight (as collision data) has no truth, weight 1 and SampleInfo
    truth=False; `hepfm-data build` detects the format, builds a store, and `info` says there is no truth."""
    path = tmp_path / "data.root"
    branches = [b for b in _nano_branches(nanoaod_file) if not b.startswith("GenPart_") and b != "genWeight"]
    write_modified_copy(nanoaod_file, path, "Events", branches, sep="_")
    ev = validate_events(ak.concatenate(list(nanoaod.read_nanoaod(str(path)))))
    assert "truth" not in ev.fields and np.all(ev.weight.to_numpy() == 1.0)
    assert nanoaod.sample_info("ttbar", str(path)).truth is False
    assert main(["build", "ttbar", "--input", str(path), "--out", str(tmp_path / "st"), "--quiet"]) == 0
    assert "input format: nanoaod (detected)" not in capsys.readouterr().out  # --quiet
    assert main(["info", str(tmp_path / "st" / "ttbar"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "input      nanoaod: ROOT" in out and "no truth record (collision data)" in out


def test_nanoaod_bad_inputs_name_file_and_branch(nanoaod_file, delphes_file, tmp_path):
    """A missing required branch, a partial Tau collection, a Delphes file passed as NanoAOD and a
    damaged basket each raise InputFileError naming the file and the tree/branch."""
    path = tmp_path / "nocharge.root"
    write_modified_copy(nanoaod_file, path, "Events", _nano_branches(nanoaod_file), sep="_", drop=["Muon_charge"])
    with pytest.raises(InputFileError, match=r"nocharge\.root: tree 'Events' lacks collection muons "
                                             r"\(branches Muon_charge\)"):
        list(nanoaod.read_nanoaod(str(path)))
    path = tmp_path / "halftau.root"
    write_modified_copy(nanoaod_file, path, "Events", _nano_branches(nanoaod_file), sep="_", drop=["Tau_charge"])
    with pytest.raises(InputFileError, match=r"halftau\.root: .*collection Tau but lacks its branches Tau_charge"):
        list(nanoaod.read_nanoaod(str(path)))
    with pytest.raises(InputFileError, match=r"delphes-3\.4\.2-ttH-10events\.root: no TTree 'Events'.*Delphes"):
        list(nanoaod.read_nanoaod(str(delphes_file)))
    assert main(["build", "ttbar", "--input", str(delphes_file), "--format", "nanoaod",
                 "--out", str(tmp_path / "st"), "--quiet"]) == 1
    damaged = tmp_path / "damaged.root"
    shutil.copyfile(nanoaod_file, damaged)
    branch = uproot.open(nanoaod_file)["Events"]["Jet_pt"]
    seek, size = int(branch.member("fBasketSeek")[0]), int(branch.member("fBasketBytes")[0])
    raw = bytearray(damaged.read_bytes())
    raw[seek + 100: seek + size] = b"\0" * (size - 100)
    damaged.write_bytes(bytes(raw))
    with pytest.raises(InputFileError, match=r"damaged\.root: cannot read tree 'Events', branch 'Jet_pt'"):
        list(nanoaod.read_nanoaod(str(damaged)))


# ------------------------------------------------------------------ PHYSLITE


def test_physlite_real_file(physlite_file):
    """The real PHYSLITE file gives 100 valid events; MeV -> GeV (jets = raw / 1000, the dielectron mass
    peaks at the Z of this Z -> ee sample); b-tag score = DL1dv01 D through btaggingLink, flag = D > 2.456;
    taus from AnalysisTauJets; ids unique; rebuilt MET in the range of a Z -> ee sample."""
    whole = ak.concatenate(list(physlite.read_physlite(str(physlite_file))))
    chunks = list(physlite.read_physlite(str(physlite_file), step_size=40))
    assert ak.to_list(ak.concatenate(chunks)) == ak.to_list(whole)
    ev = validate_events(whole)
    t = uproot.open(physlite_file)["CollectionTree"]
    raw = t.arrays(["AnalysisJetsAuxDyn.pt", "AnalysisTauJetsAuxDyn.pt", physlite.BTAG_LINK,
                    *[f"BTagging_AntiKt4EMPFlowAuxDyn.DL1dv01_p{x}" for x in "bcu"]])
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(ev.jets.pt)),
                               ak.to_numpy(ak.flatten(raw["AnalysisJetsAuxDyn.pt"])) / 1000, rtol=1e-6)
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(ev.taus.pt)),
                               ak.to_numpy(ak.flatten(raw["AnalysisTauJetsAuxDyn.pt"])) / 1000, rtol=1e-6)
    for i in (0, 1, 7):
        link = raw[physlite.BTAG_LINK][i].to_numpy()
        pb, pc, pu = (raw[f"BTagging_AntiKt4EMPFlowAuxDyn.DL1dv01_p{x}"][i].to_numpy()[link] for x in "bcu")
        d = np.log(pb / (0.018 * pc + 0.982 * pu))
        np.testing.assert_allclose(ev.jets.btag_score[i].to_numpy(), d, rtol=1e-5)
        np.testing.assert_array_equal(ev.jets.btag[i].to_numpy(), (d > 2.456).astype(np.int8))
    assert len(set(ev.event_id.to_numpy().tolist())) == 100
    mee = _pair_mass(ev.electrons)
    assert len(mee) >= 30 and 85 < np.median(mee) < 97
    assert 5 < np.median(ev.met.pt.to_numpy()) < 40  # Z -> ee: little genuine MET
    assert set(np.abs(ak.to_numpy(ak.flatten(ev.truth.pid)))) <= set(TRUTH_PIDS)
    info = physlite.sample_info("ttbar", str(physlite_file))
    assert info.input_format == "physlite" and info.truth and info.generator["simulation"] is True


def test_physlite_other_release_and_collision_data(physlite_file, tmp_path):
    """A copy without b-tagging links, taus, truth containers and mcEventWeights and with
    eventTypeBitmask 0 (as collision data) reads: btag and taus absent, no truth, weight 1,
    SampleInfo truth=False; kinematics equal the full file's."""
    ref = ak.concatenate(list(physlite.read_physlite(str(physlite_file))))
    drop = [*physlite.TAUS.values(), physlite.TAU_ID, "EventInfoAuxDyn.mcEventWeights",
            *[b for b in _lite_branches(physlite_file) if b.startswith("Truth")]]
    path = tmp_path / "data.root"
    n = len(ref)
    write_modified_copy(physlite_file, path, "CollectionTree", _lite_branches(physlite_file), sep=".", drop=drop,
                        replace={"EventInfoAuxDyn.eventTypeBitmask": ak.Array(np.zeros(n, np.uint32))})
    got = validate_events(ak.concatenate(list(physlite.read_physlite(str(path)))))
    assert "taus" not in got.fields and "truth" not in got.fields and "btag" not in got.jets.fields
    assert np.all(got.weight.to_numpy() == 1.0)
    for f in ("event_id", "electrons", "muons", "photons"):
        assert ak.to_list(got[f]) == ak.to_list(ref[f]), f
    info = physlite.sample_info("ttbar", str(path))
    assert info.truth is False and info.generator["simulation"] is False


def test_physlite_bad_inputs(physlite_file, nanoaod_file, tmp_path):
    """A missing required branch and a NanoAOD file passed as PHYSLITE are refused naming the file and
    the branch/tree; the format is detected from the trees of each real file."""
    path = tmp_path / "nomet.root"
    write_modified_copy(physlite_file, path, "CollectionTree", _lite_branches(physlite_file), sep=".",
                        drop=["MET_Core_AnalysisMETAuxDyn.source"])
    with pytest.raises(InputFileError, match=r"nomet\.root: tree 'CollectionTree' lacks collection met "
                                             r"\(branches MET_Core_AnalysisMETAuxDyn\.source\)"):
        list(physlite.read_physlite(str(path)))
    with pytest.raises(InputFileError, match=r"cms-nanoaod-dy-40events\.root: no TTree 'CollectionTree'"):
        list(physlite.read_physlite(str(nanoaod_file)))
    assert detect_format(str(nanoaod_file)) == "nanoaod"
    assert detect_format(str(physlite_file)) == "physlite"
    other = tmp_path / "other.root"
    with uproot.recreate(other) as f:
        f["Things"] = {"x": np.arange(3)}
    with pytest.raises(InputFileError, match=r"other\.root: not a known input format \(file holds \['Things'\]"):
        detect_format(str(other))


#: EventInfo variables in the static store of release 21.2 (xAOD::EventAuxInfo_v1 members); the real
#: 21.2 file keeps mcChannelNumber and mcEventWeights in EventInfoAuxDyn (physlite.EVENT_INFO_STORES)
STATIC_21_2 = ("runNumber", "eventNumber", "lumiBlock", "eventTypeBitmask")


def _to_static(variables):
    """rename= for write_modified_copy: EventInfoAuxDyn.<var> -> EventInfoAux.<var> (flat branches
    named as uproot lists the sub-branches of the split static store)."""
    return {f"EventInfoAuxDyn.{v}": f"EventInfoAux.{v}" for v in variables}


@pytest.mark.parametrize("variables", [STATIC_21_2, (*STATIC_21_2, "mcChannelNumber", "mcEventWeights")],
                         ids=["release-21.2", "all-static"])
def test_physlite_static_event_info_gives_the_same_record(physlite_file, tmp_path, variables):
    """A copy (written by uproot) whose EventInfo run/event/lumiBlock/eventTypeBitmask (and, second
    case, mcChannelNumber/mcEventWeights too) are static-store branches ``EventInfoAux.<var>`` is
    detected as PHYSLITE and gives the original's record: same event ids, run/event/lumi/channel,
    weights, objects, MET and truth (only the b-tagging, whose ElementLinks uproot cannot write, is
    absent); describe() and the SampleInfo name the static layout."""
    ref = ak.concatenate(list(physlite.read_physlite(str(physlite_file))))
    path = tmp_path / "r21.root"
    write_modified_copy(physlite_file, path, "CollectionTree", _lite_branches(physlite_file), sep=".",
                        rename=_to_static(variables))
    have = set(uproot.open(path)["CollectionTree"].keys())
    assert "EventInfoAuxDyn.eventNumber" not in have and "EventInfoAux.eventNumber" in have
    assert detect_format(str(path)) == "physlite"
    got = ak.concatenate(list(physlite.read_physlite(str(path), step_size=40)))
    assert got.fields == ref.fields
    for f in ref.fields:
        want = ref[f][["pt", "eta", "phi", "mass"]] if f == "jets" else ref[f]
        assert ak.to_list(got[f]) == ak.to_list(want), f
    assert len(set(got.event_id.to_numpy().tolist())) == 100
    info = physlite.sample_info("ttbar", str(path))
    assert info.generator["event_info"] == "a static aux store (EventInfoAux., release 21.2 layout)"
    assert info.generator["simulation"] is True and info.truth
    assert physlite.describe(str(physlite_file))["event_info"].startswith("a dynamic aux store")


def test_physlite_unreadable_layouts_are_refused_naming_them(physlite_file, tmp_path):
    """Layouts the reader cannot read are refused with InputFileError naming the file and the layout
    found: a static EventInfo store without run/event numbers (reader and detect_format), no EventInfo
    store at all, and an object collection (AnalysisJets) found only in a static aux store."""
    branches = _lite_branches(physlite_file)
    event_info = [b for b in branches if b.startswith("EventInfoAuxDyn.")]
    cases = {
        "no-ids.root": dict(drop=["EventInfoAuxDyn.runNumber", "EventInfoAuxDyn.eventNumber"],
                            rename=_to_static(STATIC_21_2)),
        "no-eventinfo.root": dict(drop=event_info),
        "static-jets.root": dict(rename={b: b.replace("AnalysisJetsAuxDyn.", "AnalysisJetsAux.") for b in branches
                                         if b.startswith("AnalysisJetsAuxDyn.")}),
    }
    for name, change in cases.items():
        write_modified_copy(physlite_file, tmp_path / name, "CollectionTree", branches, sep=".", **change)
    # as in release 21.2, mcChannelNumber and mcEventWeights are still in the dynamic store
    static = r"a static aux store \(EventInfoAux\., release 21\.2 layout\)"
    with pytest.raises(InputFileError, match=rf"no-ids\.root: tree 'CollectionTree' has EventInfo in a dynamic aux "
                                             rf"store \(EventInfoAuxDyn\., release 22\+ layout\) and {static} but no "
                                             r"EventInfoAuxDyn\.runNumber, EventInfoAuxDyn\.eventNumber, "
                                             r"EventInfoAux\.runNumber, EventInfoAux\.eventNumber; the PHYSLITE "
                                             r"reader needs runNumber and eventNumber in one of: a dynamic"):
        list(physlite.read_physlite(str(tmp_path / "no-ids.root")))
    with pytest.raises(InputFileError, match=rf"no-ids\.root: not a known input format .*'CollectionTree' has none "
                                             r"of 'EventInfoAuxDyn\.eventNumber', 'EventInfoAux\.eventNumber': "
                                             rf"EventInfo in a dynamic .* and {static}"):
        detect_format(str(tmp_path / "no-ids.root"))
    with pytest.raises(InputFileError, match=r"no-eventinfo\.root: tree 'CollectionTree' has no EventInfo aux store "
                                             r"\(neither EventInfoAuxDyn\. nor EventInfoAux\.\); the PHYSLITE"):
        physlite.describe(str(tmp_path / "no-eventinfo.root"))
    with pytest.raises(InputFileError, match=r"static-jets\.root: tree 'CollectionTree': collection jets: "
                                             r"AnalysisJets is in a static aux store \(AnalysisJetsAux\.\) without "
                                             r"the dynamic branches AnalysisJetsAuxDyn\.pt, .*AnalysisJetsAuxDyn\.m;"):
        list(physlite.read_physlite(str(tmp_path / "static-jets.root")))


def test_build_detects_each_format(delphes_file, nanoaod_file, physlite_file, tmp_path, capsys):
    """`hepfm-data build --input` detects NanoAOD and PHYSLITE (Delphes: test_delphes) and records the
    format and release in the manifest provenance."""
    assert detect_format(str(delphes_file)) == "delphes"
    for proc, path, fmt in (("ttbar", nanoaod_file, "nanoaod"), ("ttW", physlite_file, "physlite")):
        assert main(["build", proc, "--input", str(path), "--out", str(tmp_path), "--quiet"]) == 0
        m = json.loads((tmp_path / proc / "manifest.json").read_text())
        assert [p["input_format"] for p in m["provenance"]] == [fmt]
        assert m["provenance"][0]["release"].startswith("ROOT 6.")


def test_physlite_electron_charge_from_the_track_link(physlite_file):
    """The electron charge rebuilt from trackParticleLinks -> GSFTrackParticles q/p (for releases without
    the charge decoration) equals the stored charge on every electron of the real file."""
    t = uproot.open(physlite_file)["CollectionTree"]
    arrays = t.arrays([physlite.ELECTRON_TRACKS, physlite.GSF_QOVERP, "AnalysisElectronsAuxDyn.charge"])
    got = physlite.electron_charge_from_tracks(arrays, str(physlite_file))
    assert ak.sum(ak.num(got)) > 100
    assert ak.to_list(got) == ak.to_list(arrays["AnalysisElectronsAuxDyn.charge"])


@pytest.mark.parametrize("fmt,fixture,module", [("nanoaod", "nanoaod_file", nanoaod),
                                                ("physlite", "physlite_file", physlite)])
def test_sources_follow_the_protocol(fmt, fixture, module, request):
    """NanoAODFiles / PhysliteFiles are EventSources opened by format name: entry-range units tile the
    file, reading every unit gives exactly the reader's events, and each block carries the file's SampleInfo."""
    from hepfm_data.inputs import EventSource, open_source

    path = str(request.getfixturevalue(fixture))
    src = open_source(fmt, "ttbar", path, entries_per_unit=30)
    assert isinstance(src, EventSource) and src.event_id_rule == module.EVENT_ID_RULE
    units = src.units()
    n = uproot.open(path)[module.TREE].num_entries
    assert units[0].spec["start"] == 0 and units[-1].spec["stop"] == n
    assert all(a.spec["stop"] == b.spec["start"] for a, b in zip(units, units[1:]))
    blocks = [(b, info) for u in units for b, info in src.read(u)]
    assert ak.to_list(ak.concatenate([b for b, _ in blocks])) == ak.to_list(ak.concatenate(list(module.read(path))))
    assert {info.input_format for _, info in blocks} == {fmt} and all(info.inputs == [path] for _, info in blocks)
