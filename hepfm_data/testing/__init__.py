"""Test helpers shipped with the package (lhotse-style): small deterministic
inputs for tests and benchmarks of hepfm and of code built on it."""

from __future__ import annotations

from pathlib import Path

#: the real test files shipped in the repository's ``tests/data/`` (provenance: tests/data/README.md)
TEST_DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
#: Delphes 3.4.2 output, 10 ttH events (tree ``Delphes``)
DELPHES_FILE = TEST_DATA / "delphes-3.4.2-ttH-10events.root"
#: CMS NanoAOD, 40 Drell-Yan simulated events (tree ``Events``)
NANOAOD_FILE = TEST_DATA / "cms-nanoaod-dy-40events.root"
#: ATLAS DAOD_PHYSLITE, 100 simulated events (tree ``CollectionTree``), MeV
PHYSLITE_FILE = TEST_DATA / "atlas-physlite-100events.root"


def synthetic_events(n_events: int, seed: int = 0, first_event_id: int = 0, taus: bool = False,
                     btag: float = 0.0):
    """A valid, deterministic event record of ``n_events`` random events.

    Not physics: object multiplicities and kinematics are drawn from simple
    distributions (pT exponential above ~5 GeV, |eta| < 3, uniform phi) so that
    some objects fail the selection. Truth holds 0-2 tops, 0-1 Higgs and b quarks.
    ``taus``: add a ``taus`` collection (mass, charge, tag; drawn after everything else, so the
    other collections are the same bytes as without). ``btag`` > 0: a record ``jets.btag`` flag set
    on that fraction of the jets (from a fresh generator of ``seed``). Same ``seed`` -> same bytes.
    """
    import awkward as ak
    import numpy as np

    rng = np.random.default_rng(seed)

    def objects(mean: float, extra: dict | None = None):
        counts = rng.poisson(mean, n_events)
        n = int(counts.sum())
        cols = {
            "pt": (5.0 + rng.exponential(40.0, n)).astype(np.float32),
            "eta": rng.uniform(-3.0, 3.0, n).astype(np.float32),
            "phi": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
        }
        for k, fn in (extra or {}).items():
            cols[k] = fn(n)
        return ak.unflatten(ak.zip(cols), counts)

    charge = lambda n: rng.choice(np.array([-1, 1], np.int8), n)  # noqa: E731
    truth_counts = rng.integers(1, 5, n_events)
    nt = int(truth_counts.sum())
    truth = ak.unflatten(ak.zip({
        "pid": rng.choice(np.array([25, 6, -6, 24, -24, 23, 5, -5, 4], np.int32), nt),
        "pt": rng.exponential(100.0, nt).astype(np.float32),
        "eta": rng.normal(0.0, 1.5, nt).astype(np.float32),
        "phi": rng.uniform(-np.pi, np.pi, nt).astype(np.float32),
        "mass": np.full(nt, 100.0, np.float32),
    }), truth_counts)
    out = {
        "event_id": np.arange(first_event_id, first_event_id + n_events, dtype=np.uint64),
        "weight": np.ones(n_events, np.float32),
        "jets": objects(6.0, {"mass": lambda n: rng.uniform(0, 20, n).astype(np.float32)}),
        "electrons": objects(0.6, {"charge": charge}),
        "muons": objects(0.6, {"charge": charge}),
        "photons": objects(0.5),
        "met": ak.zip({"pt": rng.exponential(50.0, n_events).astype(np.float32),
                       "phi": rng.uniform(-np.pi, np.pi, n_events).astype(np.float32)}),
        "truth": truth,
    }
    if taus:
        out["taus"] = objects(0.8, {"mass": lambda n: rng.uniform(0.5, 1.8, n).astype(np.float32), "charge": charge,
                                    "tag": lambda n: (rng.random(n) < 0.8).astype(np.int8)})
    if btag > 0:
        jets, counts = out["jets"], ak.num(out["jets"])
        flag = (np.random.default_rng(seed).random(int(ak.sum(counts))) < btag).astype(np.int8)
        out["jets"] = ak.with_field(jets, ak.unflatten(flag, counts), "btag")
    return ak.zip(out, depth_limit=1)


def synthetic_slots(n_events: int, seed: int = 0, layout=None, catalog=None):
    """A :class:`~hepfm_data.batches.slots.SlotBatch` of :func:`synthetic_events` (with taus, and a random record
    b-tag flag on 30% of the jets) through the slot builder's selection (``catalog``: the packaged one
    by default); labels 0, weights 1, ids 0..n-1."""
    import numpy as np

    from hepfm_data.batches.slots import SlotLayout
    from hepfm_data.core.arrays import counts_to_offsets
    from hepfm_data.core.catalog import load_catalog
    from hepfm_data.representations.slots import SlotSelection, slot_batch, slot_objects
    from hepfm_data.store.record import schema_of, to_columns

    layout = layout or SlotLayout()
    ev = synthetic_events(n_events, seed, taus=True, btag=0.3)
    obj = slot_objects(to_columns(ev, schema_of(ev)), SlotSelection.from_catalog(catalog or load_catalog()), layout)
    return slot_batch(obj.nodes, obj.mass, obj.slot, counts_to_offsets(obj.counts), layout, np.zeros(n_events),
                      np.ones(n_events), np.arange(n_events))


def write_synthetic_stores(root: str, spec: dict[str, tuple[str, int, int, int]], *,
                           events_per_shard: int = 64, storage_options=None) -> None:
    """Write one store per process under ``root`` from :func:`synthetic_events`.

    ``spec`` maps process -> (layout, n_events, seed, first event id); any fsspec root.
    """
    from hepfm_data.core.events import SampleInfo
    from hepfm_data.pipelines.build import write_store

    for proc, (layout, n, seed, first) in spec.items():
        write_store(str(root), proc, [(synthetic_events(n, seed, first), SampleInfo(process=proc, source="synthetic"))],
                    layout=layout, events_per_shard=events_per_shard, progress=False, storage_options=storage_options)


def write_modified_copy(src, dst, tree: str, branches: list[str], *, sep: str, drop=(), rename=None,
                        replace=None, repeat: int = 1, basket: int = 5000) -> None:
    """Write a copy of ``tree`` of the ROOT file ``src`` holding only ``branches`` (minus ``drop``,
    ``rename``-d {old: new}, values ``replace``-d {name: array}) to ``dst``, with uproot.

    Jagged branches are grouped by the prefix before the first ``sep`` ("_" for NanoAOD:
    ``Jet_pt`` -> collection ``Jet`` with counter ``nJet``; "." for PHYSLITE:
    ``AnalysisJetsAuxDyn.pt``) so the copy keeps the format's branch names. For tests of
    readers on other productions: collections dropped, branches renamed, data without truth.
    ``repeat``: the events written that many times (bigger inputs for benchmarks), in baskets of
    ``basket`` events.
    """
    import awkward as ak
    import uproot

    rename, replace = dict(rename or {}), dict(replace or {})
    keep = [b for b in branches if b not in drop]
    arrays = uproot.open(src)[tree].arrays(keep, library="ak")
    flat, groups = {}, {}
    for b in keep:
        name = rename.get(b, b)
        values = replace.get(b, arrays[b])
        if values.ndim == 1:
            flat[name] = values
        else:
            prefix, inner = name.split(sep, 1)
            groups.setdefault(prefix, {})[inner] = values
    data = dict(flat)
    for prefix, cols in groups.items():
        data[prefix] = ak.zip(cols)
    if repeat > 1:
        data = {k: ak.concatenate([v] * int(repeat)) for k, v in data.items()}
    n = len(next(iter(data.values())))
    with uproot.recreate(dst) as f:
        f.mktree(tree, {k: v.type.content for k, v in data.items()},
                 field_name=lambda outer, inner: f"{outer}{sep}{inner}", counter_name=lambda c: f"n{c}")
        for lo in range(0, max(n, 1), basket):
            f[tree].extend({k: v[lo:lo + basket] for k, v in data.items()})


def shard_digest(data) -> str:
    """sha256 over every array of a :class:`~hepfm_data.store.ShardData` (event_id ... nodes, in
    order): equal digests = identical reads (tests of caches and corrupted stores)."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for f in ("event_id", "weight", "label", "multilabel", "n_node", "offsets", "nodes"):
        h.update(np.ascontiguousarray(getattr(data, f)).tobytes())
    return h.hexdigest()


def wide_jet_constituents(abs_eta_max: float = 2.5, pt_min: float = 300.0):
    """``jet_constituents`` with RS3L's jet cuts relaxed (|η| < 2.5, pT > 300 GeV): a few hundred generated
    events hold few jets with |η| < 0.1, so small tests select jets with this spec instead."""
    import dataclasses

    from hepfm_data.representations.jet_constituents import JET_CONSTITUENTS

    return dataclasses.replace(JET_CONSTITUENTS, name="jet_constituents_wide",
                               abs_eta_max=abs_eta_max, pt_min=pt_min)


def build_resimulated(root: str, processes, views, n_events: int, *, catalog=None, seed: int = 3,
                      block_size: int | None = None, **build_kw) -> dict[str, dict[str, str]]:
    """Generate ``processes`` with Pythia (hard processes kept), build each into a store under ``root`` and
    re-simulate it in ``views``; returns ``{process: {"nominal": url, view: url, ...}}``."""
    from hepfm_data.core.catalog import load_catalog
    from hepfm_data.inputs.generated import PythiaGeneration
    from hepfm_data.pipelines.build import build_store
    from hepfm_data.pipelines.resimulate import resimulate

    cat = catalog or load_catalog()
    out = {}
    for proc in processes:
        src = PythiaGeneration(cat.process(proc), n_events, seed=seed, block_size=block_size or n_events,
                               keep_hard_process=True)
        st = build_store(src, str(root), catalog=cat, scheduler="sync", progress=False, **build_kw)
        made = resimulate(st.url, list(views), catalog=cat, scheduler="sync", progress=False)
        out[proc] = {"nominal": st.url, **{v: s.url for v, s in made.items()}}
    return out
