"""CMS NanoAOD and ATLAS DAOD_PHYSLITE files as event sources: one unit per range of
entries of a file, cut at basket boundaries (the unit scheme of
:class:`~hepfm_data.inputs.delphes.DelphesFiles`)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from hepfm_data.inputs.base import Unit, register_source
from hepfm_data.inputs.delphes import file_units

DEFAULT_ENTRIES_PER_UNIT = 100_000


@dataclass
class _ExperimentFiles:
    """ROOT files of one experiment format (paths, globs or fsspec URLs) of one process.

    Listing the units opens each file's header and tree once (what it provides is kept
    for the SampleInfo of its units): a missing or corrupt file, a
    file of another format or a missing required branch fails before any unit runs,
    naming the file. ``step_size``: entries read per chunk inside a unit.
    """

    process: str
    inputs: Any
    entries_per_unit: int = DEFAULT_ENTRIES_PER_UNIT
    step_size: int | str = 20_000
    storage_options: dict[str, Any] | None = None
    _units: list[Unit] | None = field(default=None, repr=False)
    _described: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    reader_module = ""  # set by subclasses

    def _reader(self):
        return importlib.import_module(self.reader_module)

    @property
    def event_id_rule(self) -> str:
        return self._reader().EVENT_ID_RULE

    def units(self) -> list[Unit]:
        def offsets(url: str) -> list[int]:  # each file is described once; read() reuses it
            self._described[url] = d = self._reader().describe(url, self.storage_options)
            return d["entry_offsets"]

        if self._units is None:
            self._units = file_units(self.inputs, self.storage_options, self.entries_per_unit, offsets)
        return self._units

    def read(self, unit: Unit):
        mod = self._reader()
        url, lo, hi = unit.spec["url"], unit.spec["start"], unit.spec["stop"]
        info = mod.sample_info(self.process, url, self.storage_options, described=self._described.get(url))
        if hi <= lo:
            return
        for block in mod.read(url, step_size=self.step_size, storage_options=self.storage_options,
                              entry_start=lo, entry_stop=hi):
            yield block, info


@register_source("nanoaod")
@dataclass
class NanoAODFiles(_ExperimentFiles):
    """CMS NanoAOD files (``Events`` tree; :mod:`hepfm_data.readers.nanoaod`)."""

    reader_module = "hepfm_data.readers.nanoaod"


@register_source("physlite")
@dataclass
class PhysliteFiles(_ExperimentFiles):
    """ATLAS DAOD_PHYSLITE files (``CollectionTree``; :mod:`hepfm_data.readers.physlite`)."""

    reader_module = "hepfm_data.readers.physlite"
