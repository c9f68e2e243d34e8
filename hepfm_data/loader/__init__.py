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

from hepfm_data.batches import HostBatch, batch_type
from hepfm_data.loader.augment import BoostZ, Compose, FlipEta, RotatePhi
from hepfm_data.loader.dataset import LoaderStateError, StreamingDataset
from hepfm_data.loader.loader import StreamingLoader, make_loader
from hepfm_data.loader.sampler import BatchSpec, EpochPlan, StreamSampler
from hepfm_data.representations.nodes import BatchBuilder, Block, NodeBatcher, batch_rng
from hepfm_data.representations.pairs import ConstituentPairBatcher, PointCloudPairs, ViewPairBatcher, ViewPairs
from hepfm_data.representations.pointcloud import ConstituentBatcher
from hepfm_data.representations.slots import SlotBatcher, SlotSelection

__all__ = ["make_loader", "StreamingLoader", "StreamingDataset", "LoaderStateError", "StreamSampler",
           "BatchSpec", "EpochPlan", "HostBatch", "batch_type", "BatchBuilder", "Block",
           "NodeBatcher", "batch_rng", "RotatePhi", "FlipEta", "BoostZ", "Compose", "ViewPairBatcher",
           "ViewPairs", "ConstituentBatcher", "ConstituentPairBatcher", "PointCloudPairs",
           "SlotBatcher", "SlotSelection"]
