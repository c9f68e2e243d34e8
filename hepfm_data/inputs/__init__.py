"""Event sources: what a store is built from (the input protocol of the build path).

An **event source** is a small picklable object with

* ``process``: the catalog process its events belong to;
* ``event_id_rule``: one sentence stating how ``event_id`` is formed (it goes into the
  manifest); ids must be unique within the source and should be unique across sources
  (a hash of the file name, or of (process, seed), in the high 32 bits);
* ``units() -> list[Unit]``: independent units of work (an input file, a range of
  entries of a file, consecutive generation blocks), in a fixed order; listing them may open
  file metadata but reads no events;
* ``read(unit) -> Iterator[(event record, SampleInfo)]``: the events of one unit,
  in blocks of bounded size. Same unit -> same events, in any process.

:func:`hepfm_data.pipelines.build.build_store` runs one task per unit (reader + kernels + shard
writes); shards are named and listed by unit index, so the store's bytes do not depend
on which worker ran which unit. A new reader (CMS NanoAOD, ATLAS PHYSLITE,
re-simulation) implements these four members and registers a factory under a format
name with :func:`register_source`; ``hepfm-data build --input ... --format NAME``
then builds from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from hepfm_data.core.errors import HepfmError

if TYPE_CHECKING:  # pragma: no cover
    import awkward as ak

    from hepfm_data.core.events import SampleInfo

__all__ = ["Unit", "EventSource", "BlockSource", "register_source", "open_source", "SOURCES", "RecordBlocks"]


@dataclass(frozen=True)
class Unit:
    """One independent unit of work of an event source.

    ``index``: position in the source's order (shards are named ``<split>-<index>-<j>``);
    ``key``: names the unit in errors and progress, e.g. ``"a.root entries [0, 100000)"``;
    ``spec``: JSON-serialisable parameters the source needs to read it (recorded in the
    unit's resume marker: a re-run with a different spec is refused);
    ``n_events``: expected number of events (progress bars), or None when unknown.
    """

    index: int
    key: str
    spec: dict[str, Any] = field(default_factory=dict)
    n_events: int | None = None


@runtime_checkable
class EventSource(Protocol):
    """The event-source protocol (see the module docstring)."""

    process: str
    event_id_rule: str

    def units(self) -> list[Unit]: ...

    def read(self, unit: Unit) -> Iterator[tuple[ak.Array, SampleInfo]]: ...


@runtime_checkable
class BlockSource(EventSource, Protocol):
    """An event source whose units are consecutive blocks that can be read independently (generation
    seed blocks). The build reads the blocks of one unit in parallel tasks and writes them in order,
    so a one-unit build uses every core; ``read(unit)`` is the blocks in turn.

    ``read_block(unit, j, progress)``: block ``j`` of ``unit``; ``progress(n)`` (optional) is called
    with event counts as they are produced (every few seconds), for progress bars.
    """

    def blocks(self, unit: Unit) -> int: ...

    def read_block(self, unit: Unit, j: int, progress: Callable[[int], None] | None = None
                   ) -> tuple[ak.Array, SampleInfo]: ...


#: format name -> factory(process, inputs, **options) -> EventSource
SOURCES: dict[str, Callable[..., EventSource]] = {}


def register_source(name: str) -> Callable:
    """Decorator: register an event-source factory under a format name (``--format NAME``)."""

    def deco(factory: Callable[..., EventSource]) -> Callable[..., EventSource]:
        SOURCES[name] = factory
        return factory

    return deco


def open_source(fmt: str, process: str, inputs, **options) -> EventSource:
    """The event source of format ``fmt`` over ``inputs`` (paths, globs or fsspec URLs)."""
    _load_builtin()
    if fmt not in SOURCES:
        raise HepfmError(f"unknown input format {fmt!r}; known: {', '.join(sorted(SOURCES))}")
    return SOURCES[fmt](process, inputs, **options)


def _load_builtin() -> None:
    from hepfm_data.inputs import delphes, experiments  # noqa: F401  (register "delphes", "nanoaod", "physlite")


class RecordBlocks:
    """An already-made stream of ``(event record, SampleInfo)`` blocks as ONE unit.

    For :func:`hepfm_data.pipelines.build.write_store` (tests, notebooks, small in-memory data):
    the stream is consumed once, in the driver process, so shards may span blocks.
    Not picklable in general: build it in-process (``scheduler="sync"``).
    """

    def __init__(self, process: str, blocks, event_id_rule: str = ""):
        self.process, self.event_id_rule = process, event_id_rule
        self._blocks = blocks

    def units(self) -> list[Unit]:
        return [Unit(0, f"{self.process} record stream", {"kind": "records"})]

    def read(self, unit: Unit):
        yield from self._blocks
