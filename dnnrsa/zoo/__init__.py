"""The model zoo: the CCN-2022 DenseNet, its trained variants x seeds, training and
checkpoints (safetensors + JSON sidecar, never pickle)."""

from ._checkpoint import build, load, read_info, save
from ._densenet import ARCHITECTURES, PAPER_LAYERS, CCNDenseNet
from ._registry import (
    FULL,
    QUICK,
    VARIANTS,
    checkpoint_path,
    load_model,
    train_variant,
    training_data,
)
from ._train import TrainHistory, evaluate, train

__all__ = [
    "ARCHITECTURES",
    "CCNDenseNet",
    "FULL",
    "PAPER_LAYERS",
    "QUICK",
    "TrainHistory",
    "VARIANTS",
    "build",
    "checkpoint_path",
    "evaluate",
    "load",
    "load_model",
    "read_info",
    "save",
    "train",
    "train_variant",
    "training_data",
]
