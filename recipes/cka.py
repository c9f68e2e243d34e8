"""CKA between the 64-d latents (after the decoder) of a scaling study's models (SPEC §6).

    python recipes/cka.py --scaling_dir=runs/scaling --n_events=2000

For every training size: ensemble CKA (mean ± std over model pairs) within each variant,
between each pair of variants, and of each variant against the pretrained backbone
(when ``base.pretrained`` exists), on the first ``n_events`` per class of the fixed test
set. Writes ``<scaling_dir>/cka.json`` and ``cka.md``.
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python recipes/cka.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from hepfm_models import collect, ensemble_cka, load_checkpoint
from recipes.common import DataConfig, build, parse_args, setup, task_split, write_json


@dataclass
class CKAConfig:
    scaling_dir: str = "runs/scaling"  # holds results.json of recipes/scaling.py
    n_events: int = 2000  # test events per class used for the representations
    device: str = "auto"


def latents(path: str | Path, batches: list, device) -> torch.Tensor:
    """Decoder latents of the checkpoint at ``path`` over ``batches`` (built once, reused per checkpoint)."""
    model, _ = load_checkpoint(path, map_location=device)
    return collect(model, batches, device, latents=True)["latents"]


def run(cfg: CKAConfig) -> dict[str, Any]:
    dist = setup(cfg.device)
    root = Path(cfg.scaling_dir)
    doc = json.loads((root / "results.json").read_text())
    base = doc["config"]["base"]
    data = build(DataConfig, base["data"])
    test = task_split(data.stores, base["task"], data, "test", cfg.n_events, 0, False)
    test_batches = list(test.batches(data.batch_size, shuffle=False, device=dist.device))
    reference = None
    if base.get("pretrained") and Path(str(base["pretrained"]) + ".json").exists():
        reference = latents(base["pretrained"], test_batches, dist.device)
    rows = []
    for n in doc["config"]["sizes"]:
        reps: dict[str, list[torch.Tensor]] = {}
        for r in doc["runs"]:
            if r["n_per_class"] == n:
                path = root / f"n{n}" / f"seed{r['seed']}" / r["variant"] / "model"
                reps.setdefault(r["variant"], []).append(latents(path, test_batches, dist.device))
        for v, rs in reps.items():
            if len(rs) > 1:
                rows.append({"n_per_class": n, "a": v, "b": v, "cka": ensemble_cka(rs)})
        for a, b in itertools.combinations(reps, 2):
            rows.append({"n_per_class": n, "a": a, "b": b, "cka": ensemble_cka(reps[a], reps[b])})
        if reference is not None:
            for v, rs in reps.items():
                rows.append({"n_per_class": n, "a": v, "b": "pretrained", "cka": ensemble_cka(rs, [reference])})
    lines = ["# Linear CKA of the decoder latents", "", "| events/class | model A | model B | CKA (mean ± std) |",
             "|---:|---|---|---|"]
    lines += [f"| {r['n_per_class']:,} | {r['a']} | {r['b']} | {r['cka'][0]:.3f} ± {r['cka'][1]:.3f} |" for r in rows]
    out = {"config": {"scaling_dir": cfg.scaling_dir, "n_events": cfg.n_events}, "rows": rows}
    write_json(root / "cka.json", out)
    (root / "cka.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return out


def main(argv: list[str] | None = None) -> int:
    run(parse_args(CKAConfig, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
