"""``paper`` (the default): the graph of SPEC §2-4, materialised by the build in ``shards/``.

Selected jets, electrons, muons and photons (SPEC §2 cuts, overlap removal) and MET as nodes with 7
features (pT, η, φ, E, b-tag, charge, type); the process label and the 38 multilabels (SPEC §4).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from hepfm_data.representations.graph import PAPER_INPUTS, GraphRepresentation
from hepfm_data.store.layouts import Columns

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.core.catalog import Catalog

__all__ = ["PAPER", "paper_columns", "paper_definition"]


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


PAPER = GraphRepresentation(
    "paper", 1, PAPER_INPUTS, paper_columns, paper_definition,
    "SPEC §2-4 graph: selected jets, electrons, muons, photons + MET; 7 node features; 38 labels")
