"""Reader benchmark: events/s of the Delphes, CMS NanoAOD and ATLAS PHYSLITE readers vs plain
uproot reading the same branches, in the same run.

Inputs: each real test file (tests/data/) with the branches its reader reads, its events
repeated to about ``--events`` events and written with uproot in baskets of 5000 events
(PHYSLITE copies lack the b-tagging ElementLink branch, which uproot cannot write; the
real-file rows include it). For each input: best of ``--repeat`` runs of (a) plain
``uproot`` ``TTree.iterate`` over the branches (the baseline: decompression +
deserialisation) and (b) the reader (baseline + mapping to the event record: units,
b-tag, truth, MET rebuild). Printed: events/s of both and the reader / baseline ratio;
the real 40- and 100-event files too (file opening dominates there).

    python -m benchmarks.readers [--events 50000] [--repeat 3] [--workdir /tmp/hepfm-bench-readers]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import uproot

from hepfm_data.readers import delphes, nanoaod, physlite
from hepfm_data.testing import DELPHES_FILE, NANOAOD_FILE, PHYSLITE_FILE, write_modified_copy


def _branches(fmt: str, path: Path) -> list[str]:
    if fmt == "delphes":
        f = uproot.open(path)
        _, has_w, opt = delphes._tree(f, str(path))
        return ([b for _, m in delphes.COLLECTIONS.values() for b in m.values()]
                + ([delphes.WEIGHT_BRANCH] if has_w else []) + sorted(set(opt.values())))
    mod = nanoaod if fmt == "nanoaod" else physlite
    return mod._Plan(uproot.open(path)[mod.TREE], str(path)).branches


READ = {"delphes": (delphes.TREE, delphes.read_delphes, "."), "nanoaod": (nanoaod.TREE, nanoaod.read_nanoaod, "_"),
        "physlite": (physlite.TREE, physlite.read_physlite, ".")}


def _best(fn, repeat: int) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - t0)
    return best, n


def measure(fmt: str, path: Path, step: int, repeat: int) -> dict:
    tree_name, read, _ = READ[fmt]
    branches = _branches(fmt, path)

    def baseline() -> int:
        with uproot.open(path) as f:
            return sum(len(a) for a in f[tree_name].iterate(branches, step_size=step, library="ak"))

    def reader() -> int:
        return sum(len(b) for b in read(str(path), step_size=step))

    t_base, n = _best(baseline, repeat)
    t_read, n2 = _best(reader, repeat)
    assert n == n2
    return {"format": fmt, "input": path.name, "events": n, "uproot_ev_s": n / t_base, "reader_ev_s": n / t_read,
            "ratio": t_base / t_read}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--step", type=int, default=10_000)
    p.add_argument("--workdir", default="/tmp/hepfm-bench-readers")
    args = p.parse_args(argv)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for fmt, real in (("delphes", DELPHES_FILE), ("nanoaod", NANOAOD_FILE), ("physlite", PHYSLITE_FILE)):
        rows.append(measure(fmt, real, args.step, args.repeat))
        tree_name, _, sep = READ[fmt]
        n_real = uproot.open(real)[tree_name].num_entries
        big = work / f"{fmt}-x{args.events // n_real}.root"
        if not big.exists():
            branches = [b for b in _branches(fmt, real) if "/" not in b]
            write_modified_copy(real, big, tree_name, branches, sep=sep, repeat=max(1, args.events // n_real))
        rows.append(measure(fmt, big, args.step, args.repeat))
    print(f"{'format':<9} {'input':<36} {'events':>7} {'uproot ev/s':>12} {'reader ev/s':>12} {'reader/uproot':>13}")
    for r in rows:
        print(f"{r['format']:<9} {r['input']:<36} {r['events']:>7} {r['uproot_ev_s']:>12.0f} {r['reader_ev_s']:>12.0f} "
              f"{r['ratio']:>13.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
