"""The model zoo: the CCN-2022 DenseNet, its trained variants x seeds, training (one seed,
or several seeds at once: ``train(models, data, seeds=[...])``,
``train_variant(variant, seeds=[...])``) and checkpoints (safetensors + JSON sidecar,
never pickle), each checkpoint filed under the recipe that made it."""

from ._checkpoint import build, load, read_info, save
from ._densenet import ARCHITECTURES, PAPER_LAYERS, CCNDenseNet, check_input_shape
from ._registry import (
    FULL,
    ON_PROBLEM,
    QUICK,
    VARIANTS,
    check_on_problem,
    checkpoint_path,
    list_models,
    load_model,
    recipe,
    recipe_key,
    train_variant,
    training_data,
)
from ._train import TrainHistory, accuracy, evaluate, train

__all__ = [
    "ON_PROBLEM",
    "check_on_problem",
    "ARCHITECTURES",
    "CCNDenseNet",
    "FULL",
    "PAPER_LAYERS",
    "QUICK",
    "TrainHistory",
    "VARIANTS",
    "accuracy",
    "build",
    "check_input_shape",
    "checkpoint_path",
    "evaluate",
    "list_models",
    "load",
    "load_model",
    "read_info",
    "recipe",
    "recipe_key",
    "save",
    "train",
    "train_variant",
    "training_data",
]
