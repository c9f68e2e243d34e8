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
"""

from hepfm_data.representations.base import Block, Representation, WindowSource, batch_rng
from hepfm_data.representations.event_jets import EVENT_JETS
from hepfm_data.representations.graph import GraphRepresentation
from hepfm_data.representations.jet_constituents import JET_CONSTITUENTS
from hepfm_data.representations.pairs import Paired
from hepfm_data.representations.paper import PAPER
from hepfm_data.representations.paper_taus import PAPER_TAUS
from hepfm_data.representations.pointcloud import PointCloudRepresentation
from hepfm_data.representations.registry import REPRESENTATIONS, get_representation, open_stores, representation_names
from hepfm_data.representations.slots import SLOTS, SlotRepresentation, SlotSelection

__all__ = ["Representation", "WindowSource", "Block", "batch_rng", "GraphRepresentation", "PointCloudRepresentation",
           "SlotRepresentation", "SlotSelection", "Paired", "PAPER", "PAPER_TAUS", "JET_CONSTITUENTS", "EVENT_JETS",
           "SLOTS", "REPRESENTATIONS", "get_representation", "representation_names", "open_stores"]
