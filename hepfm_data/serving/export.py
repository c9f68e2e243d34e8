"""Export a hepfm dataset as a Hugging Face dataset folder.

``export_dataset("hepfm/ttH", "out/")`` writes::

    out/README.md                          dataset card; YAML front matter with `configs:`
    out/data/<split>-NNNNN-of-MMMMM.parquet

so that plain ``datasets.load_dataset("out/")``, the Hub dataset viewer and
``huggingface-cli upload <repo> out/ --repo-type dataset`` all work. Columns and
Features are those of :func:`hepfm_data.load_dataset` (the HF Features travel in
the Parquet schema metadata, so ClassLabel names survive). Row groups hold
``rows_per_group`` events (default 10,000: a few MB, what the viewer pages by);
files hold at most ``rows_per_file`` events. Shards are streamed one chunk at a
time (bounded memory); files are written into a staging folder and moved in, the
card last, so an interrupted export never looks complete.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hepfm_data.core.catalog import Catalog, load_catalog
from hepfm_data.core.errors import HepfmError, require
from hepfm_data.serving.hub import (
    _stream_tables,
    check_stores,
    features_for,
    open_process_store,
    plan,
    resolve_name,
    storage_root,
)

ROWS_PER_GROUP = 10_000
ROWS_PER_FILE = 500_000
STAGING = ".hepfm-export-staging"


@dataclass
class _SplitWriter:
    """Buffers Arrow tables and writes exact ``rows_per_group`` row groups, rolling files at ``rows_per_file``."""

    directory: Path
    split: str
    n_files: int
    schema: Any
    rows_per_group: int
    rows_per_file: int
    files: list[Path] = field(default_factory=list)
    _buffer: list = field(default_factory=list)
    _buffered: int = 0
    _writer: Any = None
    _in_file: int = 0

    def add(self, table) -> None:
        self._buffer.append(table)
        self._buffered += table.num_rows
        while self._buffered >= self.rows_per_group:
            self._flush(self.rows_per_group)

    def _flush(self, n: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.concat_tables(self._buffer)
        head, rest = table.slice(0, n), table.slice(n)
        self._buffer, self._buffered = ([rest] if rest.num_rows else []), rest.num_rows
        while head.num_rows:
            if self._writer is None:
                path = self.directory / f"{self.split}-{len(self.files):05d}-of-{self.n_files:05d}.parquet"
                self.files.append(path)
                self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
                self._in_file = 0
            take = min(head.num_rows, self.rows_per_file - self._in_file)
            self._writer.write_table(head.slice(0, take), row_group_size=self.rows_per_group)
            self._in_file += take
            head = head.slice(take)
            if self._in_file >= self.rows_per_file:
                self._writer.close()
                self._writer = None

    def close(self) -> None:
        if self._buffered:
            self._flush(self._buffered)
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def export_dataset(name: str, out_dir: str | os.PathLike, *, storage: str | os.PathLike | None = None,
                   storage_options: dict[str, Any] | None = None, rows_per_group: int = ROWS_PER_GROUP,
                   rows_per_file: int = ROWS_PER_FILE, overwrite: bool = False, catalog: Catalog | None = None,
                   progress: bool = True) -> dict[str, int]:
    """Write ``name`` (``hepfm/<process>`` or ``hepfm/<task>``) to ``out_dir``; returns events per split."""
    ds = require("datasets", "hf", "export")
    from tqdm.auto import tqdm

    from hepfm_data.store import SPLITS

    if rows_per_group <= 0 or rows_per_file < rows_per_group:
        raise HepfmError(f"need 0 < rows_per_group <= rows_per_file, got {rows_per_group}, {rows_per_file}")
    cat = catalog or load_catalog()
    target = resolve_name(name, cat)
    out = Path(out_dir).expanduser()
    if out.exists() and any(p.name != STAGING for p in out.iterdir()):
        if not overwrite:
            raise HepfmError(f"{out}: not empty; pass overwrite=True (--overwrite) to replace its data/ and README.md")
    root = storage_root(storage)
    stores = [open_process_store(p, root, storage_options, False, cat, None) for p in target.processes]
    check_stores(target, stores, cat)
    features = features_for(target, cat.labels.n_labels)
    schema = features.arrow_schema
    staging = out / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "data").mkdir(parents=True)
    sizes: dict[str, int] = {}
    for split in SPLITS:
        parts = [(s, p) for s, label in zip(stores, target.labels) for p in plan(s, split, label)]
        total = sum(p.stop - p.start for _, p in parts)
        if not total:
            continue
        writer = _SplitWriter(staging / "data", split, math.ceil(total / rows_per_file), schema,
                              rows_per_group, rows_per_file)
        with tqdm(total=total, desc=f"export {split}", unit=" ev", disable=not progress, leave=False) as bar:
            for _, table in _stream_tables([{"store": s, "part": p, "features": features} for s, p in parts]):
                writer.add(table)
                bar.update(table.num_rows)
        writer.close()
        sizes[split] = total
    card = dataset_card(target, cat, stores, features, sizes, ds)
    (staging / "README.md").write_text(card, encoding="utf-8")
    shutil.rmtree(out / "data", ignore_errors=True)
    os.replace(staging / "data", out / "data")
    os.replace(staging / "README.md", out / "README.md")  # the card last
    shutil.rmtree(staging, ignore_errors=True)
    return sizes


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")):
        if n < limit:
            return label
    return "100M<n<1B"


def card_text(value: Any, limit: int = 200) -> str:
    """``value`` as one safe Markdown table cell: text from a store's manifest (possibly someone
    else's) cannot add lines, cells, HTML, links or front matter to the card."""
    text = " ".join(str(value).split())[:limit]
    for ch in "\\`*_[]<>|#!":
        text = text.replace(ch, "\\" + ch)
    return text


def dataset_card(target, cat: Catalog, stores, features, sizes: dict[str, int], ds) -> str:
    """README.md: YAML front matter (configs, dataset_info) + a description of the data."""
    info = ds.DatasetInfo(features=features)
    meta: dict[str, Any] = {
        "pretty_name": target.name,
        "license": "other",
        "tags": ["physics", "high-energy-physics", "particle-physics", "collider", "graph", "hepfm"],
        "size_categories": [_size_category(sum(sizes.values()))],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in sizes]}],
    }
    try:  # datasets' own YAML form of the features (what push_to_hub writes)
        meta["dataset_info"] = {"features": info._to_yaml_dict()["features"],
                                "splits": [{"name": s, "num_examples": n} for s, n in sizes.items()]}
    except Exception:  # pragma: no cover - private API moved; the Parquet metadata still carries Features
        pass
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    c = cat.citations.get("ho2024") or next(iter(cat.citations.values()))
    procs = []
    for s in stores:
        m = s.manifest
        p = cat.process(m.process)
        sources = sorted({" ".join(str(d.get("source", "?")).split())[:80] for d in m.provenance})
        procs.append(f"| {card_text(m.process)} | {p.fidelity} | {m.n_events:,} | {card_text(', '.join(sources))} "
                     f"| {card_text(m.code_version)} |")
    node_rows = [f"| {f.name} | {f.unit or '-'} | {f.description} |" for f in cat.graph.node_features]
    split_rows = [f"| {s} | {n:,} |" for s, n in sizes.items()]
    labels = ", ".join(f"{i}: {n}" for i, n in enumerate(target.label_names))
    return "\n".join([
        "---", front.rstrip(), "---", "",
        f"# {target.name}", "",
        target.description, "",
        "Exported by [hepfm](https://arxiv.org/abs/2412.10665) (`hepfm-data export`). One row per event; "
        "each event is a fully connected graph whose nodes are the selected jets, electrons, muons, photons "
        "and one MET node (edges are not stored: compute Δη, Δφ, ΔR from the node lists).", "",
        "## Load", "",
        "```python", "from datasets import load_dataset",
        'ds = load_dataset("path/or/repo_id", split="train")  # or streaming=True', 'ds = ds.with_format("torch")',
        "```", "",
        "## Splits", "", "| split | events |", "|---|---|", *split_rows, "",
        "## Columns", "",
        "| column | unit | meaning |", "|---|---|---|",
        "| event_id | - | event id in the source store (unique per process) |",
        "| weight | - | per-event weight |",
        f"| label | - | class label ({labels}) |",
        f"| multilabel | - | {cat.labels.n_labels} truth labels (first {cat.labels.n_counts} are counts): "
        f"{', '.join(cat.labels.names)} |",
        "| n_node | - | number of nodes |",
        *node_rows, "",
        "## Sources", "",
        "| process | fidelity | events in store | source | hepfm version |", "|---|---|---|---|---|", *procs, "",
        "Fidelity `proxy` means a local Pythia 8 SecondHard stand-in with the right final-state content "
        "but wrong correlations: it is not the real process.", "",
        "## Citation", "", f"{c.authors}, \"{c.title}\", arXiv:{c.arxiv}", "",
    ])
