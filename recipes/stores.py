"""What every study recipe does with its generated stores and stages: one helper per job.

* :class:`LazyDask`: one set of local Dask workers for every store a stage builds, started only when a build is
  needed (a re-run with every store present starts none);
* :func:`store_present` / :func:`build_generated`: is a store there; build one from Pythia 8 through
  ``build_store`` (the one build path), returning its wall time;
* :func:`run_study`: a study's command: its stages in order, each timed, then its report.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["LazyDask", "store_present", "build_generated", "run_study"]


class LazyDask:
    """``with LazyDask(workers, what) as dask: build(..., scheduler=dask.scheduler())``: ``workers`` local Dask
    workers (0 = every core) started at the first :meth:`scheduler` call and closed on exit; ``workers == 1``
    builds in this process (``"sync"``)."""

    def __init__(self, workers: int, what: str):
        self.workers, self.what = workers, what
        self._stack = contextlib.ExitStack()
        self._address: str | None = None

    def scheduler(self) -> str:
        if self.workers == 1:
            return "sync"
        if self._address is None:
            from hepfm_data.pipelines.workers import dask_client

            client = self._stack.enter_context(dask_client(workers=self.workers or None, what=self.what))
            self._address = client.scheduler.address
        return self._address

    def __enter__(self) -> LazyDask:
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()


def store_present(url: str) -> bool:
    """A complete store (its manifest opens) at ``url``."""
    from hepfm_data.core.errors import HepfmError
    from hepfm_data.store import open_store

    try:
        open_store(url)
    except (HepfmError, FileNotFoundError):
        return False
    return True


def build_generated(proc, events: int, seed: int, root: str, catalog, scheduler: str, *, block_size: int,
                    events_per_unit: int, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                    keep_hard_process: bool = False, progress: bool = True) -> float:
    """Generate ``events`` of catalog process ``proc`` with ``seed`` (Pythia 8 + the emulated detector) into
    ``<root>/<proc.name>`` (an interrupted build resumes); returns the wall time (s)."""
    from hepfm_data.inputs.generated import PythiaGeneration
    from hepfm_data.pipelines.build import build_store

    print(f"  building {proc.name} ({proc.fidelity}): {events:,} events, seed {seed}", flush=True)
    t0 = time.perf_counter()
    src = PythiaGeneration(proc, events, seed=seed, block_size=block_size, events_per_unit=events_per_unit,
                           keep_hard_process=keep_hard_process)
    build_store(src, root, catalog=catalog, seed=seed, fractions=tuple(fractions), scheduler=scheduler,
                progress=progress)
    return time.perf_counter() - t0


def run_study(name: str, cfg: Any, plan: Any, results: Any, stages: Sequence[tuple[str, Callable[..., Any]]],
              report_text: Callable[[], str], report_only: bool = False) -> dict[str, Any]:
    """A study's command: ``stage(cfg, plan, results, executed)`` for every (label, stage) in order (none with
    ``report_only``), each timed on one line, then ``report_text()`` written atomically to ``cfg.report``; returns
    {"executed": the keys the stages ran, "report": its path}."""
    from recipes.common import atomic_write

    executed: list[str] = []
    t_all = time.perf_counter()
    for label, stage in [] if report_only else stages:
        t0 = time.perf_counter()
        stage(cfg, plan, results, executed)
        print(f"[{label}] {time.perf_counter() - t0:.1f} s", flush=True)
    path = Path(cfg.report)
    text = report_text()
    atomic_write(path, lambda tmp: tmp.write_text(text))
    print(f"{name}: {len(executed)} run(s) executed in {time.perf_counter() - t_all:.1f} s; report {path}", flush=True)
    return {"executed": executed, "report": str(path)}
