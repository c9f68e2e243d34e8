"""Fine-tuning (SPEC §6): one task, N events per class, variants scratch / finetuned / frozen.

    python recipes/finetune.py recipes/configs/finetune.yaml --task=WH_vs_ZH --n_per_class=1000 \
        --pretrained=runs/pretrain/model

For each variant: train on ``n_per_class`` random training events per class (drawn with
``seed``), early-stop on the validation subset, score the fixed test set. Writes
``<out>/<variant>/{model.*,result.json}`` and ``<out>/summary.json`` with test accuracy, AUC,
wall times and the time to reach 99% of the from-scratch accuracy relative to its training time.
Finished variants are skipped on a re-run (resume).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python recipes/finetune.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hepfm_models import TrainConfig
from hepfm_models.protocol import VARIANTS, finetune, format_results, relative_cost
from recipes.common import (
    DEFAULT_THREADS,
    DataConfig,
    ModelSection,
    cleanup_distributed,
    parse_args,
    setup,
    task_sets,
    to_dict,
    write_json,
)


@dataclass
class FinetuneConfig:
    task: str = "WH_vs_ZH"
    n_per_class: int = 1000  # training events per class
    n_val_per_class: int = 1000  # validation events per class (early stopping)
    n_test_per_class: int = 2000  # the fixed test set, per class (0 = the whole test split)
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    pretrained: str = "runs/pretrain/model"  # checkpoint path (without .json / .safetensors)
    freeze_train: str = "head"  # frozen variant trains only "head" or "decoder" (+ head)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "runs/finetune"
    seed: int = 0
    device: str = "auto"
    threads: int = DEFAULT_THREADS  # torch intra-op threads (0 = torch's default; see common.py)


def run(cfg: FinetuneConfig, sets=None, dist=None) -> dict[str, dict]:
    """Run every variant of ``cfg``; returns variant -> result (see ``hepfm_models.protocol.finetune``).
    ``sets`` = (train, val, test) EventSets and ``dist`` a DistInfo to reuse (the scaling study)."""
    own = dist is None
    dist = dist or setup(cfg.device, cfg.threads, cfg.seed)
    try:
        train, val, test = sets or task_sets(cfg.data.stores, cfg.task, cfg.data, cfg.n_per_class,
                                             cfg.n_val_per_class, cfg.n_test_per_class, seed=cfg.seed)
        bs, dev = cfg.data.batch_size, dist.device
        val_batches = list(val.batches(bs, 0, 0, False, dist.rank, dist.world_size, dev))  # fixed order: build once
        results = {}
        for variant in cfg.variants:
            if dist.is_main:
                print(f"{cfg.task}: {variant}, {cfg.n_per_class} events/class, seed {cfg.seed}", flush=True)
            results[variant] = finetune(
                variant,
                lambda epoch: train.batches(bs, epoch, cfg.seed, True, dist.rank, dist.world_size, dev),
                lambda: val_batches,
                test.batches(bs, shuffle=False, device=dev) if dist.is_main else None,
                pretrained=None if variant == "scratch" else cfg.pretrained,
                model_config=cfg.model.model_config(), train_config=cfg.train,
                out_dir=Path(cfg.out) / variant, seed=cfg.seed, freeze_train=cfg.freeze_train, dist=dist,
                meta={"task": cfg.task, "n_per_class": cfg.n_per_class})
        relative_cost(results)
        if dist.is_main:
            write_json(Path(cfg.out) / "summary.json", {"config": to_dict(cfg), "results": results})
        return results
    finally:
        if own:
            cleanup_distributed()


def main(argv: list[str] | None = None) -> int:
    results = run(parse_args(FinetuneConfig, argv))
    print(format_results(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
