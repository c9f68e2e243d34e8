"""Deterministic train/validation/test assignment by a salted hash of ``event_id``."""

from __future__ import annotations

import numba as nb
import numpy as np

from hepfm_data.core.errors import HepfmError
from hepfm_data.kernels._hash import key64, uniform01

SPLIT_RULE = ("u = splitmix64-based uniform of (blake2b-64(salt), event_id); "
              "split = first k with u < cumsum(fractions)[k] (train, validation, test)")


def check_fractions(fractions) -> tuple[float, float, float]:
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or any(x < 0 for x in f) or abs(sum(f) - 1.0) > 1e-9:
        raise HepfmError(f"split fractions must be 3 non-negative numbers summing to 1, got {fractions!r}")
    return f  # type: ignore[return-value]


@nb.njit(cache=True)
def _assign(event_id, key, c0, c1):
    out = np.empty(event_id.shape[0], dtype=np.int8)
    for i in range(event_id.shape[0]):
        u = uniform01(key, np.uint64(event_id[i]), np.uint64(0))
        out[i] = 0 if u < c0 else (1 if u < c1 else 2)
    return out


def assign_splits(event_id: np.ndarray, salt: str, fractions) -> np.ndarray:
    """int8 [B]: 0 train, 1 validation, 2 test; depends only on (salt, event_id, fractions)."""
    f = check_fractions(fractions)
    return _assign(np.ascontiguousarray(event_id, dtype=np.uint64), key64(f"split:{salt}"), f[0], f[0] + f[1])
