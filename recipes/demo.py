"""``hepfm-data demo``: the small end-to-end job of the README (``python -m recipes.demo``).

An application of both packages (it builds stores with ``hepfm_data`` and trains ``hepfm_models``), so it
lives with the recipes; ``hepfm_data`` never imports it: the ``hepfm-data`` command line finds this command
through the ``hepfm_data.commands`` entry point that hepfm's ``pyproject.toml`` declares.

generate (Pythia 8 + ATLAS-like emulation) -> build stores -> pretrain (multiclass over
the pretraining processes) -> fine-tune one task from scratch / fine-tuned / frozen ->
print test accuracy and ROC AUC. Everything goes under ``--workdir``; every stage is
resumable (complete generation blocks, complete stores, per-epoch checkpoints and
finished fine-tuning runs are reused), so re-running the command continues or just
prints the results.

Defaults (about 4 minutes on 2 quiet CPU cores): 2,000 events each of ggF_H, VBF_H, WH,
ZH (pretraining, up to 30 epochs with early stopping) and of ttH and stop; fine-tuning
stop_vs_ttH on 100 training events per class — processes the pretraining never saw.
``--task WH_vs_ZH`` fine-tunes on two pretraining processes instead (as the paper does;
at this data scale that task is near chance). The demo uses LR0 1e-3 (head, from scratch)
and 1e-4 (pretrained layers) and batches of 32 for fine-tuning so that it converges in
minutes; the recipes keep the paper's 1e-4 / 1e-5.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "the small end-to-end job: generate, build, pretrain, fine-tune"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workdir", default="hepfm-demo", help="output directory (default ./hepfm-demo)")
    p.add_argument("--task", default="stop_vs_ttH", help="fine-tuning task (default stop_vs_ttH; hepfm-data catalog)")
    p.add_argument("--pretrain", default="ggF_H,VBF_H,WH,ZH",
                   help="comma-separated pretraining processes (default ggF_H,VBF_H,WH,ZH)")
    p.add_argument("--events", type=int, default=2000, help="events generated per process (default 2000)")
    p.add_argument("--finetune-events", type=int, default=100,
                   help="fine-tuning training events per class (default 100)")
    p.add_argument("--pretrain-epochs", type=int, default=30, help="max pretraining epochs (default 30)")
    p.add_argument("--finetune-epochs", type=int, default=30, help="max fine-tuning epochs (default 30)")
    p.add_argument("--lr", type=float, default=1e-3, help="LR0 of new layers and from-scratch training")
    p.add_argument("--lr-backbone", type=float, default=1e-4, help="LR0 of pretrained layers when fine-tuning")
    p.add_argument("--batch-size", type=int, default=128, help="events per pretraining batch (default 128)")
    p.add_argument("--finetune-batch-size", type=int, default=32,
                   help="events per fine-tuning batch (default 32: small sets need steps)")
    p.add_argument("--seed", type=int, default=1, help="generation and training seed (default 1)")
    p.add_argument("--workers", type=int, default=None, help="generation worker processes (default: cores)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1: on a busy CPU torch's default collapses; "
                        "0 = torch's choice)")
    p.add_argument("--catalog", help="catalog YAML (default: the packaged catalog.yaml)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _stage(n: int, text: str) -> None:
    print(f"\n[{n}/4] {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    import torch

    from hepfm_data.core.catalog import load_catalog
    from hepfm_data.core.errors import HepfmError
    from hepfm_data.inputs.generated import PythiaGeneration
    from hepfm_data.loader import make_loader
    from hepfm_data.pipelines.build import build_store
    from hepfm_data.store import open_store
    from hepfm_models import ModelConfig, TrainConfig, count_parameters
    from hepfm_models.protocol import EventSet, finetune, format_results, pretrain, relative_cost

    t_start = time.perf_counter()
    cat = load_catalog(args.catalog)
    task = cat.task(args.task)
    pre = [p.strip() for p in args.pretrain.split(",") if p.strip()]
    for name in pre:
        if cat.process(name).role != "pretrain":
            raise HepfmError(f"--pretrain: {name!r} is not a pretraining process of the catalog")
    processes = list(dict.fromkeys([*pre, *task.classes]))
    for name in processes:
        if not cat.process(name).generatable:
            raise HepfmError(f"{name!r} cannot be generated locally ({cat.process(name).fidelity}); "
                             "choose another --task / --pretrain")
        if cat.process(name).fidelity == "proxy":
            print(f"note: {name} is a PROXY sample ({cat.process(name).description})")
    if args.events < 200:
        raise HepfmError(f"--events must be at least 200 (train/validation/test splits), got {args.events}")
    work = Path(args.workdir)
    progress = not args.no_progress
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"hepfm demo in {work.resolve()}: pretrain on {', '.join(pre)}; fine-tune {task.name} "
          f"({task.classes[0]} = 0, {task.classes[1]} = 1)")

    _stage(1, f"generating {args.events} events per process (Pythia 8 + ATLAS-like emulation) and building "
              "stores (Zarr, 80/10/10 split by event-id hash)")
    stores = {}
    for name in processes:
        url = str(work / "stores" / name)
        try:
            store = open_store(url)
        except (HepfmError, FileNotFoundError):
            source = PythiaGeneration(cat.process(name), args.events, args.seed, block_size=500, events_per_unit=500,
                                      workdir=str(work / "generated"))
            store = build_store(source, str(work / "stores"), catalog=cat, seed=args.seed, workers=args.workers,
                                progress=progress)
        stores[name] = url
        print(f"  {name}: {len(store)} events, {len(store.shards())} shards")

    _stage(2, f"pretraining (multiclass over {len(pre)} processes, {args.pretrain_epochs} epochs)")
    loader_kw = dict(batch_size=args.batch_size, num_workers=0, device="cpu", catalog=cat)
    labels = {name: k for k, name in enumerate(pre)}
    pre_dir = work / "pretrain" / "-".join(pre)  # one run per set of pretraining processes
    ft_dir = work / "finetune" / f"{task.name}-n{args.finetune_events}-b{args.finetune_batch_size}"
    train = make_loader([stores[n] for n in pre], split="train", labels=labels, seed=args.seed, **loader_kw)
    val = make_loader([stores[n] for n in pre], split="validation", labels=labels, shuffle=False, **loader_kw)

    def epoch_batches(loader, epoch: int):
        loader.set_epoch(epoch)
        return loader

    pre_cfg = TrainConfig(epochs=args.pretrain_epochs, lr=args.lr, patience=3, progress=progress)
    model, res = pretrain(lambda e: epoch_batches(train, e), lambda: epoch_batches(val, 0), classes=pre,
                          mode="multiclass", model_config=ModelConfig(), train_config=pre_cfg,
                          out_dir=pre_dir, seed=args.seed)
    best = res.history[res.best_epoch]
    print(f"  {count_parameters(model):,} parameters; best epoch {res.best_epoch}: validation accuracy "
          f"{best['val_accuracy']:.3f} over {len(pre)} classes ({res.wall_s:.0f} s)")

    _stage(3, f"fine-tuning {task.name} on {args.finetune_events} events per class")
    sets = []
    for split, n, shuffle in (("train", args.finetune_events, True), ("validation", 0, False), ("test", 0, False)):
        parts = [EventSet.take(make_loader([stores[name]], split=split, labels={name: k}, shuffle=shuffle,
                                           seed=args.seed, mixing="none", **loader_kw), n or None)
                 for k, name in enumerate(task.classes)]
        sets.append(EventSet.concat(parts))
    ft_train, ft_val, ft_test = sets
    ft_cfg = TrainConfig(epochs=args.finetune_epochs, lr=args.lr, lr_backbone=args.lr_backbone, patience=8,
                         progress=False)
    ft_val_batches = list(ft_val.batches(args.batch_size, shuffle=False))  # fixed order: build once
    results = {}
    for variant in ("scratch", "finetuned", "frozen"):
        t0 = time.perf_counter()
        results[variant] = finetune(
            variant, lambda e: ft_train.batches(args.finetune_batch_size, e, args.seed),
            lambda: ft_val_batches, ft_test.batches(args.batch_size, shuffle=False),
            pretrained=pre_dir / "model", model_config=ModelConfig(), train_config=ft_cfg,
            out_dir=ft_dir / variant, seed=args.seed, meta={"task": task.name})
        print(f"  {variant}: {len(results[variant]['history'])} epochs, {time.perf_counter() - t0:.0f} s")
    relative_cost(results)

    _stage(4, f"results on the test split ({len(ft_test)} events: {task.classes[1]} vs {task.classes[0]})")
    print(format_results(results))
    gain = results["finetuned"]["test_accuracy"] - results["scratch"]["test_accuracy"]
    print(f"\nfine-tuned minus from-scratch accuracy: {gain:+.4f} with {args.finetune_events} training events "
          f"per class; total {time.perf_counter() - t_start:.0f} s. Outputs under {work}/ "
          f"(re-run to reuse them; --events/--finetune-events to scale).")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m recipes.demo [options]``: the same as ``hepfm-data demo``."""
    p = argparse.ArgumentParser(prog="hepfm-data demo", description=HELP)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.exit(main())
