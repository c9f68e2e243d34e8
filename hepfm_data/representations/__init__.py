"""Representations: one stored event record, many model inputs (:mod:`.base` has the protocol).

============================  ================================  =====================================
name                          batches                           placement
============================  ================================  =====================================
``paper`` (default)           GraphBatch (SPEC §2-4)            stored by ``build``
``paper_taus``                GraphBatch (+ τ_h nodes)          stored by ``derive``
``jet_constituents``          PointCloudBatch [B, 100, 15]      from the record, in the workers
``event_jets``                PointCloudBatch [B, 5, 100, 15]   from the record, in the workers
``slots``                     SlotBatch [B, 21, 11]             from the record, in the workers
============================  ================================  =====================================

``Paired(name_or_rep, views)`` serves any of the graph or jet representations as re-simulated view
pairs. The registry (:mod:`.registry`) lists every name; third-party representations join through
the ``hepfm_data.representations`` entry-point group.

Names load lazily (PEP 562): importing :mod:`.columns` (the build's workers) or :mod:`.base` does not
import torch or every representation.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule that defines it
_WHERE = {
    "Representation": "base", "WindowSource": "base", "Block": "base", "batch_rng": "base",
    "GraphRepresentation": "graph", "PointCloudRepresentation": "pointcloud",
    "SlotRepresentation": "slots", "SlotSelection": "slots", "SLOTS": "slots", "Paired": "pairs",
    "PAPER": "paper", "PAPER_TAUS": "paper_taus", "JET_CONSTITUENTS": "jet_constituents", "EVENT_JETS": "event_jets",
    "REPRESENTATIONS": "registry", "get_representation": "registry", "representation_names": "registry",
    "open_stores": "registry",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
