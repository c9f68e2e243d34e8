"""The in-memory event record: what every reader produces and every builder consumes.

An *event record* is an ``awkward.Array`` of length ``n_events`` whose records
have exactly these fields (units: GeV for momenta and masses, radians for
azimuth, elementary charge for charge; φ in [-π, π)):

=============  ================================================================
field          type
=============  ================================================================
event_id       uint64 — unique within a sample; drives the split hash
weight         float32 — generator event weight (1.0 when unweighted)
jets           var * {pt, eta, phi, mass: float32}            reconstructed jets
electrons      var * {pt, eta, phi: float32, charge: int8}    reconstructed electrons
muons          var * {pt, eta, phi: float32, charge: int8}    reconstructed muons
photons        var * {pt, eta, phi: float32}                  reconstructed photons
met            {pt, phi: float32}                             missing transverse momentum
truth          var * {pid: int32, pt, eta, phi, mass: float32}
=============  ================================================================

Objects are detector level *before* the paper's selection (SPEC §2); the
kernels apply the selection, overlap removal and b-tagging. Detector-level
isolation/identification efficiencies are applied by the reader (Delphes
already did; the emulation does it itself).

``truth`` holds the hard-process record (SPEC §4): the last copies of Higgs
bosons (PDG 25, 35, 36), top quarks (6), W (24) and Z (23) bosons, plus the b
and c quarks (5, 4) used for jet flavour matching. ``pid`` keeps its sign.

Sample-level metadata (process, generator, seed, cross-section...) travels
beside the array as a :class:`SampleInfo`, not per event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import awkward as ak
import numpy as np

from .errors import HepfmError

#: field -> (kind, {subfield: numpy dtype}); kind is "scalar", "record" or "list".
EVENT_FIELDS: dict[str, tuple[str, dict[str, str]]] = {
    "event_id": ("scalar", {"": "uint64"}),
    "weight": ("scalar", {"": "float32"}),
    "jets": ("list", {"pt": "float32", "eta": "float32", "phi": "float32", "mass": "float32"}),
    "electrons": ("list", {"pt": "float32", "eta": "float32", "phi": "float32", "charge": "int8"}),
    "muons": ("list", {"pt": "float32", "eta": "float32", "phi": "float32", "charge": "int8"}),
    "photons": ("list", {"pt": "float32", "eta": "float32", "phi": "float32"}),
    "met": ("record", {"pt": "float32", "phi": "float32"}),
    "truth": ("list", {"pid": "int32", "pt": "float32", "eta": "float32", "phi": "float32", "mass": "float32"}),
}

#: PDG ids kept in the truth record.
TRUTH_PIDS = (4, 5, 6, 23, 24, 25, 35, 36)


@dataclass
class SampleInfo:
    """Provenance of a block of events: goes into the store manifest verbatim."""

    process: str
    source: str  # "pythia8" | "delphes" | "lhe+pythia8"
    fidelity: str = "native"
    seed: int | None = None
    generator: dict[str, Any] = field(default_factory=dict)  # version, settings, sigma_pb...
    inputs: list[str] = field(default_factory=list)  # input files/URLs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wrap_phi(phi):
    """Wrap azimuth into [-π, π) (numpy arrays or scalars, radians)."""
    return (np.asarray(phi) + np.pi) % (2 * np.pi) - np.pi


def _flat(column: ak.Array, kind: str) -> ak.Array:
    return ak.flatten(column, axis=1) if kind == "list" else column


def validate_events(events: ak.Array, where: str = "events") -> ak.Array:
    """Check that ``events`` is an event record; return it with canonical dtypes.

    Raises :class:`HepfmError` naming ``where`` and the field when a field is
    missing, has the wrong structure, or holds non-finite numbers.
    """
    if not isinstance(events, ak.Array):
        raise HepfmError(f"{where}: expected an awkward Array event record, got {type(events).__name__}")
    present = set(events.fields)
    missing = [f for f in EVENT_FIELDS if f not in present]
    if missing:
        raise HepfmError(f"{where}: event record lacks field(s) {missing}")
    out = {}
    for name, (kind, sub) in EVENT_FIELDS.items():
        col = events[name]
        if kind == "scalar":
            if col.ndim != 1:
                raise HepfmError(f"{where}: field {name!r} must be one number per event")
            out[name] = ak.values_astype(col, sub[""])
            continue
        if kind == "list" and col.ndim != 2:
            raise HepfmError(f"{where}: field {name!r} must be a variable-length list per event")
        lacking = [s for s in sub if s not in col.fields]
        if lacking:
            raise HepfmError(f"{where}: field {name!r} lacks {lacking}")
        parts = {}
        for s, dtype in sub.items():
            values = col[s]
            flat = ak.to_numpy(_flat(values, kind))
            if flat.dtype.kind == "f" and not np.all(np.isfinite(flat)):
                raise HepfmError(f"{where}: field {name}.{s} holds non-finite values")
            parts[s] = ak.values_astype(values, dtype)
        out[name] = ak.zip(parts, depth_limit=None if kind == "record" else 2) if kind == "list" else ak.zip(parts)
    return ak.zip(out, depth_limit=1)


def empty_events() -> ak.Array:
    """A valid event record with zero events."""
    return concatenate([])


def concatenate(blocks: list[ak.Array]) -> ak.Array:
    """Concatenate event records (an empty list gives a zero-length record)."""
    if blocks:
        return ak.concatenate(blocks)
    counts = np.zeros(0, dtype=np.int64)

    def lst(sub):
        return ak.unflatten(ak.zip({s: np.zeros(0, d) for s, d in sub.items()}), counts)

    return ak.zip({
        "event_id": np.zeros(0, np.uint64), "weight": np.zeros(0, np.float32),
        "jets": lst(EVENT_FIELDS["jets"][1]), "electrons": lst(EVENT_FIELDS["electrons"][1]),
        "muons": lst(EVENT_FIELDS["muons"][1]), "photons": lst(EVENT_FIELDS["photons"][1]),
        "met": ak.zip({"pt": np.zeros(0, np.float32), "phi": np.zeros(0, np.float32)}),
        "truth": lst(EVENT_FIELDS["truth"][1]),
    }, depth_limit=1)
