"""Checkpoints: tensors in safetensors, everything else in JSON. Never pickle.

``save_checkpoint(path, model, ...)`` writes ``<path>.safetensors`` then
``<path>.json`` (each via temp file + rename; the JSON, written last, marks the
checkpoint complete). Optimizer state (Adam moments) is stored as tensors
``optim.<param index>.<name>`` beside the weights ``model.<name>``; its scalar
state and hyper-parameters go into the JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .model import GraphNet, ModelConfig
from .slots_model import SlotConfig

#: model kind (``config.kind``) -> its config class; ``config.build()`` makes the network
MODEL_KINDS = {"graph": ModelConfig, "slots": SlotConfig}

FORMAT = "hepfm-checkpoint"
FORMAT_VERSION = 1


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, doc: Any) -> None:
    """Write ``doc`` as JSON (indent 1, non-JSON numbers via ``float``) atomically, creating parent dirs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=1, default=float)))


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def save_checkpoint(path: str | os.PathLike, model: GraphNet, optimizer: torch.optim.Optimizer | None = None,
                    meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (+ ``optimizer`` state and JSON-able ``meta``); returns the JSON path."""
    st_path, json_path = _paths(path)
    st_path.parent.mkdir(parents=True, exist_ok=True)
    model = unwrap(model)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    optim_json = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for idx, state in sd["state"].items():
            for name, value in state.items():
                if isinstance(value, torch.Tensor) and value.ndim > 0:
                    tensors[f"optim.{idx}.{name}"] = value.detach().contiguous().cpu()
                else:
                    scalars.setdefault(str(idx), {})[name] = float(value)
        optim_json = {"param_groups": sd["param_groups"], "scalars": scalars}
    _atomic(st_path, lambda tmp: save_file(tensors, str(tmp)))
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_config": model.config.to_dict(),
           "model_kind": model.config.kind,
           "optimizer": optim_json, "meta": meta or {}}
    _atomic(json_path, lambda tmp: tmp.write_text(json.dumps(doc, indent=1, sort_keys=True)))
    return json_path


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(JSON document, tensors) of a checkpoint; raises ValueError naming the file when incomplete."""
    st_path, json_path = _paths(path)
    if not json_path.exists():
        raise ValueError(f"{json_path}: checkpoint JSON missing (an interrupted save, or the wrong path)")
    doc = json.loads(json_path.read_text())
    if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{json_path}: not a {FORMAT} v{FORMAT_VERSION} checkpoint")
    if not st_path.exists():
        raise ValueError(f"{st_path}: checkpoint tensors missing")
    return doc, load_file(str(st_path))


def load_checkpoint(path: str | os.PathLike, optimizer: torch.optim.Optimizer | None = None,
                    map_location: str | torch.device = "cpu") -> tuple[GraphNet, dict[str, Any]]:
    """Rebuild the model from a checkpoint (and restore ``optimizer`` in place); returns (model, meta)."""
    doc, tensors = read_checkpoint(path)
    kind = doc.get("model_kind", "graph")  # checkpoints before slot models are graph networks
    if kind not in MODEL_KINDS:
        raise ValueError(f"{path}: unknown model kind {kind!r}; known: {sorted(MODEL_KINDS)}")
    model = MODEL_KINDS[kind].from_dict(doc["model_config"]).build()
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: checkpoint does not fit the model: missing {missing}, unexpected {unexpected}")
    model.to(map_location)
    if optimizer is not None:
        if doc["optimizer"] is None:
            raise ValueError(f"{path}: checkpoint holds no optimizer state")
        opt_state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                opt_state.setdefault(int(idx), {})[name] = value.to(map_location)
        for idx, scalars in doc["optimizer"]["scalars"].items():
            for name, value in scalars.items():
                opt_state.setdefault(int(idx), {})[name] = torch.tensor(value)
        optimizer.load_state_dict({"state": opt_state, "param_groups": doc["optimizer"]["param_groups"]})
    return model, doc["meta"]
