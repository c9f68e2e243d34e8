"""The process catalog: ``catalog.yaml`` parsed into frozen dataclasses.

The catalog is data (processes, tasks, selection, features, labels of SPEC
§1-4); this module only parses and validates it. Any problem raises
:class:`~hepfm_data.core.errors.CatalogError` naming the file, entry and field.

>>> cat = load_catalog()
>>> cat.process("ttH_cp_odd").fidelity
'native'
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from hepfm_data.core.errors import CatalogError, UnknownNameError

SCHEMA_VERSION = 1
Role = Literal["pretrain", "eval", "study"]  # study: samples of the related studies (SPEC §7), not the paper's sets
Fidelity = Literal["native", "proxy", "external-only"]
#: how generated events are weighted (``weight`` of a catalog process): ``generator`` = Pythia's event weight
#: (1 for unweighted samples); ``cross_section`` = σ / N pb per event (a slice of a binned sample, e.g. QCD in
#: pT-hat slices: the slices then add up with their cross sections; readers/generation/pythia.py)
WEIGHTS = ("generator", "cross_section")
OBJECTS = ("photon", "electron", "muon", "jet")


@dataclass(frozen=True)
class Citation:
    key: str
    title: str
    authors: str
    arxiv: str


@dataclass(frozen=True)
class Upstream:
    repository: str
    kind: str
    url: str
    format: str


#: input formats a :class:`Dataset` may declare (the readers of ``hepfm_data.readers``)
DATASET_FORMATS = ("delphes", "nanoaod", "physlite")
DATASET_KINDS = ("collision-data", "simulation")


@dataclass(frozen=True)
class Dataset:
    """An external upstream dataset (CMS / ATLAS Open Data) that hepfm reads but never generates.

    ``format`` names the reader (``hepfm-data build PROCESS --input FILES --format FORMAT``);
    ``kind``: collision data (no truth record) or simulation; ``record``: the experiment's
    dataset name; ``study``: citation key of the study that uses it; fidelity is always
    "external" (hepfm cannot reproduce it).
    """

    name: str
    experiment: str
    kind: str
    format: str
    record: str
    url: str
    study: str
    description: str
    fidelity: str = "external"


@dataclass(frozen=True)
class PaperChain:
    sqrt_s_gev: float
    matrix_element: str
    decays: str
    shower: str
    detector: str


@dataclass(frozen=True)
class CPMixing:
    """CP-mixed top Yukawa κ cos α + i κ̃ γ5 sin α (Higgs Characterisation) for tt̄H reweighting.

    ``weighted``: keep every SM event with weight w = |M_α|²/|M_SM|² instead of unweighting.
    ``max_overweight``: partial unweighting: the fraction of the SM hard events whose weight may
    exceed the unweighting cap c; those kept carry the residual weight w/c as their event weight
    (0: exact unweighting against the largest weight, every event weight 1).
    """

    alpha_deg: float
    kappa: float = 1.0
    kappa_tilde: float = 1.0
    weighted: bool = False
    max_overweight: float = 0.0


@dataclass(frozen=True)
class Process:
    """One physics process. ``index`` is the multiclass label for pretraining."""

    name: str
    role: Role
    index: int
    description: str
    paper_events: int
    upstream_name: str
    fidelity: Fidelity
    pythia: tuple[str, ...] | None
    citation: str
    slha: str | None = None
    cp_mixing: CPMixing | None = None  # LO matrix-element reweighting of SM tt̄H (readers/ttH_reweight.py)
    #: also emulate particle-flow candidates and anti-kt R = 0.8 jets (record ``fatjets``; readers/particleflow.py)
    particle_flow: bool = False
    #: event weights of generated events (:data:`WEIGHTS`): ``cross_section`` gives every event of a generated
    #: sample of N events the weight σ_block / N (pb), σ_block = Pythia's ``info.sigmaGen()`` at the end of its
    #: generation block (deterministic per block seed); summed over the sample the weights give σ (pb)
    weight: str = "generator"

    @property
    def generatable(self) -> bool:
        """True when local Pythia 8 can produce it (native or proxy)."""
        return self.pythia is not None


@dataclass(frozen=True)
class Task:
    """A binary fine-tuning task; ``classes[k]`` has label ``k``."""

    name: str
    description: str
    classes: tuple[str, str]


@dataclass(frozen=True)
class ObjectCuts:
    """Kinematic cuts for one object type; pT in GeV."""

    pt_min: float
    pt_inclusive: bool
    abs_eta_max: float
    eta_crack: tuple[float, float] | None


@dataclass(frozen=True)
class Efficiency:
    """eff(pT) = a·tanh(b·pT)·c/(1 + d·pT) + e + f·pT, pT in GeV, clipped to [0, 1]."""

    a: float
    b: float
    c: float
    d: float
    e: float
    f: float

    def __call__(self, pt):
        import numpy as np

        pt = np.asarray(pt, dtype=np.float64)
        eff = self.a * np.tanh(self.b * pt) * self.c / (1.0 + self.d * pt) + self.e + self.f * pt
        return np.clip(eff, 0.0, 1.0)


@dataclass(frozen=True)
class BTag:
    match_dr: float
    b: Efficiency
    c: Efficiency
    light: Efficiency


@dataclass(frozen=True)
class Selection:
    """SPEC §2 selection: per-object cuts, jet overlap removal, b-tagging."""

    photon: ObjectCuts
    electron: ObjectCuts
    muon: ObjectCuts
    jet: ObjectCuts
    overlap_dr: float
    overlap_against: tuple[str, ...]
    btag: BTag


@dataclass(frozen=True)
class FeatureDef:
    name: str
    unit: str
    description: str


@dataclass(frozen=True)
class GraphSchema:
    """SPEC §3: node, edge and global features, object-type integers."""

    object_types: Mapping[str, int]
    node_features: tuple[FeatureDef, ...]
    edge_features: tuple[FeatureDef, ...]
    global_features: tuple[FeatureDef, ...]

    @property
    def node_feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.node_features)


@dataclass(frozen=True)
class CountLabel:
    name: str
    pids: tuple[int, ...]


@dataclass(frozen=True)
class ParticleLabel:
    """Binned kinematics of the ``rank``-th hardest truth particle among ``pids``."""

    name: str
    pids: tuple[int, ...]
    rank: int
    pt_edges: tuple[float, ...]


@dataclass(frozen=True)
class LabelSchema:
    """SPEC §4 multilabel schema. ``names`` lists the label vector in order."""

    counts: tuple[CountLabel, ...]
    particles: tuple[ParticleLabel, ...]
    eta_edges: tuple[float, ...]
    phi_edges: tuple[float, ...]

    @property
    def names(self) -> tuple[str, ...]:
        out = [c.name for c in self.counts]
        for p in self.particles:
            out += [f"{p.name}_pt{i}" for i in range(len(p.pt_edges) + 1)]
            out += [f"{p.name}_eta{i}" for i in range(len(self.eta_edges) + 1)]
            out += [f"{p.name}_phi{i}" for i in range(len(self.phi_edges) + 1)]
        return tuple(out)

    @property
    def n_labels(self) -> int:
        return len(self.names)

    @property
    def n_counts(self) -> int:
        """The first ``n_counts`` labels are regression (MSE), the rest BCE."""
        return len(self.counts)


@dataclass(frozen=True)
class View:
    """A re-simulation variation (``resimulation.views`` of the catalog; ``hepfm_data.pipelines.resimulate``).

    ``settings``: Pythia settings appended to the process's for the shower/hadronisation of the
    kept hard process (empty: the nominal settings with another seed); ``stands_for``: what the
    RS3L paper used where this is a stand-in (e.g. Herwig 7)."""

    name: str
    description: str
    settings: tuple[str, ...] = ()
    stands_for: str = ""


@dataclass(frozen=True)
class Resimulation:
    """``resimulation`` block: the known views and a note on what is not modelled."""

    note: str = ""
    views: tuple[View, ...] = ()

    def view(self, name: str) -> View:
        """The view called ``name``; UnknownNameError listing the known views."""
        for v in self.views:
            if v.name == name:
                return v
        raise UnknownNameError(f"unknown view {name!r}; known views: {', '.join(v.name for v in self.views)}")


@dataclass(frozen=True)
class Catalog:
    schema_version: int
    source: str
    citations: Mapping[str, Citation]
    upstream: Upstream
    paper_chain: PaperChain
    processes: tuple[Process, ...]
    tasks: tuple[Task, ...]
    selection: Selection
    graph: GraphSchema
    labels: LabelSchema
    datasets: tuple[Dataset, ...] = ()
    resimulation: Resimulation = Resimulation()
    _by_name: Mapping[str, Process] = field(default_factory=dict, repr=False, compare=False)

    def process(self, name: str) -> Process:
        """The process called ``name``; raises UnknownNameError listing valid names."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown process {name!r}; known: {', '.join(p.name for p in self.processes)}"
            ) from None

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise UnknownNameError(
            f"unknown task {name!r}; known: {', '.join(t.name for t in self.tasks)}"
        )

    def dataset(self, name: str) -> Dataset:
        """The external dataset called ``name``; raises UnknownNameError listing valid names."""
        for d in self.datasets:
            if d.name == name:
                return d
        raise UnknownNameError(f"unknown dataset {name!r}; known: {', '.join(d.name for d in self.datasets)}")

    def has_process(self, name: str) -> bool:
        return name in self._by_name

    def has_task(self, name: str) -> bool:
        return any(t.name == name for t in self.tasks)

    @property
    def pretraining(self) -> tuple[Process, ...]:
        return tuple(p for p in self.processes if p.role == "pretrain")

    @property
    def evaluation(self) -> tuple[Process, ...]:
        return tuple(p for p in self.processes if p.role == "eval")


# --------------------------------------------------------------------------- parsing


class _Reader:
    """Typed field access on one YAML mapping, with errors naming file/entry/field."""

    def __init__(self, source: str, entry: str, data: Any, allowed: Sequence[str]):
        self.source, self.entry = source, entry
        if not isinstance(data, dict):
            raise CatalogError(source, entry, "<entry>", f"expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise CatalogError(source, entry, unknown[0], f"unknown key; allowed keys: {', '.join(allowed)}")
        self.data = data

    def fail(self, key: str, problem: str):
        raise CatalogError(self.source, self.entry, key, problem)

    def get(self, key: str, typ: type | tuple[type, ...], *, optional: bool = False, default=None):
        if key not in self.data:
            if optional:
                return default
            self.fail(key, "missing required field")
        value = self.data[key]
        if value is None and optional:
            return default
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and typ is not bool and bool not in (typ if isinstance(typ, tuple) else (typ,)):
            self.fail(key, f"expected {_tname(typ)}, got bool {value!r}")
        if not isinstance(value, typ):
            self.fail(key, f"expected {_tname(typ)}, got {type(value).__name__} {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(key, f"must be finite, got {value!r}")
        return value

    def floats(self, key: str, n: int | None = None, *, optional: bool = False) -> tuple[float, ...] | None:
        value = self.get(key, list, optional=optional)
        if value is None:
            return None
        if n is not None and len(value) != n:
            self.fail(key, f"expected a list of {n} numbers, got {len(value)}")
        out = []
        for v in value:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.fail(key, f"expected numbers, got {v!r}")
            out.append(float(v))
        if out != sorted(out):
            self.fail(key, f"bin edges must be increasing, got {out}")
        return tuple(out)

    def strings(self, key: str, *, optional: bool = False) -> tuple[str, ...] | None:
        value = self.get(key, list, optional=optional)
        if value is None:
            return None
        for v in value:
            if not isinstance(v, str):
                self.fail(key, f"expected a list of strings, got element {v!r}")
        return tuple(value)

    def ints(self, key: str) -> tuple[int, ...]:
        value = self.get(key, list)
        if not value or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            self.fail(key, f"expected a non-empty list of integers, got {value!r}")
        return tuple(value)


def _tname(typ) -> str:
    if isinstance(typ, tuple):
        return " or ".join(t.__name__ for t in typ)
    return typ.__name__


def _fields(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]


def _parse_process(source: str, i: int, raw: Any) -> Process:
    name = raw.get("name", f"#{i}") if isinstance(raw, dict) else f"#{i}"
    r = _Reader(source, f"processes[{i}] {name}", raw, _fields(Process))
    role = r.get("role", str)
    if role not in ("pretrain", "eval", "study"):
        r.fail("role", f"must be 'pretrain' or 'eval' (the paper's sets) or 'study' (SPEC §7 samples), got {role!r}")
    fidelity = r.get("fidelity", str)
    if fidelity not in ("native", "proxy", "external-only"):
        r.fail("fidelity", f"must be native, proxy or external-only, got {fidelity!r}")
    pythia = r.strings("pythia", optional=True) if "pythia" in raw else r.get("pythia", list)
    if fidelity == "external-only" and pythia is not None:
        r.fail("pythia", "an external-only process must have pythia: null")
    if fidelity != "external-only" and not pythia:
        r.fail("pythia", f"a {fidelity} process needs a non-empty list of Pythia settings")
    for s in pythia or ():
        if "=" not in s:
            r.fail("pythia", f"setting {s!r} is not of the form 'Key = value'")
    index = r.get("index", int)
    if index < 0:
        r.fail("index", f"must be >= 0, got {index}")
    events = r.get("paper_events", int)
    if events <= 0:
        r.fail("paper_events", f"must be positive, got {events}")
    cp = r.get("cp_mixing", dict, optional=True)
    if cp is not None:
        cp = _parse_cp_mixing(source, name, cp, pythia)
    weight = r.get("weight", str, optional=True, default="generator")
    if weight not in WEIGHTS:
        r.fail("weight", f"must be one of {', '.join(WEIGHTS)}, got {weight!r}")
    if weight == "cross_section" and (cp is not None or not pythia):
        r.fail("weight", "cross_section weights are Pythia's own cross section: a process generated by Pythia "
                         "without cp_mixing reweighting")
    return Process(
        name=r.get("name", str), role=role, index=index,
        description=r.get("description", str), paper_events=events,
        upstream_name=r.get("upstream_name", str), fidelity=fidelity, pythia=pythia,
        citation=r.get("citation", str), slha=r.get("slha", str, optional=True), cp_mixing=cp,
        particle_flow=bool(r.get("particle_flow", bool, optional=True, default=False)), weight=weight,
    )


#: the SM tt̄H hard processes that CP-mixing reweighting starts from
TTH_SWITCHES = ("HiggsSM:gg2Httbar", "HiggsSM:qqbar2Httbar")


def _parse_cp_mixing(source: str, name: str, raw: Any, pythia) -> CPMixing:
    r = _Reader(source, f"processes {name}.cp_mixing", raw, _fields(CPMixing))
    switches = {k.strip() for k, _, v in (s.partition("=") for s in pythia or ())
                if not k.strip()[:1].isdigit() and v.strip().lower() in ("on", "true", "1")}
    if not switches or not switches <= set(TTH_SWITCHES):
        r.fail("cp_mixing", f"reweights SM tt̄H only: pythia must switch on {' and/or '.join(TTH_SWITCHES)} "
                            f"and no other hard process, got {list(pythia or ())}")
    over = r.get("max_overweight", float, optional=True, default=0.0)
    if not 0.0 <= over < 0.5:
        r.fail("max_overweight", f"is the fraction of hard events above the unweighting cap: in [0, 0.5), got {over}")
    return CPMixing(alpha_deg=r.get("alpha_deg", float), kappa=r.get("kappa", float, optional=True, default=1.0),
                    kappa_tilde=r.get("kappa_tilde", float, optional=True, default=1.0),
                    weighted=r.get("weighted", bool, optional=True, default=False),
                    max_overweight=over)


def _parse_cuts(source: str, name: str, raw: Any) -> ObjectCuts:
    r = _Reader(source, f"selection.{name}", raw, _fields(ObjectCuts))
    crack = r.floats("eta_crack", 2, optional=True)
    return ObjectCuts(r.get("pt_min", float), r.get("pt_inclusive", bool), r.get("abs_eta_max", float), crack)


def _parse_eff(source: str, name: str, raw: Any) -> Efficiency:
    r = _Reader(source, f"selection.btag.efficiency.{name}", raw, _fields(Efficiency))
    return Efficiency(*(r.get(k, float) for k in "abcdef"))


def _parse_selection(source: str, raw: Any) -> Selection:
    r = _Reader(source, "selection", raw, [*OBJECTS, "overlap_removal", "btag"])
    cuts = {o: _parse_cuts(source, o, r.get(o, dict)) for o in OBJECTS}
    ov = _Reader(source, "selection.overlap_removal", r.get("overlap_removal", dict), ["jet_dr", "against"])
    against = ov.strings("against")
    for a in against:
        if a not in ("photon", "electron", "muon"):
            ov.fail("against", f"unknown object {a!r}")
    bt = _Reader(source, "selection.btag", r.get("btag", dict), ["match_dr", "efficiency"])
    eff = _Reader(source, "selection.btag.efficiency", bt.get("efficiency", dict), ["b", "c", "light"])
    btag = BTag(bt.get("match_dr", float), *(_parse_eff(source, k, eff.get(k, dict)) for k in ("b", "c", "light")))
    return Selection(**cuts, overlap_dr=ov.get("jet_dr", float), overlap_against=against, btag=btag)


def _parse_features(source: str, where: str, raw: Any) -> tuple[FeatureDef, ...]:
    if not isinstance(raw, list) or not raw:
        raise CatalogError(source, where, "<list>", "expected a non-empty list of features")
    out = []
    for i, item in enumerate(raw):
        r = _Reader(source, f"{where}[{i}]", item, _fields(FeatureDef))
        out.append(FeatureDef(r.get("name", str), r.get("unit", str), r.get("description", str)))
    names = [f.name for f in out]
    if len(set(names)) != len(names):
        raise CatalogError(source, where, "name", f"duplicate feature names in {names}")
    return tuple(out)


def _parse_graph(source: str, raw: Any) -> GraphSchema:
    r = _Reader(source, "graph", raw, _fields(GraphSchema))
    types = r.get("object_types", dict)
    expected = {"jet", "electron", "muon", "photon", "met"}
    if set(types) != expected:
        r.fail("object_types", f"must define exactly {sorted(expected)}, got {sorted(types)}")
    if sorted(types.values()) != list(range(len(types))):
        r.fail("object_types", f"integers must be 0..{len(types) - 1} without repeats, got {types}")
    nodes = _parse_features(source, "graph.node_features", r.get("node_features", list))
    names = [f.name for f in nodes]
    required = ["pt", "eta", "phi", "energy", "btag", "charge", "type"]
    if names != required:
        r.fail("node_features", f"must be {required} in this order (SPEC §3), got {names}")
    return GraphSchema(
        object_types=dict(types), node_features=nodes,
        edge_features=_parse_features(source, "graph.edge_features", r.get("edge_features", list)),
        global_features=_parse_features(source, "graph.global_features", r.get("global_features", list)),
    )


def _parse_labels(source: str, raw: Any) -> LabelSchema:
    r = _Reader(source, "labels", raw, ["multiclass", "multilabel"])
    r.get("multiclass", dict)
    m = _Reader(source, "labels.multilabel", r.get("multilabel", dict), _fields(LabelSchema))
    counts, parts = [], []
    for i, c in enumerate(m.get("counts", list)):
        cr = _Reader(source, f"labels.multilabel.counts[{i}]", c, _fields(CountLabel))
        counts.append(CountLabel(cr.get("name", str), cr.ints("pids")))
    for i, p in enumerate(m.get("particles", list)):
        pr = _Reader(source, f"labels.multilabel.particles[{i}]", p, _fields(ParticleLabel))
        rank = pr.get("rank", int)
        if rank < 0:
            pr.fail("rank", f"must be >= 0, got {rank}")
        parts.append(ParticleLabel(pr.get("name", str), pr.ints("pids"), rank, pr.floats("pt_edges")))
    return LabelSchema(tuple(counts), tuple(parts), m.floats("eta_edges"), m.floats("phi_edges"))


def _parse_datasets(source: str, raw: list, citations: Mapping[str, Citation], processes: set[str]
                    ) -> tuple[Dataset, ...]:
    out: list[Dataset] = []
    for i, d in enumerate(raw):
        name = d.get("name", f"#{i}") if isinstance(d, dict) else f"#{i}"
        r = _Reader(source, f"datasets[{i}] {name}", d, _fields(Dataset))
        values = {k: r.get(k, str) for k in _fields(Dataset) if k != "fidelity"}
        fidelity = r.get("fidelity", str, optional=True, default="external")
        for key, allowed in (("experiment", ("CMS", "ATLAS")), ("kind", DATASET_KINDS), ("format", DATASET_FORMATS),
                             ("fidelity", ("external",))):
            value = fidelity if key == "fidelity" else values[key]
            if value not in allowed:
                r.fail(key, f"must be one of {', '.join(allowed)}, got {value!r}")
        if values["study"] not in citations:
            r.fail("study", f"unknown citation key {values['study']!r}; known: {sorted(citations)}")
        if not values["url"].startswith(("https://", "http://")):
            r.fail("url", f"must be an http(s) URL, got {values['url']!r}")
        if values["name"] in processes or any(o.name == values["name"] for o in out):
            r.fail("name", f"duplicate name {values['name']!r} (processes and datasets share one namespace)")
        out.append(Dataset(**values, fidelity=fidelity))
    return tuple(out)


def _parse_resimulation(source: str, data: Any) -> Resimulation:
    r = _Reader(source, "resimulation", data, ["note", "views"])
    views = []
    for i, v in enumerate(r.get("views", list, optional=True, default=[])):
        vr = _Reader(source, f"resimulation.views[{i}]", v, ["name", "description", "settings", "stands_for"])
        name = vr.get("name", str)
        settings = tuple(vr.strings("settings")) if "settings" in vr.data else ()
        if any(s.split("=", 1)[0].strip().startswith("Random:") for s in settings):
            vr.fail("settings", "Random: settings are set per view and block by hepfm (seed derivation)")
        views.append(View(name, vr.get("description", str), settings, vr.get("stands_for", str, optional=True,
                                                                            default="")))
    if len({v.name for v in views}) != len(views):
        r.fail("views", "duplicate view names")
    return Resimulation(r.get("note", str, optional=True, default=""), tuple(views))


def parse_catalog(data: Any, source: str = "<catalog>") -> Catalog:
    """Validate the mapping ``data`` (parsed YAML) and build a :class:`Catalog`."""
    top = _Reader(source, "<top level>", data, [
        "schema_version", "citations", "upstream", "paper_chain", "processes", "tasks",
        "selection", "graph", "labels", "datasets", "resimulation",
    ])
    version = top.get("schema_version", int)
    if version != SCHEMA_VERSION:
        top.fail("schema_version", f"this hepfm reads schema_version {SCHEMA_VERSION}, got {version}")
    citations = {}
    for key, c in top.get("citations", dict).items():
        cr = _Reader(source, f"citations.{key}", c, ["title", "authors", "arxiv"])
        citations[key] = Citation(key, cr.get("title", str), cr.get("authors", str), str(cr.get("arxiv", (str, float))))
    ur = _Reader(source, "upstream", top.get("upstream", dict), _fields(Upstream))
    upstream = Upstream(*(ur.get(k, str) for k in _fields(Upstream)))
    pr = _Reader(source, "paper_chain", top.get("paper_chain", dict), _fields(PaperChain))
    chain = PaperChain(pr.get("sqrt_s_gev", float), *(pr.get(k, str) for k in _fields(PaperChain)[1:]))

    raw_procs = top.get("processes", list)
    processes = tuple(_parse_process(source, i, p) for i, p in enumerate(raw_procs))
    seen_names: dict[str, int] = {}
    seen_index: dict[int, str] = {}
    for i, p in enumerate(processes):
        where = f"processes[{i}] {p.name}"
        if p.name in seen_names:
            raise CatalogError(source, where, "name", f"duplicate process name (also processes[{seen_names[p.name]}])")
        if p.index in seen_index:
            raise CatalogError(source, where, "index", f"duplicate index {p.index} (also used by {seen_index[p.index]!r})")
        if p.citation not in citations:
            raise CatalogError(source, where, "citation", f"unknown citation key {p.citation!r}; known: {sorted(citations)}")
        seen_names[p.name], seen_index[p.index] = i, p.name
    pre = sorted(p.index for p in processes if p.role == "pretrain")
    if pre != list(range(len(pre))):
        top.fail("processes", f"pretraining indices must be 0..{len(pre) - 1} (the multiclass labels), got {pre}")

    tasks = []
    for i, t in enumerate(top.get("tasks", list)):
        tname = t.get("name", f"#{i}") if isinstance(t, dict) else f"#{i}"
        tr = _Reader(source, f"tasks[{i}] {tname}", t, _fields(Task))
        classes = tr.strings("classes")
        if len(classes) != 2:
            tr.fail("classes", f"a binary task needs exactly 2 classes, got {len(classes)}")
        for c in classes:
            if c not in seen_names:
                tr.fail("classes", f"unknown process {c!r}")
        tasks.append(Task(tr.get("name", str), tr.get("description", str), (classes[0], classes[1])))
    if len({t.name for t in tasks}) != len(tasks):
        top.fail("tasks", "duplicate task names")

    datasets = _parse_datasets(source, top.get("datasets", list, optional=True, default=[]), citations,
                               set(seen_names))
    return Catalog(
        schema_version=version, source=source, citations=citations, upstream=upstream, datasets=datasets,
        paper_chain=chain, processes=processes, tasks=tuple(tasks),
        selection=_parse_selection(source, top.get("selection", dict)),
        graph=_parse_graph(source, top.get("graph", dict)),
        labels=_parse_labels(source, top.get("labels", dict)),
        resimulation=_parse_resimulation(source, top.get("resimulation", dict, optional=True, default={})),
        _by_name={p.name: p for p in processes},
    )


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate a catalog file (default: the one shipped with hepfm).

    Uses ``yaml.safe_load``; a YAML syntax error is reported with the file name.
    """
    if path is None:
        return _default_catalog()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(str(path), "<file>", "<file>", f"cannot read: {exc.strerror or exc}") from None
    return _parse_text(text, str(path))


def _parse_text(text: str, source: str) -> Catalog:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "<yaml>"
        raise CatalogError(source, where, "<yaml>", f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_catalog(data, source)


@functools.lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    ref = resources.files("hepfm_data.core").joinpath("catalog.yaml")
    return _parse_text(ref.read_text(encoding="utf-8"), str(ref))
