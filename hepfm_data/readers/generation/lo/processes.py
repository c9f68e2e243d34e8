"""The processes of the LO generator, as data: initial-state subprocesses, coupling orders, scale, cuts.

A :class:`LOProcess` is a sum of :class:`Subprocess` es. A subprocess is one amplitude (generic external
legs a b -> c d ...) shared by several parton-luminosity channels (massless quarks with a diagonal
CKM matrix give identical amplitudes, e.g. u d̄ and c s̄): each channel names the beam-1/beam-2 partons
and the final-state ids written to the LHE event. Both beam orientations are summed (the mirrored one
evaluates the amplitude with the incoming momenta exchanged).

Scale: μ_R = μ_F = H_T/2 = Σ_final m_T/2 (the choice of Alwall et al. arXiv:1405.0301 for its LO/NLO
table), except tHq: μ = (m_t + m_H)/4, fixed (Demartin et al. arXiv:1504.00611, 5-flavour scheme).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hepfm_data.core.errors import GenerationError, UnknownNameError

U, D, S, C, B, T = 2, 1, 3, 4, 5, 6
G, A, W, H = 21, 22, 24, 25


@dataclass(frozen=True)
class Channel:
    """One parton-luminosity channel: beam partons (a, b) and the final-state PDG ids written to LHE."""

    a: int
    b: int
    final: tuple[int, ...]


@dataclass(frozen=True)
class Subprocess:
    """An amplitude ``initial`` -> ``final`` (generic ids) and the channels that share it."""

    initial: tuple[int, int]
    final: tuple[int, ...]
    channels: tuple[Channel, ...]
    orders: tuple[int, int] | None = None  # coupling orders if not the process's


@dataclass(frozen=True)
class Cuts:
    """Generation cuts (GeV, rad): photons pT > ``photon_pt``, |η| < ``photon_eta``, ΔR(γγ) > ``photon_dr``."""

    photon_pt: float = 0.0
    photon_eta: float = 0.0
    photon_dr: float = 0.0


@dataclass(frozen=True)
class Reference:
    """A published LO cross section at 13 TeV to validate against (pb) and its setup."""

    sigma_pb: float
    error_pb: float
    citation: str
    setup: str
    pdf: str  # Pythia PDF:pSet that reproduces the reference's PDF (the comparison runs with it)


@dataclass(frozen=True)
class LOProcess:
    name: str
    description: str
    classes: tuple[str, ...]
    orders: tuple[int, int]
    subprocesses: tuple[Subprocess, ...]
    scale: str = "ht/2"  # or a fixed value in GeV as text, e.g. "74.375"
    cuts: Cuts = field(default_factory=Cuts)
    reference: Reference | None = None
    notes: str = ""
    #: t-channel mapping of a chain's first final-state particle's angle when it is massless (exchanged boson, GeV)
    tchannel_mass: float | None = None
    #: phase-space channels: orders in which the two-body chain splits off the final-state particles (indices into
    #: each subprocess's final state; () = the final state's own order); several = a multichannel sampler
    channels: tuple[tuple[int, ...], ...] = ()


def _same(initial, final, pairs_finals, orders=None) -> Subprocess:
    return Subprocess(initial, final, tuple(Channel(a, b, f) for a, b, f in pairs_finals), orders)


def _qqbar(final) -> tuple[Subprocess, ...]:
    """q q̄ -> final for the five light flavours (amplitudes of u-type and d-type quarks differ by charge only
    when photons/Z couple; kept separate)."""
    return (_same((U, -U), final, [(U, -U, final), (C, -C, final)]),
            _same((D, -D), final, [(D, -D, final), (S, -S, final), (B, -B, final)]))


_TTW_P = _same((U, -D), (T, -T, W), [(U, -D, (T, -T, W)), (C, -S, (T, -T, W))])
_TTW_M = _same((D, -U), (T, -T, -W), [(D, -U, (T, -T, -W)), (S, -C, (T, -T, -W))])

_THQ = (
    _same((U, B), (D, T, H), [(U, B, (D, T, H)), (C, B, (S, T, H))]),
    _same((-D, B), (-U, T, H), [(-D, B, (-U, T, H)), (-S, B, (-C, T, H))]),
    _same((-U, -B), (-D, -T, H), [(-U, -B, (-D, -T, H)), (-C, -B, (-S, -T, H))]),
    _same((D, -B), (U, -T, H), [(D, -B, (U, -T, H)), (S, -B, (C, -T, H))]),
)

_TTT = (
    # t t t̄ + light quark (W exchange between the light line and the b line)
    _same((U, B), (D, T, T, -T), [(U, B, (D, T, T, -T)), (C, B, (S, T, T, -T))]),
    _same((-D, B), (-U, T, T, -T), [(-D, B, (-U, T, T, -T)), (-S, B, (-C, T, T, -T))]),
    _same((-U, -B), (-D, -T, -T, T), [(-U, -B, (-D, -T, -T, T)), (-C, -B, (-S, -T, -T, T))]),
    _same((D, -B), (U, -T, -T, T), [(D, -B, (U, -T, -T, T)), (S, -B, (C, -T, -T, T))]),
    # t t t̄ + W
    _same((G, B), (T, T, -T, -W), [(G, B, (T, T, -T, -W))], (3, 1)),
    _same((G, -B), (-T, -T, T, W), [(G, -B, (-T, -T, T, W))], (3, 1)),
)

PROCESSES: dict[str, LOProcess] = {p.name: p for p in (
    LOProcess(
        "ttW", "p p -> t t̄ W± at O(α_s² α) (q q̄' initiated at LO), both charges",
        ("qcd", "w"), (2, 1), (_TTW_P, _TTW_M),
        reference=Reference(0.3777, 0.0003, "Alwall et al., JHEP 07 (2014) 079, arXiv:1405.0301, Table 7 (c.1)",
                            "μ = H_T/2, m_t = 173.2 GeV, MSTW2008 PDFs; compared with MSTW2008 NLO and two-loop α_s "
                            "(the set that reproduces the LO column; MSTW2008 LO gives ~18% more)", "6")),
    LOProcess("ttWp", "p p -> t t̄ W+ at O(α_s² α)", ("qcd", "w"), (2, 1), (_TTW_P,)),
    LOProcess("ttWm", "p p -> t t̄ W- at O(α_s² α)", ("qcd", "w"), (2, 1), (_TTW_M,)),
    LOProcess(
        "tHq", "p p -> t H q + t̄ H q (t-channel W exchange, 5-flavour scheme; W-H and t-H diagrams interfere)",
        ("w", "htt", "hvv"), (0, 3), _THQ, scale="74.375", tchannel_mass=80.385,
        # three chains (light quark first with the t-channel mapping, top first, Higgs first): the multichannel
        # set reaches 1% in ~3e5 points where the light-quark chain alone stalls at ~2.5%
        channels=((0, 1, 2), (1, 0, 2), (2, 0, 1)),
        notes="5-flavour scheme; μ_R = μ_F = (m_t + m_H)/4 = 74.375 GeV as Demartin et al. (arXiv:1504.00611)"),
    LOProcess(
        "tttt", "p p -> t t̄ t t̄ at O(α_s⁴)", ("qcd",), (4, 0),
        (_same((G, G), (T, -T, T, -T), [(G, G, (T, -T, T, -T))]), *_qqbar((T, -T, T, -T))),
        reference=Reference(0.004505, 0.000005, "Alwall et al., JHEP 07 (2014) 079, arXiv:1405.0301, Table 7 (c.10)",
                            "μ = H_T/2, m_t = 173.2 GeV, MSTW2008 PDFs; compared with MSTW2008 NLO and two-loop α_s "
                            "(as for ttW)", "6")),
    LOProcess(
        "ttyy", "p p -> t t̄ γ γ at O(α_s² α²)", ("qcd", "a"), (2, 2),
        (_same((G, G), (A, A, T, -T), [(G, G, (A, A, T, -T))]), *_qqbar((A, A, T, -T))),
        cuts=Cuts(photon_pt=20.0, photon_eta=2.5, photon_dr=0.4),
        notes="photons pT > 20 GeV, |η| < 2.5, ΔR(γγ) > 0.4 at generation (no photon isolation against partons: "
              "at LO the only partons are the tops)"),
    LOProcess(
        "ttt", "p p -> t t t̄ + j and t t t̄ + W (and charge conjugates) at LO, 5-flavour scheme",
        ("qcd", "w"), (2, 2), _TTT,
        notes="t t t̄ j at O(g_s² g²) (W exchange between the light-quark and b lines) plus t t t̄ W at "
              "O(g_s³ g) (g b initiated); final states with 4 particles each"),
)}


def lo_process(name: str) -> LOProcess:
    """The :class:`LOProcess` called ``name``; UnknownNameError naming the known ones."""
    if name not in PROCESSES:
        raise UnknownNameError(f"unknown LO process {name!r}; the LO generator knows {sorted(PROCESSES)}")
    return PROCESSES[name]


def check_scale(proc: LOProcess) -> None:
    if proc.scale != "ht/2":
        try:
            if float(proc.scale) <= 0:
                raise ValueError
        except ValueError:
            raise GenerationError(f"LO process {proc.name!r}: scale must be 'ht/2' or a positive number of GeV, "
                                  f"got {proc.scale!r}") from None
