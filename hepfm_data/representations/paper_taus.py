"""``paper_taus``: the paper graph plus hadronic τ candidates (pT > 20 GeV, |η| < 2.5, passing the
format's τ identification where it has one) as nodes of type 5, before MET; derived from the stored
record with ``hepfm-data derive STORE --representation paper_taus``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hepfm_data.representations.columns import PAPER_INPUTS, paper_columns, paper_definition
from hepfm_data.representations.graph import GraphRepresentation
from hepfm_data.store.layouts import Columns

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.core.catalog import Catalog

__all__ = ["PAPER_TAUS", "TAU_TYPE", "TAU_PT_MIN", "TAU_ETA_MAX"]

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


def paper_taus_definition(catalog: Catalog) -> dict[str, Any]:
    return {**paper_definition(catalog), "object_types": {**dict(catalog.graph.object_types), "tau": TAU_TYPE},
            "tau": {"pt_min": TAU_PT_MIN, "eta_max": TAU_ETA_MAX, "tag": "taus.tag == 1 where present"}}


PAPER_TAUS = GraphRepresentation(
    "paper_taus", 1, PAPER_INPUTS + ("taus.pt", "taus.eta", "taus.phi", "taus.charge"), paper_taus_columns,
    paper_taus_definition, "the paper graph plus hadronic τ candidates (type 5) before MET")
