"""torchrun worker for tests/test_loader.py: one DDP rank (gloo, CPU) streaming a loader epoch.

Usage: python -m torch.distributed.run --nproc_per_node 2 tests/ddp_loader_worker.py OUT_DIR STORE [STORE ...]

Each rank iterates two epochs of ``make_loader`` (1 DataLoader worker, rank/world from
torch.distributed), runs one all_reduce per batch (a DDP-style collective: unequal batch
counts would hang, and the test's timeout would fail), and writes its event ids and
batch counts to OUT_DIR/rank<r>.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from hepfm_data.loader import make_loader


def main() -> int:
    out, stores = Path(sys.argv[1]), sys.argv[2:]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    loader = make_loader(stores, device="cpu", batch_size=24, num_workers=1, seed=5, block_size=32,
                         window_blocks=3)
    record = {"rank": rank, "world_size": dist.get_world_size(), "epochs": []}
    for epoch in range(2):
        loader.set_epoch(epoch)
        ids, n = [], 0
        for batch in loader:
            step = torch.tensor([batch.n_graph], dtype=torch.int64)
            dist.all_reduce(step)  # every rank must reach every step
            ids += batch.event_id.tolist()
            n += 1
        record["epochs"].append({"event_ids": ids, "n_batches": n, "len": len(loader)})
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
