"""The study's trained variants x seeds: where their checkpoints live, how to train them,
and how to load them by name."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._utils import check_choice, check_positive_int, dnnrsa_home, logger
from ._checkpoint import build, load, save
from ._train import train


@dataclass(frozen=True)
class Variant:
    """One trained variant of the study: what it learns and from which data."""

    name: str
    target: str | None
    paper_data: str | None
    synthetic_data: str | None
    description: str


VARIANTS = {
    "expression": Variant("expression", "expression", "fer2013", "synthetic_expressions",
                          "7 facial expressions (FER2013 Training; synthetic: synthetic_expressions)"),
    "identity": Variant("identity", "identity", "celeba", "synthetic_identities",
                        "face identity (1,503 CelebA identities; synthetic: synthetic_identities)"),
    "scene": Variant("scene", "scene", "uc_merced", "synthetic_scenes",
                     "21 aerial scene classes (UC Merced; synthetic: synthetic_scenes)"),
    "untrained": Variant("untrained", None, None, None,
                         "the same architecture, randomly initialised, never trained"),
}

DATA_SOURCES = ("synthetic", "paper")

#: Settings of a ``quick`` run: a narrow net on small images, Adam and few epochs, so that
#: a variant trains in about half a minute on two CPU cores. Not the paper's protocol:
#: - no dropout: Dropout2d(0.1) drops whole channels, and with 8-channel layers that kept
#:   the net at chance for 8 epochs of 1,400 synthetic images (0.36-0.46 without, by epoch 10);
#: - Adam at 2e-3: SGD at lr 0.1 stayed on the initial loss plateau for 10 epochs;
#: - the head pools the whole 8 x 8 dense3 map; training faces vary less in yaw (+-10 deg).
QUICK = dict(
    arch=dict(growth=8, input_size=32, pool=8, dropout=0.0),
    epochs=10,
    batch_size=32,
    optimizer="adam",
    lr=2e-3,
    lr_step=100,
    data=dict(
        expression=dict(n_images=1400, n_identities=200, yaw_jitter=10.0),
        identity=dict(n_identities=40, n_images_per_identity=25, yaw_jitter=10.0),
        scene=dict(n_per_class=50),
    ),
)

#: Settings of a full run: the paper's network and protocol.
FULL = dict(
    arch=dict(growth=32, input_size=48),
    epochs=200,
    batch_size=64,
    optimizer="sgd",
    lr=0.1,
    lr_step=30,
    data=dict(
        expression=dict(n_images=28709, n_identities=2000),
        identity=dict(n_identities=1503, n_images_per_identity=19),
        scene=dict(n_per_class=100),
    ),
)


def check_variant(variant: str) -> Variant:
    check_choice("variant", variant, VARIANTS)
    return VARIANTS[variant]


def checkpoint_path(variant: str, seed: int = 0, *, data: str = "synthetic",
                    home: str | os.PathLike | None = None) -> Path:
    """Where the checkpoint of ``variant`` x ``seed`` trained on ``data`` lives:
    ``HOME/models/DATA/VARIANT/seedNN.safetensors`` (HOME: ``$DNNRSA_HOME`` or
    ``~/.cache/dnnrsa``)."""
    check_variant(variant)
    check_choice("data", data, DATA_SOURCES)
    seed = check_positive_int("seed", seed, 0)
    return dnnrsa_home(home) / "models" / data / variant / f"seed{seed:02d}.safetensors"


def training_data(variant: str, *, data: str = "synthetic", quick: bool = False,
                  seed: int = 0, size: int | None = None, data_root=None):
    """The (train, test) StimulusSets a variant learns from."""
    from .. import datasets

    v = check_variant(variant)
    check_choice("data", data, DATA_SOURCES)
    if v.target is None:
        raise ValueError("The untrained variant has no training data.")
    preset = QUICK if quick else FULL
    size = preset["arch"]["input_size"] if size is None else size
    opts = dict(preset["data"][variant])
    if data == "synthetic":
        make = getattr(datasets, v.synthetic_data)
        # The data seed is fixed across network seeds: seeds vary the initialisation
        # and batch order, as in the study, not the training images.
        return (make(split="train", size=size, seed=0, **opts),
                make(split="test", size=size, seed=0, **opts))
    from ..datasets import data_root as _data_root

    def root(name):
        return _data_root(data_root) / name

    loaders = {
        "expression": lambda split: datasets.fer2013(
            root("fer2013"), split={"train": "train", "test": "public_test"}[split], size=size),
        "identity": lambda split: datasets.celeba_identities(root("celeba"), split=split,
                                                              size=size),
        "scene": lambda split: datasets.uc_merced(root("uc_merced"), split=split, size=size),
    }
    return loaders[variant]("train"), loaders[variant]("test")


def datasets_augment(variant: str) -> str | None:
    from ..datasets import CELEBA_TRAIN_AUGMENT

    return CELEBA_TRAIN_AUGMENT if variant == "identity" else None


def train_variant(
    variant: str,
    seed: int = 0,
    *,
    data: str = "synthetic",
    quick: bool = False,
    epochs: int | None = None,
    home: str | os.PathLike | None = None,
    device: Any = "auto",
    data_root=None,
    progress: bool | None = None,
    overwrite: bool = False,
) -> Path:
    """Train one variant x seed with the study's protocol (or the quick preset) and save
    it where :func:`load_model` finds it.

    Parameters
    ----------
    variant : {"expression", "identity", "scene", "untrained"}
    seed : int
        Network seed: initialisation, batch order and dropout.
    data : {"synthetic", "paper"}
        ``"synthetic"`` trains on dnnrsa's rendered sets; ``"paper"`` on the local copies
        of FER2013, CelebA and UC Merced (see ``dnnrsa data list``).
    quick : bool
        A narrow network on 32 x 32 images for a few epochs (minutes on a CPU) instead of
        the paper's network and 200 epochs.
    epochs : int, optional
        Override the preset's number of epochs.
    home : path, optional
        Models folder (default ``$DNNRSA_HOME`` or ``~/.cache/dnnrsa``).
    overwrite : bool
        Retrain even when the checkpoint exists.

    Returns
    -------
    pathlib.Path
        The checkpoint written.
    """
    v = check_variant(variant)
    path = checkpoint_path(variant, seed, data=data, home=home)
    if path.exists() and not overwrite:
        logger.info("%s seed %d already trained at %s", variant, seed, path)
        return path
    preset = QUICK if quick else FULL
    if v.target is None:
        n_classes = 7
        torch.manual_seed(seed)
        model = build("ccn2022", n_classes=n_classes, **preset["arch"])
        model.dnnrsa_info = dict(seed=int(seed), epoch=0, target=None, classes=None,
                                 data=None, test_accuracy=None)
        return save(model, path, variant=variant, quick=bool(quick), data_source=data)
    train_set, test_set = training_data(variant, data=data, quick=quick,
                                        size=preset["arch"]["input_size"], data_root=data_root)
    n_classes = len(train_set.classes(v.target))
    torch.manual_seed(seed)
    model = build("ccn2022", n_classes=n_classes, **preset["arch"])
    # The paper flipped CelebA images for the identity networks; its FER2013 flip never
    # fired (quirk 1 of PAPER.md), so expression networks train without augmentation.
    augment = datasets_augment(variant)
    hist = train(
        model, train_set, target=v.target, test=test_set, test_every=5,
        epochs=preset["epochs"] if epochs is None else epochs,
        batch_size=preset["batch_size"], optimizer=preset["optimizer"], lr=preset["lr"],
        lr_step=preset["lr_step"],
        augment=augment, seed=seed, device=device, progress=progress,
    )
    logger.info("%s seed %d: train accuracy %.3f, test accuracy %.3f (%.0f s)", variant, seed,
                hist.train_accuracy[-1], hist.test_accuracy[-1], hist.seconds)
    model.dnnrsa_info["data"].update(source=data, test=test_set.name, n_test=len(test_set))
    return save(model, path, variant=variant, quick=bool(quick), data_source=data)


def load_model(
    variant: str | os.PathLike,
    seed: int = 0,
    *,
    data: str = "synthetic",
    home: str | os.PathLike | None = None,
    device: Any = "cpu",
) -> nn.Module:
    """Load a trained variant x seed of the study from the models folder, or a checkpoint
    from a path.

    Parameters
    ----------
    variant : {"expression", "identity", "scene", "untrained"} or path
        A variant name, or the path of a ``.safetensors`` checkpoint.
    seed : int
        Which of the variant's networks.
    data : {"synthetic", "paper"}
        Which training data the network saw.
    home : path, optional
        Models folder (default ``$DNNRSA_HOME`` or ``~/.cache/dnnrsa``).

    Returns
    -------
    torch.nn.Module
        The network in eval mode, ``model.dnnrsa_info`` holding its sidecar.

    Examples
    --------
    >>> model = dnnrsa.load_model("expression", seed=3)  # doctest: +SKIP
    """
    if isinstance(variant, os.PathLike) or (isinstance(variant, str) and variant not in VARIANTS
                                            and (os.sep in variant or variant.endswith(".safetensors"))):
        return load(variant, device=device)
    path = checkpoint_path(variant, seed, data=data, home=home)
    if not path.exists():
        if not path.parent.parent.parent.exists():
            where = f"the models folder {path.parent.parent.parent} does not exist"
        else:
            where = f"there is no checkpoint at {path}"
        raise FileNotFoundError(
            f"No trained {variant!r} network for seed {seed} ({data} data): {where}. Train it "
            f"with `dnnrsa train {variant} --seed {seed} --data {data}` (add --quick for a "
            "small CPU run), or point DNNRSA_HOME at a folder that has it."
        )
    model = load(path, device=device)
    model.dnnrsa_info.setdefault("variant", variant)
    return model
