"""Object-replacement self-supervised pretraining, then fine-tuning with and without it (SPEC §7.3,
Kishimoto et al.).

    python recipes/replace_pretrain.py recipes/configs/replace_pretrain.yaml --data.stores=stores
    torchrun --nproc_per_node=2 recipes/replace_pretrain.py recipes/configs/replace_pretrain.yaml

1. Pretraining on the unlabelled mixture ``pretrain_processes`` (any stores: generated, Delphes,
   or NanoAOD stores of collision data): no process label and no process weight is used
   (``mixing: none``); each batch's label is the object-replacement class (which slot type was
   replaced by another event's object, or none) drawn in the loader workers, with the rotation,
   eta-flip and boost augmentations. Slots come from each store's event record
   (:class:`~hepfm_data.representations.SlotRepresentation`: objects with their masses, the catalog's cuts); a
   record without τ candidates needs ``--slots.n_tau=0``. ``event_selection`` (default on) applies
   the study's >= 1 lepton, >= 2 jets, >= 1 b-jet: failing events stay in their batch, masked out
   (``graph_mask``), so every rank still sees the same number of batches.
2. Fine-tuning on ``task`` at every size of ``sizes`` (events per class) and seed of ``seeds``:
   ``finetuned`` (pretrained slot Transformer, new head) and ``scratch`` (same network, random
   init), scored on one fixed test set.

Writes under ``<out>``: ``pretrain/`` (model, history), ``n<N>/seed<k>/<variant>/`` (finished runs
are skipped on a re-run), ``results.json``, ``results.md`` (AUC vs size) and ``accuracy_vs_size.png``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python recipes/replace_pretrain.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from hepfm_data.batches.slots import PRETEXT_CLASSES, ObjectReplacement, SlotBatch, SlotLayout
from hepfm_data.loader import BoostZ, Compose, FlipEta, RotatePhi
from hepfm_data.representations import SlotRepresentation, SlotSelection
from hepfm_models import TrainConfig
from hepfm_models.protocol import finetune, pretrain
from hepfm_models.slots_model import SlotConfig
from recipes.common import (
    DEFAULT_THREADS,
    ConfigError,
    DataConfig,
    catalog_of,
    cleanup_distributed,
    find_stores,
    parse_args,
    setup,
    stream,
    to_dict,
    write_json,
)
from recipes.scaling import markdown, plot, summarize


@dataclass
class PretextSection:
    """The object-replacement task and the augmentations (SPEC §7.3)."""

    p_none: float = 1.0 / len(PRETEXT_CLASSES)
    empty: str = "redraw"  # a drawn type the event lacks: "redraw" among its types, or "none"
    beta_max: float = 0.3  # longitudinal boost, beta uniform in [0, beta_max]
    augment: bool = True


@dataclass
class ReplaceConfig:
    data: DataConfig = field(default_factory=DataConfig)
    slots: SlotLayout = field(default_factory=SlotLayout)  # slots per type (SPEC §7.3: 4, 4, 4, 8, 1)
    event_selection: bool = True  # SPEC §7.3: >= 1 lepton, >= 2 jets, >= 1 b-jet (others are masked out)
    pretrain_processes: list[str] = field(default_factory=lambda: ["ttbar", "Hplus_tb", "ttH_bb"])
    pretext: PretextSection = field(default_factory=PretextSection)
    model: SlotConfig = field(default_factory=SlotConfig)  # n_out is set per stage (pretext, task)
    pretrain: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20, lr=1e-3))
    finetune: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=30, lr=1e-3, lr_backbone=1e-4))
    task: str = "ttbar_vs_Hplus_tb"
    sizes: list[int] = field(default_factory=lambda: [1000, 10_000, 100_000])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    n_val_per_class: int = 10_000
    n_test_per_class: int = 100_000
    out: str = "runs/replace_pretrain"
    seed: int = 0
    device: str = "auto"
    threads: int = DEFAULT_THREADS


def slot_representation(cfg: ReplaceConfig, pretext: ObjectReplacement | None = None) -> SlotRepresentation:
    """Slots of the stores' event records with the catalog's object selection (passed in explicitly)
    and, with ``event_selection``, the study's event selection."""
    cat = catalog_of(cfg.data)
    sel = SlotSelection.kishimoto(cat) if cfg.event_selection else SlotSelection.from_catalog(cat)
    return SlotRepresentation(sel, pretext=pretext, layout=cfg.slots)


def slot_split(cfg: ReplaceConfig, name: str, label: int, split: str, n: int, seed: int, shuffle: bool
               ) -> SlotBatch:
    """``n`` selected events (0 = all) of process ``name`` as one SlotBatch labelled ``label`` (no augmentation)."""
    from hepfm_models.training import DistInfo

    url = find_stores(cfg.data.stores, [name], catalog_of(cfg.data))
    loader = stream(url, split, cfg.data, DistInfo(), labels={name: label}, seed=seed, shuffle=shuffle,
                    mixing="none", representation=slot_representation(cfg))
    parts, got = [], 0
    for b in loader:
        b = b.select(torch.nonzero(b.graph_mask).flatten())
        parts.append(b)
        got += b.n_graph
        if n and got >= n:
            break
    if not parts or (n and got < n):
        passing = " passing the event selection (>= 1 lepton, >= 2 jets, >= 1 b-jet)" if cfg.event_selection else ""
        raise ConfigError(f"task {cfg.task}: store {url[0]} has {got} {split} events{passing}, {n} per class were "
                          f"asked for")
    out = SlotBatch.concat(parts)
    return out.select(torch.arange(n)) if n else out


def task_slots(cfg: ReplaceConfig, split: str, n: int, seed: int, shuffle: bool) -> SlotBatch:
    classes = catalog_of(cfg.data).task(cfg.task).classes
    return SlotBatch.concat([slot_split(cfg, c, k, split, n, seed, shuffle) for k, c in enumerate(classes)])


def batches(events: SlotBatch, batch_size: int, epoch: int, seed: int, rank: int, world_size: int,
            shuffle: bool = True) -> Iterator[SlotBatch]:
    """Shuffled by (seed, epoch); rank ``r`` takes every ``world_size``-th event (equal counts)."""
    n = events.n_graph
    order = (torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)) if shuffle
             else torch.arange(n))
    order = order[rank::world_size][:n // world_size]
    for k in range(0, len(order), batch_size):
        yield events.select(order[k:k + batch_size])


def run(cfg: ReplaceConfig) -> dict[str, Any]:
    dist = setup(cfg.device, cfg.threads, cfg.seed)
    try:
        out = Path(cfg.out)
        stores = find_stores(cfg.data.stores, cfg.pretrain_processes, catalog_of(cfg.data))
        pre = ObjectReplacement(p_none=cfg.pretext.p_none, empty=cfg.pretext.empty)
        aug = Compose(RotatePhi(), FlipEta(), BoostZ(cfg.pretext.beta_max)) if cfg.pretext.augment else None
        unlabelled = {s.rstrip("/").rsplit("/", 1)[-1]: 0 for s in stores}  # one class: no process label
        kw = dict(labels=unlabelled, mixing="none", representation=slot_representation(cfg, pre))
        train = stream(stores, "train", cfg.data, dist, seed=cfg.seed, augment=aug, **kw)
        val = stream(stores, "validation", cfg.data, dist, shuffle=False, **kw)

        def train_epoch(epoch: int):
            train.set_epoch(epoch)
            return train

        def val_batches():
            val.set_epoch(0)
            return val

        if dist.is_main:
            write_json(out / "config.json", to_dict(cfg))
            print(f"object-replacement pretraining on {', '.join(unlabelled)} (unlabelled); "
                  f"{dist.world_size} rank(s) on {dist.device}", flush=True)
        pre_dir = out / "pretrain"
        if not (pre_dir / "model.json").exists():
            pretrain(train_epoch, val_batches, classes=list(PRETEXT_CLASSES), mode="multiclass",
                     model_config=dataclasses.replace(cfg.model, n_out=len(PRETEXT_CLASSES)), train_config=cfg.pretrain,
                     out_dir=pre_dir, seed=cfg.seed, dist=dist, meta={"stores": stores, "pretext": to_dict(cfg)["pretext"]})
        if dist.distributed:
            torch.distributed.barrier()
        val_set = task_slots(cfg, "validation", cfg.n_val_per_class, 0, False)
        test_set = task_slots(cfg, "test", cfg.n_test_per_class, 0, False)
        bs = cfg.data.batch_size
        runs = []
        for n in cfg.sizes:
            for k in cfg.seeds:
                train_set = task_slots(cfg, "train", n, k, True)
                for variant in ("finetuned", "scratch"):
                    r = finetune(variant, lambda e, s=train_set, k=k: batches(s, bs, e, k, dist.rank, dist.world_size),
                                 lambda: batches(val_set, bs, 0, 0, dist.rank, dist.world_size, shuffle=False),
                                 batches(test_set, bs, 0, 0, 0, 1, shuffle=False),
                                 pretrained=pre_dir / "model" if variant == "finetuned" else None,
                                 model_config=dataclasses.replace(cfg.model, n_out=2), train_config=cfg.finetune,
                                 out_dir=out / f"n{n}" / f"seed{k}" / variant, seed=k, dist=dist,
                                 meta={"task": cfg.task, "n_per_class": n})
                    runs.append({key: v for key, v in r.items() if key != "history"}
                                | {"variant": variant, "n_per_class": n, "seed": k})
        table = summarize(runs)
        doc = {"config": to_dict(cfg), "runs": runs, "table": table}
        if dist.is_main:
            write_json(out / "results.json", doc)
            (out / "results.md").write_text(markdown(table, f"{cfg.task}: object-replacement pretraining"))
            plot(table, out / "accuracy_vs_size.png", cfg.task)
            print(markdown(table, cfg.task))
        return doc
    finally:
        cleanup_distributed()


def main(argv: list[str] | None = None) -> int:
    run(parse_args(ReplaceConfig, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
