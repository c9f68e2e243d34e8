"""The prepared GPU measurement of issue 18: one script, run once on a lent accelerator.

    python benchmarks/gpu.py --out gpu.json                 # on a CUDA machine (H100/H200)
    python benchmarks/gpu.py --smoke                        # a minute on a CPU: checks the script runs

What it measures, in one run, on synthetic stores of the 12 pretraining processes
(``hepfm_data.testing.synthetic_events``: ~5 nodes and ~25 edges per event after the selection):

1. **Model + optimizer alone** on pre-built device batches, per batch size (default
   4096, 16384, 65536 events): the plain gather-concatenate edge-list baseline
   (``reference_forward``, fp32 eager) and ``GraphNet`` fp32 eager, bf16 autocast eager,
   bf16 + ``torch.compile(dynamic=True)``, and bf16 + compile on fixed-shape padded batches
   (``pad=True``) with CUDA graphs (``mode="reduce-overhead"``). Each variant is guarded:
   an OOM or a compile failure is recorded in the output, the run goes on.
2. **Loader alone** into device batches (``make_loader``, edges built on the device) with
   1, 4 and 8 worker processes.
3. **Full loop** (loader -> model -> loss -> step) with the fastest model variant and the
   fastest worker count, and the share of a step the loader costs
   (1 - full-loop rate / model-alone rate).

The paper's pretraining ran at ~37k events/s; the goal is >= 1M events/s on one H100/H200.
Every measurement is bounded (``--seconds`` of timed steps after warm-up) so the whole
script fits a 10-minute device call. Results are printed and written as JSON (``--out``,
default ``$OUT/gpu.json`` when ``$OUT`` is set).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.train import synthetic_stores  # noqa: E402
from hepfm_data.loader import make_loader  # noqa: E402
from hepfm_models import GraphNet, ModelConfig, TrainConfig, multiclass_loss, reference_forward  # noqa: E402
from hepfm_models.training import train_step  # noqa: E402

PRETRAIN = ["ggF_H", "VBF_H", "WH", "ZH", "ttH", "tHq", "single_top", "ttbar", "ttyy", "ttW", "ttt", "tttt"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rate(step, batches, device: torch.device, warmup: int, seconds: float) -> float:
    """Events/s of ``step`` over ``batches`` (cycled) after ``warmup`` untimed steps, for
    about ``seconds`` of timed steps (at least 3). Events are counted on the device."""
    it, count, done = iter(batches), None, 0
    t0 = None
    while True:
        try:
            g = next(it)
        except StopIteration:
            it = iter(batches)
            g = next(it)
        if done == warmup:
            sync(device)
            t0 = time.perf_counter()
        step(g)
        if done >= warmup:
            n = g.graph_mask.sum()
            count = n if count is None else count + n
        done += 1
        if t0 is not None and done - warmup >= 3 and time.perf_counter() - t0 > seconds:
            break
    sync(device)
    return int(count) / (time.perf_counter() - t0)


def model_step(variant: str, n_out: int, device: torch.device):
    """(step function, needs padded batches) for one model variant."""
    torch.manual_seed(0)
    model = GraphNet(ModelConfig(n_out=n_out)).to(device)
    amp = "off" if variant in ("plain_fp32", "fp32_eager") else "on" if device.type == "cuda" else "off"
    cfg = TrainConfig(amp=amp)
    if variant == "plain_fp32":
        forward = lambda g: reference_forward(model, g)  # noqa: E731
    elif variant in ("fp32_eager", "bf16_eager"):
        forward = model
    elif variant == "bf16_compile":
        forward = torch.compile(model, dynamic=True)
    elif variant == "bf16_compile_pad_cudagraphs":
        forward = torch.compile(model, mode="reduce-overhead" if device.type == "cuda" else "default", dynamic=False)
    else:
        raise ValueError(variant)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    return (lambda g: train_step(forward, g, multiclass_loss, opt, cfg, device)), variant.endswith("pad_cudagraphs")


def loader_for(stores, batch_size: int, workers: int, device, pad: bool, stats: dict):
    kw = {}
    if pad:  # a fixed shape with head-room: a budget batch never exceeds it
        kw = dict(max_nodes=int(batch_size * stats["nodes"] * 1.25), max_edges=int(batch_size * stats["edges"] * 1.5),
                  pad=True)
    return make_loader(stores, split="train", labels={p: k for k, p in enumerate(PRETRAIN)}, batch_size=batch_size,
                       num_workers=workers, device=device, seed=0, **kw)


def guarded(results: dict, key: str, fn):
    try:
        results[key] = fn()
    except Exception as exc:  # noqa: BLE001 - one failed variant must not lose the others' figures
        results[key] = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        traceback.print_exc()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    print(f"  {key:<48} {results[key] if isinstance(results[key], str) else f'{results[key]:12.0f} events/s'}",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="synthetic events per process (12 processes)")
    ap.add_argument("--batch-sizes", default="4096,16384,65536")
    ap.add_argument("--workers", default="1,4,8", help="loader worker counts to measure")
    ap.add_argument("--variants", default="plain_fp32,fp32_eager,bf16_eager,bf16_compile,bf16_compile_pad_cudagraphs")
    ap.add_argument("--seconds", type=float, default=4.0, help="timed seconds per measurement")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--stores", help="existing stores root (default: synthetic ones in a temp dir)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: check the script on a CPU")
    args = ap.parse_args(argv)
    if args.smoke:
        args.events, args.batch_sizes, args.workers, args.seconds, args.warmup = 600, "128", "0,1", 0.2, 1
        args.variants = "plain_fp32,fp32_eager,bf16_eager"
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or "cpu")
    out = args.out or (os.path.join(os.environ["OUT"], "gpu.json") if os.environ.get("OUT") else None)
    report: dict = {"device": name, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
                    "events_per_process": args.events, "model_alone": {}, "loader_alone": {}, "full_loop": {}}
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    worker_counts = [int(w) for w in args.workers.split(",")]
    variants = args.variants.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        stores = ([f"{args.stores.rstrip('/')}/{p}" for p in PRETRAIN] if args.stores
                  else synthetic_stores(Path(tmp), args.events, PRETRAIN))
        print(f"device {name}, torch {torch.__version__}; stores ready in {time.perf_counter() - t0:.0f} s", flush=True)
        probe = loader_for(stores, 1024, 0, "cpu", False, {})
        probe.set_epoch(0)
        first = [g for _, g in zip(range(8), probe)]
        n = sum(int(g.graph_mask.sum()) for g in first)
        stats = {"nodes": sum(int(g.n_node.sum()) for g in first) / n, "edges": sum(int(g.n_edge.sum()) for g in first) / n}
        report["per_event"] = stats
        print(f"{stats['nodes']:.2f} nodes and {stats['edges']:.1f} edges per event", flush=True)

        print("1. model + optimizer alone (pre-built device batches)", flush=True)
        for bs in batch_sizes:
            cached: dict[bool, list] = {}
            for variant in variants:
                step, pad = model_step(variant, len(PRETRAIN), device)
                if pad not in cached:
                    ld = loader_for(stores, bs, min(4, os.cpu_count() or 1), device, pad, stats)
                    ld.set_epoch(0)
                    cached[pad] = [g for _, g in zip(range(args.warmup + 12), ld)]
                guarded(report["model_alone"], f"{variant} batch {bs}",
                        lambda step=step, batches=cached[pad]: rate(step, batches, device, args.warmup, args.seconds))
            del cached

        print("2. loader alone into device batches", flush=True)
        bs_loader = batch_sizes[len(batch_sizes) // 2]
        for w in worker_counts:
            def loader_rate(w=w):
                ld = loader_for(stores, bs_loader, w, device, False, stats)
                ld.set_epoch(1)
                return rate(lambda g: None, ld, device, args.warmup, args.seconds)
            guarded(report["loader_alone"], f"workers {w} batch {bs_loader}", loader_rate)

        print("3. full loop: loader -> model -> loss -> step", flush=True)
        numeric = {k: v for k, v in report["model_alone"].items() if not isinstance(v, str)}
        lnum = {k: v for k, v in report["loader_alone"].items() if not isinstance(v, str)}
        if numeric and lnum:
            best = max(numeric, key=numeric.get)
            variant, bs = best.split(" batch ")[0], int(best.split(" batch ")[1])
            w = int(max(lnum, key=lnum.get).split()[1])
            step, pad = model_step(variant, len(PRETRAIN), device)

            def full():
                ld = loader_for(stores, bs, w, device, pad, stats)
                ld.set_epoch(2)
                return rate(step, ld, device, args.warmup, args.seconds)
            key = f"{variant} batch {bs} workers {w}"
            guarded(report["full_loop"], key, full)
            if not isinstance(report["full_loop"][key], str):
                report["loader_share_of_step"] = 1.0 - report["full_loop"][key] / numeric[best]
                print(f"  loader share of a training step: {report['loader_share_of_step']:.1%}")
        plain = {k: v for k, v in numeric.items() if k.startswith("plain_fp32")}
        if plain and numeric:
            report["best_vs_plain"] = max(numeric.values()) / max(plain.values())
            print(f"best model-alone rate / plain edge-list baseline: {report['best_vs_plain']:.2f}x")
    if out:
        Path(out).write_text(json.dumps(report, indent=1))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
