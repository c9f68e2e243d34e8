"""ConstituentBatcher: point-cloud batches of large-R jet constituents (:class:`~hepfm_data.batches.pointcloud.PointCloudBatch`).

A :class:`~.builders.BatchBuilder` like ``NodeBatcher``: the sampler plans events (so the
exactly-once, resume and rank x worker guarantees are the graph loader's); this builder
reads the *record* shards paired with the planned shards (``fatjets`` and
``fatjets.constituents``), selects jets by the point-cloud representation's cuts, computes
the 15 RS3L constituent features once per window and packs ``[a, b)`` into a batch:

>>> loader = make_loader(stores, batch_size=256, builder=ConstituentBatcher("jet_constituents"))  # doctest: +SKIP

``jet_constituents``: each batch holds the selected jets of its events (``B`` varies);
``event_jets``: one row per event, ``[B, J, P, F]``. Batching is by event count
(``batch_size``); node budgets (``max_nodes``) are not supported here. Stores without the
collections fail at the first window with the store and the missing collection named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hepfm_data.batches.host import gather_events
from hepfm_data.batches.pointcloud import PointCloudBatch, PointCloudSpec, check_point_cloud_inputs, get_point_cloud
from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import HepfmError, StoreError
from hepfm_data.kernels.constituents import CONSTITUENT_FEATURES, JET_FEATURES, constituent_features, pad_points, select_jets
from hepfm_data.representations.nodes import Block

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.loader.dataset import StreamingDataset

__all__ = ["ConstituentBatcher", "ConstituentWindow", "jet_fields"]

_J, _C = "fatjets", "fatjets.constituents"


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
    def offsets(self) -> np.ndarray:  # the BatchBuilder window contract: per-event sizes (here jets)
        return self.jet_offsets

    def __len__(self) -> int:
        return len(self.event_id)


def jet_fields(win: ConstituentWindow, rows: np.ndarray, events: np.ndarray) -> dict[str, np.ndarray]:
    """PointCloudBatch fields (``jet_constituents`` layout) of the selected jets ``rows`` [m] of ``win``,
    with the event columns of window positions ``events`` [m]."""
    return {"points": win.points[rows], "mask": win.mask[rows], "jets": win.jets[rows],
            "jet_labels": win.jet_labels[rows], "labels": win.label[events], "weights": win.weight[events],
            "event_id": win.event_id[events], "jet_index": win.jet_index[rows]}


@dataclass
class ConstituentBatcher:
    """Point-cloud batches of representation ``spec`` (a name in ``pointcloud.POINT_CLOUDS`` or a spec)."""

    spec: str | PointCloudSpec = "jet_constituents"
    _checked: set = field(default_factory=set, repr=False)

    def __post_init__(self):
        self.spec = get_point_cloud(self.spec)

    def _check(self, ds: StreamingDataset, source: int) -> None:
        if ds.sampler.batch.needs_sizes:
            raise HepfmError(f"ConstituentBatcher ({self.spec.name}) batches by event count: give batch_size, "
                             f"not max_nodes / max_edges (those budget the paper graph's nodes)")
        if source not in self._checked:
            store = ds._stores[source]
            if not store.has_record:
                raise StoreError(f"{store.url}: representation {self.spec.name!r} reads the stored event record, "
                                 f"which this store lacks (rebuild it with this hepfm)")
            check_point_cloud_inputs(store, self.spec)
            self._checked.add(source)

    def _block(self, ds: StreamingDataset, blk: Block, store: Any = None) -> dict[str, np.ndarray]:
        """Record columns of ``blk`` from the dataset's store (or from ``store``, e.g. an aligned view of it)."""
        self._check(ds, blk.source)
        if store is None:
            store, info = ds._stores[blk.source], ds._infos[blk.source][blk.shard]
        else:
            check_point_cloud_inputs(store, self.spec)
            info = store.shards(ds.split)[blk.shard]
        cols = store.read_record(info, blk.start, blk.stop)
        if cols["event_id"].shape[0] != blk.stop - blk.start:
            raise StoreError(f"{store.url}: record shard of {info.path} gave {cols['event_id'].shape[0]} events "
                             f"for rows [{blk.start}, {blk.stop})")
        return cols

    def read_parts(self, ds: StreamingDataset, blocks: Sequence[Block], stores: Sequence[Any] | None = None
                   ) -> list[dict[str, np.ndarray]]:
        """Record columns of each block; ``stores[source]`` replaces the dataset's store of that source."""
        return [self._block(ds, blk, None if stores is None else stores[blk.source]) for blk in blocks]

    def read_window(self, ds: StreamingDataset, blocks: Sequence[Block], perm: np.ndarray) -> ConstituentWindow:
        return self.window(ds, blocks, self.read_parts(ds, blocks), perm)

    def window(self, ds: StreamingDataset, blocks: Sequence[Block], parts: Sequence[dict[str, np.ndarray]],
               perm: np.ndarray) -> ConstituentWindow:
        """The :class:`ConstituentWindow` of ``parts`` (record columns per block) permuted into stream order."""
        s = self.spec
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
        weight = np.concatenate([p["weight"] * ds.source_scale[blk.source] for blk, p in zip(blocks, parts)])
        label = np.concatenate([np.full(len(p["weight"]), ds.source_labels[blk.source], np.int64)
                                for blk, p in zip(blocks, parts)])
        return ConstituentWindow(cat["event_id"].astype(np.int64)[perm], weight.astype(np.float32)[perm], label[perm],
                                 sel_off, points, mask, jet_feats, jet_labels, jet_index.astype(np.int64))

    def empty_window(self, ds: StreamingDataset) -> ConstituentWindow:
        p, f = self.spec.max_constituents, len(CONSTITUENT_FEATURES)
        return ConstituentWindow(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64),
                                 np.zeros(1, np.int64), np.zeros((0, p, f), np.float32), np.zeros((0, p), bool),
                                 np.zeros((0, len(JET_FEATURES)), np.float32), np.zeros(0, np.int64),
                                 np.zeros(0, np.int64))

    def batch(self, ds: StreamingDataset, win: ConstituentWindow, a: int, b: int, key: tuple) -> PointCloudBatch:
        j0, j1 = int(win.jet_offsets[a]), int(win.jet_offsets[b])
        t = torch.from_numpy
        if self.spec.unit == "jet":
            counts = np.diff(win.jet_offsets[a:b + 1])
            ev = np.repeat(np.arange(a, b), counts)
            return PointCloudBatch(**{k: t(v) for k, v in jet_fields(win, np.arange(j0, j1), ev).items()})
        n, jmax = b - a, self.spec.max_jets
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

    def finish(self, ds: StreamingDataset, item: Any, device: torch.device) -> PointCloudBatch:
        if not isinstance(item, PointCloudBatch):
            raise HepfmError(f"ConstituentBatcher got a {type(item).__name__}, expected a PointCloudBatch")
        return item.to(device, non_blocking=True) if item.device != torch.device(device) else item
