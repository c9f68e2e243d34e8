"""Sharded, versioned, checksummed stores (Zarr v3 with the sharding codec, or Parquet).

>>> store = open_store("stores/ttH")                         # doctest: +SKIP
>>> data = store.read_shard(store.shards("train")[0])        # doctest: +SKIP
"""

from __future__ import annotations

from hepfm_data.store.layouts import LAYOUTS, ShardData
from hepfm_data.store.manifest import FORMAT_VERSION, SPLITS, Manifest, ShardInfo
from hepfm_data.store.reader import Store, open_store
from hepfm_data.store.writer import DEFAULT_EVENTS_PER_SHARD, StoreBuild, UnitWriter

__all__ = ["open_store", "write_store", "Store", "ShardData", "Manifest", "ShardInfo", "LAYOUTS", "SPLITS",
           "FORMAT_VERSION", "DEFAULT_EVENTS_PER_SHARD", "StoreBuild", "UnitWriter"]


def __getattr__(name: str):
    # compatibility: ``write_store`` (event records -> store) runs the kernels, so it lives one
    # layer up in hepfm_data.pipelines.build; the store package itself writes columns only
    if name == "write_store":
        from hepfm_data.pipelines.build import write_store

        return write_store
    raise AttributeError(f"module 'hepfm_data.store' has no attribute {name!r}")
