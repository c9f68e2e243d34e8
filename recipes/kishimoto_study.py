"""Kishimoto et al. (SPEC §7.3) as a resumable study: object-replacement pretraining, then AUC vs fine-tuning size.

    python -m recipes.kishimoto_study recipes/configs/kishimoto_study.yaml                # the study
    python -m recipes.kishimoto_study recipes/configs/kishimoto_study.yaml --report-only  # KISHIMOTO.md + plots
    python -m recipes.kishimoto_study CONFIG --finetune.sizes=[300,3000]                  # any key: --section.key=value

Stages (each resumable; a re-run executes only what is missing, keyed by a hash of what defines it):

1. **data**: one generated store per process of ``data.processes`` (tt̄, H± -> tb, tt̄H(bb̄): Pythia 8 + the
   ATLAS-like emulation through ``build_store`` on Dask), regenerated bit-identically from the seeds. They stand in
   for the study's CMS samples: the unlabelled pretraining mixture replaces the 2016 BTagCSV collision data (the
   NanoAOD path itself is tested on the shipped CMS file), the labelled ones the CMS simulation.
   ``results/kishimoto/store-<process>-<hash>.json`` records each store's events, splits and events/s.
2. **slots**: every event of each process and split passing the study's selection (>= 1 lepton, >= 2 jets, >= 1
   b-jet) as typed slots (:class:`~hepfm_data.representations.SlotRepresentation`), cached in ``workdir``.
3. **pretrain**: the slot Transformer on the object-replacement pretext (which slot type was replaced by another
   event's object, or none; a fresh draw per batch and epoch) over the selected train events of every process, read
   without their process labels; then the pretext accuracy per replaced type on the selected validation events.
   ``pretrain-<hash>.json`` and ``backbones/<key>.safetensors``. (The loader's rotation / η-flip / boost
   augmentations act on four-vectors before the slot features exist, so this in-memory pretraining has none;
   ``recipes/replace_pretrain.py`` streams with them.)
4. **finetune**: per task x size x seed: one random training subset of ``size`` selected events per class (drawn with
   the seed), trained ``finetuned`` (pretrained Transformer, new head) and ``scratch`` (same network, random init),
   scored on one fixed test set per task: ``finetune-<task>-n<size>-<variant>-s<seed>-<hash>.json``.
5. **report**: ``KISHIMOTO.md`` (AUC vs size, mean ± std over seeds, the gain of pretraining and the verdict on the
   study's finding, computed from the numbers) and ``results/kishimoto/plots/*.png``, from the result files alone.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python recipes/kishimoto_study.py`
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
    study_main,
)
from recipes.replace_pretrain import batches as replace_batches
from recipes.reproduce import Results, _stamp, _worker_setup, digest, epoch_ticks, run_jobs, split_counts
from recipes.vigl import _finite_mean_std, _fmt

SEED_STRIDE = 1000
VARIANTS = ("finetuned", "scratch")


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class DataSection:
    """The generated stores (they regenerate bit-identically from the seeds)."""

    stores: str = "runs/kishimoto/stores"  # <stores>/<hash>/<process>
    processes: tuple[str, ...] = ("ttbar", "Hplus_tb", "ttH_bb")
    events: int = 2000  # generated per process
    seed: int = 1  # process p is generated with seed * 1000 + catalog index of p + 1
    block_size: int = 500
    events_per_unit: int = 2000
    workers: int = 0  # Dask workers for generation (0 = every core; 1 = in this process)
    catalog: str = ""


@dataclass(frozen=True)
class ModelSection:
    """The slot Transformer (SPEC §7.3: 21 typed slots)."""

    width: int = 64
    n_layers: int = 3
    n_heads: int = 4
    ff_width: int = 128


@dataclass(frozen=True)
class PretrainSection:
    """Object-replacement pretraining on the unlabelled mixture of selected events (no process label is used)."""

    epochs: int = 10
    lr: float = 1e-3
    lr_decay: float = 0.98
    patience: int = 3
    batch_size: int = 256
    p_none: float = 1.0 / 6  # probability that no object is replaced
    seed: int = 0


@dataclass(frozen=True)
class FinetuneSection:
    """The grid: tasks x sizes (selected events per class) x seeds, both variants."""

    tasks: tuple[str, ...] = ("ttbar_vs_Hplus_tb", "ttbar_vs_ttH_bb")
    sizes: tuple[int, ...] = (100, 1000)
    seeds: int = 5
    epochs: int = 30
    lr: float = 1e-3
    lr_backbone: float = 1e-4
    lr_decay: float = 0.98
    patience: int = 5
    batch_size: int = 256  # at most; smaller for small sizes so that an epoch has min_batches_per_epoch steps
    min_batches_per_epoch: int = 8
    n_val_per_class: int = 2000  # fixed, the first selected events of the validation splits (0 = all)
    n_test_per_class: int = 0  # fixed, the first selected events of the test splits (0 = all)


@dataclass(frozen=True)
class KishimotoStudyConfig:
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    pretrain: PretrainSection = field(default_factory=PretrainSection)
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    results: str = "results/kishimoto"  # <key>.json per run, backbones/ (committed)
    report: str = "KISHIMOTO.md"
    plots: str = "results/kishimoto/plots"
    workdir: str = "runs/kishimoto"  # slot caches, pretraining checkpoints (not committed)
    device: str = "cpu"
    threads: int = DEFAULT_THREADS
    workers: int = 0  # fine-tuning processes at once (0: one per core on a CPU)
    progress: bool = True

    def __post_init__(self) -> None:
        d, p, f = self.data, self.pretrain, self.finetune
        check_config("kishimoto", [
            (d.events > 0 and len(d.processes) > 0, "data: events must be positive and processes not empty"),
            (p.epochs > 0 and f.epochs > 0, "pretrain.epochs and finetune.epochs must be positive"),
            (bool(f.tasks) and bool(f.sizes) and min(f.sizes) > 0, "finetune: tasks and sizes (> 0) not empty"),
            (f.seeds >= 1, f"finetune.seeds must be >= 1, got {f.seeds}"),
            (f.min_batches_per_epoch >= 1, "finetune.min_batches_per_epoch must be >= 1"),
            (0.0 <= p.p_none < 1.0, f"pretrain.p_none must be in [0, 1), got {p.p_none}"),
        ])


# ----------------------------------------------------------------------------- plan and keys
def make_plan(cfg: KishimotoStudyConfig) -> dict[str, dict[str, Any]]:
    """{process: {"key", "seed", "root", "url"}}: one root for every store (``find_stores`` reads it whole)."""
    cat = catalog_of(DataConfig(catalog=cfg.data.catalog))
    d = cfg.data
    unknown = [p for p in d.processes if not cat.has_process(p)]
    if unknown:
        raise ConfigError(f"data.processes: unknown {unknown}")
    for task in cfg.finetune.tasks:
        if not cat.has_task(task):
            raise ConfigError(f"finetune.tasks: unknown task {task!r}")
        missing = [c for c in cat.task(task).classes if c not in d.processes]
        if missing:
            raise ConfigError(f"finetune.tasks: {task} needs {missing}, not in data.processes {list(d.processes)}")
    streams = {}
    for name in d.processes:
        proc = cat.process(name)
        seed = d.seed * SEED_STRIDE + proc.index + 1
        streams[name] = {"process": {k: getattr(proc, k) for k in ("name", "fidelity", "pythia", "slha", "weight")},
                         "selection": cat.selection, "seed": seed, "events": d.events, "block_size": d.block_size,
                         "events_per_unit": d.events_per_unit}
    root = f"{d.stores.rstrip('/')}/{digest(streams)}"
    return {name: {"key": f"store-{name}-{digest(s)}", "seed": s["seed"], "root": root, "url": f"{root}/{name}"}
            for name, s in streams.items()}


def pretrain_key(cfg: KishimotoStudyConfig, plan: dict) -> str:
    return "pretrain-" + digest({"stores": sorted(s["key"] for s in plan.values()), "model": cfg.model,
                                 "pretrain": cfg.pretrain})


def run_key(cfg: KishimotoStudyConfig, plan: dict, task: str, size: int, variant: str, seed: int) -> str:
    f = cfg.finetune
    inputs = {"stores": sorted(s["key"] for s in plan.values()), "task": task, "size": size, "variant": variant,
              "seed": seed, "model": cfg.model, "backbone": pretrain_key(cfg, plan) if variant == "finetuned" else None,
              "train": {k: getattr(f, k) for k in ("epochs", "lr", "lr_backbone", "lr_decay", "patience", "batch_size",
                                                   "min_batches_per_epoch", "n_val_per_class", "n_test_per_class")}}
    return f"finetune-{task}-n{size}-{variant}-s{seed}-{digest(inputs)}"


def grid(cfg: KishimotoStudyConfig, plan: dict) -> list[tuple[str, int, int, str, str]]:
    """Every fine-tuning run: (task, size, seed, variant, key)."""
    f = cfg.finetune
    return [(t, n, s, v, run_key(cfg, plan, t, n, v, s)) for t in f.tasks for n in f.sizes
            for s in range(f.seeds) for v in VARIANTS]


def _slot_config(cfg: KishimotoStudyConfig, n_out: int):
    from hepfm_models.slots_model import SlotConfig

    m = cfg.model
    return SlotConfig(n_out=n_out, width=m.width, n_layers=m.n_layers, n_heads=m.n_heads, ff_width=m.ff_width)


def _representation(cfg: KishimotoStudyConfig):
    """Slots with the catalog's object selection and the study's event selection."""
    from hepfm_data.representations import SlotRepresentation, SlotSelection

    return SlotRepresentation(SlotSelection.kishimoto(catalog_of(DataConfig(catalog=cfg.data.catalog))))


def _stream(cfg: KishimotoStudyConfig, url: str, split: str):
    """The stored-order loader of SlotBatch over one store (no process label: class 0)."""
    from hepfm_data.loader import make_loader

    return make_loader([url], split=split, labels={url.rstrip("/").rsplit("/", 1)[-1]: 0}, batch_size=2048,
                       shuffle=False, mixing="none", num_workers=0, device="cpu",
                       catalog=catalog_of(DataConfig(catalog=cfg.data.catalog)), representation=_representation(cfg))


# ----------------------------------------------------------------------------- stage 1: stores
def stage_data(cfg: KishimotoStudyConfig, plan: dict, results: Results, executed: list[str]) -> None:
    """Build every missing store (one set of Dask workers for all); record each."""
    from recipes.stores import LazyDask, build_generated, store_present

    cat = catalog_of(DataConfig(catalog=cfg.data.catalog))
    d = cfg.data
    with LazyDask(d.workers, "the Kishimoto study's stores") as dask:
        for name, spec in plan.items():
            present = store_present(spec["url"])
            if present and results.get(spec["key"]) is not None:
                continue
            wall = None
            if not present:
                wall = build_generated(cat.process(name), d.events, spec["seed"], spec["root"], cat, dask.scheduler(),
                                       block_size=d.block_size, events_per_unit=d.events_per_unit,
                                       progress=cfg.progress)
            if results.get(spec["key"]) is None:
                results.put(spec["key"], {"kind": "store", "process": name, "events": d.events, "seed": spec["seed"],
                                          "splits": split_counts(spec["url"]), "wall_s": wall,
                                          "events_per_s": d.events / wall if wall else None,
                                          **_stamp(torch.device("cpu"))})
                executed.append(spec["key"])


# ----------------------------------------------------------------------------- stage 2: slot tensors
def slot_sets(cfg: KishimotoStudyConfig, plan: dict) -> dict[str, dict[str, dict[str, torch.Tensor]]]:
    """{process: {split: SlotBatch fields}} of every selected event, cached in ``workdir`` (our own file, read with
    ``weights_only=True``). ConfigError naming the process and split when no event passes the selection."""
    path = _slot_cache(cfg, plan)
    if path.exists():
        return _load_slots(str(path))
    from hepfm_data.batches.slots import SlotBatch

    out: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
    for name, spec in plan.items():
        for split in ("train", "validation", "test"):
            parts = [b.select(torch.nonzero(b.graph_mask).flatten())
                     for b in _stream(cfg, spec["url"], split)]
            if not parts or sum(p.n_graph for p in parts) == 0:
                raise ConfigError(f"{name}: no {split} event of store {spec['url']} passes the event selection "
                                  f"(>= 1 lepton, >= 2 jets, >= 1 b-jet): generate more (data.events)")
            b = SlotBatch.concat(parts)
            out.setdefault(name, {})[split] = {f.name: getattr(b, f.name) for f in dataclasses.fields(b)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(out, tmp))
    return out


def _slot_cache(cfg: KishimotoStudyConfig, plan: dict) -> Path:
    """The cache file of the selected slots: keyed by the stores and the slot representation's definition."""
    cat = catalog_of(DataConfig(catalog=cfg.data.catalog))
    key = digest({"stores": sorted(s["key"] for s in plan.values()), "slots": _representation(cfg).fingerprint(cat)})
    return Path(cfg.workdir) / "tensors" / f"slots-{key}.pt"


@functools.lru_cache(maxsize=1)
def _load_slots(path: str) -> dict[str, dict[str, dict[str, torch.Tensor]]]:
    """The slot cache, read once per process (a fine-tuning worker runs many jobs on it; they only select from
    it)."""
    return torch.load(path, weights_only=True)


def _slots(fields: dict[str, torch.Tensor]):
    from hepfm_data.batches.slots import SlotBatch

    return SlotBatch(**fields)


def task_set(sets: dict, task_classes: list[str], split: str, n: int, seed: int | None):
    """``n`` selected events per class (0 = all) of ``split`` labelled by class position: a random subset drawn
    with ``seed``, or (``seed`` None) the first in stored order. ConfigError when a class has fewer."""
    from hepfm_data.batches.slots import SlotBatch

    parts = []
    for k, name in enumerate(task_classes):
        b = _slots(sets[name][split])
        if n and b.n_graph < n:
            raise ConfigError(f"{name}: {b.n_graph} selected {split} events, {n} per class were asked for "
                              f"(generate more: data.events)")
        if seed is None:
            idx = torch.arange(n or b.n_graph)
        else:
            g = torch.Generator().manual_seed(seed * 1_000_003 + k)
            idx = torch.randperm(b.n_graph, generator=g)[:n or b.n_graph]
        b = b.select(idx)
        parts.append(dataclasses.replace(b, labels=torch.full_like(b.labels, k)))
    return SlotBatch.concat(parts)


# ----------------------------------------------------------------------------- stage 3: pretraining
def _batches(events, batch_size: int, epoch: int, seed: int, shuffle: bool = True):
    """Batches of ``events`` shuffled by (seed, epoch), in one process (:func:`recipes.replace_pretrain.batches`)."""
    return replace_batches(events, batch_size, epoch, seed, 0, 1, shuffle)



def _train_config(epochs: int, lr: float, lr_decay: float, patience: int, progress: bool, lr_backbone=None):
    from hepfm_models import TrainConfig

    return TrainConfig(epochs=epochs, lr=lr, lr_backbone=lr_backbone or lr, lr_decay=lr_decay, patience=patience,
                       progress=progress)


def pretext_accuracy(model, loader) -> dict[str, Any]:
    """Accuracy of the pretext prediction over ``loader``: overall, per true class (the replaced slot type or
    none) and the confusion matrix (rows: true, columns: predicted)."""
    from hepfm_data.batches.slots import PRETEXT_CLASSES
    from hepfm_models.training import collect

    res = collect(model, loader, torch.device("cpu"))
    pred, true = res["outputs"].argmax(1), res["labels"]
    k = len(PRETEXT_CLASSES)
    conf = torch.bincount(true * k + pred, minlength=k * k).reshape(k, k)
    per = {c: (float(conf[i, i] / conf[i].sum()) if conf[i].sum() else None) for i, c in enumerate(PRETEXT_CLASSES)}
    return {"accuracy": float((pred == true).float().mean()), "per_class": per, "n_events": int(true.numel()),
            "confusion": conf.tolist()}


def pretext_batches(events, pretext, batch_size: int, epoch: int, seed: int, shuffle: bool = True):
    """Shuffled batches of ``events`` with a fresh object replacement drawn per (seed, epoch, batch)."""
    import numpy as np

    for k, b in enumerate(_batches(events, batch_size, epoch, seed, shuffle=shuffle)):
        yield pretext(b, np.random.default_rng([seed, epoch, k]))


def pretrain_job(cfg: KishimotoStudyConfig) -> str:
    """Object-replacement pretraining on the selected train events of every process, read without their process
    labels (the cached slots: every step sees selected events only) -> its key (backbone saved)."""
    from hepfm_data.batches.slots import PRETEXT_CLASSES, ObjectReplacement, SlotBatch
    from hepfm_models.protocol import pretrain

    dist = _worker_setup(cfg)
    plan = make_plan(cfg)
    key = pretrain_key(cfg, plan)
    p = cfg.pretrain
    sets = slot_sets(cfg, plan)
    train = SlotBatch.concat([_slots(sets[n]["train"]) for n in plan])
    val = SlotBatch.concat([_slots(sets[n]["validation"]) for n in plan])
    pre = ObjectReplacement(p_none=p.p_none)
    val_fixed = list(pretext_batches(val, pre, 4096, 0, p.seed + 1, shuffle=False))  # one fixed validation draw
    out = Path(cfg.workdir) / key
    t0 = time.perf_counter()
    model, fit = pretrain(lambda e: pretext_batches(train, pre, p.batch_size, e, p.seed), lambda: val_fixed,
                          classes=list(PRETEXT_CLASSES), mode="multiclass",
                          model_config=_slot_config(cfg, len(PRETEXT_CLASSES)),
                          train_config=_train_config(p.epochs, p.lr, p.lr_decay, p.patience, cfg.progress),
                          out_dir=out, seed=p.seed, dist=dist, meta={"stores": [s["url"] for s in plan.values()]},
                          on_epoch=epoch_ticks(key, p.epochs))
    wall = time.perf_counter() - t0
    pretext = pretext_accuracy(model, val_fixed)
    target = Results(cfg.results).backbone(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(out / f"model{suffix}", target.with_suffix(suffix))
    Results(cfg.results).put(key, {"kind": "pretrain", "history": fit.history, "best_epoch": fit.best_epoch,
                                   "wall_s": wall, "plateau_wall_s": fit.plateau_wall_s, "train_events": train.n_graph,
                                   "events_per_s": train.n_graph * len(fit.history) / fit.wall_s if fit.wall_s else None,
                                   "pretext": pretext, "backbone": f"backbones/{key}.safetensors",
                                   **_stamp(dist.device)})
    return key


# ----------------------------------------------------------------------------- stage 4: fine-tuning
def finetune_job(cfg: KishimotoStudyConfig, task: str, size: int, seed: int, variants: tuple[str, ...]) -> list[str]:
    """Both variants of one (task, size, seed) on the same training subset -> their keys."""
    from hepfm_models.protocol import finetune

    dist = _worker_setup(cfg)
    plan = make_plan(cfg)
    f = cfg.finetune
    classes = list(catalog_of(DataConfig(catalog=cfg.data.catalog)).task(task).classes)
    sets = slot_sets(cfg, plan)
    train = task_set(sets, classes, "train", size, seed * 1_000_003 + size)
    val = task_set(sets, classes, "validation", f.n_val_per_class, None)
    test = task_set(sets, classes, "test", f.n_test_per_class, None)
    backbone = Results(cfg.results).backbone(pretrain_key(cfg, plan))
    batch_size = max(1, min(f.batch_size, train.n_graph // f.min_batches_per_epoch))
    keys = []
    for variant in variants:
        key = run_key(cfg, plan, task, size, variant, seed)
        t0 = time.perf_counter()
        res = finetune(variant, lambda e: _batches(train, batch_size, e, seed),
                       lambda: _batches(val, 4096, 0, 0, shuffle=False), _batches(test, 4096, 0, 0, shuffle=False),
                       pretrained=backbone if variant == "finetuned" else None,
                       model_config=_slot_config(cfg, 2),
                       train_config=_train_config(f.epochs, f.lr, f.lr_decay, f.patience, False, f.lr_backbone),
                       seed=seed, dist=dist, meta={"task": task, "n_per_class": size},
                       on_epoch=epoch_ticks(key, f.epochs))
        epochs = len(res["history"])
        Results(cfg.results).put(key, {"kind": "finetune", **res, "task": task, "size": size, "seed": seed,
                                       "n_train": train.n_graph, "n_val": val.n_graph, "n_test": test.n_graph,
                                       "batch_size": batch_size,
                                       "events_per_s": train.n_graph * epochs / res["wall_s"] if res["wall_s"] else None,
                                       "job_wall_s": time.perf_counter() - t0, **_stamp(dist.device)})
        keys.append(key)
    return keys


def stage_train(cfg: KishimotoStudyConfig, plan: dict, results: Results, executed: list[str]) -> None:
    slot_sets(cfg, plan)  # once, before the pretraining and the workers read the cache
    if results.get(pretrain_key(cfg, plan)) is None:  # one process (torch threads: ``threads``)
        run_jobs(dataclasses.replace(cfg, workers=1), pretrain_job, [()], executed, "pretraining")
    todo: dict[tuple[str, int, int], list[str]] = {}
    for task, size, seed, variant, key in grid(cfg, plan):
        if results.get(key) is None:
            todo.setdefault((task, size, seed), []).append(variant)
    # smallest first: a run cut off leaves whole small cells
    jobs = sorted(((t, n, s, tuple(v)) for (t, n, s), v in todo.items()), key=lambda j: j[1])
    run_jobs(cfg, finetune_job, jobs, executed, "fine-tuning runs", sizes=[len(j[3]) for j in jobs])


# ----------------------------------------------------------------------------- stage 5: report
def summary(cfg: KishimotoStudyConfig, plan: dict, results: Results) -> dict[str, Any]:
    """{task: {size: {variant: (mean, std, n) of the test AUC}}}, the per-seed gains and the missing runs."""
    aucs: dict[str, dict[int, dict[str, dict[int, float]]]] = {}
    missing = 0
    for task, size, seed, variant, key in grid(cfg, plan):
        doc = results.get(key)
        if doc is None:
            missing += 1
            continue
        aucs.setdefault(task, {}).setdefault(size, {}).setdefault(variant, {})[seed] = doc["test_auc"]
    table: dict[str, dict[int, dict[str, tuple]]] = {}
    for task, sizes in aucs.items():
        for size, per in sizes.items():
            row = {v: (*_finite_mean_std(list(per[v].values())), len(per[v])) for v in VARIANTS if v in per}
            paired = sorted(set(per.get("finetuned", {})) & set(per.get("scratch", {})))
            if paired:
                gains = [per["finetuned"][s] - per["scratch"][s] for s in paired]
                row["gain"] = (*_finite_mean_std(gains), len(gains))
            table.setdefault(task, {})[size] = row
    return {"table": table, "missing": missing}


def _sem(cell: tuple) -> float:
    mean, std, n = cell
    return (std or 0.0) / math.sqrt(max(n - 1, 1))


def verdict(summ: dict[str, Any]) -> list[str]:
    """Per task: the gain of pretraining (paired per seed: finetuned - scratch AUC) at each size, and whether it is
    largest at the smallest size (the study's finding) and significant there (> 2 standard errors)."""
    lines, holds = [], []
    for task, sizes in summ["table"].items():
        gains = {n: row["gain"] for n, row in sorted(sizes.items()) if "gain" in row}
        if len(gains) < 2:
            continue
        smallest = min(gains)
        best = max(gains, key=lambda n: gains[n][0])
        z = gains[smallest][0] / (_sem(gains[smallest]) or 1e-12)
        ok = best == smallest and z > 2
        holds.append(ok)
        worst = min(gains, key=lambda n: gains[n][0])
        opposite = worst == smallest and z < -2
        lines.append(f"- **{task}**: AUC gain of pretraining " + ", ".join(
            f"{g[0]:+.4f} ± {g[1] or 0.0:.4f} at {n:,}" for n, g in gains.items())
                     + f" events per class; largest at {best:,}; at the smallest size {z:+.1f} standard errors"
                     + (" — the opposite of the study's finding: pretraining costs most at the smallest size."
                        if opposite else "."))
    if not holds:
        return ["Not enough results for a verdict (both variants at two sizes or more are needed)."]
    word = "holds" if all(holds) else ("holds in part" if any(holds) else "does not hold")
    return [f"**Verdict: the study's finding {word} here** (pretraining helps most at the smallest training size: "
            f"the paired gain is largest there and more than 2 standard errors above zero).", *lines]


def plot_all(cfg: KishimotoStudyConfig, plan: dict, results: Results, summ: dict[str, Any]) -> dict[str, str | None]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(cfg.plots)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str | None] = {"auc_vs_size": None, "pretraining": None}
    t = summ["table"]
    if t:
        fig, axes = plt.subplots(1, len(t), figsize=(5 * len(t), 4), squeeze=False)
        for ax, (task, sizes) in zip(axes[0], t.items()):
            ns = sorted(sizes)
            for v in VARIANTS:
                pts = [(n, sizes[n][v]) for n in ns if v in sizes[n]]
                if not pts:
                    continue
                x = [n for n, _ in pts]
                m = [c[0] for _, c in pts]
                s = [c[1] or 0.0 for _, c in pts]
                ax.plot(x, m, "o-", label=v)
                ax.fill_between(x, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)], alpha=0.25)
            ax.set(xscale="log", xlabel="fine-tuning events per class", ylabel="test AUC", title=task)
            ax.legend()
        fig.suptitle(f"AUC vs training size (mean ± std over {cfg.finetune.seeds} seeds)")
        fig.tight_layout()
        paths["auc_vs_size"] = str(out / "auc_vs_size.png")
        fig.savefig(paths["auc_vs_size"], dpi=110)
        plt.close(fig)
    pre = results.get(pretrain_key(cfg, plan))
    if pre:
        h = pre["history"]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        ep = [r["epoch"] for r in h]
        a1.plot(ep, [r["train_loss"] for r in h], "o-", label="train")
        a1.plot(ep, [r["val_loss"] for r in h], "s-", label="validation")
        a1.set(xlabel="epoch", ylabel="cross entropy", title="object-replacement pretraining")
        a1.legend()
        per = pre["pretext"]["per_class"]
        a2.bar(list(per), [v or 0.0 for v in per.values()])
        a2.axhline(1 / len(per), ls="--", c="gray", label="chance (1/6)")
        a2.set(ylabel="validation accuracy", title=f"pretext accuracy per replaced type (all: "
                                                   f"{pre['pretext']['accuracy']:.3f})", ylim=(0, 1))
        a2.legend()
        fig.tight_layout()
        paths["pretraining"] = str(out / "pretraining.png")
        fig.savefig(paths["pretraining"], dpi=110)
        plt.close(fig)
    return paths


def render(cfg: KishimotoStudyConfig, plan: dict, results: Results, summ: dict[str, Any], config_name: str,
           plots: dict[str, str | None]) -> str:
    d, p, f = cfg.data, cfg.pretrain, cfg.finetune
    t = summ["table"]
    lines = [
        "# Kishimoto et al. (SPEC §7.3): object-replacement pretraining on typed slots", "",
        f"Generated by `python -m recipes.kishimoto_study {config_name}` from the results in `{cfg.results}/` "
        f"(re-render: add `--report-only`). {d.events:,} generated events per process of {', '.join(d.processes)}; "
        f"the study's event selection (>= 1 lepton, >= 2 jets, >= 1 b-jet); slot Transformer width "
        f"{cfg.model.width}, {cfg.model.n_layers} layers; fine-tuning sizes {', '.join(f'{n:,}' for n in f.sizes)} "
        f"selected events per class, {f.seeds} seeds (random training subsets) per cell."
        + (f" **{summ['missing']} run(s) missing.**" if summ["missing"] else ""), "",
        "**Stand-ins.** The study pretrains on 2016 CMS collision data (BTagCSV, NanoAOD) and fine-tunes on CMS full "
        "simulation. Here the unlabelled pretraining mixture is the train splits of the generated stores "
        f"({', '.join(d.processes)}: Pythia 8 LO + hepfm's ATLAS-like emulation, no pile-up), read without "
        "their process labels, and the fine-tuning events are drawn from the same train splits (the pretraining saw "
        "them unlabelled; the test splits were never seen). The NanoAOD path of the study stays tested on the "
        "shipped CMS file (tests/test_replace_pretrain.py).", "",
        *verdict(summ), "", *_differences(cfg, plan, results), "",
        "## Test AUC vs fine-tuning size (mean ± std over seeds; gain = finetuned - scratch, paired per seed)", "",
        "| task | events per class | scratch | finetuned | gain | test events |", "|---|---|---|---|---|---|",
    ]
    n_test = {}
    for task, _size, _seed, _variant, key in grid(cfg, plan):
        doc = results.get(key)
        if doc:
            n_test[task] = doc["n_test"]
    for task, sizes in t.items():
        for n, row in sorted(sizes.items()):
            cell = lambda c, sign="": f"{c[0]:{sign}.4f} ± {c[1] or 0.0:.4f}" if c else "—"  # noqa: E731
            lines.append(f"| {task} | {n:,} | {cell(row.get('scratch'))} | {cell(row.get('finetuned'))} | "
                         f"{cell(row.get('gain'), '+')} | {n_test.get(task, 0):,} |")
    pre = results.get(pretrain_key(cfg, plan))
    lines += ["", "## Pretraining", ""]
    if pre:
        h = pre["history"]
        per = pre["pretext"]["per_class"]
        lines += [f"Object replacement (p_none {p.p_none:.3f}, no augmentation) on {pre['train_events']:,} selected "
                  f"train events of every process, read without their labels, {len(h)} epochs "
                  f"(best {pre['best_epoch']}): loss {h[0]['train_loss']:.3f} -> {h[-1]['train_loss']:.3f} (train), "
                  f"{h[0]['val_loss']:.3f} -> {h[-1]['val_loss']:.3f} (validation); "
                  f"{_fmt(pre.get('events_per_s'), None, '.0f')} events/s, {pre['wall_s']:.0f} s.", "",
                  f"Pretext accuracy on {pre['pretext']['n_events']:,} selected validation events: "
                  f"**{pre['pretext']['accuracy']:.3f}** (chance 1/6 = 0.167). Per true class (which slot type "
                  "was replaced):", "",
                  "| " + " | ".join(per) + " |", "|" + "---|" * len(per),
                  "| " + " | ".join("—" if v is None else f"{v:.3f}" for v in per.values()) + " |"]
    rates = [results.get(k) for *_, k in grid(cfg, plan)]
    rates = [r["events_per_s"] for r in rates if r and r.get("events_per_s")]
    lines += ["", "## Data and cost", "", "| store | events | splits (train/val/test) | selected (train/val/test) | "
              "generation events/s |", "|---|---|---|---|---|"]
    sel = _selected_counts(cfg, plan)
    for name, spec in plan.items():
        s = results.get(spec["key"]) or {}
        if s:
            sp = s["splits"]
            lines.append(f"| {name} | {s['events']:,} | {sp['train']}/{sp['validation']}/{sp['test']} | "
                         f"{sel.get(name, '—')} | {_fmt(s.get('events_per_s'), None, '.1f')} |")
    if rates:
        lines.append(f"\nFine-tuning loop: {statistics.median(rates):.0f} events/s per process (median over runs, "
                     f"one thread each, {cfg.workers or 'one per core'} processes at once).")
    lines += ["", "## Plots", ""]
    here = Path(cfg.report).resolve().parent
    lines += [f"![{k}]({Path(os.path.relpath(Path(v).resolve(), here)).as_posix()})" for k, v in plots.items() if v]
    return "\n".join(lines) + "\n"


def _differences(cfg: KishimotoStudyConfig, plan: dict, results: Results) -> list[str]:
    """What separates this run from the study (SPEC §7.3), with this run's numbers: what a reader needs before
    taking the verdict as a statement about the method."""
    pre = results.get(pretrain_key(cfg, plan))
    if not pre:
        return []
    return [f"**What differs from the study.** Pretraining here sees {pre['train_events']:,} selected events for "
            f"{len(pre['history'])} epochs and reaches a pretext accuracy of {pre['pretext']['accuracy']:.3f} "
            f"(validation loss {pre['history'][0]['val_loss']:.4f} -> {pre['history'][-1]['val_loss']:.4f} from the "
            "first epoch to the last); the study pretrains on ~10^6 selected collision events per dataset (SPEC §7.3: "
            "splits 1e6/1e5/1e5), with the rotation, η-flip and boost augmentations this in-memory path does not "
            f"apply, and fine-tunes 10 runs per size ({cfg.finetune.seeds} here). A representation learnt from "
            f"~{1e6 / max(pre['train_events'], 1):.0f}x fewer events, without augmentations, may simply not yet "
            "carry what the downstream tasks use; a larger unlabelled sample (collision-data stores through "
            "`recipes/replace_pretrain.py`, or more generated events) is the test of the method that this run is "
            "not."]


def _selected_counts(cfg: KishimotoStudyConfig, plan: dict) -> dict[str, str]:
    """"train/val/test" selected events per process, from the slot cache when it exists."""
    path = _slot_cache(cfg, plan)
    if not path.exists():
        return {}
    sets = _load_slots(str(path))
    return {n: "/".join(str(int(s[sp]["labels"].numel())) for sp in ("train", "validation", "test"))
            for n, s in sets.items()}


def report_text(cfg: KishimotoStudyConfig, plan: dict, results: Results, config_name: str) -> str:
    summ = summary(cfg, plan, results)
    return render(cfg, plan, results, summ, config_name, plot_all(cfg, plan, results, summ))


# ----------------------------------------------------------------------------- the command
def run(cfg: KishimotoStudyConfig, config_name: str = "", report_only: bool = False) -> dict[str, Any]:
    """Every absent stage and run of the study, then the report; returns {"executed": keys, "report": path}."""
    from recipes.stores import run_study

    plan = make_plan(cfg)
    results = Results(cfg.results)
    stages = [("1 data", stage_data), ("2-4 slots + pretrain + finetune", stage_train)]
    return run_study("kishimoto", cfg, plan, results, stages, lambda: report_text(cfg, plan, results, config_name),
                     report_only)


def parse(argv: list[str] | None = None) -> tuple[KishimotoStudyConfig, dict[str, Any]]:
    return parse_study(KishimotoStudyConfig, argv, __doc__)


def main(argv: list[str] | None = None) -> int:
    return study_main(parse, run, argv)


__all__ = ["KishimotoStudyConfig", "run", "main", "make_plan", "summary", "verdict"]

if __name__ == "__main__":
    sys.exit(main())
