"""Training throughput of the Vigl et al. study's fine-tuning runs, from their committed results.

    python benchmarks/vigl_runs.py [results/vigl]

Per strategy: training events x epochs / wall seconds of each run (a lower bound on the training loop's
rate: the wall time includes the per-epoch validation and the final test evaluation), the runs' wall times
and epochs. Frozen strategies train the Deep Sets head on cached jet embeddings (the backbone runs once
per event, outside the loop). The machine and date are those recorded in each result.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "results/vigl")
    rows: dict[str, list[tuple[float, float, int]]] = {}
    machines = set()
    for path in sorted(root.glob("*-n*-s*.json")):
        doc = json.loads(path.read_text())
        epochs = len(doc["history"])
        rows.setdefault(doc["strategy"], []).append((2 * doc["size"] * epochs / doc["wall_s"], doc["wall_s"], epochs))
        m = doc.get("machine", {})
        machines.add(f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('threads', '?')} thread(s) per run, "
                     f"torch {m.get('torch', '?')}, {str(doc.get('date', '?'))[:10]}")
    if not rows:
        raise SystemExit(f"no fine-tuning results under {root}")
    print(f"{sum(len(v) for v in rows.values())} runs; machine/date: {'; '.join(sorted(machines))}")
    print("| strategy | runs | events x epochs / s (median, range) | wall per run (s) | epochs |")
    print("|---|---:|---:|---:|---:|")
    for strategy, v in rows.items():
        rate = [r for r, _, _ in v]
        print(f"| {strategy} | {len(v)} | {statistics.median(rate):,.0f} ({min(rate):,.0f}-{max(rate):,.0f}) | "
              f"{min(w for _, w, _ in v):.0f}-{max(w for _, w, _ in v):.0f} | "
              f"{min(e for _, _, e in v)}-{max(e for _, _, e in v)} |")


if __name__ == "__main__":
    main()
