"""RS3L (SPEC §7.2; Harris et al., arXiv:2403.07066) as a resumable study on jet constituents.

    python -m recipes.rs3l_study recipes/configs/rs3l_study.yaml                # the study (scale, time in the file)
    python -m recipes.rs3l_study recipes/configs/rs3l_study.yaml --report-only  # RS3L.md + plots from results alone
    python -m recipes.rs3l_study CONFIG --train.seeds=5                         # any key: --section.key=value

Stages (each resumable; a re-run executes only what is missing, keyed by a hash of what defines it):

1. **data**: the nominal ``rs3l_hz`` (H -> bb̄ jets) and ``rs3l_zjet`` (QCD jets) stores, generated with their
   hard processes kept (``PythiaGeneration(keep_hard_process=True)`` through ``build_store``, Dask workers) and
   re-simulated in ``data.views`` (``seed``, ``fsr_up``, ``fsr_down``; ``vincia`` / ``lund_z``: the generator
   stand-in) by :func:`hepfm_data.pipelines.resimulate.resimulate`; regenerated bit-identically from the seeds.
   ``results/rs3l/store-<process>-<hash>.json`` records each store's events, splits and generation rate.
2. **pretrain**: per seed, the EdgeConv backbone with NT-Xent on (nominal jet, ΔR-matched jet of a random view)
   pairs (:func:`recipes.rs3l.pretrain`); ``results/rs3l/pretrain-s<seed>-<hash>.json`` (history, jets/s) and the
   backbone ``results/rs3l/backbones/<key>.safetensors``.
3. **downstream**: per seed x variant (``fixed``: the pretrained backbone frozen + a linear probe; ``floating``:
   the pretrained backbone fine-tuned; ``supervised``: the same network from scratch), trained on the same
   labelled nominal jets (:func:`recipes.rs3l.finetune`), evaluated on the test split
   (:func:`recipes.rs3l.evaluate`): QCD rejection at ε_S = 0.3 / 0.5 / 0.7 and the 1-D Wasserstein distance
   between the classifier outputs on the nominal jets and on each view type; the training loop's jets/s.
   ``results/rs3l/<variant>-s<seed>-<hash>.json``. Runs spread over worker processes (``run_jobs``).
4. **report**: ``RS3L.md`` (mean ± std over seeds per variant; the verdict on the study's direction computed
   from the numbers) and ``results/rs3l/plots/{rejection,wasserstein}.png``, from the result files alone.

``recipes/rs3l.py`` runs one seed of the same stages on stores you built (no keys, one out folder).
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python recipes/rs3l_study.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from recipes import rs3l
from recipes.common import (
    DEFAULT_THREADS,
    ConfigError,
    DataConfig,
    catalog_of,
    check_config,
    parse_study,
    study_main,
)
from recipes.reproduce import Results, _stamp, _worker_setup, digest, run_jobs, split_counts
from recipes.vigl import _finite_mean_std, _fmt

SEED_STRIDE = 1000
PRETRAINED = ("fixed", "floating")


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class DataSection:
    """The stores: processes, events, views and seeds (they regenerate bit-identically)."""

    stores: str = "runs/rs3l/stores"  # a store lives in <stores>/<process>-<hash>/<process>, views beside it
    signal: str = "rs3l_hz"
    background: str = "rs3l_zjet"
    events: int = 2000  # generated per process
    views: tuple[str, ...] = ("seed", "fsr_up", "fsr_down")
    seed: int = 1  # process p is generated with seed * 1000 + catalog index of p + 1
    block_size: int = 250
    events_per_unit: int = 1000
    workers: int = 0  # Dask workers for generation (0 = every core; 1 = in this process)
    catalog: str = ""


@dataclass(frozen=True)
class TrainSection:
    """Jet cuts, the backbone, pretraining and the downstream grid (variants x seeds)."""

    pt_min: float = 450.0  # jet cuts of jet_constituents (the paper: pT > 450 GeV, |η| < 0.1)
    abs_eta_max: float = 0.1
    batch_size: int = 256
    block_size: int = 0  # loader read/shuffle block (events); 0 = the layout's default
    width: int = 64
    k: int = 24
    n_iter: int = 3
    n_out: int = 8
    pretrain_epochs: int = 20
    pretrain_lr: float = 1e-3
    temperature: float = 0.1
    finetune_epochs: int = 20
    finetune_lr: float = 1e-3
    variants: tuple[str, ...] = rs3l.VARIANTS
    seeds: int = 3
    seed: int = 0


@dataclass(frozen=True)
class RS3LStudyConfig:
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    results: str = "results/rs3l"  # <key>.json per run, backbones/ (committed)
    report: str = "RS3L.md"
    plots: str = "results/rs3l/plots"
    device: str = "cpu"
    threads: int = DEFAULT_THREADS
    workers: int = 0  # training processes at once (0: one per core on a CPU)
    progress: bool = True

    def __post_init__(self) -> None:
        d, t = self.data, self.train
        check_config("rs3l", [
            (d.events > 0 and bool(d.views), "data: events must be positive and views not empty"),
            (bool(t.variants) and set(t.variants) <= set(rs3l.VARIANTS),
             f"train.variants: a subset of {list(rs3l.VARIANTS)}, got {list(t.variants)}"),
            ("supervised" in t.variants, "train.variants must include the baseline 'supervised'"),
            (t.seeds >= 1 and t.pretrain_epochs > 0 and t.finetune_epochs > 0, "train: seeds and epochs positive"),
        ])


# ----------------------------------------------------------------------------- plan and keys
def make_plan(cfg: RS3LStudyConfig) -> dict[str, dict[str, Any]]:
    """{process: {"key", "seed", "root", "url"}} of the two nominal stores (their views live under them)."""
    cat = catalog_of(DataConfig(catalog=cfg.data.catalog))
    d = cfg.data
    known = {v.name for v in cat.resimulation.views}
    if set(d.views) - known:
        raise ConfigError(f"data.views: unknown {sorted(set(d.views) - known)}; known: {sorted(known)}")
    out = {}
    for name in (d.signal, d.background):
        if not cat.has_process(name):
            raise ConfigError(f"data: unknown process {name!r}")
        proc = cat.process(name)
        seed = d.seed * SEED_STRIDE + proc.index + 1
        stream = {"process": {k: getattr(proc, k) for k in ("name", "pythia", "particle_flow", "weight")},
                  "seed": seed, "events": d.events, "block_size": d.block_size, "events_per_unit": d.events_per_unit,
                  "views": list(d.views), "keep_hard_process": True}
        key = f"store-{name}-{digest(stream)}"
        root = f"{d.stores.rstrip('/')}/{name}-{key.rsplit('-', 1)[-1]}"
        out[name] = {"key": key, "seed": seed, "root": root, "url": f"{root}/{name}"}
    return out


def rs3l_config(cfg: RS3LStudyConfig, seed: int) -> rs3l.RS3LConfig:
    """The single-run config of :mod:`recipes.rs3l` for one seed of the study."""
    t = cfg.train
    return rs3l.RS3LConfig(
        signal=cfg.data.signal, background=cfg.data.background, input="jet_constituents",
        cuts={"pt_min": t.pt_min, "abs_eta_max": t.abs_eta_max}, views=list(cfg.data.views),
        variants=list(t.variants),
        data=DataConfig(batch_size=t.batch_size, num_workers=0, block_size=t.block_size, catalog=cfg.data.catalog),
        backbone=rs3l.BackboneConfig(width=t.width, k=t.k, n_iter=t.n_iter, n_out=t.n_out),
        pretrain=rs3l.PretrainSection(epochs=t.pretrain_epochs, lr=t.pretrain_lr, temperature=t.temperature),
        finetune=rs3l.FinetuneSection(epochs=t.finetune_epochs, lr=t.finetune_lr),
        seed=t.seed * SEED_STRIDE + seed, threads=cfg.threads, device=cfg.device)


def _train_inputs(cfg: RS3LStudyConfig, plan: dict) -> dict[str, Any]:
    t = cfg.train
    return {"stores": sorted(s["key"] for s in plan.values()),
            **{k: getattr(t, k) for k in ("pt_min", "abs_eta_max", "batch_size", "block_size", "width", "k",
                                          "n_iter", "n_out", "seed")}}


def pretrain_key(cfg: RS3LStudyConfig, plan: dict, seed: int) -> str:
    t = cfg.train
    return f"pretrain-s{seed}-" + digest({**_train_inputs(cfg, plan), "seed_index": seed, "epochs": t.pretrain_epochs,
                                          "lr": t.pretrain_lr, "temperature": t.temperature})


def run_key(cfg: RS3LStudyConfig, plan: dict, variant: str, seed: int) -> str:
    t = cfg.train
    inputs = {**_train_inputs(cfg, plan), "seed_index": seed, "variant": variant, "epochs": t.finetune_epochs,
              "lr": t.finetune_lr, "backbone": pretrain_key(cfg, plan, seed) if variant in PRETRAINED else None}
    return f"{variant}-s{seed}-{digest(inputs)}"


def grid(cfg: RS3LStudyConfig, plan: dict) -> list[tuple[str, int, str]]:
    """Every downstream run: (variant, seed, key)."""
    t = cfg.train
    return [(v, s, run_key(cfg, plan, v, s)) for s in range(t.seeds) for v in t.variants]


def _urls(cfg: RS3LStudyConfig) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Nominal URLs {process: url} and {url: [view url per data.views]} of the built stores."""
    from hepfm_data.pipelines.resimulate import open_view

    nominal = {p: s["url"] for p, s in make_plan(cfg).items()}
    return nominal, {u: [open_view(u, v).url for v in cfg.data.views] for u in nominal.values()}


# ----------------------------------------------------------------------------- stage 1: stores and views
def stage_data(cfg: RS3LStudyConfig, plan: dict, results: Results, executed: list[str]) -> None:
    """Build every missing nominal store and view (one set of Dask workers for all); record each."""
    from hepfm_data.pipelines.resimulate import list_views, resimulate
    from recipes.stores import LazyDask, build_generated, store_present

    cat = catalog_of(DataConfig(catalog=cfg.data.catalog))
    d = cfg.data
    with LazyDask(d.workers, "the RS3L stores") as dask:
        for name, spec in plan.items():
            url = spec["url"]
            present = store_present(url)
            views_done = present and set(d.views) <= set(list_views(url))
            if views_done and results.get(spec["key"]) is not None:
                continue
            gen_s = view_s = None
            if not present:
                gen_s = build_generated(cat.process(name), d.events, spec["seed"], spec["root"], cat, dask.scheduler(),
                                        block_size=d.block_size, events_per_unit=d.events_per_unit,
                                        keep_hard_process=True, progress=cfg.progress)
            if not views_done:
                print(f"  re-simulating {name} in {list(d.views)}", flush=True)
                t0 = time.perf_counter()
                resimulate(url, list(d.views), catalog=cat, scheduler=dask.scheduler(), progress=cfg.progress)
                view_s = time.perf_counter() - t0
            if results.get(spec["key"]) is None:
                n, nv = d.events, len(d.views)
                results.put(spec["key"], {
                    "kind": "store", "process": name, "events": n, "seed": spec["seed"], "views": list(d.views),
                    "splits": split_counts(url), "generation_s": gen_s, "views_s": view_s,
                    "generation_events_per_s": n / gen_s if gen_s else None,
                    "view_events_per_s": n * nv / view_s if view_s else None,
                    "wall_s": (gen_s or 0.0) + (view_s or 0.0), **_stamp(torch.device("cpu"))})
                executed.append(spec["key"])


# ----------------------------------------------------------------------------- stages 2-3: training
def _backbone_path(cfg: RS3LStudyConfig, key: str) -> Path:
    return Results(cfg.results).backbone(key).with_suffix(".safetensors")


def pretrain_job(cfg: RS3LStudyConfig, seed: int) -> str:
    """Contrastive pretraining of one seed -> its key (backbone saved, history and jets/s recorded)."""
    dist = _worker_setup(cfg)
    plan = make_plan(cfg)
    key = pretrain_key(cfg, plan, seed)
    nominal, views = _urls(cfg)
    t0 = time.perf_counter()
    _, history = rs3l.pretrain(rs3l_config(cfg, seed), dist, nominal, views, _backbone_path(cfg, key))
    wall = time.perf_counter() - t0
    pairs = sum(h["pairs"] for h in history)
    seconds = sum(h["seconds"] for h in history)
    Results(cfg.results).put(key, {"kind": "pretrain", "seed": seed, "history": history, "wall_s": wall,
                                   "jets_per_s": 2 * pairs / seconds if seconds else None,
                                   "backbone": f"backbones/{key}.safetensors", **_stamp(dist.device)})
    return key


def downstream_job(cfg: RS3LStudyConfig, variant: str, seed: int) -> str:
    """One (variant, seed): train on the nominal train jets, evaluate on the test split -> its key."""
    from safetensors.torch import load_file

    dist = _worker_setup(cfg)
    plan = make_plan(cfg)
    key = run_key(cfg, plan, variant, seed)
    rcfg = rs3l_config(cfg, seed)
    nominal, views = _urls(cfg)
    pretrained = None
    if variant in PRETRAINED:
        pretrained = rs3l._backbone(rcfg, rcfg.seed)
        pretrained.load_state_dict(load_file(str(_backbone_path(cfg, pretrain_key(cfg, plan, seed)))))
    t0 = time.perf_counter()
    stats: dict[str, Any] = {}
    model = rs3l.finetune(rcfg, dist, variant, pretrained, nominal, stats)
    doc = rs3l.evaluate(rcfg, dist, model, nominal, views)
    Results(cfg.results).put(key, {"kind": "downstream", "variant": variant, "seed": seed, **doc,
                                   "train_jets": stats["jets"], "train_s": stats["seconds"],
                                   "jets_per_s": stats["jets_per_s"], "wall_s": time.perf_counter() - t0,
                                   **_stamp(dist.device)})
    return key


def stage_train(cfg: RS3LStudyConfig, plan: dict, results: Results, executed: list[str]) -> None:
    seeds = range(cfg.train.seeds)
    if any(v in PRETRAINED for v in cfg.train.variants):
        todo = [(s,) for s in seeds if results.get(pretrain_key(cfg, plan, s)) is None]
        run_jobs(cfg, pretrain_job, todo, executed, "pretraining runs")
    todo = [(v, s) for v, s, key in grid(cfg, plan) if results.get(key) is None]
    todo.sort(key=lambda j: j[0] == "fixed")  # the full-backbone runs (the longest) first
    run_jobs(cfg, downstream_job, todo, executed, "downstream runs")


# ----------------------------------------------------------------------------- stage 4: report
def summary(cfg: RS3LStudyConfig, plan: dict, results: Results) -> dict[str, Any]:
    """{variant: {metric: (mean, std, n)}} over the seeds' results, and how many runs are missing."""
    per: dict[str, list[dict]] = {}
    missing = 0
    for variant, _seed, key in grid(cfg, plan):
        doc = results.get(key)
        if doc is None:
            missing += 1
        else:
            per.setdefault(variant, []).append(doc)
    table: dict[str, dict[str, tuple]] = {}
    for variant, docs in per.items():
        metrics = {f"W({v})": [d["wasserstein"][v] for d in docs] for v in cfg.data.views}
        metrics["W(mean)"] = [statistics.fmean(d["wasserstein"][v] for v in cfg.data.views) for d in docs]
        metrics["jets/s"] = [d["jets_per_s"] for d in docs]
        metrics["n_test"] = [d["n_test"] for d in docs]
        table[variant] = {f"R@{e}": rejection_cell([d["rejection"][str(e)] for d in docs]) for e in rs3l.EFFICIENCIES}
        table[variant].update({m: (*_finite_mean_std(vals), len(vals)) for m, vals in metrics.items()})
    return {"table": table, "missing": missing}


def rejection_cell(rejections: list[float]) -> tuple[float, float | None, int]:
    """(R, σ_R, n) of one variant over its seeds: R = 1 / mean(ε_B) with ε_B = 1 / R per seed (a seed whose test
    sample lets no background pass counts ε_B = 0), σ_R = R² std(ε_B) (the seed spread, propagated); R is ∞ (σ
    None) only when no seed lets any background pass. The mean of the R values themselves would be ∞ as soon as
    one seed's small test sample passes nothing."""
    eps = [0.0 if math.isinf(r) else 1.0 / r for r in rejections]
    mean = statistics.fmean(eps)
    if mean == 0.0:
        return math.inf, None, len(eps)
    std = statistics.pstdev(eps) if len(eps) > 1 else 0.0
    return 1.0 / mean, std / mean**2, len(eps)


def _sem(cell: tuple) -> float:
    mean, std, n = cell
    return (std or 0.0) / math.sqrt(max(n - 1, 1))


def verdict(summ: dict[str, Any]) -> list[str]:
    """The study's direction from the numbers: each pretrained variant's mean Wasserstein distance (over view
    types) against the supervised one (difference in combined standard errors), and its rejection at ε_S = 0.5
    comparable (within a factor 1.25 or two combined standard errors) or not."""
    t = summ["table"]
    if "supervised" not in t or not any(v in t for v in PRETRAINED):
        return ["Not enough results for a verdict (the supervised baseline and a pretrained variant are needed)."]
    sup_w, sup_r = t["supervised"]["W(mean)"], t["supervised"]["R@0.5"]
    lines, holds = [], []
    for v in PRETRAINED:
        if v not in t:
            continue
        w, r = t[v]["W(mean)"], t[v]["R@0.5"]
        sw = math.hypot(_sem(w), _sem(sup_w)) or 1e-12
        zw = (w[0] - sup_w[0]) / sw
        less = zw < -2
        if math.isinf(r[0]) or math.isinf(sup_r[0]):
            comparable = math.isinf(r[0]) and math.isinf(sup_r[0])
        else:
            sr = math.hypot(_sem(r), _sem(sup_r))
            comparable = abs(r[0] - sup_r[0]) <= 2 * sr or 0.8 <= r[0] / max(sup_r[0], 1e-12) <= 1.25
        holds.append(less and comparable)
        lines.append(f"- **{v}** vs supervised: mean W over views {w[0]:.4f} vs {sup_w[0]:.4f} "
                     f"({zw:+.1f} combined standard errors: {'lower' if less else 'not lower'}); R@0.5 "
                     f"{_fmt(r[0], None, '.2f')} vs {_fmt(sup_r[0], None, '.2f')} "
                     f"({'comparable' if comparable else 'not comparable'}).")
    word = "holds" if all(holds) else ("holds in part" if any(holds) else "does not hold")
    return [f"**Verdict: the study's direction {word} here** (contrastive pretraining gives outputs that move less "
            f"across views, at comparable rejection; lower = more than 2 combined standard errors below the "
            f"supervised baseline; comparable = R@0.5 within a factor 1.25 or 2 combined standard errors).", *lines]


def plot_all(cfg: RS3LStudyConfig, summ: dict[str, Any]) -> dict[str, str | None]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(cfg.plots)
    out.mkdir(parents=True, exist_ok=True)
    t = summ["table"]
    paths: dict[str, str | None] = {"rejection": None, "wasserstein": None}
    if not t:
        return paths
    eff = rs3l.EFFICIENCIES
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for variant, cells in t.items():
        mean = [cells[f"R@{e}"][0] for e in eff]
        std = [cells[f"R@{e}"][1] or 0.0 for e in eff]
        ax.plot(eff, mean, "o-", label=variant)
        ax.fill_between(eff, [max(m - s, 1.0) for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                        alpha=0.25)
    ax.set(xlabel="signal efficiency ε_S", ylabel="QCD rejection 1/ε_B", yscale="log",
           title=f"rejection (nominal test; mean ± std over {cfg.train.seeds} seeds)")
    ax.legend()
    fig.tight_layout()
    paths["rejection"] = str(out / "rejection.png")
    fig.savefig(paths["rejection"], dpi=110)
    plt.close(fig)
    views = list(cfg.data.views)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    width = 0.8 / len(t)
    for i, (variant, cells) in enumerate(t.items()):
        ax.bar([j + i * width for j in range(len(views))], [cells[f"W({v})"][0] for v in views], width,
               yerr=[cells[f"W({v})"][1] or 0.0 for v in views], capsize=3, label=variant)
    ax.set_xticks([j + width * (len(t) - 1) / 2 for j in range(len(views))], views)
    ax.set(ylabel="Wasserstein distance (nominal vs view)", title="robustness per view type (mean ± std)")
    ax.legend()
    fig.tight_layout()
    paths["wasserstein"] = str(out / "wasserstein.png")
    fig.savefig(paths["wasserstein"], dpi=110)
    plt.close(fig)
    return paths


def render(cfg: RS3LStudyConfig, plan: dict, results: Results, summ: dict[str, Any], config_name: str,
           plots: dict[str, str | None]) -> str:
    views = list(cfg.data.views)
    stores = [results.get(s["key"]) or {} for s in plan.values()]
    pre = [results.get(pretrain_key(cfg, plan, s)) or {} for s in range(cfg.train.seeds)]
    t = summ["table"]
    lines = [
        "# RS3L study (SPEC §7.2): H -> bb̄ vs QCD jets on jet constituents", "",
        f"Generated by `python -m recipes.rs3l_study {config_name}` from the results in `{cfg.results}/` "
        f"(re-render: add `--report-only`). {cfg.data.signal} vs {cfg.data.background}, "
        f"{cfg.data.events:,} nominal events per process, views {', '.join(views)}; jets pT > {cfg.train.pt_min:g} GeV, "
        f"|η| < {cfg.train.abs_eta_max:g}; EdgeConv width {cfg.train.width}, k {cfg.train.k}; "
        f"{cfg.train.pretrain_epochs} pretraining and {cfg.train.finetune_epochs} downstream epochs; "
        f"{cfg.train.seeds} seeds." + (f" **{summ['missing']} run(s) missing.**" if summ["missing"] else ""), "",
        *_scale_lines(cfg, plan, results), *verdict(summ), "",
        "## Rejection and robustness (test split; mean ± std over seeds)", "",
        "R@ε_S: QCD rejection 1/ε_B at signal efficiency ε_S, as 1 / ⟨ε_B⟩ over the seeds ± the seed spread of "
        "ε_B propagated (a seed whose test sample lets no QCD jet pass counts ε_B = 0; ∞ only when none passes for "
        "any seed); W(view): 1-D Wasserstein distance between the classifier outputs on the nominal test jets and "
        "on the same events re-simulated in that view.", "",
        "| variant | " + " | ".join(f"R@{e}" for e in rs3l.EFFICIENCIES) + " | "
        + " | ".join(f"W({v})" for v in views) + " | W(mean) | test jets | training jets/s |",
        "|" + "---|" * (len(rs3l.EFFICIENCIES) + len(views) + 4),
    ]
    for variant, c in t.items():
        cells = [_fmt(*c[f"R@{e}"][:2], ".2f") for e in rs3l.EFFICIENCIES]
        cells += [_fmt(*c[f"W({v})"][:2], ".4f") for v in views] + [_fmt(*c["W(mean)"][:2], ".4f")]
        cells += [f"{c['n_test'][0]:.0f}", _fmt(c["jets/s"][0], None, ".0f")]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += ["", "## Data and pretraining", "",
              "| store | events | splits (train/val/test) | generation events/s | view events/s |", "|---|---|---|---|---|"]
    for s in stores:
        if s:
            sp = s.get("splits", {})
            rate = lambda x: "—" if x is None else f"{x:.1f}"  # noqa: E731
            lines.append(f"| {s['process']} | {s['events']:,} | {sp.get('train')}/{sp.get('validation')}/"
                         f"{sp.get('test')} | {rate(s.get('generation_events_per_s'))} | "
                         f"{rate(s.get('view_events_per_s'))} |")
    for s, p in enumerate(pre):
        if p.get("history"):
            h = p["history"]
            lines.append(f"\nPretraining seed {s}: NT-Xent {h[0]['loss']:.3f} -> {h[-1]['loss']:.3f}, "
                         f"{h[-1]['pairs']} pairs per epoch, {h[-1]['unpaired']} unpaired, "
                         f"{_fmt(p.get('jets_per_s'), None, '.0f')} jets/s, {p.get('wall_s', 0):.0f} s.")
    lines += ["", "## Plots", ""]
    here = Path(cfg.report).resolve().parent
    lines += [f"![{k}]({Path(os.path.relpath(Path(v).resolve(), here)).as_posix()})" for k, v in plots.items() if v]
    return "\n".join(lines) + "\n"


def _scale_lines(cfg: RS3LStudyConfig, plan: dict, results: Results) -> list[str]:
    """The jet counts the study ran at, and the rejection the QCD test sample can still measure."""
    docs = [d for *_, k in grid(cfg, plan) if (d := results.get(k)) is not None]
    bkg = (results.get(plan[cfg.data.background]["key"]) or {}).get("splits", {}).get("test")
    if not docs:
        return []
    per_epoch = statistics.median(d["train_jets"] for d in docs) / cfg.train.finetune_epochs
    line = (f"Scale: {per_epoch:,.0f} selected nominal training jets per epoch (both classes), "
            f"{docs[0]['n_test']:,} test jets")
    if bkg:
        line += (f" ({bkg:,} QCD test events, about one selected jet each: a rejection above ~{bkg / 3:,.0f} rests "
                 f"on fewer than 3 QCD jets passing)")
    return [line + ".", ""]


def report_text(cfg: RS3LStudyConfig, plan: dict, results: Results, config_name: str) -> str:
    summ = summary(cfg, plan, results)
    return render(cfg, plan, results, summ, config_name, plot_all(cfg, summ))


# ----------------------------------------------------------------------------- the command
def run(cfg: RS3LStudyConfig, config_name: str = "", report_only: bool = False) -> dict[str, Any]:
    """Every absent stage and run of the study, then the report; returns {"executed": keys, "report": path}."""
    from recipes.stores import run_study

    plan = make_plan(cfg)
    results = Results(cfg.results)
    stages = [("1 data", stage_data), ("2-3 pretrain + downstream", stage_train)]
    return run_study("rs3l", cfg, plan, results, stages, lambda: report_text(cfg, plan, results, config_name),
                     report_only)


def parse(argv: list[str] | None = None) -> tuple[RS3LStudyConfig, dict[str, Any]]:
    return parse_study(RS3LStudyConfig, argv, __doc__)


def main(argv: list[str] | None = None) -> int:
    return study_main(parse, run, argv)


__all__ = ["RS3LStudyConfig", "run", "main", "make_plan", "summary", "verdict"]

if __name__ == "__main__":
    sys.exit(main())
