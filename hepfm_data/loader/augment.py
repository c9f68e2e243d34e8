"""Event augmentations (SPEC §7) on packed node arrays, for the loader's ``augment`` hook.

An augmentation is any callable ``aug(nodes, offsets, rng) -> nodes``: ``nodes`` [N, 7]
float32 (pt GeV, eta, phi rad, energy GeV, btag, charge, type), ``offsets`` [B+1] int64
event boundaries, ``rng`` a ``numpy.random.Generator`` that the loader seeds from
(seed, epoch, rank, batch) — so the same batch is augmented the same way whatever the
number of workers. Each draws one random number per event and returns a new array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepfm_data.batches.graph import ENERGY, ETA, PHI, PT, TYPE
from hepfm_data.core.events import wrap_phi

__all__ = ["BoostZ", "Compose", "FlipEta", "RotatePhi"]


def _per_node(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return np.repeat(values, np.diff(offsets))


@dataclass(frozen=True)
class RotatePhi:
    """Azimuthal rotation of the whole event (MET included) by a uniform angle in [-pi, pi)."""

    def __call__(self, nodes, offsets, rng):
        out = nodes.copy()
        angle = rng.uniform(-np.pi, np.pi, len(offsets) - 1)
        out[:, PHI] = wrap_phi(out[:, PHI] + _per_node(angle, offsets)).astype(np.float32)
        return out


@dataclass(frozen=True)
class FlipEta:
    """Beam-axis inversion eta -> -eta of the whole event with probability ``p``."""

    p: float = 0.5

    def __call__(self, nodes, offsets, rng):
        out = nodes.copy()
        flip = rng.random(len(offsets) - 1) < self.p
        out[:, ETA] *= np.where(_per_node(flip, offsets), -1.0, 1.0).astype(np.float32)
        return out


@dataclass(frozen=True)
class BoostZ:
    """Longitudinal boost with beta uniform in [0, ``beta_max``] (Kishimoto et al.: 0.3).

    A Lorentz boost of each object's four-vector (pT, eta, phi, E), massive or not:
    E' = gamma (E + beta pz), pz' = gamma (pz + beta E), eta' = asinh(pz' / pT); pT, phi and the
    mass sqrt(E^2 - p^2) are kept (for massless nodes eta' = eta + artanh beta, E' = pT cosh eta').
    The MET node (``met_type``, transverse) is unchanged. Computed in float64.
    """

    beta_max: float = 0.3
    met_type: int = 4

    def __call__(self, nodes, offsets, rng):
        out = nodes.copy()
        beta = _per_node(rng.uniform(0.0, self.beta_max, len(offsets) - 1), offsets)
        moving = (out[:, TYPE] != self.met_type) & (out[:, PT] > 0)
        b = beta[moving]
        gamma = 1.0 / np.sqrt(1.0 - b * b)
        pt = out[moving, PT].astype(np.float64)
        pz = pt * np.sinh(out[moving, ETA].astype(np.float64))
        e = out[moving, ENERGY].astype(np.float64)
        out[moving, ETA] = np.arcsinh(gamma * (pz + b * e) / pt)
        out[moving, ENERGY] = gamma * (e + b * pz)
        return out


@dataclass(frozen=True)
class Compose:
    """Apply augmentations in order."""

    augs: tuple

    def __init__(self, *augs):
        object.__setattr__(self, "augs", tuple(augs))

    def __call__(self, nodes, offsets, rng):
        for aug in self.augs:
            nodes = aug(nodes, offsets, rng)
        return nodes
