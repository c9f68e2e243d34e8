"""RS3L (SPEC §7.2): contrastive pretraining on re-simulated views, then fine-tuning.

    hepfm-data build ZH --generate 20000 --keep-hard-process --out stores
    hepfm-data build ttbar --generate 20000 --keep-hard-process --out stores
    hepfm-data resimulate stores/ZH --views seed,fsr_up,fsr_down,vincia,lund_z
    hepfm-data resimulate stores/ttbar --views seed,fsr_up,fsr_down,vincia,lund_z
    python recipes/rs3l.py recipes/configs/rs3l_paper.yaml --out=runs/rs3l_paper

On jet constituents (the paper's setting; ``input: jet_constituents``, recipes/configs/rs3l.yaml):

    hepfm-data build rs3l_hz --generate 100000 --keep-hard-process --out stores
    hepfm-data build rs3l_zjet --generate 100000 --keep-hard-process --out stores
    hepfm-data resimulate stores/rs3l_hz --views seed,fsr_up,fsr_down,vincia,lund_z
    hepfm-data resimulate stores/rs3l_zjet --views seed,fsr_up,fsr_down,vincia,lund_z
    python recipes/rs3l.py recipes/configs/rs3l.yaml --out=runs/rs3l

This is one seed on stores you built. The study (stores and views generated from seeds, several seeds, one
result per run, resumable, RS3L.md) is ``python -m recipes.rs3l_study recipes/configs/rs3l_study.yaml``
(recipes/rs3l_study.py), which runs :func:`pretrain`, :func:`finetune` and :func:`evaluate` of this module.

1. Pretraining: the EdgeConv backbone (``hepfm_models.rs3l``) on batches of nominal events
   (``input: paper``; ``Paired("paper", views)``) or selected large-R jets (``input: jet_constituents``;
   ``Paired(jet_constituents, views)``: each nominal jet with the ΔR-matched jet of the same event in one view,
   jets without a match counted as ``unpaired`` in the history) each paired with one of its views
   drawn at random, NT-Xent loss (temperature 0.1); no labels are used.
2. Downstream (signal vs background, labels from the process): one Linear layer to a logit on the
   backbone, ``fixed`` (pretrained backbone frozen), ``floating`` (pretrained, all trained) and
   ``supervised`` (same network from scratch).
3. Evaluation on the test split: background rejection at signal efficiency 0.3 / 0.5 / 0.7 on the
   nominal events, and the 1-D Wasserstein distance between the classifier outputs on the nominal
   events and on each view type (the same events re-simulated). Writes ``results.json``,
   ``results.md`` and ``rs3l.png``; the pretrained backbone is reused on a re-run.

``input: jet_constituents`` classifies large-R jets from their 15 constituent features (H -> bb̄
jets of rs3l_hz vs QCD jets of rs3l_zjet, labels from the process), kNN in (Δη, Δφ); ``cuts``
overrides the representation's jet cuts (the tiny test config relaxes |η| < 0.1). ``input: paper``
runs on the paper's event graph of two generated processes (ZH vs tt̄). Stand-ins: the views'
"another generator" is Vincia / Lund-string variations (Herwig 7 is not installable here).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python recipes/rs3l.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from hepfm_models import BackboneConfig, EdgeConvBackbone, LinearProbe, background_rejection, nt_xent, wasserstein_1d
from recipes.common import DEFAULT_THREADS, ConfigError, DataConfig, catalog_of, parse_args, setup, stream, to_dict, write_json

EFFICIENCIES = (0.3, 0.5, 0.7)
VARIANTS = ("fixed", "floating", "supervised")


@dataclass
class PretrainSection:
    epochs: int = 20
    lr: float = 1e-3
    temperature: float = 0.1


@dataclass
class FinetuneSection:
    epochs: int = 20
    lr: float = 1e-3


INPUTS = ("paper", "jet_constituents")


@dataclass
class RS3LConfig:
    signal: str = "ZH"
    background: str = "ttbar"
    input: str = "paper"  # "paper" (event graph) | "jet_constituents" (large-R jets)
    cuts: dict = field(default_factory=dict)  # jet_constituents: overrides of pt_min / abs_eta_max / mass_min
    views: list[str] = field(default_factory=lambda: ["seed", "fsr_up", "fsr_down", "vincia", "lund_z"])
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    data: DataConfig = field(default_factory=DataConfig)
    # the model's own config; n_types is set from the catalog's object types for input: paper
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    pretrain: PretrainSection = field(default_factory=PretrainSection)
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    out: str = "runs/rs3l"
    seed: int = 0
    threads: int = DEFAULT_THREADS
    device: str = "auto"


def _urls(cfg: RS3LConfig) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Nominal store URLs {process: url} and their view store URLs {url: [view url per cfg.views]}."""
    from hepfm_data.core.errors import HepfmError
    from hepfm_data.pipelines.resimulate import open_view
    from hepfm_data.store import open_store

    root = cfg.data.stores.rstrip("/")
    nominal, views = {}, {}
    for name in (cfg.signal, cfg.background):
        url = f"{root}/{name}"
        try:
            open_store(url)
            views[url] = [open_view(url, v).url for v in cfg.views]
        except (HepfmError, FileNotFoundError) as exc:
            raise ConfigError(f"RS3L needs {url} and its views {cfg.views} (hepfm-data build {name} --generate N "
                              f"--keep-hard-process; hepfm-data resimulate {url} --views {','.join(cfg.views)}): "
                              f"{exc}") from None
        nominal[name] = url
    return nominal, views


def _jets(cfg: RS3LConfig) -> bool:
    return cfg.input == "jet_constituents"


def _spec(cfg: RS3LConfig):
    """The point-cloud representation of ``input: jet_constituents`` with the config's ``cuts``."""
    import dataclasses

    from hepfm_data.representations import JET_CONSTITUENTS

    if not isinstance(cfg.cuts, dict):
        raise ConfigError(f"cuts: expected a mapping, got {cfg.cuts!r}")
    known = {"pt_min", "abs_eta_max", "mass_min", "max_constituents"}
    bad = sorted(set(cfg.cuts) - known)
    if bad:
        raise ConfigError(f"cuts: unknown {bad}; known: {sorted(known)}")
    spec = JET_CONSTITUENTS
    return dataclasses.replace(spec, name=f"{spec.name}_custom", **cfg.cuts) if cfg.cuts else spec


def _representation(cfg: RS3LConfig, views: dict[str, list[str]] | None = None):
    """The loader's representation: view pairs (``views`` given) or single examples, for the config's input."""
    from hepfm_data.representations import Paired

    rep = _spec(cfg) if _jets(cfg) else "paper"
    return rep if views is None else Paired(rep, views, names=cfg.views)


def _backbone(cfg: RS3LConfig, seed: int) -> EdgeConvBackbone:
    torch.manual_seed(seed)
    if _jets(cfg):
        return EdgeConvBackbone.for_constituents(cfg.backbone)
    n_types = len(catalog_of(cfg.data).graph.object_types)
    return EdgeConvBackbone(dataclasses.replace(cfg.backbone, n_types=n_types))


def pretrain(cfg: RS3LConfig, dist, nominal: dict[str, str], views: dict[str, list[str]], path: Path):
    """Contrastive pretraining (NT-Xent on nominal/view pairs) -> (the backbone, the history per epoch with the
    training loop's jets/s: both jets of each pair counted); the backbone is saved to ``path`` (safetensors) and
    reused from there when it exists."""
    from safetensors.torch import load_file, save_file

    model = _backbone(cfg, cfg.seed).to(dist.device)
    if path.exists():
        model.load_state_dict(load_file(str(path)))
        return model, []
    loader = stream(list(nominal.values()), "train", cfg.data, dist, labels={cfg.signal: 1, cfg.background: 0},
                    seed=cfg.seed, mixing="none", representation=_representation(cfg, views))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.pretrain.lr)
    history = []
    for epoch in range(cfg.pretrain.epochs):
        loader.set_epoch(epoch)
        t0, tot, n, unpaired = time.time(), 0.0, 0, 0
        for batch in loader:
            unpaired += int(batch.unpaired.sum()) if getattr(batch, "unpaired", None) is not None else 0
            pairs = _size(batch) // 2
            if pairs < 2:  # no negatives (a jet batch may hold 0 or 1 selected jets)
                continue
            z = model(batch)
            loss = nt_xent(z[0::2], z[1::2], cfg.pretrain.temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot, n = tot + loss.item() * pairs, n + pairs
        seconds = time.time() - t0
        history.append({"epoch": epoch, "loss": tot / max(n, 1), "pairs": n, "unpaired": unpaired,
                        "seconds": seconds, "jets_per_s": 2 * n / max(seconds, 1e-9)})
        print(f"  pretrain epoch {epoch}: NT-Xent {history[-1]['loss']:.4f} on {n} pairs, {unpaired} unpaired "
              f"({history[-1]['seconds']:.1f} s)")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(path))
    return model, history


def _size(batch) -> int:
    """Examples in a batch: events of a GraphBatch, jets of a PointCloudBatch."""
    return len(batch.labels)


def _scores(model, stores: list[str], cfg: RS3LConfig, dist, split: str = "test"):
    loader = stream(stores, split, cfg.data, dist, labels={cfg.signal: 1, cfg.background: 0}, seed=0,
                    shuffle=False, mixing="none", representation=_representation(cfg))
    model.eval()
    scores, labels, ids = [], [], []
    with torch.no_grad():
        for batch in loader:
            if _size(batch) == 0:
                continue
            scores.append(torch.sigmoid(model(batch)).cpu())
            labels.append(batch.labels.cpu())
            ids.append(batch.event_id.cpu())
    model.train()
    return torch.cat(scores), torch.cat(labels), torch.cat(ids)


def finetune(cfg: RS3LConfig, dist, variant: str, pretrained: EdgeConvBackbone | None, nominal: dict[str, str],
             stats: dict | None = None):
    """One downstream variant trained on the nominal train split (BCE) -> the probe (``pretrained`` unused, may
    be None, for ``supervised``); ``stats`` (given) receives the training loop's jets, seconds and jets/s."""
    backbone = _backbone(cfg, cfg.seed + 1).to(dist.device)
    if variant != "supervised":
        backbone.load_state_dict(pretrained.state_dict())
    torch.manual_seed(cfg.seed + 2)
    model = LinearProbe(backbone, fixed=(variant == "fixed")).to(dist.device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.finetune.lr)
    loader = stream(list(nominal.values()), "train", cfg.data, dist, labels={cfg.signal: 1, cfg.background: 0},
                    seed=cfg.seed + 10, mixing="reweight", representation=_representation(cfg))
    t0, jets = time.time(), 0
    for epoch in range(cfg.finetune.epochs):
        loader.set_epoch(epoch)
        for batch in loader:
            if _size(batch) == 0:
                continue
            jets += _size(batch)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(batch), batch.labels.float(), weight=batch.weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
    if stats is not None:
        seconds = time.time() - t0
        stats.update({"jets": jets, "seconds": seconds, "jets_per_s": jets / max(seconds, 1e-9)})
    return model


def evaluate(cfg: RS3LConfig, dist, model, nominal: dict[str, str], views: dict[str, list[str]]) -> dict:
    """Rejection at the signal efficiencies (nominal test split) and Wasserstein per view type."""
    s, y, ids = _scores(model, list(nominal.values()), cfg, dist)
    out = {"rejection": {str(e): background_rejection(s, y, e) for e in EFFICIENCIES}, "wasserstein": {},
           "n_test": int(len(s))}
    for k, name in enumerate(cfg.views):
        sv, yv, iv = _scores(model, [views[u][k] for u in nominal.values()], cfg, dist)
        # events pair 1:1 (paper); a view selects its own jets, so jets only share the events' split
        if not _jets(cfg) and not torch.equal(torch.sort(iv).values, torch.sort(ids).values):
            raise ConfigError(f"view {name!r}: its test events differ from the nominal ones (rebuild the views)")
        out["wasserstein"][name] = wasserstein_1d(s, sv)
    return out


def table(results: dict) -> str:
    views = list(next(iter(results.values()))["wasserstein"])
    head = "| variant | " + " | ".join(f"R@{e}" for e in EFFICIENCIES) + " | " + " | ".join(f"W({v})" for v in views) + " |"
    lines = [head, "|" + "---|" * (1 + len(EFFICIENCIES) + len(views))]
    for name, r in results.items():
        rej = " | ".join(f"{r['rejection'][str(e)]:.2f}" for e in EFFICIENCIES)
        was = " | ".join(f"{r['wasserstein'][v]:.4f}" for v in views)
        lines.append(f"| {name} | {rej} | {was} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    views = list(next(iter(results.values()))["wasserstein"])
    width = 0.8 / max(len(results), 1)
    for i, (name, r) in enumerate(results.items()):
        a.plot(EFFICIENCIES, [r["rejection"][str(e)] for e in EFFICIENCIES], "o-", label=name)
        b.bar([j + i * width for j in range(len(views))], [r["wasserstein"][v] for v in views], width, label=name)
    a.set(xlabel="signal efficiency", ylabel="background rejection", yscale="log", title="rejection (nominal test)")
    b.set_xticks([j + width * (len(results) - 1) / 2 for j in range(len(views))], views)
    b.set(ylabel="Wasserstein distance (nominal vs view)", title="robustness per view type")
    a.legend()
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_args(RS3LConfig, argv)
    bad = [v for v in cfg.variants if v not in VARIANTS]
    if bad:
        raise ConfigError(f"variants: unknown {bad}; known: {list(VARIANTS)}")
    if cfg.input not in INPUTS:
        raise ConfigError(f"input: unknown {cfg.input!r}; known: {list(INPUTS)}")
    dist = setup(cfg.device, cfg.threads, cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", to_dict(cfg))
    nominal, views = _urls(cfg)
    print(f"[1/3] contrastive pretraining on {list(nominal)} with views {cfg.views}")
    backbone, history = pretrain(cfg, dist, nominal, views, out / "backbone.safetensors")
    results = {}
    for variant in cfg.variants:
        print(f"[2/3] fine-tuning: {variant}")
        model = finetune(cfg, dist, variant, backbone, nominal)
        results[variant] = evaluate(cfg, dist, model, nominal, views)
    print("[3/3] results (test split)")
    text = table(results)
    print(text)
    write_json(out / "results.json", {"results": results, "pretrain_history": history, "signal": cfg.signal,
                                      "background": cfg.background,
                                      "representation": "jet_constituents" if _jets(cfg) else "paper (event graph)"})
    (out / "results.md").write_text(text)
    plot(results, out / "rs3l.png")
    return results


if __name__ == "__main__":
    main()
