"""Event generation with Pythia 8 (``pythia8mc``) + the ATLAS-like emulation.

:func:`generate` runs Pythia for one catalog process with its catalog settings
at √s = 13 TeV, converts batches of events with the awkward interface
(``Pythia.nextBatch``, no per-particle Python), extracts the truth record and
runs :mod:`hepfm_data.readers.generation.detector`. The result is the event record of
:mod:`hepfm_data.core.events` plus a :class:`~hepfm_data.core.events.SampleInfo`.

Every input problem is reported before the first event: an unknown process,
a setting Pythia 8 rejects, an external-only process without LHE input, a
missing LHE or SLHA file -> :class:`~hepfm_data.core.errors.GenerationError` /
:class:`~hepfm_data.core.errors.InputFileError`.

Truth record (SPEC §4): last copies (no daughter with the same PDG id) of
H (25, 35, 36), H± (37), t, W, Z; plus last copies of b and c quarks (before
hadronisation, from any source: hard process, decays, shower) with pT > 5 GeV
and |η| < 2.5 — the partons Delphes' JetFlavorAssociation uses (card:
PartonEtaMax 2.5) with a higher pT floor to keep the record compact.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import awkward as ak
import numpy as np

from hepfm_data.core.catalog import Catalog, Process, load_catalog
from hepfm_data.core.errors import GenerationError, InputFileError, require
from hepfm_data.core.events import SampleInfo, concatenate, validate_events, wrap_phi
from hepfm_data.readers.generation.detector import emulate
from hepfm_data.readers.slha import resolve_slha

SQRT_S_GEV = 13000.0
SEED_MAX = 900_000_000  # Pythia's Random:seed range is 1..900_000_000
#: settings applied to every run before the process settings
BASE_SETTINGS = (
    f"Beams:eCM = {SQRT_S_GEV}",
    "Random:setSeed = on",
    "Print:quiet = on",
    "Init:showChangedSettings = off",
    "Init:showChangedParticleData = off",
    "Init:showProcesses = off",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
)
TRUTH_BOSON_TOP = (6, 23, 24, 25, 35, 36, 37)
TRUTH_QUARKS = (4, 5)
QUARK_PT_MIN = 5.0  # GeV
QUARK_ETA_MAX = 2.5
BATCH = 200  # events per detector-emulation batch: bounds memory (a tt̄ batch is ~50 MB)
#: events per ``nextBatch`` call inside a batch: the progress step (~1 s of tt̄H); the events do not depend on it
PROGRESS_STEP = 50


def pythia_version() -> str:
    """Version of the installed pythia8mc wheel."""
    from importlib.metadata import version

    return version("pythia8mc")


def _pythia8():
    return require("pythia8mc", "gen", "event generation with Pythia 8")


def check_seed(seed: int) -> int:
    """Return ``seed`` if it is a valid Pythia seed (1..900_000_000), else raise GenerationError."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 1 <= int(seed) <= SEED_MAX:
        raise GenerationError(f"seed must be an integer in 1..{SEED_MAX} (Pythia's Random:seed), got {seed!r}")
    return int(seed)


def check_count(name: str, value: int) -> int:
    """Return ``value`` if it is a positive integer, else raise GenerationError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise GenerationError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_lhe(lhe: str | os.PathLike) -> Path:
    """The LHE file as a Path; InputFileError when it is missing or not LHE."""
    path = Path(lhe).expanduser()
    if not path.is_file():
        raise InputFileError(f"LHE file {str(path)!r} does not exist (needed for Beams:LHEF)")
    opener = open
    if path.suffix == ".gz":
        import gzip

        opener = gzip.open
    with opener(path, "rt", errors="replace") as f:
        head = f.read(4096)
    if "<LesHouchesEvents" not in head:
        raise InputFileError(f"LHE file {str(path)!r} does not start a <LesHouchesEvents> document")
    return path


def resolve_process(process: str | Process, catalog: Catalog | None = None) -> Process:
    """The catalog entry for ``process`` (UnknownNameError for an unknown name)."""
    if isinstance(process, Process):
        return process
    return (catalog or load_catalog()).process(process)


def process_settings(proc: Process, seed: int, *, lhe: str | os.PathLike | None = None,
                     workdir: str | os.PathLike | None = None) -> list[str]:
    """The full list of Pythia settings for ``proc`` (base + catalog + seed + inputs).

    With ``lhe`` the hard process comes from the file (``Beams:frameType = 4``):
    catalog process switches are dropped, particle-data lines (``25:onMode``...)
    and the SLHA spectrum are kept. Raises before anything runs when an input is missing.
    """
    seed = check_seed(seed)
    settings = [*BASE_SETTINGS, f"Random:seed = {seed}"]
    if lhe is not None:
        path = check_lhe(lhe)
        settings += ["Beams:frameType = 4", f"Beams:LHEF = {path}"]
        settings += particle_data_settings(proc)
    elif proc.generator is not None:
        raise GenerationError(
            f"process {proc.name!r} is made by hepfm's LO generator ({proc.generator.kind}: "
            f"{proc.generator.process}): generate it with hepfm_data.readers.generation.generate, which writes "
            "its hard processes as LHE and showers them here, or pass lhe=")
    elif proc.pythia is None:
        raise GenerationError(
            f"process {proc.name!r} is {proc.fidelity}: Pythia 8 has no hard process for it. Supply "
            f"matrix-element events as LHE (hepfm-data generate {proc.name} --lhe events.lhe, i.e. "
            f"Beams:frameType = 4, Beams:LHEF = events.lhe) or Delphes ROOT files "
            f"(hepfm-data build {proc.name} --input FILES)")
    else:
        settings += list(proc.pythia)
    if proc.slha:  # sparticle masses and decays, also for LHE input
        path = resolve_slha(proc.slha, workdir)
        settings += [f"SLHA:file = {path}", "SLHA:verbose = 0"]
    return settings


def particle_data_settings(proc: Process) -> list[str]:
    """The catalog settings of ``proc`` that address a particle (``"25:onMode = off"``: decays, masses), kept when
    the hard process comes from elsewhere (LHE input, the LO generator)."""
    return [s for s in proc.pythia or () if s.split(":", 1)[0].strip().isdigit()]


def check_settings(proc: Process, seed: int, *, lhe: str | os.PathLike | None = None,
                   workdir: str | os.PathLike | None = None) -> list[str]:
    """The Pythia settings to initialise once before a production starts (every input problem raised then):
    :func:`process_settings`, except for a process made by the LO generator without ``lhe``: its LO process name
    is checked (UnknownNameError naming it) and its particle-data settings with the hard process off."""
    if proc.generator is not None and lhe is None:
        from hepfm_data.readers.generation.lo.processes import lo_process

        lo_process(proc.generator.process)
        seed = check_seed(seed)
        return [*BASE_SETTINGS, f"Random:seed = {seed}", "ProcessLevel:all = off",
                *particle_data_settings(proc)]
    return process_settings(proc, seed, lhe=lhe, workdir=workdir)


def make_pythia(settings: list[str], what: str = "generation"):
    """An initialised ``pythia8mc.Pythia``; GenerationError naming a rejected setting."""
    pythia8 = _pythia8()
    pythia = pythia8.Pythia("", False)
    for s in settings:
        if not pythia.readString(s):
            raise GenerationError(f"{what}: Pythia {pythia_version()} rejected the setting {s!r} "
                                  "(unknown name or invalid value)")
    if not pythia.init():
        raise GenerationError(f"{what}: Pythia {pythia_version()} failed to initialise with settings "
                              f"{settings} (see Pythia's messages above)")
    return pythia


# ------------------------------------------------------------------ record conversion


def _kin(px, py, pz, e):
    """pt, eta, phi, mass (float arrays, GeV/rad) of 4-vectors, via ``vector``."""
    import vector

    v = vector.array({"px": px, "py": py, "pz": pz, "E": e})
    pt = v.pt
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, v.eta, 0.0)
    mass = np.sqrt(np.clip(e**2 - px**2 - py**2 - pz**2, 0.0, None))
    return pt, eta, wrap_phi(v.phi), mass


def truth_record(prt: ak.Array) -> ak.Array:
    """Truth record (var * {pid, pt, eta, phi, mass}) from Pythia's particle list ``prt``."""
    pid = prt.id
    d1, d2 = prt.daughter1, prt.daughter2
    last = (pid[d1] != pid) & (pid[d2] != pid)  # index 0 (no daughter) is the system, id 90
    apid = abs(pid)
    boson_top = last & (apid == 6)
    for code in TRUTH_BOSON_TOP[1:]:
        boson_top = boson_top | (last & (apid == code))
    quark = last & ((apid == 4) | (apid == 5))
    p = prt.p
    keep = boson_top | quark
    counts = ak.to_numpy(ak.sum(keep, axis=1))
    flat = lambda a: ak.to_numpy(ak.flatten(a[keep], axis=1)).astype(np.float64)  # noqa: E731
    px, py, pz, e = flat(p.px), flat(p.py), flat(p.pz), flat(p.e)
    pt, eta, phi, mass = _kin(px, py, pz, e)
    ids = ak.to_numpy(ak.flatten(pid[keep], axis=1)).astype(np.int32)
    is_q = np.isin(np.abs(ids), TRUTH_QUARKS)
    ok = ~is_q | ((pt > QUARK_PT_MIN) & (np.abs(eta) < QUARK_ETA_MAX))
    event = np.repeat(np.arange(len(counts)), counts)
    rec = ak.zip({"pid": ids[ok], "pt": pt[ok].astype(np.float32), "eta": eta[ok].astype(np.float32),
                  "phi": phi[ok].astype(np.float32), "mass": mass[ok].astype(np.float32)})
    return ak.unflatten(rec, np.bincount(event[ok], minlength=len(counts)))


def visible_taus(prt: ak.Array) -> ak.Array:
    """Visible momenta of hadronically decaying τ leptons: var * {pt, eta, phi} (GeV, rad).

    τ = last copy of |id| 15 (no τ daughter) with no e/μ daughter; visible = τ minus
    its neutrino daughters (Pythia's direct decay products).
    """
    from hepfm_data.readers.generation.detector import hadronic_tau_visible

    counts = ak.to_numpy(ak.num(prt.id, axis=1))
    flat = lambda a: ak.to_numpy(ak.flatten(a, axis=1))  # noqa: E731
    vis = hadronic_tau_visible(flat(prt.id).astype(np.int64), flat(prt.daughter1).astype(np.int64),
                               flat(prt.daughter2).astype(np.int64),
                               *(flat(prt.p[k]).astype(np.float64) for k in ("px", "py", "pz")),
                               np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
    event, vx, vy, vz = vis
    pt, eta, phi, _ = _kin(vx, vy, vz, np.sqrt(vx**2 + vy**2 + vz**2))
    rec = ak.zip({"pt": pt.astype(np.float32), "eta": eta.astype(np.float32), "phi": phi.astype(np.float32)})
    return ak.unflatten(rec, np.bincount(event, minlength=len(counts)))


def final_state(prt: ak.Array) -> ak.Array:
    """Final-state particles (status > 0): var * {pid, px, py, pz, e} in GeV."""
    fs = prt[prt.status > 0]
    return ak.zip({"pid": fs.id, "px": fs.p.px, "py": fs.p.py, "pz": fs.p.pz, "e": fs.p.e})


def batch_to_events(run: ak.Array, rng: np.random.Generator, first_event_id: int,
                    event_ids: np.ndarray | None = None, pflow_rng: np.random.Generator | None = None) -> ak.Array:
    """Event record for one ``nextBatch`` result (failed events already removed).

    Ids are ``first_event_id + 0..n-1``, or ``event_ids`` [n] when given (re-simulation); with
    ``pflow_rng`` also the large-R jets and their particle-flow constituents (``fatjets``,
    readers/particleflow.py)."""
    det = emulate(final_state(run.prt), rng, taus=visible_taus(run.prt))
    weights = ak.to_numpy(ak.fill_none(ak.firsts(run.info.weights), 1.0)).astype(np.float32)
    n = len(run)
    ids = np.arange(first_event_id, first_event_id + n, dtype=np.uint64) if event_ids is None else \
        np.asarray(event_ids, dtype=np.uint64)
    fields = {
        "event_id": ids,
        "weight": weights,
        "jets": det.jets, "electrons": det.electrons, "muons": det.muons, "photons": det.photons,
        "met": det.met, "taus": det.taus, "truth": truth_record(run.prt),
    }
    if pflow_rng is not None:  # its own random stream: the object-level record is the same with or without
        from hepfm_data.readers.generation.particleflow import fatjets

        fields["fatjets"] = fatjets(run.prt, pflow_rng)
    return ak.zip(fields, depth_limit=1)


# ------------------------------------------------------------------ generation


def detector_rng(seed: int) -> np.random.Generator:
    """The emulation's random stream for a run seeded ``seed`` (independent of Pythia's)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), 0x0DE7EC7]))


def pflow_stream(proc: Process, seed: int) -> np.random.Generator | None:
    """The particle-flow emulation's random stream of a run seeded ``seed`` (None: ``proc`` has no particle flow)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), 0x0DE7EC8])) if proc.particle_flow else None


def cross_section_weights(proc: Process, events: ak.Array, sigma_pb: float, sample_events: int | None,
                          n_events: int) -> tuple[ak.Array, dict | None]:
    """``events`` with the catalog's ``weight: cross_section`` rule applied (else unchanged) and its record for
    the provenance: each event's weight x σ / N, σ = Pythia's ``sigmaGen`` of this run (pb), N =
    ``sample_events`` (the events of the whole sample this run is a block of; default ``n_events``), so
    the weights of a sample of N events add up to its cross section (pb)."""
    if proc.weight != "cross_section":
        return events, None
    n = check_count("sample_events", sample_events if sample_events is not None else n_events)
    if not (math.isfinite(sigma_pb) and sigma_pb > 0):
        raise GenerationError(f"process {proc.name!r}: weight: cross_section needs Pythia's cross section, got "
                              f"sigmaGen = {sigma_pb!r} pb")
    scale = sigma_pb / n
    out = ak.with_field(events, (ak.to_numpy(events["weight"]).astype(np.float64) * scale).astype(np.float32),
                        "weight")
    return out, {"rule": "cross_section", "sigma_pb": float(sigma_pb), "sample_events": n, "pb_per_event": scale}


def generate(process: str | Process, n_events: int, seed: int, *, lhe: str | os.PathLike | None = None,
             catalog: Catalog | None = None, progress: bool | Callable[[int], None] = False, first_event_id: int = 0,
             lhe_skip: int = 0, workdir: str | os.PathLike | None = None,
             keep_hard_process: bool = False, sample_events: int | None = None) -> tuple[ak.Array, SampleInfo]:
    """Generate ``n_events`` of ``process`` with seed ``seed`` -> (event record, SampleInfo).

    ``lhe``: read the hard process from this LHE file (``lhe_skip`` events
    skipped first); fewer events are returned when the file ends early.
    ``first_event_id`` offsets ``event_id`` (blocks of one sample stay unique).
    ``workdir`` receives builtin SLHA spectra (default: a temporary directory).
    ``keep_hard_process``: generate in two stages (:func:`generate_with_hard`) and keep every
    event's hard process in the record (``hard``, ``hard_event``) for re-simulation.
    ``progress``: a bar (True), or a callable given the count of each batch of generated events.
    ``sample_events``: for a process with ``weight: cross_section``, the events of the whole sample this
    run is a block of (default ``n_events``): each event weighs σ_run / ``sample_events`` pb
    (:func:`cross_section_weights`). Same arguments -> same bytes.
    """
    proc = resolve_process(process, catalog)
    check_count("n_events", n_events)
    if keep_hard_process:
        if lhe is not None or proc.cp_mixing is not None or proc.generator is not None:
            raise GenerationError(f"process {proc.name!r}: keep_hard_process works with Pythia's own hard "
                                  "processes only (not with --lhe input, CP-mixed reweighting or the LO generator)")
        return generate_with_hard(proc, n_events, seed, first_event_id=first_event_id, workdir=workdir,
                                  progress=progress, sample_events=sample_events)
    if proc.cp_mixing is not None and lhe is None:
        raise GenerationError(f"process {proc.name!r} is CP-mixed (reweighted SM hard processes): generate it with "
                              f"hepfm_data.readers.generation.generate, which runs the reweighting chain")
    with tempfile.TemporaryDirectory(prefix="hepfm-gen-") as tmp:
        settings = process_settings(proc, seed, lhe=lhe, workdir=workdir or tmp)
        if lhe is not None and lhe_skip:
            settings.append(f"Beams:nSkipLHEFatInit = {int(lhe_skip)}")
        pythia = make_pythia(settings, f"process {proc.name!r}")
        rng = detector_rng(seed)
        pflow_rng = pflow_stream(proc, seed)
        blocks, done = [], 0
        bar = _progress(progress, n_events, proc.name)
        try:
            while done < n_events:
                k = min(BATCH, n_events - done)
                run = _next_batch(pythia, k, lhe is not None, proc.name, bar.update if bar is not None else None)
                if len(run):
                    blocks.append(batch_to_events(run, rng, first_event_id + done, pflow_rng=pflow_rng))
                done += len(run)
                if len(run) < k and lhe is not None and pythia.infoPython().atEndOfFile():
                    break
        finally:
            if bar is not None:
                bar.close()
        info = pythia.infoPython()
        sigma_pb, sigma_err_pb = info.sigmaGen() * 1e9, info.sigmaErr() * 1e9  # mb -> pb
        n_tried, n_accepted = info.nTried(), info.nAccepted()
    if not blocks:
        raise InputFileError(f"process {proc.name!r}: no event could be generated"
                             + (f" from LHE file {str(lhe)!r}" if lhe is not None else ""))
    events, weighting = cross_section_weights(proc, concatenate(blocks), sigma_pb, sample_events, n_events)
    events = validate_events(events, f"generated {proc.name}")
    sample = SampleInfo(
        process=proc.name, source="lhe+pythia8" if lhe is not None else "pythia8",
        fidelity=proc.fidelity, seed=int(seed),
        generator={
            "name": "pythia8", "pythia_version": pythia_version(),
            "settings": [s for s in settings if not s.startswith(("SLHA:file", "Beams:LHEF"))],
            "slha": proc.slha,
            "sigma_pb": float(sigma_pb) if math.isfinite(sigma_pb) else None,
            "sigma_err_pb": float(sigma_err_pb) if math.isfinite(sigma_err_pb) else None,
            "n_tried": int(n_tried), "n_accepted": int(n_accepted), "n_events": len(events),
            "first_event_id": int(first_event_id),
            "detector": "hepfm ATLAS-like emulation (Delphes 3.4.2 ATLAS card formulas)",
            "proxy_note": proc.description if proc.fidelity == "proxy" else None,
            **({"weighting": weighting} if weighting else {}),
        },
        inputs=[str(Path(lhe).expanduser())] if lhe is not None else [],
    )
    return events, sample


def next_events(pythia, k: int, error_mode: float | str, report: Callable[[int], None] | None = None) -> ak.Array:
    """``pythia.nextBatch(k, error_mode)`` in calls of :data:`PROGRESS_STEP` events, concatenated: the same
    events (Pythia generates them one after another), with ``report(n)`` after each call (its events that
    did not fail), so that progress moves every second or so rather than once per batch."""
    pieces = []
    for at in range(0, k, PROGRESS_STEP):
        run = pythia.nextBatch(min(PROGRESS_STEP, k - at), error_mode)
        pieces.append(run)
        if report is not None:
            report(int(len(run) - ak.sum(ak.is_none(run, axis=0))) if error_mode == "none" else len(run))
    return pieces[0] if len(pieces) == 1 else ak.concatenate(pieces)


def _next_batch(pythia, k: int, from_lhe: bool, name: str, report: Callable[[int], None] | None = None
                ) -> ak.Array:
    if not from_lhe:
        try:
            return next_events(pythia, k, 10.0, report)  # at most 10 tries per requested event
        except RuntimeError as exc:
            raise GenerationError(f"process {name!r}: Pythia failed to generate events: {exc}") from None
    run = next_events(pythia, k, "none", report)  # failed events are None; at end of file all remaining fail
    return ak.drop_none(run, axis=0)  # drops the option type too: the kernels take plain numpy arrays


class _Report:
    """A callable progress report with a bar's ``update`` / ``close``."""

    def __init__(self, report: Callable[[int], None]):
        self.update = report

    def close(self) -> None:
        pass


def _progress(progress: bool | Callable[[int], None], total: int, name: str):
    """None, a tqdm bar (``progress`` True) or ``progress`` as an ``update(n)`` sink."""
    if callable(progress):
        return _Report(progress)
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"generate {name}", unit="ev")


# ------------------------------------------------------------------ hard process kept (re-simulation)

#: the hard-process stage: resonance decays stay in the hard process (H -> b b̄, t -> W b, W/Z decays)
HARD_STAGE = ("PartonLevel:all = off", "HadronLevel:all = off")
#: LHE momenta are written with ~8 significant digits: hard-process copies agree to this relative precision
HARD_MATCH_RTOL = 1e-6


def generate_hard(proc: Process, n_events: int, seed: int, path: str | os.PathLike, *,
                  workdir: str | os.PathLike) -> list[str]:
    """Write ``n_events`` hard processes of ``proc`` (seed ``seed``) to the LHE file ``path``; returns the settings."""
    from hepfm_data.readers.lhe import HardProcessWriter

    settings = process_settings(proc, seed, workdir=workdir) + list(HARD_STAGE)
    pythia = make_pythia(settings, f"process {proc.name!r} (hard-process stage)")
    failed = 0
    with HardProcessWriter(pythia, path) as out:
        while out.n_written < n_events:
            if pythia.next():
                out.write()
            else:
                failed += 1
                if failed > 10 * n_events:
                    raise GenerationError(f"process {proc.name!r}: Pythia failed {failed} hard processes in a row")
    return settings


def hard_process_momenta(prt: ak.Array) -> ak.Array:
    """[n, k, 4] (px, py, pz, e) of the hard-process incoming partons (status -21) and the resonances
    they produce directly (status -22, mother = entry 3) in Pythia's event record: copied unchanged from
    the LHE input (later copies and decay products move with shower recoil)."""
    sel = prt[(prt.status == -21) | ((prt.status == -22) & (prt.mother1 == 3))]
    return ak.concatenate([sel.p[k][..., None] for k in ("px", "py", "pz", "e")], axis=-1)


def _lhe_momenta(hard: ak.Array) -> ak.Array:
    sel = hard[(hard.status == -1) | ((hard.status == 2) & (hard.mother1 == 1))]
    return ak.concatenate([sel[k][..., None] for k in ("px", "py", "pz", "e")], axis=-1)


def shower(proc: Process, init: str, hard: ak.Array, hard_event: ak.Array, event_ids: np.ndarray, seed: int, *,
           settings: tuple[str, ...] = (), workdir: str | os.PathLike, what: str = "shower",
           on_events: Callable[[int], None] | None = None) -> tuple[ak.Array, np.ndarray, list[str], dict]:
    """Shower, hadronise and emulate kept hard processes -> (records of the events that succeeded, ok mask [n],
    Pythia settings, cross-section info).

    ``settings`` are appended to the process's (the view's variation). Every showered event is checked
    to come from its own hard process (incoming partons and resonances equal to the LHE input to
    :data:`HARD_MATCH_RTOL`); a mismatch raises GenerationError rather than mislabelling events.
    ``on_events(k)``: called with the number of events showered, every :data:`PROGRESS_STEP` events.
    """
    from hepfm_data.readers.lhe import write_hard

    n = len(hard)
    path = Path(workdir) / f"hard-{seed}.lhe"
    write_hard(path, init, hard, hard_event)
    all_settings = process_settings(proc, seed, lhe=path, workdir=workdir) + list(settings)
    pythia = make_pythia(all_settings, f"process {proc.name!r} ({what})")
    rng, pflow_rng = detector_rng(seed), pflow_stream(proc, seed)
    want = _lhe_momenta(hard)
    ok = np.zeros(n, dtype=bool)
    blocks, at = [], 0
    while at < n:
        k = min(BATCH, n - at)
        run = next_events(pythia, k, "none", on_events)
        if len(run) != k:
            raise GenerationError(f"process {proc.name!r} ({what}): Pythia returned {len(run)} of {k} events")
        good = ~ak.to_numpy(ak.is_none(run, axis=0))
        run = ak.drop_none(run, axis=0)
        idx = at + np.flatnonzero(good)
        if len(run):
            got = hard_process_momenta(run.prt)
            exp = want[idx]
            same = ak.all(ak.num(got, axis=1) == ak.num(exp, axis=1)) and np.allclose(
                ak.to_numpy(ak.flatten(got, axis=1)), ak.to_numpy(ak.flatten(exp, axis=1)),
                rtol=HARD_MATCH_RTOL, atol=1e-4)
            if not same:
                raise GenerationError(f"process {proc.name!r} ({what}): showered events {event_ids[idx[0]]}... do not "
                                      "carry their own hard process (LHE events and Pythia output misaligned)")
            blocks.append(batch_to_events(run, rng, 0, event_ids=event_ids[idx], pflow_rng=pflow_rng))
        ok[idx] = True
        at += k
    info = pythia.infoPython()
    xs = {"sigma_pb": info.sigmaGen() * 1e9, "n_tried": int(info.nTried()), "n_accepted": int(info.nAccepted())}
    events = concatenate(blocks) if blocks else None
    return events, ok, [s for s in all_settings if not s.startswith(("SLHA:file", "Beams:LHEF"))], xs


def with_hard(events: ak.Array, hard: ak.Array, hard_event: ak.Array) -> ak.Array:
    """``events`` with the ``hard`` / ``hard_event`` record fields (same length and order)."""
    out = {f: events[f] for f in events.fields}
    out["hard"], out["hard_event"] = hard, hard_event
    return ak.zip(out, depth_limit=1)


def generate_with_hard(proc: Process, n_events: int, seed: int, *, first_event_id: int = 0,
                       workdir: str | os.PathLike | None = None, progress: bool | Callable[[int], None] = False,
                       sample_events: int | None = None) -> tuple[ak.Array, SampleInfo]:
    """Two-stage generation keeping the hard process: Pythia hard processes (resonance decays included) ->
    LHE -> shower, hadronisation, emulation (``Beams:frameType = 4``). Event ``i`` of the block has id
    ``first_event_id + i`` and its hard process in ``hard`` / ``hard_event``; an event whose shower
    fails is dropped (its id is skipped). The LHE ``<init>`` block goes into the provenance."""
    from hepfm_data.readers.lhe import read_hard

    with tempfile.TemporaryDirectory(prefix="hepfm-gen-") as tmp:
        path = Path(tmp) / "hard.lhe"
        hard_settings = generate_hard(proc, n_events, seed, path, workdir=workdir or tmp)
        init, hard, hard_event = read_hard(path)
        ids = np.arange(first_event_id, first_event_id + n_events, dtype=np.uint64)
        bar = _progress(progress, n_events, proc.name)
        try:
            events, ok, settings, xs = shower(proc, init, hard, hard_event, ids, seed, workdir=tmp,
                                              what="shower of kept hard processes",
                                              on_events=bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
    if events is None:
        raise GenerationError(f"process {proc.name!r}: no event could be showered")
    events, weighting = cross_section_weights(proc, events, xs["sigma_pb"], sample_events, n_events)
    events = validate_events(with_hard(events, hard[ok], hard_event[ok]), f"generated {proc.name}")
    sample = SampleInfo(
        process=proc.name, source="pythia8", fidelity=proc.fidelity, seed=int(seed),
        generator={
            "name": "pythia8", "pythia_version": pythia_version(),
            "settings": [s for s in hard_settings if not s.startswith("SLHA:file")],
            "shower_settings": settings, "slha": proc.slha,
            "sigma_pb": xs["sigma_pb"] if math.isfinite(xs["sigma_pb"]) else None,
            "n_tried": xs["n_tried"], "n_accepted": xs["n_accepted"], "n_events": len(events),
            "first_event_id": int(first_event_id),
            "hard_process": {"kept": True, "lhe_init": init, "n_shower_failed": int((~ok).sum()),
                             "stages": "hard process (resonance decays incl.) -> LHE -> shower/hadronisation"},
            "detector": "hepfm ATLAS-like emulation (Delphes 3.4.2 ATLAS card formulas)",
            "proxy_note": proc.description if proc.fidelity == "proxy" else None,
            **({"weighting": weighting} if weighting else {}),
        },
    )
    return events, sample
