"""View pairs (RS3L): any representation whose examples can be matched across re-simulated views,
served as nominal / view pairs for contrastive pretraining.

:class:`Paired` wraps a representation (``paper``-like graphs: the same event in the view;
``jet_constituents``-like point clouds: the ΔR-matched jet of the same event in the view). The
sampler plans the **nominal** events exactly as for any loader (each nominal event exactly once per
epoch, rank x worker partition, resume); for every planned block the wrapper also reads the same
rows of each aligned view store (``hepfm_data.pipelines.resimulate``: same shards, same event ids,
checked on every read). Each nominal event draws one of the K views uniformly with the batch's
generator (``batch_rng(key, PAIR_STREAM)``), so batches are the same bytes whatever the number of
workers; examples are interleaved ``nominal_0, view_0, nominal_1, view_1, ...``.

The wrapped representation provides ``read_parts(src, blocks, stores)``, ``event_ids(part)``,
``window(src, blocks, parts, perm)``, ``match_views(nominal, views)`` and ``pair_batch(...)``
(graphs: :class:`~hepfm_data.batches.ViewPairs`, a HostBatch with ``view``, a GraphBatch on the
device; point clouds: :class:`~hepfm_data.batches.PointCloudPairs`, nominal jets without a partner
in their drawn view counted in ``unpaired``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hepfm_data.core.errors import HepfmError
from hepfm_data.representations.base import PAIR_STREAM, Block, Representation, batch_rng, check_event_ids

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.core.catalog import Catalog
    from hepfm_data.representations.base import WindowSource

__all__ = ["Paired", "PairWindow"]


@dataclass
class PairWindow:
    nominal: Any  # the wrapped representation's window
    views: list  # one window per view: the same events in the same stream order
    match: Any  # the wrapped representation's view matching (None for events; [K, Nj] jet partners)

    @property
    def offsets(self) -> np.ndarray:
        return self.nominal.offsets

    def __len__(self) -> int:
        return len(self.nominal)


class Paired(Representation):
    """``base`` (a Representation or a registered name) served as nominal / view pairs.

    ``views``: ``{nominal store URL or index in the dataset's stores: [view store URL, ...]}`` or, for
    one nominal store, a plain list; ``names`` label them (default: the view stores' generator ``view``
    provenance). Every nominal store of the dataset needs the same number of views.
    """

    def __init__(self, base: Representation | str, views: Mapping[Any, Sequence[str]] | Sequence[str], *,
                 names: Sequence[str] | None = None, storage_options: dict[str, Any] | None = None):
        if isinstance(base, str):
            from hepfm_data.representations.registry import get_representation

            base = get_representation(base)
        if not hasattr(base, "pair_batch"):
            raise HepfmError(f"representation {base.name!r} cannot match its examples across views "
                             f"(no pair_batch): view pairs need a graph or a jet point cloud")
        if getattr(base, "unit", "jet") != "jet":
            raise HepfmError(f"view pairs of {base.name!r}: pairs are jets, and this representation has unit "
                             f"{base.unit!r}, not 'jet'")
        self.base = base
        self.name, self.version, self.doc = f"{base.name}+views", base.version, f"view pairs of {base.name}"
        self.inputs = base.inputs
        self.batch_type = base.pair_batch_type
        self.options = base.options - {"pad_shape", "batch_by_size"}  # pairs double a batch's examples
        self._spec = dict(views) if isinstance(views, Mapping) else {0: list(views)}
        self.storage_options = storage_options
        self.names = list(names) if names is not None else None
        self._stores: list[list] | None = None

    def definition(self, catalog: Catalog) -> dict[str, Any]:
        return {"base": self.base.full_definition(catalog), "base_name": self.base.name}

    def open(self, store, catalog: Catalog):
        return self.base.open(store, catalog)

    @property
    def views(self) -> list[str]:
        return list(self.names or [])

    def view_stores(self, src: WindowSource) -> list[list]:
        """``[source][k]``: view ``k`` of the dataset's store ``source``, opened as the wrapped
        representation reads it (alignment checked)."""
        if self._stores is not None:
            return self._stores
        from hepfm_data.store import open_store
        from hepfm_data.store.reader import check_aligned

        out = []
        for s, store in enumerate(src.stores):
            urls = self._spec.get(s, self._spec.get(store.url, self._spec.get(str(store.url).rstrip("/"))))
            if not urls:
                raise HepfmError(f"{store.url}: no view stores given for this nominal store (Paired(base, "
                                 f"{{url: [view store, ...]}}); build them with hepfm-data resimulate)")
            views = [self.base.open(open_store(u, self.storage_options), src.catalog) for u in urls]
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

    def read_window(self, src: WindowSource, blocks: Sequence[Block], perm: np.ndarray) -> PairWindow:
        stores = self.view_stores(src)
        base = self.base
        parts = base.read_parts(src, blocks)
        nominal = base.window(src, blocks, parts, perm)
        views = []
        for k in range(len(stores[0])):
            vstores = [v[k] for v in stores]
            vparts = base.read_parts(src, blocks, vstores)
            for blk, d, vd in zip(blocks, parts, vparts):
                vs = vstores[blk.source]
                check_event_ids(vs, vs.shards(src.split)[blk.shard], blk, base.event_ids(vd), base.event_ids(d),
                                src.stores[blk.source])
            views.append(base.window(src, blocks, vparts, perm))
        return PairWindow(nominal, views, base.match_views(nominal, views))

    def empty_window(self, src: WindowSource) -> PairWindow:
        self.view_stores(src)
        nominal = self.base.empty_window(src)
        views = [self.base.empty_window(src) for _ in self.views]
        return PairWindow(nominal, views, self.base.match_views(nominal, views))

    def batch(self, src: WindowSource, win: PairWindow, a: int, b: int, key: tuple) -> Any:
        n = b - a
        choice = batch_rng(key, PAIR_STREAM).integers(0, len(win.views), size=n) if n else np.zeros(0, np.int64)
        return self.base.pair_batch(src, win.nominal, win.views, win.match, a, b, key, choice)

    def finish(self, src: WindowSource, item: Any, device: torch.device) -> Any:
        return self.base.finish(src, item, device)

    def __repr__(self) -> str:
        return f"Paired({self.base!r}, {len(self._spec)} nominal store(s))"
