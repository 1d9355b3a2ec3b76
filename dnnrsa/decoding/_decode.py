"""`decode_activations()`: how well do the responses of one layer or brain region carry a
factor, on groups (viewpoints, sessions, runs) the readout never saw?

This is the shared path of networks and brains: it takes `Activations` only. The verb
``dnnrsa.decode`` accepts a network, a zoo name or a checkpoint as well; it resolves and
extracts them (in ``dnnrsa.study``) and then calls this function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import confusion_matrix

from .._metadata import factor_codes, factor_levels
from .._utils import check_positive_int
from ..activations import Activations
from ._cv import make_splits
from ._readouts import check_readout_options, make_readout


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
        Mean accuracies over folds with each fold's training labels permuted (each fold its
        own permutation; test labels untouched).
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
        where = (f"{p.get('network')}:{p.get('layer')}" if p.get("layer") is not None
                 else f"region {p.get('region')}" if p.get("region") is not None
                 else str(p.get("network")))
        return (
            f"DecodingResult({p.get('target')} from {where}, "
            f"cv={p.get('cv')}: accuracy {self.accuracy:.3f} over {len(self.folds)} folds, "
            f"chance {self.chance:.3f}{extra})"
        )

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows, one per fold: network, seed, layer, target, cv, fold, held_out,
        accuracy, chance, readout, n_train, n_test, region (brain data; else None)."""
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
            "region": p.get("region"),
        })


def _what(acts: Activations) -> str:
    """How a message names the data: a layer, else a brain region."""
    if acts.layer is not None:
        return f"layer {acts.layer!r}"
    region = acts.provenance.get("region")
    return f"region {region!r}" if region is not None else "the data"


def decode_activations(
    acts: Activations,
    *,
    target: str,
    cv: Any = "viewpoint",
    readout: Any = "paper",
    seed: int = 0,
    epochs: int = 100,
    pool: int | None = None,
    batch_size: int = 32,
    lr: float = 0.1,
    n_permutations: int = 0,
    groups: Any = None,
    device: Any = "auto",
    network: Any = None,
    network_seed: Any = None,
) -> DecodingResult:
    """Read ``target`` out of precomputed `Activations` (a network layer or a brain region),
    testing on groups the readout never saw.

    Parameters
    ----------
    acts : Activations
        Responses (n_obs x features) and their factor table.
    target : str
        Factor column to read out.
    cv : str, int or scikit-learn splitter
        A factor column (leave one level out at a time, as scikit-learn's
        ``LeaveOneGroupOut`` on it), an int (stratified k-fold) or a splitter (with
        ``groups``).
    readout : {"paper", "linear"} or scikit-learn classifier
        See :func:`dnnrsa.decoding.make_readout`.
    seed : int
        Seed of the readout, of k-fold shuffling and of the permutations.
    epochs, pool, batch_size, lr
        Options of the paper readout (``pool`` also pools features for other readouts);
        checked before any fit.
    n_permutations : int
        Refit this many times with the training labels of every fold permuted (each fold
        its own permutation of its own training labels; test labels untouched) for a null
        distribution and a p-value.
    groups : array-like, optional
        Groups for a splitter object ``cv``.
    device : {"auto", "cpu", "cuda", ...}
        Where the paper readout trains.
    network, network_seed : optional
        Labels for the result's provenance (default: from ``acts.provenance``).

    Returns
    -------
    DecodingResult
    """
    if not isinstance(acts, Activations):
        raise TypeError(f"Argument acts must be dnnrsa.Activations, got {type(acts).__name__}.")
    device = check_readout_options(epochs=epochs, batch_size=batch_size, lr=lr, pool=pool,
                                   seed=seed, device=device)["device"]
    n_permutations = check_positive_int("n_permutations", n_permutations, 0)
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
            f"The activations of {_what(acts)} contain NaN or Inf values in {bad} of "
            f"{len(acts)} observations; clean or drop them before decoding."
        )
    splits, cv_name = make_splits(cv, acts.metadata, y, seed=seed,
                                  groups=None if groups is None else np.asarray(groups))
    pixels = acts.layer == "pixels"
    template = make_readout(readout, pixels=pixels, epochs=epochs, pool=pool,
                            batch_size=batch_size, lr=lr, seed=seed, device=device)

    def run(train_labels):
        """Fit on each fold's training rows with ``train_labels[k]``; score against the
        true labels of its test rows."""
        accs, conf = [], np.zeros((len(classes), len(classes)), dtype=np.int64)
        for (tr, te, _), labels in zip(splits, train_labels, strict=True):
            est = clone(template).fit(X[tr], labels)
            pred = est.predict(X[te])
            accs.append(float(np.mean(pred == y[te])))
            conf += confusion_matrix(y[te], pred, labels=np.arange(len(classes)))
        return np.array(accs), conf

    folds, confusion = run([y[tr] for tr, _, _ in splits])
    null = p_value = None
    if n_permutations:
        # Training sets of leave-one-group-out folds overlap, so one shuffled label vector
        # cannot be a permutation of every fold's training labels at once: each fold draws
        # its own.
        rng = np.random.default_rng(seed)
        null = np.array([run([rng.permutation(y[tr]) for tr, _, _ in splits])[0].mean()
                         for _ in range(n_permutations)])
        p_value = float((1 + np.sum(null >= folds.mean())) / (1 + n_permutations))
    readout_name = readout if isinstance(readout, str) else type(readout).__name__
    if pixels and readout == "paper":
        readout_name = "paper-linear"
    if network is None:
        network = acts.provenance.get("model") or acts.provenance.get("region")
    if network_seed is None:
        network_seed = acts.provenance.get("seed")
    prov = dict(
        network=network, seed=network_seed, layer=acts.layer,
        region=acts.provenance.get("region"), target=target, cv=cv_name,
        readout=readout_name, stimuli=acts.provenance.get("stimuli"),
        n_obs=len(acts), n_features=acts.n_features, n_permutations=n_permutations,
    )
    return DecodingResult(
        accuracy=float(folds.mean()), folds=folds, held_out=[h for _, _, h in splits],
        chance=1.0 / len(classes), classes=list(classes), confusion=confusion,
        n_train=[len(tr) for tr, _, _ in splits], n_test=[len(te) for _, te, _ in splits],
        null=null, p_value=p_value, provenance=prov,
    )
