"""Readers: input files -> event records (``hepfm_data.core.events``). Imported lazily."""

from __future__ import annotations

import importlib

#: public name -> module providing it
_LAZY = {
    "read_delphes": "hepfm_data.readers.delphes",
    "iterate_delphes": "hepfm_data.readers.delphes",
    "expand_inputs": "hepfm_data.readers.delphes",
    "generate": "hepfm_data.readers.generation",
    "read_nanoaod": "hepfm_data.readers.nanoaod",
    "iterate_nanoaod": "hepfm_data.readers.nanoaod",
    "read_physlite": "hepfm_data.readers.physlite",
    "iterate_physlite": "hepfm_data.readers.physlite",
    "detect_format": "hepfm_data.readers.formats",
    "detect_formats": "hepfm_data.readers.formats",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hepfm_data.readers' has no attribute {name!r}")
