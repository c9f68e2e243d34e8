"""``hepfm-data info STORE|ROOT``: events, bytes/event, split sizes, label counts, per-feature ranges
(of every store under a storage root)."""

from __future__ import annotations

import argparse
import json

import numpy as np

HELP = "summarise a store: events, bytes/event, splits, feature ranges, record collections, representations"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="store (ROOT/PROCESS) or storage root (ROOT): directory or URL")
    p.add_argument("--max-shards", type=int, default=None, help="feature ranges from the first N shards only")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--storage-options", default=None, help="JSON dict of fsspec storage options")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def summarise(store, max_shards: int | None = None, progress: bool = False) -> dict:
    """Summary dict: counts and sizes from the manifest, feature ranges streamed shard by shard."""
    from tqdm.auto import tqdm

    m = store.manifest
    names = m.node_features or ["pt", "eta", "phi", "energy", "btag", "charge", "type"]
    lo = np.full(len(names), np.inf)
    hi = np.full(len(names), -np.inf)
    total = np.zeros(len(names))
    n_nodes = n_events = 0
    types: dict[int, int] = {}
    ml_sum = np.zeros(len(m.label_names))
    shards = m.shards[:max_shards] if max_shards else m.shards
    for info in tqdm(shards, desc="info", unit=" shard", disable=not progress):
        d = store.read_shard(info)
        if len(d.nodes):
            lo = np.minimum(lo, d.nodes.min(axis=0))
            hi = np.maximum(hi, d.nodes.max(axis=0))
            total += d.nodes.sum(axis=0, dtype=np.float64)
        n_nodes += len(d.nodes)
        n_events += len(d)
        ml_sum += d.multilabel.sum(axis=0, dtype=np.float64)
        t, c = np.unique(d.nodes[:, 6].astype(np.int64), return_counts=True)
        for a, b in zip(t.tolist(), c.tolist()):
            types[a] = types.get(a, 0) + b
    type_names = {v: k for k, v in m.object_types.items()}
    return {
        "store": store.url, "process": m.process, "label": m.label, "layout": m.layout,
        "format_version": m.format_version, "compression": m.compression, "code_version": m.code_version,
        "events": m.n_events, "nodes": m.n_nodes, "shards": len(m.shards), "bytes": m.bytes,
        "bytes_per_event": m.bytes / max(m.n_events, 1), "nodes_per_event": m.n_nodes / max(m.n_events, 1),
        "splits": m.split_sizes(), "split_rule": {k: m.split[k] for k in ("salt", "fractions")},
        "features_from_events": n_events,
        "features": {n: {"min": float(lo[i]), "max": float(hi[i]), "mean": float(total[i] / max(n_nodes, 1))}
                     for i, n in enumerate(names)},
        "nodes_per_type": {type_names.get(k, str(k)): v for k, v in sorted(types.items())},
        "multilabel_mean": {n: float(ml_sum[i] / max(n_events, 1)) for i, n in enumerate(m.label_names)},
        "record": _record(m), "representations": _representations(store), "from_record": _from_record(m),
        "provenance": [{k: p.get(k) for k in ("process", "source", "fidelity", "seed", "input_format", "release",
                                              "truth")} for p in m.provenance],
    }


def _record(m) -> dict:
    """Record collections: fields with dtype and unit, mean multiplicity; record bytes/event."""
    from hepfm_data.store.record import STORED

    if not m.schema:
        return {}
    n = max(m.n_events, 1)
    rec_bytes = sum(r.bytes for r in m.record_shards)
    return {
        "bytes": rec_bytes, "bytes_per_event": rec_bytes / n,
        # format 3: record columns stored once, in the paper shard (store.record codecs)
        "from_paper": sorted(k for k, v in m.record_codecs.items() if v["codec"] != STORED),
        "events": {k: f"{v['dtype']}" + (f" [{v['unit']}]" if v["unit"] else "") for k, v in m.schema["events"].items()},
        "collections": {name: {"kind": c["kind"], "parent": c.get("parent"),
                               "mean_multiplicity": c.get("n_objects", 0) / n if c["kind"] == "list" else 1.0,
                               "fields": {f: f"{v['dtype']}" + (f" [{v['unit']}]" if v["unit"] else "")
                                          for f, v in c["fields"].items()}}
                        for name, c in m.schema["collections"].items()},
    }


def _representations(store) -> dict:
    m = store.manifest
    if not m.representations:
        return {"paper": {"version": None, "fingerprint": None, "where": "shards/", "default": True,
                          "bytes_per_event": m.bytes / max(m.n_events, 1)}}
    out = {}
    for name, r in m.representations.items():
        shards = r.get("shards")
        size = sum(s.bytes for s in shards) if shards else sum(s.bytes for s in (store._base_shards or m.shards))
        out[name] = {"version": r["version"], "fingerprint": r["fingerprint"], "default": name == m.default_representation,
                     "where": f"representations/{name}/" if shards else "shards/",
                     "bytes_per_event": size / max(m.n_events, 1), "doc": r.get("doc", "")}
    return out


def _from_record(m) -> dict:
    """{representation computed by the loader from the record: "servable" | "cannot serve: ..."}."""
    from hepfm_data.representations.registry import unservable

    return {name: "servable" if not missing else
            f"cannot serve: the record lacks {sorted({x.rsplit('.', 1)[0] for x in missing})}"
            for name, missing in unservable(m.schema).items()}


def format_summary(s: dict) -> str:
    lines = [
        f"store      {s['store']}  (process {s['process']}, label {s['label']}, layout {s['layout']}, "
        f"format v{s['format_version']}, hepfm {s['code_version']})",
        f"events     {s['events']:,} in {s['shards']} shards; {s['nodes_per_event']:.2f} nodes/event",
        f"size       {s['bytes']:,} bytes = {s['bytes_per_event']:.1f} bytes/event ({s['compression']})",
        "splits     " + ", ".join(f"{k} {v:,}" for k, v in s["splits"].items())
        + f"  (salt {s['split_rule']['salt']!r}, fractions {s['split_rule']['fractions']})",
        "nodes      " + ", ".join(f"{k} {v:,}" for k, v in s["nodes_per_type"].items()),
        f"features   (over {s['features_from_events']:,} events)   min        max        mean",
    ]
    for name, r in s["features"].items():
        lines.append(f"  {name:<8} {r['min']:>18.4g} {r['max']:>10.4g} {r['mean']:>10.4g}")
    counts = [k for k in s["multilabel_mean"] if k.startswith("n_")]
    lines.append("truth      " + ", ".join(f"<{k}> {s['multilabel_mean'][k]:.3g}" for k in counts))
    rec = s.get("record") or {}
    if rec:
        lines.append(f"record     {rec['bytes']:,} bytes = {rec['bytes_per_event']:.1f} bytes/event; event fields "
                     + ", ".join(f"{k} {v}" for k, v in rec["events"].items()))
        for name, c in rec["collections"].items():
            mult = f"<n> {c['mean_multiplicity']:.2f}" if c["kind"] == "list" else "one per event"
            lines.append(f"  {name:<12} {mult:<12} " + ", ".join(f"{f} {t}" for f, t in c["fields"].items()))
        if rec.get("from_paper"):
            lines.append("  from paper   (stored once, in shards/: format 3) " + ", ".join(rec["from_paper"]))
    else:
        lines.append("record     none (format-1 store or built with record=False: the paper graph only)")
    for name, r in s.get("representations", {}).items():
        fp = f"v{r['version']} fingerprint {r['fingerprint'][:12]}" if r["fingerprint"] else "format 1, no fingerprint"
        lines.append(f"repr       {name}{' (default)' if r['default'] else ''}: {fp}, in {r['where']}, "
                     f"{r['bytes_per_event']:.1f} bytes/event")
    for name, state in s.get("from_record", {}).items():
        lines.append(f"loader     {name} (computed from the record): {state}")
    srcs = sorted({f"{p['source']} ({p['fidelity']})" for p in s["provenance"]})
    lines.append(f"provenance {len(s['provenance'])} blocks/files from " + ", ".join(srcs))
    inputs = sorted({(p.get("input_format") or p["source"], p.get("release") or "release not recorded",
                      p.get("truth", True)) for p in s["provenance"]})
    for fmt, release, truth in inputs:
        lines.append(f"input      {fmt}: {release}" + ("" if truth else "; no truth record (collision data): "
                                                        "truth labels are absent"))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from hepfm_data.cli.commands._stores import stores_at

    stores = stores_at(args.store, json.loads(args.storage_options) if args.storage_options else None)
    summaries = [summarise(store, args.max_shards, progress=not args.quiet) for store in stores]
    if args.json:
        print(json.dumps(summaries[0] if len(summaries) == 1 else summaries, indent=1))
    else:
        print("\n\n".join(format_summary(s) for s in summaries))
    return 0
