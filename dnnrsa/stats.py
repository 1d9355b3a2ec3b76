"""Aggregation over seeds: means, SEMs and trained-minus-untrained differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as _stats

__all__ = ["per_seed", "summarise", "difference_from"]

KEYS = ["network", "layer", "target"]


def per_seed(results: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy over folds for every network x seed x layer x target."""
    return (
        results.groupby(KEYS + ["seed"], dropna=False, sort=False)
        .agg(accuracy=("accuracy", "mean"), chance=("chance", "first"), n_folds=("fold", "size"))
        .reset_index()
    )


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and SEM (``scipy.stats.sem``, ddof 1) over seeds of the fold-averaged accuracy,
    per network x layer x target, as in the study (mean over 3 folds, then over seeds)."""
    seeds = per_seed(results)
    out = (
        seeds.groupby(KEYS, dropna=False, sort=False)
        .agg(
            mean=("accuracy", "mean"),
            sem=("accuracy", lambda a: float(_stats.sem(a)) if len(a) > 1 else np.nan),
            n_seeds=("accuracy", "size"),
            chance=("chance", "first"),
        )
        .reset_index()
    )
    return out


def difference_from(summary: pd.DataFrame, baseline: str = "untrained") -> pd.DataFrame:
    """Each network's mean minus the ``baseline`` network's mean at the same layer and target.

    Seeds of different networks are independent initialisations, not pairs, so the SEM of
    the difference is ``sqrt(sem_a**2 + sem_b**2)``.
    """
    base = summary[summary.network == baseline].set_index(["layer", "target"])
    rows = []
    for _, r in summary[~summary.network.isin([baseline, "pixels"])].iterrows():
        key = (r.layer, r.target)
        if key not in base.index:
            continue
        b = base.loc[key]
        rows.append(dict(network=r.network, layer=r.layer, target=r.target,
                         difference=r["mean"] - b["mean"],
                         sem=float(np.sqrt(np.nansum([r["sem"] ** 2, b["sem"] ** 2])))))
    return pd.DataFrame(rows, columns=["network", "layer", "target", "difference", "sem"])
