"""``REPRODUCTION.md`` and its plots, generated from ``results/`` alone (``recipes/reproduce.py``'s last stage).

The report is a pure function of (config, result files): re-running the command without new runs
rewrites it byte for byte. Wall times live in the result files and appear only in the "Cost" and
"Where and when" sections (and the data / pretraining tables); no clock is read here.
Statistics: mean ± std over the ensemble (population std, as ``recipes/scaling.py``); the gain of a
pretrained variant over the baseline is Δ = mean_v − mean_b with σ_Δ = sqrt(s_v²/n_v + s_b²/n_b)
(s = sample std, n − 1), significant when |Δ| > 2σ_Δ.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from hepfm_models.protocol import relative_cost
from recipes.common import atomic_write
from recipes.scaling import summarize

PRETRAINED = ("finetuned-multiclass", "finetuned-multilabel")


# ----------------------------------------------------------------------------- small helpers
def pm(mean: float | None, std: float | None, fmt: str = ".4f", sign: bool = False) -> str:
    if mean is None:
        return "—"
    head = f"{mean:+{fmt}}" if sign else f"{mean:{fmt}}"
    return head if std is None else f"{head} ± {std:{fmt}}"


def sample_std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def gain(a: list[float], b: list[float]) -> tuple[float, float] | None:
    """(Δ = mean(a) − mean(b), σ_Δ) from two ensembles (sample stds); None if either is empty."""
    if not a or not b:
        return None
    return (statistics.fmean(a) - statistics.fmean(b),
            math.sqrt(sample_std(a) ** 2 / len(a) + sample_std(b) ** 2 / len(b)))


def significance(g: tuple[float, float] | None, k: int) -> str:
    """'yes' / 'no' at 2σ, and for a 'no' the ensemble size that would resolve this Δ at this spread."""
    if g is None:
        return "—"
    d, s = g
    if k < 2:
        return "n/a (1 model)"
    if abs(d) > 2 * s:
        return "**yes**"
    if d == 0:
        return "no"
    need = math.ceil(k * (2 * s / abs(d)) ** 2)
    return f"no (≈{need} models/cell to resolve)"


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "|".join(["---"] * len(header))
    return ["| " + " | ".join(header) + " |", f"|{align}|"] + ["| " + " | ".join(r) + " |" for r in rows]


# ----------------------------------------------------------------------------- collecting the results
class Study:
    """The result documents of one configuration, indexed for the tables."""

    def __init__(self, cfg, plan, tds, keys, results, study_hash: str = ""):
        self.cfg, self.plan, self.tds, self.keys, self.hash = cfg, plan, tds, keys, study_hash
        self.docs = {k: results.get(k) for stage in keys.values() for k in stage}
        self.stores = {n: self.docs.get(s.key) for n, s in plan.stores.items()}
        self.pretrain = {m: self.docs.get(k) for m, k in zip(cfg.pretrain.modes, keys["pretrain"])}
        self.runs: dict[str, dict[int, dict[str, list[dict]]]] = {}
        for k in keys["finetune"]:
            d = self.docs.get(k)
            if d is not None:
                self.runs.setdefault(d["task"], {}).setdefault(d["n_per_class"], {}).setdefault(d["variant"], []).append(d)
        for sizes in self.runs.values():
            for variants in sizes.values():
                for docs in variants.values():
                    docs.sort(key=lambda d: d["seed"])
        self.cka = [self.docs[k] for k in keys["cka"] if self.docs.get(k) is not None]
        self.proxies = [n for n in plan.pretrain_processes if plan.stores[n].fidelity == "proxy"]

    def missing(self) -> dict[str, int]:
        return {stage: sum(self.docs.get(k) is None for k in ks) for stage, ks in self.keys.items()}

    def accuracies(self, task: str, size: int, variant: str, metric: str = "test_accuracy") -> list[float]:
        return [d[metric] for d in self.runs.get(task, {}).get(size, {}).get(variant, []) if d.get(metric) is not None]

    def task_label(self, task: str) -> str:
        proxies = [c for c in self.plan.tasks[task] if self.plan.stores[c].fidelity == "proxy"]
        return f"{task} † (proxy: {', '.join(proxies)})" if proxies else task

    def variant_label(self, variant: str) -> str:
        return f"{variant} ‡" if variant != "scratch" and self.proxies else variant

    def comparison_label(self, comparison: str) -> str:
        """A CKA comparison, ‡ when a backbone pretrained on proxies is in it."""
        return f"{comparison} ‡" if "finetuned" in comparison and self.proxies else comparison

    def cost_table(self, task: str) -> list[dict[str, Any]]:
        """``scaling.summarize`` rows (mean/std of accuracy, AUC, times, t99/t_baseline) of one task, each with
        ``reached``: how many of its runs reached 99% of their seed's baseline accuracy."""
        rows = []
        for size, variants in sorted(self.runs.get(task, {}).items()):
            by_seed: dict[int, dict[str, dict]] = {}
            for v, docs in variants.items():
                for d in docs:
                    by_seed.setdefault(d["seed"], {})[v] = dict(d)
            for group in by_seed.values():
                relative_cost(group)  # adds relative_time against the seed's scratch run
                rows += [{**r, "n_per_class": size} for r in group.values()]
        table = summarize(rows)
        for t in table:
            cell = [r for r in rows if (r["n_per_class"], r["variant"]) == (t["n_per_class"], t["variant"])]
            t["reached"] = sum(r.get("relative_time") is not None for r in cell)
            t["plateaus"] = sum(bool(r.get("stopped_early")) for r in cell)
        return table


# ----------------------------------------------------------------------------- sections
def section_data(st: Study) -> list[str]:
    plan = st.plan
    cat = _catalog(st)
    lo = [n for n in plan.stores if cat.process(n).generator is not None]
    proxies = [n for n, spec in plan.stores.items() if spec.fidelity == "proxy"]
    intro = ("Generated here with Pythia 8 + hepfm's ATLAS-like detector emulation (SPEC §1-§3) through "
             "`hepfm_data.pipelines.build.build_store` on local Dask worker processes; the paper used "
             "MadGraph5_aMC@NLO + MadSpin + Pythia 8 + Delphes.")
    if lo:
        intro += (f" The hard process of {', '.join(lo)} comes from hepfm's LO matrix-element generator "
                  "(`hepfm_data.readers.generation.lo`; LHE -> Pythia 8 shower): LO, no production-decay spin "
                  "correlations (the catalog says what each does not model).")
    if proxies:
        intro += (" **PROXY** = Pythia's SecondHard stand-in with the right final-state content and wrong "
                  "correlations (SPEC §1): never the real process.")
    out = ["## Data", "", intro, ""]
    rows = []
    for name, spec in plan.stores.items():
        d = st.stores.get(name)
        roles = (["pretraining"] if name in plan.pretrain_processes else []) + [
            f"class of {t}" for t, cl in plan.tasks.items() if name in cl]
        roles = roles or ["no runnable task" + "".join(f" ({t}: {why})" for t, why in plan.skipped_tasks.items()
                                                        if name in _classes(st, t))]
        fid = "**PROXY**" if spec.fidelity == "proxy" else spec.fidelity
        gen = "LO ME + Pythia 8" if name in lo else "Pythia 8"
        if d is None:
            rows.append([name, fid, gen, f"{spec.events:,}", "not built yet", "—", "; ".join(roles)])
            continue
        sp = d["splits"]
        wall = "—" if d.get("wall_s") is None else f"{d['wall_s']:.0f}"
        rows.append([name, fid, gen, f"{d['events']:,}", f"{sp['train']:,} / {sp['validation']:,} / {sp['test']:,}",
                     wall, "; ".join(roles)])
    out += _table(["process", "fidelity", "hard process", "events", "train / validation / test", "build s", "used as"],
                  rows, "---|---|---|---:|---:|---:|---")
    for name, why in plan.skipped_processes.items():
        out += ["", f"**Skipped: {name}** — {why}. Missing from: {', '.join(plan.needed_by.get(name, [])) or '—'}."]
    return out


def _catalog(st: Study):
    """The study's catalog (``data.catalog``; loaded once per path by ``catalog_of``)."""
    from recipes.common import DataConfig, catalog_of

    return catalog_of(DataConfig(catalog=st.cfg.data.catalog))


def _classes(st: Study, task: str) -> tuple[str, ...]:
    return tuple(_catalog(st).task(task).classes)


def section_pretrain(st: Study) -> list[str]:
    out = ["## Pretraining (SPEC §4, §6)", ""]
    if st.proxies:
        out += [f"‡ The pretraining data include the proxy samples {', '.join(st.proxies)} (flagged ‡ wherever a "
                "backbone is used).", ""]
    rows = []
    for mode, d in st.pretrain.items():
        if d is None:
            rows.append([mode, "not run yet"] + ["—"] * 5)
            continue
        v = d["validation"]
        names = ", ".join(c + ("‡" if d["fidelity"][c] == "proxy" else "") for c in d["classes"])
        rows.append([mode, f"{len(d['classes'])}: {names}",
                     f"{d['n_train_per_process']:,} / {d['n_val_per_process']:,}",
                     f"{d['epochs']} ({d['best_epoch']})" + (" early stop" if d["stopped_early"] else " max epochs"),
                     f"{v['metric']} {v['value']:.4f} ± {v['stat_error']:.4f}",
                     f"{d['plateau_wall_s']:.0f}", f"{d['wall_s']:.0f}"])
    out += _table(["mode", "processes", "train / val events per process", "epochs (best)", "validation (stat. error)",
                   "s to plateau", "train s"], rows, "---|---|---:|---|---|---:|---:")
    if any(d is not None and not d["stopped_early"] for d in st.pretrain.values()):
        out += ["", "A run that ended at its epoch limit was still improving: raise `pretrain.epochs` to reach the "
                "plateau."]
    return out


def section_table1(st: Study) -> list[str]:
    cfg = st.cfg
    out = ["## Fine-tuning (Table I style)", "",
           f"Test accuracy at threshold 0.5 and ROC AUC, mean ± std over {cfg.finetune.seeds} model(s) per cell "
           "(seed k = model init and random training subset k); Δ = gain over the from-scratch baseline ± σ_Δ "
           "(σ_Δ = sqrt(s²/n + s_b²/n_b), sample stds); *significant* when |Δ| > 2σ_Δ, else the ensemble size that "
           "would resolve this Δ at this spread. Early stopping on a fixed validation set.", ""]
    for task, td in st.tds.items():
        base = [a for n in td.sizes for a in st.accuracies(task, n, "scratch")]
        a = statistics.fmean(base) if base else 0.75
        n_test = 2 * td.n_test
        out.append(f"- **{st.task_label(task)}** ({' vs '.join(st.plan.tasks[task])}): fixed test set of "
                   f"{td.n_test:,} + {td.n_test:,} events; statistical error of one accuracy "
                   f"sqrt(a(1−a)/N) = {math.sqrt(a * (1 - a) / n_test):.4f} at a = {a:.3f} (common to every model of "
                   f"the task: the same events score them all); validation set {td.n_val:,} + {td.n_val:,}.")
        for n, why in td.skipped_sizes.items():
            out.append(f"  - {n:,} events/class not run: {why}.")
    for task, why in st.plan.skipped_tasks.items():
        out.append(f"- **{task}**: not run — {why}.")
    out.append("")
    rows = []
    for task, td in st.tds.items():
        for n in td.sizes:
            base, base_auc = st.accuracies(task, n, "scratch"), st.accuracies(task, n, "scratch", "test_auc")
            for v in cfg.finetune.variants:
                acc, auc = st.accuracies(task, n, v), st.accuracies(task, n, v, "test_auc")
                if not acc:
                    rows.append([st.task_label(task), f"{n:,}", st.variant_label(v), "0", "not run yet"] + ["—"] * 4)
                    continue
                row = [st.task_label(task), f"{n:,}", st.variant_label(v), str(len(acc)),
                       pm(statistics.fmean(acc), statistics.pstdev(acc)),
                       pm(statistics.fmean(auc), statistics.pstdev(auc)) if auc else "—"]
                if v == "scratch":
                    row += ["(baseline)", "", ""]
                else:
                    g, ga = gain(acc, base), gain(auc, base_auc)
                    row += [pm(*g, sign=True) if g else "—", pm(*ga, sign=True) if ga else "—",
                            significance(g, min(len(acc), len(base)))]
                rows.append(row)
    out += _table(["task", "events/class", "model", "n", "accuracy", "AUC", "Δ accuracy", "Δ AUC",
                   "Δ accuracy significant (2σ)"], rows, "---|---:|---|---:|---|---|---|---|---")
    return out


def section_cost(st: Study) -> list[str]:
    out = ["## Cost (SPEC §6)", "",
           "Training wall time of each run up to its best epoch (the loss plateau, early stopping on the validation "
           "loss) and in all; t99 / t_baseline = wall time until the validation accuracy first reached 99% of the "
           "baseline's final validation accuracy, relative to the baseline's time to its plateau (mean ± std over "
           "the seeds that reached it). Pretraining time is a one-off cost, not included:"]
    for mode, d in st.pretrain.items():
        if d is not None:
            out.append(f"{mode} {d['plateau_wall_s']:.0f} s to its plateau ({d['machine']['device']}).")
    out.append("")
    rows = []
    for task in st.tds:
        for r in st.cost_table(task):
            rows.append([st.task_label(task), f"{r['n_per_class']:,}", st.variant_label(r["variant"]),
                         pm(r["plateau_wall_s_mean"], r["plateau_wall_s_std"], ".1f"),
                         pm(r["wall_s_mean"], r["wall_s_std"], ".1f"),
                         f"{pm(r['relative_time_mean'], r['relative_time_std'], '.2f')} ({r['reached']}/{r['n_models']})",
                         f"{r['plateaus']}/{r['n_models']}"])
    out += _table(["task", "events/class", "model", "s to plateau", "train s", "t99 / t_baseline (reached)",
                   "early-stopped"], rows, "---|---:|---|---:|---:|---|---:")
    out += ["", "early-stopped: runs that stopped on the validation loss (the others reached `finetune.epochs` "
            "still improving: their plateau time is a lower bound)."]
    return out


def _latent_layers(doc: dict) -> tuple[str, str]:
    """(u before the decoder MLP, z after it) of a CKA result's layers."""
    steps = [layer for layer in doc["layers"] if layer.startswith("step") and layer.endswith("/globals")]
    return steps[-1], "decoder"


def section_cka(st: Study) -> list[str]:
    out = ["## CKA (Table III style)", "",
           "Linear CKA between the representations of two models on the same test events (mean ± std over all "
           "model pairs). u = the global latent entering the decoder MLP (after the last message-passing step); "
           "z = the decoder output, the 64-d latent before the final linear layer (SPEC §6). Baseline = from "
           "scratch.", ""]
    if not st.cka:
        return out + ["No CKA result yet (needs every fine-tuning run of a cell; two seeds for baseline vs baseline)."]
    comps = list(st.cka[0]["cka"])
    rows = []
    for d in st.cka:
        for label, layer in zip(("u (before decoder)", "z (decoder output)"), _latent_layers(d)):
            rows.append([st.task_label(d["task"]), f"{d['n_per_class']:,}", label]
                        + [pm(*d["cka"][c][layer], ".3f") if c in d["cka"] else "—" for c in comps])
    out += _table(["task", "events/class", "latent", *map(st.comparison_label, comps)], rows,
                  "---|---:|---|" + "|".join(["---"] * len(comps)))
    out += ["", f"CKA events: the first {st.cfg.cka.n_events_per_class:,} test events per class; node and edge "
            f"stages keep a fixed random subset of at most {st.cfg.cka.max_rows:,} rows."]
    return out


def section_layerwise(st: Study, plot: str | None) -> list[str]:
    out = ["## Layer-wise CKA (SPEC §7.4)", "",
           "Every stage of the network: the encoders' node, edge and global outputs, the same after each "
           "message-passing iteration (step k), and the decoder output; rows are nodes, edges or events of the "
           "CKA test events. SPEC §7.4 (the paper's later version): encoder-stage representations of fine-tuned "
           "and baseline models stay similar while the message-passing layers diverge."]
    if plot:
        out += ["", f"![layer-wise CKA]({plot})"]
    for d in st.cka:
        comps = list(d["cka"])
        out += ["", f"**{st.task_label(d['task'])}, {d['n_per_class']:,} events/class** ({d['n_events']:,} events)", ""]
        rows = [[layer, f"{d['rows'][layer]:,}"] + [pm(*d["cka"][c][layer], ".3f") for c in comps] for layer in d["layers"]]
        out += _table(["stage", "rows", *map(st.comparison_label, comps)], rows, "---|---:|" + "|".join(["---"] * len(comps)))
    return out


# ----------------------------------------------------------------------------- findings
def findings(st: Study) -> list[str]:
    """The paper's qualitative findings, checked against these numbers (one paragraph, generated)."""
    cfg = st.cfg
    sentences = []
    variants = [v for v in PRETRAINED if v in cfg.finetune.variants]
    # 1. gains largest at the smallest size, shrinking with size
    for v in variants:
        parts, larger, sig = [], 0, 0
        tested = 0
        for task, td in st.tds.items():
            sizes = [n for n in td.sizes if st.accuracies(task, n, v) and st.accuracies(task, n, "scratch")]
            if len(sizes) < 2:
                continue
            g0 = gain(st.accuracies(task, sizes[0], v), st.accuracies(task, sizes[0], "scratch"))
            g1 = gain(st.accuracies(task, sizes[-1], v), st.accuracies(task, sizes[-1], "scratch"))
            diff, err = g0[0] - g1[0], math.hypot(g0[1], g1[1])
            tested += 1
            larger += diff > 0
            sig += diff > 2 * err
            parts.append(f"{task} {g0[0]:+.3f} ± {g0[1]:.3f} at {sizes[0]:,} vs {g1[0]:+.3f} ± {g1[1]:.3f} at {sizes[-1]:,}")
        if not tested:
            sentences.append(f"*Gains largest at the smallest size and shrinking with size* ({v}): cannot be tested "
                             f"with one training size per task; add a larger size (e.g. `--finetune.sizes=[1000,10000]`, "
                             f"with `data.task_events` >= 12,500).")
            continue
        verdict = ("matches" if larger > tested / 2 and sig else "points the same way but is not significant"
                   if larger > tested / 2 else "does not match")
        sentences.append(f"*Gains largest at the smallest size and shrinking with size* ({v}): {verdict} — the gain "
                         f"is larger at the smallest size in {larger} of {tested} task(s), {sig} of them beyond 2σ "
                         f"({'; '.join(parts)}).")
    # 2. multiclass more consistent than multilabel
    if len(variants) == 2:
        stats = {v: _consistency(st, v) for v in variants}
        mc, ml = (stats[v] for v in variants)
        if mc["cells"] and ml["cells"]:
            score = {v: (s["sig_pos"] - s["sig_neg"], s["pos"]) for v, s in stats.items()}
            a, b = (score[v] for v in variants)
            verdict = "matches" if a > b else "is not decided by these numbers" if a == b else "does not match"
            desc = "; ".join(
                f"{v}: mean gain {s['mean']:+.4f} ± {s['err']:.4f} over {s['cells']} cell(s), positive in {s['pos']}, "
                f"significantly positive in {s['sig_pos']}, significantly negative in {s['sig_neg']}, mean ensemble "
                f"std {pm(s['spread'], None)}" for v, s in stats.items())
            sentences.append(f"*Multiclass pretraining more consistent than multilabel* (more cells with a "
                             f"significant gain net of significant losses, then more positive cells): {verdict} — "
                             f"{desc}.")
    # 3. baseline-vs-baseline CKA above baseline-vs-fine-tuned
    if st.cka and "baseline vs baseline" in st.cka[0]["cka"]:
        for c in [c for c in st.cka[0]["cka"] if c != "baseline vs baseline"]:
            above, sig, cells = 0, 0, []
            for d in st.cka:
                bb, bf = d["cka"]["baseline vs baseline"]["decoder"], d["cka"][c]["decoder"]
                diff, err = bb[0] - bf[0], math.hypot(bb[1], bf[1])
                above += diff > 0
                sig += diff > 2 * err
                cells.append(f"{d['task']} n={d['n_per_class']:,}: {bb[0]:.3f} ± {bb[1]:.3f} vs {bf[0]:.3f} ± {bf[1]:.3f}")
            verdict = ("matches" if above == len(st.cka) and sig else "points the same way but is not significant"
                       if above > len(st.cka) / 2 else "does not match")
            sentences.append(f"*Baseline-vs-baseline CKA above {c.replace('vs', 'vs.')}* (z latent): {verdict} — "
                             f"above in {above} of {len(st.cka)} cell(s), {sig} beyond 2σ ({'; '.join(cells)}).")
    # 4. layer-wise: encoders similar, message passing diverges
    for c in [c for c in (st.cka[0]["cka"] if st.cka else {}) if c != "baseline vs baseline"]:
        holds, cells = 0, []
        for d in st.cka:
            enc = [d["cka"][c][layer][0] for layer in d["layers"] if layer.startswith("encoder/")]
            last = _latent_layers(d)[0].split("/")[0]
            mp = [d["cka"][c][layer][0] for layer in d["layers"] if layer.startswith(last + "/")]
            e, m = statistics.fmean(enc), statistics.fmean(mp)
            holds += e > m
            cells.append(f"{d['task']} n={d['n_per_class']:,}: encoders {e:.3f}, {last} {m:.3f}")
        verdict = "matches" if holds == len(st.cka) else "partly matches" if holds else "does not match"
        sentences.append(f"*Layer-wise (SPEC §7.4), {c}*: encoders more similar than the last message-passing step — "
                         f"{verdict} in {holds} of {len(st.cka)} cell(s) (mean CKA over nodes, edges, globals: "
                         f"{'; '.join(cells)}).")
    missing = st.missing()
    if any(missing.values()):
        sentences.append("These statements use the runs done so far: " + ", ".join(
            f"{n} {stage} run(s)" for stage, n in missing.items() if n) + " are still missing.")
    scale = (f"The study is small next to the paper's (10M events per process for pretraining, 5 models per cell, "
             f"2M test events per class): here {cfg.data.events:,} events were generated per pretraining process and "
             f"{cfg.finetune.seeds} model(s) per cell; a trend that does not appear at this size is a result with "
             f"the errors above, and the column of ensemble sizes says what would resolve each gain.")
    return ["## What matches the paper", "", " ".join(sentences + [scale])]


def _consistency(st: Study, v: str) -> dict[str, Any]:
    """Gains of variant ``v`` over the baseline across every (task, size) cell."""
    cells = [(t, n) for t, td in st.tds.items() for n in td.sizes]
    gains = [g for t, n in cells if (g := gain(st.accuracies(t, n, v), st.accuracies(t, n, "scratch"))) is not None]
    spread = [sample_std(a) for t, n in cells if len(a := st.accuracies(t, n, v)) > 1]
    return {"cells": len(gains), "pos": sum(g[0] > 0 for g in gains), "sig_pos": sum(g[0] > 2 * g[1] for g in gains),
            "sig_neg": sum(g[0] < -2 * g[1] for g in gains),
            "mean": statistics.fmean(g[0] for g in gains) if gains else None,
            "err": math.sqrt(sum(g[1] ** 2 for g in gains)) / len(gains) if gains else None,
            "spread": statistics.fmean(spread) if spread else None}


# ----------------------------------------------------------------------------- where and when
def section_where(st: Study) -> list[str]:
    docs = [d for d in st.docs.values() if d is not None]
    if not docs:
        return ["## Where and when", "", "Nothing has run yet."]
    machines = sorted({f"{d['machine']['cpu']}, {d['machine']['cores']} cores, accelerator "
                       f"{d['machine']['accelerator']}, torch {d['machine']['torch']}, {d['machine']['threads']} "
                       f"torch thread(s)" for d in docs})
    dates = sorted(d["date"] for d in docs)
    codes = sorted({d["code"] for d in docs})
    compute = {}
    for stage, ks in st.keys.items():
        compute[stage] = sum((st.docs.get(k) or {}).get("wall_s") or 0.0 for k in ks)
    gpu = [d["key"] for d in docs if d["machine"]["accelerator"] != "none"]
    out = ["## Where and when", "",
           f"Runs dated {dates[0]}" + (f" to {dates[-1]}" if dates[-1] != dates[0] else "") + f"; code {', '.join(codes)}.",
           "Machines: " + "; ".join(machines) + ".",
           "Compute recorded in the results (training wall time; store builds include generation): " + ", ".join(
               f"{stage} {s / 60:.1f} min" for stage, s in compute.items()) + ".",
           ("Runs on a GPU: " + ", ".join(gpu) + "." if gpu else "Every run used the CPU.")]
    return out


# ----------------------------------------------------------------------------- plots
def plot_accuracy(st: Study, path: Path) -> bool:
    """Accuracy vs training size per task: one panel per task, mean line and ±std band per variant."""
    tasks = [t for t in st.tds if st.runs.get(t)]
    if not tasks:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for v in st.cfg.finetune.variants:
            pts = [(n, st.accuracies(task, n, v)) for n in sorted(st.runs[task]) if st.accuracies(task, n, v)]
            if not pts:
                continue
            x = [n for n, _ in pts]
            m = [statistics.fmean(a) for _, a in pts]
            s = [statistics.pstdev(a) for _, a in pts]
            line = ax.plot(x, m, marker="o", label=v)[0]
            ax.fill_between(x, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)], alpha=0.2,
                            color=line.get_color())
        ax.set_xscale("log")
        ax.set_title(st.task_label(task), fontsize=9)
        ax.set_xlabel("training events per class")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (mean ± std)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None}))
    plt.close(fig)
    return True


def plot_cka(st: Study, path: Path) -> bool:
    """Heat maps of the layer-wise CKA: one panel per (task, size), stages x comparisons."""
    if not st.cka:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(st.cka)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n + 1, 0.32 * len(st.cka[0]["layers"]) + 2), squeeze=False)
    for ax, d in zip(axes[0], st.cka):
        comps = list(d["cka"])
        grid = [[d["cka"][c][layer][0] for c in comps] for layer in d["layers"]]
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="w" if v < 0.6 else "k")
        ax.set_xticks(range(len(comps)), [c.replace("baseline vs ", "b vs\n") for c in comps], fontsize=7)
        ax.set_yticks(range(len(d["layers"])), d["layers"], fontsize=7)
        ax.set_title(f"{d['task']}\n{d['n_per_class']:,} events/class", fontsize=8)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="linear CKA")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None}))
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------- the report
def render(st: Study, config_name: str, plots: dict[str, str | None]) -> str:
    cfg = st.cfg
    missing = st.missing()
    total = sum(len(v) for v in st.keys.values())
    status = ("complete" if not any(missing.values()) else
              f"{total - sum(missing.values())} of {total} runs done; missing: " +
              ", ".join(f"{n} {stage}" for stage, n in missing.items() if n) + " (re-run the command to add them)")
    lines = ["# Reproduction of arXiv:2412.10665 (Ho, Roberts, Han, Wang)", "",
             f"Generated by `python -m recipes.reproduce` from `{config_name}` (study hash "
             f"{st.hash}) and the result files under `{Path(cfg.results).name}/` — do not edit by hand; "
             f"re-run the command to update. Status: {status}.", ""]
    lines += section_data(st) + [""] + section_pretrain(st) + [""] + section_table1(st)
    if plots.get("accuracy"):
        lines += ["", f"![accuracy vs size]({plots['accuracy']})"]
    lines += [""] + section_cka(st) + [""] + section_layerwise(st, plots.get("cka")) + [""] + findings(st)
    lines += [""] + section_cost(st) + [""] + section_where(st)
    return "\n".join(lines) + "\n"


def write(cfg, plan, tds, keys, results, config_name: str = "", study_hash: str = "") -> Path:
    """Write the report and its plots; returns the report's path (``study_hash``: the configuration's)."""
    st = Study(cfg, plan, tds, keys, results, study_hash)
    report = Path(cfg.report)
    plot_dir = Path(cfg.plots)
    rel = lambda p: Path(_relpath(p, report.parent)).as_posix()  # noqa: E731
    plots = {"accuracy": rel(plot_dir / "accuracy_vs_size.png") if plot_accuracy(st, plot_dir / "accuracy_vs_size.png")
             else None,
             "cka": rel(plot_dir / "cka_layerwise.png") if plot_cka(st, plot_dir / "cka_layerwise.png") else None}
    text = render(st, config_name or "defaults", plots)
    report.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(report, lambda tmp: tmp.write_text(text))
    return report


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())
