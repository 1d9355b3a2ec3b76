"""The study's trained variants x seeds: the recipe that makes each checkpoint, where it
lives, how to train it and how to load it by name.

A checkpoint's place follows everything that decides its weights apart from the seed: the
variant, the training data (synthetic, with the renderer's version, or the real sets),
the preset (``quick`` or ``full``), the architecture and the training protocol (epochs
included). Those make a *recipe*; its key names the folder::

    $DNNRSA_HOME/models/<data>/<variant>/<preset>-<epochs>ep-<digest>/seedNN.safetensors

so a quick network and a full one, or 10 and 200 epochs, never share a path, and loading
by name checks the sidecar's recipe before handing a network back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from .. import datasets
from .._utils import (
    check_choice,
    check_positive_int,
    check_seed,
    check_seed_list,
    dnnrsa_home,
    logger,
    resolve_device,
    torch_seed,
)
from ._checkpoint import _PICKLE_SUFFIXES, _load, _read_info, build, load, read_info, save
from ._resume import check_keep_epochs, kept_epochs, kept_path, state_path
from ._train import check_speed_options, train


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

#: What training on the real data sets does with a copy's problems (the loaders'
#: ``on_problem``): "raise" (the paper's recipe) or "skip" (train on the usable part).
ON_PROBLEM = ("raise", "skip")

#: The data set each paper variant trains on, with its (train, test) splits.
PAPER_SPLITS = {"fer2013": ("train", "public_test"), "celeba": ("train", "test"),
                "uc_merced": ("train", "test")}

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


def recipe(variant: str, *, data: str = "synthetic", quick: bool = False,
           epochs: int | None = None, on_problem: str = "raise") -> dict:
    """Everything that decides a zoo checkpoint's weights apart from the seed, as a
    JSON-ready dict (written into each checkpoint's sidecar).

    Parameters
    ----------
    variant : {"expression", "identity", "scene", "untrained"}
    data : {"synthetic", "paper"}
        ``"synthetic"``: dnnrsa's rendered sets (the recipe records the renderer's
        ``dnnrsa.datasets.DATA_VERSION``); ``"paper"``: the local copies of FER2013,
        CelebA and UC Merced.
    quick : bool
        The quick preset (:data:`QUICK`) instead of the paper's protocol (:data:`FULL`).
    epochs : int, optional
        Override the preset's number of epochs. The untrained variant is never trained, so
        it takes none.
    on_problem : {"raise", "skip"}
        With ``data="paper"``: "skip" trains on the usable part of an incomplete or
        unverified copy, a recipe of its own (``training_data`` records
        ``on_problem="skip"``), so such a network is never loaded as one trained on a
        sound copy. Not applicable to synthetic data; ignored by the untrained variant.

    Returns
    -------
    dict
        ``variant``, ``data``, ``preset``, ``architecture`` (the options of
        :func:`dnnrsa.zoo.build`), ``training`` (the protocol, None when untrained) and
        ``training_data`` (which generator or data set, with its options; None when
        untrained). :func:`recipe_key` names it.
    """
    v = check_variant(variant)
    check_choice("data", data, DATA_SOURCES)
    check_on_problem(on_problem, data)
    preset_name = "quick" if quick else "full"
    preset = QUICK if quick else FULL
    architecture = dict(architecture="ccn2022", **preset["arch"])
    if v.target is None:
        if epochs is not None:
            raise ValueError(
                f"Argument epochs={epochs!r} does not apply to the untrained variant: it is "
                "initialised and never trained. Leave epochs unset."
            )
        return dict(variant=variant, data=data, preset=preset_name, architecture=architecture,
                    training=None, training_data=None)
    epochs = preset["epochs"] if epochs is None else check_positive_int("epochs", epochs, 1)
    training = dict(epochs=epochs, batch_size=preset["batch_size"],
                    optimizer=preset["optimizer"], lr=preset["lr"], lr_step=preset["lr_step"],
                    augment=augment_for(variant))
    if data == "synthetic":
        source = dict(generator=v.synthetic_data, version=datasets.DATA_VERSION,
                      **preset["data"][variant])
    else:
        source = dict(dataset=v.paper_data)
        if on_problem == "skip":
            source["on_problem"] = "skip"
    source["size"] = preset["arch"]["input_size"]
    return dict(variant=variant, data=data, preset=preset_name, architecture=architecture,
                training=training, training_data=source)


def check_on_problem(on_problem: str, data: str) -> None:
    """``on_problem`` is one of :data:`ON_PROBLEM` and, when "skip", asked of real data."""
    check_choice("on_problem", on_problem, ON_PROBLEM)
    if on_problem == "skip" and data != "paper":
        raise ValueError(
            f"Argument on_problem='skip' applies to data='paper' (local copies of the real "
            f"data sets), not to data={data!r}: the synthetic sets are rendered whole. Leave "
            "on_problem='raise' or pass data='paper'."
        )


def recipe_key(spec: dict) -> str:
    """The folder name of a recipe: ``<preset>-<epochs>ep-<digest>`` (``<preset>-init-``
    for the untrained variant), the digest being the first 8 hex digits of the SHA-256 of
    the recipe's canonical JSON. Readable at a glance, unique per recipe."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    training = spec.get("training")
    length = "init" if training is None else f"{training['epochs']}ep"
    return f"{spec['preset']}-{length}-{digest}"


def checkpoint_path(variant: str, seed: int = 0, *, data: str = "synthetic",
                    quick: bool = False, epochs: int | None = None,
                    home: str | os.PathLike | None = None, on_problem: str = "raise") -> Path:
    """Where the checkpoint of ``variant`` x ``seed`` made by the recipe
    (``data``, ``quick``, ``epochs``) lives:
    ``HOME/models/DATA/VARIANT/RECIPE_KEY/seedNN.safetensors`` (HOME: ``$DNNRSA_HOME`` or
    ``~/.cache/dnnrsa``; RECIPE_KEY: :func:`recipe_key`)."""
    spec = recipe(variant, data=data, quick=quick, epochs=epochs, on_problem=on_problem)
    seed = check_seed("seed", seed)
    return _variant_dir(variant, data, home) / recipe_key(spec) / f"seed{seed:02d}.safetensors"


def _variant_dir(variant: str, data: str, home) -> Path:
    return dnnrsa_home(home) / "models" / data / variant


def training_data(variant: str, *, data: str = "synthetic", quick: bool = False,
                  size: int | None = None, data_root=None, on_problem: str = "raise"):
    """The (train, test) StimulusSets a variant learns from.

    Parameters
    ----------
    variant : {"expression", "identity", "scene"}
    data : {"synthetic", "paper"}
        ``"paper"`` reads ``DATA_ROOT/{fer2013,celeba,uc_merced}`` with the data set's
        loader (checksums verified).
    quick : bool
        The quick preset's image size and (synthetic) set sizes.
    size : int, optional
        Image height and width (default: the preset's).
    data_root : path, optional
        Folder of the real data sets (default ``$DNNRSA_DATA``).
    on_problem : {"raise", "skip"}
        The loaders' option for ``data="paper"``: one error naming every problem of the
        copy, or one warning and the usable part.

    Returns
    -------
    tuple of StimulusSet
        (train, test).
    """
    v = check_variant(variant)
    check_choice("data", data, DATA_SOURCES)
    check_on_problem(on_problem, data)
    if v.target is None:
        raise ValueError("The untrained variant has no training data.")
    preset = QUICK if quick else FULL
    size = preset["arch"]["input_size"] if size is None else size
    if data == "synthetic":
        make = getattr(datasets, v.synthetic_data)
        opts = dict(preset["data"][variant])
        # The data seed is fixed across network seeds: seeds vary the initialisation
        # and batch order, as in the study, not the training images.
        return (make(split="train", size=size, seed=0, **opts),
                make(split="test", size=size, seed=0, **opts))
    base = datasets.data_root(data_root)
    name = v.paper_data
    load = getattr(datasets, _LOADERS[name])
    return tuple(load(base / name, split=split, size=size, on_problem=on_problem)
                 for split in PAPER_SPLITS[name])


_LOADERS = {"fer2013": "fer2013", "celeba": "celeba_identities", "uc_merced": "uc_merced"}


def augment_for(variant: str) -> str | None:
    """The paper flipped CelebA images for the identity networks; its FER2013 flip never
    fired (quirk 1 of PAPER.md), so expression networks train without augmentation."""
    return datasets.CELEBA_TRAIN_AUGMENT if variant == "identity" else None


def train_variant(
    variant: str,
    seed: int | None = None,
    *,
    seeds: Sequence[int] | None = None,
    data: str = "synthetic",
    quick: bool = False,
    epochs: int | None = None,
    home: str | os.PathLike | None = None,
    device: Any = "auto",
    data_root=None,
    progress: bool | None = None,
    overwrite: bool = False,
    on_problem: str = "raise",
    precision: str = "auto",
    channels_last: bool | None = None,
    compile: bool = False,
    resume: bool = False,
    keep_epochs: Sequence[int] | None = None,
    state_every: int | None = 1,
) -> Path | list[Path]:
    """Train one variant x seed, or several seeds together, with the study's protocol (or
    the quick preset) and save them where :func:`load_model` finds them.

    Parameters
    ----------
    variant : {"expression", "identity", "scene", "untrained"}
    seed : int, optional
        Network seed: initialisation, batch order and dropout (default 0).
    seeds : sequence of int, optional
        Several distinct seeds instead of ``seed``: those whose checkpoint is missing (all
        of them with ``overwrite``) train together in one process
        (:func:`dnnrsa.zoo.train` with a list of models), each exactly as it would alone,
        and each is saved to its own checkpoint with the sidecar it would have alone.
    data : {"synthetic", "paper"}
        ``"synthetic"`` trains on dnnrsa's rendered sets; ``"paper"`` on the local copies
        of FER2013, CelebA and UC Merced (see ``dnnrsa data list``).
    quick : bool
        A narrow network on 32 x 32 images for a few epochs (minutes on a CPU) instead of
        the paper's network and 200 epochs.
    epochs : int, optional
        Override the preset's number of epochs (a recipe of its own: it never overwrites
        or loads as the preset's network).
    home : path, optional
        Models folder (default ``$DNNRSA_HOME`` or ``~/.cache/dnnrsa``).
    overwrite : bool
        Retrain even when the checkpoint exists.
    on_problem : {"raise", "skip"}
        With ``data="paper"``: "skip" trains on the usable part of an incomplete copy (a
        recipe of its own, see :func:`recipe`).
    precision, channels_last, compile
        Passed to :func:`dnnrsa.zoo.train` (speed options; bf16 is recorded in the
        sidecar's ``protocol``).
    resume : bool
        Continue each seed still to train from its training state beside its checkpoint
        (``seedNN.state.pt``, written every ``state_every`` epochs), or train it from
        scratch where there is none (logged). A state of another run, or a corrupt one, is
        refused with a ValueError naming the file. Without ``resume`` an existing state is
        ignored and overwritten (logged). A state is removed once its checkpoint is saved.
    keep_epochs : sequence of int, optional
        Also save the network after these epochs (in 1..epochs, distinct) as
        ``seedNN-epochEEEE.safetensors`` beside the final checkpoint, each with the full
        sidecar (its ``epoch`` recorded); ``load_model(..., epoch=E)`` loads one. The final
        epoch is the ordinary checkpoint.
    state_every : int or None
        Epochs between training-state writes (default 1); None writes no state (nothing
        to resume from).

    Returns
    -------
    pathlib.Path or list of pathlib.Path
        The checkpoint written (or found); with ``seeds``, one per seed in their order.

    Examples
    --------
    >>> paths = train_variant("expression", seeds=range(10), quick=True)  # doctest: +SKIP
    """
    v = check_variant(variant)
    spec = recipe(variant, data=data, quick=quick, epochs=epochs, on_problem=on_problem)
    if seeds is not None and seed is not None:
        raise ValueError(
            f"Arguments seed={seed!r} and seeds={seeds!r} were both given: give seed for one "
            "network or seeds for several, not both."
        )
    many = seeds is not None
    seed_list = (check_seed_list("seeds", seeds, count_ok=False) if many
                 else [check_seed("seed", 0 if seed is None else seed)])
    check_speed_options(precision, channels_last, compile)
    if not isinstance(resume, bool):
        raise TypeError(f"Argument resume must be True or False, got {resume!r}.")
    if state_every is not None and (isinstance(state_every, bool)
                                    or not isinstance(state_every, int) or state_every < 1):
        raise ValueError(f"Argument state_every must be an integer >= 1 or None (no state "
                         f"files), got {state_every!r}.")
    if resume and state_every is None:
        raise ValueError("Argument resume=True needs training states: leave state_every at an "
                         "integer (default 1), not None.")
    if v.target is None and keep_epochs is not None:
        raise ValueError(f"Argument keep_epochs={keep_epochs!r} does not apply to the "
                         "untrained variant: it is never trained. Leave keep_epochs unset.")
    keep = check_keep_epochs(keep_epochs, spec["training"]["epochs"]) if v.target else ()
    resolve_device(device)  # a device that is not there fails before any data is made
    paths = {s: checkpoint_path(variant, s, data=data, quick=quick, epochs=epochs, home=home,
                                on_problem=on_problem) for s in seed_list}
    todo = [s for s in seed_list if overwrite or not paths[s].exists()]
    for s in seed_list:
        if s not in todo:
            logger.info("%s seed %d already trained at %s", variant, s, paths[s])
            if state_path(paths[s]).exists():  # left by a kill between save and removal
                logger.info("removing the training state %s of the finished seed %d",
                            state_path(paths[s]), s)
                state_path(paths[s]).unlink(missing_ok=True)
    if todo:
        states = dict(state=None) if state_every is None or v.target is None else dict(
            state=[state_path(paths[s]) for s in todo], state_every=state_every,
            resume=resume)
        _train_and_save(v, spec, todo, paths, data=data, quick=quick, device=device,
                        data_root=data_root, progress=progress, on_problem=on_problem,
                        speed=dict(precision=precision, channels_last=channels_last,
                                   compile=compile), states=states, keep=keep)
    return [paths[s] for s in seed_list] if many else paths[seed_list[0]]


def _train_and_save(v: Variant, spec: dict, seeds: list[int], paths: dict, *, data, quick,
                    device, data_root, progress, on_problem, speed, states=None,
                    keep=()) -> None:
    """Build, train (together when several) and save the networks of ``seeds``."""
    key = recipe_key(spec)
    arch = dict(spec["architecture"])
    arch.pop("architecture")
    if v.target is None:
        for s in seeds:
            with torch_seed(s):
                model = build("ccn2022", n_classes=7, **arch)
            model.dnnrsa_info = dict(seed=s, epoch=0, target=None, classes=None, data=None,
                                     test_accuracy=None)
            save(model, paths[s], variant=v.name, recipe=spec, recipe_key=key)
        return
    train_set, test_set = training_data(v.name, data=data, quick=quick,
                                        size=arch["input_size"], data_root=data_root,
                                        on_problem=on_problem)
    models = []
    for s in seeds:
        with torch_seed(s):
            models.append(build("ccn2022", n_classes=len(train_set.classes(v.target)),
                                **arch))
    protocol = spec["training"]

    def save_kept(model, seed, epoch):
        if epoch == protocol["epochs"]:  # the final epoch is the ordinary checkpoint
            return
        model.dnnrsa_info["data"].update(source=data, test=test_set.name, n_test=len(test_set))
        save(model, kept_path(paths[seed], epoch), variant=v.name, recipe=spec, recipe_key=key)

    options = dict(target=v.target, test=test_set, test_every=5, epochs=protocol["epochs"],
                   batch_size=protocol["batch_size"], optimizer=protocol["optimizer"],
                   lr=protocol["lr"], lr_step=protocol["lr_step"],
                   augment=protocol["augment"], device=device, progress=progress, **speed,
                   **(states or {}), keep_epochs=list(keep) or None,
                   on_keep=save_kept if keep else None)
    if states and states.get("state") and len(seeds) == 1:
        options["state"] = states["state"][0]  # a lone model takes one path
    # One seed trains alone, exactly as `train_variant(variant, seed)` always has.
    hists = (train(models, train_set, seeds=seeds, **options) if len(seeds) > 1
             else [train(models[0], train_set, seed=seeds[0], **options)])
    for model, s, hist in zip(models, seeds, hists):
        logger.info("%s seed %d: train accuracy %.3f, test accuracy %.3f (%.0f s)", v.name, s,
                    hist.train_accuracy[-1], hist.test_accuracy[-1], hist.seconds)
        model.dnnrsa_info["data"].update(source=data, test=test_set.name, n_test=len(test_set))
        save(model, paths[s], variant=v.name, recipe=spec, recipe_key=key)
        state_path(paths[s]).unlink(missing_ok=True)  # only once the checkpoint is saved


def load_model(
    variant: str | os.PathLike,
    seed: int = 0,
    *,
    data: str = "synthetic",
    quick: bool = False,
    epochs: int | None = None,
    home: str | os.PathLike | None = None,
    device: Any = "auto",
    on_problem: str = "raise",
    epoch: int | None = None,
) -> nn.Module:
    """Load a trained variant x seed of the study from the models folder, or a checkpoint
    from a path.

    By name, the checkpoint of exactly the recipe asked for (``data``, ``quick``,
    ``epochs``) is loaded, and its sidecar must say it was made by that recipe and seed:
    a quick network is never handed back for a full one.

    Parameters
    ----------
    variant : {"expression", "identity", "scene", "untrained"} or path
        A variant name, or the path of a ``.safetensors`` checkpoint (loaded as it is).
    seed : int
        Which of the variant's networks.
    data : {"synthetic", "paper"}
        Which training data the network saw.
    quick : bool
        The quick preset's network (``dnnrsa train VARIANT --quick``).
    epochs : int, optional
        A network trained with a non-default number of epochs (``--epochs``).
    home : path, optional
        Models folder (default ``$DNNRSA_HOME`` or ``~/.cache/dnnrsa``).
    device : {"auto", "cpu", "cuda", ...}
        Where to put the network.
    on_problem : {"raise", "skip"}
        ``"skip"``: the network trained on the usable part of an incomplete copy of the
        real data (``data="paper"``, ``train_variant(..., on_problem="skip")``).
    epoch : int, optional
        A checkpoint kept after this epoch (``train_variant(..., keep_epochs=[...])``)
        instead of the final one; the final epoch is the ordinary checkpoint.

    Returns
    -------
    torch.nn.Module
        The network in eval mode, ``model.dnnrsa_info`` holding its sidecar.

    Raises
    ------
    FileNotFoundError
        No checkpoint of that recipe and seed; the message lists the recipes that are
        trained for the variant and how to train or load them. With ``epoch``: that epoch
        was not kept; the message lists the kept ones.
    ValueError
        The checkpoint's sidecar names another recipe or seed.

    Examples
    --------
    >>> model = dnnrsa.load_model("expression", seed=3)  # doctest: +SKIP
    >>> quick = dnnrsa.load_model("expression", seed=3, quick=True)  # doctest: +SKIP
    """
    if isinstance(variant, os.PathLike) or (
            isinstance(variant, str) and variant not in VARIANTS
            and (os.sep in variant
                 or variant.endswith((".safetensors", ".json", *_PICKLE_SUFFIXES)))):
        return load(variant, device=device)  # pickle is refused here: zoo.load opts in
    spec = recipe(variant, data=data, quick=quick, epochs=epochs, on_problem=on_problem)
    key = recipe_key(spec)
    path = checkpoint_path(variant, seed, data=data, quick=quick, epochs=epochs, home=home,
                           on_problem=on_problem)
    final = path
    if epoch is not None:
        n_epochs = (spec["training"] or {}).get("epochs", 0)
        if not n_epochs:
            raise ValueError(f"Argument epoch={epoch!r} does not apply to the untrained "
                             "variant: it is never trained. Leave epoch unset.")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= n_epochs:
            raise ValueError(f"Argument epoch must be an epoch number in 1..{n_epochs} (the "
                             f"recipe trains {n_epochs} epochs), got {epoch!r}.")
        if epoch != n_epochs:
            path = kept_path(final, epoch)
    if not path.exists():
        if path != final and final.exists():
            kept = kept_epochs(final)
            raise FileNotFoundError(
                f"Epoch {epoch} of {variant!r} seed {seed} (recipe {key}) was not kept: the "
                f"kept epochs are {kept or 'none'}, plus the final epoch {n_epochs} (the "
                f"ordinary checkpoint). Retrain with "
                f"`{_train_command(variant, seed, data, quick, epochs, on_problem)} "
                f"--overwrite --keep-epochs {epoch}` to keep it.")
        raise FileNotFoundError(_missing_message(variant, seed, data, quick, epochs, key, home,
                                                 on_problem))
    fix = ("retrain it with "
           f"`{_train_command(variant, seed, data, quick, epochs, on_problem)} --overwrite`")
    info = _read_info(path, verify=False, fix=fix)  # the recipe first; _load verifies
    if (info.get("recipe_key") != key or info.get("recipe") != spec or info.get("seed") != seed
            or (epoch is not None and info.get("epoch") != epoch)):
        asked = "" if epoch is None else f" at epoch {info.get('epoch')!r}"
        raise ValueError(
            f"The checkpoint at {path} was made by recipe {info.get('recipe_key')!r} with seed "
            f"{info.get('seed')!r}{asked}, not by {key!r} with seed {seed}"
            f"{'' if epoch is None else f' at epoch {epoch}'}: it was moved or edited by "
            f"hand. Retrain it with "
            f"`{_train_command(variant, seed, data, quick, epochs, on_problem)} "
            "--overwrite`."
        )
    model = _load(path, device=device, fix=fix)
    model.dnnrsa_info.setdefault("variant", variant)
    return model


def _train_command(variant, seed, data, quick, epochs, on_problem="raise") -> str:
    return (f"dnnrsa train {variant} --seed {seed}" + (f" --data {data}" if data != "synthetic" else "")
            + (" --quick" if quick else "") + (f" --epochs {epochs}" if epochs is not None else "")
            + (" --on-problem skip" if on_problem == "skip" else ""))


def _missing_message(variant, seed, data, quick, epochs, key, home, on_problem="raise") -> str:
    folder = _variant_dir(variant, data, home)
    what = (f"No trained {variant!r} network for seed {seed} of recipe {key} ({data} data, "
            f"{'quick' if quick else 'full'} preset"
            + (f", {epochs} epochs" if epochs is not None else "") + ")")
    advice = f"Train it with `{_train_command(variant, seed, data, quick, epochs, on_problem)}`"
    if not quick:
        advice += " (the paper's protocol; add --quick for a small CPU run)"
    others = list_models(home)
    others = others[(others.variant == variant) & (others.data == data)] if len(others) else others
    if len(others):
        found = []
        for rkey, rows in others.groupby("recipe", sort=True):
            r = rows.iloc[0]
            flags = ("quick=True (--quick)" if r.preset == "quick" else "quick=False") + (
                f", epochs={r.epochs} (--epochs {r.epochs})" if r.epochs_override else "") + (
                ", on_problem='skip' (--on-problem skip)" if r.on_problem == "skip" else "")
            found.append(f"{rkey} (seeds {', '.join(str(s) for s in sorted(rows.seed))}; "
                         f"load with {flags})")
        advice += ". Trained recipes of this variant in " + f"{folder}: " + "; ".join(found)
    elif (folder / f"seed{seed:02d}.safetensors").exists():
        advice += (f". {folder / f'seed{seed:02d}.safetensors'} is a checkpoint of dnnrsa 0.1, "
                   "saved before checkpoints were keyed by recipe: nothing says whether it is "
                   "a quick or a full network, so it is not loaded by name (load it by path "
                   "if you know what it is)")
    elif not dnnrsa_home(home).exists():
        advice += f". The models folder {dnnrsa_home(home)} does not exist yet"
    return (f"{what}. {advice}; or point DNNRSA_HOME at a folder that has it.")


_FINAL = re.compile(r"seed\d+\.json")


def list_models(home: str | os.PathLike | None = None) -> pd.DataFrame:
    """The trained checkpoints in the models folder, one row each.

    Returns
    -------
    pandas.DataFrame
        Columns ``variant``, ``data``, ``recipe`` (the key), ``preset``, ``epochs``,
        ``epochs_override`` (True when the epochs differ from the preset's), ``seed``,
        ``test_accuracy``, ``path`` and ``on_problem`` ("skip" for a network trained on
        the usable part of an incomplete copy of the real data, else "raise"); sorted. Checkpoints whose sidecar cannot be read
        are left out (and logged).
    """
    rows = []
    root = dnnrsa_home(home) / "models"
    # seedNN.json only: kept epochs (seedNN-epochEEEE.json) and states are not trained seeds
    sidecars = sorted(p for p in root.glob("*/*/*/seed*.json")
                      if _FINAL.fullmatch(p.name)) if root.is_dir() else []
    for sidecar in sidecars:
        try:
            info = read_info(sidecar)
        except (ValueError, FileNotFoundError) as exc:
            logger.warning("list_models: skipping %s (%s)", sidecar, exc)
            continue
        spec = info.get("recipe")
        if not isinstance(spec, dict) or info.get("recipe_key") != sidecar.parent.name:
            continue
        training = spec.get("training") or {}
        preset = QUICK if spec.get("preset") == "quick" else FULL
        n_epochs = training.get("epochs", 0)
        rows.append(dict(variant=spec.get("variant"), data=spec.get("data"),
                         recipe=sidecar.parent.name, preset=spec.get("preset"), epochs=n_epochs,
                         epochs_override=bool(training) and n_epochs != preset["epochs"],
                         seed=info.get("seed"), test_accuracy=info.get("test_accuracy"),
                         path=str(sidecar.with_suffix(".safetensors")),
                         on_problem=(spec.get("training_data") or {}).get("on_problem",
                                                                          "raise")))
    columns = ["variant", "data", "recipe", "preset", "epochs", "epochs_override", "seed",
               "test_accuracy", "path", "on_problem"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["variant", "data", "recipe", "seed"], ignore_index=True)
