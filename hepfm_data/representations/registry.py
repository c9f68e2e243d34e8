"""The registry of representations: every name the loader, ``load_dataset``, ``derive``, ``info`` and the
recipes resolve, in one place.

Built in (one file each): ``paper``, ``paper_taus``, ``jet_constituents``, ``event_jets``, ``slots``.
Other packages add theirs through the ``hepfm_data.representations`` entry-point group (name = an
importable ``module:attribute`` holding a :class:`~hepfm_data.representations.base.Representation`),
loaded on first lookup; an instance (e.g. a configured ``SlotRepresentation`` or ``Paired``) is
accepted wherever a name is.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from hepfm_data.core.errors import StoreError, UnknownNameError
from hepfm_data.representations.base import RECORD, Representation
from hepfm_data.representations.event_jets import EVENT_JETS
from hepfm_data.representations.jet_constituents import JET_CONSTITUENTS
from hepfm_data.representations.paper import PAPER
from hepfm_data.representations.paper_taus import PAPER_TAUS
from hepfm_data.representations.slots import SLOTS

if TYPE_CHECKING:  # pragma: no cover
    from hepfm_data.core.catalog import Catalog

__all__ = ["REPRESENTATIONS", "ENTRY_POINT_GROUP", "get_representation", "representation_names", "open_stores",
           "unservable"]

ENTRY_POINT_GROUP = "hepfm_data.representations"

#: name -> representation (the built-in ones; entry points join on first lookup)
REPRESENTATIONS: dict[str, Representation] = {r.name: r for r in (PAPER, PAPER_TAUS, JET_CONSTITUENTS, EVENT_JETS,
                                                                   SLOTS)}
_loaded = False


def _load_entry_points() -> None:
    global _loaded
    if _loaded:
        return
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in REPRESENTATIONS or ep.name == RECORD:
            raise UnknownNameError(f"entry point {ep.value!r} of group {ENTRY_POINT_GROUP!r}: representation name "
                                   f"{ep.name!r} is taken")
        rep = ep.load()
        if not isinstance(rep, Representation) or rep.name != ep.name:
            raise UnknownNameError(f"entry point {ep.name} = {ep.value!r} of group {ENTRY_POINT_GROUP!r} must be a "
                                   f"Representation named {ep.name!r}, got {rep!r}")
        REPRESENTATIONS[ep.name] = rep
    _loaded = True


def representation_names() -> list[str]:
    """Every registered name (built in, then entry points)."""
    _load_entry_points()
    return list(REPRESENTATIONS)


def get_representation(name: str | Representation) -> Representation:
    """The representation registered as ``name`` (an instance is returned as is)."""
    if isinstance(name, Representation):
        return name
    if name not in REPRESENTATIONS:
        _load_entry_points()
    try:
        return REPRESENTATIONS[name]
    except KeyError:
        hint = (" ('record' is the stored event record: load_dataset(..., representation='record'))"
                if name == RECORD else "")
        raise UnknownNameError(f"unknown representation {name!r}; known: {', '.join(REPRESENTATIONS)}{hint}"
                               ) from None


def open_stores(stores: Any, representation: str | Representation | None, catalog: Catalog,
                storage_options: dict[str, Any] | None = None) -> tuple[Representation, list]:
    """Open ``stores`` (URLs or Stores) as ``representation`` (None: each store's default, ``paper``);
    returns (the representation, the stores as it reads them): inputs and fingerprints checked once."""
    from hepfm_data.store import open_store

    if isinstance(stores, (str, os.PathLike)) or hasattr(stores, "manifest"):
        stores = [stores]
    opened = [s if hasattr(s, "manifest") else open_store(str(s), storage_options) for s in stores]
    if representation is None:
        names = {s.manifest.default_representation if s.manifest.representations else PAPER.name for s in opened}
        if len(names) > 1:
            raise StoreError(f"the stores' default representations differ ({sorted(names)}): name one")
        representation = names.pop() if names else PAPER.name
    rep = get_representation(representation)
    return rep, [rep.open(s, catalog) for s in opened]


def unservable(schema: dict[str, Any] | None) -> dict[str, list[str]]:
    """{name: record fields it lacks} of every registered representation the loader computes from the
    record, for a store whose manifest has ``schema`` (empty lists: servable)."""
    return {name: REPRESENTATIONS[name].missing_inputs(schema) for name in representation_names()
            if not REPRESENTATIONS[name].materialised}
