"""The event-source protocol (``Unit``, ``EventSource``, ``BlockSource``), the registry of input formats
(:func:`register_source`) and ``RecordBlocks``; the package face lists the formats."""


from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import awkward as ak

    from hepfm_data.core.events import SampleInfo

__all__ = ["Unit", "EventSource", "BlockSource", "register_source", "SOURCES", "RecordBlocks"]


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
