"""Delphes ROOT files as an event source: one unit per range of entries of a file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hepfm_data.inputs.base import Unit, register_source

DEFAULT_ENTRIES_PER_UNIT = 100_000


def file_units(inputs: Any, storage_options: dict[str, Any] | None, entries_per_unit: int,
               offsets: Callable[[str], list[int]]) -> list[Unit]:
    """Units of ROOT input files: each file's entries (``offsets(url)`` = its basket-aligned entry
    offsets ``[0, ..., n]``) cut into ranges of about ``entries_per_unit``, files in glob-sorted order."""
    from hepfm_data.core.errors import HepfmError
    from hepfm_data.readers.delphes import expand_inputs

    if int(entries_per_unit) < 1:
        raise HepfmError(f"entries_per_unit must be positive, got {entries_per_unit!r}")
    units: list[Unit] = []
    for url in expand_inputs(inputs, storage_options):
        for lo, hi in _ranges(offsets(url), int(entries_per_unit)):
            units.append(Unit(len(units), f"{url} entries [{lo}, {hi})", {"url": url, "start": lo, "stop": hi}, hi - lo))
    return units


def _ranges(offsets: list[int], per_unit: int) -> list[tuple[int, int]]:
    """Entry ranges of about ``per_unit`` entries, cut at basket boundaries ``offsets`` when one
    lies within a quarter unit of the cut (no basket is then decompressed by two units)."""
    n = offsets[-1] if offsets else 0
    if n == 0:
        return [(0, 0)]
    cuts, lo = [], 0
    while lo < n:
        want = min(lo + per_unit, n)
        near = [o for o in offsets if lo < o <= n and abs(o - want) <= per_unit // 4]
        hi = min(near, key=lambda o: (abs(o - want), o)) if near else want
        cuts.append((lo, hi))
        lo = hi
    return cuts


@register_source("delphes")
@dataclass
class DelphesFiles:
    """Delphes 3 ROOT files (paths, globs or fsspec URLs) of one process.

    Units: ranges of about ``entries_per_unit`` entries of each file, cut at basket
    boundaries where one is near (no basket decompressed twice), files in the given
    (glob-sorted) order; listing opens each file's header and tree (a missing or
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
        from hepfm_data.readers.delphes import EVENT_ID_RULE

        return EVENT_ID_RULE

    def units(self) -> list[Unit]:
        from hepfm_data.readers.delphes import entry_offsets

        if self._units is None:
            self._units = file_units(self.inputs, self.storage_options, self.entries_per_unit,
                                     lambda url: entry_offsets(url, self.storage_options))
        return self._units

    def read(self, unit: Unit):
        from hepfm_data.readers.delphes import read_delphes, sample_info

        url, lo, hi = unit.spec["url"], unit.spec["start"], unit.spec["stop"]
        info = sample_info(self.process, url, self.storage_options)
        if hi <= lo:
            return
        for block in read_delphes(url, step_size=self.step_size, storage_options=self.storage_options,
                                  entry_start=lo, entry_stop=hi):
            yield block, info
