"""Cost of the integrity checks on shard reads (issue 17), same run, same events.

    python benchmarks/checksums.py [--events 200000] [--events-per-shard 25000] [--repeat 3]

Writes one store per layout from synthetic events, then reads every shard in 32,768-event
blocks through :class:`hepfm_data.store.Store` (what the loader does) and reports events/s for:

* Zarr with a crc32c per inner chunk (the format hepfm writes) vs the same store rewritten
  without it (the format before): ratio = checked / unchecked;
* Parquet with page CRC32 written and verified vs without;
* a remote store's shards read through the one shard cache (``RemoteShards``, warm: entries
  already verified, so each read = flock + local read) vs the local Store read directly.

Best of ``--repeat`` passes per contender, alternating, so a busy machine affects both alike.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

BLOCK = 32_768


def _rate(read_all, n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        read_all()
        best = min(best, time.perf_counter() - t)
    return n / best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--events-per-shard", type=int, default=25_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    from hepfm_data.core.events import SampleInfo
    from hepfm_data.pipelines.build import write_store
    from hepfm_data.store import layouts, open_store
    from hepfm_data.store.cache import RemoteShards
    from hepfm_data.testing import synthetic_events

    work = Path(tempfile.mkdtemp(prefix="hepfm-bench-"))
    try:
        events = synthetic_events(args.events, seed=1)
        info = SampleInfo(process="ttH", source="synthetic")
        checked = {}
        for layout in ("zarr", "parquet"):
            checked[layout] = write_store(str(work / layout / "on"), "ttH", [(events, info)], layout=layout,
                                          events_per_shard=args.events_per_shard, progress=False)
        # the same stores without the checks, written by the previous writers
        plain_zarr = layouts._zarr_compressors
        def without_crc(compression):
            with_crc = plain_zarr(compression)
            return lambda dtype: with_crc(dtype)[:-1]  # drop the trailing Crc32cCodec

        layouts._zarr_compressors = without_crc
        import pyarrow.parquet as pq

        orig = pq.write_table
        pq.write_table = lambda *a, **k: orig(*a, **{**k, "write_page_checksum": False})
        try:
            unchecked = {layout: write_store(str(work / layout / "off"), "ttH", [(events, info)], layout=layout,
                                             events_per_shard=args.events_per_shard, progress=False)
                         for layout in ("zarr", "parquet")}
        finally:
            layouts._zarr_compressors, pq.write_table = plain_zarr, orig

        def reader(store, read=None):
            read = read or (lambda i, a, b: store.read_columns(i, a, b))

            def run():
                for i in store.shards():
                    for a in range(0, i.n_events, BLOCK):
                        read(i, a, min(a + BLOCK, i.n_events))
            return run

        n = sum(i.n_events for i in checked["zarr"].shards())
        print(f"{n:,} events in {len(checked['zarr'].shards())} shards per store, blocks of {BLOCK:,}")
        print(f"{'contender':44s} {'events/s':>12s} {'baseline ev/s':>14s} {'ratio':>6s}")
        for layout, label in (("zarr", "Zarr crc32c per chunk"), ("parquet", "Parquet page CRC32")):
            on, off = reader(open_store(checked[layout].url)), reader(open_store(unchecked[layout].url))
            on(), off()  # warm-up (handles, page cache)
            r_on, r_off = [], []
            for _ in range(args.repeat):
                r_on.append(_rate(on, n, 1))
                r_off.append(_rate(off, n, 1))
            print(f"{label:44s} {max(r_on):12,.0f} {max(r_off):14,.0f} {max(r_on) / max(r_off):6.2f}")
        # the shard cache on a warm entry (a LocalFileSystem store stands in for the remote one)
        store = open_store(checked["zarr"].url)
        shards = RemoteShards(work / "cache", max_bytes=1 << 34)
        cached = reader(store, lambda i, a, b: shards.read(store, i, a, b))
        direct = reader(store, lambda i, a, b: store.read_shard(i, a, b))
        cached(), direct()
        r_c, r_d = [], []
        for _ in range(args.repeat):
            r_c.append(_rate(cached, n, 1))
            r_d.append(_rate(direct, n, 1))
        print(f"{'Zarr via the shard cache (warm) vs direct':44s} {max(r_c):12,.0f} {max(r_d):14,.0f} "
              f"{max(r_c) / max(r_d):6.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
