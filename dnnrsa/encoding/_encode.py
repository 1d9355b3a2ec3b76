"""`encode`: cross-validated voxel-wise ridge encoding models from network layers to
brain regions, with a permutation null over the stimulus-to-response mapping."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut

from .._metadata import check_factor_column, factor_codes, factor_levels
from .._utils import check_positive_int, check_seed, logger
from ._match import (
    ConditionMatch,
    check_conditions,
    check_finite,
    condition_means,
    match_conditions,
    resolve_brain,
    resolve_features,
)
from ._result import TABLE_COLUMNS, EncodingResult
from ._ridge import Solver, resolve_solver

__all__ = ["encode"]

#: Inner folds of the himalaya backend when leave-one-group-out is not possible, and the
#: most folds of ``cv="conditions"``.
INNER_K = 5
MIN_TRAIN, MIN_TEST = 5, 3
#: A feature column whose SD over a fold's training rows is at most this fraction of the
#: layer's typical SD is constant there (see :func:`standardise`). float32 activations
#: carry about 1e-7 relative rounding; measured on the layers of an untrained ``ccn2022``
#: (48 faces, 5 folds), units active only at rounding level sit at 1e-6 to 2.4e-6 of the
#: layer's typical SD and the weakest real ones at 1.5e-4 or more; 2e-5 is about a factor 8
#: from either.
CONSTANT_RTOL = 2e-5
#: A fold warns when held-out predictions spread over more than this many times a voxel's
#: training responses (see :func:`_warn_extrapolation`).
EXTRAPOLATION = 10.0


@dataclass(frozen=True)
class Fold:
    train: np.ndarray
    test: np.ndarray
    label: str
    inner: list | None  # train/validation positions within ``train`` (himalaya)


def _inner_splits(train: np.ndarray, groups: np.ndarray | None, seed: int) -> list:
    """Inner folds on the training rows that respect the outer grouping: leave one group out
    for 3 to 5 groups (e.g. runs), grouped 5-fold for more (e.g. conditions, so that no
    condition is on both sides of an inner split either), else shuffled 5-fold rows."""
    dummy = np.zeros((len(train), 1))
    if groups is not None:
        g = groups[train]
        n_groups = len(np.unique(g))
        if 3 <= n_groups <= INNER_K:
            return list(LeaveOneGroupOut().split(dummy, groups=g))
        if n_groups > INNER_K:
            kf = GroupKFold(INNER_K, shuffle=True, random_state=seed)
            return list(kf.split(dummy, groups=g))
    kf = KFold(INNER_K, shuffle=True, random_state=seed)
    return list(kf.split(dummy))


def _uses_groups(cv: Any) -> bool:
    """Whether a splitter's ``split`` takes groups: scikit-learn splitters say so in their
    metadata routing (and warn when given groups they ignore); others are given them."""
    try:
        return "groups" in cv.get_metadata_routing().split.requests
    except AttributeError:
        return True


def make_folds(cv: Any, metadata: pd.DataFrame, condition_codes: np.ndarray, *, seed: int,
               inner: bool, what: str) -> tuple[list[Fold], str]:
    """Resolve ``cv`` on the brain rows into checked folds.

    Parameters
    ----------
    cv : str, int or scikit-learn splitter
        ``"conditions"`` (grouped k-fold over the conditions), a brain factor (leave one
        level out), an int k (shuffled k-fold) or a splitter, whose
        ``split`` gets the condition codes as ``groups`` (``GroupKFold`` then holds out
        whole conditions, i.e. new stimuli).
    metadata : DataFrame of n_rows rows
    condition_codes : ndarray of shape (n_rows,)
    inner : bool
        Also build the inner splits of every training set (himalaya backend).
    what : str
        Names the brain data in errors.

    Returns
    -------
    folds : list of Fold
    name : str
    """
    n = len(metadata)
    dummy = np.zeros((n, 1))
    groups = None
    if cv == "conditions" and "conditions" not in metadata.columns:
        n_cond = len(np.unique(condition_codes))
        if n_cond < 2:
            raise ValueError(
                f"cv='conditions' holds out conditions, but {what} has only {n_cond}."
            )
        groups = condition_codes
        kf = GroupKFold(min(INNER_K, n_cond), shuffle=True, random_state=seed)
        raw = [(tr, te, f"conditions{i}")
               for i, (tr, te) in enumerate(kf.split(dummy, groups=groups))]
        name = "conditions"
    elif isinstance(cv, str):
        check_factor_column(metadata, cv, "cv",
                            hint="cv may also be an int (k-fold) or a scikit-learn splitter.")
        levels = factor_levels(metadata[cv])
        if len(levels) < 2:
            raise ValueError(
                f"The cv factor {cv!r} of {what} contains fewer than 2 unique groups "
                f"({levels}). Leave-one-group-out needs at least 2."
            )
        groups = factor_codes(metadata[cv], levels, argument="cv")
        raw = [(tr, te, str(levels[groups[te[0]]]))
               for tr, te in LeaveOneGroupOut().split(dummy, groups=groups)]
        name = cv
    elif isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if not 2 <= cv <= n:
            raise ValueError(
                f"Argument cv as an int must be between 2 and the {n} rows of {what}, got {cv}."
            )
        kf = KFold(int(cv), shuffle=True, random_state=seed)
        raw = [(tr, te, f"fold{i}") for i, (tr, te) in enumerate(kf.split(dummy))]
        name = f"{int(cv)}-fold"
    elif hasattr(cv, "split"):
        given = condition_codes if _uses_groups(cv) else None
        raw = [(np.asarray(tr), np.asarray(te), f"fold{i}")
               for i, (tr, te) in enumerate(cv.split(dummy, None, given))]
        name = type(cv).__name__
    else:
        raise ValueError(
            f"Unknown value {cv!r} for argument cv. Valid values are a brain factor name "
            "(e.g. 'run'), an int (k-fold) or a scikit-learn splitter."
        )
    if len(raw) < 2:
        raise ValueError(
            f"Argument cv={name!r} gives {len(raw)} fold(s) on {what}; at least 2 are needed."
        )
    folds = []
    for tr, te, label in raw:
        if len(np.intersect1d(tr, te)):
            raise ValueError(
                f"Fold {label!r} of cv={name!r} puts {len(np.intersect1d(tr, te))} row(s) in "
                "both its training and test set; held-out rows must not be trained on."
            )
        if len(tr) < MIN_TRAIN or len(te) < MIN_TEST:
            raise ValueError(
                f"Fold {label!r} of cv={name!r} on {what} has {len(tr)} training and {len(te)} "
                f"test rows; encoding needs at least {MIN_TRAIN} and {MIN_TEST}. Use fewer folds."
            )
        folds.append(Fold(tr, te, label, _inner_splits(tr, groups, seed) if inner else None))
    return folds, name


def _fold_scores(y: np.ndarray, pred: np.ndarray, train_constant: np.ndarray):
    """Pearson r and R^2 (1 - SSE/SST around the test mean, scikit-learn's ``r2_score``)
    per voxel. r is NaN when the observation, the prediction or the training data of a voxel
    are constant (a correlation with a constant is undefined); R^2 is NaN when the held-out
    observation is constant."""
    y_const = np.ptp(y, axis=0) == 0
    yc = y - y.mean(axis=0)
    pc = pred - pred.mean(axis=0)
    sst = np.einsum("ij,ij->j", yc, yc)
    spp = np.einsum("ij,ij->j", pc, pc)
    sse = np.einsum("ij,ij->j", y - pred, y - pred)
    undefined = y_const | (np.ptp(pred, axis=0) == 0) | train_constant
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.einsum("ij,ij->j", yc, pc) / np.sqrt(sst * spp)
        r2 = 1.0 - sse / sst
    r[undefined] = np.nan
    r2[y_const] = np.nan
    return r, r2


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Standardise the features on the training rows; zero the columns that are constant there.

    Every column is centred and scaled by its mean and SD over the training rows
    (``StandardScaler``). A column whose training SD is at most :data:`CONSTANT_RTOL` times
    the layer's typical SD (the root mean training variance over columns) is treated as
    constant and set to 0 on both sides, which is what a ridge fit gets from an exactly
    constant column (no weight, no contribution). Without this, a unit that is almost
    always 0 after a ReLU, active at float32 rounding level (1e-7) in one training
    stimulus and at 0.03 in a test stimulus, reaches z = 7e5 on the test rows and one
    fold's mean R^2 drops to -876 (``dense1`` of an untrained ``ccn2022``).

    Parameters
    ----------
    train : ndarray of shape (n_train, n_features)
    test : ndarray of shape (n_test, n_features)

    Returns
    -------
    train, test : ndarray, float64
        The standardised rows.
    n_constant : int
        How many columns were treated as constant.
    """
    train = np.asarray(train, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    mean = train.mean(axis=0)
    train = train - mean
    test = test - mean
    sd = np.sqrt(np.einsum("ij,ij->j", train, train) / len(train))
    flat = sd <= CONSTANT_RTOL * np.sqrt(np.mean(sd ** 2))
    scale = np.where(flat, 1.0, sd)
    train /= scale
    test /= scale
    train[:, flat] = 0.0
    test[:, flat] = 0.0
    return train, test, int(flat.sum())


def _cross_validate(design: np.ndarray, Y: np.ndarray, folds: list[Fold], solver: Solver,
                    what: str | None = None):
    """Held-out r, R^2 and the chosen penalties, each of shape (n_folds, n_voxels).
    ``what`` names the layer in the extrapolation warning (None: no warning, for the
    permutation refits)."""
    shape = (len(folds), Y.shape[1])
    r, r2, alpha = np.empty(shape), np.empty(shape), np.empty(shape)
    for i, fold in enumerate(folds):
        X_train, X_test, n_flat = standardise(design[fold.train], design[fold.test])
        logger.debug("encode: fold %s, %d of %d feature columns constant on the training rows",
                     fold.label, n_flat, design.shape[1])
        pred, alpha[i] = solver.fit_predict(X_train, Y[fold.train], X_test, fold.inner)
        if what is not None:
            _warn_extrapolation(pred, Y[fold.train], X_test, what, fold.label)
        r[i], r2[i] = _fold_scores(Y[fold.test], pred, np.ptp(Y[fold.train], axis=0) == 0)
    return r, r2, alpha


def _warn_extrapolation(pred: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
                        what: str, label: str) -> None:
    """Warn when held-out predictions spread over more than :data:`EXTRAPOLATION` times a
    voxel's training responses: ridge shrinks, so that only happens when held-out features
    lie far outside their training range (a unit almost silent on the training stimuli and
    active on a test one), and that fold's R^2 is then dominated by it."""
    sd = y_train.std(axis=0)
    ratio = np.zeros(len(sd))
    ok = np.ptp(y_train, axis=0) > 0  # a constant voxel has NaN scores already
    ratio[ok] = pred[:, ok].std(axis=0) / sd[ok]
    wild = np.flatnonzero(ratio > EXTRAPOLATION)
    if wild.size:
        warnings.warn(
            f"encode: {what}, fold {label!r}: the held-out predictions of {wild.size} of "
            f"{len(ratio)} voxel(s) spread over up to {ratio[wild].max():.0f} times their "
            f"training responses' SD; held-out features reach |z| = "
            f"{np.abs(X_test).max():.3g} (standardised on the training rows), i.e. units "
            "almost constant on the training stimuli are active on held-out ones. This fold's "
            "R^2 reflects that extrapolation; more training stimuli per fold (more folds) or "
            "a layer without such sparse units avoids it.",
            RuntimeWarning, stacklevel=4)


def _mode_alpha(alpha: np.ndarray) -> np.ndarray:
    """Per voxel (column), the penalty chosen in most folds; the median on a tie."""
    out = np.empty(alpha.shape[1])
    for j in range(alpha.shape[1]):
        values, counts = np.unique(alpha[:, j], return_counts=True)
        best = np.flatnonzero(counts == counts.max())
        out[j] = values[best[0]] if len(best) == 1 else np.median(alpha[:, j])
    return out


def _defined_mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


@dataclass
class _Group:
    """ROIs with the same brain rows (same factor table): fitted together, since ridge with
    a penalty per voxel treats every voxel on its own."""

    rois: list
    slices: dict
    Y: np.ndarray
    folds: list
    cv_name: str
    matches: dict  # feature key -> ConditionMatch


def encode(features: Any, brain: Any, *, conditions: Any = None, cv: Any = "conditions",
           alphas: Any = None, backend: str = "auto", n_permutations: int = 0, seed: int = 0,
           device: Any = "auto") -> EncodingResult:
    """Predict every voxel of brain regions from network layers with cross-validated ridge.

    For every layer and region, each training set standardises the features (a
    ``StandardScaler`` fit on the training rows only; a column constant there, to within
    float32 rounding of the layer's scale, is set to 0, see Notes) and fits a ridge
    regression with an intercept for every voxel, its penalty chosen among ``alphas`` by inner
    cross-validation on the training rows; the held-out rows are then predicted and scored.

    Parameters
    ----------
    features : Activations, dict of str -> Activations, or list of such dicts
        Stimulus features, one row per stimulus: one layer, a dict layer name ->
        `Activations`, or a list of dicts (networks or training seeds; each is named by its
        provenance ``model``/``network`` and ``seed``, else ``"model"`` and its position).
    brain : Activations or dict of str -> Activations
        A region (or dict ROI name -> region) of shape (n_rows, n_voxels), e.g. from
        ``dnnrsa.neural.from_runs``: one row per run x condition, with a ``run`` column.
    conditions : str or tuple of str, optional
        Column(s) present in both metadata tables; each brain row gets the features of its
        condition (feature rows of one condition are averaged first). Every brain condition
        must have features. None: features and brain rows correspond one to one.
    cv : str, int or scikit-learn splitter, default "conditions"
        ``"conditions"``: new stimuli. The conditions are split into 5 groups (fewer when
        there are fewer conditions; scikit-learn's ``GroupKFold``, shuffled with ``seed``)
        and each group is held out in turn with all its rows, in every run, so the model is
        scored on stimuli it never saw. A brain factor such as ``"run"`` leaves one level
        out (``LeaveOneGroupOut``); when every run shows the same conditions this asks how
        well responses generalise to a new run of the *same* stimuli, and a layer with
        about as many features as conditions can fit any pattern over them, random
        features included (measured: a random 48-feature layer r = 0.85 against 0.87 for
        the true layer with ``cv="run"``; -0.03 against 0.73 with held-out stimuli). An
        int k is a shuffled k-fold over rows; a splitter's ``split`` receives the
        condition codes as ``groups``.
    alphas : array-like of shape (n_alphas,), optional
        Ridge penalties to choose from per voxel, finite and > 0. Default
        ``np.logspace(-2, 5, 15)``.
    backend : {"auto", "himalaya", "sklearn"}, default "auto"
        ``"sklearn"``: ``sklearn.linear_model.RidgeCV(alpha_per_target=True)``, whose inner
        cross-validation is its efficient leave-one-row-out. ``"himalaya"`` (and
        ``"auto"``): ``himalaya.ridge.RidgeCV`` (``KernelRidgeCV`` with a linear kernel,
        the same model solved on the rows' kernel, when a layer has more features than
        training rows) with inner folds that keep the outer
        grouping (leave one group out for 3 to 5 training groups such as runs, grouped
        5-fold for more such as conditions, else shuffled 5-fold rows); numpy (float64) on
        the CPU, torch on CUDA (float32). scikit-learn's leave-one-row-out cannot be
        grouped, so with repeated conditions its choice of penalty sees other repetitions
        of a validation row's condition (the outer test stays clean).
    n_permutations : int, default 0
        Size of a permutation null: the brain conditions are re-assigned the features of
        other conditions (one permutation for all runs, so the run structure stays) and
        everything is refitted. The p-value of the mean-over-voxels r is
        ``(1 + #(null >= observed)) / (1 + n_permutations)``. With ``conditions=None`` every
        row is its own condition. Costs ``n_permutations`` extra fits of every layer.
    seed : int, default 0
        Seeds the k-fold shuffles and the permutations (the same for every layer, so layers
        are compared on the same null draws).
    device : str or torch.device, default "auto"
        Where himalaya computes (``"cuda"`` without a GPU is an error, never a fallback).
        ``backend="sklearn"`` runs on the CPU.

    Returns
    -------
    EncodingResult
        ``table`` (one row per network x seed x layer x ROI), per-voxel ``voxels``,
        per-fold ``folds``, ``null``, ``to_nifti`` and ``plot``.

    Notes
    -----
    Encoding asks whether a layer's features can be *reweighted* to predict a region, which
    is weaker evidence about which layer matches than RSA's fixed geometry: on a region
    simulated from ``dense2`` of a small untrained DenseNet (24 faces), ``conv1``,
    ``dense2``, ``dense3`` and ``dense2`` of another random net all reached r = 0.53-0.55,
    while ``dense2`` given to the wrong stimuli reached 0.08;
    :func:`dnnrsa.rsa.compare_to_brain` ranked ``dense2`` first, every other layer worse
    by its bootstrap test (48 faces, 3 subjects: Holm p = 0.006). Hold out stimuli (the default) and use the permutation null to rule out a
    layer that fits anything.

    Standardising on the training rows gives every unit the same prior weight, also a
    unit that is almost silent on the training stimuli. A unit whose training SD is at most
    ``CONSTANT_RTOL`` (2e-5) times the layer's typical SD is rounding noise (a post-ReLU
    unit at 2.5e-7 on one training face) and is treated like an exactly constant column,
    i.e. left out; scaled instead, its 0.03 on a test face reached z = 7e5 and sent one
    fold's mean R^2 to -876 (``dense1`` of an untrained ``ccn2022``, mean -175 over 5 folds,
    while r stayed 0.33). A unit that is really active, only weakly, on few training
    stimuli is kept: when held-out predictions then spread over more than 10 times a
    voxel's training responses, a ``RuntimeWarning`` names the layer and the fold, whose
    R^2 then reflects that extrapolation.

    A voxel whose held-out (or training) responses are constant in some fold has no
    correlation there; its r is NaN, it is left out of the table's means and counted in
    ``n_voxels_nan``. Its R^2 is NaN only when its held-out responses are constant.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from dnnrsa import Activations
    >>> rng = np.random.default_rng(0)
    >>> stim = pd.DataFrame({"stimulus": np.arange(12)})
    >>> layer = Activations(rng.normal(size=(12, 8)), stim, {"layer": "fc"})
    >>> meta = pd.DataFrame({"run": np.repeat([1, 2, 3], 12), "stimulus": np.tile(range(12), 3)})
    >>> Y = layer.X[meta["stimulus"]] @ rng.normal(size=(8, 20)) + rng.normal(size=(36, 20))
    >>> res = encode(layer, Activations(Y, meta, {"region": "V1"}), conditions="stimulus")
    >>> res.table[["layer", "roi", "n_voxels"]].values.tolist()
    [['fc', 'V1', 20]]
    """
    # -- every check before any fitting ------------------------------------------------
    seed = check_seed("seed", seed)
    n_permutations = check_positive_int("n_permutations", n_permutations, 0)
    solver = resolve_solver(backend, alphas, device)
    feats = resolve_features(features)
    rois = resolve_brain(brain)
    columns = check_conditions(conditions)
    for (network, s, layer), acts in feats.items():
        check_finite(acts, f"Argument features (layer {layer!r} of {network!r}, seed {s!r})")
    for roi, acts in rois.items():
        check_finite(acts, f"Argument brain (ROI {roi!r})")
    groups = _plan(feats, rois, columns, cv, seed, solver)

    # -- fitting ---------------------------------------------------------------------------
    keys = [(*fk, roi) for fk in feats for g in groups for roi in g.rois]
    voxels, folds_r, folds_r2, null, rows = {}, {}, {}, {}, {}
    fold_labels = {roi: [f.label for f in g.folds] for g in groups for roi in g.rois}
    with solver.active():
        for g in groups:
            perms = _permutations(g, n_permutations, seed)
            for fkey, acts in feats.items():
                match = g.matches[fkey]
                F = condition_means(acts.X, match)
                logger.info("encode: %s seed %s layer %s -> %s (%d folds, %d voxels)",
                            *fkey, ", ".join(g.rois), len(g.folds), g.Y.shape[1])
                r, r2, alpha = _cross_validate(
                    F[match.brain_codes], g.Y, g.folds, solver,
                    what=f"layer {fkey[2]!r} of {fkey[0]!r} (seed {fkey[1]!r})")
                nulls = [_cross_validate(F[perm][match.brain_codes], g.Y, g.folds, solver)[0]
                         for perm in perms]
                for roi in g.rois:
                    sl, key = g.slices[roi], (*fkey, roi)
                    folds_r[key], folds_r2[key] = r[:, sl], r2[:, sl]
                    vox = pd.DataFrame({"r": r[:, sl].mean(0), "r2": r2[:, sl].mean(0),
                                        "alpha": _mode_alpha(alpha[:, sl])})
                    voxels[key] = vox
                    if n_permutations:
                        null[key] = np.array([_defined_mean(n[:, sl].mean(0)) for n in nulls])
                    rows[key] = _table_row(key, vox, len(g.folds), solver.label,
                                           null.get(key))
    table = pd.DataFrame([rows[k] for k in keys], columns=TABLE_COLUMNS)
    params = {"cv": groups[0].cv_name, "conditions": columns,
              "alphas": solver.alphas.tolist(), "backend": solver.label,
              "n_permutations": n_permutations, "seed": seed}
    return EncodingResult(table, {k: voxels[k] for k in keys}, {k: folds_r[k] for k in keys},
                          {k: folds_r2[k] for k in keys}, fold_labels,
                          {k: null[k] for k in keys} if n_permutations else None,
                          {roi: acts.mask for roi, acts in rois.items()}, params)


def _plan(feats: dict, rois: dict, columns, cv, seed: int, solver: Solver) -> list[_Group]:
    """Group the ROIs by their rows, resolve their folds and match every layer to them:
    every error the inputs can cause is raised here, before the first fit."""
    grouped: list[list[str]] = []
    for roi, acts in rois.items():
        for members in grouped:
            if rois[members[0]].metadata.equals(acts.metadata):
                members.append(roi)
                break
        else:
            grouped.append([roi])
    groups = []
    for members in grouped:
        meta = rois[members[0]].metadata
        what = f"brain ROI {members[0]!r}"
        matches = {fk: match_conditions(acts.metadata, meta, columns,
                                        what=f"layer {fk[2]!r} of {fk[0]!r} (seed {fk[1]!r}) "
                                             f"and ROI {members[0]!r}")
                   for fk, acts in feats.items()}
        codes = next(iter(matches.values())).brain_codes
        folds, name = make_folds(cv, meta, codes, seed=seed, inner=solver.needs_inner_splits,
                                 what=what)
        widths = [rois[r].n_features for r in members]
        edges = np.concatenate([[0], np.cumsum(widths)])
        slices = {r: slice(int(a), int(b)) for r, a, b in zip(members, edges[:-1], edges[1:])}
        Y = np.hstack([np.asarray(rois[r].X, dtype=np.float64) for r in members])
        groups.append(_Group(members, slices, Y, folds, name, matches))
    return groups


def _permutations(group: _Group, n: int, seed: int) -> list[np.ndarray]:
    """``n`` permutations of the brain conditions, drawn afresh from ``seed`` for every
    group of ROIs (so the same ROI gets the same draws whatever else is fitted)."""
    if not n:
        return []
    match: ConditionMatch = next(iter(group.matches.values()))
    rng = np.random.default_rng(seed)
    return [rng.permutation(match.n_conditions) for _ in range(n)]


def _table_row(key: tuple, vox: pd.DataFrame, n_folds: int, label: str,
               null: np.ndarray | None) -> list:
    r = vox["r"].to_numpy()
    ok = np.isfinite(r)
    mean_r = float(r[ok].mean()) if ok.any() else float("nan")
    p = float("nan")
    if null is not None and np.isfinite(mean_r):
        p = (1 + int(np.count_nonzero(null >= mean_r))) / (1 + len(null))
    return [*key, mean_r, float(np.median(r[ok])) if ok.any() else float("nan"),
            _defined_mean(vox["r2"].to_numpy()), len(vox), int((~ok).sum()), n_folds, label,
            p, float(np.median(vox["alpha"]))]
