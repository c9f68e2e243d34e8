"""``paper`` (the default): the graph of SPEC §2-4, materialised by the build in ``shards/``.

Selected jets, electrons, muons and photons (SPEC §2 cuts, overlap removal) and MET as nodes with 7
features (pT, η, φ, E, b-tag, charge, type); the process label and the 38 multilabels (SPEC §4).
Its columns and definition are computed in :mod:`.columns` (torch-free: the build's workers import it).
"""

from __future__ import annotations

from hepfm_data.representations.columns import PAPER_INPUTS, paper_columns, paper_definition
from hepfm_data.representations.graph import GraphRepresentation

__all__ = ["PAPER"]

PAPER = GraphRepresentation(
    "paper", 1, PAPER_INPUTS, paper_columns, paper_definition,
    "SPEC §2-4 graph: selected jets, electrons, muons, photons + MET; 7 node features; 38 labels")
