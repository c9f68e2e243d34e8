"""The in-memory event record: what every reader produces and every builder consumes.

An *event record* is an ``awkward.Array`` of length ``n_events``, one record per
event, holding the reconstructed objects **before any selection** (the kernels
apply the paper's selection, overlap removal and b-tagging, SPEC §2). Units: GeV
for momenta, masses and energy sums, radians for azimuth (φ in [-π, π)),
elementary charge for charge; isolation is relative (cone sum / object pT).

The schema is :data:`RECORD` (docs/explanations/store-format.md). Required
fields are present in every record; optional ones are present only where the input format
provides them — a format that lacks a field leaves it **absent, never
zero-filled**. ``truth`` is absent for collision data. Each reader documents its
format's field -> record mapping (docs/reference/input-formats.md).

=================  =========================================================================
collection         fields (dtype, unit)
=================  =========================================================================
event_id           uint64 — unique within a sample; drives the split hash (required)
weight             float32 — generator event weight, 1.0 for data/unweighted (required)
run                uint32 — run number (optional; NanoAOD, PHYSLITE)
lumi_block         uint32 — luminosity block (optional; NanoAOD, PHYSLITE)
event_number       uint64 — experiment event number (optional; NanoAOD, PHYSLITE)
mc_channel         uint32 — ATLAS dataset id of simulation (optional; PHYSLITE MC)
jets               var * {pt, eta, phi, mass f32 (required); btag i8 flag, btag_score f32,
                   tau_tag i8 (optional)}
electrons          var * {pt, eta, phi f32, charge i8 (required); isolation f32 (optional)}
muons              var * {pt, eta, phi f32, charge i8 (required); isolation f32 (optional)}
photons            var * {pt, eta, phi f32 (required); isolation f32 (optional)}
taus               var * {pt, eta, phi, mass f32, charge i8; tag i8 (optional)} hadronic τ
                   candidates (optional collection; every reader provides it)
met                {pt, phi f32 (required); sumet f32 (optional)}
truth              var * {pid i32, pt, eta, phi, mass f32} (optional: absent for collision data)
=================  =========================================================================

``truth`` holds the hard-process record (SPEC §4): the last copies of Higgs
bosons (PDG 25, 35, 36; charged 37), top quarks (6), W (24) and Z (23) bosons, plus the b
and c quarks (5, 4) used for jet flavour matching. ``pid`` keeps its sign.

Sample-level metadata (process, generator, seed, input format and release,
whether truth is present...) travels beside the array as a :class:`SampleInfo`,
not per event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import awkward as ak
import numpy as np

from hepfm_data.core.errors import HepfmError


@dataclass(frozen=True)
class Field:
    """One field of a record collection: numpy dtype, unit and meaning."""

    dtype: str
    unit: str = ""
    doc: str = ""
    required: bool = True


@dataclass(frozen=True)
class Collection:
    """A top-level entry of the record: ``kind`` is "scalar", "record" (one per event) or "list"."""

    kind: str
    fields: dict[str, Field]
    required: bool = True
    doc: str = ""
    #: nested list collections, one list per object of this one (e.g. a large-R jet's constituents)
    children: dict[str, Collection] = field(default_factory=dict)


def _kin(mass: bool = False) -> dict[str, Field]:
    out = {"pt": Field("float32", "GeV", "transverse momentum"), "eta": Field("float32", "", "pseudorapidity"),
           "phi": Field("float32", "rad", "azimuth in [-π, π)")}
    if mass:
        out["mass"] = Field("float32", "GeV", "invariant mass")
    return out


_CHARGE = Field("int8", "e", "electric charge")
_ISO = Field("float32", "", "relative isolation: cone sum / pT (definition per format)", required=False)

#: The record schema: name -> :class:`Collection`. docs/explanations/store-format.md shows this table.
RECORD: dict[str, Collection] = {
    "event_id": Collection("scalar", {"": Field("uint64", "", "unique id within a sample")}),
    "weight": Collection("scalar", {"": Field("float32", "", "generator event weight")}),
    "run": Collection("scalar", {"": Field("uint32", "", "run number")}, required=False),
    "lumi_block": Collection("scalar", {"": Field("uint32", "", "luminosity block")}, required=False),
    "event_number": Collection("scalar", {"": Field("uint64", "", "experiment event number")}, required=False),
    "mc_channel": Collection("scalar", {"": Field("uint32", "", "ATLAS MC dataset id")}, required=False),
    "jets": Collection("list", {
        **_kin(mass=True),
        "btag": Field("int8", "", "b-tag flag of the input's tagger at its documented working point", False),
        "btag_score": Field("float32", "", "b-tag discriminant of the input's tagger", False),
        "tau_tag": Field("int8", "", "hadronic-τ tag flag (Delphes TauTag / emulation)", False),
    }, doc="reconstructed small-R jets"),
    "electrons": Collection("list", {**_kin(), "charge": _CHARGE, "isolation": _ISO}),
    "muons": Collection("list", {**_kin(), "charge": _CHARGE, "isolation": _ISO}),
    "photons": Collection("list", {**_kin(), "isolation": _ISO}),
    "taus": Collection("list", {
        **_kin(mass=True), "charge": _CHARGE,
        "tag": Field("int8", "", "passes the format's medium τ identification", False),
    }, required=False, doc="hadronic τ candidates (visible decay products)"),
    "met": Collection("record", {"pt": Field("float32", "GeV", "missing transverse momentum"),
                                 "phi": Field("float32", "rad", "azimuth"),
                                 "sumet": Field("float32", "GeV", "scalar sum of transverse energy", False)}),
    "truth": Collection("list", {"pid": Field("int32", "", "signed PDG id"), **_kin(mass=True)}, required=False,
                        doc="last copies of H, t, W, Z and b/c quarks"),
    # the kept hard process (generation with keep_hard_process=True): the LHE event, columnar
    "hard": Collection("list", {
        "pid": Field("int32", "", "signed PDG id (IDUP)"), "status": Field("int32", "", "ISTUP: -1 in, 1 out, 2 resonance"),
        "mother1": Field("int32", "", "MOTHUP(1), 1-based, 0 = none"), "mother2": Field("int32", "", "MOTHUP(2)"),
        "color1": Field("int32", "", "ICOLUP(1)"), "color2": Field("int32", "", "ICOLUP(2)"),
        "px": Field("float64", "GeV"), "py": Field("float64", "GeV"), "pz": Field("float64", "GeV"),
        "e": Field("float64", "GeV"), "m": Field("float64", "GeV"),
        "lifetime": Field("float64", "mm", "VTIMUP"), "spin": Field("float64", "", "SPINUP (9 = unknown)"),
    }, required=False, doc="hard-process particles as written to LHE (re-simulation input)"),
    "hard_event": Collection("record", {
        "process_id": Field("int32", "", "IDPRUP"), "lhe_weight": Field("float64", "", "XWGTUP"),
        "scale": Field("float64", "GeV", "SCALUP"), "alpha_qed": Field("float64", "", "AQEDUP"),
        "alpha_qcd": Field("float64", "", "AQCDUP"),
    }, required=False, doc="hard-process event header (LHE)"),
    "view": Collection("record", {
        "seed": Field("uint32", "", "Pythia seed the view of this event was re-simulated with"),
        "attempt": Field("int8", "", "0, or the retry after a failed shower of this hard process"),
    }, required=False, doc="re-simulated view provenance (hepfm_data.pipelines.resimulate)"),
    "fatjets": Collection("list", {
        **_kin(mass=True),
        "sd_mass": Field("float32", "GeV", "soft-drop mass (beta = 0, z_cut = 0.1, R0 = 0.8)", False),
        "n2": Field("float32", "", "N2 (beta = 1) from generalized energy correlation functions", False),
        "truth_label": Field("int8", "", "0 none, 1 H->bb, 2 quark, 3 gluon (hard-process match, dR < 0.8)",
                             False),
    }, required=False, doc="anti-kt R = 0.8 large-R jets, pT-ordered", children={
        "constituents": Collection("list", {
            **_kin(), "energy": Field("float32", "GeV", "energy"), "charge": _CHARGE,
            "kind": Field("int8", "", "0 charged hadron, 1 neutral hadron, 2 photon, 3 electron, 4 muon"),
            "d0": Field("float32", "mm", "transverse impact parameter (0 for neutrals)", False),
            "dz": Field("float32", "mm", "longitudinal impact parameter (0 for neutrals)", False),
        }, doc="particle-flow candidates of the jet, pT-ordered"),
    }),
}

#: field -> (kind, {subfield: numpy dtype}) of the required core every builder may rely on
#: (the paper graph's inputs; ``truth`` is listed because simulation always has it).
EVENT_FIELDS: dict[str, tuple[str, dict[str, str]]] = {
    name: (c.kind, {k: f.dtype for k, f in c.fields.items() if f.required})
    for name, c in RECORD.items() if c.required or name == "truth"
}

#: PDG ids kept in the truth record.
TRUTH_PIDS = (4, 5, 6, 23, 24, 25, 35, 36, 37)


@dataclass
class SampleInfo:
    """Provenance of a block of events: goes into the store manifest verbatim.

    ``input_format``: "delphes" | "nanoaod" | "physlite" | "pythia8" | ...;
    ``release``: the software release/production that wrote the input, when
    known; ``truth``: False when the input has no generator record (collision
    data), so no truth labels can be derived.
    """

    process: str
    source: str  # "pythia8" | "delphes" | "lhe+pythia8" | "nanoaod" | "physlite"
    fidelity: str = "native"
    seed: int | None = None
    generator: dict[str, Any] = field(default_factory=dict)  # version, settings, sigma_pb...
    inputs: list[str] = field(default_factory=list)  # input files/URLs
    input_format: str = ""
    release: str = ""
    truth: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wrap_phi(phi):
    """Wrap azimuth into [-π, π) (numpy arrays or scalars, radians)."""
    return (np.asarray(phi) + np.pi) % (2 * np.pi) - np.pi


def _flat(column: ak.Array, kind: str) -> ak.Array:
    return ak.flatten(column, axis=1) if kind == "list" else column


def validate_events(events: ak.Array, where: str = "events") -> ak.Array:
    """Check that ``events`` is an event record (:data:`RECORD`); return it with canonical dtypes.

    Optional collections and fields are checked when present and kept; a field
    the schema does not know is refused. Raises :class:`HepfmError` naming
    ``where`` and the field when a required field is missing, a field has the
    wrong structure or holds non-finite numbers.
    """
    if not isinstance(events, ak.Array):
        raise HepfmError(f"{where}: expected an awkward Array event record, got {type(events).__name__}")
    present = list(events.fields)
    missing = [f for f, c in RECORD.items() if c.required and f not in present]
    if missing:
        raise HepfmError(f"{where}: event record lacks field(s) {missing}")
    unknown = [f for f in present if f not in RECORD]
    if unknown:
        raise HepfmError(f"{where}: event record has field(s) {unknown} that the record schema "
                         f"(hepfm_data.core.events.RECORD) does not define")
    out = {}
    for name, spec in RECORD.items():
        if name not in present:
            continue
        col, kind = events[name], spec.kind
        if kind == "scalar":
            if col.ndim != 1 or col.fields:
                raise HepfmError(f"{where}: field {name!r} must be one number per event")
            out[name] = ak.values_astype(col, spec.fields[""].dtype)
            continue
        if kind == "list" and col.ndim != 2:
            raise HepfmError(f"{where}: field {name!r} must be a variable-length list per event")
        out[name] = _validate_collection(col, spec, name, where)
    return ak.zip(out, depth_limit=1)


def _validate_collection(col: ak.Array, spec: Collection, name: str, where: str) -> ak.Array:
    """One record/list collection (lists: one list per parent row), nested children validated recursively."""
    kind = spec.kind
    lacking = [s for s, f in spec.fields.items() if f.required and s not in col.fields]
    lacking += [c for c, cs in spec.children.items() if cs.required and c not in col.fields]
    if lacking:
        raise HepfmError(f"{where}: field {name!r} lacks {lacking}")
    extra = [s for s in col.fields if s not in spec.fields and s not in spec.children]
    if extra:
        raise HepfmError(f"{where}: field {name!r} has sub-field(s) {extra} the record schema does not define")
    parts = {}
    for s, f in spec.fields.items():
        if s not in col.fields:
            continue
        values = col[s]
        flat = ak.to_numpy(_flat(values, kind))
        if flat.dtype.kind == "f" and not np.all(np.isfinite(flat)):
            raise HepfmError(f"{where}: field {name}.{s} holds non-finite values")
        parts[s] = ak.values_astype(values, f.dtype)
    for c, cspec in spec.children.items():
        if c not in col.fields:
            continue
        sub = col[c]
        if sub.ndim != 3:
            raise HepfmError(f"{where}: field {name}.{c} must be a variable-length list per {name} object")
        parts[c] = ak.unflatten(_validate_collection(ak.flatten(sub, axis=1), cspec, f"{name}.{c}", where),
                                ak.num(sub, axis=1), axis=0)
    return ak.zip(parts, depth_limit=2) if kind == "list" else ak.zip(parts)


def empty_events() -> ak.Array:
    """A valid event record with zero events (the required fields and ``truth``)."""
    return concatenate([])


def concatenate(blocks: list[ak.Array]) -> ak.Array:
    """Concatenate event records with the same fields (an empty list gives a zero-length record)."""
    if blocks:
        first = set(blocks[0].fields)
        for i, b in enumerate(blocks[1:], 1):
            if set(b.fields) != first:
                raise HepfmError(f"cannot concatenate event records with different fields: block 0 has "
                                 f"{sorted(first)}, block {i} has {sorted(b.fields)}")
        return ak.concatenate(blocks)
    counts = np.zeros(0, dtype=np.int64)
    out = {}
    for name, (kind, sub) in EVENT_FIELDS.items():
        cols = {s: np.zeros(0, d) for s, d in sub.items()}
        if kind == "scalar":
            out[name] = cols[""]
        elif kind == "record":
            out[name] = ak.zip(cols)
        else:
            out[name] = ak.unflatten(ak.zip(cols), counts)
    return ak.zip(out, depth_limit=1)
