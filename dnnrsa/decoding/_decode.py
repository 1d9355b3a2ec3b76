"""`decode_activations()`: how well do the responses of one layer or brain region carry a
factor, on groups (viewpoints, sessions, runs) the readout never saw?

This is the shared path of networks and brains: it takes `Activations` only. The verb
``dnnrsa.decode`` accepts a network, a zoo name or a checkpoint as well; it resolves and
extracts them (in ``dnnrsa.study``) and then calls this function. `decode_grid()` runs
many of them (layers of several network seeds x targets) with the paper readout's heads
trained together.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import confusion_matrix

from .._metadata import factor_codes, factor_levels
from .._utils import check_positive_int, check_seed, logger
from ..activations import Activations
from ._batched import ReadoutJob, fit_predict_readouts
from ._cv import make_splits
from ._readouts import PaperReadout, check_readout_options, make_readout

#: Permutations whose refits are trained (and held in memory) together.
_PERMUTATION_BLOCK = 64


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
        distribution and a p-value. With the paper readout the refits are trained
        together by one batched model (see `decode_grid`); the numbers equal those of
        a loop of `PaperReadout` fits up to floating-point rounding.
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
    task = _prepare(acts, target=target, cv=cv, readout=readout, seed=seed, epochs=epochs,
                    pool=pool, batch_size=batch_size, lr=lr, n_permutations=n_permutations,
                    groups=groups, device=device)
    preds = _predict(task, [clone(task.template).fit(task.X[tr], task.y[tr])
                            for tr, _, _ in task.splits])
    _warn_one_class(task, preds, network, network_seed)
    folds, confusion = _score(task, preds)
    null = _null(task, task.n_permutations)
    return _result(task, folds, confusion, null, network=network, network_seed=network_seed)


class _Task(NamedTuple):
    """One (activations, target) decoding, checked and planned; nothing fitted yet."""

    acts: Activations
    X: Any  # acts.data: (n_obs, n_features) or (n_obs, C, H, W)
    y: np.ndarray  # integer codes of the target
    classes: list
    splits: list  # (train rows, test rows, held-out label)
    cv_name: str
    target: str
    seed: int
    readout: Any
    template: Any  # the unfitted estimator each fit clones
    n_permutations: int


def _prepare(acts: Activations, *, target, cv, readout, seed, epochs, pool, batch_size, lr,
             n_permutations, groups, device) -> _Task:
    """Every check of `decode_activations` on one item, before any fit."""
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
    if not np.isfinite(acts.X).all():
        bad = int((~np.isfinite(acts.X)).any(axis=1).sum())
        raise ValueError(
            f"The activations of {_what(acts)} contain NaN or Inf values in {bad} of "
            f"{len(acts)} observations; clean or drop them before decoding."
        )
    splits, cv_name = make_splits(cv, acts.metadata, y, seed=seed,
                                  groups=None if groups is None else np.asarray(groups))
    template = make_readout(readout, pixels=acts.layer == "pixels", epochs=epochs, pool=pool,
                            batch_size=batch_size, lr=lr, seed=seed, device=device)
    return _Task(acts, acts.data, y, classes, splits, cv_name, target, seed, readout, template,
                 n_permutations)


def _predict(task: _Task, fitted) -> list:
    return [est.predict(task.X[te]) for est, (_, te, _) in zip(fitted, task.splits,
                                                                strict=True)]


def _warn_one_class(task: _Task, preds, network=None, network_seed=None) -> None:
    """Log a warning when a readout gave every test row of a fold the same class: its
    accuracy there is the share of that class by construction (chance with balanced
    classes), which reads as "no information" but says only that the readout did not
    learn (measured: the paper readout after 5 epochs on 168 faces, every fold)."""
    if len(task.classes) < 2:
        return
    held = [str(h) for (_, te, h), pred in zip(task.splits, preds, strict=True)
            if len(te) > 1 and np.unique(pred).size == 1]
    if held:
        network, network_seed = _labels(task, network, network_seed)
        where = " ".join(str(v) for v in (
            network, None if network_seed is None else f"seed {network_seed}",
            task.acts.layer) if v is not None)
        logger.warning(
            "decode: the readout of %r%s predicted one class for every test item of "
            "fold(s) %s; an accuracy there is chance by construction, not evidence that the "
            "layer lacks the information. The readout did not learn: give it more epochs, "
            "or try readout='linear'.", task.target, f" from {where}" if where else "",
            ", ".join(held))


def _score(task: _Task, preds) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy of each fold's predictions of its test rows (against the true labels), and
    the confusion counts over all folds."""
    n = len(task.classes)
    accs, conf = [], np.zeros((n, n), dtype=np.int64)
    for (_, te, _), pred in zip(task.splits, preds, strict=True):
        accs.append(float(np.mean(pred == task.y[te])))
        conf += confusion_matrix(task.y[te], pred, labels=np.arange(n))
    return np.array(accs), conf


def _batched(task: _Task) -> bool:
    return isinstance(task.template, PaperReadout)


def _jobs(task: _Task, fold_labels) -> list[ReadoutJob]:
    """One engine job per fold, trained on ``fold_labels[k]``, predicting its test rows."""
    return [ReadoutJob(task.X, tr, labels, task.seed, test=te)
            for (tr, te, _), labels in zip(task.splits, fold_labels, strict=True)]


def _fit_predict(task: _Task, jobs) -> list:
    """The engine's predictions for ``jobs`` (with the options of ``task``'s readout)."""
    params = task.template.get_params()
    # _prepare has checked the features
    return fit_predict_readouts(jobs, check_finite=False, **{k: params[k] for k in (
        "epochs", "batch_size", "lr", "momentum", "pool", "head", "device")})[1]


def _null(task: _Task, n_permutations: int) -> np.ndarray | None:
    """Mean accuracy over folds of each permutation's refits.

    Training sets of leave-one-group-out folds overlap, so one shuffled label vector cannot
    be a permutation of every fold's training labels at once: each fold draws its own,
    fold after fold and permutation after permutation from ``default_rng(seed)``.
    """
    if not n_permutations:
        return None
    rng = np.random.default_rng(task.seed)
    null = []
    for start in range(0, n_permutations, _PERMUTATION_BLOCK):
        block = [[rng.permutation(task.y[tr]) for tr, _, _ in task.splits]
                 for _ in range(min(_PERMUTATION_BLOCK, n_permutations - start))]
        if _batched(task):
            preds = _fit_predict(task, [j for labels in block for j in _jobs(task, labels)])
        else:
            preds = [p for labels in block for p in _predict(task, [
                clone(task.template).fit(task.X[tr], lab)
                for (tr, _, _), lab in zip(task.splits, labels, strict=True)])]
        k = len(task.splits)
        null.extend(_score(task, preds[i : i + k])[0].mean() for i in range(0, len(preds), k))
    return np.array(null)


def _labels(task: _Task, network, network_seed) -> tuple[Any, Any]:
    """The network and seed a result is labelled with: as given, else the activations'
    provenance (``model`` or ``region``; ``seed``)."""
    prov = task.acts.provenance
    if network is None:
        network = prov.get("model") or prov.get("region")
    if network_seed is None:
        network_seed = prov.get("seed")
    return network, network_seed


def _result(task: _Task, folds, confusion, null, *, network=None,
            network_seed=None) -> DecodingResult:
    acts, readout = task.acts, task.readout
    pixels = acts.layer == "pixels"
    readout_name = readout if isinstance(readout, str) else type(readout).__name__
    if pixels and readout == "paper":
        readout_name = "paper-linear"
    network, network_seed = _labels(task, network, network_seed)
    n_permutations = 0 if null is None else len(null)
    p_value = (None if null is None
               else float((1 + np.sum(null >= folds.mean())) / (1 + n_permutations)))
    prov = dict(
        network=network, seed=network_seed, layer=acts.layer,
        region=acts.provenance.get("region"), target=task.target, cv=task.cv_name,
        readout=readout_name, stimuli=acts.provenance.get("stimuli"),
        n_obs=len(acts), n_features=acts.n_features, n_permutations=n_permutations,
    )
    splits = task.splits
    return DecodingResult(
        accuracy=float(folds.mean()), folds=folds, held_out=[h for _, _, h in splits],
        chance=1.0 / len(task.classes), classes=list(task.classes), confusion=confusion,
        n_train=[len(tr) for tr, _, _ in splits], n_test=[len(te) for _, te, _ in splits],
        null=null, p_value=p_value, provenance=prov,
    )


def decode_grid(
    acts: Activations | Any,
    *,
    targets: str | Any,
    cv: Any = "viewpoint",
    readout: Any = "paper",
    seeds: Any = None,
    epochs: int = 100,
    pool: int | None = None,
    batch_size: int = 32,
    lr: float = 0.1,
    n_permutations: int = 0,
    device: Any = "auto",
    network: Any = None,
) -> list[DecodingResult]:
    """`decode_activations` for every item of ``acts`` x every target, with the paper
    readout's heads trained together.

    With ``readout="paper"`` every fold of every item x target (and with permutations,
    each item x target's refits) is one head of a batched model: heads that share a map
    shape and a number of training rows take their SGD steps together, each with its own
    initialisation, batch order, BatchNorm statistics and momentum, reading its own rows
    of its own array (nothing is copied per head). Any other readout runs the fits one by
    one, exactly as `decode_activations`. The linear readout is not batched: scikit-learn's
    LogisticRegression fits one label vector at a time, and a warm start across
    permutation refits of a fold (measured on a quick dense3 layer, 20 refits) was 20%
    slower, since permuted labels have unrelated solutions, and moved the coefficients by
    up to 8% of their scale, changing test predictions.

    Parameters
    ----------
    acts : Activations or sequence of Activations
        E.g. one layer of several network seeds, or the layers of one network. Items are
        independent: they may differ in features, observations and stimulus set, as long
        as each has the target and cv columns.
    targets : str or sequence of str
        Factor columns to read out, each from every item.
    cv : str or int, default="viewpoint"
        A factor column (leave one level out) or a number of stratified folds, as in
        `decode_activations` (which also takes splitter objects with their groups).
    readout : {"paper", "linear"} or scikit-learn classifier, default="paper"
        See :func:`dnnrsa.decoding.make_readout`.
    seeds : int or sequence of int, optional
        The readout seed of each item (one int: the same for all). Default: each item's
        ``provenance["seed"]``, else 0 - the seed `reproduce` gives `decode_activations`
        for a network seed.
    epochs, pool, batch_size, lr, n_permutations, device
        As in `decode_activations`; checked once, before any fit.
    network : str or sequence of str, optional
        Network label of the results (one for all, or one per item); default from each
        item's provenance.

    Returns
    -------
    list of DecodingResult
        In the order items x targets: ``results[i * len(targets) + j]`` is item i,
        target j. Each equals ``decode_activations(acts[i], target=targets[j],
        seed=seeds[i], ...)`` - folds, confusion and, with permutations, the same
        permutation draws, null and p-value - up to floating-point rounding of the paper
        readout's training: weights agree to ~1e-6 on continuous features (to ~1e-4 on
        features with large uniform regions, where float32 training is itself that
        sensitive to rounding), and a test prediction can differ only where its two best
        logits nearly tie (1 of 13,440 in the quick benchmark).

    Raises
    ------
    TypeError, ValueError
        A bad option, or an item that cannot be decoded (the message names the item),
        before any fit.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> meta = pd.DataFrame({"identity": np.tile(list("abcd"), 6),
    ...                      "viewpoint": np.repeat(["L", "F", "R"], 8)})
    >>> layers = [Activations(np.random.default_rng(s).normal(size=(24, 3, 4, 4)), meta,
    ...                       {"layer": "conv", "seed": s}) for s in (0, 1)]
    >>> results = decode_grid(layers, targets="identity", epochs=2, device="cpu")
    >>> [r.provenance["seed"] for r in results]
    [0, 1]
    """
    items = _items(acts)
    targets = _targets(targets)
    seeds = _per_item("seeds", seeds, items, check_seed,
                      default=lambda a: _default_seed(a.provenance.get("seed")))
    networks = _per_item("network", network, items, _check_label, default=lambda a: None)
    if hasattr(cv, "split") and not isinstance(cv, str):
        raise TypeError(
            f"Argument cv={cv!r} is a splitter object; decode_grid takes no groups. Use a "
            "factor column name or an int, or decode_activations(..., groups=...)."
        )
    # The shared options first, so that their errors do not name an item.
    check_readout_options(epochs=epochs, batch_size=batch_size, lr=lr, pool=pool,
                          device=device)
    n_permutations = check_positive_int("n_permutations", n_permutations, 0)
    make_readout(readout, epochs=epochs, pool=pool, batch_size=batch_size, lr=lr,
                 device=device)
    tasks = []
    for i, item in enumerate(items):
        for target in targets:
            try:
                tasks.append(_prepare(item, target=target, cv=cv, readout=readout,
                                      seed=seeds[i], epochs=epochs, pool=pool,
                                      batch_size=batch_size, lr=lr,
                                      n_permutations=n_permutations, groups=None,
                                      device=device))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"acts[{i}] ({_what(item)}), target {target!r}: {exc}") \
                    from exc
    batched = [t for t in tasks if _batched(t)]
    logger.debug("decode_grid: %d items x %d targets, %d batched", len(items), len(targets),
                len(batched))
    predicted = {}
    # the paper head first: its engine call is the one that can still refuse an option
    for head in sorted({t.template.head for t in batched}, key=lambda h: h != "paper"):
        group = [t for t in batched if t.template.head == head]
        preds = _fit_predict(group[0], [j for t in group for j in _jobs(t, _true_labels(t))])
        for t in group:
            predicted[id(t)], preds = preds[: len(t.splits)], preds[len(t.splits):]
    results = []
    for k, task in enumerate(tasks):
        preds = predicted.pop(id(task), None)
        if preds is None:
            preds = _predict(task, [clone(task.template).fit(task.X[tr], task.y[tr])
                                    for tr, _, _ in task.splits])
        _warn_one_class(task, preds, networks[k // len(targets)])
        folds, confusion = _score(task, preds)
        results.append(_result(task, folds, confusion, _null(task, n_permutations),
                               network=networks[k // len(targets)]))
    return results


def _true_labels(task: _Task) -> list:
    return [task.y[tr] for tr, _, _ in task.splits]


def _items(acts) -> list:
    if isinstance(acts, Activations):
        return [acts]
    if isinstance(acts, (str, bytes)) or not hasattr(acts, "__iter__"):
        raise TypeError(f"Argument acts must be dnnrsa.Activations or a sequence of them, got "
                        f"{type(acts).__name__}.")
    items = list(acts)
    if not items:
        raise ValueError("Argument acts is empty: give at least one dnnrsa.Activations.")
    for i, item in enumerate(items):
        if not isinstance(item, Activations):
            raise TypeError(f"Argument acts[{i}] must be dnnrsa.Activations, got "
                            f"{type(item).__name__}.")
    return items


def _targets(targets) -> list[str]:
    if isinstance(targets, str):
        return [targets]
    if not hasattr(targets, "__iter__"):
        raise TypeError(f"Argument targets must be a factor name or a sequence of them, got "
                        f"{targets!r}.")
    targets = list(targets)
    if not targets:
        raise ValueError("Argument targets is empty: name at least one factor column.")
    for t in targets:
        if not isinstance(t, str):
            raise TypeError(f"Argument targets must hold factor names (str), got {t!r}.")
    if len(set(targets)) != len(targets):
        raise ValueError(f"Argument targets names a factor twice: {targets}.")
    return targets


def _default_seed(seed) -> int:
    # an untrained network built by hand has no seed (None); its readout gets seed 0
    if seed is None:
        return 0
    return check_seed("provenance['seed']", seed)


def _check_label(name: str, value):
    if not isinstance(value, str):
        raise TypeError(f"Argument {name} must be a str, got {value!r}.")
    return value


def _per_item(name: str, value, items: list, check, *, default) -> list:
    """``value`` as one entry per item: None gives ``default(item)``; a scalar is repeated;
    a sequence must have one entry per item."""
    if value is None:
        return [default(item) for item in items]
    if isinstance(value, (str, numbers.Integral)):
        return [check(name, value)] * len(items)
    if not hasattr(value, "__len__"):
        raise TypeError(f"Argument {name} must be one value or a sequence of one per item "
                        f"of acts, got {value!r}.")
    if len(value) != len(items):
        raise ValueError(f"Argument {name} has {len(value)} entries but acts has "
                         f"{len(items)} items; give one per item (or a single value).")
    return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]
