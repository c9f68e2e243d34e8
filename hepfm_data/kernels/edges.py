"""Fully connected edges and edge features on flat arrays + offsets (Numba, CPU).

The CPU twin of :func:`hepfm_data.batches.graph.fully_connected` + :func:`hepfm_data.batches.graph.edge_features`:
same edge order (per event, by sender then receiver, no self-edges), same features
(deta = eta_j - eta_i, dphi = phi_j - phi_i wrapped to [-pi, pi), dr = sqrt(deta^2 + dphi^2)),
computed in float32 like the torch path.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["edge_counts", "fully_connected_edge_matrix", "fully_connected_edges", "fully_connected_graph", "graph_arrays"]


@nb.njit(cache=True)
def _edge_counts(offsets):
    n_event = offsets.shape[0] - 1
    out = np.empty(n_event, np.int64)
    for b in range(n_event):
        n = offsets[b + 1] - offsets[b]
        out[b] = n * (n - 1)
    return out


@nb.njit(cache=True)
def _fill_edges(eta, phi, offsets, senders, receivers, feat):
    two_pi = np.float32(2.0 * np.pi)
    pi = np.float32(np.pi)
    inner = np.float32(6.28)  # below 2pi by far more than the rounding of x / 2pi
    e = 0
    for b in range(offsets.shape[0] - 1):
        lo, hi = offsets[b], offsets[b + 1]
        for i in range(lo, hi):
            for j in range(lo, hi):
                if i == j:
                    continue
                de = np.float32(eta[j] - eta[i])
                x = np.float32(phi[j] - phi[i]) + pi
                if x >= 0 and x < inner:  # floor(x / 2pi) == 0 exactly: skip the division (same bits)
                    dp = x - pi
                else:
                    dp = np.float32(x - np.floor(x / two_pi) * two_pi) - pi
                senders[e] = i
                receivers[e] = j
                feat[e, 0] = de
                feat[e, 1] = dp
                feat[e, 2] = np.sqrt(de * de + dp * dp)
                e += 1
    return e


@nb.njit(cache=True)
def graph_arrays(eta, phi, n_node):
    """The arrays of :func:`fully_connected_graph` (``n_node`` int64 [B], >= 0, summing to N; unchecked)."""
    n_graph = n_node.shape[0]
    offsets = np.empty(n_graph + 1, np.int64)
    offsets[0] = 0
    n_edge = np.empty(n_graph, np.int64)
    total = 0
    for b in range(n_graph):
        n = n_node[b]
        offsets[b + 1] = offsets[b] + n
        n_edge[b] = n * (n - 1)
        total += n * (n - 1)
    node_graph = np.empty(offsets[n_graph], np.int64)
    glob = np.empty((n_graph, 1), np.float32)
    for b in range(n_graph):
        node_graph[offsets[b]:offsets[b + 1]] = b
        glob[b, 0] = n_node[b]
    senders = np.empty(total, np.int64)
    receivers = np.empty(total, np.int64)
    feat = np.empty((total, 3), np.float32)
    _fill_edges(eta, phi, offsets, senders, receivers, feat)
    return node_graph, senders, receivers, feat, n_edge, glob


def fully_connected_graph(eta: np.ndarray, phi: np.ndarray, n_node: np.ndarray):
    """Everything of a fully connected batch but its nodes, in one pass: ``eta``, ``phi`` [N]
    float32 (radians; strided views allowed), ``n_node`` [B] (sums to N) ->
    (node_graph [N] int64, senders, receivers [E] int64, edges [E, 3] float32 as
    :func:`fully_connected_edge_matrix`, n_edge [B] int64, globals [B, 1] float32 = n_node)."""
    n_node = np.ascontiguousarray(n_node, dtype=np.int64)
    if n_node.ndim != 1 or (n_node < 0).any() or int(n_node.sum()) != eta.shape[0] or phi.shape != eta.shape:
        raise ValueError(f"n_node must be >= 0 and sum to the {eta.shape[0]} nodes")
    return graph_arrays(eta, phi, n_node)


def edge_counts(offsets: np.ndarray) -> np.ndarray:
    """[B] int64 number of directed edges n (n - 1) per event, from ``offsets`` [B+1]."""
    return _edge_counts(np.ascontiguousarray(offsets, dtype=np.int64))


def fully_connected_edge_matrix(eta: np.ndarray, phi: np.ndarray, offsets: np.ndarray):
    """Like :func:`fully_connected_edges`, with the features as one [E, 3] float32 array
    (deta, dphi, dr) — the layout of ``GraphBatch.edges``."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    eta = np.ascontiguousarray(eta, dtype=np.float32)
    phi = np.ascontiguousarray(phi, dtype=np.float32)
    if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets[0] != 0 or offsets[-1] != eta.shape[0]:
        raise ValueError(f"offsets must run from 0 to the {eta.shape[0]} nodes, got {offsets[:1]}..{offsets[-1:]}")
    n_edge = _edge_counts(offsets)
    total = int(n_edge.sum())
    senders = np.empty(total, np.int64)
    receivers = np.empty(total, np.int64)
    feat = np.empty((total, 3), np.float32)
    _fill_edges(eta, phi, offsets, senders, receivers, feat)
    return senders, receivers, feat, n_edge


def fully_connected_edges(eta: np.ndarray, phi: np.ndarray, offsets: np.ndarray):
    """Edges of fully connected events without self-edges, and their features.

    ``eta``, ``phi`` [N] (radians) of the packed nodes, ``offsets`` [B+1] int64 node
    offsets of each event. Returns ``senders``, ``receivers`` [E] int64 (global node
    indices), ``deta``, ``dphi``, ``dr`` [E] float32 and ``n_edge`` [B] int64.
    """
    senders, receivers, feat, n_edge = fully_connected_edge_matrix(eta, phi, offsets)
    return senders, receivers, feat[:, 0], feat[:, 1], feat[:, 2], n_edge
