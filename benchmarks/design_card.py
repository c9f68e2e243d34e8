"""The design card's first call, timed as a new user runs it: a plain script without a ``__main__`` guard,

    from hepfm_data import load_dataset
    ds = load_dataset("hepfm/<process>", split="train[:10000]", build=True)

for ttH_cp_even and ttH_cp_odd, on all the cores this machine has and on one (the script's CPU
affinity set to core 0: the build then runs in-process), each in a fresh storage folder.

    python benchmarks/design_card.py [--build 13000] [--cores 2 1] [--processes ttH_cp_even ttH_cp_odd]

Prints per call: wall seconds, the time of the bar's first status (starting workers / in this process)
and of its first update that counts events (parsed from the progress bar on stderr, as the user sees
it), events generated per second; then the CP-odd / CP-even
ratio per core count and the speed-up of all cores over one per process. ``--build N`` passes
``build=N`` (default ``True``: 13,000 events, so that ``train[:10000]`` exists).

The machine's ceiling, measured first in the same run (``--ceiling N`` events, 0 skips it): the same
generation (``generate("ttH_cp_even", N)``, no Dask, no store) as one process on one core, then as one
independent process per core at once. Their events/s ratio is the most any parallel build can gain here:
on a VM whose cores share a physical core or memory bandwidth it is well below the core count.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SCRIPT = """\
from hepfm_data import load_dataset
ds = load_dataset("hepfm/{process}", split="{split}", build={build}, storage={storage!r}, cache_dir={cache!r})
print("rows", ds.num_rows)
"""

#: a tqdm line of the build bar with a positive count, e.g. "build ttH_cp_odd:  3%| | 400/13000 [...]"
BAR = re.compile(r"build \S+:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+)")
#: the bar's first status (what the build does before events come: starting workers, in this process)
STATUS = re.compile(r"build \S+:.*(starting \d+ workers|in this process)")


def run_call(process: str, build: int | bool, cores: list[int]) -> dict:
    """Run the guard-free script in a fresh folder pinned to ``cores``; wall time and first progress time."""
    with tempfile.TemporaryDirectory(prefix="hepfm-card-") as tmp:
        split = "train[:10000]" if build is True else "train"
        script = Path(tmp) / "card.py"
        script.write_text(SCRIPT.format(process=process, split=split, build=build, storage=f"{tmp}/st",
                                        cache=f"{tmp}/cache"))
        first: list[float] = []
        status: list[float] = []
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=lambda: os.sched_setaffinity(0, cores), cwd=tmp)

        def watch():
            buf = b""
            while chunk := proc.stderr.read1(4096):
                buf = (buf + chunk)[-4096:]
                if not status and STATUS.search(buf.decode(errors="replace")):
                    status.append(time.perf_counter() - t0)
                if not first:
                    for m in BAR.finditer(buf.decode(errors="replace")):
                        if int(m.group(1)) > 0:
                            first.append(time.perf_counter() - t0)
                            break

        reader = threading.Thread(target=watch, daemon=True)
        reader.start()
        out = proc.stdout.read().decode()
        proc.wait()
        wall = time.perf_counter() - t0
        reader.join(timeout=5)
        if proc.returncode != 0 or "rows" not in out:
            raise SystemExit(f"{process} on cores {cores} failed (rc {proc.returncode}): {out[-2000:]}")
        n = 13_000 if build is True else int(build)
        return {"wall": wall, "first": first[0] if first else float("nan"), "rate": n / wall,
                "status": status[0] if status else float("nan")}


GEN = """\
import sys, time
from hepfm_data.readers.generation import generate
generate("ttH_cp_even", 50, 99)  # Pythia, Numba and the ME code warm
t = time.perf_counter()
generate("ttH_cp_even", {n}, int(sys.argv[1]))
print(time.perf_counter() - t)
"""


def ceiling(n: int, cores: list[int]) -> tuple[float, float]:
    """(events/s of one generating process alone on one core, summed events/s of one per core at once)."""
    def start(core: int, seed: int):
        return subprocess.Popen([sys.executable, "-c", GEN.format(n=n), str(seed)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, preexec_fn=lambda: os.sched_setaffinity(0, [core]))

    alone = float(start(cores[0], 1).communicate()[0])
    procs = [start(c, 2 + i) for i, c in enumerate(cores)]
    together = [float(p.communicate()[0]) for p in procs]
    return n / alone, sum(n / t for t in together)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", type=int, default=None, help="events to generate (default: build=True, 13,000)")
    ap.add_argument("--cores", type=int, nargs="+", default=[len(os.sched_getaffinity(0)), 1])
    ap.add_argument("--processes", nargs="*", default=["ttH_cp_even", "ttH_cp_odd"])
    ap.add_argument("--ceiling", type=int, default=1000, help="events per process of the ceiling measurement")
    args = ap.parse_args()
    build = True if args.build is None else args.build
    mine = sorted(os.sched_getaffinity(0))
    print(f"machine: {os.cpu_count()} cores ({len(mine)} usable), python {sys.version.split()[0]}; "
          f"build={build}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    if args.ceiling and len(mine) > 1:
        one, all_ = ceiling(args.ceiling, mine)
        print(f"ceiling: ttH_cp_even generation {one:.1f} events/s alone on one core, {all_:.1f} events/s with one "
              f"process on each of {len(mine)} cores: at most {all_ / one:.2f}x from {len(mine)} cores", flush=True)
    res = {}
    for k in args.cores:
        for p in args.processes:
            r = res[p, k] = run_call(p, build, mine[:k])
            print(f"{p:12s} {k} core(s): {r['wall']:7.1f} s wall, first status after {r['status']:4.1f} s, first "
                  f"event count after {r['first']:5.1f} s, {r['rate']:6.1f} events/s", flush=True)
    for k in args.cores:
        if ("ttH_cp_odd", k) in res and ("ttH_cp_even", k) in res:
            print(f"{k} core(s): ttH_cp_odd / ttH_cp_even wall time = "
                  f"{res['ttH_cp_odd', k]['wall'] / res['ttH_cp_even', k]['wall']:.2f} (goal <= 1.5)")
    if len(args.cores) > 1:
        hi, lo = max(args.cores), min(args.cores)
        for p in args.processes:
            print(f"{p}: {hi} cores vs {lo}: {res[p, lo]['wall'] / res[p, hi]['wall']:.2f}x faster (goal >= 1.8)")


if __name__ == "__main__":
    main()
