"""Kinematic distributions of event records per process (matplotlib, Agg, PNG).

Objects are shown after the catalog's SPEC §2 kinematic cuts (no overlap removal),
normalised to unit area so processes of different size compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import awkward as ak
import numpy as np

from hepfm_data.core.catalog import Catalog, ObjectCuts, load_catalog


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


def _save(fig, out: str | Path) -> Path:
    """Write ``fig`` as a PNG at ``out`` (parent directories made) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


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
    return _save(fig, out)


#: truth-label groups of large-R jets shown by :func:`plot_jets`
JET_GROUPS = {"H -> bb (matched)": (1,), "QCD q/g (matched)": (2, 3)}


def jet_distributions(events: ak.Array) -> dict[str, dict[str, np.ndarray]]:
    """{group: {constituents, sd_mass, n2}} of the leading large-R jet of each event, by truth label."""
    if "fatjets" not in events.fields:
        from hepfm_data.core.errors import HepfmError

        raise HepfmError("these events have no fatjets (large-R jets): generate a process with particle_flow: true "
                         "or read a Delphes file with EFlow and FatJet collections")
    fj = events.fatjets[ak.num(events.fatjets) > 0][:, 0]
    labels = ak.to_numpy(fj.truth_label) if "truth_label" in fj.fields else np.zeros(len(fj), np.int8)
    out = {}
    for group, codes in JET_GROUPS.items():
        sel = fj[np.isin(labels, codes)]
        out[group] = {"constituents": ak.to_numpy(ak.num(sel.constituents)).astype(float),
                      "sd_mass": ak.to_numpy(sel.sd_mass), "n2": ak.to_numpy(sel.n2)}
    return out


def plot_jets(samples: Mapping[str, ak.Array], out: str | Path) -> Path:
    """PNG of constituent multiplicity, soft-drop mass (GeV) and N2 of leading large-R jets, Higgs vs QCD
    (truth labels; all processes pooled), normalised to unit area; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pooled = {g: {k: [] for k in ("constituents", "sd_mass", "n2")} for g in JET_GROUPS}
    for ev in samples.values():
        for g, d in jet_distributions(ev).items():
            for k, v in d.items():
                pooled[g][k].append(v)
    bins = {"constituents": np.arange(0, 151, 5), "sd_mass": np.arange(0, 251, 10), "n2": np.linspace(0, 0.6, 31)}
    xlabel = {"constituents": "constituents per jet", "sd_mass": "soft-drop mass [GeV] (beta=0, z_cut=0.1)",
              "n2": "N2 (beta=1)"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, key in zip(axes, bins):
        for i, (g, d) in enumerate(pooled.items()):
            v = np.concatenate(d[key]) if d[key] else np.zeros(0)
            if len(v):
                ax.hist(np.clip(v, bins[key][0], bins[key][-1]), bins=bins[key], density=True, histtype="step",
                        linewidth=1.4, color=f"C{i}", label=f"{g}: {len(v)} jets")
        ax.set_xlabel(xlabel[key])
        ax.set_ylabel("fraction (normalised)")
    axes[1].axvline(125.0, color="grey", linestyle=":", linewidth=1)
    axes[0].legend(fontsize=8)
    fig.suptitle("hepfm: leading anti-kt R=0.8 jet, particle-flow emulation; " + ", ".join(
        f"{k} ({len(v)} ev)" for k, v in samples.items()), fontsize=10)
    return _save(fig, out)
