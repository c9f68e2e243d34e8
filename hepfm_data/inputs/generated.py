"""Pythia 8 generation (+ the ATLAS-like emulation) as an event source: one unit per seed block."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..catalog import Process
from . import Unit

DEFAULT_BLOCK_SIZE = 2500


@dataclass
class PythiaGeneration:
    """``n_events`` of catalog process ``proc`` generated with ``seed``, in blocks of ``block_size``.

    Unit ``i`` = block ``i``: Pythia seed ``production.block_seed(seed, i)``, event ids
    ``production.id_base(process, seed) + i*block_size + k`` (:data:`production.EVENT_ID_RULE`).
    ``lhe``: hard process from an LHE file (block ``i`` skips ``i*block_size`` events).
    ``workdir`` (local): keep each generated block as Parquet + JSON sidecar
    (``production.run_block``), so a rebuild with other store parameters does not
    regenerate; without it the events go straight from Pythia to the shards.
    """

    proc: Process
    n_events: int
    seed: int = 1
    block_size: int = DEFAULT_BLOCK_SIZE
    lhe: str | None = None
    workdir: str | None = None
    #: keep every event's hard process in the record (``hard``, ``hard_event``): needed by ``resimulate``
    keep_hard_process: bool = False

    @property
    def process(self) -> str:
        return self.proc.name

    @property
    def event_id_rule(self) -> str:
        from ..production import EVENT_ID_RULE

        return EVENT_ID_RULE

    def units(self) -> list[Unit]:
        """The blocks; every input problem (setting, LHE, SLHA, seed) is raised here, before any task."""
        import tempfile

        from ..readers.pythia import check_count, check_seed, make_pythia, process_settings

        check_seed(self.seed)
        check_count("n_events", self.n_events)
        check_count("block_size", self.block_size)
        if self.lhe is not None:
            self.lhe = str(os.path.abspath(os.path.expanduser(self.lhe)))
        with tempfile.TemporaryDirectory() as tmp:
            make_pythia(process_settings(self.proc, self.seed, lhe=self.lhe, workdir=tmp),
                        f"process {self.proc.name!r}")
        out = []
        for i in range(-(-self.n_events // self.block_size)):
            n = min(self.block_size, self.n_events - i * self.block_size)
            out.append(Unit(i, f"{self.proc.name} seed {self.seed} block {i} ({n} events)",
                            {"process": self.proc.name, "seed": int(self.seed), "block": i, "n": n,
                             "block_size": int(self.block_size), "lhe": self.lhe,
                             **({"keep_hard_process": True} if self.keep_hard_process else {})}, n))
        return out

    def read(self, unit: Unit):
        from .. import production

        i, n = unit.spec["block"], unit.spec["n"]
        if self.workdir is None:
            yield production.generate_block(self.proc, self.seed, i, n, self.block_size, self.lhe,
                                            keep_hard_process=self.keep_hard_process)
            return
        keep = self.keep_hard_process
        if not production._complete(self.proc, self.seed, i, n, self.block_size, self.workdir, self.lhe, keep):
            production.run_block(self.proc, self.seed, i, n, self.block_size, self.workdir, self.lhe, keep)
        yield production.load_block(production.block_paths(self.workdir, self.proc.name, i)[0])
