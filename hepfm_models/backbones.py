"""Shipped pretrained backbones (SPEC §6), loadable by name::

    from hepfm_models import pretrained
    model, card = pretrained("gn-multiclass")     # or "gn-multilabel"; GraphNet + its model card

A backbone is two files of package data in ``hepfm_models/pretrained/``: ``<name>.safetensors``
(the weights, as :func:`~hepfm_models.checkpoint.save_checkpoint` writes them) and ``<name>.json``
(the checkpoint JSON, whose ``meta`` is the **model card**): training data (process list with each
process's fidelity, events per process, generation seed and block size, so the sample can be
regenerated), epochs, validation metric with its statistical error, code version and the sha256
fingerprint of the weights file. :func:`pretrained` refuses weights whose fingerprint differs from
the card's. ``python -m recipes.reproduce CONFIG --export-backbones`` writes them from a study's
pretraining runs (:func:`write_pretrained`). Fine-tune from one with
``protocol.finetune(..., pretrained=pretrained_path(name))``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

#: the folder of the shipped backbones (package data)
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
#: the names the study exports: one backbone per pretraining mode (SPEC §4)
NAMES = {"multiclass": "gn-multiclass", "multilabel": "gn-multilabel"}
CARD_FORMAT = "hepfm-model-card"
CARD_VERSION = 1
#: fields every model card holds (``write_pretrained`` checks them, ``pretrained`` relies on them)
CARD_FIELDS = ("name", "mode", "classes", "training_data", "training", "validation", "code_version",
               "weights_sha256", "model_config")


class PretrainedError(ValueError):
    """A shipped backbone is unknown, incomplete, or its weights do not match its card."""


def weights_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes: the fingerprint of a weights file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dir(directory: str | os.PathLike | None) -> Path:
    return Path(directory) if directory is not None else PRETRAINED_DIR


def available_pretrained(directory: str | os.PathLike | None = None) -> list[str]:
    """Names of the backbones shipped in ``directory`` (default: the package folder), sorted."""
    d = _dir(directory)
    return sorted(p.stem for p in d.glob("*.json") if p.with_suffix(".safetensors").exists()) if d.is_dir() else []


def pretrained_path(name: str, directory: str | os.PathLike | None = None) -> Path:
    """The checkpoint path (without suffix) of shipped backbone ``name``; PretrainedError if not shipped."""
    names = available_pretrained(directory)
    if name not in names:
        shipped = ", ".join(names) if names else "none yet (the study's export writes them)"
        raise PretrainedError(f"no pretrained backbone {name!r} in {_dir(directory)}; shipped: {shipped}")
    return _dir(directory) / name


def model_card(name: str, directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """The model card (the checkpoint JSON's ``meta``) of shipped backbone ``name``."""
    path = pretrained_path(name, directory).with_suffix(".json")
    card = json.loads(path.read_text()).get("meta", {})
    missing = [k for k in CARD_FIELDS if k not in card]
    if card.get("format") != CARD_FORMAT or missing:
        raise PretrainedError(f"{path}: not a {CARD_FORMAT} (missing {missing or ['format']})")
    return card


def pretrained(name: str, directory: str | os.PathLike | None = None, map_location: str = "cpu",
               verify: bool = True):
    """(GraphNet, model card) of shipped backbone ``name`` ("gn-multiclass", "gn-multilabel").

    With ``verify`` (default) the weights file's sha256 must equal the card's ``weights_sha256``.
    """
    from .checkpoint import load_checkpoint

    base = pretrained_path(name, directory)
    card = model_card(name, directory)
    if verify:
        got = weights_sha256(base.with_suffix(".safetensors"))
        if got != card["weights_sha256"]:
            raise PretrainedError(f"{base}.safetensors: sha256 {got} does not match its model card's "
                                  f"{card['weights_sha256']} (a modified or truncated weights file)")
    model, _ = load_checkpoint(base, map_location=map_location)
    return model, card


def write_pretrained(checkpoint: str | os.PathLike, card: dict[str, Any],
                     directory: str | os.PathLike | None = None) -> Path:
    """Ship the checkpoint at ``checkpoint`` (path without suffix) as ``<directory>/<card['name']>``.

    Copies the weights, adds ``format`` and ``weights_sha256`` to ``card`` and writes the checkpoint
    JSON with the card as its ``meta`` (weights first, JSON last, each via temp + rename).
    Returns the JSON path."""
    from .checkpoint import _atomic, _paths

    st, js = _paths(checkpoint)
    if not st.exists() or not js.exists():
        raise PretrainedError(f"{checkpoint}: no complete checkpoint to ship (.safetensors + .json)")
    card = {"format": CARD_FORMAT, "format_version": CARD_VERSION, **card, "weights_sha256": weights_sha256(st)}
    doc = json.loads(js.read_text())
    card.setdefault("model_config", doc["model_config"])
    missing = [k for k in CARD_FIELDS if k not in card]
    if missing:
        raise PretrainedError(f"model card for {checkpoint}: missing field(s) {missing}")
    out = _dir(directory)
    out.mkdir(parents=True, exist_ok=True)
    base = out / card["name"]
    _atomic(base.with_suffix(".safetensors"), lambda tmp: shutil.copyfile(st, tmp))
    doc = {**doc, "optimizer": None, "meta": card}
    _atomic(base.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n"))
    return base.with_suffix(".json")
