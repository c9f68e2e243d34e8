"""SLHA spectrum files for the SUSY samples (SUSY Les Houches Accord, hep-ph/0311123).

The catalog names a spectrum either as ``builtin:<name>`` (written by hepfm, see
:data:`BUILTIN`) or as a path to a user file. :func:`resolve_slha` returns a
file Pythia can read (``SLHA:file``) or raises
:class:`~hepfm_data.core.errors.InputFileError` before any event is generated.

``builtin:stop_582_400`` (the paper's stop sample, SPEC §1): t̃2 (PDG 2000006,
582 GeV) -> t̃1 (1000006, 400 GeV) + h (25, 125 GeV) with BR 100%; t̃1 -> t +
χ̃⁰1 (1000022, 100 GeV, bino-like LSP, invisible) with BR 100%. Every other
sparticle and the heavy Higgs bosons are decoupled at 5 TeV. Masses in GeV.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hepfm_data.core.errors import InputFileError

#: decoupled sparticles (PDG id) and the heavy Higgs bosons, all at this mass (GeV)
HEAVY_GEV = 5000.0
_HEAVY_IDS = (
    1000001, 2000001, 1000002, 2000002, 1000003, 2000003, 1000004, 2000004,
    1000005, 2000005, 1000011, 2000011, 1000012, 1000013, 2000013, 1000014,
    1000015, 2000015, 1000016, 1000021, 1000023, 1000024, 1000025, 1000035, 1000037,
    35, 36, 37,
)


def stop_spectrum(m_stop2: float = 582.0, m_stop1: float = 400.0, m_lsp: float = 100.0,
                  m_h: float = 125.0) -> str:
    """SLHA text for t̃2 -> t̃1 h (100%), t̃1 -> t χ̃⁰1 (100%); masses in GeV."""
    if not m_stop2 > m_stop1 + m_h:
        raise InputFileError(f"SLHA stop spectrum: t̃2 ({m_stop2} GeV) must be heavier than t̃1 + h")
    if not m_stop1 > 173.0 + m_lsp:
        raise InputFileError(f"SLHA stop spectrum: t̃1 ({m_stop1} GeV) must be heavier than t + χ̃⁰1")
    masses = {6: 173.0, 25: m_h, 1000006: m_stop1, 2000006: m_stop2, 1000022: m_lsp}
    masses.update({i: HEAVY_GEV for i in _HEAVY_IDS})
    lines = [
        "# SLHA spectrum written by hepfm (builtin:stop_582_400): simplified MSSM",
        "BLOCK MODSEL", "    1    0   # general MSSM",
        "BLOCK SMINPUTS",
        "    1    1.27934000e+02   # alpha_em^-1(MZ)", "    2    1.16637000e-05   # G_F",
        "    3    1.18000000e-01   # alpha_s(MZ)", "    4    9.11876000e+01   # MZ",
        "    5    4.18000000e+00   # mb(mb)", "    6    1.73000000e+02   # mt pole",
        "    7    1.77700000e+00   # mtau",
        "BLOCK MINPAR", "    3    1.00000000e+01   # tan(beta)",
        "BLOCK MASS",
        *[f"  {pid:>8d}   {m:.8e}" for pid, m in sorted(masses.items())],
        "BLOCK ALPHA", "   -1.00000000e-01   # mixing angle of the neutral CP-even Higgs",
        "BLOCK HMIX Q= 1.00000000e+03",
        "    1    5.00000000e+03   # mu", "    2    1.00000000e+01   # tan(beta)",
        "    3    2.46000000e+02   # v", f"    4    {HEAVY_GEV ** 2:.8e}   # mA^2",
        "BLOCK NMIX   # neutralino mixing: chi_1 pure bino",
        *[f"  {i}  {j}   {1.0 if i == j else 0.0:.8e}" for i in range(1, 5) for j in range(1, 5)],
        "BLOCK UMIX", *[f"  {i}  {j}   {1.0 if i == j else 0.0:.8e}" for i in (1, 2) for j in (1, 2)],
        "BLOCK VMIX", *[f"  {i}  {j}   {1.0 if i == j else 0.0:.8e}" for i in (1, 2) for j in (1, 2)],
        "BLOCK STOPMIX", *[f"  {i}  {j}   {1.0 if i == j else 0.0:.8e}" for i in (1, 2) for j in (1, 2)],
        "BLOCK SBOTMIX", *[f"  {i}  {j}   {1.0 if i == j else 0.0:.8e}" for i in (1, 2) for j in (1, 2)],
        "BLOCK STAUMIX", *[f"  {i}  {j}   {1.0 if i == j else 0.0:.8e}" for i in (1, 2) for j in (1, 2)],
        "DECAY   2000006   1.00000000e+00   # stop2",
        "    1.00000000e+00   2   1000006   25   # stop2 -> stop1 h",
        "DECAY   1000006   1.00000000e+00   # stop1",
        "    1.00000000e+00   2   6   1000022   # stop1 -> t chi_10",
        "DECAY   1000022   0.00000000e+00   # chi_10 stable",
    ]
    return "\n".join(lines) + "\n"


#: builtin spectra: name -> function returning SLHA text
BUILTIN = {"stop_582_400": stop_spectrum}


def resolve_slha(spec: str, workdir: str | Path | None = None) -> Path:
    """A readable SLHA file for ``spec`` (``builtin:NAME`` or a path).

    Builtin spectra are written atomically into ``workdir`` (default: a fresh
    temporary directory). A missing or empty user file raises InputFileError.
    """
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN:
            raise InputFileError(f"unknown builtin SLHA spectrum {spec!r}; known: "
                                 f"{', '.join('builtin:' + k for k in BUILTIN)}")
        directory = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="hepfm-slha-"))
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.slha"
        text = BUILTIN[name]()
        if not path.exists() or path.read_text() != text:
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        return path
    path = Path(spec).expanduser()
    if not path.is_file():
        raise InputFileError(f"SLHA file {str(path)!r} does not exist (needed for SLHA:file)")
    if path.stat().st_size == 0 or "BLOCK" not in path.read_text(errors="replace").upper():
        raise InputFileError(f"SLHA file {str(path)!r} is empty or has no SLHA BLOCK")
    return path
