"""hepfm_data: the dataset layer of hepfm.

Layers, one way: catalog -> sources -> readers -> inputs -> kernels -> store -> build ->
dataset/loader. Never imports hepfm_models.
Heavy parts are imported lazily; the names below are the public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hepfm_data.core.catalog import Catalog, Process, Task, load_catalog
from hepfm_data.core.errors import (
    CatalogError,
    ChecksumError,
    GenerationError,
    HepfmError,
    InputFileError,
    ManifestError,
    MissingDependencyError,
    RemoteError,
    StoreError,
    UnknownNameError,
)
from hepfm_data.core.events import SampleInfo, validate_events
from hepfm_data.core.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.batches.graph import GraphBatch

__all__ = [
    "__version__", "Catalog", "Process", "Task", "load_catalog", "SampleInfo", "validate_events",
    "GraphBatch", "load_dataset", "make_loader", "StreamingDataset", "open_store", "write_store", "build_store",
    "HepfmError", "CatalogError", "UnknownNameError", "InputFileError", "GenerationError",
    "StoreError", "ManifestError", "ChecksumError", "RemoteError", "MissingDependencyError",
]

# name -> module providing it, imported on first access (keeps `import hepfm_data` light)
_LAZY = {
    "GraphBatch": "hepfm_data.batches.graph",
    "make_loader": "hepfm_data.loader",
    "StreamingDataset": "hepfm_data.loader",
    "load_dataset": "hepfm_data.serving.hub",
    "open_store": "hepfm_data.store",
    "write_store": "hepfm_data.pipelines.build",
    "build_store": "hepfm_data.pipelines.build",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hepfm_data' has no attribute {name!r}")
