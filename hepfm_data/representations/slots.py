"""``slots``: typed-slot batches (:class:`~hepfm_data.batches.slots.SlotBatch`, SPEC §7.3) from the stored
event record, computed in the loader's workers.

The sampler plans events (the exactly-once, resume and rank x worker guarantees are the graph
loader's); this representation reads the *record* shards paired with the planned shards, so the
slots carry the objects' masses (the paper graph's nodes are massless)::

    loader = make_loader(stores, catalog=catalog, augment=Compose(RotatePhi(), FlipEta(), BoostZ(0.3)),
                         representation=SlotRepresentation(pretext=ObjectReplacement()))

(``representation="slots"``: the paper's cuts of the dataset's catalog, no pretext.)

Per window (numpy + the selection kernels, no per-event Python): electrons and muons (PDG masses
from ``particle``), τ_h candidates (the record's mass; PDG τ mass where the record has none),
jets (the record's mass) split into b-jet / light slots by the record's ``jets.btag`` (``btag=
"record"``) or, for records without a detector tagger (generated samples), by the catalog's b-tag
efficiency on the truth flavour with the store's ``btag_seed`` (``"emulate"``: the same decisions
as the paper graph of the store); ``"auto"`` takes the record's where it has one. Objects pass the
SPEC §2 cuts (SPEC §7.3 names none), jets the overlap removal; MET is the last slot. Each type is
pT-ordered (ties in stored order) and cut at the :class:`~hepfm_data.batches.slots.SlotLayout` counts.
Per batch: the ``augment`` of the dataset on the batch's objects (a packed [N, 7] float64 node
matrix: pt, eta, phi, E, btag, charge, graph type; ``BoostZ`` is a Lorentz boost of the massive
four-vectors), then the features, then the ``pretext``, each seeded by the batch key.

A store without the record, or whose record lacks a field the slots need, fails at its first
window with the store, the representation ``slots`` and the missing fields named.
SPEC §7.3's event selection (>= 1 lepton, >= 2 jets, >= 1 b-jet) is not applied here: the
sampler plans batches by event, so an event filter belongs before the store.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hepfm_data.batches.host import gather_events
from hepfm_data.batches.slots import SlotBatch, SlotLayout, slot_features
from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import HepfmError
from hepfm_data.kernels.features import _cuts  # the catalog ObjectCuts -> object_mask arguments (one helper)
from hepfm_data.representations.base import AUGMENT_STREAM, TRANSFORM_STREAM, Block, Representation, batch_rng

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.core.catalog import Catalog, ObjectCuts
    from hepfm_data.core.catalog import Selection as CatalogSelection
    from hepfm_data.representations.base import WindowSource

__all__ = ["SLOTS", "SlotRepresentation", "SlotSelection", "SlotWindow", "lepton_masses", "slot_objects",
           "slot_inputs"]

#: graph object-type integers of the packed object matrix (catalog graph.object_types + τ = 5)
JET, ELECTRON, MUON, MET, TAU = 0, 1, 2, 4, 5
_KIN = ("pt", "eta", "phi")


@functools.lru_cache(maxsize=1)
def lepton_masses() -> dict[str, float]:
    """PDG masses (GeV) of the electron, muon and τ from the ``particle`` package."""
    from particle import Particle

    return {name: float(Particle.from_pdgid(pid).mass) / 1000.0 for name, pid in
            (("electrons", 11), ("muons", 13), ("taus", 15))}


@dataclass(frozen=True)
class SlotSelection:
    """Object selection of the slots: the SPEC §2 cuts of ``electron``/``muon``/``jet``
    (:class:`~hepfm_data.core.catalog.ObjectCuts`), jet overlap removal (ΔR < ``overlap_dr`` of the
    kept ``overlap_against`` objects; ``photon`` cuts for that), τ_h pT > ``tau_pt_min`` GeV,
    |η| < ``tau_abs_eta_max``, ``taus.tag == 1`` where the record has it (the ``paper_taus``
    cuts); ``btag``: ``"record"``, ``"emulate"`` or ``"auto"`` (module docstring)."""

    electron: ObjectCuts
    muon: ObjectCuts
    jet: ObjectCuts
    photon: ObjectCuts
    overlap_dr: float
    overlap_against: tuple[str, ...]
    btag_params: Any  # catalog.BTag: flavour matching ΔR and efficiencies (the "emulate" tagger)
    tau_pt_min: float = 20.0
    tau_abs_eta_max: float = 2.5
    btag: str = "auto"
    #: event selection on the selected objects (before the slot counts truncate them): at least
    #: this many leptons (e + μ), jets (b-tagged or not) and b-tagged jets; 0 = no requirement
    min_leptons: int = 0
    min_jets: int = 0
    min_bjets: int = 0

    def __post_init__(self):
        if self.btag not in ("record", "emulate", "auto"):
            raise HepfmError(f"SlotSelection: btag must be 'record', 'emulate' or 'auto', got {self.btag!r}")
        for name in ("min_leptons", "min_jets", "min_bjets"):
            if int(getattr(self, name)) < 0:
                raise HepfmError(f"SlotSelection: {name} = {getattr(self, name)} must be >= 0")

    @property
    def selects_events(self) -> bool:
        return bool(self.min_leptons or self.min_jets or self.min_bjets)

    @classmethod
    def from_catalog(cls, catalog: Catalog | CatalogSelection, **kw) -> SlotSelection:
        """The paper's cuts of ``catalog`` (a Catalog or its ``selection``); ``kw`` overrides fields."""
        from hepfm_data.representations.paper_taus import TAU_ETA_MAX, TAU_PT_MIN

        s = getattr(catalog, "selection", catalog)
        base = dict(electron=s.electron, muon=s.muon, jet=s.jet, photon=s.photon, overlap_dr=float(s.overlap_dr),
                    overlap_against=tuple(s.overlap_against), btag_params=s.btag, tau_pt_min=TAU_PT_MIN,
                    tau_abs_eta_max=TAU_ETA_MAX)
        return cls(**{**base, **kw})

    @classmethod
    def kishimoto(cls, catalog: Catalog | CatalogSelection, **kw) -> SlotSelection:
        """The paper's object cuts and the event selection of Kishimoto et al. (SPEC §7.3):
        >= 1 lepton, >= 2 jets, >= 1 b-tagged jet."""
        return cls.from_catalog(catalog, **{"min_leptons": 1, "min_jets": 2, "min_bjets": 1, **kw})


def slot_inputs(selection: SlotSelection, layout: SlotLayout, schema: dict[str, Any] | None) -> list[str]:
    """The record fields (``collection.field``) the slots of ``layout`` read from a store of ``schema``."""
    need = ["event_id", "weight", "met.pt", "met.phi"]
    if layout.n_lepton:
        need += [f"{c}.{k}" for c in ("electrons", "muons") for k in (*_KIN, "charge")]
    if layout.n_tau:
        need += [f"taus.{k}" for k in (*_KIN, "charge")]
    if layout.n_bjet or layout.n_light:
        need += [f"jets.{k}" for k in (*_KIN, "mass")]
        need += [f"{c}.{k}" for c in ("electrons", "muons") for k in _KIN if c[:-1] in selection.overlap_against]
        need += [f"photons.{k}" for k in _KIN if "photon" in selection.overlap_against]
        has_btag = bool(schema) and "btag" in schema.get("collections", {}).get("jets", {}).get("fields", {})
        if selection.btag == "record" or (selection.btag == "auto" and has_btag):
            need.append("jets.btag")
        else:
            need += [f"truth.{k}" for k in ("pid", "eta", "phi")]
    return list(dict.fromkeys(need))


def _flat(cols, coll: str, field: str, dtype=np.float64) -> np.ndarray:
    return np.ascontiguousarray(cols[f"{coll}/{field}"], dtype=dtype)


@dataclass
class SlotObjects:
    """The slot objects of ``n`` events, grouped by event (in the input order), then by slot."""

    nodes: np.ndarray  # [M, 7] float64: pt, eta, phi, E (from the mass), btag, charge, graph type
    mass: np.ndarray  # [M] float64 GeV
    slot: np.ndarray  # [M] int64 slot index (SlotLayout order)
    counts: np.ndarray  # [n] int64 objects per event
    selected: np.ndarray  # [n] bool: the event passes the selection's event requirements


def slot_objects(cols: dict[str, np.ndarray], selection: SlotSelection, layout: SlotLayout | None = None, *,
                 btag_seed: int = 0, masses: dict[str, float] | None = None) -> SlotObjects:
    """The selected, pT-ordered slot objects of record columns ``cols`` (``store.record`` names:
    ``jets/n``, ``jets/pt``, ...; the fields :func:`slot_inputs` names must be present).

    Vectorised: per-type cuts with the selection kernels, then one stable lexsort by (event, slot
    type, -pT) ranks the objects of each type; those below the type's count are kept.
    """
    from hepfm_data.kernels.selection import object_mask, overlap_mask

    layout = layout or SlotLayout()
    if (selection.min_leptons and not layout.n_lepton) or \
            ((selection.min_jets or selection.min_bjets) and not (layout.n_bjet or layout.n_light)):
        raise HepfmError(f"SlotSelection requires leptons/jets ({selection.min_leptons}/{selection.min_jets}/"
                         f"{selection.min_bjets}) that the slot layout {layout} does not read")
    masses = masses or dict(lepton_masses())
    n = int(cols["event_id"].shape[0])
    parts: list[dict[str, np.ndarray]] = []  # per collection: event, stype, pt, eta, phi, mass, btag, charge, type

    def coll(name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        off = counts_to_offsets(np.asarray(cols[f"{name}/n"], np.int64))
        return off, {k: _flat(cols, name, k, np.float32) for k in _KIN}  # the record's precision, as the paper graph

    def add(name, off, kin, keep, stype, mass, btag, charge, kind):
        event = np.repeat(np.arange(n, dtype=np.int64), np.diff(off))
        parts.append({"event": event[keep], "stype": np.broadcast_to(stype, event.shape)[keep],
                      "pt": kin["pt"][keep], "eta": kin["eta"][keep], "phi": kin["phi"][keep],
                      "mass": np.broadcast_to(mass, event.shape)[keep], "btag": np.broadcast_to(btag, event.shape)[keep],
                      "charge": np.broadcast_to(charge, event.shape)[keep], "type": np.full(int(keep.sum()), kind)})

    kept = {}
    for name, cuts, kind in (("electrons", selection.electron, ELECTRON), ("muons", selection.muon, MUON)):
        if not (layout.n_lepton or (name[:-1] in selection.overlap_against and (layout.n_bjet or layout.n_light))):
            continue
        off, kin = coll(name)
        keep = object_mask(kin["pt"], kin["eta"], *_cuts(cuts))
        kept[name[:-1]] = (off, kin, keep)
        if layout.n_lepton:
            add(name, off, kin, keep, 0, masses[name], 0.0, _flat(cols, name, "charge"), kind)
    if layout.n_tau:
        off, kin = coll("taus")
        keep = (kin["pt"] > selection.tau_pt_min) & (np.abs(kin["eta"]) < selection.tau_abs_eta_max)
        if "taus/tag" in cols:
            keep &= np.asarray(cols["taus/tag"]) == 1
        mass = _flat(cols, "taus", "mass") if "taus/mass" in cols else masses["taus"]
        add("taus", off, kin, keep, 1, mass, 0.0, _flat(cols, "taus", "charge"), TAU)
    if layout.n_bjet or layout.n_light:
        off, kin = coll("jets")
        keep = object_mask(kin["pt"], kin["eta"], *_cuts(selection.jet))
        for obj in selection.overlap_against:
            if obj == "photon":
                o_off, o_kin = coll("photons")
                o_keep = object_mask(o_kin["pt"], o_kin["eta"], *_cuts(selection.photon))
            else:
                o_off, o_kin, o_keep = kept[obj]
            keep &= overlap_mask(kin["eta"], kin["phi"], off, o_kin["eta"], o_kin["phi"], o_keep, o_off,
                                 float(selection.overlap_dr))
        btag = _jet_btag(cols, selection, off, kin, btag_seed)
        add("jets", off, kin, keep, np.where(btag > 0, 2, 3), _flat(cols, "jets", "mass"), btag.astype(np.float64),
            0.0, JET)
    if layout.n_met:
        met = {k: _flat(cols, "met", k, np.float32) if k != "eta" else np.zeros(n, np.float32) for k in _KIN}
        add("met", np.arange(n + 1, dtype=np.int64), met, np.ones(n, bool), 4, 0.0, 0.0, 0.0, MET)
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    selected = _event_selection(cat["event"], cat["stype"], n, selection)
    order = np.lexsort((-cat["pt"], cat["stype"], cat["event"]))  # last key first: event, type, pT descending
    ev, st = cat["event"][order], cat["stype"][order].astype(np.int64)
    new_group = np.r_[True, (ev[1:] != ev[:-1]) | (st[1:] != st[:-1])] if order.size else np.zeros(0, bool)
    rank = np.arange(order.size) - np.maximum.accumulate(np.where(new_group, np.arange(order.size), 0))
    inside = rank < np.asarray(layout.counts, np.int64)[st]
    order, ev, st, rank = order[inside], ev[inside], st[inside], rank[inside]
    c = {k: v[order].astype(np.float64) if v.dtype.kind == "f" else v[order] for k, v in cat.items()}
    energy = np.hypot(c["pt"] * np.cosh(c["eta"]), c["mass"])
    nodes = np.stack([c["pt"], c["eta"], c["phi"], energy, c["btag"], c["charge"], c["type"].astype(np.float64)], 1)
    return SlotObjects(nodes, c["mass"].astype(np.float64), layout.starts[st] + rank,
                       np.bincount(ev, minlength=n).astype(np.int64), selected)


def _event_selection(event: np.ndarray, stype: np.ndarray, n: int, selection: SlotSelection) -> np.ndarray:
    """[n] bool: events with at least the selection's leptons, jets and b-jets among ``event`` /
    ``stype`` (slot type index per selected object, before truncation to the slot counts)."""
    def count(types) -> np.ndarray:
        return np.bincount(event[np.isin(stype, types)], minlength=n)

    return ((count([0]) >= selection.min_leptons) & (count([2, 3]) >= selection.min_jets)
            & (count([2]) >= selection.min_bjets))


def _jet_btag(cols, selection: SlotSelection, off: np.ndarray, kin: dict[str, np.ndarray], seed: int) -> np.ndarray:
    """int8 [n_jets]: the record's ``jets.btag``, or the catalog efficiency on the truth flavour (paper graph)."""
    if selection.btag == "record" or (selection.btag == "auto" and "jets/btag" in cols):
        if "jets/btag" not in cols:
            raise HepfmError("representation 'slots': btag='record' but the record has no jets.btag")
        return np.asarray(cols["jets/btag"], np.int8)
    from hepfm_data.kernels.btag import btag_decisions, efficiency_table, seed_key
    from hepfm_data.kernels.selection import jet_flavour

    t_off = counts_to_offsets(np.asarray(cols["truth/n"], np.int64))
    flav = jet_flavour(kin["eta"], kin["phi"], off,
                       np.asarray(cols["truth/pid"], np.int32), _flat(cols, "truth", "eta", np.float32),
                       _flat(cols, "truth", "phi", np.float32), t_off, float(selection.btag_params.match_dr))
    return btag_decisions(flav, kin["pt"], off, np.ascontiguousarray(cols["event_id"], np.uint64),
                          efficiency_table(selection.btag_params), seed_key(seed))


@dataclass
class SlotWindow:
    """Events of one window in stream order with their slot objects."""

    event_id: np.ndarray  # [n] int64
    weight: np.ndarray  # [n] float32
    label: np.ndarray  # [n] int64
    objects: SlotObjects  # grouped by event in stream order
    selects: bool = False  # the selection has event requirements (batches carry ``selected``)

    @property
    def offsets(self) -> np.ndarray:  # the window contract: per-event sizes (here objects)
        return counts_to_offsets(self.objects.counts)

    def __len__(self) -> int:
        return len(self.event_id)


@dataclass(frozen=True, repr=False)
class SlotRepresentation(Representation):
    """:class:`SlotBatch` batches from the stored record (module docstring). ``selection``: the object
    selection (None: the paper's cuts of the dataset's catalog, :meth:`SlotSelection.from_catalog`);
    ``pretext``: e.g. :class:`~hepfm_data.batches.slots.ObjectReplacement`, applied after the dataset's
    ``augment``; ``multilabels`` stay None (the SPEC §4 labels live in the paper graph's shards)."""

    selection: SlotSelection | None = None
    pretext: Any = None
    layout: SlotLayout = SlotLayout()
    name: str = "slots"
    version: int = 1
    doc: str = "typed object slots (SPEC §7.3): 4 leptons, 4 τ, 4 b-jets, 8 light jets, MET; masses from the record"

    batch_type = SlotBatch
    options = frozenset({"augment"})

    def selection_for(self, catalog: Catalog) -> SlotSelection:
        return self.selection if self.selection is not None else SlotSelection.from_catalog(catalog)

    def definition(self, catalog: Catalog) -> dict[str, Any]:
        import dataclasses

        return {"selection": dataclasses.asdict(self.selection_for(catalog)),
                "layout": dataclasses.asdict(self.layout), "pretext": repr(self.pretext)}

    @property
    def inputs(self) -> tuple[str, ...]:  # the fields of the paper's cuts, a record with a b-tag
        from hepfm_data.core.catalog import load_catalog

        return tuple(self.required_inputs({"collections": {"jets": {"fields": {"btag": None}}}}, load_catalog()))

    def required_inputs(self, schema: dict[str, Any] | None, catalog: Catalog | None = None) -> list[str]:
        from hepfm_data.core.catalog import load_catalog

        return slot_inputs(self.selection_for(catalog or load_catalog()), self.layout, schema)

    @property
    def missing_hint(self) -> str:
        return " (give SlotLayout(n_tau=0) for a record without τ candidates)" if self.layout.n_tau else ""

    def read_window(self, src: WindowSource, blocks: Sequence[Block], perm: np.ndarray) -> SlotWindow:
        parts = [src.read_record(blk) for blk in blocks]
        sel = self.selection_for(src.catalog)
        objs = [slot_objects(p, sel, self.layout, btag_seed=src.stores[blk.source].manifest.btag_seed)
                for blk, p in zip(blocks, parts)]
        counts = np.concatenate([o.counts for o in objs])
        rows, off = gather_events(counts_to_offsets(counts), perm)
        cat = {k: np.concatenate([getattr(o, k) for o in objs]) for k in ("nodes", "mass", "slot")}
        eid = np.concatenate([p["event_id"] for p in parts]).astype(np.int64)
        weight = np.concatenate([p["weight"] * src.source_scale[blk.source] for blk, p in zip(blocks, parts)])
        label = np.concatenate([np.full(len(p["weight"]), src.source_labels[blk.source], np.int64)
                                for blk, p in zip(blocks, parts)])
        selected = np.concatenate([o.selected for o in objs])[perm]
        objects = SlotObjects(cat["nodes"][rows], cat["mass"][rows], cat["slot"][rows], np.diff(off), selected)
        return SlotWindow(eid[perm], weight.astype(np.float32)[perm], label[perm], objects, sel.selects_events)

    def empty_window(self, src: WindowSource) -> SlotWindow:
        return SlotWindow(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64),
                          SlotObjects(np.zeros((0, 7)), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64),
                                      np.zeros(0, bool)), self.selection_for(src.catalog).selects_events)

    def batch(self, src: WindowSource, win: SlotWindow, a: int, b: int, key: tuple) -> SlotBatch:
        off = win.offsets
        o0, o1 = int(off[a]), int(off[b])
        nodes, rel = win.objects.nodes[o0:o1], off[a:b + 1] - o0
        if src.augment is not None:
            nodes = src.augment(nodes, rel, batch_rng(key, AUGMENT_STREAM))
        out = slot_batch(nodes, win.objects.mass[o0:o1], win.objects.slot[o0:o1], rel, self.layout,
                         win.label[a:b], win.weight[a:b], win.event_id[a:b],
                         win.objects.selected[a:b] if win.selects else None)
        return out if self.pretext is None else self.pretext(out, batch_rng(key, TRANSFORM_STREAM))


def slot_batch(nodes: np.ndarray, mass: np.ndarray, slot: np.ndarray, offsets: np.ndarray, layout: SlotLayout,
               labels: np.ndarray, weights: np.ndarray, event_id: np.ndarray,
               selected: np.ndarray | None = None) -> SlotBatch:
    """The :class:`SlotBatch` of slot objects (packed ``nodes`` [M, 7], ``mass`` [M], ``slot`` [M], event
    ``offsets`` [B+1]) with per-event ``labels``, ``weights``, ``event_id`` [B] and, with an event
    selection, ``selected`` [B] bool (False: the event is kept in the batch, masked out)."""
    x, mask = slot_features(nodes, mass, slot, offsets, layout)
    b = x.shape[0]
    t = torch.from_numpy
    return SlotBatch(t(x), t(mask), t(np.ascontiguousarray(np.broadcast_to(layout.slot_types, (b, layout.n_slots)))),
                     t(np.ascontiguousarray(labels, np.int64)), t(np.ascontiguousarray(weights, np.float32)),
                     t(np.ascontiguousarray(event_id, np.int64)),
                     selected=None if selected is None else t(np.ascontiguousarray(selected, bool)))


SLOTS = SlotRepresentation()
