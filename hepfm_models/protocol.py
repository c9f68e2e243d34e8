"""The paper's protocol (SPEC §6) on GraphBatch iterables: pretrain, fine-tune variants, compare.

Used by ``recipes/*.py`` and ``hepfm-data demo``; storage-agnostic (callers turn
stores into batches with :func:`hepfm_data.loader.make_loader`).

Fine-tuning variants (SPEC §6, Vigl et al. §7):

* ``scratch``   — same architecture, random init, every layer at LR0 ``train.lr`` (1e-4);
* ``finetuned`` — pretrained weights, a new final Linear at ``train.lr`` (1e-4), all
  pretrained layers at ``train.lr_backbone`` (1e-5);
* ``frozen``    — pretrained weights, only the new final Linear (``freeze_train="head"``)
  or decoder + final Linear (``"decoder"``) trained, at ``train.lr``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hepfm_data.batches.graph import GraphBatch

from .checkpoint import load_checkpoint, save_checkpoint, write_json
from .model import GraphNet, ModelConfig, count_parameters, freeze, parameter_groups, replace_head
from .training import DistInfo, FitResult, TrainConfig, collect, fit, metrics_from, time_to_accuracy

VARIANTS = ("scratch", "finetuned", "frozen")


# ----------------------------------------------------------------------------- in-memory event sets
@dataclass
class EventSet:
    """Events held in host memory, re-batched every epoch: ~300 B per event (10 nodes).

    ``nodes`` [N, 7], ``n_node`` [n], ``labels`` [n], ``weights`` [n], ``multilabels`` [n, L] or None.
    Used for the N-events-per-class training subsets and the fixed test set.
    """

    nodes: torch.Tensor
    n_node: torch.Tensor
    labels: torch.Tensor
    weights: torch.Tensor
    multilabels: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.n_node.shape[0])

    @property
    def offsets(self) -> torch.Tensor:
        return torch.cat([self.n_node.new_zeros(1), torch.cumsum(self.n_node, 0)])

    @classmethod
    def take(cls, batches: Iterable[GraphBatch], limit: int | None = None, label: int | None = None) -> EventSet:
        """The first ``limit`` real events (``graph_mask``) of ``batches`` (all when None), on the CPU;
        ``label`` overrides the labels."""
        parts: list[EventSet] = []
        n = 0
        for b in batches:
            b = b.to("cpu")
            keep = b.graph_mask
            k = int(keep.sum()) if limit is None else min(int(keep.sum()), limit - n)
            idx = torch.nonzero(keep).flatten()[:k]
            if k <= 0:
                break
            parts.append(cls(b.nodes, b.n_node, b.labels, b.weights, b.multilabels).select(idx))
            n += k
            if limit is not None and n >= limit:
                break
        if not parts:
            raise ValueError("EventSet.take: the batches hold no events")
        out = cls.concat(parts)
        if label is not None:
            out.labels = torch.full_like(out.labels, label)
        return out

    @classmethod
    def concat(cls, sets: list[EventSet]) -> EventSet:
        ml = [s.multilabels for s in sets]
        return cls(torch.cat([s.nodes for s in sets]), torch.cat([s.n_node for s in sets]),
                   torch.cat([s.labels for s in sets]), torch.cat([s.weights for s in sets]),
                   None if any(m is None for m in ml) else torch.cat(ml))

    def select(self, idx: torch.Tensor) -> EventSet:
        off = self.offsets
        counts = self.n_node[idx]
        rows = torch.repeat_interleave(off[idx] - (torch.cumsum(counts, 0) - counts), counts) + torch.arange(
            int(counts.sum()))
        return EventSet(self.nodes[rows], counts, self.labels[idx], self.weights[idx],
                        None if self.multilabels is None else self.multilabels[idx])

    def batches(self, batch_size: int, epoch: int = 0, seed: int = 0, shuffle: bool = True, rank: int = 0,
                world_size: int = 1, device: torch.device | str = "cpu") -> Iterator[GraphBatch]:
        """Batches of ``batch_size`` events; shuffled by (seed, epoch). Rank ``r`` of ``world_size`` gets
        every ``world_size``-th event of the order, truncated so all ranks get the same count."""
        n = len(self)
        order = (torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
                 if shuffle else torch.arange(n))
        per_rank = n // world_size
        order = order[rank::world_size][:per_rank]
        for k in range(0, len(order), batch_size):
            s = self.select(order[k:k + batch_size])
            yield GraphBatch.from_nodes(s.nodes, s.n_node, s.labels, s.weights, s.multilabels, device=device)


# ----------------------------------------------------------------------------- pretraining
def pretrain(train, val, *, classes: list[str], mode: str, model_config: ModelConfig, train_config: TrainConfig,
             out_dir: str | os.PathLike, seed: int = 0, dist: DistInfo | None = None,
             meta: dict[str, Any] | None = None,
             on_epoch: Callable[[dict[str, Any]], None] | None = None) -> tuple[GraphNet, FitResult]:
    """Pretrain a fresh network; writes ``<out_dir>/model.{safetensors,json}`` and ``history.json``.

    ``train(epoch)`` / ``val()`` give GraphBatch iterables; ``classes`` names the
    multiclass outputs in label order (multilabel: ``model_config.n_out`` labels).
    Resumable: per-epoch checkpoints go to ``<out_dir>/checkpoints``. ``on_epoch``: see
    :func:`hepfm_models.training.fit`.
    """
    dist = dist or DistInfo()
    out = Path(out_dir)
    n_out = len(classes) if mode == "multiclass" else model_config.n_out
    torch.manual_seed(seed)
    model = dataclasses.replace(model_config, n_out=n_out).build()
    info = {"stage": "pretrain", "mode": mode, "classes": list(classes), "seed": seed,
            "n_parameters": count_parameters(model), **(meta or {})}
    result = fit(model, train, val, train_config, dist, checkpoint_dir=out / "checkpoints", meta=info,
                 on_epoch=on_epoch)
    if dist.is_main:
        save_checkpoint(out / "model", model, meta={**info, "history": result.history,
                                                    "best_epoch": result.best_epoch})
        write_json(out / "history.json", {**info, "history": result.history, "best_epoch": result.best_epoch,
                                           "wall_s": result.wall_s, "plateau_wall_s": result.plateau_wall_s})
    return model, result


# ----------------------------------------------------------------------------- fine-tuning
def build_variant(variant: str, pretrained: str | os.PathLike | None, model_config: ModelConfig,
                  train_config: TrainConfig, n_out: int = 2, seed: int = 0,
                  freeze_train: str = "head") -> tuple[GraphNet, list[dict]]:
    """(model, Adam parameter groups) for ``variant`` in ``VARIANTS`` (see the module docstring)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown fine-tuning variant {variant!r}; choose from {VARIANTS}")
    if variant == "scratch":
        torch.manual_seed(seed)
        model = dataclasses.replace(model_config, n_out=n_out).build()
        return model, parameter_groups(model, train_config.lr, train_config.lr)
    if pretrained is None:
        raise ValueError(f"variant {variant!r} needs a pretrained checkpoint")
    model, _ = load_checkpoint(pretrained)
    replace_head(model, n_out, seed=seed)
    if variant == "frozen":
        freeze(model, freeze_train)
        return model, parameter_groups(model, train_config.lr, train_config.lr)
    return model, parameter_groups(model, train_config.lr, train_config.lr_backbone)


def finetune(variant: str, train, val, test: Iterable[GraphBatch] | None, *, pretrained: str | os.PathLike | None,
             model_config: ModelConfig, train_config: TrainConfig, out_dir: str | os.PathLike | None = None,
             seed: int = 0, n_out: int = 2, freeze_train: str = "head", dist: DistInfo | None = None,
             meta: dict[str, Any] | None = None,
             on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train one fine-tuning variant and score it on ``test``; returns a JSON-able result.

    Result keys: variant, seed, history, best_epoch, wall_s, plateau_wall_s,
    n_trainable, test_{loss, accuracy, auc}. With ``out_dir`` the model is saved
    as ``<out_dir>/model`` (+ ``result.json``); an existing ``result.json`` is
    returned as is (resume). ``on_epoch``: see :func:`hepfm_models.training.fit`.
    """
    dist = dist or DistInfo()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and (out / "result.json").exists():
        return json.loads((out / "result.json").read_text())
    model, groups = build_variant(variant, pretrained, model_config, train_config, n_out, seed, freeze_train)
    info = {"stage": "finetune", "variant": variant, "seed": seed, "pretrained": str(pretrained) if pretrained
            else None, "n_trainable": count_parameters(model, trainable_only=True), **(meta or {})}
    result = fit(model, train, val, train_config, dist, groups=groups,
                 checkpoint_dir=None if out is None else out / "checkpoints", meta=info, on_epoch=on_epoch)
    res: dict[str, Any] = {**info, "history": result.history, "best_epoch": result.best_epoch,
                           "wall_s": result.wall_s, "plateau_wall_s": result.plateau_wall_s}
    if test is not None:
        scored = collect(model, test, dist.device, train_config)
        res.update({f"test_{k}": v for k, v in metrics_from(scored, "multiclass").items()})
    if out is not None and dist.is_main:
        save_checkpoint(out / "model", model, meta={k: v for k, v in res.items() if k != "history"})
        write_json(out / "result.json", res)
    return res


def relative_cost(results: dict[str, dict[str, Any]], baseline: str = "scratch", fraction: float = 0.99) -> None:
    """Add ``time_to_target_s`` and ``relative_time`` to every result in ``results`` (variant -> result):
    training wall time until the validation accuracy first reached ``fraction`` x the baseline's
    final validation accuracy (its best epoch, whose weights it keeps), relative to the baseline's
    training time up to its loss plateau (SPEC §6)."""
    if baseline not in results:
        return
    base = results[baseline]
    final = next(h for h in base["history"] if h["epoch"] == base["best_epoch"])
    target = fraction * final.get("val_accuracy", 0.0)
    for res in results.values():
        t = time_to_accuracy(res["history"], target)
        res["target_accuracy"] = target
        res["time_to_target_s"] = t
        res["relative_time"] = None if t is None or not base["plateau_wall_s"] else t / base["plateau_wall_s"]


def format_results(results: dict[str, dict]) -> str:
    """A small text table: variant, test accuracy, test AUC, wall time, time to 99% of scratch."""
    lines = [f"{'variant':<10} {'accuracy':>9} {'AUC':>7} {'train s':>8} {'t99 / t_scratch':>16}"]
    for v, r in results.items():
        rel = r.get("relative_time")
        lines.append(f"{v:<10} {r.get('test_accuracy', float('nan')):>9.4f} {r.get('test_auc', float('nan')):>7.4f} "
                     f"{r['wall_s']:>8.1f} {'-' if rel is None else f'{rel:.2f}':>16}")
    return "\n".join(lines)
