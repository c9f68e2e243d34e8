"""The Standard Model at tree level: parameters (G_F scheme) and the Feynman rules as data.

Parameters: 5 massless quark flavours (u d s c b) plus the top, m_t = 172.5, m_W = 80.385,
m_Z = 91.188, m_H = 125 GeV (Pythia 8.3's defaults, so that LHE events and Pythia's decays agree),
G_F = 1.1663787e-5 GeV^-2; derived: sin²θ_W = 1 - m_W²/m_Z², α = √2 G_F m_W² sin²θ_W/π
(≈ 1/132.2), v = (√2 G_F)^-1/2 = 246.2 GeV, g = 2 m_W/v, e = g sinθ_W; CKM diagonal; all widths zero
(the generated processes have no s-channel resonance in a propagator).

Vertices (all fields incoming; a fermion field f > 0 is a fermion flowing in, ψ; f < 0 an outgoing
fermion, ψ̄; W+ = 24, W- = -24), factors as in Peskin-Schroeder with ttH_me.py's conventions:

* FFV ``ψ̄_i γ^μ (cL P_L + cR P_R) ψ_j V_μ``, factor ``coupling · γ^μ (cL P_L + cR P_R)``:
  gluon i g_s T^a (class ``qcd``), photon -i e Q (``a``), Z -i g/cW (T3 P_L - Q sW²) (``z``),
  W -i g/√2 P_L (``w``).
* FFS ``ψ̄_t ψ_t H``: -i m_t/v (``htt``); VVS ``H W+ W-`` i g m_W g^μν, ``H Z Z`` i g m_Z/cW g^μν (``hvv``).
* ggg: g_s f^abc [g^μν (k1-k2)^ρ + g^νρ (k2-k3)^μ + g^ρμ (k3-k1)^ν] (momenta incoming; ``qcd``);
  gggg: -i g_s² [f^abe f^cde (g^μρ g^νσ - g^μσ g^νρ) + f^ace f^bde (g^μν g^ρσ - g^μσ g^νρ)
  + f^ade f^bce (g^μν g^ρσ - g^μρ g^νσ)] (``qcd``).

Propagators: fermion i(q̸ + m)/(q² - m²); gluon and photon -i(g^μν - (1 - ξ) q^μ q^ν/q²)/q² (ξ = 1,
Feynman gauge; other ξ only to test gauge independence); W, Z unitary gauge
-i(g^μν - q^μ q^ν/M²)/(q² - M²) (or, for checks, Feynman gauge -i g^μν/(q² - M²) with the charged
Goldstone G± of mass m_W, class ``goldstone``); Higgs and G± i/(q² - M²).

Every vertex carries its coupling orders (powers of g_s, of the electroweak couplings): processes
select the exact order of their LO amplitude (e.g. t t̄ W: g_s² g, QCD-max as MadGraph's default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hepfm_data.core.errors import GenerationError

#: PDG ids the model knows: quarks, gluon, photon, Z, W+, Higgs (antiparticles: negative quark/W ids)
QUARKS = (1, 2, 3, 4, 5, 6)
GLUON, PHOTON, Z, W, HIGGS = 21, 22, 23, 24, 25
#: the charged Goldstone boson G+ (internal only: Feynman-gauge checks of the unitary-gauge amplitudes)
GOLDSTONE = 251
NAMES = {1: "d", 2: "u", 3: "s", 4: "c", 5: "b", 6: "t", 21: "g", 22: "a", 23: "z", 24: "w+", 25: "h", 251: "g+"}
CHARGE = {1: -1 / 3, 2: 2 / 3, 3: -1 / 3, 4: 2 / 3, 5: -1 / 3, 6: 2 / 3}
T3 = {1: -0.5, 2: 0.5, 3: -0.5, 4: 0.5, 5: -0.5, 6: 0.5}
#: vertex classes a process may enable (``goldstone``: the G± couplings a Feynman-gauge W needs, for checks)
CLASSES = ("qcd", "a", "z", "w", "htt", "hvv", "goldstone")


@dataclass(frozen=True)
class Parameters:
    """SM inputs (GeV); derived couplings as properties. ``kappa_t`` scales the top Yukawa (1 = SM)."""

    mt: float = 172.5
    mw: float = 80.385
    mz: float = 91.188
    mh: float = 125.0
    gf: float = 1.1663787e-5
    kappa_t: float = 1.0

    @property
    def sw2(self) -> float:
        return 1.0 - self.mw**2 / self.mz**2

    @property
    def alpha(self) -> float:
        return math.sqrt(2.0) * self.gf * self.mw**2 * self.sw2 / math.pi

    @property
    def vev(self) -> float:
        return (math.sqrt(2.0) * self.gf) ** -0.5

    @property
    def g(self) -> float:
        return 2.0 * self.mw / self.vev

    @property
    def e(self) -> float:
        return math.sqrt(4.0 * math.pi * self.alpha)

    def mass(self, pdg: int) -> float:
        """Pole mass of ``pdg`` (GeV; 0 for the light quarks, gluon and photon)."""
        return {6: self.mt, 23: self.mz, 24: self.mw, 25: self.mh, 251: self.mw}.get(abs(pdg), 0.0)


def anti(f: int) -> int:
    """The antiparticle's id (gluon, photon, Z, H are their own)."""
    return -f if abs(f) in QUARKS or abs(f) in (W, GOLDSTONE) else f


def is_fermion(f: int) -> bool:
    return abs(f) in QUARKS


def is_vector(f: int) -> bool:
    return abs(f) in (GLUON, PHOTON, Z, W)


def colour_dim(f: int) -> int:
    """3 for quarks, 8 for the gluon, 1 otherwise."""
    return 3 if is_fermion(f) else 8 if f == GLUON else 1


def check_pdg(pdg: int, what: str) -> int:
    """``pdg`` if the model knows it, else GenerationError naming ``what``."""
    if not isinstance(pdg, int) or (abs(pdg) not in NAMES) or (pdg < 0 and anti(pdg) == pdg):
        raise GenerationError(f"{what}: particle {pdg!r} is not in the LO model (known PDG ids: quarks ±1..±6, "
                              "21 g, 22 photon, 23 Z, ±24 W, 25 H)")
    return pdg


@dataclass(frozen=True)
class Vertex:
    """One interaction, fields incoming. ``kind``: ffv, ffs, vvv, vvs, vvvv.

    ffv/ffs: ``fields`` = (-i, +j, boson) for ψ̄_i Γ ψ_j; ``chiral`` = (cL, cR) (ffv) or (a, b) of a + b γ5
    (ffs); ``colour``: "T" (T^a_ij), "d" (δ_ij), "f" (f^abc), "ff" (4-gluon), "" (none).
    ``orders`` = (g_s power, electroweak power). vss: ``fields`` = (V, S1, S2), factor coupling · (k_S2 - k_S1)^μ
    with incoming momenta (vertex H W G: S2 = H)."""

    kind: str
    fields: tuple[int, ...]
    coupling: complex
    chiral: tuple[complex, complex] = (1.0, 1.0)
    colour: str = ""
    orders: tuple[int, int] = (0, 1)
    name: str = field(default="", compare=False)


def vertices(classes: tuple[str, ...], params: Parameters, gs: float = 1.0) -> list[Vertex]:
    """The vertices of the enabled ``classes`` (:data:`CLASSES`); QCD couplings use ``gs`` (1: |M|² in units
    of g_s^(2 n_qcd), the running α_s is applied per event)."""
    bad = [c for c in classes if c not in CLASSES]
    if bad:
        raise GenerationError(f"unknown coupling class(es) {bad}: the LO model has {list(CLASSES)}")
    p, out = params, []
    cw = math.sqrt(1.0 - p.sw2)
    if "qcd" in classes:
        out += [Vertex("ffv", (-q, q, GLUON), 1j * gs, colour="T", orders=(1, 0), name=f"{NAMES[q]}{NAMES[q]}g")
                for q in QUARKS]
        out.append(Vertex("vvv", (GLUON, GLUON, GLUON), gs, colour="f", orders=(1, 0), name="ggg"))
        out.append(Vertex("vvvv", (GLUON,) * 4, -1j * gs * gs, colour="ff", orders=(2, 0), name="gggg"))
    if "a" in classes:
        out += [Vertex("ffv", (-q, q, PHOTON), -1j * p.e * CHARGE[q], colour="d", name=f"{NAMES[q]}{NAMES[q]}a")
                for q in QUARKS]
    if "z" in classes:
        out += [Vertex("ffv", (-q, q, Z), -1j * p.g / cw, (T3[q] - CHARGE[q] * p.sw2, -CHARGE[q] * p.sw2), "d",
                       name=f"{NAMES[q]}{NAMES[q]}z") for q in QUARKS]
    if "w" in classes:
        for up, down in ((2, 1), (4, 3), (6, 5)):
            c = -1j * p.g / math.sqrt(2.0)
            out.append(Vertex("ffv", (-up, down, W), c, (1.0, 0.0), "d", name=f"{NAMES[up]}{NAMES[down]}w+"))
            out.append(Vertex("ffv", (-down, up, -W), c, (1.0, 0.0), "d", name=f"{NAMES[down]}{NAMES[up]}w-"))
    if "htt" in classes:
        out.append(Vertex("ffs", (-6, 6, HIGGS), -1j * p.kappa_t * p.mt / p.vev, (1.0, 0.0), "d", name="tth"))
    if "hvv" in classes:
        out.append(Vertex("vvs", (W, -W, HIGGS), 1j * p.g * p.mw, name="wwh"))
        out.append(Vertex("vvs", (Z, Z, HIGGS), 1j * p.g * p.mz / cw, name="zzh"))
    if "goldstone" in classes:
        # Feynman-gauge companions of the unitary-gauge W (checks only): G+ t̄ b i √2 m_t/v P_L (massless b) and its
        # conjugate with P_R; H W+ G- -i g/2 (k_H - k_G)^μ and H W- G+ +i g/2 (k_H - k_G)^μ, the sign convention
        # that matches this model's Yukawa and HWW signs (tests: Feynman gauge = unitary gauge for tHq)
        c = 1j * math.sqrt(2.0) * p.mt / p.vev
        out.append(Vertex("ffs", (-6, 5, GOLDSTONE), c, (0.5, -0.5), "d", name="tbg+"))
        out.append(Vertex("ffs", (-5, 6, -GOLDSTONE), c, (0.5, 0.5), "d", name="btg-"))
        out.append(Vertex("vss", (W, -GOLDSTONE, HIGGS), -0.5j * p.g, name="w+g-h"))
        out.append(Vertex("vss", (-W, GOLDSTONE, HIGGS), 0.5j * p.g, name="w-g+h"))
    return out
