"""``make_loader``: a DataLoader of :class:`~hepfm_data.batches.graph.GraphBatch` on the target device."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader

from hepfm_data.batches.base import PackedBatch
from hepfm_data.loader.dataset import StreamingDataset

__all__ = ["StreamingLoader", "make_loader"]


class StreamingLoader:
    """Iterates a :class:`StreamingDataset` through a ``DataLoader`` and yields its batches
    (default :class:`GraphBatch`; the dataset's representation decides) on ``device``; tracks the
    resumable position in the main process.

    Workers read, shuffle and pack nodes; the main process copies the (pinned) nodes once
    to the device and computes the edges there (torch on a GPU, the Numba kernel on CPU).
    """

    def __init__(self, dataset: StreamingDataset, loader: DataLoader, device: torch.device):
        self.dataset, self.loader, self.device = dataset, loader, device

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[Any]:
        ds = self.dataset
        ds._begin()  # workers (re)started by iter(self.loader) begin here
        epoch, start = ds.epoch, ds.consumed
        total = ds.n_batches(epoch)
        i = 0
        for item in self.loader:
            if isinstance(item, PackedBatch):
                item = item.unpack()
            batch = ds.representation.finish(ds, item, self.device)
            i += 1
            ds._set_state(epoch, start + i, progress=True)
            yield batch
        if start + i == total:
            ds._set_state(epoch + 1, 0, [])

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def state_dict(self) -> dict[str, Any]:
        return self.dataset.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.dataset.load_state_dict(state)


def make_loader(stores: Any, *, device: torch.device | str | None = None, num_workers: int = 2,
                pin_memory: bool | None = None, persistent_workers: bool | None = None, prefetch_factor: int = 4,
                multiprocessing_context: str | None = None, representation: str | None = None,
                **dataset_kwargs) -> StreamingLoader:
    """A resumable loader of the batches of ``representation`` (default ``paper``: :class:`GraphBatch`;
    see :mod:`hepfm_data.representations`) from ``stores`` on ``device``.

    ``dataset_kwargs`` go to :class:`StreamingDataset` (split, labels, weights, mixing,
    batch_size, max_nodes, max_edges, pad, seed, augment, rank, world_size, ...).
    ``device`` defaults to CUDA (this rank's ``torch.cuda.current_device()``) when available.
    Use it as ``for epoch ...: loader.set_epoch(epoch); for batch in loader: ...``;
    ``loader.state_dict()`` / ``load_state_dict()`` resume mid-epoch exactly, also on another
    number of ranks or workers (elastic: the rest of the epoch, each remaining event once).
    ``representation``: a registered name or a Representation (default: the stores' own, ``paper``);
    its fingerprint must match the catalog (``dataset_kwargs["catalog"]`` or the packaged one).
    """
    if device is None:
        device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    # workers ship node arrays only: edges are ~7x the bytes of nodes (n (n - 1) per event),
    # and computing them where the batch lands (Numba on CPU, torch on GPU) is cheaper than
    # moving them between processes
    ds = StreamingDataset(stores, build_edges=False, representation=representation, **dataset_kwargs)
    if pin_memory is None:
        pin_memory = device.type == "cuda"
    if persistent_workers is None:
        persistent_workers = num_workers > 0
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs.update(prefetch_factor=prefetch_factor, persistent_workers=persistent_workers,
                      multiprocessing_context=multiprocessing_context)
    ds.num_workers = num_workers
    ds.prepare()  # budget batching: node-count histograms read once here; workers inherit them
    loader = DataLoader(ds, batch_size=None, num_workers=num_workers, pin_memory=pin_memory, **kwargs)
    return StreamingLoader(ds, loader, device)
