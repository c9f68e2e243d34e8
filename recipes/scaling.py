"""The scaling study of SPEC §6: training size x variant, an ensemble of models per cell.

    python recipes/scaling.py recipes/configs/scaling.yaml --base.task=WH_vs_ZH --sizes=[1000,10000]

For every size N (events per class) and model k < n_models: a random training subset
drawn with seed k, and every variant of ``base.variants`` trained with seed k, scored on
one fixed test set. Writes under ``<out>``: ``n<N>/seed<k>/<variant>/`` (models, results;
finished runs are skipped on a re-run), ``results.json`` (every run + mean/std per cell),
``results.md`` (the table) and ``accuracy_vs_size.png`` (accuracy and AUC vs N, error bars = std).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python recipes/scaling.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recipes import finetune as ft
from recipes.common import cleanup_distributed, parse_args, setup, task_split, to_dict, write_json

METRICS = ("test_accuracy", "test_auc", "wall_s", "plateau_wall_s", "relative_time")


@dataclass
class ScalingConfig:
    base: ft.FinetuneConfig = field(default_factory=ft.FinetuneConfig)
    sizes: list[int] = field(default_factory=lambda: [1000, 10_000, 100_000, 1_000_000, 10_000_000])
    n_models: int = 5  # ensemble size per (size, variant): seeds 0..n_models-1
    out: str = "runs/scaling"


def _stats(values: list[float | None]) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.pstdev(vals) if len(vals) > 1 else 0.0)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std over the ensemble of every (size, variant) cell."""
    cells: dict[tuple[int, str], list[dict]] = {}
    for r in runs:
        cells.setdefault((r["n_per_class"], r["variant"]), []).append(r)
    table = []
    for (n, variant), rs in sorted(cells.items()):
        row: dict[str, Any] = {"n_per_class": n, "variant": variant, "n_models": len(rs)}
        for m in METRICS:
            row[f"{m}_mean"], row[f"{m}_std"] = _stats([r.get(m) for r in rs])
        table.append(row)
    return table


def _pm(row: dict, m: str, fmt: str) -> str:
    mean, std = row[f"{m}_mean"], row[f"{m}_std"]
    return "-" if mean is None else f"{mean:{fmt}} ± {std:{fmt}}"


def markdown(table: list[dict[str, Any]], task: str) -> str:
    lines = [f"# Scaling study: {task}", "",
             "| events/class | variant | models | test accuracy | test AUC | train wall s | t99 / t_scratch |",
             "|---:|---|---:|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['n_per_class']:,} | {r['variant']} | {r['n_models']} | {_pm(r, 'test_accuracy', '.4f')} "
                     f"| {_pm(r, 'test_auc', '.4f')} | {_pm(r, 'wall_s', '.1f')} | {_pm(r, 'relative_time', '.2f')} |")
    lines += ["", "Mean ± std over the ensemble (different seeds and training subsets), one fixed test set. "
              "t99 / t_scratch: wall time to reach 99% of the from-scratch model's accuracy, relative to the "
              "from-scratch training time up to its loss plateau (SPEC §6)."]
    return "\n".join(lines) + "\n"


def plot(table: list[dict[str, Any]], path: Path, task: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, m, label in ((axes[0], "test_accuracy", "test accuracy"), (axes[1], "test_auc", "test ROC AUC")):
        for variant in dict.fromkeys(r["variant"] for r in table):
            rows = [r for r in table if r["variant"] == variant and r[f"{m}_mean"] is not None]
            ax.errorbar([r["n_per_class"] for r in rows], [r[f"{m}_mean"] for r in rows],
                        yerr=[r[f"{m}_std"] for r in rows], marker="o", capsize=3, label=variant)
        ax.set_xscale("log")
        ax.set_xlabel("training events per class")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(task)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(cfg: ScalingConfig) -> dict[str, Any]:
    base = cfg.base
    dist = setup(base.device, base.threads, base.seed)
    try:
        out = Path(cfg.out)
        val = task_split(base.data.stores, base.task, base.data, "validation", base.n_val_per_class, 0, False)
        test = task_split(base.data.stores, base.task, base.data, "test", base.n_test_per_class, 0, False)
        runs = []
        for n in cfg.sizes:
            for k in range(cfg.n_models):
                train = task_split(base.data.stores, base.task, base.data, "train", n, seed=k)
                one = dataclasses.replace(base, n_per_class=n, seed=k, out=str(out / f"n{n}" / f"seed{k}"))
                for variant, r in ft.run(one, sets=(train, val, test), dist=dist).items():
                    runs.append({k2: v for k2, v in r.items() if k2 != "history"} | {"variant": variant,
                                                                                    "n_per_class": n, "seed": k})
        table = summarize(runs)
        doc = {"config": to_dict(cfg), "runs": runs, "table": table}
        if dist.is_main:
            write_json(out / "results.json", doc)
            (out / "results.md").write_text(markdown(table, base.task))
            plot(table, out / "accuracy_vs_size.png", base.task)
            print(markdown(table, base.task))
        return doc
    finally:
        cleanup_distributed()


def main(argv: list[str] | None = None) -> int:
    run(parse_args(ScalingConfig, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
