"""The one build path: an event source -> a store, one Dask task per unit of work.

>>> from hepfm_data.pipelines.build import build_store                          # doctest: +SKIP
>>> from hepfm_data.inputs.delphes import DelphesFiles                # doctest: +SKIP
>>> build_store(DelphesFiles("ttH", "s3://bucket/ttH/*.root"), "stores", workers=8)  # doctest: +SKIP

Every unit (``hepfm_data.inputs``: an entry range of a file, consecutive generation blocks) is a
task that reads its events, runs the kernels (``kernels.process_block``, with the
catalog read once here and passed down) and writes complete shards named by the unit
index (``store.writer.UnitWriter``); the driver writes the manifest last. A re-run
resumes from the finished units; the same inputs give the same store bytes whatever
the number of workers; a killed worker's unit is re-run by Dask (its writes are
idempotent) and a killed driver's finished units are kept.

Where tasks run (``scheduler``): ``None`` -> in this process when there is a single block to
read, or one worker; else ``workers`` local worker programs (default: the cores this process may
use, :func:`~hepfm_data.pipelines.workers.available_cores`;
:mod:`hepfm_data.pipelines.workers`: safe from a plain script without a ``__main__`` guard, a notebook or
``python -``); ``"sync"`` -> always in this process; an address (``tcp://...``) -> that Dask
cluster (e.g. ``dask_jobqueue.SLURMCluster(...).scheduler_address``). A unit made of several
independent blocks (generation: :class:`~hepfm_data.inputs.BlockSource`) is read by one task
per block and written in block order by the calling process as the blocks arrive: a one-unit
build uses every core, and the store bytes do not depend on it. Progress: events as they are produced (generation reports
every few hundred events from the workers), with rate and ETA.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hepfm_data.core.catalog import Catalog, load_catalog
from hepfm_data.core.errors import HepfmError, StoreError, require
from hepfm_data.core.events import SampleInfo, validate_events
from hepfm_data.inputs import BlockSource, EventSource, RecordBlocks, Unit
from hepfm_data.pipelines.workers import available_cores, count_workers, dask_client
from hepfm_data.representations.columns import paper_columns
from hepfm_data.store import DEFAULT_EVENTS_PER_SHARD, StoreBuild, UnitWriter

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.store import Store

__all__ = ["build_store", "write_store", "columns", "run_unit", "read_block"]


#: the paper graph's columns of an event record (``representations.paper.paper_columns``)
columns = paper_columns


@contextlib.contextmanager
def _naming(source: EventSource, unit: Unit):
    """Re-raise a data error with the unit's index and key (file and entry range) in front."""
    where = f"{source.process} unit {unit.index} ({unit.key})"
    try:
        yield where
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


def _block_columns(events, info, where: str, writer: UnitWriter, catalog: Catalog) -> tuple:
    """(paper columns, SampleInfo, record or None) of one validated block: what ``UnitWriter.add`` takes."""
    events = validate_events(events, where=where)
    params = writer.params
    return (columns(events, params["label"], catalog, params["seed"]), info,
            events if params.get("record") else None)


def _blocks(source: EventSource, unit: Unit) -> int:
    """Independently readable blocks of ``unit`` (:class:`~hepfm_data.inputs.BlockSource`), else 1."""
    return source.blocks(unit) if isinstance(source, BlockSource) else 1


def _worker_progress(topic: str | None, unit: Unit) -> Callable[[int], None] | None:
    """In a Dask task: a callback sending event counts of ``unit`` to the driver's bar (topic ``topic``)."""
    if topic is None:
        return None
    from distributed import get_worker

    worker = get_worker()
    return lambda n: worker.log_event(topic, (unit.index, int(n)))


def run_unit(source: EventSource, unit: Unit, writer: UnitWriter, catalog: Catalog,
             on_events: Callable[[int], None] | None = None, topic: str | None = None) -> dict[str, Any]:
    """One task: read ``unit`` block by block, run the kernels, write its shards and marker; returns the marker.

    ``on_events(n)`` (in this process) or the Dask topic ``topic`` (in a worker) receives event
    counts as they are produced: within a block for a :class:`~hepfm_data.inputs.BlockSource`
    (generation reports every few seconds), per block otherwise.
    """
    on_events = on_events or _worker_progress(topic, unit)
    with _naming(source, unit) as where:
        if isinstance(source, BlockSource):
            for j in range(source.blocks(unit)):
                writer.add(*_block_columns(*source.read_block(unit, j, on_events), f"{where} block {j}",
                                           writer, catalog))
        else:
            for i, (events, info) in enumerate(source.read(unit)):
                writer.add(*_block_columns(events, info, f"{where} block {i}", writer, catalog))
                if on_events is not None:
                    on_events(len(events))
        return writer.finish(unit.key, unit.spec)


def read_block(source: BlockSource, unit: Unit, j: int, writer: UnitWriter, catalog: Catalog,
               topic: str | None = None) -> tuple:
    """One task: block ``j`` of ``unit`` read and through the kernels (``UnitWriter.add``'s arguments)."""
    with _naming(source, unit) as where:
        return _block_columns(*source.read_block(unit, j, _worker_progress(topic, unit)), f"{where} block {j}",
                              writer, catalog)


def _progress(enabled: bool, process: str, total: int | None, initial: int):
    from tqdm.auto import tqdm

    return tqdm(desc=f"build {process}", unit=" ev", total=total, initial=initial, disable=not enabled,
                dynamic_ncols=True, smoothing=0.1, mininterval=0.5)


def _run_in_process(source, todo, build, catalog, bar) -> list[dict[str, Any]]:
    return [run_unit(source, u, build.unit_writer(u.index), catalog, on_events=bar.update) for u in todo]


def _same(value: Any) -> Any:
    return value


def _import_for_commit() -> None:
    """Import what the driver needs after the workers finish (the ``paper`` representation and the registry,
    which bring torch): run in a thread while the driver waits on the workers, it leaves the serial tail."""
    import importlib

    for module in ("hepfm_data.representations.paper", "hepfm_data.representations.registry"):
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - a warm-up: the import at commit raises the error where it belongs
            return


class _UnitCounts:
    """The driver's bar fed by worker progress messages; a finished unit's count is set to its marker's."""

    def __init__(self, bar):
        self.bar, self.lock = bar, threading.Lock()
        self.counted: dict[int, int] = {}
        self.finished: set[int] = set()

    def message(self, event) -> None:
        unit, n = event[1]
        with self.lock:
            if unit not in self.finished:
                self.counted[unit] = self.counted.get(unit, 0) + n
                self.bar.update(n)

    def finish(self, unit: int, n_events: int) -> None:
        with self.lock:
            self.finished.add(unit)
            self.bar.update(n_events - self.counted.pop(unit, 0))


def _run_on_dask(source, todo, build, catalog, bar, scheduler: str | None, workers: int | None):
    """Every unit on Dask: a unit of one block is one task (read + kernels + writes); a unit of several
    blocks is one task per block (read + kernels), their results written in order by this process as
    they arrive (writes overlap generation; a unit's shards and marker are complete when its last
    block is written)."""
    distributed = require("dask.distributed", "gen", "parallel builds")
    markers = []
    n_tasks = sum(_blocks(source, u) for u in todo)
    n_start = min(workers or available_cores(), n_tasks)
    bar.set_postfix_str(f"connecting to {scheduler}" if scheduler else f"starting {n_start} workers", refresh=True)
    with dask_client(scheduler, n_start, what="parallel builds") as client:
        n_running = count_workers(client, workers)
        bar.set_postfix_str(f"{n_running} workers, {n_tasks} tasks", refresh=True)
        token = uuid.uuid4().hex[:12]
        topic = f"hepfm-build-{token}"
        counts = _UnitCounts(bar)
        client.subscribe_topic(topic, counts.message)
        # the catalog is a computed task, not scattered data: when the worker holding it dies, the
        # scheduler re-runs the task from its spec (scattered data would be lost with the worker)
        cat = client.submit(_same, catalog, pure=False, key=f"hepfm-catalog-{token}")
        pending = iter(todo)
        in_flight: dict[Any, tuple[Unit, int | None]] = {}  # future -> (unit, block index | None: whole unit)
        writing: dict[int, dict[str, Any]] = {}  # unit index -> its writer, next block to write, blocks ready

        def submit(u: Unit) -> list:
            writer, name = build.unit_writer(u.index), f"{source.process}-{u.index}-{token}"
            n_blocks = _blocks(source, u)
            if n_blocks == 1:
                fut = client.submit(run_unit, source, u, writer, cat, None, topic, pure=False,
                                    key=f"hepfm-build-{name}")
                in_flight[fut] = (u, None)
                return [fut]
            writing[u.index] = {"writer": writer, "n": n_blocks, "next": 0, "ready": {}}
            futs = [client.submit(read_block, source, u, j, writer, cat, topic, pure=False,
                                  key=f"hepfm-block-{name}-{j}") for j in range(n_blocks)]
            in_flight.update({f: (u, j) for j, f in enumerate(futs)})
            return futs

        def finished(u: Unit, marker: dict[str, Any]) -> None:
            markers.append(marker)
            counts.finish(u.index, marker["n_events"])

        # bounded submission: about two blocks per worker in flight (10^5 units cost no scheduler memory)
        first: list = []
        for u in pending:
            first += submit(u)
            if len(in_flight) >= 2 * n_running:
                break
        queue = distributed.as_completed(first)
        threading.Thread(target=_import_for_commit, name="hepfm-import-for-commit", daemon=True).start()
        for fut in queue:
            u, j = in_flight.pop(fut)
            result = fut.result()  # re-raises the unit's (block's) error, naming it
            if j is None:
                finished(u, result)
            else:
                w = writing[u.index]
                w["ready"][j] = result
                with _naming(source, u):
                    while w["next"] in w["ready"]:
                        w["writer"].add(*w["ready"].pop(w["next"]))
                        w["next"] += 1
                    if w["next"] == w["n"]:
                        finished(u, writing.pop(u.index)["writer"].finish(u.key, u.spec))
            while len(in_flight) < 2 * n_running:
                nxt = next(pending, None)
                if nxt is None:
                    break
                for f in submit(nxt):
                    queue.add(f)
        client.unsubscribe_topic(topic)
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
        in_process = scheduler == "sync" or (scheduler is None and ((workers or available_cores()) == 1 or
                                                                   sum(_blocks(source, u) for u in todo) <= 1))
        if in_process:
            bar.set_postfix_str("in this process", refresh=True)
            new = _run_in_process(source, todo, build, cat, bar)
        else:
            new = _run_on_dask(source, todo, build, cat, bar, scheduler, workers)
    finally:
        bar.close()
    markers = {**done, **{m["unit"]: m for m in new}}
    from hepfm_data.representations.paper import PAPER  # the graph representation (imports torch): driver only

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
