"""b-tagging: efficiency(flavour, pT) from the catalog and a per-jet decision.

The uniform for jet ``k`` (its index in the event's *unselected* jet list) of
event ``event_id`` is a counter-based hash of (seed, event_id, k): the decision
does not depend on how events are chunked or which other jets pass the cuts.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from hepfm_data.kernels._hash import key64, uniform01


def efficiency_table(btag) -> np.ndarray:
    """float64 [3, 6] rows (b, c, light) of the catalog's (a, b, c, d, e, f) parameters."""
    return np.array([[getattr(getattr(btag, f), p) for p in "abcdef"] for f in ("b", "c", "light")], dtype=np.float64)


@nb.njit(cache=True, inline="always")
def efficiency(flavour, pt, table):
    """eff = a·tanh(b·pT)·c/(1 + d·pT) + e + f·pT for flavour 5 (b), 4 (c), else light; clipped to [0, 1]."""
    row = 0 if flavour == 5 else (1 if flavour == 4 else 2)
    p = table[row]
    eff = p[0] * math.tanh(p[1] * pt) * p[2] / (1.0 + p[3] * pt) + p[4] + p[5] * pt
    return min(max(eff, 0.0), 1.0)


@nb.njit(cache=True)
def btag_decisions(flavour, pt, jet_offsets, event_id, table, key):
    """int8 [n_jets]: 1 when uniform(key, event_id, k) < efficiency(flavour, pT)."""
    out = np.zeros(pt.shape[0], dtype=np.int8)
    for i in range(jet_offsets.shape[0] - 1):
        eid = np.uint64(event_id[i])
        for j in range(jet_offsets[i], jet_offsets[i + 1]):
            u = uniform01(key, eid, np.uint64(j - jet_offsets[i]))
            out[j] = 1 if u < efficiency(flavour[j], float(pt[j]), table) else 0
    return out


def seed_key(seed: int) -> np.uint64:
    """The uint64 key of an integer b-tag seed."""
    return key64(f"btag:{int(seed)}")
