"""Numba kernels on flat arrays + offsets: SPEC §2 selection and overlap removal
(``selection``), b-tagging (``btag``), SPEC §3 node assembly (``features``),
SPEC §4 multilabels (``labels``). ``process_block`` runs them all on an event record."""

from __future__ import annotations

__all__ = ["process_block", "NodeBlock"]


def __getattr__(name: str):
    if name in __all__:
        from hepfm_data.kernels import features

        return getattr(features, name)
    raise AttributeError(f"module 'hepfm_data.kernels' has no attribute {name!r}")
