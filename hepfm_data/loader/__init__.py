"""Streaming loader: exact, resumable, multi-GPU batches of any representation from stores.

>>> loader = make_loader(["stores/ttH", "stores/ttbar"], batch_size=512)   # doctest: +SKIP
>>> for epoch in range(10):                                                # doctest: +SKIP
...     loader.set_epoch(epoch)
...     for batch in loader:   # a GraphBatch on the device (representation="paper")
...         ...

Layers: :mod:`.sampler` (who reads what: pure index arithmetic), :mod:`.dataset`
(``StreamingDataset``: iteration + state; the representation, :mod:`hepfm_data.representations`,
turns a window into batches), :mod:`.loader` (``make_loader``: DataLoader + device),
:mod:`.augment` (SPEC §7 augmentations).
"""

from __future__ import annotations

from hepfm_data.loader.augment import BoostZ, Compose, FlipEta, RotatePhi
from hepfm_data.loader.dataset import LoaderStateError, StreamingDataset
from hepfm_data.loader.loader import StreamingLoader, make_loader
from hepfm_data.loader.sampler import BatchSpec, EpochPlan, StreamSampler

__all__ = ["make_loader", "StreamingLoader", "StreamingDataset", "LoaderStateError", "StreamSampler",
           "BatchSpec", "EpochPlan", "RotatePhi", "FlipEta", "BoostZ", "Compose"]
