"""Sharded, versioned, checksummed stores (Zarr v3 with the sharding codec, or Parquet).

>>> store = open_store("stores/ttH")                         # doctest: +SKIP
>>> data = store.read_shard(store.shards("train")[0])        # doctest: +SKIP
"""

from __future__ import annotations

from .layouts import LAYOUTS, ShardData
from .manifest import FORMAT_VERSION, SPLITS, Manifest, ShardInfo
from .reader import Store, open_store
from .writer import DEFAULT_EVENTS_PER_SHARD, write_store

__all__ = ["open_store", "write_store", "Store", "ShardData", "Manifest", "ShardInfo", "LAYOUTS", "SPLITS",
           "FORMAT_VERSION", "DEFAULT_EVENTS_PER_SHARD"]
