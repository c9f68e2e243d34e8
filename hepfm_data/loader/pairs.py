"""Nominal / re-simulated view pairs (RS3L): a batch builder for contrastive pretraining.

:class:`ViewPairBatcher` plugs into ``StreamingDataset(builder=...)`` / ``make_loader(builder=...)``.
The sampler plans the **nominal** events exactly as for any loader (each nominal event exactly
once per epoch, rank x worker partition, resume); for every planned block the builder also reads
the same rows of each aligned view store (``hepfm_data.resimulate``: same shards, same event ids,
checked on every read), and each batch of ``b`` nominal events becomes ``2b`` events,
interleaved ``nominal_0, view_0, nominal_1, view_1, ...``: event ``2i + 1`` is event ``2i``
re-simulated, its view drawn uniformly from the K views with the batch's generator
(``batch_rng(key, PAIR_STREAM)``, key = seed, epoch, level, rank, batch id), so the batches are
the same bytes whatever the number of workers.

Batches are :class:`ViewPairs` (a HostBatch with ``view`` [2b]: -1 for nominal events, else the
index into ``views``) in workers, and a :class:`~hepfm_data.graph.GraphBatch` on the device (the
contract; pairs by position). Any representation derivable from the view's record pairs the same
way (the paper graph now; jet constituents once their representation is in the store).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .._arrays import counts_to_offsets
from ..errors import HepfmError, StoreError
from .batch import HostBatch, gather_events, register_batch_type
from .builders import AUGMENT_STREAM, Block, NodeBatcher, NodeWindow, batch_rng, node_window, read_blocks

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import StreamingDataset

__all__ = ["ViewPairBatcher", "ViewPairs", "PAIR_STREAM"]

PAIR_STREAM = 4  # rng stream of the view choice (builders: 2 augmentations, 3 transforms)


@dataclass
class ViewPairs(HostBatch):
    """A HostBatch of ``2b`` interleaved events (nominal, its view, ...) plus ``view`` [2b] int64
    (-1: nominal; k: ``ViewPairBatcher.views[k]``)."""

    view: torch.Tensor | None = None


register_batch_type("view_pairs", ViewPairs)


@dataclass
class _PairWindow:
    nominal: NodeWindow
    views: list[NodeWindow]  # one per view, same events in the same stream order

    def __len__(self) -> int:
        return len(self.nominal)


class ViewPairBatcher(NodeBatcher):
    """Pairs each nominal event with one of its views (module docstring).

    ``views``: ``{nominal store URL or index in the dataset's stores: [view store URL, ...]}`` or,
    for one nominal store, a plain list; ``names`` label them (default: the view stores' generator
    ``view`` provenance). Every nominal store of the dataset needs the same number of views.
    """

    def __init__(self, views: Mapping[Any, Sequence[str]] | Sequence[str], *, names: Sequence[str] | None = None,
                 storage_options: dict[str, Any] | None = None):
        super().__init__()
        self._spec = dict(views) if isinstance(views, Mapping) else {0: list(views)}
        self.storage_options = storage_options
        self.names = list(names) if names is not None else None
        self._stores: list[list] | None = None

    def _open(self, ds: StreamingDataset) -> list[list]:
        if self._stores is not None:
            return self._stores
        from ..representations import open_representation
        from ..resimulate import check_aligned
        from ..store import open_store

        if ds.pad_shape is not None:
            raise HepfmError("view pairs double the events of a batch: pad=True is not supported with ViewPairBatcher")
        out = []
        for s, store in enumerate(ds._stores):
            urls = self._spec.get(s, self._spec.get(store.url, self._spec.get(str(store.url).rstrip("/"))))
            if not urls:
                raise HepfmError(f"{store.url}: no view stores given for this nominal store "
                                 f"(ViewPairBatcher({{url: [view store, ...]}}); build them with hepfm-data resimulate)")
            # each view is read as the nominal's representation (paper now, jet_constituents once derived)
            rep = getattr(store, "representation", None)
            views = [open_representation(open_store(u, self.storage_options), rep, ds.catalog) for u in urls]
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
