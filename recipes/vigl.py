"""Vigl, Hartman, Heinrich (arXiv:2401.13536; SPEC §7.1) end to end: a jet backbone fine-tuned inside an
event-level di-Higgs -> 4b search.

    python -m recipes.vigl recipes/configs/vigl.yaml                 # the study (scale and time in the file)
    python -m recipes.vigl recipes/configs/vigl.yaml --report-only   # VIGL.md + plots from results/vigl/ alone
    python -m recipes.vigl CONFIG --finetune.seeds=5                 # any key: --section.key=value

Stages (each resumable; a re-run executes only what is missing):

1. **data**: one store per G* mass (``vigl_gstar_<mass>``, the signal), per QCD pT-hat slice (``vigl_qcd_*``, the
   background, events weighted by their slice's cross section) and per pretraining process (``rs3l_hz`` H -> bb̄
   jets, ``rs3l_zjet`` QCD jets), generated with Pythia 8 + the emulated particle flow through
   ``build_store(PythiaGeneration(...))`` (Dask workers), regenerated bit-identically from the config's seeds.
   Study stores are split 45/5/50 (train/validation/test) as in the study. Every store is checked to hold
   large-R jets with constituents (``event_jets``' inputs) before it is read.
2. **pretrain**: the jet backbone (:class:`hepfm_models.vigl.JetBackbone`) + one Linear layer learns jet-level
   H -> bb̄ vs QCD tagging from truth matching (``fatjets.truth_label``: 1 = H -> bb̄ against 2/3 = quark/gluon)
   on the jets of the *separately generated* ``rs3l_hz`` / ``rs3l_zjet`` samples (``jet_constituents`` with the
   config's jet cuts): another dataset and a related but different task (jets of HZ production with pT 400-600
   GeV, not of a 1-2.5 TeV resonance; one jet, not an event), as the study pretrains on JetClass.
   Early stopping on the validation jets; the backbone is kept as ``results/vigl/backbones/<key>.safetensors``.
3. **finetune**: the event classifier (:class:`hepfm_models.vigl.EventClassifier`: backbone + Deep Sets head)
   on ``event_jets`` (the 5 leading anti-kt R = 0.8 jets, pT > 150 GeV, |η| < 2.5; events with at least two):
   strategies ``scratch`` (random backbone, all trained), ``frozen-random`` (random backbone frozen: the head
   alone), ``frozen-pretrained`` and ``finetuned-pretrained``; per training size (events per class drawn from
   the training split with the seed) and seed (model init + subset); early stopping on the validation split;
   metrics on the whole test split with the event weights (signal 1, QCD σ/N): background rejection at 90%
   signal efficiency, maximum SIC = ε_S/√ε_B, ROC AUC, and per G* mass. One ``results/vigl/<key>.json`` per run,
   keyed by (strategy, size, seed, hash of everything that defines it).
4. **report**: ``VIGL.md`` (mean ± std over seeds per strategy and size; data efficiency: the training size at
   which each strategy reaches the from-scratch model's mean rejection at the largest size, log-interpolated)
   and ``results/vigl/plots/{roc,rejection_vs_size,data_efficiency}.png``, from the result files alone.

Signal events carry weight 1 (each mass the same number of events); QCD events their slice's σ/N (pb). The
training loss is class balanced (each class sums to half of the weight of a batch set) with the QCD events
weighted by cross section (``finetune.train_weights: flat`` weights them equally instead).
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python recipes/vigl.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from recipes.common import (
    DEFAULT_THREADS,
    ConfigError,
    DataConfig,
    atomic_write,
    catalog_of,
    check_config,
    parse_study,
    setup,
    study_main,
    to_dict,
)
from recipes.reproduce import Results, _stamp, digest, run_jobs, split_counts

STRATEGIES = ("scratch", "frozen-random", "frozen-pretrained", "finetuned-pretrained")
BASELINE = "scratch"
#: strategy -> (backbone pretrained, backbone frozen)
STRATEGY = {"scratch": (False, False), "frozen-random": (False, True), "frozen-pretrained": (True, True),
            "finetuned-pretrained": (True, False)}
SEED_STRIDE = 1000
SIGNAL_EFFICIENCY = 0.9
#: fewer effective background test events passing than this (relative error of ε_B > 1/√10 = 32 %): the rejection
#: is beyond what the test sample measures; tables show the sample's limit, the data efficiency uses min(value, limit)
MIN_BACKGROUND_PASSING = 10.0
#: signal efficiencies at which each run stores its ROC (background rejection) for the ROC plot
ROC_GRID = tuple(round(0.05 * k, 2) for k in range(1, 21))


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class DataSection:
    """The stores: what is generated, how many events, the seeds (the stores regenerate bit-identically)."""

    stores: str = "runs/vigl/stores"  # a store lives in <stores>/<process>-<hash>/<process>
    masses: tuple[int, ...] = (1000, 1500, 2000, 2500)  # G* masses (GeV): catalog processes vigl_gstar_<mass>
    qcd: tuple[str, ...] = ("vigl_qcd_300_500", "vigl_qcd_500_800", "vigl_qcd_800_1200", "vigl_qcd_1200_inf")
    signal_events: int = 3000  # generated per mass
    qcd_events: int = 3000  # generated per QCD slice
    pretrain: tuple[str, ...] = ("rs3l_hz", "rs3l_zjet")  # the backbone's pretraining samples (another dataset)
    pretrain_events: int = 4000  # generated per pretraining process
    seed: int = 1  # process p is generated with seed * 1000 + catalog index of p + 1
    block_size: int = 500
    events_per_unit: int = 3000
    fractions: tuple[float, float, float] = (0.45, 0.05, 0.5)  # the study's train / validation / test
    pretrain_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    workers: int = 0  # Dask workers for generation (0 = every core; 1 = in this process)
    catalog: str = ""


@dataclass(frozen=True)
class ModelSection:
    """:class:`hepfm_models.vigl.JetBackboneConfig` sizes and the Deep Sets head width."""

    dim: int = 32
    heads: int = 4
    layers: int = 2
    ffn: int = 64
    pair_hidden: int = 16
    max_constituents: int = 32
    n_out: int = 32
    head_width: int = 64

    def backbone(self):
        from hepfm_models.vigl import JetBackboneConfig

        return JetBackboneConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(JetBackboneConfig)})


@dataclass(frozen=True)
class PretrainSection:
    """Jet-level H -> bb̄ vs QCD tagging of the backbone (truth-matched jets of data.pretrain)."""

    pt_min: float = 300.0  # jet cuts of the pretraining jets (jet_constituents with these cuts)
    abs_eta_max: float = 2.5
    epochs: int = 20
    patience: int = 3
    lr: float = 1e-3
    batch_size: int = 256
    seed: int = 0


@dataclass(frozen=True)
class FinetuneSection:
    """The grid: strategies x sizes (events per class) x seeds."""

    strategies: tuple[str, ...] = STRATEGIES
    sizes: tuple[int, ...] = (300, 1000, 3000)  # training events per class (signal, QCD)
    seeds: int = 3
    epochs: int = 30
    patience: int = 4
    lr: float = 1e-3  # the head, and the backbone trained from scratch
    lr_backbone: float = 3e-4  # a pretrained backbone being fine-tuned
    batch_size: int = 128
    train_weights: str = "cross_section"  # QCD events in the loss: "cross_section" (σ/N) or "flat"
    min_background_sic: float = 10.0  # effective background test events (Σw)²/Σw² a SIC threshold must keep


@dataclass(frozen=True)
class VIGLConfig:
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    pretrain: PretrainSection = field(default_factory=PretrainSection)
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    results: str = "results/vigl"  # <key>.json per run, backbones/ (committed)
    report: str = "VIGL.md"
    plots: str = "results/vigl/plots"
    workdir: str = "runs/vigl"  # cached tensors (not committed)
    device: str = "cpu"
    threads: int = DEFAULT_THREADS
    workers: int = 0  # training processes at once (0: one per core on a CPU)
    progress: bool = True

    def __post_init__(self) -> None:
        d, f = self.data, self.finetune
        checks = [
            (bool(d.masses) and bool(d.qcd), "data.masses and data.qcd must not be empty"),
            (d.signal_events > 0 and d.qcd_events > 0 and d.pretrain_events > 0, "data: event counts must be positive"),
            (len(d.pretrain) == 2, "data.pretrain: the H -> bb̄ jet sample and the QCD jet sample"),
            (all(len(x) == 3 and abs(sum(x) - 1) < 1e-9 and min(x) > 0 for x in (d.fractions, d.pretrain_fractions)),
             "data.fractions / data.pretrain_fractions: three positive numbers summing to 1"),
            (bool(f.strategies) and set(f.strategies) <= set(STRATEGIES),
             f"finetune.strategies: a subset of {list(STRATEGIES)}, got {list(f.strategies)}"),
            (BASELINE in f.strategies, f"finetune.strategies must include the baseline {BASELINE!r}"),
            (bool(f.sizes) and min(f.sizes) > 0 and list(f.sizes) == sorted(set(f.sizes)),
             "finetune.sizes: distinct positive sizes in increasing order"),
            (f.seeds >= 1 and f.epochs > 0 and f.batch_size > 0, "finetune: seeds, epochs, batch_size must be positive"),
            (f.train_weights in ("cross_section", "flat"), "finetune.train_weights: 'cross_section' or 'flat'"),
        ]
        check_config("vigl", checks)


# ----------------------------------------------------------------------------- the plan (stores and keys)
@dataclass(frozen=True)
class StoreSpec:
    process: str
    role: str  # "signal" | "qcd" | "pretrain"
    events: int
    seed: int
    fractions: tuple[float, float, float]
    key: str

    def root(self, cfg: VIGLConfig) -> str:
        return f"{cfg.data.stores.rstrip('/')}/{self.process}-{self.key.rsplit('-', 1)[-1]}"

    def url(self, cfg: VIGLConfig) -> str:
        return f"{self.root(cfg)}/{self.process}"


def _catalog(cfg: VIGLConfig):
    return catalog_of(DataConfig(catalog=cfg.data.catalog))


def signal_process(mass: int) -> str:
    return f"vigl_gstar_{int(mass)}"


def make_plan(cfg: VIGLConfig) -> dict[str, StoreSpec]:
    """{process: StoreSpec} of every store of the study; ConfigError for a mass or process the catalog cannot
    generate, or one without large-R jets (no ``particle_flow``)."""
    cat = _catalog(cfg)
    d = cfg.data
    known = sorted(int(p.name.rsplit("_", 1)[1]) for p in cat.processes if p.name.startswith("vigl_gstar_"))
    wanted = [(signal_process(m), "signal", d.signal_events, d.fractions) for m in d.masses]
    for m in d.masses:
        if not cat.has_process(signal_process(m)):
            raise ConfigError(f"data.masses: G* mass {m} GeV has no catalog process {signal_process(m)!r}, so no "
                              f"events can be generated for it; masses with one: {known}")
    wanted += [(q, "qcd", d.qcd_events, d.fractions) for q in d.qcd]
    wanted += [(p, "pretrain", d.pretrain_events, d.pretrain_fractions) for p in d.pretrain]
    out = {}
    for name, role, events, fractions in wanted:
        if not cat.has_process(name):
            raise ConfigError(f"data: unknown process {name!r} ({role})")
        proc = cat.process(name)
        if not proc.generatable or not proc.particle_flow:
            raise ConfigError(f"data: process {name!r} ({role}) cannot give this study large-R jets with "
                              f"constituents (collections fatjets, fatjets.constituents): its catalog entry has "
                              f"{'no Pythia process' if not proc.generatable else 'no particle_flow: true'}")
        seed = d.seed * SEED_STRIDE + proc.index + 1
        stream = {"process": {k: getattr(proc, k) for k in ("name", "pythia", "particle_flow", "weight")},
                  "seed": seed, "events": events, "block_size": d.block_size, "events_per_unit": d.events_per_unit,
                  "fractions": list(fractions)}
        out[name] = StoreSpec(name, role, events, seed, tuple(fractions), f"store-{name}-{digest(stream)}")
    return out


def study_hash(cfg: VIGLConfig) -> str:
    """Hash of what defines the results (not of paths, workers, threads, progress)."""
    data = {k: v for k, v in to_dict(cfg.data).items() if k not in ("stores", "workers")}
    return digest({"data": data, "model": cfg.model, "pretrain": cfg.pretrain, "finetune": cfg.finetune})


def pretrain_key(cfg: VIGLConfig, plan: dict[str, StoreSpec]) -> str:
    return "pretrain-" + digest({"stores": [plan[p].key for p in cfg.data.pretrain], "pretrain": cfg.pretrain,
                                 "model": cfg.model})


def run_key(cfg: VIGLConfig, plan: dict[str, StoreSpec], strategy: str, size: int, seed: int) -> str:
    f = cfg.finetune
    pretrained = STRATEGY[strategy][0]
    inputs = {"stores": sorted(s.key for s in plan.values() if s.role != "pretrain"), "strategy": strategy,
              "size": size, "seed": seed, "backbone": pretrain_key(cfg, plan) if pretrained else None,
              "train": {k: getattr(f, k) for k in ("epochs", "patience", "lr", "lr_backbone", "batch_size",
                                                   "train_weights", "min_background_sic")},
              "model": cfg.model}
    return f"{strategy}-n{size}-s{seed}-{digest(inputs)}"


def grid(cfg: VIGLConfig, plan: dict[str, StoreSpec]) -> list[tuple[str, int, int, str]]:
    """Every fine-tuning run: (strategy, size, seed, key)."""
    f = cfg.finetune
    return [(s, n, k, run_key(cfg, plan, s, n, k)) for s in f.strategies for n in f.sizes for k in range(f.seeds)]


# ----------------------------------------------------------------------------- stage 1: stores
def check_store(url: str, catalog) -> None:
    """Raise StoreError naming the store and the record collections it lacks when it cannot feed ``event_jets``
    (no large-R jets / constituents)."""
    from hepfm_data.representations import get_representation
    from hepfm_data.store import open_store

    get_representation("event_jets").check(open_store(url), catalog)


def stage_data(cfg: VIGLConfig, plan: dict[str, StoreSpec], results: Results, executed: list[str]) -> None:
    """Build every missing store (one set of Dask workers for all), record each one's events and cross section."""
    from hepfm_data.store import open_store
    from recipes.stores import LazyDask, build_generated, store_present

    cat = _catalog(cfg)
    with LazyDask(cfg.data.workers, "the Vigl study's stores") as dask:
        for name, spec in plan.items():
            url = spec.url(cfg)
            present = store_present(url)
            if present and results.get(spec.key) is not None:
                continue
            wall = None
            if not present:
                wall = build_generated(cat.process(name), spec.events, spec.seed, spec.root(cfg), cat, dask.scheduler(),
                                       block_size=cfg.data.block_size, events_per_unit=cfg.data.events_per_unit,
                                       fractions=spec.fractions, progress=cfg.progress)
            check_store(url, cat)
            if results.get(spec.key) is None:
                prov = open_store(url).manifest.provenance or []
                sigma = [x for x in ((p.get("generator") or {}).get("sigma_pb") for p in prov) if x]
                results.put(spec.key, {"kind": "store", "process": name, "role": spec.role, "events": spec.events,
                                       "seed": spec.seed, "splits": split_counts(url), "wall_s": wall,
                                       "sigma_pb": _mean(sigma), **_stamp(torch.device("cpu"))})
                executed.append(spec.key)


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


# ----------------------------------------------------------------------------- event tensors
#: tensors of an event set (one row per event)
FIELDS = ("points", "mask", "jets", "jet_mask", "weight", "label", "source", "event_id")


def _read(url: str, split: str, representation, cat, max_constituents: int, label: int, source: int) -> dict:
    """Every event of ``split`` of one store as tensors (points truncated to ``max_constituents``)."""
    from hepfm_data.loader import make_loader

    if split_counts(url)[split] == 0:
        return {}
    loader = make_loader([url], split=split, batch_size=512, shuffle=False, mixing="none", num_workers=0,
                         device="cpu", catalog=cat, representation=representation)
    parts: dict[str, list[torch.Tensor]] = {}
    for b in loader:
        n = len(b.labels)
        row = {"points": b.points[..., :max_constituents, :], "mask": b.mask[..., :max_constituents], "jets": b.jets,
               "jet_mask": b.jet_mask, "jet_labels": b.jet_labels, "weight": b.weights.double(),
               "label": torch.full((n,), label), "source": torch.full((n,), source), "event_id": b.event_id}
        for k, v in row.items():
            if v is not None:
                parts.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in parts.items()}


def _concat(sets: list[dict]) -> dict:
    sets = [s for s in sets if s]
    return {k: torch.cat([s[k] for s in sets]) for k in sets[0]} if sets else {}


def event_sets(cfg: VIGLConfig, plan: dict[str, StoreSpec]) -> dict[str, Any]:
    """{"train"/"validation"/"test": event tensors, "sources": process names, "selection": per process and split
    events before / after the >= 2 jets requirement}, cached in ``workdir``. ConfigError naming a G* mass (or
    QCD slice) with no selected event in a split."""
    key = "events-" + digest({"stores": [plan[p].key for p in plan if plan[p].role != "pretrain"],
                              "max_constituents": cfg.model.max_constituents})
    path = Path(cfg.workdir) / "tensors" / f"{key}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    cat = _catalog(cfg)
    sources = [p for p in plan if plan[p].role != "pretrain"]
    out: dict[str, Any] = {"sources": sources, "selection": {}}
    for split in ("train", "validation", "test"):
        parts = []
        for i, name in enumerate(sources):
            spec = plan[name]
            check_store(spec.url(cfg), cat)
            s = _read(spec.url(cfg), split, "event_jets", cat, cfg.model.max_constituents,
                      int(spec.role == "signal"), i)
            n_all = len(s["label"]) if s else 0
            if s:
                keep = s["jet_mask"].sum(1) >= 2  # the study's event selection: at least two large-R jets
                s = {k: v[keep] for k, v in s.items()}
            out["selection"].setdefault(name, {})[split] = [n_all, len(s["label"]) if s else 0]
            parts.append(s)
        out[split] = _concat(parts)
        out[split].pop("jet_labels", None)
    for name in sources:  # every mass and slice must be trained on and evaluated
        counts = out["selection"][name]
        empty = [sp for sp in ("train", "test") if counts[sp][1] == 0]
        if empty:
            what = f"G* mass {name.rsplit('_', 1)[1]} GeV ({name})" if plan[name].role == "signal" else name
            raise ConfigError(f"{what}: no generated event with at least two large-R jets in its {' and '.join(empty)} "
                              f"split(s) ({', '.join(f'{sp}: {n[0]} events, {n[1]} selected' for sp, n in counts.items())};"
                              f" store {plan[name].url(cfg)}): generate more (data.signal_events / data.qcd_events)")
    if len(out["validation"].get("label", [])) == 0 or len(set(out["validation"]["label"].tolist())) < 2:
        raise ConfigError("the validation splits hold no signal or no QCD event: generate more events")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(out, tmp))
    return out


def pretrain_jets(cfg: VIGLConfig, plan: dict[str, StoreSpec]) -> dict[str, dict]:
    """Truth-labelled jets of the pretraining stores per split: 1 = H -> bb̄, 0 = quark / gluon (unmatched jets
    dropped), from ``jet_constituents`` with the pretraining cuts."""
    from hepfm_data.representations import get_representation

    p = cfg.pretrain
    rep = dataclasses.replace(get_representation("jet_constituents"), name="jet_constituents_vigl_pretrain",
                              pt_min=p.pt_min, abs_eta_max=p.abs_eta_max, mass_min=0.0)
    cat = _catalog(cfg)
    out = {}
    for split in ("train", "validation", "test"):
        parts = []
        for i, name in enumerate(cfg.data.pretrain):
            url = plan[name].url(cfg)
            check_store(url, cat)
            s = _read(url, split, rep, cat, cfg.model.max_constituents, 0, i)
            if s:
                truth = s["jet_labels"]
                keep = truth > 0
                s = {k: v[keep] for k, v in s.items()}
                s["label"] = (s["jet_labels"] == 1).long()
                s["weight"] = torch.ones(len(s["label"]), dtype=torch.float64)
            parts.append(s)
        out[split] = _concat(parts)
        if not out[split] or out[split]["label"].min() == out[split]["label"].max():
            raise ConfigError(f"pretraining: the {split} split of {list(cfg.data.pretrain)} lacks H -> bb̄ or QCD jets "
                              f"(raise data.pretrain_events)")
    return out


# ----------------------------------------------------------------------------- training
def _batch(s: dict, idx: torch.Tensor):
    from hepfm_data.batches.pointcloud import PointCloudBatch

    n = len(idx)
    return PointCloudBatch(points=s["points"][idx], mask=s["mask"][idx], jets=s["jets"][idx],
                           jet_labels=torch.zeros(n, dtype=torch.long), labels=s["label"][idx],
                           weights=s["weight"][idx].float(), event_id=s["event_id"][idx],
                           jet_mask=s["jet_mask"][idx] if "jet_mask" in s and s["jet_mask"].dim() == 2 else None)


def loss_weights(s: dict, flat: bool = False) -> torch.Tensor:
    """Class-balanced loss weights [n] (mean 1): each class sums to n/2; within a class the events' own weights
    (signal 1, QCD σ/N), or equal weights with ``flat``."""
    w = torch.ones_like(s["weight"]) if flat else s["weight"].clone()
    out = torch.zeros_like(w)
    n = len(w)
    for c in (0, 1):
        sel = s["label"] == c
        if sel.any():
            out[sel] = w[sel] / w[sel].sum() * (n / 2)
    return out.float()


def _forward(model, s: dict, idx: torch.Tensor, emb: torch.Tensor | None):
    b = _batch(s, idx)
    return model(b, embeddings=emb[idx]) if emb is not None else model(b)


def predict(model, s: dict, emb: torch.Tensor | None = None, batch_size: int = 512) -> torch.Tensor:
    """Sigmoid scores [n] of an event (or jet) set."""
    model.eval()
    out = []
    with torch.no_grad():
        for a in range(0, len(s["label"]), batch_size):
            idx = torch.arange(a, min(a + batch_size, len(s["label"])))
            out.append(torch.sigmoid(_forward(model, s, idx, emb)))
    return torch.cat(out) if out else torch.zeros(0)


def fit(model, train: dict, val: dict, *, epochs: int, patience: int, batch_size: int, param_groups, seed: int,
        flat: bool = False, emb_train: torch.Tensor | None = None, emb_val: torch.Tensor | None = None
        ) -> dict[str, Any]:
    """Weighted BCE (``loss_weights``) with Adam; keeps the weights of the epoch with the lowest validation loss
    and stops after ``patience`` epochs without improvement. Returns the history."""
    import copy

    opt = torch.optim.Adam(param_groups)
    g = torch.Generator().manual_seed(seed)
    wt, wv = loss_weights(train, flat), loss_weights(val, flat)
    yv = val["label"].float()
    best, best_state, best_epoch, history, bad = math.inf, None, -1, [], 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(wt), generator=g)
        tot = 0.0
        for a in range(0, len(perm), batch_size):
            idx = perm[a:a + batch_size]
            logit = _forward(model, train, idx, emb_train)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, train["label"][idx].float(),
                                                                        weight=wt[idx], reduction="sum") / len(wt)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item()
        p = predict(model, val, emb_val).clamp(1e-7, 1 - 1e-7)
        vloss = float(torch.nn.functional.binary_cross_entropy(p, yv, weight=wv))
        history.append({"epoch": epoch, "train_loss": tot, "val_loss": vloss})
        if vloss < best - 1e-6:
            best, best_epoch, bad = vloss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"history": history, "best_epoch": best_epoch, "wall_s": time.perf_counter() - t0}


def _backbone(cfg: VIGLConfig, seed: int):
    from hepfm_models.vigl import JetBackbone

    torch.manual_seed(seed)
    return JetBackbone(cfg.model.backbone())


def metrics(scores: torch.Tensor, s: dict, sources: list[str], min_background: float) -> dict[str, Any]:
    """Weighted test metrics: rejection at ε_S = 0.9, max SIC, AUC, overall and per G* mass (that mass vs all QCD),
    and the ROC (rejection at :data:`ROC_GRID`)."""
    from hepfm_models import max_sic, rejection_statistics, roc_auc, roc_curve

    y, w = s["label"], s["weight"]

    def one(sel: torch.Tensor) -> dict[str, float]:
        r = rejection_statistics(scores[sel], y[sel], SIGNAL_EFFICIENCY, w[sel])
        return {"rejection": r["rejection"], "rejection_n_eff": r["n_eff"], "rejection_limit": r["lower_limit"],
                "max_sic": max_sic(scores[sel], y[sel], w[sel], min_background),
                "auc": roc_auc(scores[sel], y[sel], w[sel])}

    out = one(torch.ones_like(y, dtype=torch.bool))
    eff_s, eff_b = roc_curve(scores, y, w)
    roc = []
    for e in ROC_GRID:
        k = min(int(torch.searchsorted(eff_s, torch.tensor([e], dtype=torch.float64))), len(eff_b) - 1)
        roc.append(1.0 / float(eff_b[k]) if float(eff_b[k]) > 0 else math.inf)
    out["roc"] = {"signal_efficiency": list(ROC_GRID), "rejection": roc}
    out["per_mass"] = {}
    for i, name in enumerate(sources):
        if name.startswith("vigl_gstar_"):
            out["per_mass"][name.rsplit("_", 1)[1]] = one((s["source"] == i) | (y == 0))
    out["n_test"] = {"signal": int((y == 1).sum()), "background": int((y == 0).sum())}
    return out


# ----------------------------------------------------------------------------- stage 2: pretraining
def pretrain_job(cfg: VIGLConfig) -> str:
    """Jet-level H -> bb̄ vs QCD tagging of the backbone; backbone weights then the result JSON (completion)."""
    from safetensors.torch import save_file

    from hepfm_models import background_rejection, roc_auc
    from hepfm_models.vigl import JetTagger

    setup(cfg.device, cfg.threads, 0)
    plan, results, p = make_plan(cfg), Results(cfg.results), cfg.pretrain
    key = pretrain_key(cfg, plan)
    jets = pretrain_jets(cfg, plan)
    print(f"  pretraining the jet backbone on {len(jets['train']['label']):,} jets ({int(jets['train']['label'].sum()):,}"
          f" H -> bb̄) of {list(cfg.data.pretrain)}", flush=True)
    tagger = JetTagger(_backbone(cfg, p.seed))
    fitted = fit(tagger, jets["train"], jets["validation"], epochs=p.epochs, patience=p.patience,
                 batch_size=p.batch_size, param_groups=[{"params": tagger.parameters(), "lr": p.lr}], seed=p.seed)
    s = predict(tagger, jets["test"])
    y = jets["test"]["label"]
    test = {"auc": roc_auc(s, y), "rejection_at_0.5": background_rejection(s, y, 0.5),
            "n_jets": {"hbb": int((y == 1).sum()), "qcd": int((y == 0).sum())}}
    dest = results.backbone(key).with_suffix(".safetensors")
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dest, lambda tmp: save_file(tagger.backbone.state_dict(), str(tmp)))
    results.put(key, {"kind": "pretrain", "task": "jet-level H -> bb̄ vs QCD (truth matched)",
                      "stores": {n: plan[n].key for n in cfg.data.pretrain},
                      "n_train_jets": int(len(jets["train"]["label"])), "test": test, **fitted,
                      "backbone": f"backbones/{key}.safetensors", **_stamp(torch.device("cpu"))})
    print(f"  pretrained: test AUC {test['auc']:.4f}, QCD rejection at 50% H -> bb̄ efficiency "
          f"{test['rejection_at_0.5']:.1f} ({len(fitted['history'])} epochs, {fitted['wall_s']:.0f} s)", flush=True)
    return key


# ----------------------------------------------------------------------------- stage 3: fine-tuning
def embed_all(model, s: dict, batch_size: int = 256) -> torch.Tensor:
    """[n, J, n_out] jet embeddings of every event of ``s`` by the model's (frozen) backbone, in chunks."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model.embed(s["points"][a:a + batch_size], s["mask"][a:a + batch_size],
                                      s["jet_mask"][a:a + batch_size]) for a in range(0, len(s["label"]), batch_size)])


def subset(s: dict, size: int, seed: int) -> dict:
    """``size`` events of each class drawn at random with ``seed`` (ConfigError when a class has fewer)."""
    g = torch.Generator().manual_seed(seed)
    idx = []
    for c in (1, 0):
        rows = torch.nonzero(s["label"] == c).flatten()
        if len(rows) < size:
            raise ConfigError(f"finetune.sizes: {size} training events per class asked for, the training split holds "
                              f"{len(rows)} {'signal' if c else 'QCD'} events (raise data.signal_events / qcd_events)")
        idx.append(rows[torch.randperm(len(rows), generator=g)[:size]])
    idx = torch.cat(idx)
    return {k: v[idx] for k, v in s.items()}


def finetune_job(cfg: VIGLConfig, strategy: str, seed: int, todo: list[tuple[int, str]]) -> list[str]:
    """The runs ``todo`` = [(size, key)] of one (strategy, seed): the event sets are loaded once, a frozen
    backbone embeds every jet once; one result JSON per run."""
    from safetensors.torch import load_file

    from hepfm_models.vigl import DeepSetsHead, EventClassifier

    setup(cfg.device, cfg.threads, 0)
    plan, results, f = make_plan(cfg), Results(cfg.results), cfg.finetune
    data = event_sets(cfg, plan)
    pretrained, frozen = STRATEGY[strategy]
    bkey = pretrain_key(cfg, plan) if pretrained else None
    done = []
    base = None
    for size, key in todo:
        backbone = _backbone(cfg, 1000 + seed)
        if pretrained:
            backbone.load_state_dict(load_file(str(results.backbone(bkey).with_suffix(".safetensors"))))
        torch.manual_seed(2000 + seed)
        model = EventClassifier(backbone, DeepSetsHead(cfg.model.n_out, cfg.model.head_width), freeze_backbone=frozen)
        if frozen and base is None:  # one embedding of every event per job (the backbone is the same for all sizes)
            base = {split: embed_all(model, data[split]) for split in ("train", "validation", "test")}
        train = subset({**data["train"], "row": torch.arange(len(data["train"]["label"]))}, size, 3000 + seed)
        groups = [{"params": model.head.parameters(), "lr": f.lr}]
        if not frozen:
            groups.append({"params": model.backbone.parameters(), "lr": f.lr_backbone if pretrained else f.lr})
        fitted = fit(model, train, data["validation"], epochs=f.epochs, patience=f.patience, batch_size=f.batch_size,
                     param_groups=groups, seed=4000 + seed, flat=f.train_weights == "flat",
                     emb_train=base["train"][train["row"]] if frozen else None,
                     emb_val=base["validation"] if frozen else None)
        scores = predict(model, data["test"], base["test"] if frozen else None)
        m = metrics(scores, data["test"], data["sources"], f.min_background_sic)
        results.put(key, {"kind": "finetune", "strategy": strategy, "size": size, "seed": seed, "backbone": bkey,
                          "pretrained": pretrained, "frozen": frozen, **m, "selection": data["selection"],
                          "n_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad), **fitted,
                          **_stamp(torch.device("cpu"))})
        done.append(key)
        print(f"  {strategy} n={size} seed {seed}: rejection@0.9 {m['rejection']:.1f}, max SIC {m['max_sic']:.2f}, "
              f"AUC {m['auc']:.4f} ({len(fitted['history'])} epochs, {fitted['wall_s']:.0f} s)", flush=True)
    return done


def stage_finetune(cfg: VIGLConfig, plan: dict[str, StoreSpec], results: Results, executed: list[str]) -> None:
    jobs: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for strategy, size, seed, key in grid(cfg, plan):
        if results.get(key) is None:
            jobs.setdefault((strategy, seed), []).append((size, key))
    # the trained backbones first (the longest jobs), so that two workers end together
    order = sorted(jobs, key=lambda k: (STRATEGY[k[0]][1], k[1]))
    run_jobs(cfg, finetune_job, [(*k, jobs[k]) for k in order], executed, "fine-tuning runs",
             [len(jobs[k]) for k in order])


# ----------------------------------------------------------------------------- stage 4: report
def _finite_mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    if any(math.isinf(v) for v in values):
        return math.inf, None
    return statistics.fmean(values), (statistics.pstdev(values) if len(values) > 1 else 0.0)


def measured_rejection(doc: dict[str, Any]) -> float:
    """A run's rejection as the test sample measures it: the value when at least :data:`MIN_BACKGROUND_PASSING`
    effective background events pass, else the smaller of the value and the sample's limit (inf included)."""
    value = float(doc["rejection"])
    return value if doc["rejection_n_eff"] >= MIN_BACKGROUND_PASSING else min(value, float(doc["rejection_limit"]))


def summary(cfg: VIGLConfig, plan: dict[str, StoreSpec], results: Results) -> dict[str, Any]:
    """{strategy: {size: {metric: [per seed]}}}, the data efficiency per strategy, what is missing."""
    from hepfm_models import data_efficiency

    f = cfg.finetune
    table: dict[str, dict[int, dict[str, list[float]]]] = {}
    missing = 0
    for strategy, size, _seed, key in grid(cfg, plan):
        doc = results.get(key)
        cell = table.setdefault(strategy, {}).setdefault(size, {"rejection": [], "max_sic": [], "auc": [], "docs": []})
        if doc is None:
            missing += 1
            continue
        for m in ("max_sic", "auc"):
            cell[m].append(float(doc[m]))
        cell["rejection"].append(measured_rejection(doc))
        cell.setdefault("limited", []).append(doc["rejection_n_eff"] < MIN_BACKGROUND_PASSING)
        cell["docs"].append(doc)
    eff: dict[str, dict[str, Any]] = {}
    largest = f.sizes[-1]
    for metric in ("rejection", "auc"):
        base = table.get(BASELINE, {}).get(largest, {}).get(metric, [])
        if not base:
            continue
        target = statistics.fmean(base)
        for strategy in f.strategies:
            cells = table.get(strategy, {})
            if not all(cells.get(n, {}).get(metric) for n in f.sizes):
                continue
            curve = [statistics.fmean(cells[n][metric]) for n in f.sizes]
            seeds = [data_efficiency(f.sizes, [cells[n][metric][k] for n in f.sizes], target)
                     for k in range(min(len(cells[n][metric]) for n in f.sizes))]
            size = data_efficiency(f.sizes, curve, target)
            eff.setdefault(metric, {})[strategy] = {
                "target": target, "size": size, "relative": size / largest, "per_seed": seeds,
                "reached_at_smallest": curve[0] >= target}
    return {"table": table, "efficiency": eff, "missing": missing}


def _fmt(mean: float | None, std: float | None, fmt: str) -> str:
    if mean is None:
        return "—"
    if math.isinf(mean):
        return "∞"
    return f"{mean:{fmt}}" + ("" if std is None else f" ± {std:{fmt}}")


def _size_text(e: dict[str, Any]) -> str:
    if math.isinf(e["size"]):
        return "not reached"
    return ("≤ " if e["reached_at_smallest"] else "") + f"{e['size']:,.0f}"


def render(cfg: VIGLConfig, plan: dict[str, StoreSpec], results: Results, summ: dict[str, Any], config_name: str,
           plots: dict[str, str | None]) -> str:
    f, d = cfg.finetune, cfg.data
    lines = ["# Vigl et al. (SPEC §7.1): a jet backbone fine-tuned inside an event-level G* → HH → 4b search", "",
             f"Generated by `python -m recipes.vigl {config_name}` from `{cfg.results}/` (study hash "
             f"`{study_hash(cfg)}`); do not edit by hand.", ""]
    if summ["missing"]:
        lines += [f"**Incomplete: {summ['missing']} of {len(grid(cfg, plan))} runs are missing** (re-run the command).", ""]
    stores = {n: results.get(s.key) for n, s in plan.items()}
    lines += ["## Samples", "",
              f"Signal: G* → HH → bb̄bb̄ at {', '.join(f'{m / 1000:g}' for m in d.masses)} TeV, "
              f"{d.signal_events:,} generated events per mass (weight 1); background: QCD multijets in "
              f"{len(d.qcd)} pT-hat slices, {d.qcd_events:,} events per slice, each weighted by its slice's σ/N. "
              f"Pythia 8 LO + hepfm's emulated particle flow, no pile-up (catalog `vigl_*` entries); split "
              f"{'/'.join(f'{x:.0%}' for x in d.fractions)} train/validation/test; events need at least two "
              "large-R jets (anti-kt R = 0.8, pT > 150 GeV, |η| < 2.5; the five leading kept).", "",
              "| process | role | σ (pb) | train | validation | test |", "|---|---|---:|---:|---:|---:|"]
    sel = next((r.get("selection") for k in summ["table"].values() for c in k.values() for r in c["docs"]), None)
    for n, s in plan.items():
        if s.role == "pretrain":
            continue
        counts = (sel or {}).get(n, {})
        cells = [f"{counts[sp][1]:,} of {counts[sp][0]:,}" if sp in counts else "—"
                 for sp in ("train", "validation", "test")]
        sigma = (stores.get(n) or {}).get("sigma_pb")
        lines.append(f"| {n} | {s.role} | {'—' if sigma is None else f'{sigma:.4g}'} | " + " | ".join(cells) + " |")
    lines += ["", "Counts: events with at least two large-R jets of the events in the split.", ""]
    pk = results.get(pretrain_key(cfg, plan))
    lines += ["## Backbone pretraining", ""]
    if pk:
        t = pk["test"]
        lines += [f"Jet-level H → bb̄ vs QCD tagging (truth matching) on {pk['n_train_jets']:,} training jets of "
                  f"{', '.join(cfg.data.pretrain)} ({cfg.data.pretrain_events:,} events each): test AUC "
                  f"{t['auc']:.4f}, QCD rejection {t['rejection_at_0.5']:.1f} at 50% H → bb̄ efficiency "
                  f"({t['n_jets']['hbb']:,} H → bb̄ / {t['n_jets']['qcd']:,} QCD test jets; {len(pk['history'])} "
                  f"epochs, best {pk['best_epoch']}).", ""]
    else:
        lines += ["Not run yet.", ""]
    lines += ["## Results (test split, weighted; mean ± std over seeds)", "",
              f"Sizes are training events per class; {f.seeds} seed(s) per cell (model initialisation and training "
              "subset). Rejection = 1/ε_B at ε_S = 0.9; SIC = max ε_S/√ε_B over the thresholds that keep at least "
              f"{f.min_background_sic:g} effective background test events ((Σw)²/Σw²); AUC weighted.", "",
              "| strategy | size | rejection @ ε_S=0.9 | max SIC | AUC | runs |", "|---|---:|---:|---:|---:|---:|"]
    limits = [d["rejection_limit"] for k in summ["table"].values() for c in k.values() for d in c["docs"]]
    for strategy in f.strategies:
        for n in f.sizes:
            c = summ["table"].get(strategy, {}).get(n, {})
            cells = [_fmt(*_finite_mean_std(c.get(m, [])), fmt) for m, fmt in (("rejection", ".1f"),
                                                                                  ("max_sic", ".2f"), ("auc", ".4f"))]
            if any(c.get("limited", [])):
                cells[0] = f"≳ {min(c['rejection']):,.0f} †"
            lines.append(f"| {strategy} | {n:,} | " + " | ".join(cells) + f" | {len(c.get('docs', []))} |")
    if any(lim for k in summ["table"].values() for c in k.values() for lim in c.get("limited", [])):
        lines += ["", f"† Fewer than {MIN_BACKGROUND_PASSING:g} effective QCD test events ((Σw)²/Σw²) pass the "
                  "ε_S = 0.9 threshold in at least one seed: the rejection is beyond what this test sample measures. "
                  f"Shown: the smallest over the seeds of the value, capped at the sample's limit "
                  f"{min(limits):,.0f} (≈ 3 passing events of the largest QCD weight, Σw / 3 w_max; ~95 % CL when "
                  "none passes); the data efficiency uses the same capped values. A larger QCD test sample (or more "
                  "events in the high-weight low-pT-hat slice) would measure it."]
    lines += ["", "## Data efficiency", ""]
    eff = summ["efficiency"]
    if "rejection" in eff:
        target = eff["rejection"][BASELINE]["target"]
        lines += [f"Training size (events per class) at which each strategy reaches the from-scratch model's mean "
                  f"rejection at the largest size ({f.sizes[-1]:,}: {target:.1f}), interpolated in log(size) between "
                  "the sizes of its mean curve; relative = that size / the largest size (lower: more data-efficient). "
                  "The AUC column does the same with the mean AUC.", "",
                  "| strategy | size (rejection) | relative | size (AUC) | relative |", "|---|---:|---:|---:|---:|"]
        for strategy in f.strategies:
            r, a = eff["rejection"].get(strategy), eff.get("auc", {}).get(strategy)
            cells = []
            for e in (r, a):
                cells += ["—", "—"] if e is None else [_size_text(e), "∞" if math.isinf(e["relative"]) else
                                                      f"{e['relative']:.2f}"]
            lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
        lines += ["", *findings(cfg, summ), ""]
    else:
        lines += ["Needs every size of the from-scratch baseline.", ""]
    lines += ["## Plots", ""]
    for name, rel in plots.items():
        if rel:
            lines += [f"![{name}]({rel})", ""]
    lines += ["## Fidelity", "",
              "A stand-in of the study's setting, not a reproduction of its numbers: Pythia 8 LO samples with hepfm's "
              "emulated particle flow and detector instead of the CMS Open Data HiggsToBB samples (full simulation); "
              "no pile-up; QCD in pT-hat slices from 300 GeV instead of the HT-binned samples; a compact "
              f"Particle-Transformer-style backbone ({cfg.model.layers} layers of width {cfg.model.dim} on the "
              f"{cfg.model.max_constituents} leading constituents; hepfm_models/vigl.py) instead of ParT; "
              "pretraining on HZ, H → bb̄ vs Z + jet jets (truth "
              "matched) instead of JetClass; training sizes of hundreds to thousands of events instead of up "
              "to millions.", ""]
    return "\n".join(lines)


def findings(cfg: VIGLConfig, summ: dict[str, Any]) -> list[str]:
    """What the figures show, and whether it agrees in direction with the study (fine-tuned pretrained backbones
    are the most data-efficient)."""
    eff = summ["efficiency"].get("rejection", {})
    if not eff:
        return []
    ranked = sorted(eff, key=lambda s: eff[s]["size"])
    best = ranked[0]
    tied = [s for s in ranked if eff[s]["size"] == eff[best]["size"]]
    largest = cfg.finetune.sizes[-1]
    table = summ["table"]
    gains = []
    for s in cfg.finetune.strategies:
        if s == BASELINE:
            continue
        cell, base = table.get(s, {}).get(largest, {}), table.get(BASELINE, {}).get(largest, {})
        a, b = cell.get("rejection", []), base.get("rejection", [])
        if a and b and not any(math.isinf(v) for v in a + b):
            bound = "≥ " if any(cell.get("limited", [])) else ""
            gains.append(f"{s} {bound}{statistics.fmean(a) / statistics.fmean(b):.2f}×")
    if {"frozen-pretrained", "finetuned-pretrained"} <= set(table):
        diffs = []
        for n in cfg.finetune.sizes:
            parts = []
            for m, fmt in (("max_sic", ".2f"), ("auc", ".4f")):
                a = table["finetuned-pretrained"].get(n, {}).get(m, [])
                b = table["frozen-pretrained"].get(n, {}).get(m, [])
                if len(a) > 1 and len(b) > 1:
                    d = statistics.fmean(a) - statistics.fmean(b)
                    err = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
                    parts.append(f"{m} {d:+{fmt}} ± {err:{fmt}}")
            if parts:
                diffs.append(f"{n:,}: " + ", ".join(parts))
        if diffs:
            ranked_note = ("Fine-tuned minus frozen pretrained backbone (difference of seed means ± its standard "
                           "error), per training size: " + "; ".join(diffs) + ".")
        else:
            ranked_note = ""
    else:
        ranked_note = ""
    out = [f"**Most data-efficient (rejection): {', '.join(tied)}** "
           f"(order: {', '.join(f'{s} {_size_text(eff[s])}' for s in ranked)})."]
    if gains:
        out.append(f"Rejection at the largest size relative to from scratch: {', '.join(gains)} (≥: capped at the "
                   "test sample's limit, see †).")
    if ranked_note:
        out.append(ranked_note)
    verdict = "Direction of the study (fine-tuned pretrained backbones most data-efficient): "
    if len(tied) > 1 and eff[best]["reached_at_smallest"]:
        verdict += (f"**undecided**: {', '.join(tied)} all reach the target at the smallest size "
                    f"({cfg.finetune.sizes[0]:,}); a smaller size would separate them.")
    elif tied == ["finetuned-pretrained"]:
        verdict += "**agrees**."
    elif "finetuned-pretrained" in tied:
        verdict += f"**agrees in part**: tied with {', '.join(s for s in tied if s != 'finetuned-pretrained')}."
    else:
        verdict += "**does not agree** at this scale."
    out.append(verdict)
    return out


def plot_all(cfg: VIGLConfig, plan: dict[str, StoreSpec], summ: dict[str, Any]) -> dict[str, str | None]:
    """roc.png (largest size, each strategy's seeds averaged per efficiency), rejection_vs_size.png (mean and
    min-max band over seeds), data_efficiency.png (bars; per-seed spread as error bars); relative paths from the
    report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = cfg.finetune
    out_dir = Path(cfg.plots)
    rel = lambda p: os.path.relpath(p, Path(cfg.report).resolve().parent)  # noqa: E731
    written: dict[str, str | None] = {"roc": None, "rejection vs training size": None, "data efficiency": None}
    table = summ["table"]
    largest = f.sizes[-1]

    def save(fig, name: str) -> Path:
        path = (out_dir / name).resolve()
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None}))
        plt.close(fig)
        return path

    docs = {s: table.get(s, {}).get(largest, {}).get("docs", []) for s in f.strategies}
    if any(docs.values()):
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
        for s, ds in docs.items():
            if not ds:
                continue
            grid_ = ds[0]["roc"]["signal_efficiency"]
            rej = [statistics.fmean(min(d["roc"]["rejection"][i], 1e9) for d in ds) for i in range(len(grid_))]
            ax.plot(grid_, rej, "-", label=s)
        ax.set(xlabel="signal efficiency ε_S", ylabel="background rejection 1/ε_B (weighted)", yscale="log",
               title=f"ROC, {largest:,} training events per class")
        ax.axvline(SIGNAL_EFFICIENCY, color="grey", lw=0.8, ls=":")
        limit = min(d["rejection_limit"] for ds in docs.values() for d in ds)
        ax.axhline(limit, color="red", lw=0.8, ls="--", label="test-sample limit (above: not measured)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written["roc"] = rel(save(fig, "roc.png"))
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    drawn = False
    for s in f.strategies:
        pts = [(n, table[s][n]["rejection"]) for n in f.sizes if table.get(s, {}).get(n, {}).get("rejection")]
        pts = [(n, [min(v, 1e9) for v in vals]) for n, vals in pts]
        if not pts:
            continue
        x = [n for n, _ in pts]
        mean = [statistics.fmean(v) for _, v in pts]
        ax.plot(x, mean, "o-", label=s)
        ax.fill_between(x, [min(v) for _, v in pts], [max(v) for _, v in pts], alpha=0.2)
        drawn = True
    if drawn:
        base = table.get(BASELINE, {}).get(largest, {}).get("rejection")
        if base:
            ax.axhline(statistics.fmean(base), color="grey", lw=0.8, ls=":", label="scratch @ largest size")
        limits = [d["rejection_limit"] for c in table.values() for v in c.values() for d in v["docs"]]
        if limits:
            ax.axhline(min(limits), color="red", lw=0.8, ls="--", label="test-sample limit (Σw / 3 w_max)")
        ax.set(xscale="log", yscale="log", xlabel="training events per class",
               ylabel="rejection @ ε_S = 0.9 (weighted)", title=f"mean and min-max over {f.seeds} seeds")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written["rejection vs training size"] = rel(save(fig, "rejection_vs_size.png"))
    else:
        plt.close(fig)
    eff = summ["efficiency"].get("rejection", {})
    if eff:
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
        names = [s for s in f.strategies if s in eff]
        top = largest * 10
        vals = [min(eff[s]["size"], top) for s in names]
        bars = ax.bar(range(len(names)), vals, color=[f"C{i}" for i in range(len(names))])
        for i, s in enumerate(names):
            seeds = eff[s]["per_seed"]
            reached = [v for v in seeds if not math.isinf(v)]
            ax.plot([i] * len(reached), reached, "k.", label="single seeds" if i == 0 else None)
            if len(reached) < len(seeds):
                ax.plot([i] * (len(seeds) - len(reached)), [top] * (len(seeds) - len(reached)), "kx",
                        label="seed never reaching it" if not any(math.isinf(v) for n in names[:i]
                                                                   for v in eff[n]["per_seed"]) else None)
            if math.isinf(eff[s]["size"]):
                bars[i].set_hatch("//")
                ax.text(i, top, "mean: not reached", ha="center", va="bottom", fontsize=7)
        ax.axhline(largest, color="grey", lw=0.8, ls=":", label="largest size")
        ax.set_xticks(range(len(names)), names, rotation=15, fontsize=8)
        ax.set(yscale="log", ylabel="training events per class",
               title="size reaching scratch's rejection at the largest size\n(bars: mean curves; dots: seeds)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written["data efficiency"] = rel(save(fig, "data_efficiency.png"))
    return written


def report_text(cfg: VIGLConfig, plan: dict[str, StoreSpec], results: Results, config_name: str) -> str:
    summ = summary(cfg, plan, results)
    return render(cfg, plan, results, summ, config_name, plot_all(cfg, plan, summ))


# ----------------------------------------------------------------------------- the command
def run(cfg: VIGLConfig, config_name: str = "", report_only: bool = False) -> dict[str, Any]:
    """Every absent stage and run of the study, then the report; returns {"executed": keys, "report": path}."""
    from recipes.stores import run_study

    plan = make_plan(cfg)
    results = Results(cfg.results)
    if not report_only:
        setup(cfg.device, cfg.threads, 0)
    stages = [("1 data", stage_data), ("2 pretrain", stage_pretrain), ("3 finetune", stage_finetune)]
    return run_study("vigl", cfg, plan, results, stages, lambda: report_text(cfg, plan, results, config_name),
                     report_only)


def stage_pretrain(cfg: VIGLConfig, plan: dict[str, StoreSpec], results: Results, executed: list[str]) -> None:
    """Cache the event tensors for the training processes (errors such as an empty mass are raised here), then
    pretrain the backbone when a strategy needs it and it is absent."""
    event_sets(cfg, plan)
    if any(STRATEGY[s][0] for s in cfg.finetune.strategies) and results.get(pretrain_key(cfg, plan)) is None:
        executed.append(pretrain_job(cfg))


def parse(argv: list[str] | None = None) -> tuple[VIGLConfig, dict[str, Any]]:
    return parse_study(VIGLConfig, argv, __doc__)


def main(argv: list[str] | None = None) -> int:
    return study_main(parse, run, argv)


__all__ = ["VIGLConfig", "run", "main", "make_plan", "check_store", "event_sets", "summary"]

if __name__ == "__main__":
    sys.exit(main())
