"""SPEC §4 multilabel truth labels on flat arrays + offsets (Numba, pure functions).

The label schema is declarative (catalog ``labels.multilabel``); ``label_tables``
turns it into padded arrays for the kernel. Layout of the output row: the count
labels (clipped to 255), then for each particle label pT, eta, phi one-hot bins
(all zero when the event has fewer than rank+1 such particles). Particles of one
kind are ranked by descending pT (ties keep input order). PDG ids match on |pid|.
Bin k holds edges[k-1] <= x < edges[k] (numpy ``searchsorted(side='right')``).
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np


class LabelTables(NamedTuple):
    count_pids: np.ndarray  # int32 [n_counts, P] padded with 0
    part_pids: np.ndarray  # int32 [n_particles, P] padded with 0
    part_rank: np.ndarray  # int64 [n_particles]
    pt_edges: np.ndarray  # float64 [n_particles, E] padded with +inf
    n_pt_edges: np.ndarray  # int64 [n_particles]
    eta_edges: np.ndarray  # float64 [n_eta_edges]
    phi_edges: np.ndarray  # float64 [n_phi_edges]
    n_labels: int


def label_tables(schema) -> LabelTables:
    """Padded arrays of a catalog :class:`~hepfm_data.core.catalog.LabelSchema`."""
    def pad(rows, fill, dtype):
        width = max([len(r) for r in rows] + [1])
        out = np.full((len(rows), width), fill, dtype=dtype)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return out

    parts = schema.particles
    return LabelTables(
        pad([c.pids for c in schema.counts], 0, np.int32),
        pad([p.pids for p in parts], 0, np.int32),
        np.array([p.rank for p in parts], dtype=np.int64),
        pad([p.pt_edges for p in parts], np.inf, np.float64),
        np.array([len(p.pt_edges) for p in parts], dtype=np.int64),
        np.asarray(schema.eta_edges, dtype=np.float64),
        np.asarray(schema.phi_edges, dtype=np.float64),
        schema.n_labels,
    )


@nb.njit(cache=True, inline="always")
def _matches(pid, pids):
    a = abs(pid)
    for p in pids:
        if p != 0 and a == abs(p):
            return True
    return False


@nb.njit(cache=True, inline="always")
def _bin(x, edges, n_edges):
    b = 0
    for k in range(n_edges):
        if x >= edges[k]:
            b = k + 1
    return b


@nb.njit(cache=True)
def multilabels(pid, pt, eta, phi, offsets, count_pids, part_pids, part_rank,
                pt_edges, n_pt_edges, eta_edges, phi_edges, n_labels):
    """uint8 [B, n_labels] SPEC §4 label vectors from truth particles (flat + offsets)."""
    n_ev = offsets.shape[0] - 1
    out = np.zeros((n_ev, n_labels), dtype=np.uint8)
    n_counts = count_pids.shape[0]
    n_eta, n_phi = eta_edges.shape[0], phi_edges.shape[0]
    cand = np.empty(0, dtype=np.int64)
    for i in range(n_ev):
        lo, hi = offsets[i], offsets[i + 1]
        if hi - lo > cand.shape[0]:
            cand = np.empty(hi - lo, dtype=np.int64)
        for c in range(n_counts):
            n = 0
            for t in range(lo, hi):
                if _matches(pid[t], count_pids[c]):
                    n += 1
            out[i, c] = min(n, 255)
        col = n_counts
        for q in range(part_pids.shape[0]):
            width = n_pt_edges[q] + 1 + n_eta + 1 + n_phi + 1
            m = 0
            for t in range(lo, hi):
                if _matches(pid[t], part_pids[q]):
                    cand[m] = t
                    m += 1
            rank = part_rank[q]
            if m > rank:
                # stable selection of the rank-th largest pT: insertion sort on the few candidates
                for a in range(1, m):
                    v = cand[a]
                    b = a - 1
                    while b >= 0 and pt[cand[b]] < pt[v]:
                        cand[b + 1] = cand[b]
                        b -= 1
                    cand[b + 1] = v
                t = cand[rank]
                out[i, col + _bin(pt[t], pt_edges[q], n_pt_edges[q])] = 1
                base = col + n_pt_edges[q] + 1
                out[i, base + _bin(eta[t], eta_edges, n_eta)] = 1
                base += n_eta + 1
                out[i, base + _bin(phi[t], phi_edges, n_phi)] = 1
            col += width
    return out
