"""Sharded, versioned, checksummed stores (Zarr v3 with the sharding codec, or Parquet).

>>> store = open_store("stores/ttH")                         # doctest: +SKIP
>>> data = store.read_shard(store.shards("train")[0])        # doctest: +SKIP
"""

from __future__ import annotations

from hepfm_data.store.layouts import LAYOUTS, ShardData
from hepfm_data.store.manifest import FORMAT_VERSION, SPLITS, Manifest, ShardInfo
from hepfm_data.store.reader import Store, open_store
from hepfm_data.store.writer import DEFAULT_EVENTS_PER_SHARD, StoreBuild, UnitWriter

__all__ = ["open_store", "Store", "ShardData", "Manifest", "ShardInfo", "LAYOUTS", "SPLITS",
           "FORMAT_VERSION", "DEFAULT_EVENTS_PER_SHARD", "StoreBuild", "UnitWriter"]

