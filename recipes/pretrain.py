"""Pretraining (SPEC §6): multiclass or multilabel over the pretraining processes in the stores.

    python recipes/pretrain.py recipes/configs/pretrain.yaml --data.stores=stores --train.epochs=50
    torchrun --nproc_per_node=2 recipes/pretrain.py recipes/configs/pretrain.yaml   # DDP (gloo on CPU)

Writes ``<out>/model.{safetensors,json}`` (the best epoch; meta: classes, mode, history),
``<out>/history.json``, ``<out>/config.json``; per-epoch checkpoints in ``<out>/checkpoints``
make an interrupted run resume where it stopped.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python recipes/pretrain.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hepfm_models import TrainConfig
from hepfm_models.protocol import pretrain
from recipes.common import (
    DEFAULT_THREADS,
    DataConfig,
    ModelSection,
    catalog_of,
    cleanup_distributed,
    find_stores,
    parse_args,
    setup,
    stream,
    to_dict,
    write_json,
)


@dataclass
class PretrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "runs/pretrain"
    seed: int = 0
    device: str = "auto"  # "auto" = cuda:LOCAL_RANK when available, else cpu
    threads: int = DEFAULT_THREADS  # torch intra-op threads per rank (0 = torch's default; see common.py)


def run(cfg: PretrainConfig):
    """Pretrain as configured; returns (model, FitResult) on every rank."""
    dist = setup(cfg.device, cfg.threads, cfg.seed)
    try:
        cat = catalog_of(cfg.data)
        stores = find_stores(cfg.data.stores, cfg.data.processes, cat)
        classes = [s.rstrip("/").rsplit("/", 1)[-1] for s in stores]
        mode = cfg.train.mode
        multilabel = mode == "multilabel"
        labels = {name: k for k, name in enumerate(classes)}
        train = stream(stores, "train", cfg.data, dist, labels=labels, seed=cfg.seed, multilabels=multilabel)
        val = stream(stores, "validation", cfg.data, dist, labels=labels, shuffle=False, multilabels=multilabel)

        def train_epoch(epoch: int):
            train.set_epoch(epoch)
            return train

        def val_batches():
            val.set_epoch(0)
            if not cfg.data.val_events:
                return val
            budget = -(-cfg.data.val_events // (cfg.data.batch_size * dist.world_size))
            return (b for i, b in zip(range(budget), val))

        n_labels = cat.labels.n_labels
        if dist.is_main:
            write_json(Path(cfg.out) / "config.json", to_dict(cfg))
            print(f"pretraining ({mode}) on {len(classes)} processes: {', '.join(classes)}; "
                  f"{dist.world_size} rank(s) on {dist.device}", flush=True)
        return pretrain(train_epoch, val_batches, classes=classes, mode=mode,
                        model_config=cfg.model.model_config(n_labels), train_config=cfg.train, out_dir=cfg.out,
                        seed=cfg.seed, dist=dist, meta={"stores": stores})
    finally:
        cleanup_distributed()


def main(argv: list[str] | None = None) -> int:
    model, result = run(parse_args(PretrainConfig, argv))
    last = result.history[result.best_epoch] if result.history else {}
    print(f"best epoch {result.best_epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in last.items()
                                                          if k.startswith("val_") and isinstance(v, float)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
