"""The Kishimoto et al. downstream signals (SPEC §7.3) are what their labels say: Pythia 8's hard
process of the catalog settings (shower and hadronisation off, to keep the test short)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pythia8mc")

from hepfm_data import load_catalog  # noqa: E402
from hepfm_data.readers.pythia import make_pythia, process_settings  # noqa: E402

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


def test_charged_higgs_is_a_300_gev_resonance_decaying_to_tb():
    """Hplus_tb: one H+- per event, its mass peaked at 300 GeV (median within 1 GeV, 90% within
    +-25 GeV: Pythia's 2HDM width), always decaying to t b; two top quarks per event (the
    associated one and the one from the decay), each decaying to W + a down-type quark."""
    events = hard_events("Hplus_tb", 150, 3)
    masses = []
    for ev in events:
        higgs = [x for x in ev if abs(x[0]) == 37]
        assert len(higgs) == 1 and higgs[0][2] == [5, 6]
        masses.append(higgs[0][1])
        ids = [abs(x[0]) for x in ev]
        assert ids.count(6) == 2 and all(24 in x[2] for x in ev if abs(x[0]) == 6)
    q5, q50, q95 = np.percentile(masses, [5, 50, 95])
    assert abs(q50 - 300.0) < 1.0 and q5 > 275.0 and q95 < 325.0


def test_ttH_bb_has_a_125_gev_higgs_decaying_to_bb_and_two_tops():
    """ttH_bb: a 125 GeV Higgs decaying to b b̄ in every event, with a top pair."""
    for ev in hard_events("ttH_bb", 60, 4):
        higgs = [x for x in ev if x[0] == 25]
        assert len(higgs) == 1 and higgs[0][2] == [5] and abs(higgs[0][1] - 125.0) < 1.0
        assert [abs(x[0]) for x in ev].count(6) == 2
