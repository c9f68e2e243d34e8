"""Kinematic distributions of event records per process (matplotlib, Agg, PNG).

Objects are shown after the catalog's SPEC §2 kinematic cuts (no overlap removal),
normalised to unit area so processes of different size compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import awkward as ak
import numpy as np

from .catalog import Catalog, ObjectCuts, load_catalog


def apply_cuts(col, cuts: ObjectCuts):
    """Objects of ``col`` (var * {pt, eta, ...}) passing pT, |η| and crack cuts (no overlap removal)."""
    aeta = abs(col.eta)
    ok = (col.pt >= cuts.pt_min) & (aeta <= cuts.abs_eta_max)
    if cuts.eta_crack is not None:
        ok = ok & ~((aeta > cuts.eta_crack[0]) & (aeta < cuts.eta_crack[1]))
    return col[ok]


def _leading(col) -> np.ndarray:
    return ak.to_numpy(ak.flatten(col.pt[ak.num(col) > 0][:, :1]))


def distributions(events: ak.Array, catalog: Catalog | None = None) -> dict[str, np.ndarray]:
    """Per-event quantities of an event record: name -> 1-D array (GeV for momenta)."""
    sel = (catalog or load_catalog()).selection
    jets = apply_cuts(events.jets, sel.jet)
    leptons = ak.num(apply_cuts(events.electrons, sel.electron)) + ak.num(apply_cuts(events.muons, sel.muon))
    photons = apply_cuts(events.photons, sel.photon)
    truth = events.truth
    higgs = truth[(abs(truth.pid) == 25) | (abs(truth.pid) == 35) | (abs(truth.pid) == 36)]
    return {
        "number of jets (pT > 25 GeV)": ak.to_numpy(ak.num(jets)),
        "leading jet pT [GeV]": _leading(jets),
        "number of leptons (e, mu)": ak.to_numpy(leptons),
        "number of photons": ak.to_numpy(ak.num(photons)),
        "leading photon pT [GeV]": _leading(photons),
        "missing pT [GeV]": ak.to_numpy(events.met.pt),
        "truth Higgs pT [GeV]": ak.to_numpy(ak.flatten(higgs.pt)),
        "truth top pT [GeV]": ak.to_numpy(ak.flatten(truth.pt[abs(truth.pid) == 6])),
        "truth |dphi(t, tbar)| [rad]": _dphi_top_pair(truth),
    }


def _dphi_top_pair(truth) -> np.ndarray:
    """|Δφ| between the top and the antitop of events with exactly one of each (radians)."""
    top, anti = truth[truth.pid == 6], truth[truth.pid == -6]
    ok = (ak.num(top) == 1) & (ak.num(anti) == 1)
    d = ak.to_numpy(ak.flatten(top.phi[ok])) - ak.to_numpy(ak.flatten(anti.phi[ok]))
    return np.abs((d + np.pi) % (2 * np.pi) - np.pi)


_BINS = {
    "number of jets (pT > 25 GeV)": np.arange(-0.5, 15.5), "number of leptons (e, mu)": np.arange(-0.5, 6.5),
    "number of photons": np.arange(-0.5, 6.5), "truth |dphi(t, tbar)| [rad]": np.linspace(0.0, np.pi, 19),
}


def plot_processes(samples: Mapping[str, ak.Array], out: str | Path, catalog: Catalog | None = None,
                   labels: Mapping[str, str] | None = None) -> Path:
    """Write a PNG grid of normalised distributions, one line per process; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dists = {name: distributions(ev, catalog) for name, ev in samples.items()}
    keys = list(next(iter(dists.values())))
    fig, axes = plt.subplots(2, (len(keys) + 1) // 2, figsize=(4.2 * ((len(keys) + 1) // 2), 7.5))
    colors = {name: f"C{i % 10}" for i, name in enumerate(dists)}  # fixed per process across panels
    for ax, key in zip(axes.flat, keys):
        values = [d[key] for d in dists.values() if len(d[key])]
        if key in _BINS:
            bins = _BINS[key]
        else:
            hi = max((np.quantile(v, 0.98) for v in values), default=1.0)
            bins = np.linspace(0.0, max(hi, 1.0), 31)
        for name, d in dists.items():
            if len(d[key]):
                ax.hist(np.clip(d[key], bins[0], bins[-1]), bins=bins, density=True, histtype="step", linewidth=1.4,
                        color=colors[name], label=(labels or {}).get(name, name))
        ax.set_xlabel(key)
        ax.set_ylabel("fraction (normalised)")
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    n = {name: len(ev) for name, ev in samples.items()}
    fig.suptitle("hepfm: Pythia 8 + ATLAS-like emulation, " + ", ".join(f"{k} ({v} ev)" for k, v in n.items()),
                 fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
