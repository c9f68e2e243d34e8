"""The paper's whole study in one command (SPEC §4-§6, §7.4): data -> pretraining -> fine-tuning grid
-> CKA -> ``REPRODUCTION.md``.

    python -m recipes.reproduce recipes/configs/reproduce.yaml              # the default study
    python -m recipes.reproduce recipes/configs/reproduce.yaml --scale=10   # 10x the events, one more decade
    python -m recipes.reproduce recipes/configs/reproduce.yaml --report-only
    python -m recipes.reproduce recipes/configs/reproduce.yaml --export-backbones   # ship gn-multiclass/-multilabel
    python -m recipes.reproduce CONFIG --finetune.seeds=5 --data.workers=16     # any key: --section.key=value

Stages (each prints its time; progress bars move):

1. **data**: a store per process the study needs (every generatable pretraining process + the classes
   of every buildable task), generated with Pythia 8 + the ATLAS-like emulation through
   ``hepfm_data.pipelines.build.build_store`` on one set of local Dask workers (``hepfm_data.pipelines.workers``) of
   ``data.workers`` processes (0 = every core); tHq, ttyy, ttW, ttt, tttt come from the LO generator
   (``hepfm_data.readers.generation.lo``). ``external-only`` processes (none in the shipped catalog) are
   skipped, and every class and task that needs them says so;
   ``proxy`` processes are used and flagged in every table.
2. **pretrain**: multiclass and multilabel (SPEC §4/§6) on the first ``n_train_per_process`` training
   events of every pretraining store, early stopping on the validation loss (the loss plateau).
3. **finetune**: every buildable task x size x variant x seed; seed k draws the model init *and* the
   random training subset; one fixed validation set (early stopping) and one fixed test set per task.
4. **cka**: per (task, size), linear CKA of every stage (``GraphNet.stages``) on the first test events:
   baseline vs baseline, baseline vs each fine-tuned ensemble (Table III at the latents, layer-wise below).
5. **report**: ``REPRODUCTION.md`` + plots, generated from ``results/`` alone (``recipes/reproduce_report.py``).

Resumable across machines: every run is keyed by (stage, task, size, variant, seed, hash of everything
that affects it); its result ``results/<key>.json`` is written atomically (temp + rename) and a re-run
executes only the runs whose results are absent. Pretrained backbones are kept as
``results/backbones/<key>.{safetensors,json}`` so a later sitting fine-tunes without pretraining.
Stores (``workdir``/stores, not committed) regenerate bit-identically from the seeds in the config;
fine-tuned weights (needed by CKA only) stay in ``workdir`` too.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python recipes/reproduce.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recipes.common import (
    DEFAULT_THREADS,
    ConfigError,
    DataConfig,
    ModelSection,
    catalog_of,
    check_config,
    class_split,
    cleanup_distributed,
    load_config,
    setup,
    to_dict,
    write_json,
)

MODES = ("multiclass", "multilabel")
#: study variant -> (protocol variant, pretraining mode of its backbone or None)
VARIANTS = {"scratch": ("scratch", None), "finetuned-multiclass": ("finetuned", "multiclass"),
            "finetuned-multilabel": ("finetuned", "multilabel"), "frozen-multiclass": ("frozen", "multiclass"),
            "frozen-multilabel": ("frozen", "multilabel")}
BASELINE = "scratch"
#: the seed of every process's generation is derived from data.seed and the catalog index (independent streams)
SEED_STRIDE = 1000


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class DataSection:
    """The stores: events generated per process, seeds, unit sizes (all fixed: stores regenerate bit-identically)."""

    stores: str = "runs/reproduce/stores"  # root; a store lives in <stores>/<process>-<hash>/<process>
    events: int = 5000  # generated per pretraining process
    task_events: int = 6000  # per class of a fine-tuning task / evaluation process (a pretraining class: the larger)
    seed: int = 1  # process p is generated with seed * 1000 + catalog index of p + 1
    block_size: int = 1000  # Pythia events per seed block (the events depend on it)
    events_per_unit: int = 1000  # events per build task (one shard per split); sets the shard layout
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train / validation / test
    workers: int = 0  # Dask worker processes for generation (0 = every core)
    evaluation_processes: bool = True  # also every generatable evaluation process (e.g. fcnc, whose task needs tHq)
    catalog: str = ""  # catalog YAML ("" = the packaged one)


@dataclass(frozen=True)
class PretrainSection:
    """SPEC §4/§6 pretraining on every generatable pretraining process."""

    modes: tuple[str, ...] = MODES
    processes: tuple[str, ...] = ()  # () = every pretraining process of the catalog
    n_train_per_process: int = 0  # the first N train events of each store; 0 = 90% of the expected smallest split
    n_val_per_process: int = 500  # validation events per process (capped at 80% of the expected smallest split)
    batch_size: int = 512
    epochs: int = 50  # upper bound: early stopping on the validation loss ends it at the plateau
    patience: int = 5
    lr: float = 1e-4
    lr_decay: float = 0.99
    seed: int = 0


@dataclass(frozen=True)
class FinetuneSection:
    """SPEC §6 grid: tasks x sizes x variants x seeds."""

    tasks: tuple[str, ...] = ()  # () = the paper's tasks (catalog tasks of pretraining/evaluation processes)
    sizes: tuple[int, ...] = (1000,)  # training events per class
    seeds: int = 3  # models per cell: seed k = model init and random training subset
    variants: tuple[str, ...] = ("scratch", "finetuned-multiclass", "finetuned-multilabel", "frozen-multiclass")
    n_val_per_class: int = 500  # fixed validation set (early stopping)
    n_test_per_class: int = 0  # fixed test set (0 = the whole test split, balanced to the smaller class)
    batch_size: int = 128
    epochs: int = 100  # upper bound: early stopping ends it at the plateau
    patience: int = 5
    lr: float = 1e-4  # new final layer and from-scratch training
    lr_backbone: float = 1e-5  # pretrained layers
    lr_decay: float = 0.99
    freeze_train: str = "head"  # frozen variants train the final layer ("decoder": + decoder)


@dataclass(frozen=True)
class CKASection:
    """Representations compared by CKA: the first test events of each class."""

    n_events_per_class: int = 1000
    max_rows: int = 5000  # node / edge rows kept per stage (a fixed random subset, same for every model)


@dataclass(frozen=True)
class ReproduceConfig:
    data: DataSection = field(default_factory=DataSection)
    pretrain: PretrainSection = field(default_factory=PretrainSection)
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    cka: CKASection = field(default_factory=CKASection)
    model: ModelSection = field(default_factory=ModelSection)
    results: str = "results"  # <key>.json per run, backbones/ (committed)
    report: str = "REPRODUCTION.md"
    plots: str = "results/plots"
    workdir: str = "runs/reproduce"  # checkpoints and fine-tuned weights (not committed)
    device: str = "auto"  # "auto" = CUDA when available
    threads: int = DEFAULT_THREADS  # torch intra-op threads per training process (0 = torch's default; see common.py)
    workers: int = 0  # training processes at once (runs are independent): 0 = one per core on a CPU, one on a GPU
    progress: bool = True

    def __post_init__(self) -> None:
        d, p, f = self.data, self.pretrain, self.finetune
        checks = [
            (d.events > 0 and d.task_events > 0, "data.events and data.task_events must be positive"),
            (d.block_size > 0 and d.events_per_unit >= d.block_size, "data.events_per_unit must be >= data.block_size > 0"),
            (len(d.fractions) == 3 and abs(sum(d.fractions) - 1) < 1e-9 and min(d.fractions) > 0,
             f"data.fractions must be three positive numbers summing to 1, got {d.fractions}"),
            (d.workers >= 0, "data.workers must be >= 0"),
            (bool(p.modes) and set(p.modes) <= set(MODES), f"pretrain.modes must be a non-empty subset of {MODES}"),
            (p.n_val_per_process > 0 and p.epochs > 0 and p.batch_size > 0, "pretrain: n_val_per_process, epochs, "
             "batch_size must be positive"),
            (bool(f.sizes) and min(f.sizes) > 0 and len(set(f.sizes)) == len(f.sizes),
             "finetune.sizes must be distinct positive numbers"),
            (f.seeds >= 1 and f.epochs > 0 and f.batch_size > 0 and f.n_val_per_class > 0,
             "finetune: seeds, epochs, batch_size, n_val_per_class must be positive"),
            (set(f.variants) <= set(VARIANTS), f"finetune.variants: unknown {sorted(set(f.variants) - set(VARIANTS))}; "
             f"known: {list(VARIANTS)}"),
            (BASELINE in f.variants, f"finetune.variants must include the baseline {BASELINE!r}"),
            (f.freeze_train in ("head", "decoder"), "finetune.freeze_train must be 'head' or 'decoder'"),
            (self.cka.n_events_per_class >= 2 and self.cka.max_rows >= 0, "cka.n_events_per_class must be >= 2"),
        ]
        check_config("reproduce", checks)
        for v in f.variants:
            mode = VARIANTS[v][1]
            if mode is not None and mode not in p.modes:
                raise ConfigError(f"reproduce config: variant {v!r} needs the {mode} backbone, but pretrain.modes "
                                  f"is {list(p.modes)}")


def scaled(cfg: ReproduceConfig, factor: float) -> ReproduceConfig:
    """The study grown by ``factor`` (``--scale``): events generated, pretraining/validation/test/CKA
    event counts x factor, and one more decade of fine-tuning size per factor of 10 (10 -> + 10x the
    largest size)."""
    if factor <= 0:
        raise ConfigError(f"--scale must be positive, got {factor}")
    if factor == 1:
        return cfg
    mul = lambda n: max(1, int(round(n * factor))) if n else n  # noqa: E731
    decades = int(math.floor(math.log10(factor) + 1e-9)) if factor >= 10 else 0
    sizes = tuple(cfg.finetune.sizes) + tuple(max(cfg.finetune.sizes) * 10 ** k for k in range(1, decades + 1))
    return dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, events=mul(cfg.data.events), task_events=mul(cfg.data.task_events)),
        pretrain=dataclasses.replace(cfg.pretrain, n_train_per_process=mul(cfg.pretrain.n_train_per_process),
                                     n_val_per_process=mul(cfg.pretrain.n_val_per_process)),
        finetune=dataclasses.replace(cfg.finetune, sizes=tuple(dict.fromkeys(sizes)),
                                     n_val_per_class=mul(cfg.finetune.n_val_per_class),
                                     n_test_per_class=mul(cfg.finetune.n_test_per_class)),
        cka=dataclasses.replace(cfg.cka, n_events_per_class=mul(cfg.cka.n_events_per_class)))


# ----------------------------------------------------------------------------- keys and results
def _plain(obj: Any) -> Any:
    """JSON-able form of dataclasses, mappings, tuples (for hashing)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.name.startswith("_")}
    if isinstance(obj, dict) or hasattr(obj, "items"):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def digest(obj: Any, n: int = 12) -> str:
    """First ``n`` hex digits of the sha256 of ``obj``'s canonical JSON."""
    text = json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def study_hash(cfg: ReproduceConfig) -> str:
    """Hash of what defines the study's results (data, pretraining, fine-tuning, CKA, model), not of where files go
    or how many processes run it (paths, workers, threads, device, progress)."""
    data = {k: v for k, v in to_dict(cfg.data).items() if k not in ("stores", "workers")}
    return digest({"data": data, "pretrain": cfg.pretrain, "finetune": cfg.finetune, "cka": cfg.cka, "model": cfg.model})


class Results:
    """``<results>/<key>.json``: one JSON document per finished run (written last, atomically)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        p = self.path(key)
        return json.loads(p.read_text()) if p.exists() else None

    def put(self, key: str, doc: dict[str, Any]) -> None:
        write_json(self.path(key), {"key": key, **doc})

    def backbone(self, key: str) -> Path:
        """Checkpoint path (without suffix) of a pretraining run's backbone."""
        return self.root / "backbones" / key

    def partial(self, key: str) -> Path:
        """Working directory of an unfinished pretraining run (its per-epoch resume state): kept beside the
        results so that a sitting cut mid-pretraining commits it and the next sitting, on any machine, goes on
        from the last finished epoch; removed when the run completes."""
        return self.root / "partial" / key


def machine(device) -> dict[str, Any]:
    """Where a run ran: CPU model, cores, accelerator, torch and threads."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    acc = torch.cuda.get_device_name(device) if getattr(device, "type", "cpu") == "cuda" else "none"
    return {"cpu": cpu, "cores": os.cpu_count(), "accelerator": acc, "device": str(device),
            "torch": torch.__version__, "threads": torch.get_num_threads()}


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """hepfm version + the git commit of this checkout (when it is one)."""
    from hepfm_data import __version__

    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def _stamp(device) -> dict[str, Any]:
    return {"machine": machine(device), "date": time.strftime("%Y-%m-%d", time.gmtime()), "code": code_version()}


# ----------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class StoreSpec:
    """One store: ``key`` identifies its content (the event stream + its size); ``stream`` the event stream
    alone (process, seeds, block and unit sizes, split, selection): a bigger store of the same stream begins
    with the same events in the same order."""

    process: str
    fidelity: str
    events: int
    seed: int
    key: str
    stream: str

    def root(self, cfg: ReproduceConfig) -> str:
        return f"{cfg.data.stores.rstrip('/')}/{self.process}-{self.key.rsplit('-', 1)[-1]}"

    def url(self, cfg: ReproduceConfig) -> str:
        return f"{self.root(cfg)}/{self.process}"


@dataclass(frozen=True)
class Plan:
    """What the study covers, and what it skips and why (from the config and the catalog)."""

    stores: dict[str, StoreSpec]
    pretrain_processes: tuple[str, ...]
    tasks: dict[str, tuple[str, str]]  # buildable task -> classes
    skipped_processes: dict[str, str]  # process -> why
    skipped_tasks: dict[str, str]  # task -> why
    needed_by: dict[str, list[str]]  # skipped process -> the classes and tasks that need it
    pretrain_n_train: int  # events per process: the first of each train split in stored order
    pretrain_n_val: int  # the first of each validation split


def paper_tasks(cat) -> list[str]:
    """The catalog's tasks whose classes are all pretraining or evaluation processes (SPEC §1)."""
    return [t.name for t in cat.tasks if all(cat.process(c).role in ("pretrain", "eval") for c in t.classes)]


def make_plan(cfg: ReproduceConfig) -> Plan:
    cat = catalog_of(DataConfig(catalog=cfg.data.catalog))
    skipped_p: dict[str, str] = {}

    def usable(name: str) -> bool:
        proc = cat.process(name)
        if not proc.generatable:
            skipped_p[name] = (f"{proc.fidelity}: no Pythia 8 process can generate it locally (needs LHE or "
                               f"Delphes input)")
        return proc.generatable

    wanted = list(cfg.pretrain.processes) or [p.name for p in cat.pretraining]
    pre = tuple(n for n in wanted if usable(n))
    needed_by = {n: [f"pretraining (class {cat.process(n).index} of the paper's multiclass labels)"]
                 for n in wanted if n in skipped_p}
    tasks, skipped_t = {}, {}
    for name in list(cfg.finetune.tasks) or paper_tasks(cat):
        classes = cat.task(name).classes
        bad = [c for c in classes if not usable(c)]
        if bad:
            skipped_t[name] = f"class {', '.join(bad)} cannot be generated ({skipped_p[bad[0]].split(':')[0]})"
            for c in bad:
                needed_by.setdefault(c, []).append(f"task {name}")
        else:
            tasks[name] = tuple(classes)
    events = {n: cfg.data.events for n in pre}
    extra = [p.name for p in cat.evaluation if p.generatable] if cfg.data.evaluation_processes else []
    for c in [c for classes in tasks.values() for c in classes] + extra:
        events[c] = max(events.get(c, 0), cfg.data.task_events)
    stores = {}
    for name in sorted(events, key=lambda n: cat.process(n).index):
        proc = cat.process(name)
        seed = cfg.data.seed * SEED_STRIDE + proc.index + 1
        what = {k: _plain(getattr(proc, k)) for k in ("name", "fidelity", "pythia", "slha", "cp_mixing", "particle_flow")}
        if proc.generator is not None:  # the LO generator's settings make its events (absent: Pythia's keys unchanged)
            what["generator"] = _plain(proc.generator)
        stream = {"process": what,
                  "selection": _plain(cat.selection), "graph": _plain(cat.graph), "labels": _plain(cat.labels),
                  "seed": seed, "block_size": cfg.data.block_size, "events_per_unit": cfg.data.events_per_unit,
                  "fractions": list(cfg.data.fractions)}
        stores[name] = StoreSpec(name, proc.fidelity, events[name], seed,
                                 f"store-{name}-{digest({**stream, 'events': events[name]})}", digest(stream))
    # pretraining sample: fixed by the config alone (not by the hash-drawn split sizes), so that a bigger store of
    # the same stream gives the same sample (and the same key): 90% of the expected smallest train split
    fewest = min((events[n] for n in pre), default=0)
    n_train = cfg.pretrain.n_train_per_process or int(0.9 * fewest * cfg.data.fractions[0])
    n_val = min(cfg.pretrain.n_val_per_process, max(1, int(0.8 * fewest * cfg.data.fractions[1])))
    return Plan(stores, pre, tasks, skipped_p, skipped_t, needed_by, n_train, n_val)


def _data_config(cfg: ReproduceConfig, batch_size: int = 512) -> DataConfig:
    return DataConfig(stores=cfg.data.stores, batch_size=batch_size, num_workers=0, catalog=cfg.data.catalog)


def pretrain_key(cfg: ReproduceConfig, plan: Plan, mode: str) -> str:
    p = cfg.pretrain
    inputs = {"streams": [plan.stores[n].stream for n in plan.pretrain_processes], "mode": mode,
              "n_train": plan.pretrain_n_train, "n_val": plan.pretrain_n_val,
              "train": {k: getattr(p, k) for k in ("batch_size", "epochs", "patience", "lr", "lr_decay", "seed")},
              "model": cfg.model}
    return f"pretrain-{mode}-{digest(inputs)}"


def finetune_key(cfg: ReproduceConfig, plan: Plan, task: str, size: int, variant: str, seed: int,
                 n_val: int, n_test: int) -> str:
    f = cfg.finetune
    mode = VARIANTS[variant][1]
    inputs = {"task": task, "stores": [plan.stores[c].key for c in plan.tasks[task]], "size": size,
              "variant": variant, "seed": seed, "n_val": n_val, "n_test": n_test,
              "backbone": pretrain_key(cfg, plan, mode) if mode else None,
              "train": {k: getattr(f, k) for k in ("batch_size", "epochs", "patience", "lr", "lr_backbone", "lr_decay")},
              "freeze_train": f.freeze_train if VARIANTS[variant][0] == "frozen" else None, "model": cfg.model}
    return f"finetune-{task}-n{size}-{variant}-s{seed}-{digest(inputs)}"


def cka_key(cfg: ReproduceConfig, task: str, size: int, members: dict[str, list[str]]) -> str:
    return f"cka-{task}-n{size}-{digest({'members': members, 'cka': cfg.cka})}"


def split_counts(url: str) -> dict[str, int]:
    """Events per split of the store at ``url`` (from its manifest)."""
    from hepfm_data.store import SPLITS, open_store

    st = open_store(url)
    return {s: sum(sh.n_events for sh in st.shards(s)) for s in SPLITS}


# ----------------------------------------------------------------------------- stage 1: data
def stores_needed(cfg: ReproduceConfig, plan: Plan, results: Results) -> set[str]:
    """The processes whose stores this sitting needs: every pretraining process while a pretraining run is
    absent, the classes of every task with an absent fine-tuning or CKA run, and every store not yet recorded
    (the report's data table). A later sitting that only fine-tunes builds the task stores alone."""
    need = {n for n, spec in plan.stores.items() if results.get(spec.key) is None}
    if any(results.get(pretrain_key(cfg, plan, m)) is None for m in cfg.pretrain.modes):
        need.update(plan.pretrain_processes)
    for task, classes in plan.tasks.items():
        td = task_data(cfg, plan, results, task)
        keys = [] if td is None else [r[4] for r in grid(cfg, plan, {task: td})] + cka_keys(cfg, plan, task, td)
        if td is None or any(results.get(k) is None for k in keys):
            need.update(classes)
    return need


def stage_data(cfg: ReproduceConfig, plan: Plan, results: Results, executed: list[str], device) -> None:
    """Build every missing store the sitting needs (:func:`stores_needed`; Dask, every core); record each
    store's events and build time."""
    from hepfm_data.store import open_store
    from recipes.stores import LazyDask, build_generated, store_present

    cat = catalog_of(_data_config(cfg))
    need = stores_needed(cfg, plan, results)
    with LazyDask(cfg.data.workers, "the study's stores") as dask:
        for name, spec in plan.stores.items():
            if name not in need:
                continue
            url = spec.url(cfg)
            done = results.get(spec.key)
            present = store_present(url)
            if present and done is not None:
                continue
            wall = None
            if not present:
                wall = build_generated(cat.process(name), spec.events, spec.seed, spec.root(cfg), cat, dask.scheduler(),
                                       block_size=cfg.data.block_size, events_per_unit=cfg.data.events_per_unit,
                                       fractions=cfg.data.fractions, progress=cfg.progress)
            if done is None:
                st = open_store(url)
                results.put(spec.key, {"kind": "store", "process": name, "fidelity": spec.fidelity,
                                       "events": spec.events, "seed": spec.seed, "splits": split_counts(url),
                                       "shards_sha256": digest([s.sha256 for s in st.shards()], 64),
                                       "wall_s": wall, "workers": cfg.data.workers or os.cpu_count(),
                                       **_stamp(device)})
                executed.append(spec.key)
            elif wall is not None:
                old = done.get("shards_sha256")
                new = digest([s.sha256 for s in open_store(url).shards()], 64)
                same = "bit-identical to the recorded store" if old == new else "DIFFERS from the recorded store"
                print(f"  rebuilt {name} in {wall:.0f} s: {same}", flush=True)


# ----------------------------------------------------------------------------- stage 2: pretraining
def _train_config(mode: str, epochs: int, patience: int, lr: float, lr_decay: float, progress: bool,
                  lr_backbone: float | None = None):
    from hepfm_models import TrainConfig

    return TrainConfig(mode=mode, epochs=epochs, patience=patience, lr=lr, lr_backbone=lr_backbone or lr,
                       lr_decay=lr_decay, progress=progress)


def _metric(res: dict, mode: str, n_chunks: int) -> dict[str, float]:
    """``metric_with_error`` of ``collect`` results."""
    import statistics

    from hepfm_models.training import metrics_from

    n = int(res["outputs"].shape[0])
    if mode == "multiclass":
        a = metrics_from(res, mode)["accuracy"]
        return {"metric": "accuracy", "value": a, "stat_error": math.sqrt(max(a * (1 - a), 1e-12) / n), "n_events": n}
    bounds = [n * k // n_chunks for k in range(n_chunks + 1)]
    chunks = [metrics_from({k: v[a:b] for k, v in res.items()}, mode)["loss"]
              for a, b in zip(bounds, bounds[1:]) if b > a]
    return {"metric": "loss", "value": metrics_from(res, mode)["loss"],
            "stat_error": statistics.stdev(chunks) / math.sqrt(len(chunks)) if len(chunks) > 1 else 0.0,
            "n_events": n}


def metric_with_error(model, batches, mode: str, device, n_chunks: int = 10,
                      classes: Sequence[str] | None = None) -> dict[str, Any]:
    """The validation metric of a pretrained model with its statistical error: multiclass accuracy ±
    sqrt(a(1-a)/n); multilabel loss ± the standard error of ``n_chunks`` equal chunks' losses. With
    ``classes`` (the name of each label index) also ``per_class``: the same metric on each class's events."""
    from hepfm_models.training import collect

    res = collect(model, batches, device)
    out = _metric(res, mode, n_chunks)
    if classes is not None:
        out["per_class"] = {name: _metric({k: v[res["labels"] == i] for k, v in res.items()}, mode, n_chunks)
                            for i, name in enumerate(classes) if bool((res["labels"] == i).any())}
    return out


def pretrain_job(cfg: ReproduceConfig, mode: str) -> str:
    """One pretraining run (``hepfm_models.protocol.pretrain``) in this process; returns its key. The backbone
    goes to ``results/backbones/<key>``, then the result JSON (which marks the run complete)."""
    from hepfm_models.checkpoint import load_checkpoint
    from hepfm_models.protocol import pretrain

    plan, results, dist = make_plan(cfg), Results(cfg.results), _worker_setup(cfg)
    p, dev, key = cfg.pretrain, dist.device, pretrain_key(cfg, plan, mode)
    cat = catalog_of(_data_config(cfg))
    urls = [plan.stores[n].url(cfg) for n in plan.pretrain_processes]
    n_train, n_val = plan.pretrain_n_train, plan.pretrain_n_val
    data = _data_config(cfg, p.batch_size)
    train = class_split(urls, data, "train", n_train, 0, False, multilabels=True, what="pretraining")
    val = class_split(urls, data, "validation", n_val, 0, False, multilabels=True, what="pretraining")
    val_batches = list(val.batches(p.batch_size, shuffle=False, device=dev))
    fidelity = {n: plan.stores[n].fidelity for n in plan.pretrain_processes}
    out = results.partial(key)
    print(f"  pretraining {mode} ({key}): {len(plan.pretrain_processes)} processes x {n_train:,} train / {n_val:,} "
          f"validation events", flush=True)
    tcfg = _train_config(mode, p.epochs, p.patience, p.lr, p.lr_decay, cfg.progress)
    _, fit = pretrain(lambda epoch: train.batches(p.batch_size, epoch, p.seed, True, device=dev), lambda: val_batches,
                      classes=list(plan.pretrain_processes), mode=mode,
                      model_config=cfg.model.model_config(cat.labels.n_labels), train_config=tcfg, out_dir=out,
                      seed=p.seed, dist=dist, meta={"stores": [plan.stores[n].key for n in plan.pretrain_processes],
                                                    "fidelity": fidelity}, on_epoch=epoch_ticks(key, p.epochs))
    model, _ = load_checkpoint(out / "model", map_location=dev)  # the best epoch, as saved
    validation = metric_with_error(model, val_batches, mode, dev, classes=plan.pretrain_processes)
    dest = results.backbone(key)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".json"):  # weights first; the result JSON below marks completion
        shutil.copyfile(out / f"model{suffix}", dest.with_suffix(suffix))
    best = next((h for h in fit.history if h["epoch"] == fit.best_epoch), {})
    results.put(key, {"kind": "pretrain", "mode": mode, "classes": list(plan.pretrain_processes),
                      "fidelity": fidelity, "stores": {n: plan.stores[n].key for n in plan.pretrain_processes},
                      "n_train_per_process": n_train, "n_val_per_process": n_val, "epochs": len(fit.history),
                      "best_epoch": fit.best_epoch, "stopped_early": fit.stopped_early, "wall_s": fit.wall_s,
                      "plateau_wall_s": fit.plateau_wall_s, "validation": validation,
                      "best": {k: v for k, v in best.items() if k.startswith("val_") or k == "train_loss"},
                      "history": fit.history, "backbone": f"backbones/{key}", **_stamp(dev)})
    shutil.rmtree(out)  # the resume state of a finished run: the backbone and the result above are the run
    print(f"  pretrained {mode}: {len(fit.history)} epochs (best {fit.best_epoch}), {validation['metric']} "
          f"{validation['value']:.4f} ± {validation['stat_error']:.4f}, {fit.wall_s:.0f} s", flush=True)
    return key


def stage_pretrain(cfg: ReproduceConfig, plan: Plan, results: Results, executed: list[str]) -> None:
    """Multiclass and multilabel pretraining to the plateau (both at once on a CPU with 2+ cores)."""
    todo = [m for m in cfg.pretrain.modes
            if results.get(pretrain_key(cfg, plan, m)) is None
            or not results.backbone(pretrain_key(cfg, plan, m)).with_suffix(".json").exists()]
    run_jobs(cfg, pretrain_job, [(m,) for m in todo], executed, "pretraining runs")


# ----------------------------------------------------------------------------- parallel jobs
def training_workers(cfg: ReproduceConfig) -> int:
    """Training processes run at once: ``cfg.workers``, or (0) one per core on a CPU, one on a GPU."""
    import torch

    if cfg.workers:
        return cfg.workers
    gpu = torch.cuda.is_available() if cfg.device == "auto" else cfg.device.startswith("cuda")
    return 1 if gpu else max(1, (os.cpu_count() or 1) // max(1, cfg.threads))


def _worker_setup(cfg: ReproduceConfig):
    """Threads, device and seed of a training process (the driver's or a pool worker's)."""
    return setup(cfg.device, cfg.threads, 0)


#: where a training process sends its epoch ticks: the pool's queue in a worker, the driver's RunBar in-process
_TICKS: Any = None


class RunBar:
    """The driver's tqdm bar over the runs of a job list, moved by each run's epochs: a tick ``(key, f)`` adds
    the fraction ``f`` of one run (``1 / epochs cap`` per epoch, :func:`epoch_ticks`) and a finished run adds
    what its ticks left, so the bar moves every epoch and lands on whole runs. Thread-safe (the driver's
    drain thread and its result loop both move it)."""

    def __init__(self, total: int, what: str, enabled: bool):
        import threading

        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=what, unit="run", disable=not enabled, dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n:.1f}/{total:.0f} [{elapsed}<{remaining}]")
        self.credit: dict[str, float] = {}
        self.finished: set[str] = set()
        self.lock = threading.Lock()

    def put(self, tick: tuple[str, float]) -> None:
        key, fraction = tick
        with self.lock:
            if key in self.finished:  # a late tick of a run already counted whole
                return
            fraction = min(fraction, 1.0 - self.credit.get(key, 0.0))
            self.credit[key] = self.credit.get(key, 0.0) + fraction
            self.bar.update(fraction)

    def done(self, keys: list[str]) -> None:
        with self.lock:
            for key in keys:
                self.finished.add(key)
                self.bar.update(1.0 - self.credit.pop(key, 0.0))

    def drain(self, queue) -> None:
        """Move the bar by the ticks of ``queue`` until its ``None``."""
        for tick in iter(queue.get, None):
            self.put(tick)


def epoch_ticks(key: str, epochs: int):
    """The ``on_epoch`` callback of run ``key`` (``epochs``: its cap): one tick of 1/epochs of a run to the
    driver's bar per epoch (None without a bar)."""
    channel = _TICKS
    if channel is None:
        return None
    return lambda row: channel.put((key, 1.0 / max(1, epochs)))


def _init_worker(ticks) -> None:
    """Pool worker initializer: die with the driver; send epoch ticks to ``ticks``."""
    global _TICKS
    from hepfm_data.pipelines.workers import die_with_parent

    die_with_parent()
    _TICKS = ticks


def run_jobs(cfg: ReproduceConfig, fn, jobs: list[tuple], executed: list[str], what: str,
             sizes: list[int] | None = None) -> None:
    """``fn(cfg, *job)`` for every job (each returns the key or keys it ran), in ``training_workers`` spawned
    processes (one thread each by default) or here when that is 1. A :class:`RunBar` counts the runs
    (``sizes``: runs per job, default 1), moved every epoch by the runs that pass ``epoch_ticks`` to their fit;
    every run prints a line when it ends."""
    global _TICKS
    if not jobs:
        return
    n = min(training_workers(cfg), len(jobs))
    bar = RunBar(sum(sizes or [1] * len(jobs)), what, cfg.progress)

    def done(keys) -> None:
        keys = [keys] if isinstance(keys, str) else keys
        executed.extend(keys)
        bar.done(keys)

    if n == 1:
        _TICKS = bar
        try:
            for job in jobs:
                done(fn(cfg, *job))
        finally:
            _TICKS = None
    else:
        import multiprocessing
        import threading
        from concurrent.futures import ProcessPoolExecutor, as_completed

        print(f"  {len(jobs)} job(s) on {n} worker process(es)", flush=True)
        ctx = multiprocessing.get_context("spawn")
        ticks = ctx.Queue()
        drain = threading.Thread(target=bar.drain, args=(ticks,), daemon=True)
        drain.start()
        try:
            with ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                                     initargs=(ticks,)) as pool:
                for fut in as_completed([pool.submit(fn, cfg, *job) for job in jobs]):
                    done(fut.result())
        finally:
            ticks.put(None)
            drain.join()
    bar.bar.close()


# ----------------------------------------------------------------------------- stage 3: fine-tuning
@dataclass
class TaskData:
    """The fixed sets of one task and the cells it can run."""

    urls: list[str]
    counts: list[dict[str, int]]
    n_val: int
    n_test: int
    sizes: list[int]  # runnable sizes
    skipped_sizes: dict[int, str]


def task_data(cfg: ReproduceConfig, plan: Plan, results: Results, task: str) -> TaskData | None:
    """A task's fixed-set sizes and runnable cells, from its stores' recorded split counts (no store is
    opened: the report needs none); None while a store of the task is not recorded yet."""
    docs = [results.get(plan.stores[c].key) for c in plan.tasks[task]]
    if any(d is None for d in docs):
        return None
    counts = [d["splits"] for d in docs]
    f = cfg.finetune
    n_val = min([f.n_val_per_class] + [c["validation"] for c in counts])
    n_test = min(([f.n_test_per_class] if f.n_test_per_class else []) + [c["test"] for c in counts])
    have = min(c["train"] for c in counts)
    sizes = [n for n in f.sizes if n <= have]
    skipped = {n: f"needs {n:,} training events per class; the stores hold {have:,} (raise data.task_events)"
               for n in f.sizes if n > have}
    return TaskData([plan.stores[c].url(cfg) for c in plan.tasks[task]], counts, n_val, n_test, sizes, skipped)


def runnable_sizes(tds: dict[str, TaskData]) -> list[int]:
    """Every size (events per class) some task can run, smallest first: the order the sizes run in."""
    return sorted({n for td in tds.values() for n in td.sizes})


def grid(cfg: ReproduceConfig, plan: Plan, tds: dict[str, TaskData],
         size: int | None = None) -> list[tuple[str, int, int, str, str]]:
    """Every fine-tuning run (of one ``size`` per class, or all): (task, size, seed, variant, key), smallest
    size first across the tasks (the order they run in: a cut sitting leaves whole sizes done)."""
    out = []
    for n in runnable_sizes(tds):
        for task, td in tds.items():
            if n not in td.sizes or size not in (None, n):
                continue
            for k in range(cfg.finetune.seeds):
                for v in cfg.finetune.variants:
                    out.append((task, n, k, v, finetune_key(cfg, plan, task, n, v, k, td.n_val, td.n_test)))
    return out


def run_finetune(cfg: ReproduceConfig, plan: Plan, results: Results, task: str, size: int, seed: int, variant: str,
                 key: str, sets, dist) -> dict[str, Any]:
    """One fine-tuning run (``hepfm_models.protocol.finetune``); its weights stay in ``workdir``."""
    from hepfm_models.protocol import finetune

    f = cfg.finetune
    train, val_batches, test_batches = sets
    proto, mode = VARIANTS[variant]
    backbone = results.backbone(pretrain_key(cfg, plan, mode)) if mode else None
    dev = dist.device
    tcfg = _train_config("multiclass", f.epochs, f.patience, f.lr, f.lr_decay, False, f.lr_backbone)
    out = Path(cfg.workdir) / "finetune" / key
    res = finetune(proto, lambda epoch: train.batches(f.batch_size, epoch, seed, True, device=dev),
                   lambda: val_batches, test_batches, pretrained=backbone, model_config=cfg.model.model_config(),
                   train_config=tcfg, out_dir=out, seed=seed, freeze_train=f.freeze_train, dist=dist,
                   meta={"task": task, "n_per_class": size}, on_epoch=epoch_ticks(key, f.epochs))
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # per-epoch resume state: the run is complete
    return res


def finetune_job(cfg: ReproduceConfig, task: str, size: int, seed: int, todo: list[tuple[str, str]],
                 record: bool = True) -> list[str]:
    """The fine-tuning runs ``todo`` = [(variant, key)] of one (task, size, seed) in this process: the training
    subset of ``seed`` and the fixed validation and test sets are loaded once; returns the keys run. Without
    ``record`` only the weights are (re)made (CKA on a machine without them; the result file stays)."""
    plan, results, dist = make_plan(cfg), Results(cfg.results), _worker_setup(cfg)
    f, dev = cfg.finetune, dist.device
    td = task_data(cfg, plan, results, task)
    data = _data_config(cfg, f.batch_size)
    val = class_split(td.urls, data, "validation", td.n_val, 0, False, what=task)
    test = class_split(td.urls, data, "test", td.n_test, 0, False, what=task)
    train = class_split(td.urls, data, "train", size, seed, True, what=task)
    sets = (train, list(val.batches(f.batch_size, shuffle=False, device=dev)),
            list(test.batches(f.batch_size, shuffle=False, device=dev)))
    done = []
    for variant, key in todo:
        res = run_finetune(cfg, plan, results, task, size, seed, variant, key, sets, dist)
        done.append(key)
        print(f"  {task} n={size} {variant} seed {seed}: {len(res['history'])} epochs (best {res['best_epoch']}), "
              f"test accuracy {res.get('test_accuracy', float('nan')):.4f}, {res['wall_s']:.0f} s", flush=True)
        if not record:
            continue
        mode = VARIANTS[variant][1]
        results.put(key, {"kind": "finetune", "task": task, "classes": list(plan.tasks[task]),
                          "fidelity": {c: plan.stores[c].fidelity for c in plan.tasks[task]}, "n_per_class": size,
                          "variant": variant, "seed": seed, "n_val_per_class": td.n_val, "n_test_per_class": td.n_test,
                          "backbone": pretrain_key(cfg, plan, mode) if mode else None, "stopped_early":
                          bool(res["history"] and res["history"][-1].get("stopped")),
                          **{k: res[k] for k in ("history", "best_epoch", "wall_s", "plateau_wall_s", "n_trainable",
                                                 "test_loss", "test_accuracy", "test_auc", "test_n_events") if k in res},
                          **_stamp(dev)})
    return done


def stage_finetune(cfg: ReproduceConfig, plan: Plan, results: Results, executed: list[str],
                   tds: dict[str, TaskData], size: int) -> None:
    """Every absent fine-tuning run of the grid at ``size`` events per class, one job per (task, size, seed)."""
    jobs: dict[tuple[str, int, int], list[tuple[str, str]]] = {}
    for task, n, seed, variant, key in grid(cfg, plan, tds, size):
        if results.get(key) is None:
            jobs.setdefault((task, n, seed), []).append((variant, key))
    run_jobs(cfg, finetune_job, [(*k, v) for k, v in jobs.items()], executed, "fine-tuning runs",
             [len(v) for v in jobs.values()])


# ----------------------------------------------------------------------------- stage 4: CKA
#: CKA comparisons: name -> (ensemble A, ensemble B or None = pairs within A)
COMPARISONS = {"baseline vs baseline": (BASELINE, None),
               "baseline vs finetuned-multiclass": (BASELINE, "finetuned-multiclass"),
               "baseline vs finetuned-multilabel": (BASELINE, "finetuned-multilabel")}


def cka_comparisons(cfg: ReproduceConfig) -> dict[str, tuple[str, str | None]]:
    """The comparisons this configuration can make (variants present; pairs within one ensemble need 2 seeds)."""
    out = {}
    for name, (a, b) in COMPARISONS.items():
        if a in cfg.finetune.variants and (b in cfg.finetune.variants if b else cfg.finetune.seeds >= 2):
            out[name] = (a, b)
    return out


def cka_members(cfg: ReproduceConfig, plan: Plan, task: str, size: int, td: TaskData) -> dict[str, list[str]]:
    """Variant -> run keys (one per seed) of the ensembles the CKA of (task, size) compares."""
    wanted = {v for pair in cka_comparisons(cfg).values() for v in pair if v is not None}
    return {v: [finetune_key(cfg, plan, task, size, v, k, td.n_val, td.n_test) for k in range(cfg.finetune.seeds)]
            for v in cfg.finetune.variants if v in wanted}


def stage_cka(cfg: ReproduceConfig, plan: Plan, results: Results, executed: list[str], dist,
              tds: dict[str, TaskData], size: int) -> None:
    """Layer-wise ensemble CKA per task at ``size`` events per class, once every member run is done."""
    from hepfm_models import layerwise_cka, load_checkpoint
    from hepfm_models.training import collect_stages

    dev = dist.device
    for task, td in tds.items():
        if size not in td.sizes:
            continue
        members = cka_members(cfg, plan, task, size, td)
        key = cka_key(cfg, task, size, members)
        comparisons = cka_comparisons(cfg)
        if results.get(key) is not None or not comparisons:
            continue
        if any(results.get(k) is None for keys in members.values() for k in keys):
            print(f"  CKA {task} n={size}: waiting for its fine-tuning runs", flush=True)
            continue
        t0 = time.perf_counter()
        n = min(cfg.cka.n_events_per_class, td.n_test)
        events = class_split(td.urls, _data_config(cfg), "test", n, 0, False, what=task)
        probe = list(events.batches(cfg.finetune.batch_size, shuffle=False, device=dev))
        reps: dict[str, list[dict]] = {}
        for variant, keys in members.items():
            for k, run_key in enumerate(keys):
                path = Path(cfg.workdir) / "finetune" / run_key / "model"
                if not path.with_suffix(".json").exists():  # weights not on this machine: retrain the run
                    print(f"  CKA {task} n={size}: re-training {run_key} (its weights are not on this machine; "
                          f"same seed and subset)", flush=True)
                    finetune_job(cfg, task, size, k, [(variant, run_key)], record=False)
                model, _ = load_checkpoint(path, map_location=dev)
                reps.setdefault(variant, []).append(collect_stages(model, probe, dev, cfg.cka.max_rows, seed=0))
        table = {name: {layer: list(v) for layer, v in layerwise_cka(reps[a], reps[b] if b else None).items()}
                 for name, (a, b) in comparisons.items()}
        rows = {layer: int(reps[BASELINE][0][layer].shape[0]) for layer in reps[BASELINE][0]}
        results.put(key, {"kind": "cka", "task": task, "n_per_class": size, "members": members,
                          "n_events": sum(int(b.graph_mask.sum()) for b in probe), "rows": rows,
                          "layers": list(rows), "cka": table, "wall_s": time.perf_counter() - t0, **_stamp(dev)})
        executed.append(key)


# ----------------------------------------------------------------------------- the command
def cka_keys(cfg: ReproduceConfig, plan: Plan, task: str, td: TaskData, size: int | None = None) -> list[str]:
    """The CKA result keys of ``task`` (at one ``size`` per class, or every size); none without comparisons."""
    if not cka_comparisons(cfg):
        return []
    return [cka_key(cfg, task, n, cka_members(cfg, plan, task, n, td)) for n in td.sizes if size in (None, n)]


def expected_keys(cfg: ReproduceConfig, plan: Plan, tds: dict[str, TaskData]) -> dict[str, list[str]]:
    """Every result key the configured study needs, per stage (what the report reads)."""
    return {"store": [s.key for s in plan.stores.values()],
            "pretrain": [pretrain_key(cfg, plan, m) for m in cfg.pretrain.modes],
            "finetune": [r[4] for r in grid(cfg, plan, tds)],
            "cka": [k for task, td in tds.items() for k in cka_keys(cfg, plan, task, td)]}


def _stage(name: str, t0: float, results: Results, keys: list[str], executed: list[str]) -> None:
    """Print a stage's time in this sitting, and the compute its runs recorded (all sittings)."""
    ran = [k for k in executed if k in set(keys)]
    recorded = sum((results.get(k) or {}).get("wall_s") or 0.0 for k in keys)
    print(f"[{name}] {time.perf_counter() - t0:.1f} s in this sitting ({len(ran)} run(s) executed, "
          f"{len(keys) - len(ran)} reused); {recorded:.1f} s recorded in results", flush=True)


def run(cfg: ReproduceConfig, config_name: str = "", report_only: bool = False) -> dict[str, Any]:
    """Run every absent run of the study, then write the report; returns {"executed": keys, "report": path}."""
    from recipes import reproduce_report

    t_all = time.perf_counter()
    results = Results(cfg.results)
    plan = make_plan(cfg)
    dist = setup(cfg.device, cfg.threads, 0)
    executed: list[str] = []
    try:
        print(f"reproduce: {len(plan.stores)} stores, pretraining on {len(plan.pretrain_processes)} processes "
              f"({', '.join(cfg.pretrain.modes)}), tasks {', '.join(plan.tasks) or 'none'}; device {dist.device}, "
              f"{os.cpu_count()} cores", flush=True)
        for name, why in {**plan.skipped_processes, **plan.skipped_tasks}.items():
            print(f"  skipped {name}: {why}", flush=True)
        keys: dict[str, list[str]] = {}
        if not report_only:
            t0 = time.perf_counter()
            stage_data(cfg, plan, results, executed, dist.device)
            _stage("1 data", t0, results, [s.key for s in plan.stores.values()], executed)
            t0 = time.perf_counter()
            stage_pretrain(cfg, plan, results, executed)
            _stage("2 pretrain", t0, results, [pretrain_key(cfg, plan, m) for m in cfg.pretrain.modes], executed)
        tds = {task: td for task in plan.tasks if (td := task_data(cfg, plan, results, task)) is not None}
        keys = expected_keys(cfg, plan, tds)
        for size in [] if report_only else runnable_sizes(tds):
            # size by size, smallest first, its CKA right after its runs: a sitting cut short leaves whole sizes
            t0 = time.perf_counter()
            stage_finetune(cfg, plan, results, executed, tds, size)
            _stage(f"3 finetune n={size:,}", t0, results, [r[4] for r in grid(cfg, plan, tds, size)], executed)
            t0 = time.perf_counter()
            stage_cka(cfg, plan, results, executed, dist, tds, size)
            _stage(f"4 cka n={size:,}", t0, results,
                   [k for task, td in tds.items() for k in cka_keys(cfg, plan, task, td, size)], executed)
        t0 = time.perf_counter()
        report = reproduce_report.write(cfg, plan, tds, keys, results, config_name, study_hash(cfg))
        _stage("5 report", t0, results, [], executed)
        print(f"reproduce: {len(executed)} run(s) executed in {time.perf_counter() - t_all:.1f} s; report {report}",
              flush=True)
        return {"executed": executed, "report": str(report), "keys": keys}
    finally:
        cleanup_distributed()


def export_backbones(cfg: ReproduceConfig, directory: str | os.PathLike | None = None) -> list[Path]:
    """Ship the study's pretrained backbones as ``hepfm_models/pretrained/gn-<mode>`` with their model cards
    (:func:`hepfm_models.pretrained.write_pretrained`); the pretraining runs must be done."""
    from hepfm_models.backbones import NAMES, write_pretrained

    results = Results(cfg.results)
    plan = make_plan(cfg)
    cat = catalog_of(_data_config(cfg))
    written = []
    for mode in cfg.pretrain.modes:
        key = pretrain_key(cfg, plan, mode)
        res = results.get(key)
        if res is None or not results.backbone(key).with_suffix(".json").exists():
            raise ConfigError(f"--export-backbones: pretraining run {key} is not done; run the study first")
        procs = [{"name": n, "fidelity": res["fidelity"][n], "catalog_index": cat.process(n).index,
                  "generator": "hepfm LO generator + Pythia 8" if cat.process(n).generator else "Pythia 8",
                  "generation_seed": plan.stores[n].seed, "events_generated": plan.stores[n].events}
                 for n in res["classes"]]
        card = {"name": NAMES[mode], "mode": mode, "classes": res["classes"],
                "training_data": {
                    "processes": procs, "events_train_per_process": res["n_train_per_process"],
                    "events_validation_per_process": res["n_val_per_process"],
                    "generator": "Pythia 8 (hard process from hepfm's LO generator where a process says so) + "
                                 "hepfm ATLAS-like emulation (hepfm_data.pipelines.build.build_store)",
                    "block_size": cfg.data.block_size, "events_per_unit": cfg.data.events_per_unit,
                    "fractions": list(cfg.data.fractions), "catalog": cfg.data.catalog or "packaged",
                    "proxies": [p["name"] for p in procs if p["fidelity"] == "proxy"],
                    "skipped": plan.skipped_processes,
                    "selection": "first events of each store's train / validation split in stored order"},
                "training": {"epochs": res["epochs"], "best_epoch": res["best_epoch"], "lr": cfg.pretrain.lr,
                             "lr_decay": cfg.pretrain.lr_decay, "batch_size": cfg.pretrain.batch_size,
                             "patience": cfg.pretrain.patience, "wall_s": res["wall_s"],
                             "plateau_wall_s": res["plateau_wall_s"], "machine": res["machine"]},
                "validation": res["validation"], "code_version": res["code"], "run_key": key}
        written.append(write_pretrained(results.backbone(key), card, directory))
        print(f"shipped {NAMES[mode]} -> {written[-1]}", flush=True)
    return written


def check_backbone(name: str, n_events: int, workdir: str | os.PathLike, directory: str | os.PathLike | None = None,
                   workers: int = 1, processes: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Re-measure shipped backbone ``name`` on a small regenerated sample: the first ``n_events`` of each
    process of its card (or of ``processes`` only), generated with the card's seeds and block size (the same
    events, ids and split as the study's stores: a subset of the card's validation events), scored on their
    validation split. Returns one comparison per check: the card's metric over every class when every process
    is regenerated, else the card's per-class metric of each process in ``processes``; each has the card's
    value and error, the sample's value and statistical error (``metric_with_error``) and the sample size."""
    from hepfm_data.core.catalog import load_catalog
    from hepfm_data.pipelines.build import build_store
    from hepfm_models.backbones import pretrained

    model, card = pretrained(name, directory)
    data = card["training_data"]
    classes = card["classes"]
    if processes is not None:
        unknown = sorted(set(processes) - set(classes))
        if unknown:
            raise ConfigError(f"check of {name}: {', '.join(unknown)} not among its classes {classes}")
        if "per_class" not in card["validation"]:
            raise ConfigError(f"check of {name}: its card has no per-class validation metric; check every "
                              f"process (processes=None)")
    cat = load_catalog(None if data.get("catalog", "packaged") == "packaged" else data["catalog"])
    procs = [p for p in data["processes"] if processes is None or p["name"] in processes]
    urls = []
    for p in procs:
        root = Path(workdir) / f"{p['name']}-{p['generation_seed']}-{data['block_size']}-{n_events}"
        if not (root / p["name"] / "manifest.json").exists():
            from hepfm_data.inputs.generated import PythiaGeneration

            source = PythiaGeneration(cat.process(p["name"]), min(n_events, p["events_generated"]),
                                      seed=p["generation_seed"], block_size=data["block_size"],
                                      events_per_unit=data["events_per_unit"])
            build_store(source, str(root), catalog=cat, seed=p["generation_seed"], fractions=tuple(data["fractions"]),
                        scheduler="sync" if workers == 1 else None, workers=workers, progress=False)
        urls.append(str(root / p["name"]))
    val = class_split(urls, DataConfig(stores=str(workdir), batch_size=256, num_workers=0), "validation", 0, 0, False,
                      multilabels=True, what=f"check of {name}", labels=[classes.index(p["name"]) for p in procs])
    got = metric_with_error(model, list(val.batches(256, shuffle=False)), card["mode"], model.head.weight.device,
                            classes=classes)
    pairs = ([("all", card["validation"], got)] if processes is None else
             [(p["name"], card["validation"]["per_class"][p["name"]], got["per_class"][p["name"]]) for p in procs])
    return [{"what": what, "metric": mine["metric"], "card": ref["value"], "card_error": ref["stat_error"],
             "value": mine["value"], "stat_error": mine["stat_error"], "n_events": mine["n_events"]}
            for what, ref, mine in pairs]


def parse(argv: list[str] | None = None) -> tuple[ReproduceConfig, dict[str, Any]]:
    """``[CONFIG.yaml] [--scale=F] [--report-only] [--export-backbones[=DIR]] [--key=value ...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0)
    opts: dict[str, Any] = {"scale": 1.0, "report_only": False, "export": None, "config": ""}
    rest = []
    for a in argv:
        if a.startswith("--scale="):
            try:
                opts["scale"] = float(a.split("=", 1)[1])
            except ValueError:
                raise ConfigError(f"--scale: expected a number, got {a.split('=', 1)[1]!r}") from None
        elif a == "--report-only":
            opts["report_only"] = True
        elif a == "--export-backbones" or a.startswith("--export-backbones="):
            opts["export"] = a.split("=", 1)[1] if "=" in a else ""
        else:
            rest.append(a)
    path = rest.pop(0) if rest and not rest[0].startswith("--") else None
    opts["config"] = path or ""
    return scaled(load_config(ReproduceConfig, path, rest), opts["scale"]), opts


def main(argv: list[str] | None = None) -> int:
    try:
        cfg, opts = parse(argv)
    except ConfigError as exc:  # a bad config or override: the message names the key
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if opts["export"] is not None:
        export_backbones(cfg, opts["export"] or None)
        return 0
    name = Path(opts["config"]).name if opts["config"] else "defaults"
    if opts["scale"] != 1:
        name += f" --scale={opts['scale']:g}"
    run(cfg, name, report_only=opts["report_only"])
    return 0


__all__ = ["ReproduceConfig", "run", "main", "make_plan", "export_backbones", "scaled", "to_dict"]

if __name__ == "__main__":
    sys.exit(main())
