"""Batch types: the contract between data and models (``hepfm_models`` imports this package and nothing
else of ``hepfm_data``).

* :class:`~.graph.GraphBatch`: packed nodes + fully connected edges (SPEC §3), built on the training device.
* :class:`~.host.HostBatch`: packed nodes without edges, what loader workers hand over; ``ViewPairs``
  (nominal / re-simulated event pairs).
* :class:`~.pointcloud.PointCloudBatch`: padded large-R jet constituents; ``PointCloudPairs`` (jet pairs).
* :class:`~.slots.SlotBatch`: typed object slots (SPEC §7.3).

Every batch type is a dataclass of tensors registered for the worker pipe (:mod:`.pipe`).
"""

from hepfm_data.batches.base import BATCH_TYPES, PackedBatch, TensorBatch, batch_type
from hepfm_data.batches.graph import GraphBatch
from hepfm_data.batches.host import HostBatch, ViewPairs
from hepfm_data.batches.pointcloud import PointCloudBatch, PointCloudPairs
from hepfm_data.batches.slots import SlotBatch

__all__ = ["GraphBatch", "HostBatch", "ViewPairs", "PointCloudBatch", "PointCloudPairs", "SlotBatch", "TensorBatch",
           "PackedBatch", "BATCH_TYPES", "batch_type"]
