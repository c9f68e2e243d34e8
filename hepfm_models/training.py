"""The training engine shared by the recipes and ``hepfm-data demo`` (SPEC §6).

Storage-agnostic: data arrive as iterables of :class:`~hepfm_data.batches.graph.GraphBatch`
(``train(epoch)`` returns the batches of one epoch, so a loader can reshuffle by
epoch). Provides

* :func:`setup_distributed` — torchrun DDP (gloo on CPU, nccl on GPU);
* :func:`fit` — Adam, LR(epoch) = LR0 * decay^epoch per parameter group, early stop
  when the validation loss has not improved for ``patience`` epochs, the best
  weights restored at the end, per-epoch history with cumulative wall time,
  resumable from a checkpoint directory; bf16 autocast and torch.compile on CUDA only;
* :func:`evaluate` / :func:`collect` — loss, accuracy at 0.5, ROC AUC, latents;
  :func:`collect_stages` — every stage's representation (layer-wise CKA);
* :func:`time_to_accuracy` — wall time until the validation accuracy first reached a target.

Under DDP each rank reads its own partition of the data; uneven batch counts are
handled with ``torch.distributed.algorithms.join.Join``; evaluation results are
all-reduced/all-gathered, so every rank takes the same early-stopping decision.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import nn
from torch.distributed.algorithms.join import Join

from hepfm_data.batches.graph import GraphBatch

from .checkpoint import load_checkpoint, save_checkpoint, unwrap
from .losses import event_weights, loss_fn
from .metrics import accuracy, binary_scores, roc_auc


@dataclass
class TrainConfig:
    """Optimisation settings (SPEC §6). ``lr`` is LR0 of the head group and of
    from-scratch training; ``lr_backbone`` LR0 of pretrained layers when fine-tuning."""

    mode: str = "multiclass"  # or "multilabel"
    epochs: int = 50
    lr: float = 1e-4
    lr_backbone: float = 1e-5
    lr_decay: float = 0.99  # LR(epoch) = LR0 * lr_decay ** epoch
    betas: tuple[float, float] = (0.9, 0.999)  # Adam defaults (Kingma & Ba); the paper does not state them
    eps: float = 1e-8
    patience: int = 5  # early stop: epochs without a validation-loss improvement > min_delta
    min_delta: float = 1e-4
    amp: str = "auto"  # "auto": bf16 autocast on CUDA only; "on" / "off"
    compile: str = "auto"  # "auto": torch.compile on CUDA only; "on" / "off"
    max_batches_per_epoch: int = 0  # 0 = the whole epoch
    progress: bool = True


@dataclass
class DistInfo:
    """Where this process sits in a torchrun job (world_size 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str = "auto") -> DistInfo:
    """Initialise torch.distributed from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK).

    ``device`` "auto" picks ``cuda:LOCAL_RANK`` when CUDA is available, else CPU.
    Backend: nccl on CUDA, gloo on CPU. Without torchrun: a single process, no process group.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def cleanup_distributed() -> None:
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def _flag(value: str, device: torch.device) -> bool:
    if value not in ("auto", "on", "off"):
        raise ValueError(f"expected 'auto', 'on' or 'off', got {value!r}")
    return device.type == "cuda" if value == "auto" else value == "on"


def autocast(cfg: TrainConfig, device: torch.device):
    """bf16 autocast context on CUDA (when enabled), else a no-op."""
    if _flag(cfg.amp, device):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _limit(batches: Iterable[GraphBatch], n: int) -> Iterable[GraphBatch]:
    for i, b in enumerate(batches):
        if n and i >= n:
            return
        yield b


def _progress(it, enabled: bool, **kw):
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, leave=False, **kw)


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def collect(model: nn.Module, batches: Iterable[GraphBatch], device: torch.device,
            cfg: TrainConfig | None = None, latents: bool = False) -> dict[str, torch.Tensor]:
    """Run ``model`` over ``batches`` (real events only) and return CPU tensors:
    ``outputs`` [n, n_out] float32, ``labels`` [n], ``weights`` [n], ``multilabels``
    [n, L] (when present) and ``latents`` [n, 64] (when asked)."""
    cfg = cfg or TrainConfig(progress=False)
    net = unwrap(model)
    was_training = net.training
    net.eval()
    parts: dict[str, list[torch.Tensor]] = {"outputs": [], "labels": [], "weights": [], "multilabels": [],
                                             "latents": []}
    for b in batches:
        b = b.to(device, non_blocking=True)
        keep = b.graph_mask
        with autocast(cfg, device):
            z = net.embed(b)
            out = net.head(z)
        parts["outputs"].append(out.float()[keep].cpu())
        parts["labels"].append(b.labels[keep].cpu())
        parts["weights"].append(b.weights.float()[keep].cpu())
        if b.multilabels is not None:
            parts["multilabels"].append(b.multilabels[keep].cpu())
        if latents:
            parts["latents"].append(z.float()[keep].cpu())
    net.train(was_training)
    return {k: torch.cat(v) for k, v in parts.items() if v}


@torch.no_grad()
def collect_stages(model: nn.Module, batches: Iterable[GraphBatch], device: torch.device, max_rows: int = 0,
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """Layer-wise representations (``GraphNet.stages``) of real events over ``batches``, float32 on
    the CPU: ``{stage: [rows, width]}``. With ``max_rows`` a stage with more rows (nodes, edges) keeps
    a random subset of that many, drawn with ``seed`` from the row count alone: the same rows for every
    model given the same batches (CKA compares models row by row)."""
    net = unwrap(model)
    was_training = net.training
    net.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    for b in batches:
        b = b.to(device, non_blocking=True)
        keep = {"nodes": b.graph_mask[b.node_graph], "edges": b.graph_mask[b.edge_graph], "globals": b.graph_mask}
        for name, rep in net.stages(b).items():
            rows = keep.get(name.rsplit("/", 1)[-1], b.graph_mask)  # "decoder": events
            parts.setdefault(name, []).append(rep.float()[rows].cpu())
    net.train(was_training)
    out = {}
    for name, chunks in parts.items():
        rep = torch.cat(chunks)
        if max_rows and rep.shape[0] > max_rows:
            pick = torch.randperm(rep.shape[0], generator=torch.Generator().manual_seed(seed))[:max_rows]
            rep = rep[pick.sort().values]
        out[name] = rep
    return out


def _gather(t: torch.Tensor, dist: DistInfo) -> torch.Tensor:
    """Concatenate ``t`` [n_rank, ...] from all ranks (sizes may differ), in rank order."""
    if not dist.distributed:
        return t
    backend_dev = dist.device
    n = torch.tensor([t.shape[0]], device=backend_dev)
    sizes = [torch.zeros_like(n) for _ in range(dist.world_size)]
    torch_dist.all_gather(sizes, n)
    n_max = int(max(int(s) for s in sizes))
    padded = torch.zeros((n_max, *t.shape[1:]), dtype=t.dtype, device=backend_dev)
    padded[: t.shape[0]] = t.to(backend_dev)
    out = [torch.zeros_like(padded) for _ in range(dist.world_size)]
    torch_dist.all_gather(out, padded)
    return torch.cat([o[: int(s)] for o, s in zip(out, sizes)]).cpu()


def metrics_from(res: dict[str, torch.Tensor], mode: str) -> dict[str, float]:
    """loss, accuracy (multiclass) and auc (two classes) of ``collect`` results."""
    out, w = res["outputs"], res["weights"]
    if out.shape[0] == 0:
        raise ValueError("evaluation saw no events")
    g = _as_batch(res)
    m: dict[str, float | int] = {"loss": float(loss_fn(mode)(out, g)), "n_events": int(out.shape[0])}
    if mode == "multiclass":
        m["accuracy"] = accuracy(out, res["labels"], w)
        labels = res["labels"]
        if out.shape[1] == 2 and labels.min() != labels.max():
            m["auc"] = roc_auc(binary_scores(out), labels, w)
    return m


def _as_batch(res: dict[str, torch.Tensor]) -> GraphBatch:
    """A node-less GraphBatch carrying only labels/weights, for the loss functions."""
    n = res["outputs"].shape[0]
    z = torch.zeros(0, dtype=torch.int64)
    return GraphBatch(nodes=torch.zeros(0, 7), n_node=torch.zeros(n, dtype=torch.int64), node_graph=z,
                      senders=z, receivers=z, edges=torch.zeros(0, 3), n_edge=torch.zeros(n, dtype=torch.int64),
                      globals=torch.zeros(n, 1), labels=res["labels"], weights=res["weights"],
                      graph_mask=torch.ones(n, dtype=torch.bool), multilabels=res.get("multilabels"))


def evaluate(model: nn.Module, batches: Iterable[GraphBatch], mode: str, device: torch.device,
             dist: DistInfo | None = None, cfg: TrainConfig | None = None) -> dict[str, float]:
    """Loss / accuracy / AUC over all ranks' batches (identical result on every rank)."""
    dist = dist or DistInfo(device=device)
    res = collect(model, batches, device, cfg)
    res = {k: _gather(v, dist) for k, v in res.items()}
    return metrics_from(res, mode)


def time_to_accuracy(history: list[dict[str, Any]], target: float) -> float | None:
    """Cumulative training wall time (s) at the first epoch whose ``val_accuracy`` >= target, else None."""
    for h in history:
        if h.get("val_accuracy") is not None and h["val_accuracy"] >= target:
            return h["wall_s"]
    return None


# ----------------------------------------------------------------------------- training
@dataclass
class FitResult:
    history: list[dict[str, Any]]
    best_epoch: int
    stopped_early: bool
    wall_s: float  # training wall time, excluding evaluation
    plateau_wall_s: float  # training wall time up to the best epoch (loss plateau)


def make_optimizer(model: nn.Module, cfg: TrainConfig, groups: list[dict] | None = None) -> torch.optim.Adam:
    """Adam over ``groups`` (default: all trainable parameters at ``cfg.lr``)."""
    if groups is None:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr, "name": "all"}]
    return torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def train_step(forward: Callable[[GraphBatch], torch.Tensor], batch: GraphBatch, criterion, optimizer,
               cfg: TrainConfig, device: torch.device) -> torch.Tensor:
    """One optimisation step (autocast forward, loss, backward, step); returns the loss."""
    with autocast(cfg, device):
        out = forward(batch)
    loss = criterion(out, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def fit(model: nn.Module, train: Callable[[int], Iterable[GraphBatch]],
        val: Callable[[], Iterable[GraphBatch]] | None, cfg: TrainConfig, dist: DistInfo | None = None,
        groups: list[dict] | None = None, checkpoint_dir: str | os.PathLike | None = None,
        meta: dict[str, Any] | None = None, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> FitResult:
    """Train ``model`` in place (SPEC §6) and leave it holding the best weights.

    ``train(epoch)`` yields the epoch's batches (this rank's share); ``val()`` the
    validation batches (this rank's share; early stopping and the best epoch
    use the validation loss, or the training loss without ``val``). ``groups``:
    Adam parameter groups (see :func:`hepfm_models.model.parameter_groups`).
    With ``checkpoint_dir``, rank 0 writes ``last`` (model + optimizer + history)
    after every epoch and ``best``; a later call with the same directory resumes
    after the last completed epoch. ``on_epoch(row)`` is called on rank 0 with each
    epoch's history row (e.g. to move the progress bar of a driver running many fits).
    """
    dist = dist or DistInfo()
    device = dist.device
    net = unwrap(model).to(device)
    optimizer = make_optimizer(net, cfg, groups)
    for g in optimizer.param_groups:
        g.setdefault("initial_lr", g["lr"])
    history: list[dict[str, Any]] = []
    start, best_loss, best_epoch, best_state, bad_epochs = 0, float("inf"), -1, None, 0
    ckpt = Path(checkpoint_dir) if checkpoint_dir else None
    if ckpt is not None and (ckpt / "last.json").exists():
        resumed, resumed_meta = load_checkpoint(ckpt / "last", optimizer=optimizer, map_location=device)
        net.load_state_dict(resumed.state_dict())
        st = resumed_meta["fit_state"]
        history, start, best_loss, best_epoch, bad_epochs = (st["history"], st["epoch"] + 1, st["best_loss"],
                                                             st["best_epoch"], st["bad_epochs"])
        if (ckpt / "best.json").exists():
            best_state = load_checkpoint(ckpt / "best", map_location=device)[0].state_dict()
    if start > 0 and history and history[-1].get("stopped"):
        start = cfg.epochs  # already finished
    train_model: nn.Module = net
    ddp = None
    if dist.distributed:
        ddp = train_model = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    if _flag(cfg.compile, device):
        train_model = torch.compile(train_model, dynamic=True)
    criterion = loss_fn(cfg.mode)
    wall = history[-1]["wall_s"] if history else 0.0
    stopped = bool(history and history[-1].get("stopped"))
    for epoch in range(start, cfg.epochs):
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"] * cfg.lr_decay ** epoch
        net.train()
        t0 = time.perf_counter()
        loss_sum, w_sum = torch.zeros((), device=device), torch.zeros((), device=device)
        join = Join([ddp]) if ddp is not None else contextlib.nullcontext()
        batches = _progress(_limit(train(epoch), cfg.max_batches_per_epoch), cfg.progress and dist.is_main,
                            desc=f"epoch {epoch}", unit="batch")
        with join:
            for b in batches:
                b = b.to(device, non_blocking=True)
                loss = train_step(train_model, b, criterion, optimizer, cfg, device)
                w = event_weights(b).sum()
                loss_sum += loss.detach() * w
                w_sum += w
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall += time.perf_counter() - t0
        if dist.distributed:
            both = torch.stack([loss_sum, w_sum])
            torch_dist.all_reduce(both)
            loss_sum, w_sum = both[0], both[1]
        row: dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                               "lr_groups": {str(g.get("name", k)): float(g["lr"])
                                             for k, g in enumerate(optimizer.param_groups)},
                               "train_loss": float(loss_sum / w_sum.clamp_min(1e-30)), "wall_s": wall}
        if val is not None:
            m = evaluate(net, val(), cfg.mode, device, dist, cfg)
            row.update({f"val_{k}": v for k, v in m.items()})
        monitor = row.get("val_loss", row["train_loss"])
        if monitor < best_loss - cfg.min_delta:
            best_loss, best_epoch, bad_epochs = monitor, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
            if ckpt is not None and dist.is_main:
                save_checkpoint(ckpt / "best", net, meta={**(meta or {}), "epoch": epoch})
        else:
            bad_epochs += 1
        stopped = bad_epochs >= cfg.patience
        row["stopped"] = stopped
        history.append(row)
        if ckpt is not None and dist.is_main:
            state = {"history": history, "epoch": epoch, "best_loss": best_loss, "best_epoch": best_epoch,
                     "bad_epochs": bad_epochs}
            save_checkpoint(ckpt / "last", net, optimizer, meta={**(meta or {}), "fit_state": state})
        if cfg.progress and dist.is_main:
            print(f"  {format_row(row)}", flush=True)
        if on_epoch is not None and dist.is_main:
            on_epoch(row)
        if stopped:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    plateau = next((h["wall_s"] for h in history if h["epoch"] == best_epoch), wall)
    return FitResult(history=history, best_epoch=best_epoch, stopped_early=stopped, wall_s=wall,
                     plateau_wall_s=plateau)


def format_row(row: dict[str, Any]) -> str:
    """One history row as a log line: every parameter group's LR in 4 significant digits
    (``lr head 9.606e-04 backbone 9.606e-05``: the per-epoch decay is visible), counts as
    integers, other numbers with 4 decimals."""
    parts = [f"epoch {int(row['epoch'])}"]
    groups = row.get("lr_groups") or {"": row["lr"]}
    parts.append("lr " + " ".join(f"{name} {lr:.3e}".strip() for name, lr in groups.items()))
    for k, v in row.items():
        if k in ("epoch", "lr", "lr_groups", "stopped"):
            continue
        if isinstance(v, bool) or isinstance(v, int) or (isinstance(v, float) and k.startswith(("n_", "val_n"))
                                                          and float(v).is_integer()):
            parts.append(f"{k} {int(v):,}")
        elif isinstance(v, float):
            parts.append(f"{k} {v:.4f}")
        else:
            parts.append(f"{k} {v}")
    return "  ".join(parts)


def config_dict(obj: Any) -> dict[str, Any]:
    """A JSON-able dict of a (nested) dataclass config."""
    return dataclasses.asdict(obj)
