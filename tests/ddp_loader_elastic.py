"""torchrun worker for tests/test_loader.py: save a loader state mid-epoch on one world size,
resume it on another (gloo, CPU).

Usage: python -m torch.distributed.run --nproc_per_node N tests/ddp_loader_elastic.py OUT_DIR PHASE STORE [STORE ...]

PHASE ``save``: each rank streams epoch 0 with 1 DataLoader worker for STOP_AT batches (an
all_reduce per step), writes the event ids it got to OUT_DIR/save-<mode>-rank<r>.json, and
rank 0 writes the state to OUT_DIR/state-<mode>.json. PHASE ``resume``: each rank loads that
state into a loader with 2 workers (1 rank) or none (3 ranks), streams the rest of the epoch (all_reduce per step) and
writes its ids, batch count and len(loader) to OUT_DIR/resume<world>-<mode>-rank<r>.json.
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


def main() -> int:
    out, phase, stores = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    for mode, kw in MODES.items():
        workers = 1 if phase == "save" else (2 if world == 1 else 0)
        loader = make_loader(stores, device="cpu", num_workers=workers, seed=5, block_size=32, window_blocks=3, **kw)
        if phase == "resume":
            loader.load_state_dict(json.loads((out / f"state-{mode}.json").read_text()))
        ids, n, total = [], 0, len(loader)
        for batch in loader:
            step = torch.tensor([batch.n_graph], dtype=torch.int64)
            dist.all_reduce(step)  # every rank must reach every step
            ids += batch.event_id.tolist()
            n += 1
            if phase == "save" and n == STOP_AT:
                break
        if phase == "save":
            if rank == 0:
                (out / f"state-{mode}.json").write_text(json.dumps(loader.state_dict()))
            (out / f"save-{mode}-rank{rank}.json").write_text(json.dumps({"event_ids": ids}))
        else:
            (out / f"resume{world}-{mode}-rank{rank}.json").write_text(
                json.dumps({"event_ids": ids, "n_batches": n, "len": total}))
        dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
