"""Counter-based hashing shared by the kernels and the store: deterministic
random numbers keyed by (seed, event_id, index), independent of chunking."""

from __future__ import annotations

import hashlib

import numba as nb
import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@nb.njit(cache=True, inline="always")
def mix64(x):
    """splitmix64 finaliser: a bijective 64-bit mixer (uint64 -> uint64)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@nb.njit(cache=True, inline="always")
def uniform01(key, event_id, index):
    """Uniform float64 in [0, 1) from (key, event_id, index), all uint64."""
    h = mix64(key ^ mix64(event_id + _GOLDEN) ^ mix64(index * _GOLDEN + np.uint64(1)))
    return float(h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


def key64(text: str | int) -> np.uint64:
    """A 64-bit key from a string salt or an integer seed (stable across runs and platforms)."""
    digest = hashlib.blake2b(str(text).encode("utf-8"), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))
