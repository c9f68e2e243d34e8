"""Hard-process Les Houches files: write Pythia's process record, read it back, select events.

The hard-process path of reweighting (issue 19) and re-simulation (issue 13): run
Pythia with ``PartonLevel:all = off``, ``HadronLevel:all = off`` (and usually
``ProcessLevel:resonanceDecays = off``), write every event's process record with
:class:`HardProcessWriter`, change or select events (:func:`read_events`,
:func:`select_events`), then shower/hadronise/emulate them with
:func:`hepfm_data.readers.generation.pythia.generate` ``(..., lhe=path)`` (``Beams:frameType = 4``).

>>> with HardProcessWriter(pythia, "hard.lhe") as out:   # doctest: +SKIP
...     while out.n_written < 1000:
...         if pythia.next():
...             out.write()
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import awkward as ak
import numpy as np

from hepfm_data.core.errors import InputFileError

_EVENT = re.compile(r"<event[ >].*?</event>\s*", re.S)


class HardProcessWriter:
    """Write Pythia's current ``process`` record as LHEF 3 events (``pythia8mc.LHEF3FromPythia8``).

    The process record and the Info object are held here for the writer's lifetime (the writer
    keeps raw pointers to both: built from temporaries it crashes). The file is complete only
    after :meth:`close` (the init block is rewritten with the final cross-section); it is written
    to ``path`` + ``.tmp`` and renamed on close.
    """

    def __init__(self, pythia, path: str | os.PathLike, digits: int = 15):
        import pythia8mc

        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self.process = pythia.process
        self.info = pythia.infoPython()
        self._writer = pythia8mc.LHEF3FromPythia8(self.process, self.info, digits)
        if not self._writer.openLHEF(str(self._tmp)):
            raise InputFileError(f"cannot open {str(self._tmp)!r} for writing LHE")
        self._writer.setInit()
        self.n_written = 0

    def write(self) -> None:
        """Append the current event (call after a successful ``pythia.next()``)."""
        self._writer.setEvent()
        self.n_written += 1

    def close(self) -> Path:
        self._writer.closeLHEF(True)
        os.replace(self._tmp, self.path)
        return self.path

    def __enter__(self) -> HardProcessWriter:
        return self

    def __exit__(self, typ, exc, tb) -> None:
        if typ is None:
            self.close()
        else:
            self._writer.closeLHEF(False)
            self._tmp.unlink(missing_ok=True)


def _split(path: Path) -> tuple[str, list[str], str]:
    """(head up to </init>, event blocks, tail) of an LHE file; InputFileError when malformed."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputFileError(f"LHE file {str(path)!r} is unreadable: {exc}") from None
    end_init = text.find("</init>")
    if "<LesHouchesEvents" not in text[:4096] or end_init < 0:
        raise InputFileError(f"LHE file {str(path)!r} has no <LesHouchesEvents> document with an <init> block")
    head_end = text.index("\n", end_init) + 1
    body = text[head_end:]
    blocks = _EVENT.findall(body)
    tail_at = body.rfind("</LesHouchesEvents>")
    if tail_at < 0:
        raise InputFileError(f"LHE file {str(path)!r} is truncated: no closing </LesHouchesEvents>")
    return text[:head_end], blocks, body[tail_at:]


def read_events(path: str | os.PathLike) -> ak.Array:
    """Events of an LHE file: var * {pid, status, px, py, pz, e, m} (GeV) plus ``weight`` (XWGTUP).

    Raises InputFileError naming the file and the event for a malformed event block.
    """
    path = Path(path)
    _, blocks, _ = _split(path)
    counts, weights, rows = [], [], []
    for i, block in enumerate(blocks):
        lines = [ln for ln in block.splitlines()[1:] if ln.strip() and not ln.lstrip().startswith("<")]
        try:
            head = lines[0].split()
            nup = int(head[0])
            weights.append(float(head[2]))
            for ln in lines[1:1 + nup]:
                f = ln.split()
                rows.append((int(f[0]), int(f[1]), *map(float, f[6:11])))
        except (IndexError, ValueError) as exc:
            raise InputFileError(f"LHE file {str(path)!r}: event {i} is malformed ({exc})") from None
        if len(lines) < 1 + nup:
            raise InputFileError(f"LHE file {str(path)!r}: event {i} lists {nup} particles, has {len(lines) - 1}")
        counts.append(nup)
    arr = np.array(rows, dtype=np.float64).reshape(-1, 7)
    parts = ak.zip({"pid": arr[:, 0].astype(np.int32), "status": arr[:, 1].astype(np.int32),
                    "px": arr[:, 2], "py": arr[:, 3], "pz": arr[:, 4], "e": arr[:, 5], "m": arr[:, 6]})
    return ak.zip({"particles": ak.unflatten(parts, np.asarray(counts, dtype=np.int64)),
                   "weight": np.asarray(weights)}, depth_limit=1)


def _set_weight(block: str, weight: float) -> str:
    lines = block.split("\n")
    f = lines[1].split()
    f[2] = f"{weight:.10e}"
    lines[1] = " " + " ".join(f)
    return "\n".join(lines)


def select_events(sources: list[str | os.PathLike], dest: str | os.PathLike, keep: np.ndarray,
                  weights: np.ndarray | None = None) -> int:
    """Write the events of ``sources`` (concatenated, in order) with ``keep`` true to ``dest``.

    Header and init block come from the first source. ``weights`` (one per kept event)
    replace XWGTUP. Written to a temporary file and renamed. Returns the number written.
    """
    keep = np.asarray(keep, dtype=bool)
    dest = Path(dest)
    head, blocks, tail = None, [], None
    for src in sources:
        h, b, t = _split(Path(src))
        head, tail = head or h, tail or t
        blocks += b
    if len(blocks) != len(keep):
        raise InputFileError(f"select_events: {len(blocks)} events in {[str(s) for s in sources]}, "
                             f"{len(keep)} keep flags")
    chosen = [b for b, k in zip(blocks, keep) if k]
    if weights is not None:
        if len(weights) != len(chosen):
            raise InputFileError(f"select_events: {len(chosen)} kept events, {len(weights)} weights")
        chosen = [_set_weight(b, w) for b, w in zip(chosen, weights)]
    tmp = dest.with_name(dest.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(head)
        f.writelines(chosen)
        f.write(tail)
    os.replace(tmp, dest)
    return len(chosen)


# ----------------------------------------------------------------------------- columnar hard processes

#: the particle columns of a hard process (``events.RECORD["hard"]``), in LHE line order
HARD_INT = ("pid", "status", "mother1", "mother2", "color1", "color2")
HARD_FLOAT = ("px", "py", "pz", "e", "m", "lifetime", "spin")
HARD_EVENT = ("process_id", "lhe_weight", "scale", "alpha_qed", "alpha_qcd")


def read_hard(path: str | os.PathLike) -> tuple[str, ak.Array, ak.Array]:
    """(init block text, ``hard`` var * {pid, status, mother1/2, color1/2, px..m GeV, lifetime, spin},
    ``hard_event`` {process_id, lhe_weight, scale, alpha_qed, alpha_qcd}) of an LHE file, one row per event.

    The columnar form of :data:`events.RECORD` ``hard`` / ``hard_event``; :func:`write_hard` is its inverse
    (other event tags, e.g. ``<rwgt>``, are not kept). InputFileError naming the file and event when malformed.
    """
    path = Path(path)
    head, blocks, _ = _split(path)
    init = head[head.index("<init>"):]
    heads, rows, counts = [], [], []
    for i, block in enumerate(blocks):
        lines = [ln for ln in block.splitlines()[1:] if ln.strip() and not ln.lstrip().startswith(("<", "#"))]
        try:
            nup = int(lines[0].split()[0])
            heads.append(lines[0])
            part = lines[1:1 + nup]
        except (IndexError, ValueError) as exc:
            raise InputFileError(f"LHE file {str(path)!r}: event {i} is malformed ({exc})") from None
        if len(part) < nup:
            raise InputFileError(f"LHE file {str(path)!r}: event {i} lists {nup} particles, has {len(part)}")
        rows += part
        counts.append(nup)
    try:
        h = np.loadtxt(heads, dtype=np.float64, ndmin=2)
        p = np.loadtxt(rows, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise InputFileError(f"LHE file {str(path)!r}: a non-numeric event or particle line ({exc})") from None
    if h.shape[1] != 6 or p.shape[1] != 13:
        raise InputFileError(f"LHE file {str(path)!r}: event lines need 6 numbers and particle lines 13, "
                             f"got {h.shape[1]} and {p.shape[1]}")
    cols = {k: p[:, j].astype(np.int32) for j, k in enumerate(HARD_INT)}
    cols.update({k: np.ascontiguousarray(p[:, 6 + j]) for j, k in enumerate(HARD_FLOAT)})
    hard = ak.unflatten(ak.zip(cols), np.asarray(counts, dtype=np.int64))
    h = np.ascontiguousarray(h.T)
    hard_event = ak.zip({"process_id": h[1].astype(np.int32), "lhe_weight": h[2], "scale": h[3],
                         "alpha_qed": h[4], "alpha_qcd": h[5]})
    return init, hard, hard_event


def write_hard(path: str | os.PathLike, init: str, hard: ak.Array, hard_event: ak.Array) -> Path:
    """Write hard processes (the columns of :func:`read_hard`) as an LHE file (temp + rename); returns the path.

    Momenta are written with 17 significant digits, so :func:`read_hard` returns the same float64s.
    """
    path = Path(path)
    counts = ak.to_numpy(ak.num(hard, axis=1))
    flat = ak.flatten(hard)
    ints = np.stack([ak.to_numpy(flat[k]).astype(np.int64) for k in HARD_INT], axis=1)
    flts = np.stack([ak.to_numpy(flat[k]).astype(np.float64) for k in HARD_FLOAT], axis=1)
    fmt = " %d %d %d %d %d %d" + " %.17g" * len(HARD_FLOAT)
    plines = [fmt % (*a, *b) for a, b in zip(ints.tolist(), flts.tolist())]
    ev = [ak.to_numpy(hard_event[k]) for k in HARD_EVENT]
    out = ['<LesHouchesEvents version="3.0">\n', init if init.endswith("\n") else init + "\n"]
    at = 0
    for i, n in enumerate(counts.tolist()):
        out.append(f"<event>\n {n} {ev[0][i]} {ev[1][i]:.17g} {ev[2][i]:.17g} {ev[3][i]:.17g} {ev[4][i]:.17g}\n")
        out.append("\n".join(plines[at:at + n]) + "\n</event>\n")
        at += n
    out.append("</LesHouchesEvents>\n")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(out))
    os.replace(tmp, path)
    return path
