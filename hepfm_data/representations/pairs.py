"""Nominal / re-simulated view pairs (RS3L): a batch builder for contrastive pretraining.

:class:`ViewPairBatcher` plugs into ``StreamingDataset(builder=...)`` / ``make_loader(builder=...)``.
The sampler plans the **nominal** events exactly as for any loader (each nominal event exactly
once per epoch, rank x worker partition, resume); for every planned block the builder also reads
the same rows of each aligned view store (``hepfm_data.pipelines.resimulate``: same shards, same event ids,
checked on every read), and each batch of ``b`` nominal events becomes ``2b`` events,
interleaved ``nominal_0, view_0, nominal_1, view_1, ...``: event ``2i + 1`` is event ``2i``
re-simulated, its view drawn uniformly from the K views with the batch's generator
(``batch_rng(key, PAIR_STREAM)``, key = seed, epoch, level, rank, batch id), so the batches are
the same bytes whatever the number of workers.

Batches are :class:`ViewPairs` (a HostBatch with ``view`` [2b]: -1 for nominal events, else the
index into ``views``) in workers, and a :class:`~hepfm_data.batches.graph.GraphBatch` on the device (the
contract; pairs by position).

:class:`ConstituentPairBatcher` does the same for large-R jets (``jet_constituents``): each selected
nominal jet with the ΔR-matched selected jet of the same event in one view (its docstring says how
jets that differ across views are paired), as :class:`PointCloudPairs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hepfm_data.batches.host import ViewPairs, gather_events
from hepfm_data.batches.pointcloud import PointCloudPairs, PointCloudSpec
from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import HepfmError, StoreError
from hepfm_data.kernels.constituents import match_jets
from hepfm_data.representations.nodes import AUGMENT_STREAM, Block, NodeBatcher, NodeWindow, batch_rng, node_window, read_blocks
from hepfm_data.representations.pointcloud import ConstituentBatcher, ConstituentWindow, jet_fields

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.loader.dataset import StreamingDataset

__all__ = ["ViewPairBatcher", "ViewPairs", "ConstituentPairBatcher", "PointCloudPairs", "PAIR_STREAM"]

PAIR_STREAM = 4  # rng stream of the view choice (builders: 2 augmentations, 3 transforms)




@dataclass
class _PairWindow:
    nominal: NodeWindow
    views: list[NodeWindow]  # one per view, same events in the same stream order

    def __len__(self) -> int:
        return len(self.nominal)


class _Views:
    """The aligned view stores of each nominal store of a dataset (shared by the pair builders).

    ``views``: ``{nominal store URL or index in the dataset's stores: [view store URL, ...]}`` or,
    for one nominal store, a plain list; ``names`` label them (default: the view stores' generator
    ``view`` provenance). Every nominal store of the dataset needs the same number of views.
    """

    def __init__(self, views: Mapping[Any, Sequence[str]] | Sequence[str], *, names: Sequence[str] | None = None,
                 storage_options: dict[str, Any] | None = None):
        self._spec = dict(views) if isinstance(views, Mapping) else {0: list(views)}
        self.storage_options = storage_options
        self.names = list(names) if names is not None else None
        self._stores: list[list] | None = None

    def _open_view(self, ds: StreamingDataset, nominal, url: str):
        from hepfm_data.store import open_store

        return open_store(url, self.storage_options)

    def _open(self, ds: StreamingDataset) -> list[list]:
        """``[source][k]``: view ``k`` of the dataset's store ``source`` (alignment checked)."""
        if self._stores is not None:
            return self._stores
        from hepfm_data.pipelines.resimulate import check_aligned

        out = []
        for s, store in enumerate(ds._stores):
            urls = self._spec.get(s, self._spec.get(store.url, self._spec.get(str(store.url).rstrip("/"))))
            if not urls:
                raise HepfmError(f"{store.url}: no view stores given for this nominal store "
                                 f"({type(self).__name__}({{url: [view store, ...]}}); build them with "
                                 f"hepfm-data resimulate)")
            views = [self._open_view(ds, store, u) for u in urls]
            for v in views:
                if [(i.name, i.n_events) for i in v.manifest.shards] != [(i.name, i.n_events)
                                                                          for i in store.manifest.shards]:
                    check_aligned(store, v)  # raises naming the view store
            out.append(views)
        k = {len(v) for v in out}
        if len(k) != 1:
            raise HepfmError(f"every nominal store needs the same number of views, got {sorted(k)}")
        if self.names is None:
            self.names = [str(next((p.get("generator", {}).get("view") for p in v.manifest.provenance), i))
                          for i, v in enumerate(out[0])]
        self._stores = out
        return out

    @property
    def views(self) -> list[str]:
        return list(self.names or [])


class ViewPairBatcher(_Views, NodeBatcher):
    """Pairs each nominal event with one of its views (module docstring; arguments: :class:`_Views`)."""

    def __init__(self, views: Mapping[Any, Sequence[str]] | Sequence[str], *, names: Sequence[str] | None = None,
                 storage_options: dict[str, Any] | None = None):
        NodeBatcher.__init__(self)
        _Views.__init__(self, views, names=names, storage_options=storage_options)

    def _open_view(self, ds: StreamingDataset, nominal, url: str):
        from hepfm_data.representations.base import open_representation

        if ds.pad_shape is not None:
            raise HepfmError("view pairs double the events of a batch: pad=True is not supported with ViewPairBatcher")
        # each view is read as the nominal's representation
        rep = getattr(nominal, "representation", None)
        return open_representation(_Views._open_view(self, ds, nominal, url), rep, ds.catalog)

    def read_window(self, ds: StreamingDataset, blocks: Sequence[Block], perm: np.ndarray) -> _PairWindow:
        stores = self._open(ds)
        parts = read_blocks(ds, blocks)
        nominal = node_window(ds, blocks, parts, perm)
        views = []
        for k in range(len(stores[0])):
            vparts = []
            for blk, d in zip(blocks, parts):
                vstore = stores[blk.source][k]
                info = vstore.shards(ds.split)[blk.shard]
                vd = vstore.read_shard(info, blk.start, blk.stop)
                if not np.array_equal(vd.event_id, d.event_id):
                    raise StoreError(f"{vstore.url}: shard {info.name} rows [{blk.start}, {blk.stop}): event ids "
                                     f"differ from the nominal store {ds._stores[blk.source].url}; rebuild the view")
                vparts.append(vd)
            views.append(node_window(ds, blocks, vparts, perm))
        return _PairWindow(nominal, views)

    def empty_window(self, ds: StreamingDataset) -> _PairWindow:
        self._open(ds)
        return _PairWindow(NodeBatcher.empty_window(self, ds), [NodeBatcher.empty_window(self, ds) for _ in self.views])

    def batch(self, ds: StreamingDataset, win: _PairWindow, a: int, b: int, key: tuple) -> Any:
        n = b - a
        choice = batch_rng(key, PAIR_STREAM).integers(0, len(win.views), size=n) if n else np.zeros(0, np.int64)
        nom = win.nominal
        # one packed array of the nominal window then every view window; event j of source s at s*len + j
        wins = [nom, *win.views]
        counts = np.concatenate([np.diff(w.offsets) for w in wins]).astype(np.int64)
        nodes_all = np.concatenate([w.nodes for w in wins]) if len(nom) else nom.nodes
        size = len(nom)
        pos = np.arange(a, b)
        idx = np.empty(2 * n, dtype=np.int64)
        idx[0::2] = pos
        idx[1::2] = (1 + choice) * size + pos
        rows, offsets = gather_events(counts_to_offsets(counts), idx)
        nodes = nodes_all[rows]
        n_node = np.diff(offsets)
        if ds.augment is not None:
            nodes = np.ascontiguousarray(ds.augment(nodes, offsets, batch_rng(key, AUGMENT_STREAM)), dtype=np.float32)
        pair = np.repeat(pos, 2)
        view = np.full(2 * n, -1, np.int64)
        view[1::2] = choice
        ml = None
        if ds.multilabels and nom.multilabel is not None and nom.multilabel.size:
            ml = torch.from_numpy(np.ascontiguousarray(np.concatenate([w.multilabel for w in wins])[idx]))
        elif ds.multilabels:
            ml = torch.zeros((2 * n, 0), dtype=torch.uint8)
        host = ViewPairs(nodes=torch.from_numpy(np.ascontiguousarray(nodes, dtype=np.float32)),
                         n_node=torch.from_numpy(n_node), labels=torch.from_numpy(nom.label[pair]),
                         weights=torch.from_numpy(nom.weight[pair]), event_id=torch.from_numpy(nom.event_id[pair]),
                         multilabels=ml, view=torch.from_numpy(view))
        if not ds.build_edges:
            return host
        return host.to_graph("cpu", None, edge_backend="numba")

    def finish(self, ds: StreamingDataset, item: Any, device: torch.device) -> Any:
        if isinstance(item, ViewPairs):
            return item.to_graph(device, None)
        return super().finish(ds, item, device)




@dataclass
class _JetPairWindow:
    nominal: ConstituentWindow
    views: list[ConstituentWindow]  # same events in the same stream order
    match: np.ndarray  # [K, Nj] index of each nominal jet's match in view k's jets, -1: none

    @property
    def offsets(self) -> np.ndarray:
        return self.nominal.jet_offsets

    def __len__(self) -> int:
        return len(self.nominal)


class ConstituentPairBatcher(_Views):
    """Pairs each selected nominal large-R jet with the same jet re-simulated in one of its views.

    The jets of a view are not those of the nominal event (the shower differs, so a view may select
    more, fewer or other jets): the partner of a nominal jet in view k is the selected jet of the
    same event in view k nearest in ΔR to the nominal jet axis, if ΔR < ``dr_max`` (0.4; half the jet
    radius, so the match is unique). The view is drawn per nominal event, uniformly from the K
    views, with the batch's generator (``batch_rng(key, PAIR_STREAM)``) as in :class:`ViewPairBatcher`.
    A nominal jet without a partner in its drawn view is left out of the pairs and counted in the
    batch's ``unpaired``; every other selected nominal jet is in exactly one pair per epoch.
    Batches are :class:`PointCloudPairs` (``jet_constituents`` layout, ``B`` = 2 x pairs).
    ``spec``: the point-cloud representation (unit ``jet``); other arguments: :class:`_Views`.
    """

    def __init__(self, views: Mapping[Any, Sequence[str]] | Sequence[str], spec: str | PointCloudSpec = "jet_constituents",
                 *, dr_max: float = 0.4, names: Sequence[str] | None = None,
                 storage_options: dict[str, Any] | None = None):
        super().__init__(views, names=names, storage_options=storage_options)
        self.jets = ConstituentBatcher(spec)
        if self.jets.spec.unit != "jet":
            raise HepfmError(f"ConstituentPairBatcher pairs jets: representation {self.jets.spec.name!r} has unit "
                             f"{self.jets.spec.unit!r}, not 'jet'")
        self.dr_max = float(dr_max)

    def read_window(self, ds: StreamingDataset, blocks: Sequence[Block], perm: np.ndarray) -> _JetPairWindow:
        stores = self._open(ds)
        parts = self.jets.read_parts(ds, blocks)
        nominal = self.jets.window(ds, blocks, parts, perm)
        views, match = [], []
        for k in range(len(stores[0])):
            vparts = self.jets.read_parts(ds, blocks, [v[k] for v in stores])
            for blk, d, vd in zip(blocks, parts, vparts):
                if not np.array_equal(vd["event_id"], d["event_id"]):
                    vs = stores[blk.source][k]
                    raise StoreError(f"{vs.url}: shard {vs.shards(ds.split)[blk.shard].name} rows [{blk.start}, "
                                     f"{blk.stop}): event ids differ from the nominal store "
                                     f"{ds._stores[blk.source].url}; rebuild the view")
            v = self.jets.window(ds, blocks, vparts, perm)
            views.append(v)
            match.append(match_jets(nominal.jets[:, 1], nominal.jets[:, 2], nominal.jet_offsets,
                                    v.jets[:, 1], v.jets[:, 2], v.jet_offsets, self.dr_max))
        return _JetPairWindow(nominal, views, np.stack(match) if match else np.zeros((0, 0), np.int64))

    def empty_window(self, ds: StreamingDataset) -> _JetPairWindow:
        self._open(ds)
        return _JetPairWindow(self.jets.empty_window(ds), [self.jets.empty_window(ds) for _ in self.views],
                              np.zeros((len(self.views), 0), np.int64))

    def batch(self, ds: StreamingDataset, win: _JetPairWindow, a: int, b: int, key: tuple) -> PointCloudPairs:
        n = b - a
        choice = batch_rng(key, PAIR_STREAM).integers(0, len(win.views), size=n) if n else np.zeros(0, np.int64)
        nom = win.nominal
        j0, j1 = int(nom.jet_offsets[a]), int(nom.jet_offsets[b])
        ev = np.repeat(np.arange(a, b), np.diff(nom.jet_offsets[a:b + 1]))  # window position of each nominal jet
        rows = np.arange(j0, j1)
        k = choice[ev - a]
        partner = win.match[k, rows] if rows.size else np.zeros(0, np.int64)
        ok = partner >= 0
        rows, ev, k, partner = rows[ok], ev[ok], k[ok], partner[ok]
        first = jet_fields(nom, rows, ev)
        second = {f: np.empty_like(x) for f, x in first.items()}
        for kk, v in enumerate(win.views):
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

    def finish(self, ds: StreamingDataset, item: Any, device: torch.device) -> PointCloudPairs:
        return self.jets.finish(ds, item, device)
