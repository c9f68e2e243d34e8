"""SlotBatch: typed object slots (Kishimoto et al., SPEC §7.3), a contract between data and models.

An event becomes a fixed number of typed slots, filled from the stored event record by
the ``slots`` representation (:mod:`hepfm_data.representations.slots`: selected objects with their masses)::

    slots [0, 4)    leptons (electrons and muons)   pT-ordered (descending) within the type
    slots [4, 8)    hadronic taus                    "
    slots [8, 12)   b-tagged jets                    "
    slots [12, 20)  light (not b-tagged) jets        "
    slot  20        MET

(the counts are a :class:`SlotLayout`; objects beyond a type's count are dropped).

================  ================  ==================================================
field             shape / dtype     meaning
================  ================  ==================================================
x                 [B, S, 11] f32    log(1 + E/GeV), eta, sin phi, cos phi,
                                    log(1 + m/GeV), charge, one-hot of the 5 slot types
                                    (lepton, tau, b-jet, light jet, MET); 0 in empty slots
mask              [B, S] bool       slot holds an object
slot_type         [B, S] int64      slot type of each slot (:data:`SLOT_TYPES` index)
labels            [B] int64         process / task label, or the pretext label
weights           [B] f32           per-event training weight
event_id          [B] int64         store event id
multilabels       [B, L] | None     SPEC §4 labels when read
replaced          [B] int64 | None  object replacement: the slot now holding the donor's
                                    object, -1 for none (:class:`ObjectReplacement`)
selected          [B] bool | None   the event passes the event selection (``graph_mask``);
                                    None: no event selection
================  ================  ==================================================

E = sqrt((pT cosh eta)^2 + m^2) with the record's mass (jets, τ) or the PDG mass (e, μ);
MET has eta = 0, m = 0 and E = its pT. log(1 + .) keeps empty slots finite (the paper's
"log of E and mass").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from hepfm_data.batches.base import TensorBatch, batch_type, map_tensors
from hepfm_data.batches.graph import CHARGE, ENERGY, ETA, N_NODE_FEATURES, PHI
from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import HepfmError

__all__ = ["SLOT_TYPES", "PRETEXT_CLASSES", "SlotLayout", "SlotBatch", "slot_features", "ObjectReplacement",
           "N_SLOT_FEATURES"]

#: slot types, in slot order (the index is ``slot_type`` and the one-hot position)
SLOT_TYPES = ("lepton", "tau", "bjet", "light", "met")
#: the object-replacement label: which slot type was replaced, or none (SPEC §7.3)
PRETEXT_CLASSES = (*SLOT_TYPES, "none")
NONE_CLASS = len(SLOT_TYPES)
#: features per slot: log E, eta, sin phi, cos phi, log m, charge, one-hot(5)
N_SLOT_FEATURES = 6 + len(SLOT_TYPES)
LOG_E, S_ETA, SIN_PHI, COS_PHI, LOG_M, S_CHARGE = range(6)


@dataclass(frozen=True)
class SlotLayout:
    """Slots per type (SPEC §7.3 defaults: 4 leptons, 4 τ, 4 b-jets, 8 light jets, 1 MET)."""

    n_lepton: int = 4
    n_tau: int = 4
    n_bjet: int = 4
    n_light: int = 8
    n_met: int = 1

    def __post_init__(self):
        for name, n in zip(SLOT_TYPES, self.counts):
            if n < 0 or (name == "met" and n not in (0, 1)):
                raise HepfmError(f"SlotLayout: n_{name} = {n} (counts are >= 0; MET has 0 or 1 slot)")
        if self.n_slots == 0:
            raise HepfmError("SlotLayout: every count is 0")

    @property
    def counts(self) -> tuple[int, ...]:
        return (self.n_lepton, self.n_tau, self.n_bjet, self.n_light, self.n_met)

    @property
    def n_slots(self) -> int:
        return sum(self.counts)

    @property
    def starts(self) -> np.ndarray:
        """[5] first slot of each type."""
        return counts_to_offsets(np.asarray(self.counts, np.int64))[:-1]

    @property
    def slot_types(self) -> np.ndarray:
        """[S] int64 slot type of every slot."""
        return np.repeat(np.arange(len(SLOT_TYPES), dtype=np.int64), self.counts)


def slot_features(nodes: np.ndarray, mass: np.ndarray, slot: np.ndarray, offsets: np.ndarray,
                  layout: SlotLayout = SlotLayout()) -> tuple[np.ndarray, np.ndarray]:
    """(x [B, S, 11] float32, mask [B, S] bool) of slot objects: packed ``nodes`` [M, 7] (pt GeV, eta,
    phi rad, E GeV, btag, charge, type; e.g. augmented), their ``mass`` [M] GeV and ``slot`` [M]
    index (each used at most once per event), grouped by event with ``offsets`` [B+1]."""
    nodes = np.asarray(nodes)
    offsets = np.asarray(offsets, np.int64)
    if nodes.ndim != 2 or nodes.shape[1] != N_NODE_FEATURES or mass.shape != (nodes.shape[0],) \
            or slot.shape != mass.shape:
        raise HepfmError(f"slot_features: nodes [M, {N_NODE_FEATURES}], mass [M] and slot [M], got "
                         f"{nodes.shape}, {mass.shape}, {slot.shape}")
    if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets[0] != 0 or offsets[-1] != nodes.shape[0] \
            or (np.diff(offsets) < 0).any():
        raise HepfmError(f"slot_features: offsets must rise from 0 to the {nodes.shape[0]} objects")
    if slot.size and (slot.min() < 0 or slot.max() >= layout.n_slots):
        raise HepfmError(f"slot_features: slot indices outside [0, {layout.n_slots})")
    b, m = offsets.shape[0] - 1, nodes.shape[0]
    ev = np.repeat(np.arange(b, dtype=np.int64), np.diff(offsets))
    st = layout.slot_types[slot]
    n = nodes.astype(np.float64, copy=False)
    feats = np.zeros((m, N_SLOT_FEATURES), np.float64)
    feats[:, LOG_E] = np.log1p(np.clip(n[:, ENERGY], 0.0, None))
    feats[:, S_ETA] = n[:, ETA]
    feats[:, SIN_PHI] = np.sin(n[:, PHI])
    feats[:, COS_PHI] = np.cos(n[:, PHI])
    feats[:, LOG_M] = np.log1p(np.clip(mass, 0.0, None))
    feats[:, S_CHARGE] = np.where(st <= 1, n[:, CHARGE], 0.0)  # leptons and taus
    feats[np.arange(m), 6 + st] = 1.0
    x = np.zeros((b, layout.n_slots, N_SLOT_FEATURES), np.float32)
    mask = np.zeros((b, layout.n_slots), bool)
    x[ev, slot] = feats
    mask[ev, slot] = True
    return x, mask


def slot_pt(x: np.ndarray) -> np.ndarray:
    """pT (GeV) of slot features ``x`` [..., 11]: sqrt(E^2 - m^2) / cosh eta (the ordering key)."""
    e, m = np.expm1(x[..., LOG_E].astype(np.float64)), np.expm1(x[..., LOG_M].astype(np.float64))
    return np.sqrt(np.clip(e * e - m * m, 0.0, None)) / np.cosh(x[..., S_ETA].astype(np.float64))


@batch_type("slots")
@dataclass
class SlotBatch(TensorBatch):
    """``B`` events as typed slots (shapes in the module docstring)."""

    x: torch.Tensor
    mask: torch.Tensor
    slot_type: torch.Tensor
    labels: torch.Tensor
    weights: torch.Tensor
    event_id: torch.Tensor
    multilabels: torch.Tensor | None = None
    replaced: torch.Tensor | None = None
    selected: torch.Tensor | None = None

    @property
    def n_graph(self) -> int:
        return int(self.x.shape[0])

    @property
    def graph_mask(self) -> torch.Tensor:
        """[B] bool: the events that pass the event selection (``selected``; all True without one).
        The training engine and the losses read it: a masked event counts nowhere."""
        if self.selected is not None:
            return self.selected
        return torch.ones(self.x.shape[0], dtype=torch.bool, device=self.x.device)

    def select(self, idx: torch.Tensor) -> SlotBatch:
        """Events ``idx`` [b] (int), in that order."""
        return map_tensors(self, lambda t: t[idx])

    @classmethod
    def concat(cls, batches: list[SlotBatch]) -> SlotBatch:
        if not batches:
            raise HepfmError("SlotBatch.concat: no batches")
        out = {}
        for f in dataclasses.fields(cls):
            parts = [getattr(b, f.name) for b in batches]
            out[f.name] = None if any(p is None for p in parts) else torch.cat(parts)
        return cls(**out)


@dataclass(frozen=True)
class ObjectReplacement:
    """The object-replacement pretext task (Kishimoto et al., SPEC §7.3) on slot arrays.

    Per event: with probability ``p_none`` nothing changes (label ``none``); otherwise a slot
    type is drawn uniformly from ``types`` and one object of that type (uniform among the
    event's filled slots of the type) is replaced by an object of the same type (uniform
    among the filled slots) of another event of the batch (uniform among those having one).
    The type block is then re-sorted by pT, so the slot order gives nothing away
    (``resort=False`` keeps the donor in the replaced slot).

    ``empty`` — when the drawn type has no object in the event, or no other event of the batch
    has one: ``"redraw"`` draws among the types that are possible for this event (label
    ``none`` when there are none); ``"none"`` leaves the event unchanged with label ``none``.

    ``labels`` become the :data:`PRETEXT_CLASSES` index (6 classes); ``replaced`` the slot
    holding the donor's object (-1 for none). All draws come from ``rng`` (the loader seeds it
    from (seed, epoch, rank, batch)), vectorised over the batch.
    """

    p_none: float = 1.0 / len(PRETEXT_CLASSES)
    types: tuple[str, ...] = SLOT_TYPES
    empty: str = "redraw"
    resort: bool = True

    def __post_init__(self):
        if not 0.0 <= self.p_none <= 1.0:
            raise HepfmError(f"ObjectReplacement: p_none = {self.p_none} is not a probability")
        bad = [t for t in self.types if t not in SLOT_TYPES]
        if bad or not self.types:
            raise HepfmError(f"ObjectReplacement: types {list(self.types)}: each one of {SLOT_TYPES}")
        if self.empty not in ("redraw", "none"):
            raise HepfmError(f"ObjectReplacement: empty must be 'redraw' or 'none', got {self.empty!r}")

    def arrays(self, x: np.ndarray, mask: np.ndarray, slot_type: np.ndarray, rng: np.random.Generator,
               events: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(new x, new mask, label [B] int64, replaced slot [B] int64) of ``x`` [B, S, F], ``mask`` [B, S],
        ``slot_type`` [S]; ``events`` [B] bool: the selected events (only they give and receive
        objects; the others keep label none); inputs are not modified."""
        b, s = mask.shape
        n_types = len(SLOT_TYPES)
        allowed = np.isin(np.arange(n_types), [SLOT_TYPES.index(t) for t in self.types])
        onehot = slot_type[None, :] == np.arange(n_types)[:, None]  # [T, S]
        filled = (mask[:, None, :] & onehot[None]).sum(-1)  # [B, T] objects per type
        if events is not None:
            filled = filled * np.asarray(events, bool)[:, None]
        holders = (filled > 0).sum(0)  # [T] events having the type
        # a donor exists for event i and type t when another event has that type
        possible = (filled > 0) & ((holders[None, :] - (filled > 0)) > 0) & allowed[None, :]
        u_none, u_type, u_slot, u_donor, u_dslot = (rng.random(b) for _ in range(5))
        draw_none = u_none < self.p_none
        if self.empty == "redraw":
            n_poss = possible.sum(1)
            k = np.minimum((u_type * n_poss).astype(np.int64), np.maximum(n_poss - 1, 0))
            cum = np.cumsum(possible, 1)
            t = np.argmax(cum > k[:, None], axis=1)
            ok = ~draw_none & (n_poss > 0)
        else:
            choices = np.flatnonzero(allowed)
            t = choices[np.minimum((u_type * choices.size).astype(np.int64), choices.size - 1)]
            ok = ~draw_none & possible[np.arange(b), t]
        label = np.where(ok, t, NONE_CLASS).astype(np.int64)
        replaced = np.full(b, -1, np.int64)
        x, mask = x.copy(), mask.copy()
        rows = np.flatnonzero(ok)
        if rows.size == 0:
            return x, mask, label, replaced
        tt = t[rows]
        starts = np.r_[0, np.cumsum(onehot.sum(1))][:-1]
        # the replaced object: the j-th filled slot of the type (slots are filled from the block start)
        nf = filled[rows, tt]
        slot = starts[tt] + np.minimum((u_slot[rows] * nf).astype(np.int64), nf - 1)
        # the donor: uniform among the other events holding the type (a loop over types, not events)
        donor = np.empty(rows.size, np.int64)
        for typ in np.unique(tt):
            sel = tt == typ
            holders_t = np.flatnonzero(filled[:, typ] > 0)  # includes each replaced event itself
            own = np.searchsorted(holders_t, rows[sel])
            kd = np.minimum((u_donor[rows[sel]] * (holders_t.size - 1)).astype(np.int64), holders_t.size - 2)
            donor[sel] = holders_t[kd + (kd >= own)]
        nfd = filled[donor, tt]
        dslot = starts[tt] + np.minimum((u_dslot[rows] * nfd).astype(np.int64), nfd - 1)
        x[rows, slot] = x[donor, dslot]
        replaced[rows] = slot
        if self.resort:
            x, replaced = _resort(x, mask, slot_type, rows, tt, starts, onehot.sum(1), replaced)
        return x, mask, label, replaced

    def __call__(self, batch: SlotBatch, rng: np.random.Generator) -> SlotBatch:
        """The pretext batch of ``batch`` (CPU tensors): labels = replaced type or none."""
        if batch.n_graph == 0:
            return dataclasses.replace(batch, replaced=torch.zeros(0, dtype=torch.int64))
        events = None if batch.selected is None else batch.selected.numpy()
        x, mask, label, replaced = self.arrays(batch.x.numpy(), batch.mask.numpy(), batch.slot_type[0].numpy(), rng,
                                               events)
        return dataclasses.replace(batch, x=torch.from_numpy(x), mask=torch.from_numpy(mask),
                                   labels=torch.from_numpy(label), replaced=torch.from_numpy(replaced))


def _resort(x, mask, slot_type, rows, tt, starts, counts, replaced):
    """Re-sort the replaced type block of events ``rows`` by descending pT (filled slots first,
    ties in stored order); returns (x, replaced) with ``replaced`` following the donor's object."""
    width = int(counts[tt].max())
    j = np.arange(width)[None, :]
    valid = j < counts[tt][:, None]  # [r, W]
    cols = starts[tt][:, None] + np.where(valid, j, 0)
    r = rows[:, None]
    key = np.where(valid & mask[r, cols], slot_pt(x[r, cols]), -np.inf)
    order = np.argsort(-key, axis=1, kind="stable")  # a block's valid positions come first
    block = np.take_along_axis(x[r, cols], order[..., None], 1)
    for k in range(width):  # at most the largest type count: a loop over slots, not events
        sel = valid[:, k]
        x[rows[sel], cols[sel, k]] = block[sel, k]
    replaced = replaced.copy()
    replaced[rows] = starts[tt] + np.argmax(order == (replaced[rows] - starts[tt])[:, None], axis=1)
    return x, replaced
