"""Training throughput of the committed study runs (Vigl et al., RS3L, Kishimoto et al.), from their results.

    python benchmarks/study_runs.py vigl [results/vigl]
    python benchmarks/study_runs.py rs3l [results/rs3l]
    python benchmarks/study_runs.py kishimoto [results/kishimoto]

Per group (Vigl: strategy; RS3L: pretraining / variant; Kishimoto: pretraining / variant x size): the training
loop's rate of each run — examples x epochs / training seconds (Vigl and Kishimoto: the run's wall time, which
includes the per-epoch validation and the test evaluation, so a lower bound; RS3L: the loop's own clock) — the
runs' wall times and epochs. Vigl's frozen strategies train the head on cached jet embeddings; RS3L counts jets
(both jets of a contrastive pair); Kishimoto counts selected events. The machine and date are those recorded in
each result (every run of a study shares the machine with the other training processes of that study).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

#: (group, examples / s, wall s, epochs) of one result document, or None for documents that are not training runs
Row = tuple[str, float, float, int]


def _vigl(doc: dict) -> Row | None:
    if doc.get("kind") != "finetune":
        return None
    epochs = len(doc["history"])
    return doc["strategy"], 2 * doc["size"] * epochs / doc["wall_s"], doc["wall_s"], epochs


def _rs3l(doc: dict) -> Row | None:
    if doc.get("kind") == "pretrain":
        h = doc["history"]
        return "pretrain (jets of pairs)", doc["jets_per_s"], doc["wall_s"], len(h)
    if doc.get("kind") == "downstream":
        return doc["variant"], doc["jets_per_s"], doc["wall_s"], 0
    return None


def _kishimoto(doc: dict) -> Row | None:
    if doc.get("kind") == "pretrain":
        return "pretrain (selected events, in memory)", doc["events_per_s"], doc["wall_s"], len(doc["history"])
    if doc.get("kind") == "finetune":
        return f"{doc['variant']} n={doc['size']:,}", doc["events_per_s"], doc["wall_s"], len(doc["history"])
    return None


STUDIES: dict[str, Callable[[dict], Row | None]] = {"vigl": _vigl, "rs3l": _rs3l, "kishimoto": _kishimoto}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in STUDIES:
        raise SystemExit(f"usage: study_runs.py {{{','.join(STUDIES)}}} [RESULTS]")
    study = argv[0]
    root = Path(argv[1] if len(argv) > 1 else f"results/{study}")
    rows: dict[str, list[tuple[float, float, int]]] = {}
    machines = set()
    for path in sorted(root.glob("*.json")):
        doc = json.loads(path.read_text())
        row = STUDIES[study](doc)
        if row is None or not row[1]:
            continue
        rows.setdefault(row[0], []).append(row[1:])
        m = doc.get("machine", {})
        machines.add(f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('threads', '?')} thread(s) per run, "
                     f"torch {m.get('torch', '?')}, {str(doc.get('date', '?'))[:10]}")
    if not rows:
        raise SystemExit(f"no training results under {root}")
    print(f"{study}: {sum(len(v) for v in rows.values())} runs; machine/date: {'; '.join(sorted(machines))}")
    print("| group | runs | examples x epochs / s (median, range) | wall per run (s) | epochs |")
    print("|---|---:|---:|---:|---:|")
    for group, v in sorted(rows.items(), key=lambda kv: (re.sub(r"[\d,]+", "", kv[0]), int(re.sub(r"\D", "", kv[0]) or 0))):
        rate = [r for r, _, _ in v]
        epochs = [e for _, _, e in v]
        print(f"| {group} | {len(v)} | {statistics.median(rate):,.0f} ({min(rate):,.0f}-{max(rate):,.0f}) | "
              f"{min(w for _, w, _ in v):.0f}-{max(w for _, w, _ in v):.0f} | "
              f"{f'{min(epochs)}-{max(epochs)}' if max(epochs) else '—'} |")


if __name__ == "__main__":
    main()
