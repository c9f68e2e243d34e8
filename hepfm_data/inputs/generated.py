"""Pythia 8 generation (+ the ATLAS-like emulation) as an event source: units of consecutive seed blocks."""

from __future__ import annotations

import os
from dataclasses import dataclass

from hepfm_data.core.catalog import Process
from hepfm_data.inputs.base import Unit

#: events per generation block (one Pythia run, one parallel task): ~20-40 s of tt̄H on one core, so
#: a one-unit build balances over the cores (13,000 events = 13 blocks) and the bar moves per batch;
#: Pythia's initialisation (0.5-1.5 s per block) costs 3-8% of it
DEFAULT_BLOCK_SIZE = 1000
#: events per build unit (one shard per split; its blocks are read in parallel tasks). A unit of one
#: 2,500-event block gave three shards of 2,000 / 250 / 250 events whose per-column metadata alone
#: cost 40 B/event of a 290 B/event store, and 144,000 shards for 120 M events (BENCHMARKS.md, issue 11)
DEFAULT_EVENTS_PER_UNIT = 25_000


@dataclass
class PythiaGeneration:
    """``n_events`` of catalog process ``proc`` generated with ``seed``, in blocks of ``block_size``.

    Block ``b``: Pythia seed ``blocks.block_seed(seed, b)``, event ids
    ``blocks.id_base(process, seed) + b*block_size + k`` (:data:`blocks.EVENT_ID_RULE`): the
    events depend on (process, seed, block_size) only — and, for a process with ``weight:
    cross_section``, their weights on ``n_events`` too (σ_block / ``n_events`` pb each). Unit ``i`` (one
    build task, one shard per split) = the ``events_per_unit // block_size`` consecutive blocks from
    ``i * that``; the unit size sets
    the shard sizes, not the events.
    ``lhe``: hard process from an LHE file (block ``i`` skips ``i*block_size`` events).
    ``workdir`` (local): keep each generated block as Parquet + JSON sidecar
    (``blocks.run_block``), so a rebuild with other store parameters does not
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
    #: events per unit, rounded down to whole blocks (at least one)
    events_per_unit: int = DEFAULT_EVENTS_PER_UNIT

    @property
    def process(self) -> str:
        return self.proc.name

    @property
    def event_id_rule(self) -> str:
        from hepfm_data.readers.generation.blocks import EVENT_ID_RULE

        return EVENT_ID_RULE

    def units(self) -> list[Unit]:
        """The blocks; every input problem (setting, LHE, SLHA, seed) is raised here, before any task."""
        import tempfile

        from hepfm_data.readers.generation.pythia import check_count, check_seed, check_settings, make_pythia

        check_seed(self.seed)
        check_count("n_events", self.n_events)
        check_count("block_size", self.block_size)
        check_count("events_per_unit", self.events_per_unit)
        if self.lhe is not None:
            self.lhe = str(os.path.abspath(os.path.expanduser(self.lhe)))
        with tempfile.TemporaryDirectory() as tmp:
            make_pythia(check_settings(self.proc, self.seed, lhe=self.lhe, workdir=tmp),
                        f"process {self.proc.name!r}")
        n_blocks = -(-self.n_events // self.block_size)
        per = max(1, self.events_per_unit // self.block_size)
        out = []
        for i, first in enumerate(range(0, n_blocks, per)):
            blocks = list(range(first, min(first + per, n_blocks)))
            sizes = [min(self.block_size, self.n_events - b * self.block_size) for b in blocks]
            what = f"block {first}" if len(blocks) == 1 else f"blocks {first}-{blocks[-1]}"
            out.append(Unit(i, f"{self.proc.name} seed {self.seed} {what} ({sum(sizes)} events)",
                            {"process": self.proc.name, "seed": int(self.seed), "blocks": blocks, "n": sizes,
                             "block_size": int(self.block_size), "lhe": self.lhe,
                             **({"keep_hard_process": True} if self.keep_hard_process else {})}, sum(sizes)))
        return out

    def blocks(self, unit: Unit) -> int:
        """Generation blocks of ``unit`` (each one Pythia run: read in parallel by the build)."""
        return len(unit.spec["blocks"])

    def read_block(self, unit: Unit, j: int, progress=None):
        """(events, SampleInfo) of the ``j``-th block of ``unit``; ``progress(n)`` gets generated event counts."""
        from hepfm_data.readers.generation import blocks

        i, n, keep = unit.spec["blocks"][j], unit.spec["n"][j], self.keep_hard_process
        total = self.n_events  # a weight: cross_section process weighs σ / (events of the whole sample)
        if self.workdir is None:
            return blocks.generate_block(self.proc, self.seed, i, n, self.block_size, self.lhe,
                                         keep_hard_process=keep, progress=progress, sample_events=total)
        if not blocks.block_complete(self.proc, self.seed, i, n, self.block_size, self.workdir, self.lhe, keep,
                                     sample_events=total):
            blocks.run_block(self.proc, self.seed, i, n, self.block_size, self.workdir, self.lhe, keep,
                             progress=progress, sample_events=total)
        elif progress is not None:
            progress(n)
        return blocks.load_block(blocks.block_paths(self.workdir, self.proc.name, i)[0])

    def read(self, unit: Unit):
        """(events, SampleInfo) of each block of ``unit`` in turn (one block in memory at a time)."""
        for j in range(self.blocks(unit)):
            yield self.read_block(unit, j)
