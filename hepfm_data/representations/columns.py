"""The paper graph's stored columns and definition, torch-free: what the build's workers import.

``paper_columns(events, label, catalog, seed)`` runs the SPEC §2-4 physics on an event record
(selection, overlap removal, b-tag, nodes, labels) and returns the store columns;
``paper_definition(catalog)`` is what the ``paper`` fingerprint hashes; ``PAPER_INPUTS`` the record
fields it reads. The representation object itself (``PAPER``, with its batches) is in :mod:`.paper`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from hepfm_data.store.layouts import Columns

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.core.catalog import Catalog

__all__ = ["PAPER_INPUTS", "paper_columns", "paper_definition"]

#: the record fields of the paper graph (SPEC §2: jets, electrons, muons, photons, MET)
_KIN = ("pt", "eta", "phi")
PAPER_INPUTS = tuple([f"jets.{k}" for k in _KIN] + [f"electrons.{k}" for k in (*_KIN, "charge")]
                     + [f"muons.{k}" for k in (*_KIN, "charge")] + [f"photons.{k}" for k in _KIN]
                     + ["met.pt", "met.phi", "event_id", "weight"])


def paper_columns(events, label: int, catalog: Catalog, seed: int) -> Columns:
    """Store columns of an event record: the physics (selection, b-tag, nodes, labels), then the label."""
    from hepfm_data.kernels.features import process_block

    nb = process_block(events, catalog, seed)
    b = nb.event_id.shape[0]
    ev = {"event_id": nb.event_id, "weight": nb.weight, "label": np.full(b, label, np.int16),
          "multilabel": nb.multilabel, "n_node": nb.n_node}
    nodes = {"pt": nb.pt, "eta": nb.eta, "phi": nb.phi, "btag": nb.btag, "charge": nb.charge, "type": nb.type}
    return Columns(ev, nodes)


def paper_definition(catalog: Catalog) -> dict[str, Any]:
    """The catalog parts the paper graph depends on: selection, object types, node features, labels."""
    return {"selection": dataclasses.asdict(catalog.selection), "object_types": dict(catalog.graph.object_types),
            "node_features": list(catalog.graph.node_feature_names), "labels": dataclasses.asdict(catalog.labels),
            "label_names": list(catalog.labels.names)}
