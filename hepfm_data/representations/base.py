"""Representations: named, versioned derivations from the stored event record to model inputs.

A :class:`Representation` turns an event record (``hepfm_data.core.events``) into the graph
columns the loader reads (``store.layouts.Columns``: per-event scalars + nodes). Its
*fingerprint* is the sha256 of its definition — name, version (bumped when its code
changes the output), the record fields it reads, and the catalog parts it uses (selection,
object types, node features, labels) — like the fingerprinted cache of ``datasets``'
``Dataset.map``. The manifest keeps ``{version, fingerprint, definition, inputs, shards}``
per representation; opening one whose fingerprint differs from what the catalog given
now implies (:func:`open_representation`) fails with the command that re-derives it.

* ``paper`` (the default): SPEC §2-4 — selection, overlap removal, b-tag, 7 node features,
  38 labels; materialized by the build in ``shards/`` (the format-1 columns, unchanged).
* ``paper_taus``: the paper graph plus hadronic τ candidates (pT > 20 GeV, |η| < 2.5,
  passing the format's τ identification where it has one) as nodes of type 5, before MET;
  derived later with ``hepfm-data derive STORE --representation paper_taus``.

``record`` is not a representation but the stored record itself (``load_dataset(...,
representation="record")``). New representations register with :func:`register_representation`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hepfm_data.core.errors import StoreError, UnknownNameError
from hepfm_data.store.layouts import Columns

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.core.catalog import Catalog
    from hepfm_data.store import Store

#: the name under which ``load_dataset`` returns the stored record itself
RECORD = "record"
DEFAULT = "paper"


@dataclass(frozen=True)
class Representation:
    """``derive(events, label, catalog, seed) -> Columns``; ``definition(catalog) -> dict`` (JSON) is
    what it takes from the catalog; ``inputs``: the record fields (``collection.field``) it reads."""

    name: str
    version: int
    inputs: tuple[str, ...]
    derive: Callable[[Any, int, Catalog, int], Columns]
    definition: Callable[[Catalog], dict[str, Any]]
    doc: str = ""

    def full_definition(self, catalog: Catalog) -> dict[str, Any]:
        return json.loads(json.dumps(self.definition(catalog), sort_keys=True, default=list))

    def fingerprint(self, catalog: Catalog) -> str:
        doc = {"name": self.name, "version": self.version, "inputs": list(self.inputs),
               "definition": self.full_definition(catalog)}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def entry(self, catalog: Catalog, shards: list | None = None) -> dict[str, Any]:
        """The manifest entry (``shards=None``: the store's ``shards/``, i.e. built with the store)."""
        return {"version": self.version, "fingerprint": self.fingerprint(catalog), "inputs": list(self.inputs),
                "definition": self.full_definition(catalog), "shards": shards, "doc": self.doc}


REPRESENTATIONS: dict[str, Representation] = {}


def register_representation(rep: Representation) -> Representation:
    if rep.name == RECORD or rep.name in REPRESENTATIONS:
        raise ValueError(f"representation name {rep.name!r} is taken")
    REPRESENTATIONS[rep.name] = rep
    return rep


def get_representation(name: str) -> Representation:
    try:
        return REPRESENTATIONS[name]
    except KeyError:
        raise UnknownNameError(f"unknown representation {name!r}; known: {', '.join([*REPRESENTATIONS, RECORD])}"
                               ) from None


# ----------------------------------------------------------------------------- the paper graph


def paper_columns(events, label: int, catalog: Catalog, seed: int) -> Columns:
    """Store columns of an event record: the physics (selection, b-tag, nodes, labels), then the label."""
    from hepfm_data.kernels.features import process_block

    nb = process_block(events, catalog, seed)
    b = nb.event_id.shape[0]
    ev = {"event_id": nb.event_id, "weight": nb.weight, "label": np.full(b, label, np.int16),
          "multilabel": nb.multilabel, "n_node": nb.n_node}
    nodes = {"pt": nb.pt, "eta": nb.eta, "phi": nb.phi, "btag": nb.btag, "charge": nb.charge, "type": nb.type}
    return Columns(ev, nodes)


def _paper_definition(catalog: Catalog) -> dict[str, Any]:
    return {"selection": dataclasses.asdict(catalog.selection), "object_types": dict(catalog.graph.object_types),
            "node_features": list(catalog.graph.node_feature_names), "labels": dataclasses.asdict(catalog.labels),
            "label_names": list(catalog.labels.names)}


_KIN = ("pt", "eta", "phi")
PAPER_INPUTS = tuple([f"jets.{k}" for k in _KIN] + [f"electrons.{k}" for k in (*_KIN, "charge")]
                     + [f"muons.{k}" for k in (*_KIN, "charge")] + [f"photons.{k}" for k in _KIN]
                     + ["met.pt", "met.phi", "event_id", "weight"])

PAPER = register_representation(Representation(
    "paper", 1, PAPER_INPUTS, paper_columns, _paper_definition,
    "SPEC §2-4 graph: selected jets, electrons, muons, photons + MET; 7 node features; 38 labels"))


# ----------------------------------------------------------------------------- paper + taus

TAU_TYPE = 5
TAU_PT_MIN, TAU_ETA_MAX = 20.0, 2.5


def paper_taus_columns(events, label: int, catalog: Catalog, seed: int) -> Columns:
    """The paper graph with τ_h candidates (type 5: pT > 20 GeV, |η| < 2.5, tag where present) before MET."""
    import awkward as ak

    base = paper_columns(events, label, catalog, seed)
    n_node = base.events["n_node"].astype(np.int64)
    nodes = ak.unflatten(ak.zip({k: v for k, v in base.nodes.items()}), n_node)
    t = events["taus"]
    keep = (t.pt > TAU_PT_MIN) & (abs(t.eta) < TAU_ETA_MAX)
    if "tag" in t.fields:
        keep = keep & (t.tag == 1)
    t = t[keep]
    zeros = ak.values_astype(t.pt * 0, np.int8)
    taus = ak.zip({"pt": t.pt, "eta": t.eta, "phi": t.phi, "btag": zeros,
                   "charge": ak.values_astype(t.charge, np.int8), "type": zeros + np.int8(TAU_TYPE)})
    out = ak.concatenate([nodes[:, :-1], taus, nodes[:, -1:]], axis=1)
    counts = ak.to_numpy(ak.num(out, axis=1)).astype(np.int32)
    flat = ak.flatten(out)
    new_nodes = {k: np.ascontiguousarray(ak.to_numpy(flat[k]), dtype=base.nodes[k].dtype) for k in base.nodes}
    return Columns({**base.events, "n_node": counts}, new_nodes)


def _paper_taus_definition(catalog: Catalog) -> dict[str, Any]:
    return {**_paper_definition(catalog), "object_types": {**dict(catalog.graph.object_types), "tau": TAU_TYPE},
            "tau": {"pt_min": TAU_PT_MIN, "eta_max": TAU_ETA_MAX, "tag": "taus.tag == 1 where present"}}


register_representation(Representation(
    "paper_taus", 1, PAPER_INPUTS + ("taus.pt", "taus.eta", "taus.phi", "taus.charge"), paper_taus_columns,
    _paper_taus_definition, "the paper graph plus hadronic τ candidates (type 5) before MET"))


# ----------------------------------------------------------------------------- opening


def derive_command(url: str, name: str) -> str:
    return f"hepfm-data derive {url} --representation {name}"


def check_inputs(store: Store, rep: Representation) -> None:
    """Raise :class:`StoreError` naming the store, the representation and the record fields it lacks."""
    from hepfm_data.store.record import inputs_missing

    m = store.manifest
    if not m.schema:
        raise StoreError(f"{store.url}: representation {rep.name!r} needs the stored event record, which this "
                         f"format-{m.format_version} store lacks; rebuild it from its inputs with this hepfm")
    missing = inputs_missing(m.schema, list(rep.inputs))
    if missing:
        raise StoreError(f"{store.url}: representation {rep.name!r} needs record field(s) {missing}, which this "
                         f"store's record lacks (its input format does not provide them)")


def open_representation(store: Store, name: str | None = None, catalog: Catalog | None = None) -> Store:
    """``store`` viewed as representation ``name`` (default: the manifest's default, ``paper``).

    The fingerprint recorded in the manifest must equal the one ``catalog`` implies now;
    otherwise :class:`StoreError` gives the ``hepfm-data derive`` command. A format-1 store
    is read as ``paper`` (read-only, unchecked: it records no fingerprint)."""
    from hepfm_data.core.catalog import load_catalog

    m = store.manifest
    name = name or (m.default_representation if m.representations else DEFAULT)
    if name == RECORD:
        raise StoreError(f"{store.url}: 'record' is the stored event record, not a graph representation; read it "
                         f"with load_dataset(..., representation='record')")
    if m.format_version < 2 or not m.representations:
        if name != DEFAULT:
            raise StoreError(f"{store.url}: a format-{m.format_version} store holds the paper graph only; "
                             f"representation {name!r} needs a store rebuilt with this hepfm")
        return store
    rep = get_representation(name)
    entry = m.representations.get(name)
    if entry is None:
        check_inputs(store, rep)
        raise StoreError(f"{store.url}: representation {name!r} is not derived yet; run:\n  "
                         f"{derive_command(store.url, name)}")
    cat = catalog or load_catalog()
    want = rep.fingerprint(cat)
    if entry["fingerprint"] != want:
        raise StoreError(
            f"{store.url}: representation {name!r} was derived with another definition (fingerprint "
            f"{entry['fingerprint'][:12]} in the manifest, {want[:12]} from this catalog and hepfm: the selection, "
            f"features, labels or the derivation's version changed); re-derive it from the stored record with:\n  "
            f"{derive_command(store.url, name)}" + ("" if catalog is None else f" --catalog {cat.source}"))
    return store.view(name)


def representation_stores(stores: Any, name: str | None, catalog: Catalog | None,
                          storage_options: dict[str, Any] | None = None) -> list:
    """Open ``stores`` (URLs or Stores) and view each as representation ``name`` (fingerprints checked)."""
    import os

    from hepfm_data.store import open_store

    if isinstance(stores, (str, os.PathLike)) or hasattr(stores, "manifest"):
        stores = [stores]
    opened = [s if hasattr(s, "manifest") else open_store(str(s), storage_options) for s in stores]
    return [open_representation(s, name, catalog) for s in opened]
