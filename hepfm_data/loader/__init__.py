"""Streaming loader: exact, resumable, multi-GPU graph batches from stores.

>>> loader = make_loader(["stores/ttH", "stores/ttbar"], batch_size=512)   # doctest: +SKIP
>>> for epoch in range(10):                                                # doctest: +SKIP
...     loader.set_epoch(epoch)
...     for batch in loader:   # a GraphBatch on the device
...         ...

Layers: :mod:`.sampler` (who reads what: pure index arithmetic), :mod:`.dataset`
(``StreamingDataset``: iteration + state), :mod:`.builders` (how a window
becomes batches: ``NodeBatcher`` and its ``transform`` hook), :mod:`.loader` (``make_loader``: DataLoader +
device), :mod:`.augment` (SPEC §7 augmentations), :mod:`.cache` (remote shard cache).
"""

from __future__ import annotations

from .augment import BoostZ, Compose, FlipEta, RotatePhi
from .batch import HostBatch, register_batch_type
from .builders import BatchBuilder, Block, NodeBatcher, batch_rng
from .constituents import ConstituentBatcher
from .dataset import LoaderStateError, StreamingDataset
from .loader import StreamingLoader, make_loader
from .pairs import ConstituentPairBatcher, PointCloudPairs, ViewPairBatcher, ViewPairs
from .sampler import BatchSpec, EpochPlan, StreamSampler
from .slots import SlotBatcher, SlotSelection

__all__ = ["make_loader", "StreamingLoader", "StreamingDataset", "LoaderStateError", "StreamSampler",
           "BatchSpec", "EpochPlan", "HostBatch", "register_batch_type", "BatchBuilder", "Block",
           "NodeBatcher", "batch_rng", "RotatePhi", "FlipEta", "BoostZ", "Compose", "ViewPairBatcher",
           "ViewPairs", "ConstituentBatcher", "ConstituentPairBatcher", "PointCloudPairs",
           "SlotBatcher", "SlotSelection"]
