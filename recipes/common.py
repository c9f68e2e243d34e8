"""Shared by the recipes: config dataclasses, YAML + ``--key=value`` overrides, DDP setup, data.

Every recipe is ``python recipes/<name>.py [CONFIG.yaml] [--section.key=value ...]``
(or under ``torchrun --nproc_per_node=K``). The YAML is read with ``yaml.safe_load``
into the recipe's dataclass; each override's value is parsed as YAML too
(``--train.epochs=3``, ``--data.processes=[ggF_H,VBF_H]``, ``--train.betas=[0.9,0.99]``).
Unknown keys and wrongly typed values raise :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from hepfm_data.core.errors import HepfmError
from hepfm_models import ModelConfig
from hepfm_models.checkpoint import write_json  # re-exported: the one atomic JSON writer
from hepfm_models.protocol import EventSet
from hepfm_models.training import DistInfo, cleanup_distributed, setup_distributed

__all__ = ["atomic_write", "ConfigError", "DataConfig", "ModelSection", "load_config", "parse_args", "to_dict", "setup",
           "cleanup_distributed", "catalog_of", "find_stores", "stream", "class_split", "task_split", "task_sets",
           "write_json"]


class ConfigError(HepfmError):
    """A recipe config file or override is malformed: names the key."""


# ----------------------------------------------------------------------------- sections
@dataclass
class DataConfig:
    """Where the stores are and how to batch them."""

    stores: str = "stores"  # root holding <process>/manifest.json (path or fsspec URL)
    processes: list[str] = field(default_factory=list)  # pretraining: [] = every pretraining store present
    batch_size: int = 256
    num_workers: int = 0  # DataLoader worker processes per rank
    val_events: int = 0  # pretraining: cap on validation events (0 = the whole split)
    block_size: int = 0  # loader read/shuffle block (events); 0 = the layout's default
    catalog: str = ""  # catalog YAML ("" = the packaged catalog.yaml): task classes, processes, labels


@dataclass(frozen=True)
class ModelSection:
    """SPEC §5 architecture (the number of outputs comes from the task)."""

    width: int = 64
    depth: int = 4
    n_steps: int = 4
    shared_block: bool = True

    def model_config(self, n_out: int = 2) -> ModelConfig:
        return ModelConfig(n_out=n_out, width=self.width, depth=self.depth, n_steps=self.n_steps,
                           shared_block=self.shared_block)


# ----------------------------------------------------------------------------- parsing
def check_config(name: str, checks: list[tuple[bool, str]]) -> None:
    """Raise :class:`ConfigError` ``"<name> config: <message>"`` for the first ``(ok, message)`` that fails."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{name} config: {message}")


def _coerce(value: Any, typ: Any, key: str) -> Any:
    origin = typing.get_origin(typ)
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r}: expected a mapping, got {value!r}")
        return build(typ, value, key)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r}: expected a list, got {value!r}")
        args = typing.get_args(typ)
        item = args[0] if args else Any
        out = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if typ is Any:
        return value
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is float and isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if typ in (int, float, str, bool) and not (isinstance(value, typ) and not (typ is int and isinstance(value, bool))):
        raise ConfigError(f"config key {key!r}: expected {typ.__name__}, got {value!r}")
    return value


def build(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """Instantiate dataclass ``cls`` from a nested dict; unknown keys raise ConfigError."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown config key(s) {[prefix + u for u in unknown]}; known: {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in values.items()}
    return cls(**kwargs)


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override --{dotted}: {p!r} is not a section")
    node[leaf] = value


def load_config(cls: type, path: str | Path | None = None, overrides: list[str] | None = None) -> Any:
    """``cls`` built from the YAML file ``path`` (optional) with ``--key=value`` ``overrides`` applied."""
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            tree = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"{path}: the config must be a mapping")
    for item in overrides or []:
        if not item.startswith("--") or "=" not in item:
            raise ConfigError(f"override {item!r}: expected --key=value")
        key, raw = item[2:].split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        _set(tree, key, value)
    try:
        return build(cls, tree)
    except ConfigError as exc:
        raise ConfigError(f"{path or 'config'}: {exc}") from None


def parse_args(cls: type, argv: list[str] | None = None) -> Any:
    """``[CONFIG.yaml] [--key=value ...]`` from ``argv`` (default ``sys.argv[1:]``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: [CONFIG.yaml] [--key=value ...]\ndefaults:\n{yaml.safe_dump(to_dict(cls()), sort_keys=False)}")
        raise SystemExit(0)
    path = argv.pop(0) if argv and not argv[0].startswith("--") else None
    return load_config(cls, path, argv)


def parse_study(cls: type, argv: list[str] | None, doc: str | None) -> tuple[Any, dict[str, Any]]:
    """A study recipe's ``[CONFIG.yaml] [--report-only] [--key=value ...]`` (default ``sys.argv[1:]``) ->
    (``cls`` config, {"report_only": bool, "config": the file or ""}); ``-h`` / ``--help`` prints ``doc``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(doc)
        raise SystemExit(0)
    opts: dict[str, Any] = {"report_only": "--report-only" in argv}
    rest = [a for a in argv if a != "--report-only"]
    path = rest.pop(0) if rest and not rest[0].startswith("--") else None
    opts["config"] = path or ""
    return load_config(cls, path, rest), opts


def study_main(parse: Callable[[list[str] | None], tuple[Any, dict[str, Any]]], run: Callable[..., Any],
               argv: list[str] | None = None) -> int:
    """The command of a study recipe: ``run(cfg, config name, report_only=...)``; 2 on a config error."""
    try:
        cfg, opts = parse(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run(cfg, opts["config"] or "defaults", report_only=opts["report_only"])
    return 0


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON/YAML-able dict of a config (tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it to ``path`` (readers never see
    a partial file); creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- runtime
#: default torch intra-op threads per rank. torch's own default (one per core) collapses when
#: another job shares the CPU (stop_vs_ttH, 20k events: 235 s/epoch with 2 threads on a busy
#: 2-core machine, 24 s with 1, 17.8 s with 2 when idle); set ``--threads=N`` (0 = torch's choice).
DEFAULT_THREADS = 1


def setup(device: str = "auto", threads: int = DEFAULT_THREADS, seed: int = 0) -> DistInfo:
    """torchrun-aware start: process group (gloo on CPU, nccl on GPU), device, threads, seed."""
    if threads > 0:
        torch.set_num_threads(threads)
    dist = setup_distributed(device)
    torch.manual_seed(seed)
    return dist


# ----------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=4)
def _load(path: str):
    from hepfm_data.core.catalog import load_catalog

    return load_catalog(path or None)


def catalog_of(data: DataConfig):
    """The catalog of a run (``data.catalog``, default the packaged one), loaded once per path."""
    return _load(data.catalog)


def find_stores(root: str, processes: list[str] | None, catalog) -> list[str]:
    """Store URLs ``<root>/<process>`` for ``processes`` (all must exist), or — when empty —
    for every pretraining process of ``catalog`` whose store exists under ``root``, in catalog order."""
    from hepfm_data.store import open_store

    cat = catalog
    wanted = processes or [p.name for p in cat.pretraining]
    found = []
    for name in wanted:
        url = f"{str(root).rstrip('/')}/{name}"
        try:
            open_store(url)
        except (HepfmError, FileNotFoundError) as exc:
            if processes:
                raise ConfigError(f"data.processes: no usable store for {name!r} at {url}: {exc}") from None
            continue
        found.append(url)
    if not found:
        raise ConfigError(f"no pretraining stores under {root!r} (build some with `hepfm-data build`)")
    return found


def stream(stores: list[str], split: str, data: DataConfig, dist: DistInfo, labels: Any = None,
           seed: int = 0, shuffle: bool = True, multilabels: bool = False, **kw):
    """A resumable streaming loader (this rank's share) of GraphBatch on ``dist.device``."""
    from hepfm_data.loader import make_loader

    return make_loader(stores, split=split, labels=labels, batch_size=data.batch_size, seed=seed, shuffle=shuffle,
                       catalog=catalog_of(data),
                       num_workers=data.num_workers, device=dist.device, multilabels=multilabels,
                       block_size=data.block_size or None, rank=dist.rank, world_size=dist.world_size, **kw)


def class_split(stores: list[str], data: DataConfig, split: str, n_per_class: int, seed: int = 0,
                shuffle: bool = True, multilabels: bool = False, what: str = "",
                labels: Sequence[int] | None = None) -> EventSet:
    """``n_per_class`` events of ``split`` from each store URL of ``stores`` (0 = all), labelled by
    position (store k -> label k, or ``labels[k]``); with ``shuffle`` a random subset drawn with ``seed``
    (block-shuffled stream), else the first events in stored order. ``multilabels`` keeps the SPEC §4 label
    vectors. ``what`` names the caller in the error raised when a store holds too few events."""
    single = DistInfo()  # every rank holds the whole subset; EventSet.batches partitions it
    if labels is not None and len(labels) != len(stores):
        raise ConfigError(f"{what + ': ' if what else ''}{len(labels)} labels for {len(stores)} stores")
    parts = []
    for k, url in enumerate(stores):
        name = url.rstrip("/").rsplit("/", 1)[-1]
        label = k if labels is None else int(labels[k])
        loader = stream([url], split, data, single, labels={name: label}, seed=seed, shuffle=shuffle, mixing="none",
                        multilabels=multilabels)
        got = EventSet.take(loader, n_per_class or None)
        if n_per_class and len(got) < n_per_class:
            raise ConfigError(f"{what + ': ' if what else ''}store {url} has only {len(got)} {split} events, "
                              f"{n_per_class} per class were asked for")
        parts.append(got)
    return EventSet.concat(parts)


def task_split(root: str, task: str, data: DataConfig, split: str, n_per_class: int, seed: int = 0,
               shuffle: bool = True) -> EventSet:
    """``n_per_class`` events of each class of ``task`` from ``split`` (0 = all), labelled 0/1 by the
    task; with ``shuffle`` a random subset drawn with ``seed`` (block-shuffled stream), else the first
    events in stored order (:func:`class_split` on the task's stores under ``root``)."""
    cat = catalog_of(data)
    stores = [find_stores(root, [name], cat)[0] for name in cat.task(task).classes]
    return class_split(stores, data, split, n_per_class, seed, shuffle, what=f"task {task}")


def task_sets(root: str, task: str, data: DataConfig, n_train: int, n_val: int, n_test: int,
              seed: int = 0) -> tuple[EventSet, EventSet, EventSet]:
    """(train, validation, test) EventSets of a fine-tuning task: ``n_train`` random training
    events per class drawn with ``seed``; ``n_val`` / ``n_test`` per class: the first events of the
    validation / test splits in stored order, the same for every seed (the fixed test set)."""
    return (task_split(root, task, data, "train", n_train, seed, True),
            task_split(root, task, data, "validation", n_val, 0, False),
            task_split(root, task, data, "test", n_test, 0, False))
