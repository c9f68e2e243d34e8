"""hepfm_models: the graph network of arXiv:2412.10665 (SPEC §5) and its training tools.

Imports only :mod:`hepfm_data.batches.graph` from the data layer (never storage).
"""

from .backbones import PretrainedError, available_pretrained, pretrained
from .checkpoint import load_checkpoint, save_checkpoint
from .cka import ensemble_cka, layerwise_cka, linear_cka
from .losses import loss_fn, multiclass_loss, multilabel_loss
from .metrics import (
    accuracy,
    background_rejection,
    binary_scores,
    data_efficiency,
    max_sic,
    rejection_statistics,
    roc_auc,
    roc_curve,
    wasserstein_1d,
)
from .model import (
    GraphNet,
    ModelConfig,
    count_parameters,
    freeze,
    parameter_groups,
    reference_forward,
    replace_head,
)
from .rs3l import BackboneConfig, EdgeConvBackbone, LinearProbe, nt_xent
from .training import (
    DistInfo,
    FitResult,
    TrainConfig,
    collect,
    collect_stages,
    evaluate,
    fit,
    setup_distributed,
    time_to_accuracy,
)
from .vigl import DeepSetsHead, EventClassifier, JetBackbone, JetBackboneConfig, JetTagger

__all__ = [
    "GraphNet", "ModelConfig", "count_parameters", "freeze", "parameter_groups", "reference_forward",
    "replace_head", "loss_fn", "multiclass_loss", "multilabel_loss", "accuracy", "roc_auc", "roc_curve",
    "background_rejection", "binary_scores", "linear_cka", "ensemble_cka", "layerwise_cka", "save_checkpoint",
    "load_checkpoint", "TrainConfig", "DistInfo", "FitResult", "fit", "evaluate", "collect", "collect_stages",
    "setup_distributed", "time_to_accuracy", "nt_xent", "EdgeConvBackbone", "BackboneConfig", "LinearProbe",
    "wasserstein_1d", "pretrained", "available_pretrained", "PretrainedError", "max_sic", "rejection_statistics",
    "data_efficiency",
    "JetBackbone", "JetBackboneConfig", "DeepSetsHead", "EventClassifier", "JetTagger",
]
