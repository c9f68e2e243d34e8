"""Delphes ROOT files as an event source: one unit per range of entries of a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import Unit, register_source

DEFAULT_ENTRIES_PER_UNIT = 100_000


@register_source("delphes")
@dataclass
class DelphesFiles:
    """Delphes 3 ROOT files (paths, globs or fsspec URLs) of one process.

    Units: entries ``[k*entries_per_unit, (k+1)*entries_per_unit)`` of each file, files
    in sorted URL order; listing opens each file's header and tree (a missing or
    corrupt file, or a missing branch, fails before any unit runs, naming the file).
    ``step_size``: entries read per chunk inside a unit (bounds memory).
    """

    process: str
    inputs: Any
    entries_per_unit: int = DEFAULT_ENTRIES_PER_UNIT
    step_size: int | str = 10_000
    storage_options: dict[str, Any] | None = None
    _units: list[Unit] | None = field(default=None, repr=False)

    @property
    def event_id_rule(self) -> str:
        from ..readers.delphes import EVENT_ID_RULE

        return EVENT_ID_RULE

    def units(self) -> list[Unit]:
        from ..errors import HepfmError
        from ..readers.delphes import expand_inputs, n_entries

        if self._units is None:
            if int(self.entries_per_unit) < 1:
                raise HepfmError(f"entries_per_unit must be positive, got {self.entries_per_unit!r}")
            units: list[Unit] = []
            for url in expand_inputs(self.inputs, self.storage_options):
                n = n_entries(url, self.storage_options)
                for lo in range(0, max(n, 1), int(self.entries_per_unit)):
                    hi = min(lo + int(self.entries_per_unit), n)
                    units.append(Unit(len(units), f"{url} entries [{lo}, {hi})",
                                      {"url": url, "start": lo, "stop": hi}, hi - lo))
            self._units = units
        return self._units

    def read(self, unit: Unit):
        from ..readers.delphes import read_delphes, sample_info

        url, lo, hi = unit.spec["url"], unit.spec["start"], unit.spec["stop"]
        info = sample_info(self.process, url, self.storage_options)
        if hi <= lo:
            return
        for block in read_delphes(url, step_size=self.step_size, storage_options=self.storage_options,
                                  entry_start=lo, entry_stop=hi):
            yield block, info
