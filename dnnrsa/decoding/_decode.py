"""`decode()`: how well does layer L of network N carry a factor, on held-out groups?"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import confusion_matrix

from .._utils import format_choices, logger, resolve_device
from ..activations import Activations
from .._metadata import factor_codes, factor_levels
from ..stimuli import StimulusSet
from ._cv import make_splits
from ._readouts import make_readout


@dataclass
class DecodingResult:
    """Cross-validated readout accuracy of one layer for one target.

    Attributes
    ----------
    accuracy : float
        Mean test accuracy over folds.
    folds : ndarray of shape (n_folds,)
        Test accuracy of each fold.
    held_out : list of str
        What each fold held out (a factor level, e.g. ``"HL"``, or ``"foldK"``).
    chance : float
        Accuracy of guessing: 1 / number of classes.
    classes : list
        The target's levels, in the order of ``confusion``'s rows and columns.
    confusion : ndarray of shape (n_classes, n_classes)
        Counts of (true, predicted) over all test folds.
    null : ndarray of shape (n_permutations,) or None
        Mean accuracies with labels shuffled within every training fold.
    p_value : float or None
        ``(1 + #(null >= accuracy)) / (1 + n_permutations)``.
    provenance : dict
        network, seed, layer, target, cv, readout, stimuli.
    """

    accuracy: float
    folds: np.ndarray
    held_out: list
    chance: float
    classes: list
    confusion: np.ndarray
    n_train: list = field(default_factory=list)
    n_test: list = field(default_factory=list)
    null: np.ndarray | None = None
    p_value: float | None = None
    provenance: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        p = self.provenance
        extra = f", p={self.p_value:.3g}" if self.p_value is not None else ""
        return (
            f"DecodingResult({p.get('target')} from {p.get('network')}:{p.get('layer')}, "
            f"cv={p.get('cv')}: accuracy {self.accuracy:.3f} over {len(self.folds)} folds, "
            f"chance {self.chance:.3f}{extra})"
        )

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows, one per fold: network, seed, layer, target, cv, fold, held_out,
        accuracy, chance, readout, n_train, n_test."""
        p = self.provenance
        return pd.DataFrame({
            "network": p.get("network"),
            "seed": p.get("seed"),
            "layer": p.get("layer"),
            "target": p.get("target"),
            "cv": p.get("cv"),
            "fold": np.arange(len(self.folds)),
            "held_out": self.held_out,
            "accuracy": self.folds,
            "chance": self.chance,
            "readout": p.get("readout"),
            "n_train": self.n_train,
            "n_test": self.n_test,
        })


def default_stimuli(size: int = 48, *, data_root=None, kind: str | None = None) -> StimulusSet:
    """The test faces: the local KDEF copy when one is configured (``data_root`` or
    ``$DNNRSA_DATA`` holding ``kdef/``), else dnnrsa's synthetic faces. Says which in a log
    line."""
    from .. import datasets

    if kind in (None, "kdef"):
        root = data_root if data_root is not None else os.environ.get("DNNRSA_DATA")
        if root is not None and (os.path.isdir(os.path.join(root, "kdef")) or kind == "kdef"):
            logger.info("stimuli: KDEF from %s", os.path.join(root, "kdef"))
            stim = datasets.kdef(os.path.join(root, "kdef"), size=size)
            return stim
        if kind == "kdef":
            raise FileNotFoundError(
                "stimuli='kdef' needs a local KDEF copy: pass data_root= or set DNNRSA_DATA to "
                "a folder holding kdef/. See data_manifests/kdef.json for how to obtain it."
            )
    logger.info("stimuli: synthetic faces (70 identities x 7 expressions x HL/S/HR x 2 "
                "sessions, %d px); no KDEF copy configured", size)
    return datasets.synthetic_faces(size=size)


def resolve_model(model: Any, seed: int = 0, *, data: str = "synthetic", home=None):
    """An ``nn.Module`` from a module, a zoo variant name or a checkpoint path."""
    from torch import nn

    from ..zoo import VARIANTS, load, load_model

    if isinstance(model, nn.Module):
        return model
    if isinstance(model, str) and model in VARIANTS:
        return load_model(model, seed=seed, data=data, home=home)
    if isinstance(model, (str, os.PathLike)):
        if os.path.exists(str(model)) or str(model).endswith((".safetensors", ".json")):
            return load(model)
        raise ValueError(
            f"Unknown value {model!r} for argument model. Valid values are a zoo variant "
            f"{format_choices(VARIANTS)}, a checkpoint path, a torch.nn.Module or Activations."
        )
    raise TypeError(
        f"Argument model must be a torch.nn.Module, a zoo variant name, a checkpoint path or "
        f"dnnrsa.Activations, got {type(model).__name__}."
    )


def _resolve_stimuli(stimuli, model, data_root):
    if isinstance(stimuli, StimulusSet):
        return stimuli
    size = 48
    config = getattr(model, "config", None)
    if isinstance(config, dict) and "input_size" in config:
        size = config["input_size"]
    if stimuli is None:
        return default_stimuli(size, data_root=data_root)
    if stimuli in ("kdef", "synthetic"):
        return default_stimuli(size, data_root=data_root, kind=stimuli)
    raise ValueError(
        f"Unknown value {stimuli!r} for argument stimuli. Valid values are None (KDEF if "
        "configured, else synthetic), {kdef, synthetic} or a dnnrsa.StimulusSet."
    )


def decode(
    model: Any,
    layer: str | None = None,
    *,
    target: str,
    cv: Any = "viewpoint",
    stimuli: Any = None,
    readout: Any = "paper",
    seed: int = 0,
    epochs: int = 100,
    pool: int | None = None,
    batch_size: int = 32,
    lr: float = 0.1,
    n_permutations: int = 0,
    groups: Any = None,
    device: Any = "auto",
    data: str = "synthetic",
    data_root: Any = None,
    home: Any = None,
) -> DecodingResult:
    """Read ``target`` out of ``layer`` of ``model``, testing on groups the readout never saw.

    Parameters
    ----------
    model : torch.nn.Module, str, path or Activations
        A network; a zoo variant name (``"expression"``, ``"identity"``, ``"scene"``,
        ``"untrained"``, with ``seed=``); a checkpoint path; or precomputed `Activations`
        (a layer or a brain region), in which case ``layer`` and ``stimuli`` are not needed.
    layer : str
        Layer name (``"conv1"``, ``"dense1"``, ``"dense2"``, ``"dense3"``, any module name)
        or ``"pixels"``, the pixel control (a linear readout on pixel values, same folds).
    target : str
        Factor to read out (``"identity"``, ``"expression"``, ...).
    cv : str, int or scikit-learn splitter
        ``"viewpoint"`` (default, as the paper: train on two viewpoints, test on the third)
        or any factor column, leaving one level out at a time; an int for stratified
        k-fold; or any splitter (with ``groups``).
    stimuli : StimulusSet, {"kdef", "synthetic"} or None
        None uses the configured KDEF copy if there is one, else the synthetic faces.
    readout : {"paper", "linear"} or scikit-learn classifier
        ``"paper"``: the study's head (BatchNorm2d -> ReLU -> avg_pool2d(8) -> Linear,
        SGD, batch 32, ``epochs`` epochs); ``"linear"``: multinomial logistic regression on
        standardised flattened (or ``pool``-ed) features; or any classifier instance.
    seed : int
        Network seed for zoo names, and seed of the readout and permutations.
    epochs, pool, batch_size, lr
        Options of the paper readout (``pool`` also pools features for other readouts).
    n_permutations : int
        Refit this many times with labels shuffled within every training fold to get a
        null distribution and a p-value.
    groups : array-like, optional
        Groups for a splitter object ``cv``.
    device : {"auto", "cpu", "cuda", ...}
        Where extraction and the paper readout run.

    Returns
    -------
    DecodingResult

    Examples
    --------
    >>> res = dnnrsa.decode("expression", "dense3", target="identity", seed=3)  # doctest: +SKIP
    >>> res.accuracy, res.chance  # doctest: +SKIP
    """
    device = resolve_device(device)
    if isinstance(model, Activations):
        acts = model
        if layer is not None and acts.layer is not None and layer != acts.layer:
            raise ValueError(
                f"Argument layer={layer!r} but the Activations hold layer {acts.layer!r}; "
                "omit layer when passing Activations."
            )
        network = acts.provenance.get("model") or acts.provenance.get("region")
        net_seed = acts.provenance.get("seed")
    else:
        if layer is None:
            raise ValueError(
                "Argument layer is required when model is a network: e.g. 'dense3', or "
                "'pixels' for the pixel control."
            )
        net = resolve_model(model, seed, data=data, home=home)
        stim = _resolve_stimuli(stimuli, net, data_root)
        from ..extract import extract

        acts = extract(net, stim, [layer], device=device)[layer]
        info = getattr(net, "dnnrsa_info", None) or {}
        network = "pixels" if layer == "pixels" else (
            info.get("variant") or (model if isinstance(model, str) else type(net).__name__))
        net_seed = info.get("seed", seed if isinstance(model, str) else None)
    return decode_activations(
        acts, target=target, cv=cv, readout=readout, seed=seed, epochs=epochs, pool=pool,
        batch_size=batch_size, lr=lr, n_permutations=n_permutations, groups=groups,
        device=device, network=network, network_seed=net_seed,
    )


def decode_activations(acts: Activations, *, target: str, cv: Any = "viewpoint",
                       readout: Any = "paper", seed: int = 0, epochs: int = 100,
                       pool: int | None = None, batch_size: int = 32, lr: float = 0.1,
                       n_permutations: int = 0, groups: Any = None, device: Any = "cpu",
                       network: Any = None, network_seed: Any = None) -> DecodingResult:
    """:func:`decode` on precomputed `Activations` (the shared path of networks and brains)."""
    if not isinstance(acts, Activations):
        raise TypeError(f"Argument acts must be dnnrsa.Activations, got {type(acts).__name__}.")
    col = acts.metadata[acts.check_factor(target, "target")]
    classes = factor_levels(col)
    if len(classes) < 2:
        raise ValueError(
            f"The target {target!r} has fewer than 2 classes ({classes}); decoding needs at "
            "least 2."
        )
    y = factor_codes(col, classes, argument="target")
    X = acts.data
    if not np.isfinite(acts.X).all():
        bad = int((~np.isfinite(acts.X)).any(axis=1).sum())
        raise ValueError(
            f"The activations of layer {acts.layer!r} contain NaN or Inf values in {bad} of "
            f"{len(acts)} observations; clean or drop them before decoding."
        )
    if n_permutations < 0:
        raise ValueError(f"Argument n_permutations must be >= 0, got {n_permutations}.")
    splits, cv_name = make_splits(cv, acts.metadata, y, seed=seed,
                                  groups=None if groups is None else np.asarray(groups))
    pixels = acts.layer == "pixels"
    template = make_readout(readout, pixels=pixels, epochs=epochs, pool=pool,
                            batch_size=batch_size, lr=lr, seed=seed, device=device)

    def run(labels):
        accs, conf = [], np.zeros((len(classes), len(classes)), dtype=np.int64)
        for tr, te, _ in splits:
            est = clone(template).fit(X[tr], labels[tr])
            pred = est.predict(X[te])
            accs.append(float(np.mean(pred == y[te])))
            conf += confusion_matrix(y[te], pred, labels=np.arange(len(classes)))
        return np.array(accs), conf

    folds, confusion = run(y)
    null = p_value = None
    if n_permutations:
        rng = np.random.default_rng(seed)
        null = np.empty(n_permutations)
        for k in range(n_permutations):
            shuffled = y.copy()
            for tr, _, _ in splits:  # shuffle within every training fold only
                shuffled[tr] = rng.permutation(y[tr])
            null[k] = run(shuffled)[0].mean()
        p_value = float((1 + np.sum(null >= folds.mean())) / (1 + n_permutations))
    readout_name = readout if isinstance(readout, str) else type(readout).__name__
    if pixels and readout == "paper":
        readout_name = "paper-linear"
    prov = dict(
        network=network, seed=network_seed, layer=acts.layer, target=target, cv=cv_name,
        readout=readout_name, stimuli=acts.provenance.get("stimuli"),
        n_obs=len(acts), n_features=acts.n_features,
    )
    return DecodingResult(
        accuracy=float(folds.mean()), folds=folds, held_out=[h for _, _, h in splits],
        chance=1.0 / len(classes), classes=list(classes), confusion=confusion,
        n_train=[len(tr) for tr, _, _ in splits], n_test=[len(te) for _, te, _ in splits],
        null=null, p_value=p_value, provenance=prov,
    )
