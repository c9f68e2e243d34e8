"""The Kishimoto et al. downstream signals (SPEC §7.3) are what their labels say: Pythia 8's hard
process of the catalog settings (shower and hadronisation off, to keep the test short); and the
record-built slots of a generated tt̄ sample carry the top and W mass peaks."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pythia8mc")

from hepfm_data import load_catalog  # noqa: E402
from hepfm_data.readers.generation.pythia import make_pythia, process_settings  # noqa: E402

HARD_ONLY = ["PartonLevel:all = off", "HadronLevel:all = off"]


def hard_events(name: str, n: int, seed: int):
    """Hard-process records [(id, mass, |daughter ids|)] (entries after the beams) of ``n`` events of ``name``."""
    p = make_pythia(process_settings(load_catalog().process(name), seed) + HARD_ONLY, name)
    out = []
    for _ in range(n):
        assert p.next()
        pr = p.process
        out.append([(pr[i].id(), pr[i].m(), sorted({abs(pr[pr[i].daughter1()].id()), abs(pr[pr[i].daughter2()].id())}))
                    for i in range(3, pr.size())])  # after the system and the beams
    return out


def test_ttH_bb_has_a_125_gev_higgs_decaying_to_bb_and_two_tops():
    """ttH_bb: a 125 GeV Higgs decaying to b b̄ in every event, with a top pair."""
    for ev in hard_events("ttH_bb", 60, 4):
        higgs = [x for x in ev if x[0] == 25]
        assert len(higgs) == 1 and higgs[0][2] == [5] and abs(higgs[0][1] - 125.0) < 1.0
        assert [abs(x[0]) for x in ev].count(6) == 2


def test_top_and_w_mass_peaks_from_record_slots_of_generated_ttbar():
    """Slots built from a generated tt̄ record (Pythia 8 + the ATLAS-like emulation, 150 events; jet
    masses from the record, b-tag emulated from the truth flavour) give physical four-vectors: the
    three-jet combination of highest pT (M3) peaks at the top mass and the two leading light jets of
    events with a b-jet at the W mass (each 45 / 30 GeV window around the pole holds more events than
    the windows beside it). Four-vectors are read back from the SlotBatch features alone."""
    import awkward as ak
    vector = pytest.importorskip("vector")
    vector.register_awkward()

    from hepfm_data.batches.slots import COS_PHI, LOG_M, S_ETA, SIN_PHI, SlotLayout, slot_pt
    from hepfm_data.core.arrays import counts_to_offsets
    from hepfm_data.readers.generation import generate
    from hepfm_data.representations.slots import SlotSelection, slot_batch, slot_objects
    from hepfm_data.store.record import schema_of, to_columns

    n = 150
    ev, _ = generate("ttbar", n, 5, progress=False)
    obj = slot_objects(to_columns(ev, schema_of(ev)), SlotSelection.from_catalog(load_catalog()))
    lay = SlotLayout()
    b = slot_batch(obj.nodes, obj.mass, obj.slot, counts_to_offsets(obj.counts), lay, np.zeros(n), np.ones(n),
                   np.arange(n))
    x, mask = b.x.numpy().astype(np.float64), b.mask.numpy()
    p4 = ak.from_regular(ak.zip({"pt": slot_pt(x), "eta": x[..., S_ETA], "phi": np.arctan2(x[..., SIN_PHI], x[..., COS_PHI]),
                                 "mass": np.expm1(x[..., LOG_M])}, with_name="Momentum4D"))
    m = ak.from_regular(ak.Array(mask))
    jets = p4[:, 8:20][m[:, 8:20]]
    assert float(ak.mean(jets.mass)) > 3.0  # massive jets (the node-based slots had 0)
    tri = ak.combinations(jets, 3)
    t = tri["0"] + tri["1"] + tri["2"]
    m3 = ak.to_numpy(ak.flatten(t.mass[ak.argmax(t.pt, axis=1, keepdims=True)], axis=None))
    light = p4[:, 12:20][m[:, 12:20]]
    has = (ak.num(light) >= 2) & mask[:, 8]
    assert mask[:, 8].mean() > 0.5  # a b-tagged jet in most tt̄ events
    mjj = ak.to_numpy((light[has][:, 0] + light[has][:, 1]).mass)

    def peaks(values, lo, hi):
        w = hi - lo
        count = lambda a, b: int(((values >= a) & (values < b)).sum())  # noqa: E731
        return count(lo, hi) > max(count(lo - w, lo), count(hi, hi + w))

    print(f"\nslots of {n} tt̄: mean jet mass {float(ak.mean(jets.mass)):.2f} GeV; M3 median {np.median(m3):.1f} GeV, "
          f"{int(((m3 >= 150) & (m3 < 195)).sum())} of {len(m3)} in [150, 195) vs {int(((m3 >= 105) & (m3 < 150)).sum())} "
          f"below / {int(((m3 >= 195) & (m3 < 240)).sum())} above; m(jj) median {np.median(mjj):.1f} GeV, "
          f"{int(((mjj >= 65) & (mjj < 95)).sum())} of {len(mjj)} in [65, 95) vs {int(((mjj >= 35) & (mjj < 65)).sum())} "
          f"below / {int(((mjj >= 95) & (mjj < 125)).sum())} above")
    assert len(m3) > 100 and peaks(m3, 150.0, 195.0) and 150.0 < np.median(m3) < 210.0
    assert len(mjj) > 60 and peaks(mjj, 65.0, 95.0)


def test_charged_higgs_in_the_truth_record_decays_to_t_and_b():
    """hepfm's truth record (``truth_record``, as ``generate`` writes it; now keeping H+- = PDG 37) of
    300 Hplus_tb events (ISR, FSR, MPI and hadronisation off: cheap, and the decay products keep the
    resonance's momentum): one H+- per event with the 300 GeV mass (median within 1 GeV, 90% within
    +-15 GeV); two top quarks; in > 90% of events a top of the H+- charge sign and an anti-b of the
    opposite one whose invariant mass equals m(H+-) to 0.1% (the b outside the record's pT > 5 GeV,
    |eta| < 2.5 quark cut otherwise)."""
    import awkward as ak
    vector = pytest.importorskip("vector")
    vector.register_awkward()

    from hepfm_data.readers.generation.pythia import truth_record

    off = ["PartonLevel:MPI = off", "PartonLevel:ISR = off", "PartonLevel:FSR = off", "HadronLevel:all = off"]
    p = make_pythia(process_settings(load_catalog().process("Hplus_tb"), 3) + off, "Hplus_tb")
    tr = truth_record(p.nextBatch(300, 10.0).prt)
    pid = tr.pid
    v = ak.zip({"pt": tr.pt, "eta": tr.eta, "phi": tr.phi, "mass": tr.mass}, with_name="Momentum4D")
    h = v[abs(pid) == 37]
    assert len(tr) == 300 and ak.all(ak.num(h) == 1) and ak.all(ak.num(v[abs(pid) == 6]) == 2)
    mh = ak.to_numpy(ak.flatten(h.mass))
    q5, q50, q95 = np.percentile(mh, [5, 50, 95])
    assert abs(q50 - 300.0) < 1.0 and q5 > 285.0 and q95 < 315.0
    sign = ak.flatten(np.sign(pid[abs(pid) == 37]))
    pairs = ak.cartesian([v[pid == 6 * sign], v[pid == -5 * sign]])  # H+ -> t b-bar, H- -> t-bar b
    rel = ak.min(abs((pairs["0"] + pairs["1"]).mass - mh) / mh, axis=1)
    frac = float(np.mean(ak.to_numpy(ak.fill_none(rel, 1.0)) < 1e-3))
    print(f"\nHplus_tb truth, {len(tr)} events: m(H±) 5/50/95 % = {q5:.1f} / {q50:.1f} / {q95:.1f} GeV; "
          f"t b within 0.1 % of m(H±) in {frac:.1%} of events")
    assert frac > 0.9
