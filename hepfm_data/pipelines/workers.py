"""Worker processes of builds, generation and derivation: one Dask client, safe from any caller.

``dask_client(workers=k)`` starts a local cluster whose scheduler and workers are separate
programs (``python -m dask spec``, distributed's ``SubprocessCluster``), not children forked or
spawned from the caller: they never re-import the caller's ``__main__``. So a plain script without
``if __name__ == "__main__":``, a notebook, ``python -c`` and ``python -`` all get every core
(spawned workers would re-run an unguarded script's top level, or could not re-import stdin).
The workers see the caller's ``sys.path`` (as spawned ones would) and log errors only; each runs
under a nanny, so a killed worker is restarted and its task re-run; scheduler, nannies and workers
die with the process that started them (``_orphan_guard``), even when it is killed. ``scheduler="tcp://..."``
uses an existing cluster instead (e.g. ``dask_jobqueue.SLURMCluster(...).scheduler_address``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hepfm_data.core.config import environment
from hepfm_data.core.errors import require

__all__ = ["dask_client", "count_workers", "available_cores", "die_with_parent"]

#: environment of the worker programs: the caller's import path, quiet logs
_QUIET = {"DASK_LOGGING__DISTRIBUTED": "error"}


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (Linux; a no-op elsewhere): the initializer
    of process pools a study starts (``ProcessPoolExecutor(initializer=die_with_parent)``), so that a killed
    driver does not leave its pool training. The same guard as the Dask worker programs'."""
    from hepfm_data.pipelines._orphan_guard import dask_setup

    dask_setup()


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity: ``taskset``, cgroups, a batch slot), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None, *, what: str = "parallel work"
                ) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler`` if given, else to ``workers`` local worker
    programs (default: :func:`available_cores`), closed (cluster included) on exit. ``what`` names the job in
    the install hint when Dask is missing."""
    distributed = require("dask.distributed", "gen", what)
    if scheduler:
        client = distributed.Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    from distributed.deploy.subprocess import SubprocessCluster

    path = os.pathsep.join(p for p in [os.getcwd(), *sys.path] if p)
    guard = [str(Path(__file__).with_name("_orphan_guard.py"))]  # die with this process, even when killed
    with environment({**_QUIET, "PYTHONPATH": path, "HEPFM_DRIVER_PID": str(os.getpid())}):
        cluster = SubprocessCluster(n_workers=max(1, int(workers or available_cores())), threads_per_worker=1,
                                    dashboard_address=None, silence_logs=logging.ERROR,
                                    scheduler_kwargs={"preload": guard},
                                    worker_kwargs={"preload": guard, "preload_nanny": guard})
    try:
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def count_workers(client: Any, default: int | None = None) -> int:
    """Number of workers the client's scheduler knows now (``default`` or all cores when none yet)."""
    return len(client.scheduler_info().get("workers", {})) or (default or available_cores())
