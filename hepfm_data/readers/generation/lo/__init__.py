"""hepfm's leading-order matrix-element generator: tree-level amplitudes -> VEGAS -> unweighted LHE -> Pythia.

One module per job: :mod:`.model` (SM parameters and Feynman rules as data), :mod:`.colour` (exact SU(3)
colour algebra), :mod:`.amplitude` (colour-dressed Berends-Giele recursion over events and helicities),
:mod:`.processes` (the processes as data), :mod:`.pdf` (Pythia's PDF grids, α_s), :mod:`.phasespace`
(two-body chain + VEGAS), :mod:`.generator` (integration, unweighting, LHE).

:func:`generate_lo` is the catalog path (``generator: {kind: lo, process: ...}``): the process is integrated
once per worker process (cached; fixed integration seed, so every block of a sample shares σ and grids),
``n_events`` unweighted events are written as LHE (seeded by the block seed) and showered, hadronised,
decayed and emulated by :func:`..pythia.generate` (``Beams:frameType = 4``). Tops, W and H are
written undecayed: Pythia decays them with the catalog's particle-data settings (t -> W b -> b f f̄
keeps its internal angular correlations; the production spin correlations are lost: helicities are
summed).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from pathlib import Path

from hepfm_data.core.errors import GenerationError

__all__ = ["generate_lo", "integrated"]

_CACHE: dict[tuple, object] = {}


def integrated(process: str, pdf: str = "13", precision: float = 0.01):
    """The :class:`.generator.LOGenerator` of ``process`` integrated to ``precision`` (cached per worker)."""
    from hepfm_data.readers.generation.lo.generator import LOGenerator

    key = (process, str(pdf), float(precision))
    if key not in _CACHE:
        gen = LOGenerator(process, pdf=str(pdf))
        gen.integrate(precision)
        _CACHE[key] = gen
    return _CACHE[key]


def generate_lo(proc, n_events: int, seed: int, *, progress=False, first_event_id: int = 0,
                workdir: str | os.PathLike | None = None, catalog=None):
    """``n_events`` of catalog process ``proc`` (with ``proc.generator``) -> (event record, SampleInfo).

    Same arguments -> same bytes. Nothing is written outside a temporary directory; a process the generator
    does not know, or an integration that misses ``generator.precision``, raises before any event is made."""
    from hepfm_data.core.events import SampleInfo
    from hepfm_data.readers.generation import pythia as py

    spec = proc.generator
    if spec is None or spec.kind != "lo":
        raise GenerationError(f"process {proc.name!r} is not made by the LO generator")
    seed = py.check_seed(seed)
    t0 = time.perf_counter()
    gen = integrated(spec.process, spec.pdf, spec.precision)
    t_int = time.perf_counter() - t0
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hepfm-lo-", dir=workdir) as tmp:
        path = Path(tmp) / "lo.lhe"
        t1 = time.perf_counter()
        res = gen.write_lhe(path, n_events, seed, spec.max_overweight)
        t_lhe = time.perf_counter() - t1
        shower = dataclasses.replace(proc, generator=None)
        events, info = py.generate(shower, n_events, seed, lhe=path, catalog=catalog, progress=progress,
                                   first_event_id=first_event_id, workdir=tmp)
    generator = dict(info.generator)
    generator.update({
        "sigma_pb": gen.sigma_pb, "sigma_err_pb": gen.error_pb,
        "lo_generator": provenance(gen, spec, res, t_int, t_lhe),
        "shower_settings": info.generator["settings"],
    })
    sample = SampleInfo(process=proc.name, source="lo+pythia8", fidelity=proc.fidelity, seed=int(seed),
                        generator=generator, inputs=[])
    return events, sample


def provenance(gen, spec, res: dict | None = None, t_int: float = 0.0, t_lhe: float = 0.0) -> dict:
    """The LO generator's record for SampleInfo.generator["lo_generator"]."""
    from hepfm_data.readers.generation.lo import generator as g

    p = gen.params
    return {
        "name": "hepfm LO generator (colour-dressed Berends-Giele recursion, VEGAS)",
        "process": spec.process, "description": gen.proc.description, "notes": gen.proc.notes,
        "pdf": {"pythia_pset": gen.pdf.pset, "name": gen.pdf.name, "alpha_s_mz": gen.pdf.alphas_mz,
                "alpha_s_loops": gen.pdf.alphas_loops},
        "scale": "mu_R = mu_F = H_T/2 (sum of final-state transverse masses / 2)" if gen.proc.scale == "ht/2"
                 else f"mu_R = mu_F = {gen.proc.scale} GeV (fixed)",
        "parameters": {"m_t": p.mt, "m_W": p.mw, "m_Z": p.mz, "m_H": p.mh, "G_F": p.gf, "alpha": p.alpha,
                       "scheme": "G_F (m_W, m_Z, G_F inputs), 5 massless flavours, diagonal CKM, zero widths"},
        "orders": list(gen.proc.orders), "vertex_classes": list(gen.proc.classes),
        "cuts": dataclasses.asdict(gen.proc.cuts),
        "sigma_pb": gen.sigma_pb, "sigma_err_pb": gen.error_pb,
        "precision_requested": spec.precision,
        "integration": {"seed": g.INTEGRATION_SEED, "points": sum(c.n_points for c in gen.components),
                        "components": [{"masses": list(c.masses), "chain_order": list(c.order),
                                        "sigma_pb": c.sigma_pb, "error_pb": c.error_pb, "w_max": c.w_max}
                                       for c in gen.components],
                        "seconds": gen.seconds},
        "unweighting": ("exact (cap = largest integration weight; later weights above it keep w/cap)"
                        if spec.max_overweight <= 0 else
                        f"partial: cap = weight exceeded by a fraction {spec.max_overweight} of the weights; "
                        "events above it carry w/cap as event weight"),
        "max_overweight": spec.max_overweight,
        **({"points_tried": res["tried"], "n_overweight": res["overweight"],
            "efficiency": len(res["events"]) / res["tried"] if res["tried"] else math.nan} if res else {}),
        "seconds": {"integration": t_int, "lhe": t_lhe},
        "spin": "helicities summed; Pythia decays t, W, H unpolarised (t -> W b -> b f f̄ internal correlations kept)",
    }
