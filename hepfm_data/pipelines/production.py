"""Parallel event production on Dask: one task per (process, seed block).

``produce(process, n_events, seed, workdir)`` splits the request into blocks of
``block_size`` events. Each block is a generation block
(:mod:`hepfm_data.readers.generation.blocks`: own Pythia seed, event ids, written atomically with a
JSON sidecar written last); a re-run skips complete blocks, so an
interrupted production resumes where it stopped. Same (process, n_events,
seed, block_size) -> same bytes, whatever the number of workers.

Workers: :func:`hepfm_data.pipelines.workers.dask_client` (local worker programs, one thread each;
``n_workers`` defaults to the number of cores; safe without a ``__main__`` guard) or an existing
scheduler address, e.g. a dask-jobqueue ``SLURMCluster(...).scheduler_address``.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

from hepfm_data.core.catalog import Catalog, Process
from hepfm_data.core.errors import require
from hepfm_data.pipelines.workers import available_cores, count_workers, dask_client
from hepfm_data.readers.generation.blocks import block_complete, block_paths, run_block


def produce(process: str | Process, n_events: int, seed: int, workdir: str | os.PathLike, block_size: int = 500,
            scheduler: str | None = None, n_workers: int | None = None, progress: bool = True, *,
            lhe: str | os.PathLike | None = None, catalog: Catalog | None = None,
            keep_hard_process: bool = False) -> list[Path]:
    """Generate ``n_events`` of ``process`` in Dask tasks of ``block_size``; returns the block Parquet paths.
    ``scheduler``: None (local worker programs, :func:`~hepfm_data.pipelines.workers.dask_client`), a
    scheduler address, or ``"sync"`` (in this process, block by block).

    ``keep_hard_process``: keep every event's hard process in its record (re-simulation, hepfm_data.pipelines.resimulate).

    Input errors (unknown process, rejected setting, missing LHE/SLHA, external-only
    process) are raised here, before any worker starts.
    """
    from hepfm_data.readers.generation.pythia import check_count, check_seed, check_settings, make_pythia, resolve_process

    proc = resolve_process(process, catalog)
    check_seed(seed)
    check_count("n_events", n_events)
    check_count("block_size", block_size)
    workdir = Path(workdir)
    lhe_path = str(Path(lhe).expanduser().resolve()) if lhe is not None else None
    with tempfile.TemporaryDirectory() as tmp:  # inputs and settings are checked before any worker starts
        settings = check_settings(proc, seed, lhe=lhe_path, workdir=tmp)
        n_blocks = -(-n_events // block_size)
        sizes = [min(block_size, n_events - i * block_size) for i in range(n_blocks)]
        paths = [block_paths(workdir, proc.name, i)[0] for i in range(n_blocks)]
        todo = [i for i in range(n_blocks)
                if not block_complete(proc, seed, i, sizes[i], block_size, workdir, lhe_path, keep_hard_process,
                                      sample_events=n_events)]
        if not todo:
            return paths
        make_pythia(settings, f"process {proc.name!r}")
    (workdir / proc.name).mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    with tqdm(total=sum(sizes), initial=sum(sizes) - sum(sizes[i] for i in todo), desc=f"produce {proc.name}",
              unit="ev", disable=not progress) as bar:
        if scheduler == "sync":  # in this process, block by block (tests, notebooks, debugging)
            for i in todo:
                run_block(proc, seed, i, sizes[i], block_size, str(workdir), lhe_path, keep_hard_process,
                          progress=bar.update, sample_events=n_events)
            return paths
        distributed = require("dask.distributed", "gen", "parallel event production")
        with dask_client(scheduler, min(n_workers or available_cores(), len(todo)),
                         what="parallel event production") as client:
            # bounded submission: a few tasks per worker in flight, so 10^5 blocks cost no scheduler memory
            n_running = count_workers(client, n_workers)
            pending = iter(todo)
            block_of = {}  # future -> block index

            def submit(i: int):
                fut = client.submit(run_block, proc, seed, i, sizes[i], block_size, str(workdir), lhe_path,
                                    keep_hard_process, sample_events=n_events,
                                    key=f"hepfm-{proc.name}-{seed}-{block_size}-{i}", pure=False)
                block_of[fut] = i
                return fut

            queue = distributed.as_completed([submit(i) for i in itertools.islice(pending, max(8, 4 * n_running))])
            for fut in queue:
                fut.result()  # re-raises a block's error here
                done = block_of.pop(fut)
                nxt = next(pending, None)
                if nxt is not None:
                    queue.add(submit(nxt))
                bar.update(sizes[done])
    return paths
