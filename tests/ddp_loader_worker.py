"""torchrun worker for tests/test_loader.py: DDP ranks (gloo, CPU) streaming loader epochs, saving a loader
state mid-epoch and resuming it on other world sizes. Several scenarios share one launch (each torchrun
start-up costs a torch import per process).

Usage: python -m torch.distributed.run --nproc_per_node N tests/ddp_loader_worker.py OUT_DIR PHASE STORE [STORE ...]

PHASE ``epochs`` (run on 2 ranks): each rank iterates two epochs of ``make_loader`` (1 DataLoader worker,
rank/world from torch.distributed), runs one all_reduce per batch (a DDP-style collective: unequal batch
counts would hang, and the test's timeout would fail), and writes its event ids and batch counts to
OUT_DIR/rank<r>.json. Then, in the same launch, the ``save`` scenario: each rank streams epoch 0 with
1 DataLoader worker for STOP_AT batches (an all_reduce per step), writes the event ids it got to
OUT_DIR/save-<mode>-rank<r>.json, and rank 0 writes the state to OUT_DIR/state-<mode>.json.

PHASE ``resume`` (run on 3 ranks): each rank loads that state into a loader with no workers (rank/world
from torch.distributed), streams the rest of the epoch (all_reduce per step) and writes its ids, batch
count and len(loader) to OUT_DIR/resume3-<mode>-rank<r>.json; then rank 0 alone loads it into a loader of
world size 1 (rank=0, world_size=1 given) with 2 workers and writes OUT_DIR/resume1-<mode>-rank0.json.
Modes: ``count`` (batch_size) and ``budget`` (max_nodes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from hepfm_data.loader import make_loader

STOP_AT = 3
MODES = {"count": {"batch_size": 24}, "budget": {"batch_size": None, "max_nodes": 120}}
FAST = {"seed": 5, "block_size": 32, "window_blocks": 3}


def stream(loader, collective: bool, stop_at: int | None = None) -> tuple[list[int], int]:
    """(event ids, batch count) of ``loader``; an all_reduce per step when ``collective``."""
    ids, n = [], 0
    for batch in loader:
        if collective:
            step = torch.tensor([batch.n_graph], dtype=torch.int64)
            dist.all_reduce(step)  # every rank must reach every step
        ids += batch.event_id.tolist()
        n += 1
        if n == stop_at:
            break
    return ids, n


def epochs(out: Path, stores: list[str], rank: int) -> None:
    loader = make_loader(stores, device="cpu", batch_size=24, num_workers=1, **FAST)
    record = {"rank": rank, "world_size": dist.get_world_size(), "epochs": []}
    for epoch in range(2):
        loader.set_epoch(epoch)
        ids, n = stream(loader, True)
        record["epochs"].append({"event_ids": ids, "n_batches": n, "len": len(loader)})
    (out / f"rank{rank}.json").write_text(json.dumps(record))


def save(out: Path, stores: list[str], rank: int) -> None:
    for mode, kw in MODES.items():
        loader = make_loader(stores, device="cpu", num_workers=1, **FAST, **kw)
        ids, _ = stream(loader, True, STOP_AT)
        if rank == 0:
            (out / f"state-{mode}.json").write_text(json.dumps(loader.state_dict()))
        (out / f"save-{mode}-rank{rank}.json").write_text(json.dumps({"event_ids": ids}))
        dist.barrier()


def resume(out: Path, stores: list[str], rank: int, world: int, workers: int) -> None:
    """The saved states resumed on ``world`` ranks (``world`` = the job's: rank/world from torch.distributed)."""
    explicit = {} if world == dist.get_world_size() else {"rank": rank, "world_size": world}
    for mode, kw in MODES.items():
        loader = make_loader(stores, device="cpu", num_workers=workers, **FAST, **kw, **explicit)
        loader.load_state_dict(json.loads((out / f"state-{mode}.json").read_text()))
        total = len(loader)
        ids, n = stream(loader, not explicit)
        (out / f"resume{world}-{mode}-rank{rank}.json").write_text(
            json.dumps({"event_ids": ids, "n_batches": n, "len": total}))


def main() -> int:
    out, phase, stores = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if phase == "epochs":
        epochs(out, stores, rank)
        dist.barrier()
        save(out, stores, rank)
    else:
        resume(out, stores, rank, world, 0)
        dist.barrier()
        if rank == 0:
            resume(out, stores, 0, 1, 2)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
