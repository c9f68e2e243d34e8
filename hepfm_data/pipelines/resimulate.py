"""Re-simulated views (RS3L, Harris et al.): an event's hard process kept, what follows re-run.

A nominal store generated with ``keep_hard_process=True`` (``hepfm-data build P --generate N
--keep-hard-process``) holds every event's hard process in its record (``hard``, ``hard_event``:
LHE columns; the ``<init>`` block in the provenance). :func:`resimulate` re-runs, for each view
of the catalog's ``resimulation.views`` (``seed``, ``fsr_up``, ``fsr_down``, ``vincia``,
``lund_z``, ``lund_pt``), the shower, hadronisation, decays and the ATLAS-like emulation from that
hard process (``Beams:frameType = 4``), then the same representation kernels, through the one
build path (:func:`hepfm_data.pipelines.build.build_store`: one Dask task per unit of the nominal store,
resumable, checksummed, manifest last)::

    <store>/views/<view>/<process>/manifest.json     a complete store (open_store works on it)

A view store is **aligned** with its nominal store: the same event ids in the same order, so the
same shard names and sizes (same split salt, fractions, events per shard, b-tag seed). Each event
records ``view.seed`` (the Pythia seed it was re-simulated with) and ``view.attempt``; the view's
name and settings are in the manifest provenance. An event whose re-simulated shower fails is
re-run with the next attempt's seed (never dropped: alignment). Any representation derivable
from the record (the paper graph now, jet constituents later) is derived the same way for
nominal and views.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepfm_data.core.catalog import Catalog, Process, View, load_catalog
from hepfm_data.core.errors import GenerationError, StoreError
from hepfm_data.inputs import Unit
from hepfm_data.store.reader import check_aligned

__all__ = ["resimulate", "ResimulatedViews", "view_seed", "view_root", "open_view", "list_views",
           "MAX_ATTEMPTS"]

VIEWS_DIR = "views"
MAX_ATTEMPTS = 5  # showers of one hard process tried per event before giving up
HOW_TO_KEEP = ("generate the nominal events with their hard processes kept: hepfm-data build PROCESS --generate N "
               "--keep-hard-process --out ROOT (or PythiaGeneration(..., keep_hard_process=True))")


def view_seed(seed: int, view: str, unit: int, attempt: int = 0) -> int:
    """Pythia seed (1..900_000_000) of ``view`` for nominal unit ``unit`` (SeedSequence of all four)."""
    from hepfm_data.readers.generation.pythia import SEED_MAX

    key = int.from_bytes(hashlib.blake2b(view.encode(), digest_size=4).digest(), "little")
    state = np.random.SeedSequence([int(seed), key, int(unit), int(attempt)]).generate_state(2, np.uint32)
    return int((int(state[0]) << 32 | int(state[1])) % SEED_MAX) + 1


def view_root(store_url: str, view: str) -> str:
    """Storage root of the views of ``view`` for a nominal store (the view store is ``<root>/<process>``)."""
    return f"{store_url.rstrip('/')}/{VIEWS_DIR}/{view}"


def _require_hard(store, url: str) -> None:
    cols = (store.manifest.schema or {}).get("collections", {})
    if "hard" not in cols or "hard_event" not in cols:
        fmt = ", ".join(sorted({p.get("input_format") or p.get("source", "?") for p in store.manifest.provenance}))
        raise StoreError(f"{url}: the store keeps no hard processes (input: {fmt or 'unknown'}; record collections "
                         f"{sorted(cols) or 'none'}), so its events cannot be re-simulated; {HOW_TO_KEEP}")


def _lhe_init(store, url: str) -> str:
    for p in store.manifest.provenance:
        init = ((p.get("generator") or {}).get("hard_process") or {}).get("lhe_init")
        if init:
            return init
    raise StoreError(f"{url}: no LHE <init> block in the provenance of the kept hard processes; {HOW_TO_KEEP}")


def _events_per_shard(shards) -> int:
    """The nominal build's events per shard: within a unit and split every shard but the last is full."""
    return max((s.n_events for s in shards), default=1)


@dataclass
class ResimulatedViews:
    """Event source (``hepfm_data.inputs`` protocol): the events of a nominal store re-simulated as ``view``.

    Unit ``i`` = the nominal store's unit ``i`` (its shards, all splits, in manifest order); its
    events come out in the same order with the same ids. ``seed``: the re-simulation seed
    (:func:`view_seed` per view, unit and attempt).
    """

    store_url: str
    proc: Process
    view: View
    seed: int = 1
    storage_options: dict[str, Any] | None = None

    @property
    def process(self) -> str:
        return self.proc.name

    @property
    def event_id_rule(self) -> str:
        return f"the event ids of the nominal store {self.store_url} (re-simulated view {self.view.name!r})"

    def _store(self):
        from hepfm_data.store import open_store

        return open_store(self.store_url, self.storage_options)

    def units(self) -> list[Unit]:
        from hepfm_data.store.writer import shard_index

        store = self._store()
        _require_hard(store, self.store_url)
        by_unit: dict[int, list] = {}
        for s in store.manifest.shards:
            by_unit.setdefault(shard_index(s.name), []).append(s)
        out = []
        for i, u in enumerate(sorted(by_unit)):
            shards = by_unit[u]
            n = sum(s.n_events for s in shards)
            out.append(Unit(i, f"{self.view.name} of {self.process} unit {u} ({n} events)",
                            {"view": self.view.name, "settings": list(self.view.settings), "nominal": self.store_url,
                             "nominal_unit": u, "shards": [s.path for s in shards], "n": n,
                             "seed": view_seed(self.seed, self.view.name, u)}, n))
        return out

    def read(self, unit: Unit):
        import awkward as ak

        from hepfm_data.core.events import SampleInfo, concatenate
        from hepfm_data.readers.generation.pythia import shower, with_hard

        store = self._store()
        init = _lhe_init(store, self.store_url)
        paths = set(unit.spec["shards"])
        shards = [s for s in store.manifest.shards if s.path in paths]
        nominal = concatenate([store.read_events(s) for s in shards])
        n = len(nominal)
        ids = np.asarray(nominal.event_id, dtype=np.uint64)
        hard, hard_event = nominal.hard, nominal.hard_event
        parts, where, seeds, attempts = [], [], np.zeros(n, np.uint32), np.zeros(n, np.int8)
        todo = np.arange(n)
        settings, xs = [], {}
        with tempfile.TemporaryDirectory(prefix="hepfm-resim-") as tmp:
            for attempt in range(MAX_ATTEMPTS):
                if not todo.size:
                    break
                s = view_seed(self.seed, self.view.name, unit.spec["nominal_unit"], attempt)
                ev, ok, st, info = shower(self.proc, init, hard[todo], hard_event[todo], ids[todo], s,
                                          settings=self.view.settings, workdir=tmp,
                                          what=f"view {self.view.name!r}, attempt {attempt}")
                if attempt == 0:
                    settings, xs = st, info
                if ev is not None:
                    parts.append(ev)
                    where.append(todo[ok])
                    seeds[todo[ok]], attempts[todo[ok]] = s, attempt
                todo = todo[~ok]
        if todo.size:
            raise GenerationError(f"view {self.view.name!r} of {self.process}: the showers of events "
                                  f"{ids[todo[:5]].tolist()} failed {MAX_ATTEMPTS} times")
        order = np.argsort(np.concatenate(where), kind="stable")
        events = concatenate(parts)[order]
        events = with_hard(events, hard, hard_event)
        fields = {f: events[f] for f in events.fields}
        fields["view"] = ak.zip({"seed": seeds, "attempt": attempts})
        events = ak.zip(fields, depth_limit=1)
        if not np.array_equal(np.asarray(events.event_id, dtype=np.uint64), ids):
            raise GenerationError(f"view {self.view.name!r} of {self.process}: event order differs from the nominal")
        info = SampleInfo(process=self.process, source="pythia8-resimulation", fidelity=self.proc.fidelity,
                          seed=int(unit.spec["seed"]), inputs=[self.store_url],
                          generator={"name": "pythia8", "view": self.view.name, "view_settings": list(self.view.settings),
                                     "view_description": self.view.description, "stands_for": self.view.stands_for,
                                     "shower_settings": settings, "sigma_pb": xs.get("sigma_pb"),
                                     "nominal_store": self.store_url, "nominal_unit": unit.spec["nominal_unit"],
                                     "n_retried": int((attempts > 0).sum()),
                                     "hard_process": {"kept": True, "lhe_init": init}})
        yield events, info


def resimulate(store_url: str, views: Sequence[str], *, catalog: Catalog | None = None, seed: int = 1,
               out: str | None = None, workers: int | None = None, scheduler: str | None = None,
               storage_options: dict[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    """Re-simulate every event of a nominal store once per view; returns ``{view: Store}``.

    ``views``: names of the catalog's ``resimulation.views`` (an unknown name lists the known ones).
    ``out``: root for the view stores (default ``<store>/views``; view store ``<out>/<view>/<process>``).
    A view store already complete is reused; an interrupted one resumes. The nominal store must keep
    its hard processes (StoreError saying how to generate them otherwise).
    """
    from hepfm_data.pipelines.build import build_store
    from hepfm_data.store import open_store

    cat = catalog or load_catalog()
    specs = [cat.resimulation.view(v) for v in views]  # UnknownNameError lists the known views
    if not specs:
        raise GenerationError(f"no views given; known views: {', '.join(v.name for v in cat.resimulation.views)}")
    nominal = open_store(store_url, storage_options)
    _require_hard(nominal, store_url)
    _lhe_init(nominal, store_url)
    m = nominal.manifest
    proc = cat.process(m.process)
    result = {}
    for spec in specs:
        root = f"{out.rstrip('/')}/{spec.name}" if out else view_root(store_url, spec.name)
        try:
            result[spec.name] = open_view(store_url, spec.name, storage_options, root=root)
            continue  # complete
        except StoreError:
            pass
        source = ResimulatedViews(store_url, proc, spec, seed, storage_options)
        store = build_store(source, root, catalog=cat, layout=m.layout, events_per_shard=_events_per_shard(m.shards),
                            split_salt=m.split["salt"], fractions=tuple(m.split["fractions"]), seed=m.btag_seed,
                            storage_options=storage_options, label=m.label, scheduler=scheduler, workers=workers,
                            progress=progress)
        check_aligned(nominal, store)
        result[spec.name] = store
    return result


def open_view(store_url: str, view: str, storage_options: dict[str, Any] | None = None, *, root: str | None = None):
    """The view store ``view`` of a nominal store (StoreError when it is absent or incomplete)."""
    from hepfm_data.store import open_store

    nominal = open_store(store_url, storage_options)
    url = f"{(root or view_root(store_url, view)).rstrip('/')}/{nominal.manifest.process}"
    try:
        return open_store(url, storage_options)
    except (StoreError, FileNotFoundError, OSError) as exc:
        raise StoreError(f"{url}: view {view!r} of {store_url} is not built (hepfm-data resimulate {store_url} "
                         f"--views {view}): {exc}") from None


def list_views(store_url: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """Names of the complete view stores under ``<store>/views``, sorted."""
    from hepfm_data.sources import resolve

    fs, base = resolve(f"{store_url.rstrip('/')}/{VIEWS_DIR}", storage_options)
    if not fs.exists(base):
        return []
    names = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(base, detail=False))
    out = []
    for name in names:
        try:
            open_view(store_url, name, storage_options)
            out.append(name)
        except StoreError:
            pass
    return out


def _asdict(view: View) -> dict[str, Any]:  # pragma: no cover - used by the CLI listing
    return dataclasses.asdict(view)
