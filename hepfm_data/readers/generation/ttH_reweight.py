"""CP-mixed tt̄H samples: LO matrix-element reweighting of Pythia's SM tt̄H hard processes.

Chain (one call of :func:`generate_cp_mixed`, i.e. one production block):

1. Pythia generates SM tt̄H hard processes only (the catalog process's switches,
   ``PartonLevel:all = off``, ``HadronLevel:all = off``, ``ProcessLevel:resonanceDecays = off``),
   written as LHE by :class:`~hepfm_data.readers.lhe.HardProcessWriter` in chunks.
2. Each event gets w = |M_α|² / |M_SM|² (:mod:`hepfm_data.readers.generation.ttH_me`) at its
   hard-process momenta, the tops put on shell first (:func:`ttH_me.on_shell`). The ratio
   is free of PDFs, α_s and scales, so SM events x w are distributed as the CP-mixed process.
3. Unweighting: event i is kept when u_i·c < w_i, with u_i uniform (seeded) and the cap c
   (:func:`unweighting_cap`) computed from all hard events generated in the block: the largest
   weight (exact unweighting, every event weight 1), or, with ``CPMixing.max_overweight`` = f > 0
   (partial unweighting), the weight that a fraction f of the hard events exceeds; a kept event
   with w > c carries the residual weight w/c as its event weight (XWGTUP), so the weighted
   sample is exact. Chunks are added until ``n_events`` are kept; the first
   ``n_events`` kept are used. With ``CPMixing.weighted`` all events are kept and w becomes the
   event weight.
4. The selected hard processes are showered, hadronised, decayed (the catalog's particle-data
   lines, e.g. H -> γγ) and emulated by :func:`hepfm_data.readers.generation.pythia.generate` from the LHE
   file (``Beams:frameType = 4``).

Provenance (``SampleInfo.generator["cp_reweighting"]``): α, κ, κ̃, w_max, acceptance, mean
weight (= σ_α/σ_SM), the SM hard-process cross-section and the reweighted one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path

import awkward as ak
import numpy as np

from hepfm_data.core.catalog import CPMixing, Process
from hepfm_data.core.errors import GenerationError
from hepfm_data.core.events import SampleInfo
from hepfm_data.readers import lhe as lhe_io
from hepfm_data.readers.generation import ttH_me

#: the SM hard-process stage. Tops and Higgs are generated at their pole masses (no Breit-Wigner
#: sampling): the reweighting evaluates the matrix elements with on-shell tops anyway, and Pythia's
#: 2 -> 3 sampling of Breit-Wigner masses accepts ~1 trial in 400 (1.7 ms per SM event, 0.44 ms without)
HARD_ONLY = ("PartonLevel:all = off", "HadronLevel:all = off", "ProcessLevel:resonanceDecays = off",
             "PhaseSpace:useBreitWigners = off")
CHUNK_MIN = 500  # hard events per chunk, at least
MAX_CHUNKS = 50


def hard_momenta(events: ak.Array):
    """(k1, k2, p3, p4, p5, channel) [N, 4] GeV arrays of tt̄H hard processes (:func:`lhe.read_events`).

    k1/k2 are the incoming partons (k1 the quark for q q̄, see :func:`ttH_me.ttH_parts`), p3 the
    top, p4 the antitop, p5 the Higgs (PDG 25/35/36). GenerationError for any other process.
    """
    prt = events.particles
    def pick(mask, what):
        n = ak.to_numpy(ak.sum(mask, axis=1))
        if np.any(n != 1):
            bad = int(np.flatnonzero(n != 1)[0])
            raise GenerationError(f"tt̄H reweighting: event {bad} has {n[bad]} {what} (needs exactly one); "
                                  "the input is not a t t̄ φ hard process")
        sel = prt[mask]
        return np.stack([ak.to_numpy(ak.flatten(sel[c])) for c in ("e", "px", "py", "pz")], axis=1), \
            ak.to_numpy(ak.flatten(sel.pid))
    incoming = prt.status == -1
    first = ak.local_index(prt.pid) == ak.argmax(incoming, axis=1, keepdims=True)
    k1, id1 = pick(incoming & first, "first incoming parton")
    k2, id2 = pick(incoming & ~first, "second incoming parton")
    out = prt.status == 1
    p3, _ = pick(out & (prt.pid == 6), "outgoing top")
    p4, _ = pick(out & (prt.pid == -6), "outgoing antitop")
    p5, _ = pick(out & ((prt.pid == 25) | (prt.pid == 35) | (prt.pid == 36)), "outgoing Higgs")
    gg = (id1 == 21) & (id2 == 21)
    qq = (id1 != 21) & (id2 != 21) & (id1 == -id2) & (np.abs(id1) <= 5)
    if not np.all(gg | qq):
        bad = int(np.flatnonzero(~(gg | qq))[0])
        raise GenerationError(f"tt̄H reweighting: event {bad} has initial state {id1[bad]} {id2[bad]}; "
                              "only g g and q q̄ are implemented")
    swap = qq & (id1 < 0)  # k1 must be the quark
    k1s, k2s = np.where(swap[:, None], k2, k1), np.where(swap[:, None], k1, k2)
    return k1s, k2s, p3, p4, p5, qq.astype(np.int8)


def yukawa_parts(events: ak.Array, mt: float) -> ttH_me.YukawaParts:
    """Per-event :class:`ttH_me.YukawaParts` of tt̄H hard processes (tops moved on shell at ``mt``)."""
    k1, k2, p3, p4, p5, channel = hard_momenta(events)
    p3, p4, p5, m = ttH_me.on_shell(p3, p4, p5, mt)
    return ttH_me.ttH_parts(k1, k2, p3, p4, p5, channel, m)


def cp_weights(events: ak.Array, mixing: CPMixing, mt: float) -> np.ndarray:
    """w = |M_α|²/|M_SM|² [N] for hard processes ``events`` (:func:`lhe.read_events`)."""
    return yukawa_parts(events, mt).weight(math.radians(mixing.alpha_deg), mixing.kappa, mixing.kappa_tilde)


def unweighting_cap(w: np.ndarray, max_overweight: float = 0.0) -> float:
    """The unweighting cap c of weights ``w`` [N]: ``w.max()`` for ``max_overweight`` 0 (exact
    unweighting), else the (1 - max_overweight) quantile of ``w``: that fraction of the hard
    events lies above the cap and, when kept, carries a residual weight w/c > 1. A quantile, not
    a share of the cross-section: it does not grow with the sample as the largest weight does."""
    if max_overweight <= 0:
        return float(w.max())
    return float(np.quantile(w, 1.0 - max_overweight, method="inverted_cdf"))


def unweight_rng(seed: int) -> np.random.Generator:
    """The unweighting's uniform stream for a block seeded ``seed`` (independent of Pythia's)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), 0xC9]))


def generate_cp_mixed(proc: Process, n_events: int, seed: int, *, progress: bool = False,
                      first_event_id: int = 0, workdir: str | os.PathLike | None = None,
                      catalog=None) -> tuple[ak.Array, SampleInfo]:
    """``n_events`` of ``proc`` (with ``proc.cp_mixing``) by reweighting SM tt̄H; (event record, SampleInfo).

    Same arguments -> same bytes. See the module docstring for the chain.
    """
    import time

    from hepfm_data.readers.generation import pythia as py

    mixing = proc.cp_mixing
    if mixing is None:
        raise GenerationError(f"process {proc.name!r} has no cp_mixing setting")
    seed = py.check_seed(seed)
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hepfm-cp-", dir=workdir) as tmp:
        settings = py.process_settings(proc, seed, workdir=tmp) + list(HARD_ONLY)
        pythia = py.make_pythia(settings, f"process {proc.name!r} (SM hard process for reweighting)")
        mt = float(pythia.particleData.m0(6))
        rng = unweight_rng(seed)
        chunks, weights, uniforms = [], [], []
        t_gen = t_me = 0.0
        n_tried = 0
        over = 0.0 if mixing.weighted else mixing.max_overweight
        # a callable ``progress`` counts showered events only (below); a bar also shows the hard stage
        bar = py._progress(progress is True, n_events, f"{proc.name} hard process")
        try:
            for c in range(MAX_CHUNKS):
                need = n_events if not weights else _more(n_events, np.concatenate(weights), np.concatenate(uniforms),
                                                          over)
                if need <= 0:
                    break
                # the first chunk measures the acceptance (all of it for the SM-like α = 0)
                n_chunk = need if mixing.weighted or not weights else \
                    max(CHUNK_MIN, int(1.3 * need / _acceptance(np.concatenate(weights), over)))
                path = Path(tmp) / f"hard-{c:03d}.lhe"
                t0 = time.perf_counter()
                with lhe_io.HardProcessWriter(pythia, path) as out:
                    while out.n_written < n_chunk:
                        n_tried += 1
                        if pythia.next():
                            out.write()
                        elif n_tried > 10 * (sum(len(w) for w in weights) + n_chunk):
                            raise GenerationError(f"process {proc.name!r}: Pythia failed to generate hard processes")
                t1 = time.perf_counter()
                w = cp_weights(lhe_io.read_events(path), mixing, mt)
                t_me += time.perf_counter() - t1
                t_gen += t1 - t0
                if not np.any(w > 1e-12):  # cos(90°) is 6e-17, not 0
                    raise GenerationError(f"process {proc.name!r}: cp_mixing {mixing} gives a vanishing matrix "
                                          "element (kappa cos(alpha) = kappa_tilde sin(alpha) = 0)")
                if not np.all(np.isfinite(w)) or np.any(w < 0):
                    raise GenerationError(f"process {proc.name!r}: non-finite or negative CP weight in chunk {c}")
                chunks.append(path)
                weights.append(w)
                uniforms.append(rng.random(len(w)))
                if bar is not None:
                    kept = n_events if mixing.weighted else n_events - max(_more(n_events, np.concatenate(weights),
                                                                                np.concatenate(uniforms), over), 0)
                    bar.n = min(kept, n_events)
                    bar.refresh()
                if mixing.weighted:
                    break
            else:
                raise GenerationError(f"process {proc.name!r}: fewer than {n_events} events accepted after "
                                      f"{MAX_CHUNKS} chunks of hard processes")
        finally:
            if bar is not None:
                bar.close()
        hard_info = pythia.infoPython()
        sigma_sm_pb = hard_info.sigmaGen() * 1e9
        w_all, u_all = np.concatenate(weights), np.concatenate(uniforms)
        w_max = float(w_all.max())
        cap = unweighting_cap(w_all, over)
        if mixing.weighted:
            keep = np.zeros(len(w_all), bool)
            keep[:n_events] = True
            kept_w = w_all[:n_events]
        else:
            accepted = u_all * cap < w_all
            keep = accepted & (np.cumsum(accepted) <= n_events)
            kept_w = np.maximum(w_all[keep] / cap, 1.0) if over > 0 else None
        final = Path(tmp) / "selected.lhe"
        lhe_io.select_events(chunks, final, keep, kept_w)
        shower_proc = dataclasses.replace(proc, cp_mixing=None)
        events, info = py.generate(shower_proc, int(keep.sum()), seed, lhe=final, catalog=catalog,
                                   progress=progress, first_event_id=first_event_id, workdir=tmp)
    if kept_w is not None and not np.allclose(np.asarray(events.weight), kept_w[:len(events)], rtol=1e-5):
        raise GenerationError(f"process {proc.name!r}: the CP weights did not survive the LHE round trip")
    mean_w = float(w_all.mean())
    gen = dict(info.generator)
    gen.update({
        "settings": [s for s in settings if not s.startswith(("SLHA:file", "Beams:LHEF"))],
        "shower_settings": info.generator["settings"],
        "sigma_pb": sigma_sm_pb * mean_w if math.isfinite(sigma_sm_pb) else None,
        "sigma_err_pb": None,
        "n_tried": int(n_tried), "n_accepted": len(events),
        "cp_reweighting": {
            "method": "LO matrix-element reweighting of SM ttH (hepfm_data.readers.generation.ttH_me)",
            "convention": "Higgs Characterisation: kappa cos(alpha) + i kappa_tilde gamma5 sin(alpha), "
                          "g_Att = g_Htt = m_t/v",
            "alpha_deg": mixing.alpha_deg, "kappa": mixing.kappa, "kappa_tilde": mixing.kappa_tilde,
            "weighted": mixing.weighted, "m_top_gev": mt,
            "n_hard": len(w_all), "w_max": w_max, "mean_weight": mean_w,
            "max_overweight": over, "w_cap": cap,
            "n_overweight": int(np.sum(kept_w > 1.0)) if kept_w is not None and not mixing.weighted else 0,
            "n_selected": int(keep.sum()), "n_shower_failed": int(keep.sum()) - len(events),
            "acceptance": float(keep.sum() / len(w_all)) if not mixing.weighted else 1.0,
            "hard_settings": list(HARD_ONLY),
            "sigma_sm_pb": sigma_sm_pb if math.isfinite(sigma_sm_pb) else None,
            "hard_seconds": t_gen, "reweight_seconds": t_me,
        },
    })
    sample = SampleInfo(process=proc.name, source="pythia8+me-reweighting", fidelity=proc.fidelity,
                        seed=int(seed), generator=gen, inputs=[])
    return events, sample


def _acceptance(w: np.ndarray, max_overweight: float) -> float:
    """The expected fraction of hard events kept, mean(min(w, c)) / c."""
    cap = unweighting_cap(w, max_overweight)
    return max(float(np.minimum(w, cap).mean() / cap), 1e-3)


def _more(n_events: int, w: np.ndarray, u: np.ndarray, max_overweight: float) -> int:
    """How many more events must be accepted with the current cap (negative: enough)."""
    return n_events - int(np.sum(u * unweighting_cap(w, max_overweight) < w))
