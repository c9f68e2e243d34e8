"""Parton densities from the grids Pythia 8 ships, and the running α_s that goes with them.

:class:`PartonDensities` evaluates Pythia's own PDF object (``Pythia.getPDFPtr``) for the proton,
selected by ``PDF:pSet`` (Pythia's default 13 = NNPDF2.3 QCD+QED LO, α_s(m_Z) = 0.130, the set
Pythia's shower and multiple interactions use; 5 = MSTW 2008 LO, α_s(m_Z) = 0.13939, the set of the
MadGraph5_aMC@NLO LO reference numbers; 6 = MSTW 2008 NLO, α_s(m_Z) = 0.12018). α_s runs with 5
flavours from the set's α_s(m_Z) at the set's order: one loop for the LO sets, two loops for the NLO set.
"""

from __future__ import annotations

import math

import numpy as np

from hepfm_data.core.errors import GenerationError, require

#: PDF:pSet -> (name, α_s(m_Z)) of the sets the generator accepts
PDF_SETS = {"13": ("NNPDF2.3 QCD+QED LO (as 0.130), Pythia's default", 0.130, 1),
            "5": ("MSTW 2008 LO (as 0.13939)", 0.13939, 1),
            "6": ("MSTW 2008 NLO (as 0.12018)", 0.12018, 2)}
MZ = 91.188


class PartonDensities:
    """x f(x, Q²) of the proton for the partons of the LO processes (one Pythia PDF object)."""

    def __init__(self, pset: str = "13"):
        pset = str(pset)
        if pset not in PDF_SETS:
            raise GenerationError(f"PDF set {pset!r} is not supported by the LO generator; use one of "
                                  f"{sorted(PDF_SETS)} ({'; '.join(f'{k}: {v[0]}' for k, v in PDF_SETS.items())})")
        pythia8 = require("pythia8mc", "gen", "parton densities from Pythia 8's grids")
        self.pythia = pythia8.Pythia("", False)
        for s in ("Print:quiet = on", f"PDF:pSet = {pset}", "ProcessLevel:all = off"):
            self.pythia.readString(s)
        if not self.pythia.init():
            raise GenerationError(f"Pythia could not initialise PDF:pSet = {pset}")
        self._pdf = self.pythia.getPDFPtr(2212, 1, "A")
        self.pset = pset
        self.name, self.alphas_mz, self.alphas_loops = PDF_SETS[pset]

    def xf(self, pid: int, x: np.ndarray, q2: np.ndarray) -> np.ndarray:
        """x f_pid(x, Q²) [N] (pid: 1..5 quarks, -1..-5 antiquarks, 21 gluon; Q² in GeV²)."""
        fn = self._pdf.xf
        pid = int(pid)
        return np.fromiter((fn(pid, float(a), float(b)) for a, b in zip(x, q2)), dtype=float, count=len(x))

    def alpha_s(self, q2: np.ndarray) -> np.ndarray:
        """α_s(Q²) [N], 5 flavours, from the set's α_s(m_Z): one-loop closed form, or the two-loop
        renormalisation-group equation integrated in ln Q² (16 RK4 steps)."""
        b0 = (33.0 - 2.0 * 5) / (12.0 * math.pi)
        t = np.log(np.asarray(q2, dtype=float) / MZ**2)
        if self.alphas_loops == 1:
            return self.alphas_mz / (1.0 + self.alphas_mz * b0 * t)
        b1 = (153.0 - 19.0 * 5) / (24.0 * math.pi**2)

        def beta(a):
            return -b0 * a * a - b1 * a**3

        a, h = np.full_like(t, self.alphas_mz), t / 16.0
        for _ in range(16):
            k1 = beta(a)
            k2 = beta(a + 0.5 * h * k1)
            k3 = beta(a + 0.5 * h * k2)
            k4 = beta(a + h * k3)
            a = a + h * (k1 + 2 * k2 + 2 * k3 + k4) / 6.0
        return a
