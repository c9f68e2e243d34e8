"""GraphBatch: the one contract between ``hepfm_data`` and ``hepfm_models``.

A batch of ``B`` events packs ``N`` nodes and ``E`` directed edges:

================  ==============  =================================================
field             shape / dtype   meaning
================  ==============  =================================================
nodes             [N, 7] float32  pt (GeV), eta, phi (rad), energy (GeV), btag,
                                  charge, type — catalog ``graph.node_features``
n_node            [B] int64       nodes per event
node_graph        [N] int64       event index of each node
senders           [E] int64       global node index i of edge i -> j
receivers         [E] int64       global node index j of edge i -> j
edges             [E, 3] float32  deta = eta_j - eta_i, dphi wrapped to [-pi, pi),
                                  dr = sqrt(deta^2 + dphi^2)
n_edge            [B] int64       edges per event: n (n - 1)
globals           [B, 1] float32  number of nodes N (catalog ``global_features``)
labels            [B] int64       multiclass label (process index or task label)
multilabels       [B, L] float32  SPEC §4 label vector (L = 38) or None
weights           [B] float32     per-event training weight
graph_mask        [B] bool        False for padding events (fixed-shape mode)
event_id          [B] int64       store event id (-1 for padding) or None
================  ==============  =================================================

Graphs are fully connected **without self-edges**. Padding (see
``pad_to``) appends one dummy event holding all padding nodes with no edges;
its ``graph_mask`` is False and its weight 0, so sums and losses ignore it.
Only ``torch`` is needed: no storage, no DGL/PyG (``to_pyg``/``to_dgl``
convert when those libraries are installed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hepfm_data.batches.base import TensorBatch, batch_type
from hepfm_data.core.arrays import counts_to_offsets
from hepfm_data.core.errors import HepfmError, require

N_NODE_FEATURES = 7
N_EDGE_FEATURES = 3
N_GLOBAL_FEATURES = 1
#: column of each node feature in ``GraphBatch.nodes``
PT, ETA, PHI, ENERGY, BTAG, CHARGE, TYPE = range(N_NODE_FEATURES)



def _check_nodes(shape: tuple[int, ...], total_nodes: int) -> None:
    """HepfmError unless the nodes are [N, N_NODE_FEATURES] with N = ``total_nodes`` (the sum of n_node)."""
    if len(shape) != 2 or shape[1] != N_NODE_FEATURES:
        raise HepfmError(f"nodes must have shape [N, {N_NODE_FEATURES}], got {shape}")
    if total_nodes != shape[0]:
        raise HepfmError(f"n_node sums to {total_nodes} but nodes has {shape[0]} rows")


@batch_type("graph")
@dataclass
class GraphBatch(TensorBatch):
    nodes: torch.Tensor
    n_node: torch.Tensor
    node_graph: torch.Tensor
    senders: torch.Tensor
    receivers: torch.Tensor
    edges: torch.Tensor
    n_edge: torch.Tensor
    globals: torch.Tensor
    labels: torch.Tensor
    weights: torch.Tensor
    graph_mask: torch.Tensor
    multilabels: torch.Tensor | None = None
    event_id: torch.Tensor | None = None

    @property
    def n_graph(self) -> int:
        return int(self.n_node.shape[0])

    @property
    def edge_index(self) -> torch.Tensor:
        """[2, E] (senders, receivers), the PyG convention."""
        return torch.stack([self.senders, self.receivers])

    @property
    def edge_graph(self) -> torch.Tensor:
        """[E] event index of each edge."""
        return self.node_graph[self.senders]

    @property
    def device(self) -> torch.device:
        return self.nodes.device

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_nodes(
        cls,
        nodes: torch.Tensor,
        n_node: torch.Tensor,
        labels: torch.Tensor,
        weights: torch.Tensor | None = None,
        multilabels: torch.Tensor | None = None,
        device: torch.device | str | None = None,
        event_id: torch.Tensor | None = None,
        edge_backend: str = "auto",
    ) -> GraphBatch:
        """Build a batch on ``device``: nodes are copied once, edges are computed there.

        ``nodes`` [N, 7] float32, ``n_node`` [B] int, ``labels`` [B], ``event_id`` [B] int64.
        ``edge_backend``: ``"torch"`` (on ``device``), ``"numba"`` (the CPU kernel
        :func:`hepfm_data.kernels.edges.fully_connected_edges`; CPU only) or ``"auto"``
        (Numba on CPU, torch elsewhere). Both give the same edges.
        """
        device = torch.device(device) if device is not None else nodes.device
        if edge_backend not in ("auto", "torch", "numba"):
            raise HepfmError(f"edge_backend must be 'auto', 'torch' or 'numba', got {edge_backend!r}")
        use_numba = edge_backend == "numba" or (edge_backend == "auto" and device.type == "cpu")
        if use_numba and device.type != "cpu":
            raise HepfmError(f"edge_backend='numba' computes on the CPU, but the batch goes to {device}")
        if use_numba and nodes.device.type == "cpu" and n_node.device.type == "cpu":
            return cls._from_host_nodes(nodes, n_node, labels, weights, multilabels, event_id)
        # totals from the input (host) counts: no device synchronisation per batch
        n_host = n_node.to(torch.int64)
        total_nodes, total_edges = int(n_host.sum()), int((n_host * (n_host - 1)).sum())
        nodes = nodes.to(device, dtype=torch.float32, non_blocking=True)
        n_node = n_node.to(device, dtype=torch.int64, non_blocking=True)
        _check_nodes(tuple(nodes.shape), total_nodes)
        b = n_node.shape[0]
        node_graph = torch.repeat_interleave(torch.arange(b, device=device), n_node, output_size=nodes.shape[0])
        if use_numba:
            senders, receivers, edges, n_edge = _numba_edges(nodes, n_node)
        else:
            senders, receivers, n_edge = fully_connected(n_node, total_edges)
            edges = edge_features(nodes[:, ETA], nodes[:, PHI], senders, receivers)
        if weights is None:
            weights = torch.ones(b, dtype=torch.float32)
        return cls(
            nodes=nodes, n_node=n_node, node_graph=node_graph, senders=senders, receivers=receivers,
            edges=edges, n_edge=n_edge, globals=n_node.to(torch.float32).unsqueeze(1),
            labels=labels.to(device, non_blocking=True),
            weights=weights.to(device, dtype=torch.float32, non_blocking=True),
            graph_mask=torch.ones(b, dtype=torch.bool, device=device),
            multilabels=None if multilabels is None else multilabels.to(device, dtype=torch.float32, non_blocking=True),
            event_id=None if event_id is None else event_id.to(device, dtype=torch.int64, non_blocking=True),
        )

    @classmethod
    def _from_host_nodes(cls, nodes, n_node, labels, weights, multilabels, event_id) -> GraphBatch:
        """``from_nodes`` for CPU tensors onto the CPU: node graph, edges, edge counts and
        globals by one Numba call (per batch ~2x less time than a torch op each), same values and dtypes."""
        from hepfm_data.kernels.edges import graph_arrays

        x = nodes.numpy() if nodes.dtype == torch.float32 else nodes.to(torch.float32).numpy()
        n = n_node.numpy().astype(np.int64, copy=False)
        if n.ndim != 1 or (n.shape[0] and int(n.min()) < 0):  # the kernel indexes by these counts
            raise HepfmError(f"n_node must be a [B] vector of counts >= 0, got shape {tuple(n.shape)}")
        _check_nodes(x.shape, int(n.sum()))
        graph, s, r, e, n_edge, glob = graph_arrays(x[:, ETA], x[:, PHI], n)
        b = n.shape[0]
        f = torch.from_numpy
        return cls(
            nodes=f(x), n_node=f(n), node_graph=f(graph), senders=f(s), receivers=f(r), edges=f(e),
            n_edge=f(n_edge), globals=f(glob), labels=labels.cpu(),
            weights=torch.ones(b, dtype=torch.float32) if weights is None else weights.to(torch.float32),
            graph_mask=torch.ones(b, dtype=torch.bool),
            multilabels=None if multilabels is None else multilabels.to(torch.float32),
            event_id=None if event_id is None else event_id.to(torch.int64),
        )

    def pad_to(self, n_graph: int, n_nodes: int, n_edges: int) -> GraphBatch:
        """Fixed-shape copy: ``n_graph`` events (last one a dummy), ``n_nodes``, ``n_edges``.

        For torch.compile / CUDA graphs. Needs n_graph > B, n_nodes >= N, n_edges >= E.
        Padding edges connect the first padding node to itself with zero features.
        """
        b, n, e = self.n_graph, self.nodes.shape[0], self.senders.shape[0]
        if n_graph <= b or n_nodes < n or n_edges < e:
            raise HepfmError(
                f"cannot pad a batch of {b} events/{n} nodes/{e} edges to {n_graph}/{n_nodes}/{n_edges}: "
                "padding needs one more event slot and at least as many nodes and edges")
        if n_nodes == n and n_edges > e:
            raise HepfmError("padding edges need at least one padding node: raise n_nodes")
        dev = self.device
        pg, pn, pe = n_graph - b, n_nodes - n, n_edges - e
        pad_node = torch.full((pe,), n, dtype=torch.int64, device=dev)

        def cat(t, pad):
            return torch.cat([t, pad])

        n_node = cat(self.n_node, torch.tensor([pn] + [0] * (pg - 1), device=dev))
        n_edge = cat(self.n_edge, torch.tensor([pe] + [0] * (pg - 1), device=dev))
        return GraphBatch(
            nodes=cat(self.nodes, self.nodes.new_zeros(pn, N_NODE_FEATURES)),
            n_node=n_node, node_graph=cat(self.node_graph, torch.full((pn,), b, dtype=torch.int64, device=dev)),
            senders=cat(self.senders, pad_node), receivers=cat(self.receivers, pad_node),
            edges=cat(self.edges, self.edges.new_zeros(pe, N_EDGE_FEATURES)), n_edge=n_edge,
            globals=cat(self.globals, self.globals.new_zeros(pg, N_GLOBAL_FEATURES)),
            labels=cat(self.labels, self.labels.new_zeros((pg, *self.labels.shape[1:]))),
            weights=cat(self.weights, self.weights.new_zeros(pg)),
            graph_mask=cat(self.graph_mask, torch.zeros(pg, dtype=torch.bool, device=dev)),
            multilabels=None if self.multilabels is None else cat(
                self.multilabels, self.multilabels.new_zeros(pg, self.multilabels.shape[1])),
            event_id=None if self.event_id is None else cat(self.event_id, self.event_id.new_full((pg,), -1)),
        )

    # ------------------------------------------------------------------ converters
    def to_pyg(self):
        """A ``torch_geometric.data.Batch`` (needs ``pip install torch_geometric``)."""
        pyg = require("torch_geometric.data", "pyg", "GraphBatch.to_pyg")
        return pyg.Batch(
            x=self.nodes, edge_index=self.edge_index, edge_attr=self.edges, batch=self.node_graph,
            ptr=torch.cat([self.n_node.new_zeros(1), self.n_node.cumsum(0)]), u=self.globals,
            y=self.labels, weight=self.weights,
        )

    def to_dgl(self):
        """A batched ``dgl.DGLGraph`` (DGL needs torch <= 2.2; optional)."""
        dgl = require("dgl", "dgl", "GraphBatch.to_dgl")
        g = dgl.graph((self.senders, self.receivers), num_nodes=self.nodes.shape[0])
        g.ndata["x"], g.edata["e"] = self.nodes, self.edges
        g.set_batch_num_nodes(self.n_node)
        g.set_batch_num_edges(self.n_edge)
        return g


def _numba_edges(nodes: torch.Tensor, n_node: torch.Tensor):
    """(senders, receivers, edges [E, 3], n_edge) of CPU tensors by the Numba kernel."""

    from hepfm_data.kernels.edges import fully_connected_edge_matrix

    nodes_np = nodes.numpy()
    offsets = counts_to_offsets(n_node.numpy())
    s, r, edges, n_edge = fully_connected_edge_matrix(nodes_np[:, ETA], nodes_np[:, PHI], offsets)
    return torch.from_numpy(s), torch.from_numpy(r), torch.from_numpy(edges), torch.from_numpy(n_edge)


def fully_connected(n_node: torch.Tensor, total: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Directed edges of fully connected graphs without self-loops, on ``n_node.device``.

    Returns (senders [E], receivers [E], n_edge [B]) with global node indices;
    within an event edges are ordered by sender, then receiver.
    """
    dev = n_node.device
    n_node = n_node.to(torch.int64)
    n_edge = n_node * (n_node - 1)
    total = int(n_edge.sum()) if total is None else int(total)  # pass total to avoid a device sync
    node_start = torch.cumsum(n_node, 0) - n_node
    edge_start = torch.cumsum(n_edge, 0) - n_edge
    graph = torch.repeat_interleave(torch.arange(n_node.shape[0], device=dev), n_edge, output_size=total)
    k = torch.arange(total, device=dev) - edge_start[graph]
    m = (n_node[graph] - 1).clamp_min(1)
    s = torch.div(k, m, rounding_mode="floor")
    r = k - s * m
    r = r + (r >= s).to(torch.int64)
    base = node_start[graph]
    return base + s, base + r, n_edge


def edge_features(eta: torch.Tensor, phi: torch.Tensor, senders: torch.Tensor,
                  receivers: torch.Tensor) -> torch.Tensor:
    """[E, 3] (deta, dphi, dr) of edges i -> j: deta = eta_j - eta_i, dphi wrapped to [-pi, pi)."""
    deta = eta[receivers] - eta[senders]
    dphi = torch.remainder(phi[receivers] - phi[senders] + math.pi, 2 * math.pi) - math.pi
    return torch.stack([deta, dphi, torch.sqrt(deta * deta + dphi * dphi)], dim=1)
