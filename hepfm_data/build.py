"""The one build path: an event source -> a store, one Dask task per unit of work.

>>> from hepfm_data.build import build_store                          # doctest: +SKIP
>>> from hepfm_data.inputs.delphes import DelphesFiles                # doctest: +SKIP
>>> build_store(DelphesFiles("ttH", "s3://bucket/ttH/*.root"), "stores", workers=8)  # doctest: +SKIP

Every unit (``hepfm_data.inputs``: an entry range of a file, consecutive generation blocks) is a
task that reads its events, runs the kernels (``kernels.process_block``, with the
catalog read once here and passed down) and writes complete shards named by the unit
index (``store.writer.UnitWriter``); the driver writes the manifest last. A re-run
resumes from the finished units; the same inputs give the same store bytes whatever
the number of workers; a killed worker's unit is re-run by Dask (its writes are
idempotent) and a killed driver's finished units are kept.

Where tasks run (``scheduler``): ``None`` -> in this process when there is a single
unit, or when worker processes cannot be started safely (a plain script calling the
build at top level, without ``if __name__ == "__main__":``: spawned processes would
re-run it), else a ``LocalCluster`` of ``workers`` processes (default: all cores);
``"sync"`` -> always in this process; an address (``tcp://...``) -> that Dask cluster
(e.g. ``dask_jobqueue.SLURMCluster(...).scheduler_address``).
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .catalog import Catalog, load_catalog
from .errors import HepfmError, StoreError, require
from .events import SampleInfo, validate_events
from .inputs import EventSource, RecordBlocks, Unit
from .representations import PAPER, paper_columns
from .store import DEFAULT_EVENTS_PER_SHARD, StoreBuild, UnitWriter

if TYPE_CHECKING:  # pragma: no cover
    from .store import Store

__all__ = ["build_store", "write_store", "columns", "processes_are_safe"]


#: the paper graph's columns of an event record (``representations.paper_columns``)
columns = paper_columns


def run_unit(source: EventSource, unit: Unit, writer: UnitWriter, catalog: Catalog, on_events=None
             ) -> dict[str, Any]:
    """One task: read ``unit``, run the kernels, write its shards and marker; returns the marker.

    A data error is re-raised with the unit's index and key (file and entry range) in front.
    """
    where = f"{source.process} unit {unit.index} ({unit.key})"
    label, seed = writer.params["label"], writer.params["seed"]
    try:
        for i, (events, info) in enumerate(source.read(unit)):
            events = validate_events(events, where=f"{where} block {i}")
            writer.add(columns(events, label, catalog, seed), info,
                       record=events if writer.params.get("record") else None)
            if on_events is not None:
                on_events(len(events))
        return writer.finish(unit.key, unit.spec)
    except HepfmError as exc:
        if where in str(exc):
            raise
        try:
            new = type(exc)(f"{where}: {exc}")
        except TypeError:
            new = HepfmError(f"{where}: {exc}")
        raise new from None
    except Exception as exc:
        exc.add_note(f"while building {where}")
        raise


def processes_are_safe() -> bool:
    """Whether spawned worker processes will not re-run the caller's top-level code.

    Safe: an interactive session, a notebook, ``python -c`` (no main file), or a call
    made under ``if __name__ == "__main__":`` of the main script (or after its top
    level finished). Unsafe: ``python -`` (spawned children cannot re-import stdin), or a
    main script (or ``python -m`` module) whose top-level code is running the build
    right now outside such a guard.
    """
    import ast
    import multiprocessing

    if multiprocessing.parent_process() is not None:  # we are a worker ourselves
        return False
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None:  # REPL, notebook, python -c: spawned children import nothing of it
        return True
    if not os.path.isfile(path):  # python - ("<stdin>"): spawned children cannot re-import it
        return False
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:  # the main module's top level is not on the stack
        return True
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    line = frame.f_lineno
    for node in tree.body:
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"
                and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in node.test.comparators)):
            if node.body[0].lineno <= line <= (node.body[-1].end_lineno or line):
                return True
    return False


def _progress(enabled: bool, process: str, total: int | None, initial: int):
    from tqdm.auto import tqdm

    return tqdm(desc=f"build {process}", unit=" ev", total=total, initial=initial, disable=not enabled,
                dynamic_ncols=True, smoothing=0.1)


def _run_in_process(source, todo, build, catalog, bar) -> list[dict[str, Any]]:
    return [run_unit(source, u, build.unit_writer(u.index), catalog, on_events=bar.update) for u in todo]


def _same(value: Any) -> Any:
    return value


def _run_on_dask(source, todo, build, catalog, bar, scheduler: str | None, workers: int | None):
    distributed = require("dask.distributed", "gen", "parallel builds")
    if scheduler:
        client, cluster = distributed.Client(scheduler), None
    else:
        n = max(1, min(workers or os.cpu_count() or 1, len(todo)))
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", silence_logs=logging.ERROR)
        client = distributed.Client(cluster)
    markers = []
    try:
        n_running = len(client.scheduler_info().get("workers", {})) or (workers or os.cpu_count() or 1)
        token = uuid.uuid4().hex[:12]
        # the catalog is a computed task, not scattered data: when the worker holding it dies, the
        # scheduler re-runs the task from its spec (scattered data would be lost with the worker)
        cat = client.submit(_same, catalog, pure=False, key=f"hepfm-catalog-{token}")
        pending = iter(todo)
        unit_of = {}

        def submit(u: Unit):
            fut = client.submit(run_unit, source, u, build.unit_writer(u.index), cat, pure=False,
                                key=f"hepfm-build-{source.process}-{u.index}-{token}")
            unit_of[fut] = u
            return fut

        # bounded submission: a few units per worker in flight (10^5 units cost no scheduler memory)
        queue = distributed.as_completed([submit(u) for u in itertools.islice(pending, max(4, 2 * n_running))])
        for fut in queue:
            unit_of.pop(fut)
            markers.append(fut.result())  # re-raises the unit's error, naming it
            bar.update(markers[-1]["n_events"])
            nxt = next(pending, None)
            if nxt is not None:
                queue.add(submit(nxt))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return markers


def build_store(source: EventSource, root: str, *, catalog: Catalog | None = None, layout: str = "zarr",
                events_per_shard: int = DEFAULT_EVENTS_PER_SHARD, split_salt: str = "hepfm-v1",
                fractions=(0.8, 0.1, 0.1), seed: int = 0, storage_options: dict[str, Any] | None = None,
                compression: dict[str, Any] | None = None, mode: str = "create", label: int | None = None,
                scheduler: str | None = None, workers: int | None = None, progress: bool = True,
                record: bool = True, record_codecs: bool = True) -> Store:
    """Build ``<root>/<source.process>`` from an event source; returns the :class:`~hepfm_data.store.Store`.

    ``catalog``: read once here (default: the packaged catalog) and passed to every task.
    ``mode``: "create" (resumes an interrupted build; refuses a complete store), "append"
    (adds shards; same layout/split/seed required) or "overwrite". ``seed`` keys the b-tag
    random numbers; ``label`` defaults to the catalog index of the process. ``scheduler``
    / ``workers``: see the module docstring. Memory per task: one block plus one shard per split.
    Errors: a unit that fails (corrupt file, missing branch) raises naming its file and
    entry range; finished units stay and no manifest is written until every unit is done.
    ``record``: keep the full event record beside the paper graph (store format 2, the default;
    ``False`` writes the paper graph only, as format 1 did, for measurements).
    ``record_codecs``: store the record columns the paper shards already hold (event id, weight,
    MET, the selected objects' pt, η, φ) once, taken from them on read (format 3, the default);
    ``False`` stores every record column (format 2, for measurements and older readers).
    """
    cat = catalog or load_catalog()
    proc = cat.process(source.process)
    build = StoreBuild(root, proc.name, layout=layout, events_per_shard=events_per_shard, split_salt=split_salt,
                       fractions=fractions, seed=seed, label=proc.index if label is None else label,
                       compression=compression, mode=mode, storage_options=storage_options, record=record,
                       object_types=dict(cat.graph.object_types) if record_codecs else None)
    units = list(source.units())
    if sorted(u.index for u in units) != list(range(len(units))):
        raise HepfmError(f"{source.process}: event source units must be numbered 0..{len(units) - 1}")
    done = build.finished_units()
    for u in units:
        if u.index in done and done[u.index]["spec"] != u.spec:
            raise StoreError(f"{build.url}: unit {u.index} of the interrupted build was {done[u.index]['key']!r}, "
                             f"this run's is {u.key!r}; re-run with the same inputs, or pass overwrite")
    todo = [u for u in units if u.index not in done]
    sizes = [u.n_events for u in units]
    total = sum(sizes) if all(n is not None for n in sizes) else None
    bar = _progress(progress, proc.name, total, sum(done[u.index]["n_events"] for u in units if u.index in done))
    try:
        in_process = (scheduler == "sync" or (scheduler is None and (len(todo) <= 1 or workers == 1
                                                                      or not processes_are_safe())))
        if in_process:
            new = _run_in_process(source, todo, build, cat, bar)
        else:
            new = _run_on_dask(source, todo, build, cat, bar, scheduler, workers)
    finally:
        bar.close()
    markers = {**done, **{m["unit"]: m for m in new}}
    return build.commit([markers[u.index] for u in units], catalog=cat, event_id_rule=source.event_id_rule,
                        representations={PAPER.name: PAPER.entry(cat)})


def write_store(root: str, process: str, blocks: Iterable[tuple[Any, SampleInfo]], *, event_id_rule: str = "",
                **kwargs) -> Store:
    """Build ``<root>/<process>`` from an iterable of ``(event record, SampleInfo)`` blocks, in this process.

    The blocks are one unit (:class:`~hepfm_data.inputs.RecordBlocks`), so shards span
    blocks; every keyword of :func:`build_store` applies (``scheduler`` is "sync").
    """
    kwargs.pop("scheduler", None)
    kwargs.pop("workers", None)
    return build_store(RecordBlocks(process, blocks, event_id_rule), root, scheduler="sync", **kwargs)
