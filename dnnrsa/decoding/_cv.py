"""Cross-validation schemes of neuroscience: leave one level of a factor out."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import LeaveOneGroupOut, StratifiedKFold

from .._metadata import check_factor_column, factor_codes, factor_levels


def make_splits(cv: Any, metadata: pd.DataFrame, y: np.ndarray, *, seed: int = 0,
                groups: np.ndarray | None = None):
    """Resolve ``cv`` into a list of ``(train_idx, test_idx, held_out)`` triples.

    Parameters
    ----------
    cv : str, int or scikit-learn splitter
        A factor column name (leave one level out at a time, as scikit-learn's
        ``LeaveOneGroupOut`` on that column); an int (stratified k-fold, shuffled with
        ``seed``); or any object with ``split(X, y, groups)``.
    metadata : DataFrame
        The factor table of the observations.
    y : ndarray of shape (n_obs,)
        Integer class labels.
    groups : ndarray, optional
        Groups passed to a splitter object.

    Returns
    -------
    splits : list of (ndarray, ndarray, str)
        Train indices, test indices and a label of what was held out.
    name : str
        The scheme's name for result tables.
    """
    n = len(y)
    dummy = np.zeros((n, 1))
    if isinstance(cv, str):
        check_factor_column(metadata, cv, "cv",
                            hint="cv may also be an int (k-fold) or a scikit-learn splitter.")
        col = metadata[cv]
        levels = factor_levels(col)
        if len(levels) < 2:
            raise ValueError(
                f"The cv factor {cv!r} contains fewer than 2 unique groups ({levels}). "
                "Leave-one-group-out needs at least 2."
            )
        codes = factor_codes(col, levels, argument="cv")
        splits = [(tr, te, str(levels[codes[te[0]]]))
                  for tr, te in LeaveOneGroupOut().split(dummy, y, codes)]
        name = cv
    elif isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"Argument cv as an int must be >= 2 folds, got {cv}.")
        counts = np.bincount(y)
        if counts[counts > 0].min() < cv:
            raise ValueError(
                f"cv={cv} folds need at least {cv} observations of every class; the smallest "
                f"class has {counts[counts > 0].min()}. Use fewer folds."
            )
        skf = StratifiedKFold(int(cv), shuffle=True, random_state=seed)
        splits = [(tr, te, f"fold{i}") for i, (tr, te) in enumerate(skf.split(dummy, y))]
        name = f"{int(cv)}-fold"
    elif hasattr(cv, "split"):
        splits = [(np.asarray(tr), np.asarray(te), f"fold{i}")
                  for i, (tr, te) in enumerate(cv.split(dummy, y, groups))]
        name = type(cv).__name__
    else:
        raise ValueError(
            f"Unknown value {cv!r} for argument cv. Valid values are a factor column name "
            "(e.g. 'viewpoint', 'session'), an int (k-fold) or a scikit-learn splitter."
        )
    if not splits:
        raise ValueError(f"Argument cv={cv!r} produced no train/test split.")
    present = np.unique(y)
    for tr, te, held in splits:
        if len(tr) == 0 or len(te) == 0:
            raise ValueError(f"Fold {held!r} of cv={name!r} has an empty train or test set.")
        missing = np.setdiff1d(present, np.unique(y[tr]))
        if len(missing):
            raise ValueError(
                f"Fold {held!r} of cv={name!r} has no training observation of {len(missing)} "
                f"class(es) (codes {missing.tolist()[:10]}): the readout could never predict "
                "them. Choose a cv factor that every class is crossed with."
            )
    return splits, name
