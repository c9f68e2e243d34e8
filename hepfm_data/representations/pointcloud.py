"""Point-cloud representations: padded large-R jet constituents (:class:`~hepfm_data.batches.PointCloudBatch`)
computed from the stored record in the loader's workers.

:class:`PointCloudRepresentation` is the class of ``jet_constituents`` (RS3L: one example per selected
large-R jet) and ``event_jets`` (Vigl et al.: one example per event, its leading jets), one file each.
It reads the *record* shards paired with the planned shards (``fatjets`` and ``fatjets.constituents``),
selects jets by its cuts, computes the 15 RS3L constituent features once per window and packs ``[a, b)``
into a batch. ``jet_constituents``: each batch holds the selected jets of its events (``B`` varies);
``event_jets``: one row per event, ``[B, J, P, F]``. Batching is by event count (``batch_size``); node
budgets and the graph augmentations are refused by name. Custom cuts: ``dataclasses.replace(
JET_CONSTITUENTS, name=..., pt_min=...)`` (a new name: its fingerprint differs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hepfm_data.batches.host import gather_events
from hepfm_data.batches.pointcloud import PointCloudBatch, PointCloudPairs
from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import HepfmError
from hepfm_data.kernels.constituents import (
    CONSTITUENT_FEATURES,
    JET_FEATURES,
    constituent_features,
    match_jets,
    pad_points,
    select_jets,
)
from hepfm_data.representations.base import Block, Representation

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.core.catalog import Catalog
    from hepfm_data.representations.base import WindowSource

__all__ = ["PointCloudRepresentation", "ConstituentWindow", "jet_fields", "POINT_CLOUD_INPUTS"]

_J, _C = "fatjets", "fatjets.constituents"
#: record fields read (``collection.field``)
POINT_CLOUD_INPUTS = (*(f"fatjets.{k}" for k in ("pt", "eta", "phi", "mass", "sd_mass", "n2")),
                      *(f"fatjets.constituents.{k}" for k in ("pt", "eta", "phi", "energy", "charge", "kind", "d0",
                                                              "dz")),
                      "event_id", "weight")


@dataclass
class ConstituentWindow:
    """Events of one window in stream order with their selected jets (padded constituents computed)."""

    event_id: np.ndarray  # [n] int64
    weight: np.ndarray  # [n] float32
    label: np.ndarray  # [n] int64
    jet_offsets: np.ndarray  # [n+1] int64 into the selected jets
    points: np.ndarray  # [Nj, P, F] float32
    mask: np.ndarray  # [Nj, P] bool
    jets: np.ndarray  # [Nj, 6] float32
    jet_labels: np.ndarray  # [Nj] int64
    jet_index: np.ndarray  # [Nj] int64

    @property
    def offsets(self) -> np.ndarray:  # the window contract: per-event sizes (here jets)
        return self.jet_offsets

    def __len__(self) -> int:
        return len(self.event_id)


def jet_fields(win: ConstituentWindow, rows: np.ndarray, events: np.ndarray) -> dict[str, np.ndarray]:
    """PointCloudBatch fields (``jet_constituents`` layout) of the selected jets ``rows`` [m] of ``win``,
    with the event columns of window positions ``events`` [m]."""
    return {"points": win.points[rows], "mask": win.mask[rows], "jets": win.jets[rows],
            "jet_labels": win.jet_labels[rows], "labels": win.label[events], "weights": win.weight[events],
            "event_id": win.event_id[events], "jet_index": win.jet_index[rows]}


@dataclass(frozen=True, repr=False)
class PointCloudRepresentation(Representation):
    """A point-cloud representation: the unit (``jet`` or ``event``), jet cuts (GeV), sizes."""

    name: str
    version: int
    unit: str  # "jet" | "event"
    pt_min: float
    abs_eta_max: float
    mass_min: float
    max_constituents: int = 100
    max_jets: int | None = None  # per event ("event" unit)
    doc: str = ""
    inputs: tuple[str, ...] = POINT_CLOUD_INPUTS
    #: the jet-matching radius of view pairs (half the jet radius: the match is unique)
    dr_max: float = 0.4

    batch_type = PointCloudBatch
    pair_batch_type = PointCloudPairs
    missing_hint = (": its input has no particle-flow candidates / large-R jets (Delphes EFlowTrack, EFlowPhoton, "
                    "EFlowNeutralHadron, FatJet; generation with particle_flow: true)")

    def __post_init__(self):
        if self.unit not in ("jet", "event"):
            raise HepfmError(f"representation {self.name!r}: unit must be 'jet' or 'event', got {self.unit!r}")
        if self.unit == "event" and not self.max_jets:
            raise HepfmError(f"representation {self.name!r}: unit 'event' needs max_jets")

    def definition(self, catalog: Catalog) -> dict[str, Any]:
        return {"unit": self.unit, "pt_min": self.pt_min, "abs_eta_max": self.abs_eta_max, "mass_min": self.mass_min,
                "max_constituents": self.max_constituents, "max_jets": self.max_jets,
                "features": list(CONSTITUENT_FEATURES), "jet_features": list(JET_FEATURES)}

    def read_parts(self, src: WindowSource, blocks: Sequence[Block], stores: Sequence[Any] | None = None
                   ) -> list[dict[str, np.ndarray]]:
        """Record columns of each block; ``stores[source]`` replaces the dataset's store (an aligned view)."""
        return [src.read_record(blk, None if stores is None else stores[blk.source]) for blk in blocks]

    def event_ids(self, part) -> np.ndarray:
        return part["event_id"]

    def read_window(self, src: WindowSource, blocks: Sequence[Block], perm: np.ndarray) -> ConstituentWindow:
        return self.window(src, blocks, self.read_parts(src, blocks), perm)

    def window(self, src: WindowSource, blocks: Sequence[Block], parts: Sequence[dict[str, np.ndarray]],
               perm: np.ndarray) -> ConstituentWindow:
        """The :class:`ConstituentWindow` of ``parts`` (record columns per block) permuted into stream order."""
        s = self
        cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
        n_jet = cat[f"{_J}/n"].astype(np.int64)
        jet_off = counts_to_offsets(n_jet)
        jet = {k: cat[f"{_J}/{k}"].astype(np.float64) for k in ("pt", "eta", "phi", "mass")}
        keep = select_jets(jet["pt"], jet["eta"], jet["mass"], jet_off, pt_min=s.pt_min, abs_eta_max=s.abs_eta_max,
                           mass_min=s.mass_min, max_jets=s.max_jets)
        # selected jets per event, then events permuted into stream order
        event_of_jet = np.repeat(np.arange(n_jet.size), n_jet)
        sel_counts = np.bincount(event_of_jet[keep], minlength=n_jet.size).astype(np.int64)
        sel_rows = np.flatnonzero(keep)  # jet rows (window order) of the selected jets, grouped by event
        rows, sel_off = gather_events(counts_to_offsets(sel_counts), perm)
        jet_rows = sel_rows[rows]  # selected jets in stream order
        c_off_all = counts_to_offsets(cat[f"{_C}/n"].astype(np.int64))
        c_rows, c_off = gather_events(c_off_all, jet_rows)
        const = {k: cat[f"{_C}/{k}"][c_rows] for k in ("pt", "eta", "phi", "energy", "charge", "kind", "d0", "dz")}
        const = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in const.items()}
        sj = {k: v[jet_rows] for k, v in jet.items()}
        jet_of = np.repeat(np.arange(jet_rows.size), np.diff(c_off))
        feats = constituent_features(const, sj, jet_of)
        points, mask = pad_points(feats, const["pt"], c_off, s.max_constituents)
        jet_feats = np.stack([cat[f"{_J}/{k}"][jet_rows].astype(np.float32) for k in JET_FEATURES], axis=1) \
            if jet_rows.size else np.zeros((0, len(JET_FEATURES)), np.float32)
        tl = cat.get(f"{_J}/truth_label")
        jet_labels = tl[jet_rows].astype(np.int64) if tl is not None else np.full(jet_rows.size, -1, np.int64)
        jet_index = jet_rows - jet_off[event_of_jet[jet_rows]]
        weight = np.concatenate([p["weight"] * src.source_scale[blk.source] for blk, p in zip(blocks, parts)])
        label = np.concatenate([np.full(len(p["weight"]), src.source_labels[blk.source], np.int64)
                                for blk, p in zip(blocks, parts)])
        return ConstituentWindow(cat["event_id"].astype(np.int64)[perm], weight.astype(np.float32)[perm], label[perm],
                                 sel_off, points, mask, jet_feats, jet_labels, jet_index.astype(np.int64))

    def empty_window(self, src: WindowSource) -> ConstituentWindow:
        p, f = self.max_constituents, len(CONSTITUENT_FEATURES)
        return ConstituentWindow(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64),
                                 np.zeros(1, np.int64), np.zeros((0, p, f), np.float32), np.zeros((0, p), bool),
                                 np.zeros((0, len(JET_FEATURES)), np.float32), np.zeros(0, np.int64),
                                 np.zeros(0, np.int64))

    def batch(self, src: WindowSource, win: ConstituentWindow, a: int, b: int, key: tuple) -> PointCloudBatch:
        j0, j1 = int(win.jet_offsets[a]), int(win.jet_offsets[b])
        t = torch.from_numpy
        if self.unit == "jet":
            counts = np.diff(win.jet_offsets[a:b + 1])
            ev = np.repeat(np.arange(a, b), counts)
            return PointCloudBatch(**{k: t(v) for k, v in jet_fields(win, np.arange(j0, j1), ev).items()})
        n, jmax = b - a, self.max_jets
        p, f = win.points.shape[1], win.points.shape[2]
        points = np.zeros((n, jmax, p, f), np.float32)
        mask = np.zeros((n, jmax, p), bool)
        jets = np.zeros((n, jmax, len(JET_FEATURES)), np.float32)
        jet_mask = np.zeros((n, jmax), bool)
        jet_labels = np.full((n, jmax), -1, np.int64)
        counts = np.diff(win.jet_offsets[a:b + 1])
        ev = np.repeat(np.arange(n), counts)
        slot = np.arange(j1 - j0) - (win.jet_offsets[a:b] - j0)[ev] if j1 > j0 else np.zeros(0, np.int64)
        points[ev, slot], mask[ev, slot] = win.points[j0:j1], win.mask[j0:j1]
        jets[ev, slot], jet_mask[ev, slot], jet_labels[ev, slot] = win.jets[j0:j1], True, win.jet_labels[j0:j1]
        return PointCloudBatch(points=t(points), mask=t(mask), jets=t(jets), jet_labels=t(jet_labels),
                               labels=t(win.label[a:b].copy()), weights=t(win.weight[a:b].copy()),
                               event_id=t(win.event_id[a:b].copy()), jet_mask=t(jet_mask))

    # ------------------------------------------------------------------ view pairs (representations.pairs)
    def match_views(self, nominal: ConstituentWindow, views: list[ConstituentWindow]) -> np.ndarray:
        """[K, Nj]: index of each selected nominal jet's partner among view k's selected jets, -1 for none.

        The jets of a view are not those of the nominal event (the shower differs, so a view may select
        more, fewer or other jets): the partner of a nominal jet in view k is the selected jet of the same
        event in view k nearest in ΔR to the nominal jet axis, if ΔR < ``dr_max``."""
        if self.unit != "jet":
            raise HepfmError(f"view pairs of {self.name!r}: pairs are jets, and this representation has unit "
                             f"{self.unit!r}, not 'jet'")
        match = [match_jets(nominal.jets[:, 1], nominal.jets[:, 2], nominal.jet_offsets, v.jets[:, 1], v.jets[:, 2],
                            v.jet_offsets, self.dr_max) for v in views]
        return np.stack(match) if match else np.zeros((0, len(nominal.jets)), np.int64)

    def pair_batch(self, src: WindowSource, nominal: ConstituentWindow, views: list[ConstituentWindow],
                   match: np.ndarray, a: int, b: int, key: tuple, choice: np.ndarray) -> PointCloudPairs:
        """Each selected nominal jet of events ``[a, b)`` then its partner in view ``choice`` of its event:
        a PointCloudPairs of 2m interleaved jets; jets without a partner are left out and counted in
        ``unpaired``."""
        j0, j1 = int(nominal.jet_offsets[a]), int(nominal.jet_offsets[b])
        ev = np.repeat(np.arange(a, b), np.diff(nominal.jet_offsets[a:b + 1]))  # window position of each jet
        rows = np.arange(j0, j1)
        k = choice[ev - a]
        partner = match[k, rows] if rows.size else np.zeros(0, np.int64)
        ok = partner >= 0
        rows, ev, k, partner = rows[ok], ev[ok], k[ok], partner[ok]
        first = jet_fields(nominal, rows, ev)
        second = {f: np.empty_like(x) for f, x in first.items()}
        for kk, v in enumerate(views):
            sel = k == kk
            for f, x in jet_fields(v, partner[sel], ev[sel]).items():
                second[f][sel] = x
        out = {}
        for f, x in first.items():
            y = np.empty((2 * len(x), *x.shape[1:]), x.dtype)
            y[0::2], y[1::2] = x, (first[f] if f in ("labels", "weights", "event_id") else second[f])
            out[f] = torch.from_numpy(y)
        view = np.full(2 * rows.size, -1, np.int64)
        view[1::2] = k
        return PointCloudPairs(**out, view=torch.from_numpy(view),
                               unpaired=torch.tensor([int((~ok).sum())], dtype=torch.int64))
