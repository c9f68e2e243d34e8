"""Tree-level amplitudes by colour-dressed Berends-Giele recursion, vectorised over events and helicities.

A process is a list of external legs (PDG id, incoming?). Every leg is read as a field flowing *into*
the rest of the diagram: an incoming particle keeps its id, an outgoing one becomes its antiparticle,
and leg i brings the momentum q_i = +p_i (incoming) or -p_i (outgoing). The off-shell current J(S, f)
of a subset S of legs is the sum of all tree graphs joining the legs of S to one propagating field f
(momentum P_S = Σ_{i∈S} q_i); it is built from the currents of the subsets' two- and three-way splits
through every vertex of :mod:`.model` whose fields match (Berends-Giele recursion). The amplitude is the
current of all legs but the last, amputated and contracted with the last leg's wavefunction.

*Compilation* (once per process, event-independent, :class:`Amplitude`): the recursion's graph of
currents, the coupling orders (only currents that can reach the process's LO order are kept), the
fermion signs (each current has its fermion legs in canonical order; a merge multiplies by the parity
of the permutation that brings (ψ̄ legs, ψ legs) into order), and the exact colour algebra
(:mod:`.colour`): each current is Σ_c C_c ⊗ K_c over colour tensors C_c, so |M|² summed over colours is
Σ_kl K_k G_kl K_l* with the process's colour Gram matrix G.

*Evaluation* (:meth:`Amplitude.me2`): kinematic currents are complex arrays [N, h_0, ..., h_{n-1}, c]
holding one axis per external leg (size = that leg's helicity count if the leg is in S, else 1; c = 4
for spinors and vectors, 1 for scalars), so every sub-current is computed once for its own legs'
helicities and numpy broadcasting forms the products. Spinors: HELAS helicity spinors in the chiral
representation (:mod:`..helicity`); vector bosons: real linear polarisations (the helicity sum is
basis independent). Gauge checks replace a massless boson's polarisations by its momentum
(``polarisation``) or vary the gluon/photon propagator's ξ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepfm_data.core.errors import GenerationError
from hepfm_data.readers.generation import helicity as hel
from hepfm_data.readers.generation.lo import colour as col
from hepfm_data.readers.generation.lo import model as sm

# ------------------------------------------------------------------ Lorentz kernels (broadcast over [..., 4])

def _mdot(a, b):
    return a[..., 0:1] * b[..., 0:1] - a[..., 1:2] * b[..., 1:2] - a[..., 2:3] * b[..., 2:3] - a[..., 3:4] * b[..., 3:4]


def _chiral(x, cl, cr):
    """x·(cL P_L + cR P_R) (row) or (cL P_L + cR P_R)·x (column): P_L keeps components 0, 1."""
    if cl == cr:
        return cl * x if cl != 1 else x
    return np.concatenate([cl * x[..., :2], cr * x[..., 2:]], axis=-1)


def _slash_col(v, psi):
    """v̸ ψ (v upper-index components)."""
    v0, v1, v2, v3 = v[..., 0], v[..., 1], v[..., 2], v[..., 3]
    p0, p1, p2, p3 = psi[..., 0], psi[..., 1], psi[..., 2], psi[..., 3]
    a = ((v0 - v3) * p2 - (v1 - 1j * v2) * p3, -(v1 + 1j * v2) * p2 + (v0 + v3) * p3)
    b = ((v0 + v3) * p0 + (v1 - 1j * v2) * p1, (v1 + 1j * v2) * p0 + (v0 - v3) * p1)
    return np.stack([a[0], a[1], b[0], b[1]], axis=-1)


def _slash_row(psibar, v):
    """ψ̄ v̸."""
    v0, v1, v2, v3 = v[..., 0], v[..., 1], v[..., 2], v[..., 3]
    r0, r1, r2, r3 = psibar[..., 0], psibar[..., 1], psibar[..., 2], psibar[..., 3]
    lo = (r2 * (v0 + v3) + r3 * (v1 + 1j * v2), r2 * (v1 - 1j * v2) + r3 * (v0 - v3))
    up = (r0 * (v0 - v3) - r1 * (v1 + 1j * v2), -r0 * (v1 - 1j * v2) + r1 * (v0 + v3))
    return np.stack([lo[0], lo[1], up[0], up[1]], axis=-1)


def _current(psibar, psi):
    """ψ̄ γ^μ ψ (upper index)."""
    a0, a1, a2, a3 = psibar[..., 0], psibar[..., 1], psibar[..., 2], psibar[..., 3]
    b0, b1, b2, b3 = psi[..., 0], psi[..., 1], psi[..., 2], psi[..., 3]
    j0 = a0 * b2 + a1 * b3 + a2 * b0 + a3 * b1
    j1 = (a0 * b3 + a1 * b2) - (a2 * b1 + a3 * b0)
    j2 = (-1j * a0 * b3 + 1j * a1 * b2) - (-1j * a2 * b1 + 1j * a3 * b0)
    j3 = (a0 * b2 - a1 * b3) - (a2 * b0 - a3 * b1)
    return np.stack([j0, j1, j2, j3], axis=-1)


def _scalar_chiral(x, a, b):
    """x (a + b γ5), γ5 = diag(-1, -1, 1, 1) (row or column alike)."""
    return _chiral(x, a - b, a + b)


# ------------------------------------------------------------------ compiled recursion


@dataclass(frozen=True)
class Leg:
    """An external particle: PDG id and direction."""

    pdg: int
    incoming: bool

    @property
    def field(self) -> int:
        """The field this leg brings into the rest of the graph."""
        return self.pdg if self.incoming else sm.anti(self.pdg)


@dataclass
class _Step:
    target: tuple          # (mask, field, orders)
    kind: str              # ffv_v, ffv_f, ffv_fbar, ffs_s, ffs_f, ffs_fbar, vvv, vvs_s, vvs_v, vss_*, vvvv
    parts: tuple           # source currents (mask, field, orders), in the kernel's argument order
    vertex: sm.Vertex
    sign: int
    colour: list           # [(source keys tuple, target key, coefficient [, vvvv structure])]


def _popcount(x: int) -> int:
    return bin(x).count("1")


def _legs_of(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def _splits(mask: int):
    """The unordered splits of ``mask`` into two non-empty subsets (a, b), a holding the lowest leg, each once."""
    low = mask & -mask
    rest = mask ^ low
    sub = rest
    while True:
        a = low | sub
        if a != mask:
            yield a, mask ^ a
        if sub == 0:
            return
        sub = (sub - 1) & rest


def _parity(seq: list[int]) -> int:
    inv = sum(1 for i in range(len(seq)) for j in range(i + 1, len(seq)) if seq[i] > seq[j])
    return -1 if inv % 2 else 1


class Amplitude:
    """Compiled tree-level amplitude of ``legs`` at the exact coupling ``orders`` = (g_s power, EW power).

    ``classes``: the vertex classes of :mod:`.model`; ``params``: :class:`.model.Parameters`.
    :meth:`me2` gives Σ_{hel, colour} |M|² (not averaged) in units of g_s^orders[0] squared."""

    def __init__(self, legs: list[Leg], classes: tuple[str, ...], orders: tuple[int, int],
                 params: sm.Parameters | None = None, xi: float = 1.0, gauge: str = "unitary"):
        if len(legs) < 4:
            raise GenerationError("the LO engine needs at least 2 -> 2 processes")
        for leg in legs:
            sm.check_pdg(leg.pdg, "process definition")
        self.legs = list(legs)
        self.n = len(legs)
        self.params = params or sm.Parameters()
        self.orders = tuple(orders)
        self.xi = xi
        if gauge not in ("unitary", "feynman"):
            raise GenerationError(f"W/Z gauge must be 'unitary' or 'feynman' (with the goldstone class), got {gauge!r}")
        self.gauge = gauge
        self.vertices = sm.vertices(tuple(classes), self.params)
        dims = {i: sm.colour_dim(leg.field) for i, leg in enumerate(legs) if sm.colour_dim(leg.field) > 1}
        self.basis = col.ColourBasis(dims)
        self._compile()

    # -- compilation
    def _match3(self, fa: int, fb: int):
        """[(vertex, kind, swap, X)] for currents of fields fa, fb meeting at a 3-point vertex."""
        out = []
        for v in self.vertices:
            if v.kind in ("ffv", "ffs"):
                bar, psi, bos = v.fields
                k = v.kind
                for a, b, swap in ((fa, fb, False), (fb, fa, True)):
                    if (a, b) == (bar, psi):
                        out.append((v, f"{k}_{'v' if k == 'ffv' else 's'}", swap, bos))
                    elif (a, b) == (bar, bos):
                        out.append((v, f"{k}_fbar", swap, psi))
                    elif (a, b) == (psi, bos):
                        out.append((v, f"{k}_f", swap, bar))
                    if fa == fb:
                        break
            elif v.kind == "vvv" and fa == fb == v.fields[0]:
                out.append((v, "vvv", False, v.fields[0]))
            elif v.kind == "vvs":
                v1, v2, s = v.fields
                for a, b, swap in ((fa, fb, False), (fb, fa, True)):
                    if (a, b) == (v1, v2):
                        out.append((v, "vvs_s", swap, s))
                    elif (a, b) == (v1, s):
                        out.append((v, "vvs_v", swap, v2))
                    elif (a, b) == (v2, s) and v1 != v2:
                        out.append((v, "vvs_v", swap, v1))
                    if fa == fb:
                        break
            elif v.kind == "vss":
                vec, s1, s2 = v.fields
                for a, b, swap in ((fa, fb, False), (fb, fa, True)):
                    if (a, b) == (s1, s2):
                        out.append((v, "vss_v", swap, vec))
                    elif (a, b) == (vec, s1):
                        out.append((v, "vss_s2", swap, s2))
                    elif (a, b) == (vec, s2):
                        out.append((v, "vss_s1", swap, s1))
        # a unique (kind, X) per vertex and role assignment
        seen, uniq = set(), []
        for m in out:
            key = (m[0].name, m[1], m[2], m[3])
            if key not in seen:
                seen.add(key)
                uniq.append(m)
        return uniq

    def _compile(self) -> None:
        last = self.n - 1
        full = (1 << last) - 1
        max_qcd, max_ew = self.orders
        self.currents: dict[tuple, list] = {}  # (mask, field, orders) -> colour keys (list)
        self.steps: list[_Step] = []
        self.fermions = {i for i, leg in enumerate(self.legs) if sm.is_fermion(leg.pdg)}
        by_mask: dict[int, list[tuple]] = {}
        for i in range(last):
            f = self.legs[i].field
            key = (1 << i, f, (0, 0))
            self.currents[key] = [self.basis.external(i)] if i in self.basis.dims else [None]
            by_mask.setdefault(1 << i, []).append(key)
        masks = sorted(range(1, full + 1), key=_popcount)
        for mask in masks:
            if _popcount(mask) < 2:
                continue
            produced: dict[tuple, dict] = {}
            for a, b in _splits(mask):  # two-way splits
                for ka in by_mask.get(a, ()):
                    for kb in by_mask.get(b, ()):
                        self._merge2(mask, ka, kb, produced, max_qcd, max_ew)
            # three-way splits (four-gluon vertex)
            if any(v.kind == "vvvv" for v in self.vertices) and _popcount(mask) >= 3:
                self._merge3(mask, by_mask, produced, max_qcd)
            for key, keys in produced.items():
                if mask != full and not self._can_reach(key):
                    continue
                self.currents[key] = sorted(keys)
                by_mask.setdefault(mask, []).append(key)
        target = (full, sm.anti(self.legs[last].field), self.orders)
        if target not in self.currents:
            raise GenerationError(f"no tree-level graph of order {self.orders} joins the legs "
                                  f"{[(leg.pdg, 'in' if leg.incoming else 'out') for leg in self.legs]}")
        self.target = target
        self.steps = [s for s in self.steps if s.target[0] != full or s.target == target]
        self._prune()
        keys = self.currents[target]
        self.final_keys = keys
        self.gram = self.basis.gram(keys) if keys != [None] else np.ones((1, 1))
        self.colour_map = self._colour_map(keys)

    def _colour_map(self, keys) -> np.ndarray:
        """R [r, K]: the final colour tensors C_k = Σ_j e_j R_jk in an orthonormal basis e_j of their span, so
        that |M|² = Σ_j |Σ_k R_jk A_k|² is a sum of squares of independent colour components (no cancellation
        between linearly dependent structures such as f^abc T^c and [T^a, T^b])."""
        if keys == [None]:
            return np.ones((1, 1), dtype=complex)
        # G = U Λ U† (eigh of the small K x K Gram matrix, built with einsum's own loops): R = √Λ Uᵀ on Λ > 0
        lam, u = np.linalg.eigh(self.gram)
        keep = lam > 1e-10 * lam.max()
        return np.sqrt(lam[keep])[:, None] * u[:, keep].T

    def _can_reach(self, key) -> bool:
        _, _, (q, e) = key
        return q <= self.orders[0] and e <= self.orders[1]

    def _prune(self) -> None:
        """Drop the steps whose currents never feed the target."""
        need = {self.target}
        keep = []
        for s in reversed(self.steps):
            if s.target in need:
                keep.append(s)
                need.update(s.parts)
        self.steps = keep[::-1]

    def _sign(self, parts: list[int]) -> int:
        seq = []
        for mask in parts:
            seq += [i for i in _legs_of(mask) if i in self.fermions]
        return _parity(seq)

    def _merge2(self, mask, ka, kb, produced, max_qcd, max_ew) -> None:
        (_, fa, oa), (_, fb, ob) = ka, kb
        for v, kind, swap, x in self._match3(fa, fb):
            orders = (oa[0] + ob[0] + v.orders[0], oa[1] + ob[1] + v.orders[1])
            if orders[0] > max_qcd or orders[1] > max_ew:
                continue
            first, second = (kb, ka) if swap else (ka, kb)
            new = (mask, sm.anti(x), orders)
            sign = self._sign([first[0], second[0]])
            cmap = self._colour2(v, kind, first, second, new)
            if cmap:
                self.steps.append(_Step(new, kind, (first, second), v, sign, cmap))
                produced.setdefault(new, set()).update(c[1] for c in cmap)

    def _merge3(self, mask, by_mask, produced, max_qcd) -> None:
        v = next(v for v in self.vertices if v.kind == "vvvv")
        for a, rem in _splits(mask):
            for b, c in _splits(rem):  # unordered three-way splits, each once
                for ka in by_mask.get(a, ()):
                    for kb in by_mask.get(b, ()):
                        for kc in by_mask.get(c, ()):
                            if ka[1] == kb[1] == kc[1] == sm.GLUON:
                                self._merge4(mask, v, (ka, kb, kc), (a, b, c), produced, max_qcd)

    def _merge4(self, mask, v, keys, masks, produced, max_qcd) -> None:
        ka, kb, kc = keys
        orders = (ka[2][0] + kb[2][0] + kc[2][0] + 2, ka[2][1] + kb[2][1] + kc[2][1])
        if orders[0] > max_qcd or orders[1] > self.orders[1]:
            return
        new = (mask, sm.GLUON, orders)
        cmap = []
        for s, tensor in enumerate(col.F4):
            for ca in self.currents[ka]:
                for cb in self.currents[kb]:
                    for cc in self.currents[kc]:
                        r = self.basis.merge([(ca, True), (cb, True), (cc, True)], tensor, True)
                        if r is not None:
                            cmap.append(((ca, cb, cc), r[0], r[1], s))
        if cmap:
            self.steps.append(_Step(new, "vvvv", keys, v, self._sign(list(masks)), cmap))
            produced.setdefault(new, set()).update(m[1] for m in cmap)

    def _colour2(self, v, kind, first, second, new) -> list:
        """[(source keys, target key, coefficient)] of a two-current merge."""
        out = []
        own = [sm.colour_dim(first[1]) > 1, sm.colour_dim(second[1]) > 1]
        new_own = sm.colour_dim(new[1]) > 1
        for ca in self.currents[first]:
            for cb in self.currents[second]:
                parts = [(ca, own[0]), (cb, own[1])]
                if v.colour == "T":
                    tensor = {"ffv_v": np.einsum("aij->ija", col.T),        # (ψ̄ i, ψ j) -> a
                              "ffv_fbar": np.einsum("aij->iaj", col.T),     # (ψ̄ i, g a) -> j
                              "ffv_f": np.einsum("aij->jai", col.T)}[kind]  # (ψ j, g a) -> i
                elif v.colour == "f":
                    tensor = col.F.astype(complex)
                elif v.colour == "d" and (own[0] or own[1]):
                    tensor = col.DELTA3
                else:
                    tensor = None
                if tensor is None and (ca is not None or cb is not None):
                    r = self.basis.merge(parts, None, False)
                elif tensor is None:
                    out.append(((ca, cb), None, 1.0))
                    continue
                else:
                    r = self.basis.merge(parts, tensor, new_own)
                if r is not None:
                    out.append(((ca, cb), r[0], r[1]))
        return out

    # -- evaluation
    def _external(self, i: int, p: np.ndarray, polarisation: np.ndarray | None) -> np.ndarray:
        """Wavefunctions of leg i: [N, h, c]."""
        leg = self.legs[i]
        f = leg.field
        if sm.is_fermion(f):
            if f > 0:   # ψ: incoming fermion u(p), outgoing antifermion v(p)
                fn = hel.u_spinor if leg.incoming else hel.v_spinor
                return np.stack([fn(p, lam) for lam in (1, -1)], axis=1)
            fn = hel.v_spinor if leg.incoming else hel.u_spinor   # ψ̄: v̄(p) incoming antifermion, ū(p) outgoing
            return np.stack([hel.bar(fn(p, lam)) for lam in (1, -1)], axis=1)
        if sm.is_vector(f):
            if polarisation is not None:
                return polarisation[:, None, :].astype(complex)
            e1, e2 = hel.polarisations(p)
            pols = [e1, e2] + ([hel.longitudinal(p)] if self.params.mass(f) > 0 else [])
            return np.stack(pols, axis=1).astype(complex)
        return np.ones((len(p), 1, 1), dtype=complex)

    def _propagate(self, field: int, j: np.ndarray, mom: np.ndarray) -> np.ndarray:
        m = self.params.mass(field)
        p2 = _mdot(mom, mom)
        if sm.is_fermion(field):
            if field > 0:
                num = _slash_col(mom, j) + m * j
            else:
                num = -_slash_row(j, mom) + m * j
            return 1j * num / (p2 - m * m)
        if sm.is_vector(field):
            if m > 0 and self.gauge == "feynman":
                return -1j * j / (p2 - m * m)
            if m > 0:
                return -1j * (j - mom * _mdot(mom, j) / (m * m)) / (p2 - m * m)
            if self.xi != 1.0:
                return -1j * (j - (1.0 - self.xi) * mom * _mdot(mom, j) / p2) / p2
            return -1j * j / p2
        return 1j * j / (p2 - m * m)

    def amplitudes(self, momenta: np.ndarray, polarisation: dict[int, np.ndarray] | None = None
                   ) -> dict[int | None, np.ndarray]:
        """Colour-stripped amplitudes {final colour key: [N, h_0, ..., h_{n-1}]} at ``momenta`` [N, n, 4] (GeV,
        physical momenta of the legs in order; momentum conserved, external particles on shell)."""
        polarisation = polarisation or {}
        mom = np.asarray(momenta, dtype=float)
        nev = mom.shape[0]
        q = np.where(np.array([leg.incoming for leg in self.legs])[None, :, None], mom, -mom)
        ext = {}
        for i in range(self.n):
            w = self._external(i, mom[:, i], polarisation.get(i))
            shape = [nev] + [1] * self.n + [w.shape[-1]]
            shape[1 + i] = w.shape[1]
            ext[i] = w.reshape(shape)
        bshape = [nev] + [1] * self.n + [4]
        pmask = {}

        def pm(mask):
            if mask not in pmask:
                pmask[mask] = q[:, _legs_of(mask)].sum(axis=1).reshape(bshape)
            return pmask[mask]

        cur: dict[tuple, dict] = {}
        for key, keys in self.currents.items():
            if _popcount(key[0]) == 1:
                cur[key] = {keys[0]: ext[_legs_of(key[0])[0]]}
        acc: dict[tuple, dict] = {}
        last_step = self._last_step_of
        for s in self.steps:  # ordered by subset size: a current is complete at its last step
            tgt = acc.setdefault(s.target, {})
            self._apply(s, cur, tgt, pm)
            if last_step[s.target] is s and s.target != self.target:
                cur[s.target] = {ck: self._propagate(s.target[1], j, pm(s.target[0])) for ck, j in tgt.items()}
                del acc[s.target]
        w_last = ext[self.n - 1]
        return {ck: np.sum(self._contract(self.target[1], j, w_last), axis=-1)
                for ck, j in acc.get(self.target, {}).items()}

    @property
    def _last_step_of(self) -> dict:
        if not hasattr(self, "_last_cache"):
            self._last_cache = {s.target: s for s in self.steps}
        return self._last_cache

    def _contract(self, field, j, w):
        if sm.is_vector(field):
            m = np.array([1.0, -1.0, -1.0, -1.0])
            return j * w * m
        return j * w

    def _apply(self, s: _Step, cur, tgt, pm) -> None:
        v = s.vertex
        srcs = [cur[p] for p in s.parts]
        if s.kind == "vvvv":
            for keys, ck, coef, struct in s.colour:
                a, b, c = (src[k] for src, k in zip(srcs, keys))
                ab, ac, bc = _mdot(a, b), _mdot(a, c), _mdot(b, c)
                if struct == 0:
                    r = ac * b - a * bc
                elif struct == 1:
                    r = ab * c - a * bc
                else:
                    r = ab * c - ac * b
                self._add(tgt, ck, s.sign * coef * v.coupling * r)
            return
        ma, mb = s.parts[0][0], s.parts[1][0]
        for (ka, kb), ck, coef in s.colour:
            a, b = srcs[0][ka], srcs[1][kb]
            cl, cr = v.chiral
            if s.kind == "ffv_v":
                r = _current(a, _chiral(b, cl, cr))
            elif s.kind == "ffv_fbar":
                r = _chiral(_slash_row(a, b), cl, cr)
            elif s.kind == "ffv_f":
                r = _slash_col(b, _chiral(a, cl, cr))
            elif s.kind == "ffs_s":
                r = np.sum(a * _scalar_chiral(b, cl, cr), axis=-1, keepdims=True)
            elif s.kind == "ffs_fbar":
                r = _scalar_chiral(a, cl, cr) * b
            elif s.kind == "ffs_f":
                r = _scalar_chiral(a, cl, cr) * b
            elif s.kind == "vvv":
                k1, k2 = pm(ma), pm(mb)
                k3 = -(k1 + k2)
                r = _mdot(a, b) * (k1 - k2) + b * _mdot(k2 - k3, a) + a * _mdot(k3 - k1, b)
            elif s.kind == "vss_v":   # (S1, S2) -> V: (k_S2 - k_S1)^μ φ1 φ2
                r = (pm(mb) - pm(ma)) * (a * b)
            elif s.kind == "vss_s2":  # (V, S1) -> S2, k_S2 = -(k_V + k_S1)
                r = _mdot(-pm(ma) - 2.0 * pm(mb), a) * b
            elif s.kind == "vss_s1":  # (V, S2) -> S1, k_S1 = -(k_V + k_S2)
                r = _mdot(2.0 * pm(mb) + pm(ma), a) * b
            elif s.kind == "vvs_s":
                r = _mdot(a, b)
            else:  # vvs_v
                r = a * b
            self._add(tgt, ck, s.sign * coef * v.coupling * r)

    @staticmethod
    def _add(tgt, ck, value) -> None:
        if ck in tgt:
            old = tgt[ck]
            if old.shape == value.shape:
                old += value
            else:
                tgt[ck] = old + value
        else:
            tgt[ck] = value  # every kernel returns a fresh array

    def me2(self, momenta: np.ndarray, polarisation: dict[int, np.ndarray] | None = None) -> np.ndarray:
        """Σ over helicities and colours of |M|² [N] at ``momenta`` [N, n, 4] (GeV): Σ_h Σ_j |Σ_k R_jk A_k|²
        (:meth:`_colour_map`; equal to Σ_kl G_kl A_k A_l* with the colour Gram matrix G = R†R)."""
        amps = self.amplitudes(momenta, polarisation)
        nev = np.asarray(momenta).shape[0]
        if not amps:
            return np.zeros(nev)
        idx = [i for i, k in enumerate(self.final_keys) if k in amps]
        shape = np.broadcast_shapes(*(amps[self.final_keys[i]].shape for i in idx))
        a = np.stack([np.broadcast_to(amps[self.final_keys[i]], shape).reshape(nev, -1) for i in idx], axis=1)
        r = self.colour_map[:, idx]
        k = a.shape[1]
        # [r, N*H] independent colour components; einsum's own loops, not BLAS: the result does not depend on the
        # BLAS build or thread count, so integration grids and events are bit-identical on every worker
        b = np.einsum("jk,kn->jn", r, a.transpose(1, 0, 2).reshape(k, -1))
        return np.sum(np.abs(b.reshape(len(r), nev, -1)) ** 2, axis=(0, 2))

    def flow_amplitudes(self, momenta: np.ndarray, flows) -> np.ndarray:
        """Σ_hel |A_F|² [N, n_flows] of the colour-flow decomposition (``flows`` from :meth:`flow_basis`)."""
        strings, proj = flows
        amps = self.amplitudes(momenta)
        nev = np.asarray(momenta).shape[0]
        stacked = np.stack([np.broadcast_to(amps[k], amps[k].shape).reshape(nev, -1) for k in self.final_keys], axis=1)
        af = np.einsum("fc,nch->nfh", proj, stacked)
        return np.sum(np.abs(af) ** 2, axis=2)

    def flow_basis(self):
        """(flow strings, projector [n_flows, n_final_keys]) for the LHE colour assignment; None if colourless."""
        if self.final_keys == [None]:
            return None
        trip = [i for i, leg in enumerate(self.legs) if sm.is_fermion(leg.field) and leg.field < 0]
        anti = [i for i, leg in enumerate(self.legs) if sm.is_fermion(leg.field) and leg.field > 0]
        glu = [i for i, leg in enumerate(self.legs) if leg.field == sm.GLUON]
        flows = self.basis.flows(trip, anti, glu)
        tensors = [self.basis.tensors[k] for k in self.final_keys]
        proj = col.flow_projector([t for _, t in flows], tensors)
        return [f for f, _ in flows], proj


def helicity_count(amp: Amplitude) -> int:
    """Number of helicity configurations summed by :meth:`Amplitude.me2`."""
    out = 1
    for leg in amp.legs:
        f = leg.field
        out *= 2 if sm.is_fermion(f) else (3 if amp.params.mass(f) > 0 else 2) if sm.is_vector(f) else 1
    return out


__all__ = ["Amplitude", "Leg", "helicity_count"]
