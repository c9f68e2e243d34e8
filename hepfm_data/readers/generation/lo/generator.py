"""Cross sections and unweighted events of an LO process: VEGAS integration, unweighting, LHE.

:class:`LOGenerator` (process name, PDF set) builds one :class:`~.amplitude.Amplitude` per subprocess and
groups the subprocesses by their final-state masses (*components*, e.g. t t t̄ j and t t t̄ W); each
component is integrated with its own VEGAS grid. Per phase-space point the weight (pb) sums every
channel and both beam orientations:

    w = Σ f_a(x1, μ_F) f_b(x2, μ_F) · |M|²(avg) · (4π α_s(μ_R))^n_qcd · S / (2 ŝ) · dΦ · J · 0.3894e9 pb GeV²,

S the symmetry factor of identical final-state particles. :meth:`LOGenerator.integrate` adapts the
grids (5 iterations), then adds iterations at a frozen grid (σ = the plain mean of all their points) until
the requested relative precision is reached (GenerationError naming the process and the precision otherwise).
Its random stream is fixed (``INTEGRATION_SEED``), so every generation block of a sample uses the same σ and
grids. Each phase-space channel of a multichannel process is a component of its own (own grid, own share).

Unweighting (:meth:`LOGenerator.events`): a point is kept with probability min(1, w/c); the cap c is
the largest weight seen in the integration's final iterations (``max_overweight`` = 0, exact
unweighting) or the weight that a fraction ``max_overweight`` of the non-zero weights exceed (partial
unweighting): a kept event with w > c carries the residual weight w/c as its LHE event weight
(XWGTUP), the others weight 1. Each kept event's channel is chosen with probability ∝ its share of w,
its colour flow ∝ Σ_hel |A_flow|² (:meth:`.amplitude.Amplitude.flow_amplitudes`, exact colour
decomposition), its helicities are summed (tops and W decay unpolarised in Pythia).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hepfm_data.core.errors import GenerationError
from hepfm_data.readers.generation.lo import model as sm
from hepfm_data.readers.generation.lo import phasespace as ps
from hepfm_data.readers.generation.lo.amplitude import Amplitude, Leg
from hepfm_data.readers.generation.lo.pdf import PartonDensities
from hepfm_data.readers.generation.lo.processes import LOProcess, Subprocess, check_scale, lo_process

GEV2_PB = 0.3893793721e9
SQRT_S = 13000.0
INTEGRATION_SEED = 20261207
ADAPT_ITERATIONS = 5
MAX_ITERATIONS = 60
LHE_DIGITS = 17


def _avg(pdg: int) -> float:
    """Spin × colour states of an incoming parton."""
    return 2.0 * (8.0 if pdg == 21 else 3.0)


def _symmetry(final: tuple[int, ...]) -> float:
    out = 1.0
    for pid in set(final):
        out /= math.factorial(final.count(pid))
    return out


@dataclass
class _Sub:
    sub: Subprocess
    amp: Amplitude
    factor: float          # 1/(initial averages) × symmetry factor
    n_qcd: int
    flows: object = None   # lazily built colour-flow basis


@dataclass
class Component:
    """Subprocesses with one final-state mass list, sampled through one phase-space channel (chain ``order``) of
    the multichannel set ``orders``; its VEGAS grid and its share of the integral (pb)."""

    masses: tuple[float, ...]
    subs: list[_Sub]
    vegas: ps.Vegas
    tchannel_mass: float | None = None
    order: tuple[int, ...] = ()
    orders: tuple[tuple[int, ...], ...] = ()
    sigma_pb: float = 0.0
    error_pb: float = 0.0
    n_points: int = 0
    w_max: float = 0.0
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))


class LOGenerator:
    """The LO generator of one process (``name`` in :data:`.processes.PROCESSES`) with PDF:pSet ``pdf``."""

    def __init__(self, name: str, pdf: str = "13", params: sm.Parameters | None = None, sqrt_s: float = SQRT_S,
                 xi: float = 1.0):
        self.proc: LOProcess = lo_process(name)
        check_scale(self.proc)
        self.params = params or sm.Parameters()
        self.sqrt_s = float(sqrt_s)
        self.pdf = PartonDensities(pdf)
        comps: dict[tuple, list] = {}
        for sub in self.proc.subprocesses:
            legs = [Leg(sub.initial[0], True), Leg(sub.initial[1], True)] + [Leg(f, False) for f in sub.final]
            orders = sub.orders or self.proc.orders
            amp = Amplitude(legs, self.proc.classes, orders, self.params, xi=xi)
            factor = _symmetry(sub.final) / (_avg(sub.initial[0]) * _avg(sub.initial[1]))
            masses = tuple(self.params.mass(f) for f in sub.final)
            comps.setdefault(masses, []).append(_Sub(sub, amp, factor, orders[0]))
        self.components = []
        for m, subs in comps.items():
            orders = tuple(o for o in self.proc.channels if len(o) == len(m)) or (tuple(range(len(m))),)
            self.components += [Component(m, subs, ps.Vegas(ps.dimension(len(m))), self.proc.tchannel_mass, o, orders)
                                for o in orders]
        self.integrated = False
        self.seconds = 0.0

    # -- weights
    def _scale2(self, p: np.ndarray) -> np.ndarray:
        if self.proc.scale == "ht/2":
            fin = p[:, 2:]
            mt = np.sqrt(np.clip(fin[..., 0] ** 2 - fin[..., 3] ** 2, 0.0, None))
            return (0.5 * mt.sum(axis=1)) ** 2
        return np.full(len(p), float(self.proc.scale) ** 2)

    def _cuts(self, sub: Subprocess, p: np.ndarray) -> np.ndarray:
        c = self.proc.cuts
        ok = np.ones(len(p), bool)
        photons = [2 + i for i, f in enumerate(sub.final) if f == 22]
        if not photons or c.photon_pt <= 0:
            return ok
        etas = []
        for i in photons:
            q = p[:, i]
            pt = np.hypot(q[:, 1], q[:, 2])
            pabs = np.sqrt(pt**2 + q[:, 3] ** 2)
            eta = 0.5 * np.log(np.clip(pabs + q[:, 3], 1e-300, None) / np.clip(pabs - q[:, 3], 1e-300, None))
            ok &= (pt > c.photon_pt) & (np.abs(eta) < c.photon_eta)
            etas.append((eta, np.arctan2(q[:, 2], q[:, 1])))
        for a in range(len(etas)):
            for b in range(a + 1, len(etas)):
                dphi = np.mod(etas[a][1] - etas[b][1] + np.pi, 2 * np.pi) - np.pi
                ok &= np.hypot(etas[a][0] - etas[b][0], dphi) > c.photon_dr
        return ok

    def point_weights(self, comp: Component, u: np.ndarray):
        """(w [N] pb, contributions [N, n_channels] pb, momenta [N, 2 + n, 4], μ² [N]) at hypercube points u."""
        x1, x2, p, jac = ps.generate(u, self.sqrt_s, comp.masses, tchannel_mass=self._tmass(comp, comp.order),
                                     order=comp.order)
        mu2 = self._scale2(p)
        s_hat = x1 * x2 * self.sqrt_s**2
        if len(comp.orders) > 1:  # multichannel: f / Σ_j (1/W_j), W_j the chain weight of channel j at this point
            inv = sum(1.0 / ps.chain_weight(p, self.sqrt_s, comp.masses, o, tchannel_mass=self._tmass(comp, o))
                      for o in comp.orders)
            jac = np.where(jac > 0, 1.0 / inv, 0.0)
        base = jac * GEV2_PB / (2.0 * s_hat)
        alpha = self.pdf.alpha_s(mu2)
        ok = jac > 0
        cache: dict[tuple, np.ndarray] = {}

        def xf(pid, beam):
            if (pid, beam) not in cache:
                x = x1 if beam == 1 else x2
                v = np.zeros(len(x))
                v[ok] = self.pdf.xf(pid, x[ok], mu2[ok]) / x[ok]
                cache[pid, beam] = v
            return cache[pid, beam]

        contribs = []
        for s in comp.subs:
            cut = ok & self._cuts(s.sub, p)
            for orient in (0, 1):
                if orient == 1 and s.sub.initial[0] == s.sub.initial[1] and all(
                        c.a == c.b for c in s.sub.channels):
                    for _ in s.sub.channels:
                        contribs.append(np.zeros(len(u)))
                    continue
                me = np.zeros(len(u))
                if cut.any():
                    mom = p[cut].copy()
                    if orient == 1:
                        mom[:, [0, 1]] = mom[:, [1, 0]]
                    me[cut] = s.amp.me2(mom)
                coup = s.factor * (4.0 * math.pi * alpha) ** s.n_qcd
                for ch in s.sub.channels:
                    lumi = xf(ch.a, 1) * xf(ch.b, 2) if orient == 0 else xf(ch.a, 2) * xf(ch.b, 1)
                    contribs.append(lumi * me * coup * base)
        c = np.stack(contribs, axis=1)
        return c.sum(axis=1), c, p, mu2

    @staticmethod
    def _tmass(comp: Component, order: tuple[int, ...]) -> float | None:
        """The t-channel mapping's mass for a chain starting with a massless particle (tHq's light quark)."""
        return comp.tchannel_mass if comp.masses[order[0]] == 0.0 else None

    def _channels(self, comp: Component):
        """(sub, orientation, channel) in the column order of :meth:`point_weights`."""
        return [(s, o, ch) for s in comp.subs for o in (0, 1) for ch in s.sub.channels]

    # -- integration
    def integrate(self, precision: float = 0.01, n_per_iteration: int = 4000, *, adapt: int = ADAPT_ITERATIONS,
                  max_iterations: int = MAX_ITERATIONS) -> tuple[float, float]:
        """Integrate every component to the relative ``precision`` of the total -> (σ pb, error pb)."""
        if not (0 < precision < 1):
            raise GenerationError(f"LO process {self.proc.name!r}: precision must be in (0, 1), got {precision!r}")
        t0 = time.perf_counter()
        for k, comp in enumerate(self.components):
            rng = np.random.default_rng(np.random.SeedSequence([INTEGRATION_SEED, k]))
            for _ in range(adapt):
                u, jac, idx = comp.vegas.sample(n_per_iteration, rng)
                w, *_ = self.point_weights(comp, u)
                comp.vegas.adapt(idx, w * jac)
            comp._rng = rng
            comp._ws, comp._sum, comp._sum2, comp._n = [], 0.0, 0.0, 0
        for it in range(max_iterations):
            for comp in self.components:
                u, jac, _ = comp.vegas.sample(n_per_iteration, comp._rng)
                w, *_ = self.point_weights(comp, u)
                w = w * jac
                comp._ws.append(w)
                # the grid is frozen after the adaptation: the plain mean of all points is unbiased (a variance-
                # weighted mean of iterations favours those that missed rare large weights, i.e. biases low)
                comp._sum += float(w.sum())
                comp._sum2 += float(np.sum(w * w))
                comp._n += len(w)
                mean = comp._sum / comp._n
                comp.sigma_pb = mean
                comp.error_pb = math.sqrt(max(comp._sum2 / comp._n - mean * mean, 0.0) / comp._n)
                comp.n_points = adapt * n_per_iteration + comp._n
            sigma = sum(c.sigma_pb for c in self.components)
            err = math.sqrt(sum(c.error_pb**2 for c in self.components))
            if it >= 1 and sigma > 0 and err / sigma <= precision:
                break
        else:
            raise GenerationError(
                f"LO process {self.proc.name!r}: the integration did not converge to the requested relative "
                f"precision {precision:g} (reached {err / sigma if sigma > 0 else float('inf'):.3g} after "
                f"{max_iterations} iterations of {n_per_iteration} points per component)")
        for comp in self.components:
            comp.weights = np.concatenate(comp._ws)
            comp.w_max = float(comp.weights.max())
        self.integrated = True
        self.seconds = time.perf_counter() - t0
        return sigma, err

    @property
    def sigma_pb(self) -> float:
        return sum(c.sigma_pb for c in self.components)

    @property
    def error_pb(self) -> float:
        return math.sqrt(sum(c.error_pb**2 for c in self.components))

    # -- events
    def cap(self, comp: Component, max_overweight: float) -> float:
        if max_overweight <= 0:
            return comp.w_max
        w = comp.weights[comp.weights > 0]
        return float(np.quantile(w, 1.0 - max_overweight, method="inverted_cdf"))

    def events(self, n: int, seed: int, max_overweight: float = 0.0, batch: int = 2000) -> dict:
        """``n`` unweighted events (seeded): dict of arrays pid [n, k], momenta [n, k, 4] (E, px, py, pz GeV),
        colours [n, k, 2], weight [n], scale [n] (GeV), alpha_s [n]; plus bookkeeping (tried, overweight)."""
        if not self.integrated:
            raise GenerationError(f"LO process {self.proc.name!r}: integrate() before generating events")
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x10E7]))
        sig = np.array([c.sigma_pb for c in self.components])
        which = rng.choice(len(sig), size=n, p=sig / sig.sum())
        out = [None] * n
        tried = overweight = 0
        for k, comp in enumerate(self.components):
            want = int(np.sum(which == k))
            slots = np.flatnonzero(which == k)
            cap = self.cap(comp, max_overweight)
            chans = self._channels(comp)
            got = []
            while len(got) < want:
                u, jac, _ = comp.vegas.sample(batch, rng)
                w, c, p, mu2 = self.point_weights(comp, u)
                w, c = w * jac, c * jac[:, None]
                tried += batch
                r = rng.random(batch)
                keep = np.flatnonzero(r * cap < w)
                for i in keep[: want - len(got)]:
                    share = np.cumsum(c[i]) / w[i]
                    j = int(np.searchsorted(share, rng.random() * share[-1], side="right"))
                    j = min(j, len(chans) - 1)
                    ev = self._event(chans[j], p[i], mu2[i], max(w[i] / cap, 1.0), rng)
                    overweight += int(w[i] > cap)
                    got.append(ev)
            for slot, ev in zip(slots, got):
                out[slot] = ev
        return {"events": out, "tried": tried, "overweight": overweight}

    def _event(self, chan, p, mu2, weight, rng) -> dict:
        s, orient, ch = chan
        mom = p.copy()
        if orient == 1:
            mom[[0, 1]] = mom[[1, 0]]  # amplitude's leg a is beam 2
        flows = self._flow(s, mom, rng)
        beam = [ch.a, ch.b] if orient == 0 else [ch.b, ch.a]
        lab = p  # beam-1 parton is p[0] (+z), beam-2 p[1]
        pids = beam + list(ch.final)
        cols = np.zeros((len(pids), 2), dtype=np.int64)
        if flows is not None:
            # amplitude leg order: (a, b, finals); map to LHE order (beam1, beam2, finals)
            perm = [0, 1] if orient == 0 else [1, 0]
            for tag, (leg, is_colour) in flows:
                slot = perm[leg] if leg < 2 else leg
                incoming = leg < 2
                # outgoing convention: a leg carries colour (is_colour) or anticolour; incoming legs swap
                which = (0 if is_colour else 1) if not incoming else (1 if is_colour else 0)
                cols[slot, which] = tag
        return {"pid": pids, "p": lab, "col": cols, "weight": float(weight), "scale": float(np.sqrt(mu2)),
                "alpha_s": float(self.pdf.alpha_s(np.array([mu2]))[0])}

    def _flow(self, s: _Sub, mom: np.ndarray, rng):
        """[(tag, (leg, carries colour?))] of a colour flow chosen ∝ Σ_hel |A_flow|²; None when colourless."""
        if s.flows is None:
            s.flows = s.amp.flow_basis() or False
        if s.flows is False:
            return None
        strings, _ = s.flows
        prob = s.amp.flow_amplitudes(mom[None], s.flows)[0]
        if not prob.sum() > 0:
            raise GenerationError(f"LO process {self.proc.name!r}: no colour flow has a non-zero amplitude")
        f = int(np.searchsorted(np.cumsum(prob) / prob.sum(), rng.random(), side="right"))
        f = min(f, len(strings) - 1)
        out, tag = [], 501
        for string in strings[f]:
            # (colour leg i, gluons..., anticolour leg j): line k joins element k's colour to element k+1's anticolour
            for a, b in zip(string[:-1], string[1:]):
                out.append((tag, (a, True)))
                out.append((tag, (b, False)))
                tag += 1
        return out

    # -- LHE
    def write_lhe(self, path: str | os.PathLike, n: int, seed: int, max_overweight: float = 0.0) -> dict:
        """Write ``n`` events (seed ``seed``) as LHE (temp + rename); returns the bookkeeping of :meth:`events`."""
        res = self.events(n, seed, max_overweight)
        lines = ['<LesHouchesEvents version="3.0">', "<header>",
                 f"<!-- hepfm LO generator: process {self.proc.name}, PDF:pSet {self.pdf.pset} ({self.pdf.name}) -->",
                 "</header>", "<init>",
                 # IDWTUP = -4: Pythia keeps XWGTUP as the event weight (1, or the residual w/cap); with 3 it drops it
                 f" 2212 2212 {self.sqrt_s / 2:.17g} {self.sqrt_s / 2:.17g} 0 0 0 0 -4 1",
                 f" {self.sigma_pb:.17g} {self.error_pb:.17g} 1 1", "</init>"]
        for ev in res["events"]:
            k = len(ev["pid"])
            lines.append("<event>")
            lines.append(f" {k} 1 {ev['weight']:.17g} {ev['scale']:.17g} {self.params.alpha:.17g} {ev['alpha_s']:.17g}")
            for i, pid in enumerate(ev["pid"]):
                st, m1, m2 = (-1, 0, 0) if i < 2 else (1, 1, 2)
                e, px, py, pz = ev["p"][i]
                mass = self.params.mass(pid)
                c1, c2 = ev["col"][i]
                lines.append(f" {pid} {st} {m1} {m2} {c1} {c2} {px:.17g} {py:.17g} {pz:.17g} {e:.17g} {mass:.17g} 0 9")
            lines.append("</event>")
        lines.append("</LesHouchesEvents>")
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, path)
        return res
