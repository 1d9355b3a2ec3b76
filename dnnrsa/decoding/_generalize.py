"""`generalize()`: does a readout of one factor, trained in one condition, still work in
another? Cross-condition generalisation ("cross-classification" in CoSMoMVPA and The
Decoding Toolbox): train the readout of ``target`` on one level of ``across`` and test
it on every level of ``across``, giving a train level x test level accuracy matrix.

Like `decode_activations`, it takes `Activations` only (a network layer or a brain
region), uses the same readouts and options, and validates all of them before any fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from .._metadata import check_factor_column, factor_codes, factor_levels
from .._utils import check_positive_int, format_choices, logger
from ..activations import Activations
from ._batched import ReadoutJob, fit_predict_readouts
from ._readouts import PaperReadout, check_readout_options, make_readout

__all__ = ["GeneralizationResult", "generalize"]

#: Most folds of the stratified k-fold that scores the diagonal when ``cv=None``.
_MAX_DIAGONAL_FOLDS = 5

#: Permutations whose paper-readout refits are trained (and held in memory) together.
_PERMUTATION_BLOCK = 16


@dataclass
class GeneralizationResult:
    """Accuracy of a readout trained on each level of a factor and tested on each level.

    Attributes
    ----------
    matrix : DataFrame of shape (n_levels, n_levels)
        Mean test accuracy; rows are the training level (index name ``"train"``), columns
        the test level (columns name ``"test"``), both in the levels' natural order.
    table : DataFrame
        Tidy rows, one per train level x test level x held-out group (or fold): network,
        seed, layer, region, target, across, cv, train, test, held_out, accuracy, chance,
        n_train, n_test, readout.
    chance : float
        1 / number of classes of the target.
    null : ndarray of shape (n_levels, n_levels, n_permutations) or None
        The matrix recomputed with the training labels of every fit permuted (each fit its
        own permutation; test labels untouched).
    p_values : DataFrame of shape (n_levels, n_levels) or None
        ``(1 + #(null >= accuracy)) / (1 + n_permutations)`` per cell.
    provenance : dict
        network, seed, layer, region, target, across, cv, readout, readout_seed, levels,
        classes, stimuli, n_obs, n_features, n_permutations and, with ``cv=None``,
        diagonal_folds (the k of each level's k-fold).
    """

    matrix: pd.DataFrame
    table: pd.DataFrame
    chance: float
    null: np.ndarray | None = None
    p_values: pd.DataFrame | None = None
    provenance: dict = field(default_factory=dict)

    @property
    def diagonal(self) -> float:
        """Mean accuracy of the cells that train and test on the same level."""
        return float(np.mean(np.diag(self.matrix.to_numpy(dtype=float))))

    @property
    def off_diagonal(self) -> float:
        """Mean accuracy of the cells that train on one level and test on another."""
        m = self.matrix.to_numpy(dtype=float)
        return float(m[~np.eye(len(m), dtype=bool)].mean())

    def __repr__(self) -> str:
        p = self.provenance
        where = p.get("layer") or p.get("region")
        return (
            f"GeneralizationResult({p.get('target')} across {p.get('across')} from "
            f"{p.get('network')}:{where}, cv={p.get('cv')}: diagonal {self.diagonal:.3f}, "
            f"off-diagonal {self.off_diagonal:.3f}, chance {self.chance:.3f})"
        )

    def to_frame(self) -> pd.DataFrame:
        """The tidy :attr:`table`, one row per train level x test level x held-out group."""
        return self.table

    def plot(self, ax=None, *, cmap: str = "viridis", annotate: bool = True):
        """Heat map of :attr:`matrix`: training level on y, test level on x.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Draw into this Axes; a new Figure (not pyplot's current one) otherwise.
        cmap : str or matplotlib Colormap, default="viridis"
            Colour map of the accuracies, on a fixed 0-1 scale; the colour bar marks
            chance with a line.
        annotate : bool, default=True
            Write each cell's accuracy in it.

        Returns
        -------
        matplotlib.axes.Axes
        """
        if not isinstance(annotate, (bool, np.bool_)):
            raise TypeError(f"Argument annotate must be True or False, got {annotate!r}.")
        if ax is None:
            from matplotlib.figure import Figure

            ax = Figure(figsize=(4.8, 4.0), layout="constrained").add_subplot()
        values = self.matrix.to_numpy(dtype=float)
        im = ax.imshow(values, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        n = len(values)
        ax.set_xticks(range(n), [str(v) for v in self.matrix.columns])
        ax.set_yticks(range(n), [str(v) for v in self.matrix.index])
        p = self.provenance
        ax.set_xlabel(f"test {p.get('across')}")
        ax.set_ylabel(f"train {p.get('across')}")
        where = p.get("layer") or p.get("region") or "data"
        ax.set_title(f"{p.get('target')} across {p.get('across')}: {where}")
        if annotate:
            for i in range(n):
                for j in range(n):
                    r, g, b, _ = im.cmap(im.norm(values[i, j]))
                    dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center",
                            color="white" if dark else "black", fontsize=9)
        bar = ax.figure.colorbar(im, ax=ax)
        bar.set_label("accuracy")
        bar.ax.axhline(self.chance, color="white", linestyle="--", linewidth=1)
        return ax


class _Fit(NamedTuple):
    """One readout fit: its training level (a code), training rows, and what it is tested
    on: ``(test level code, test rows, held-out label)`` triples."""

    level: int
    train: np.ndarray
    tests: list


def _check_cv_argument(cv: Any, metadata: pd.DataFrame, target: str, across: str) -> Any:
    if cv is None:
        return None
    if not isinstance(cv, str):
        raise TypeError(
            f"Argument cv must be None or the name of a factor column whose groups are held "
            f"out (e.g. 'run', 'viewpoint'), got {cv!r} ({type(cv).__name__}). Integers and "
            "scikit-learn splitters are decode_activations options; here cv=None scores the "
            "diagonal with stratified k-fold within each level."
        )
    check_factor_column(metadata, cv, "cv",
                        hint="cv may also be None (k-fold within a level on the diagonal).")
    if cv in (target, across):
        which = "target" if cv == target else "across"
        why = ("every test group would hold a single class" if which == "target" else
               "each level would be tested only on the group it is never trained on")
        raise ValueError(
            f"Argument cv={cv!r} is the same factor as {which}: {why}. Choose a third "
            "factor (e.g. 'run', 'viewpoint') or cv=None."
        )
    return cv


def _levels_and_codes(col: pd.Series, argument: str, what: str) -> tuple[list, np.ndarray]:
    levels = factor_levels(col)
    if len(levels) < 2:
        raise ValueError(
            f"The {argument} factor {col.name!r} has fewer than 2 {what} ({levels}); "
            f"generalisation needs at least 2."
        )
    return levels, factor_codes(col, levels, argument=argument)


def _class_names(classes: list, codes) -> list:
    return [classes[int(c)] for c in codes]


def _plan(y, lev, grp, *, classes, levels, groups, target, across, cv, seed):
    """Every fit of the analysis, in the order the permutations draw their labels: by
    training level, then by held-out group (``cv`` a factor) or the whole-level fit
    followed by the diagonal's folds (``cv=None``). Checks that every fit can be made
    and scored, before any is."""
    n_levels = len(levels)
    fits = []
    for a in range(n_levels):
        rows_a = np.flatnonzero(lev == a)
        present = np.unique(y[rows_a])
        if len(present) < 2:
            raise ValueError(
                f"The target {target!r} has fewer than 2 classes "
                f"({_class_names(classes, present)}) in level {levels[a]!r} of across "
                f"{across!r}; a readout trained there needs at least 2. Drop that level "
                "first."
            )
        if cv is None:
            fits.append(_Fit(a, rows_a, [
                (b, np.flatnonzero(lev == b), None) for b in range(n_levels) if b != a
            ]))
            counts = np.bincount(y[rows_a], minlength=len(classes))
            smallest = int(counts[present].min())
            if smallest < 2:
                lonely = _class_names(classes, present[counts[present] < 2])
                raise ValueError(
                    f"With cv=None the diagonal cell of level {levels[a]!r} of across "
                    f"{across!r} is scored by stratified k-fold within that level, which "
                    f"needs at least 2 observations of every class of target {target!r} "
                    f"there; {lonely[:10]} have 1. Pass cv=<a factor> or drop those rows."
                )
            k = min(_MAX_DIAGONAL_FOLDS, smallest)
            skf = StratifiedKFold(k, shuffle=True, random_state=seed)
            for i, (tr, te) in enumerate(skf.split(np.zeros((len(rows_a), 1)), y[rows_a])):
                fits.append(_Fit(a, rows_a[tr], [(a, rows_a[te], f"fold{i}")]))
        else:
            for g in range(len(groups)):
                tests = [(b, np.flatnonzero((lev == b) & (grp == g)), str(groups[g]))
                         for b in range(n_levels)]
                tests = [t for t in tests if len(t[1])]
                fits.append(_Fit(a, np.flatnonzero((lev == a) & (grp != g)), tests))
    for fit in fits:
        trained = np.unique(y[fit.train])
        held = fit.tests[0][2]
        where = f"level {levels[fit.level]!r}" + (
            f" without {cv} group {held!r}" if cv is not None else "")
        if len(trained) < 2:
            raise ValueError(
                f"Training on {where} leaves {len(trained)} class(es) of target "
                f"{target!r} ({_class_names(classes, trained)}); a readout needs at least 2. "
                f"Choose a cv factor that every level of {across!r} is crossed with."
            )
        for b, te, _ in fit.tests:
            missing = np.setdiff1d(np.unique(y[te]), trained)
            if len(missing):
                raise ValueError(
                    f"Training on {where} has no observation of class(es) "
                    f"{_class_names(classes, missing)[:10]} of target {target!r}, which the "
                    f"test set in level {levels[b]!r} contains: the readout could never "
                    "predict them. Drop those classes, or choose levels (and a cv factor) "
                    "that hold every class."
                )
    return fits


def _score(template, X, y, fits, train_labels, preds=None) -> np.ndarray:
    """Accuracy of every (fit, test set) pair, in plan order; each fit trained on
    ``train_labels[k]`` and scored against the true labels of its test rows. ``preds``:
    each fit's predictions of its test sets' rows, concatenated (from the engine)."""
    accs = []
    for k, (fit, labels) in enumerate(zip(fits, train_labels, strict=True)):
        if preds is None:
            est = clone(template).fit(X[fit.train], labels)
            fit_preds = [est.predict(X[te]) for _, te, _ in fit.tests]
        else:
            ends = np.cumsum([len(te) for _, te, _ in fit.tests])
            fit_preds = np.split(preds[k], ends[:-1])
        for (_, te, _), pred in zip(fit.tests, fit_preds, strict=True):
            accs.append(float(np.mean(pred == y[te])))
    return np.array(accs)


def _null_scores(template, X, y, fits, rng, n_permutations: int):
    """`_score` of each permutation in turn, every fit with its own permutation of its own
    training labels drawn from ``rng`` in plan order. The paper readout's refits of a
    block of permutations are trained together by one batched model."""
    batched = isinstance(template, PaperReadout)
    params = template.get_params() if batched else {}
    for start in range(0, n_permutations, _PERMUTATION_BLOCK):
        block = [[rng.permutation(y[f.train]) for f in fits]
                 for _ in range(min(_PERMUTATION_BLOCK, n_permutations - start))]
        if not batched:
            yield from (_score(template, X, y, fits, labels) for labels in block)
            continue
        tests = [np.concatenate([te for _, te, _ in f.tests]) for f in fits]
        _, preds = fit_predict_readouts(
            [ReadoutJob(X, f.train, lab, params["seed"], test=te)
             for labels in block for f, lab, te in zip(fits, labels, tests, strict=True)],
            check_finite=False, **{k: params[k] for k in (
                "epochs", "batch_size", "lr", "momentum", "pool", "head", "device")})
        for i, labels in enumerate(block):
            yield _score(template, X, y, fits, labels,
                         preds=preds[i * len(fits) : (i + 1) * len(fits)])


def generalize(
    acts: Activations,
    *,
    target: str,
    across: str,
    cv: str | None = None,
    readout: Any = "linear",
    seed: int = 0,
    epochs: int = 100,
    pool: int | None = None,
    batch_size: int = 32,
    lr: float = 0.1,
    n_permutations: int = 0,
    device: Any = "auto",
) -> GeneralizationResult:
    """Train a readout of ``target`` on each level of ``across`` and test it on every
    level: how far does what is learnt in one condition carry to the others?

    Cell (a, b) of the result's matrix is the accuracy of readouts trained on level ``a``
    of ``across`` and tested on level ``b``. A high diagonal with a low off-diagonal means
    the target is coded differently in each condition; a high off-diagonal means a code
    shared across conditions (e.g. identity read out the same way from neutral and happy
    faces).

    Parameters
    ----------
    acts : Activations
        Responses of shape (n_obs, n_features) (or (n_obs, C, H, W)) with their factor
        table: a network layer or a brain region.
    target : str
        Factor column to read out.
    across : str
        Factor column whose levels are the training and test conditions (e.g.
        ``"expression"``, ``"viewpoint"``, ``"task"``); not the target.
    cv : str or None, default=None
        What keeps test observations out of training.

        - A factor column (e.g. ``"run"``, ``"session"``, ``"viewpoint"``; neither target
          nor across): for each of its groups g, the readout is trained on the
          observations of level a outside g and tested on the observations of every
          level b inside g. A cell is the mean over the groups that have test
          observations of level b; no observation of g is ever used in training.
        - None: an off-diagonal cell (a != b) is trained on all of level a and tested on
          all of level b (different observations). A diagonal cell must not test on
          training data, so it is scored by stratified k-fold within the level, k =
          min(5, the smallest class count in the level), shuffled with ``seed``, and is
          the mean over the folds; every class needs at least 2 observations there.
    readout : {"paper", "linear"} or scikit-learn classifier, default="linear"
        See :func:`dnnrsa.decoding.make_readout`.
    seed : int, default=0
        Seed of the readout, of the diagonal k-fold (``cv=None``) and of the permutations.
    epochs, pool, batch_size, lr
        Options of the paper readout (``pool`` also pools features for other readouts),
        as in :func:`decode_activations`; checked before any fit.
    n_permutations : int, default=0
        Recompute the matrix this many times with the training labels of every fit
        permuted (each fit its own permutation of its own training labels, drawn in the
        order of the fits; test labels untouched) for a null distribution and a p-value
        per cell. The paper readout's refits are trained together by one batched model;
        the numbers equal those of a loop of `PaperReadout` fits up to floating-point
        rounding.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
        Where the paper readout trains.

    Returns
    -------
    GeneralizationResult
        ``matrix`` (train level x test level), the tidy ``table``, ``chance``, and with
        permutations ``null`` of shape (n_levels, n_levels, n_permutations) and
        ``p_values``.

    Notes
    -----
    Classes of the target absent from a test set are fine (the accuracy is over the
    observations present); a class present in a test set must be present in its
    training set, since a readout could never predict it otherwise. Chance is
    1 / the number of classes of the target over all observations.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> meta = pd.DataFrame({"identity": np.tile(list("abcd"), 12),
    ...                      "expression": np.repeat(["NE", "HA"], 24)})
    >>> X = np.random.default_rng(0).normal(size=(48, 10))
    >>> res = generalize(Activations.from_arrays(X, meta, region="FFA"),
    ...                  target="identity", across="expression")
    >>> res.matrix.shape, res.matrix.index.name, res.matrix.columns.name
    ((2, 2), 'train', 'test')
    """
    if not isinstance(acts, Activations):
        raise TypeError(f"Argument acts must be dnnrsa.Activations, got {type(acts).__name__}.")
    device = check_readout_options(epochs=epochs, batch_size=batch_size, lr=lr, pool=pool,
                                   seed=seed, device=device)["device"]
    n_permutations = check_positive_int("n_permutations", n_permutations, 0)
    meta = acts.metadata
    target = acts.check_factor(target, "target")
    across = acts.check_factor(across, "across")
    if target == across:
        others = [f for f in acts.factors if f != target]
        raise ValueError(
            f"Arguments target and across are both {target!r}: each level of a factor holds "
            "one class of it, so there is nothing to generalise. Choose an across factor "
            f"crossed with the target; valid values are {format_choices(others)}."
        )
    cv = _check_cv_argument(cv, meta, target, across)
    classes, y = _levels_and_codes(meta[target], "target", "classes")
    levels, lev = _levels_and_codes(meta[across], "across", "levels")
    groups = grp = None
    if cv is not None:
        groups, grp = _levels_and_codes(meta[cv], "cv", "unique groups")
    if not np.isfinite(acts.X).all():
        bad = int((~np.isfinite(acts.X)).any(axis=1).sum())
        where = acts.layer or acts.provenance.get("region")
        raise ValueError(
            f"The activations of {where!r} contain NaN or Inf values in {bad} of "
            f"{len(acts)} observations; clean or drop them before decoding."
        )
    pixels = acts.layer == "pixels"
    template = make_readout(readout, pixels=pixels, epochs=epochs, pool=pool,
                            batch_size=batch_size, lr=lr, seed=seed, device=device)
    fits = _plan(y, lev, grp, classes=classes, levels=levels, groups=groups, target=target,
                 across=across, cv=cv, seed=seed)

    n_levels = len(levels)
    rows = [(fit.level, b, held, len(fit.train), len(te))
            for fit in fits for b, te, held in fit.tests]
    cell = np.array([a * n_levels + b for a, b, *_ in rows])
    per_cell = np.bincount(cell, minlength=n_levels**2)

    def to_matrix(accs):
        return (np.bincount(cell, weights=accs, minlength=n_levels**2)
                / per_cell).reshape(n_levels, n_levels)

    logger.debug("generalize: %d fits of %s across %d levels of %s (cv=%s), x%d with "
                "permutations", len(fits), target, n_levels, across, cv, 1 + n_permutations)
    X = acts.data
    accs = _score(template, X, y, fits, [y[f.train] for f in fits])
    matrix = to_matrix(accs)
    null = p_values = None
    if n_permutations:
        rng = np.random.default_rng(seed)
        null = np.stack([to_matrix(accs) for accs in
                         _null_scores(template, X, y, fits, rng, n_permutations)], axis=-1)
        p_values = (1 + (null >= matrix[..., None]).sum(-1)) / (1 + n_permutations)

    readout_name = readout if isinstance(readout, str) else type(readout).__name__
    if pixels and readout == "paper":
        readout_name = "paper-linear"
    prov = dict(
        network=acts.provenance.get("model") or acts.provenance.get("region"),
        seed=acts.provenance.get("seed"), layer=acts.layer,
        region=acts.provenance.get("region"), target=target, across=across, cv=cv,
        readout=readout_name, readout_seed=seed, levels=list(levels), classes=list(classes),
        stimuli=acts.provenance.get("stimuli"), n_obs=len(acts), n_features=acts.n_features,
        n_permutations=n_permutations,
    )
    if cv is None:
        prov["diagonal_folds"] = {str(levels[a]): sum(f.level == a for f in fits) - 1
                                  for a in range(n_levels)}
    chance = 1.0 / len(classes)
    order = np.argsort(cell, kind="stable")
    table = pd.DataFrame({
        "network": prov["network"], "seed": prov["seed"], "layer": prov["layer"],
        "region": prov["region"], "target": target, "across": across, "cv": cv,
        "train": [levels[rows[i][0]] for i in order],
        "test": [levels[rows[i][1]] for i in order],
        "held_out": [rows[i][2] for i in order],
        "accuracy": accs[order], "chance": chance,
        "n_train": [rows[i][3] for i in order], "n_test": [rows[i][4] for i in order],
        "readout": readout_name,
    })
    index = pd.Index(levels, name="train")
    columns = pd.Index(levels, name="test")
    return GeneralizationResult(
        matrix=pd.DataFrame(matrix, index=index, columns=columns), table=table,
        chance=chance, null=null,
        p_values=None if p_values is None else pd.DataFrame(p_values, index=index.copy(),
                                                            columns=columns.copy()),
        provenance=prov,
    )
