"""Which record objects the paper graph's nodes copy (store format 3: the record keeps them once).

Pure Numba on flat arrays + offsets. The paper nodes of one object type are, per event, an
order-preserving subset of that collection's record objects with the same (pt, η, φ) bits
(``features.assemble_nodes`` copies them). The record then stores only the other objects'
values plus a mask; :func:`match_selected` recovers that mask from the two tables.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def _match(rec, rec_off, nodes, node_off, mask):
    """Greedy earliest match per event; returns -1 or the first event whose nodes are not a subsequence."""
    for i in range(rec_off.shape[0] - 1):
        j, j1 = node_off[i], node_off[i + 1]
        for k in range(rec_off[i], rec_off[i + 1]):
            if j < j1 and rec[k, 0] == nodes[j, 0] and rec[k, 1] == nodes[j, 1] and rec[k, 2] == nodes[j, 2]:
                mask[k] = 1
                j += 1
        if j != j1:
            return i
    return -1


def match_selected(rec_bits: np.ndarray, rec_off: np.ndarray, node_bits: np.ndarray, node_off: np.ndarray
                   ) -> tuple[np.ndarray, int]:
    """(mask uint8 [n], bad event or -1): objects of ``rec_bits`` copied by the nodes ``node_bits``.

    ``rec_bits`` uint32 [n, 3] / ``node_bits`` uint32 [m, 3]: the (pt, eta, phi) float32 bit
    patterns (bit equality: NaN and -0.0 compare exactly); ``rec_off`` int64 [B+1] / ``node_off``
    int64 [B+1]: per-event offsets. Equal objects are interchangeable (same bits), so the greedy
    earliest match is as good as any; -1 means every node was found, in order."""
    mask = np.zeros(rec_bits.shape[0], np.uint8)
    bad = _match(np.ascontiguousarray(rec_bits), rec_off.astype(np.int64), np.ascontiguousarray(node_bits),
                 node_off.astype(np.int64), mask)
    return mask, int(bad)
