"""Exact colour algebra for the recursion: explicit SU(3) tensors, computed once per process.

Every off-shell current of the recursion is a sum Σ_c C_c ⊗ K_c of colour tensors C_c (dense arrays
over the colour indices of the current's external legs and of the current itself) times kinematic
parts K_c. The tensors are built by contracting the vertices' T^a_ij, f^abc and δ_ij numerically
(:meth:`ColourBasis.merge`) and stored once, normalised (proportional tensors share one entry). The
colour-summed |M|² is then Σ_kl K_k G_kl K_l* with the Gram matrix G_kl = Σ_colours C_k C_l*: the
colour sum is exact (no colour sampling, no large-N_c limit).

For the LHE colour flow of an event, :meth:`ColourBasis.flows` lists the colour-flow basis tensors
(open strings (T^a1 ... T^ak)_ij from a colour to an anticolour leg, gluons distributed over them) and
:func:`flow_projector` the matrix that projects a colour-decomposed amplitude onto them (least squares
in the colour space), so an event's flow can be chosen with probability ∝ |A_flow|².
"""

from __future__ import annotations

import itertools
import string

import numpy as np

#: Gell-Mann generators T^a = λ^a/2, shape [8, 3, 3]
_L = np.zeros((8, 3, 3), dtype=complex)
_L[0, 0, 1] = _L[0, 1, 0] = 1
_L[1, 0, 1], _L[1, 1, 0] = -1j, 1j
_L[2, 0, 0], _L[2, 1, 1] = 1, -1
_L[3, 0, 2] = _L[3, 2, 0] = 1
_L[4, 0, 2], _L[4, 2, 0] = -1j, 1j
_L[5, 1, 2] = _L[5, 2, 1] = 1
_L[6, 1, 2], _L[6, 2, 1] = -1j, 1j
_L[7, 0, 0] = _L[7, 1, 1] = 1 / np.sqrt(3)
_L[7, 2, 2] = -2 / np.sqrt(3)
T = _L / 2
#: structure constants f^abc = -2i Tr([T^a, T^b] T^c), shape [8, 8, 8] (real)
F = np.real(-2j * (np.einsum("aij,bjk,cki->abc", T, T, T) - np.einsum("bij,ajk,cki->abc", T, T, T)))
DELTA3 = np.eye(3, dtype=complex)
#: the three colour structures of the four-gluon vertex, [8, 8, 8, 8] each: f^abe f^cde, f^ace f^bde, f^ade f^bce
F4 = (np.einsum("abe,cde->abcd", F, F), np.einsum("ace,bde->abcd", F, F), np.einsum("ade,bce->abcd", F, F))

_LETTERS = string.ascii_letters


class ColourBasis:
    """Registry of the normalised colour tensors of one process's currents.

    A tensor is stored with the sorted tuple of the external legs whose indices it carries and
    whether it has an own (current) index as the last axis. :meth:`add` returns (key, factor) with
    tensor = factor · stored[key]."""

    def __init__(self, dims: dict[int, int]):
        self.dims = dims  # external leg -> colour dimension (3 or 8; colourless legs absent)
        self.tensors: list[np.ndarray] = []
        self.legs: list[tuple[int, ...]] = []
        self._index: dict[tuple, int] = {}

    def add(self, tensor: np.ndarray, legs: tuple[int, ...]) -> tuple[int, complex] | None:
        """Register ``tensor`` (axes: ``legs`` then possibly the own index); None when it vanishes."""
        flat = tensor.reshape(-1)
        nz = np.flatnonzero(np.abs(flat) > 1e-12)
        if not len(nz):
            return None
        factor = complex(flat[nz[0]])
        norm = tensor / factor
        key = (legs, tensor.shape, (np.round(norm, 10) + 0.0).tobytes())
        if key not in self._index:
            self._index[key] = len(self.tensors)
            self.tensors.append(norm)
            self.legs.append(legs)
        return self._index[key], factor

    def external(self, leg: int) -> int:
        """The key of an external leg's own tensor δ (its index = the current's index)."""
        d = self.dims[leg]
        key, _ = self.add(np.eye(d, dtype=complex), (leg,))
        return key

    def merge(self, parts: list[tuple[int | None, bool]], vertex: np.ndarray | None, out_own: bool
              ) -> tuple[int, complex] | None:
        """Contract currents' tensors with a vertex tensor.

        ``parts``: (key or None for a colourless current, whether its tensor has an own index) per merged
        current; ``vertex``: tensor whose axes are the coloured parts' own indices in order, then the new
        current's own index (if ``out_own``); None when nothing is contracted (all colourless: product).
        """
        letters = iter(_LETTERS)
        leg_letter = {leg: next(letters) for leg in sorted(self.dims)}
        operands, subs, legs_out, own_letters = [], [], [], []
        for key, has_own in parts:
            if key is None:
                continue
            t, legs = self.tensors[key], self.legs[key]
            sub = "".join(leg_letter[leg] for leg in legs)
            if has_own:
                o = next(letters)
                own_letters.append(o)
                sub += o
            operands.append(t)
            subs.append(sub)
            legs_out += legs
        new = next(letters) if out_own else ""
        if vertex is not None:
            operands.append(vertex)
            subs.append("".join(own_letters) + new)
        legs_out = tuple(sorted(legs_out))
        out_sub = "".join(leg_letter[leg] for leg in legs_out) + new
        if not operands:
            return None
        tensor = np.einsum(",".join(subs) + "->" + out_sub, *operands)
        return self.add(tensor, legs_out)

    def gram(self, keys: list[int]) -> np.ndarray:
        """G_kl = Σ_colours C_k C_l* of full-amplitude tensors ``keys`` (every leg's index summed; einsum's own
        loops, not BLAS, so the result does not depend on the BLAS build or its threads)."""
        mats = np.stack([self.tensors[k].reshape(-1) for k in keys])
        return np.einsum("kd,ld->kl", mats, mats.conj())

    def flows(self, triplets: list[int], antitriplets: list[int], gluons: list[int]) -> list[tuple]:
        """Colour-flow basis of the full amplitude: each flow is a tuple of strings (colour leg, gluons...,
        anticolour leg) joining every colour (triplet) leg to an anticolour leg with the gluons in order;
        returns [(flow, tensor over all coloured legs in sorted order)]. No closed gluon loops (every
        process here has a quark line)."""
        out = []
        for perm in itertools.permutations(antitriplets):
            pairs = list(zip(triplets, perm))
            # distribute gluons: each gluon chooses a string; each string orders its gluons
            for assign in itertools.product(range(len(pairs)), repeat=len(gluons)):
                groups = [[g for g, s in zip(gluons, assign) if s == k] for k in range(len(pairs))]
                for orders in itertools.product(*(itertools.permutations(gr) for gr in groups)):
                    strings = tuple((i, *o, j) for (i, j), o in zip(pairs, orders))
                    out.append((strings, self._flow_tensor(strings)))
        return out

    def _flow_tensor(self, strings) -> np.ndarray:
        letters = iter(_LETTERS)
        legs = sorted(self.dims)
        leg_letter = {leg: next(letters) for leg in legs}
        operands, subs = [], []
        for s in strings:
            i, glu, j = s[0], s[1:-1], s[-1]
            row = leg_letter[i]
            for g in glu:
                col = next(letters)
                operands.append(T)
                subs.append(leg_letter[g] + row + col)
                row = col
            operands.append(DELTA3)
            subs.append(row + leg_letter[j])
        return np.einsum(",".join(subs) + "->" + "".join(leg_letter[leg] for leg in legs), *operands)


def flow_projector(flow_tensors: list[np.ndarray], amp_tensors: list[np.ndarray]) -> np.ndarray:
    """R [n_flows, n_terms]: the flow amplitudes A_F = Σ_c R[F, c] K_c of M = Σ_c C_c K_c, from the
    least-squares solution of M = Σ_F A_F B_F (B the flow tensors) in colour space."""
    b = np.stack([t.reshape(-1) for t in flow_tensors], axis=1)
    c = np.stack([t.reshape(-1) for t in amp_tensors], axis=1)
    return np.linalg.pinv(b) @ c
