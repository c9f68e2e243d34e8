"""Array helpers shared by every layer (numpy only, no other hepfm imports)."""

from __future__ import annotations

import numpy as np


def counts_to_offsets(counts) -> np.ndarray:
    """int64 [n + 1] offsets (0, c0, c0 + c1, ...) of per-event counts [n]."""
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets
