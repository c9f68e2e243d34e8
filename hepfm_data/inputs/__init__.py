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

from hepfm_data.core.errors import HepfmError
from hepfm_data.inputs.base import SOURCES, BlockSource, EventSource, RecordBlocks, Unit, register_source
from hepfm_data.inputs.delphes import DelphesFiles
from hepfm_data.inputs.experiments import NanoAODFiles, PhysliteFiles
from hepfm_data.inputs.generated import PythiaGeneration

__all__ = ["Unit", "EventSource", "BlockSource", "RecordBlocks", "register_source", "open_source", "SOURCES",
           "DelphesFiles", "NanoAODFiles", "PhysliteFiles", "PythiaGeneration", "ENTRY_POINT_GROUP"]


#: entry-point group of input formats from other packages (name = format, value = a factory or an
#: importable ``module:attribute``), loaded on the first unknown format
ENTRY_POINT_GROUP = "hepfm_data.inputs"


def open_source(fmt: str, process: str, inputs, **options) -> EventSource:
    """The event source of format ``fmt`` over ``inputs`` (paths, globs or fsspec URLs): a built-in format,
    one registered with :func:`register_source` in this process, or one of the ``hepfm_data.inputs``
    entry-point group (so ``hepfm-data build --format NAME`` reaches other packages' readers)."""
    if fmt not in SOURCES:
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == fmt:
                SOURCES.setdefault(fmt, ep.load())
    if fmt not in SOURCES:
        raise HepfmError(f"unknown input format {fmt!r}; known: {', '.join(sorted(SOURCES))} (other packages add "
                         f"formats through the {ENTRY_POINT_GROUP!r} entry-point group)")
    return SOURCES[fmt](process, inputs, **options)
