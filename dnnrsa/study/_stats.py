"""Statistics over seeds and the decisions on the study's findings.

The unit of replication is the network seed (an independent random initialisation and,
for trained networks, an independent training run). Folds are averaged within a seed
first, as in the study, and every interval, test and verdict is computed over seeds.

Two designs occur in the study's claims:

* trained vs untrained network at one layer: the seeds of the two networks are different
  initialisations, so the groups are independent and :func:`welch_test` applies;
* two layers of one network: both layers come from the same seed, so the seeds are pairs
  and :func:`paired_test` applies.

:func:`holm` adjusts a family of p values; ``_findings.py`` runs the paper's claims with
these tests.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _stats

from .._pvalues import as_vector, holm

__all__ = [
    "SeedTest",
    "per_seed",
    "summarise",
    "difference_from",
    "welch_differences",
    "welch_test",
    "paired_test",
    "holm",
]

KEYS = ["network", "layer", "target"]
_RESULT_COLUMNS = ["network", "seed", "layer", "target", "accuracy", "chance"]
_SUMMARY_COLUMNS = ["network", "layer", "target", "mean", "sem"]
_LEVEL = 0.95

# --------------------------------------------------------------------------- aggregation


def _check_frame(name: str, df: Any, columns: Sequence[str]) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"Argument {name} must be a pandas DataFrame, got {type(df).__name__}.")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"Argument {name} lacks the column(s) {missing}; it has {list(df.columns)} and "
            f"needs at least {list(columns)}."
        )
    return df


def per_seed(results: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy over folds for every network x seed x layer x target.

    Parameters
    ----------
    results : pandas.DataFrame
        The sweep's tidy per-fold table, with at least the columns network, seed, layer,
        target, accuracy and chance (one row per fold).

    Returns
    -------
    pandas.DataFrame
        Columns network, layer, target, seed, accuracy (mean over folds), chance and
        n_folds (folds with a defined accuracy), in the order the groups first occur.
        Rows whose seed is missing (the pixel control, which has no seeds) are kept as
        their own group.
    """
    results = _check_frame("results", results, _RESULT_COLUMNS)
    groups = results.groupby(KEYS + ["seed"], dropna=False, sort=False)
    acc = groups["accuracy"]
    out = pd.concat({"accuracy": acc.mean(), "chance": groups["chance"].first(),
                     "n_folds": acc.count()}, axis=1)
    return out.reset_index()


def _describe(values: np.ndarray) -> dict:
    """Mean, SD, SEM and 95% t interval of finite ``values``; NaN where undefined."""
    x = values[np.isfinite(values)]
    n = x.size
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        # one seed says nothing about seed-to-seed variation: leave it undefined, not 0
        return dict(mean=mean, sd=math.nan, sem=math.nan, n_seeds=n,
                    ci_low=math.nan, ci_high=math.nan)
    sd = float(np.std(x, ddof=1))
    sem = float(_stats.sem(x, ddof=1))
    half = float(_stats.t.ppf(0.5 + _LEVEL / 2, n - 1)) * sem
    return dict(mean=mean, sd=sd, sem=sem, n_seeds=n, ci_low=mean - half, ci_high=mean + half)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, spread and 95% interval over seeds, per network x layer x target.

    Accuracies are first averaged over folds within each seed (:func:`per_seed`), then
    described over seeds, as in the study.

    Parameters
    ----------
    results : pandas.DataFrame
        The sweep's tidy per-fold table (see :func:`per_seed`).

    Returns
    -------
    pandas.DataFrame
        Columns network, layer, target, mean, sd (ddof 1), sem (``scipy.stats.sem``,
        ddof 1), n_seeds, ci_low, ci_high (95% t interval over seeds) and chance. With a
        single seed (as for the pixel control, which is kept) sd, sem and the interval
        are NaN: one run gives no estimate of seed-to-seed variation.
    """
    seeds = per_seed(results)
    rows = []
    for key, sub in seeds.groupby(KEYS, dropna=False, sort=False):
        rows.append(dict(zip(KEYS, key), **_describe(sub["accuracy"].to_numpy(float)),
                         chance=sub["chance"].iloc[0]))
    columns = KEYS + ["mean", "sd", "sem", "n_seeds", "ci_low", "ci_high", "chance"]
    out = pd.DataFrame(rows, columns=columns)
    out["n_seeds"] = out["n_seeds"].astype(int)
    return out


def difference_from(summary: pd.DataFrame, baseline: str = "untrained") -> pd.DataFrame:
    """Each network's mean minus the baseline network's mean at the same layer and target.

    Parameters
    ----------
    summary : pandas.DataFrame
        The output of :func:`summarise` (at least network, layer, target, mean, sem).
    baseline : str, default "untrained"
        The network subtracted.

    Returns
    -------
    pandas.DataFrame
        Columns network, layer, target, difference and sem. Seeds of different networks
        are independent initialisations, so ``sem = sqrt(sem_a**2 + sem_b**2)``; it is NaN
        when either SEM is NaN (a single seed), never a partial sum. The pixel control and
        the baseline itself are skipped, and so are layer x target cells the baseline
        lacks; without the baseline in ``summary`` the table is empty.
    """
    summary = _check_frame("summary", summary, _SUMMARY_COLUMNS)
    if not isinstance(baseline, str):
        raise TypeError(f"Argument baseline must be a network name (str), got {baseline!r}.")
    base = summary[summary.network == baseline].set_index(["layer", "target"])
    others = summary[~summary.network.isin([baseline, "pixels"])]
    merged = others.merge(base[["mean", "sem"]], left_on=["layer", "target"],
                          right_index=True, suffixes=("", "_base"))
    out = pd.DataFrame({
        "network": merged["network"].to_numpy(),
        "layer": merged["layer"].to_numpy(),
        "target": merged["target"].to_numpy(),
        "difference": (merged["mean"] - merged["mean_base"]).to_numpy(float),
        # plain arithmetic propagates NaN, which is the point: see the docstring
        "sem": np.sqrt(merged["sem"].to_numpy(float) ** 2
                       + merged["sem_base"].to_numpy(float) ** 2),
    })
    return out.reset_index(drop=True)


def welch_differences(results: pd.DataFrame, baseline: str = "untrained") -> pd.DataFrame:
    """Each network minus the baseline network at the same layer and target, with Welch's
    t test across seeds: the test the report's trained-vs-untrained findings use, here for
    every cell (Figure 2B draws its intervals).

    Parameters
    ----------
    results : pandas.DataFrame
        The sweep's tidy per-fold table (see :func:`per_seed`).
    baseline : str, default "untrained"
        The network subtracted.

    Returns
    -------
    pandas.DataFrame
        Columns network, layer, target, n_seeds, n_seeds_baseline, difference, se, df,
        ci_low, ci_high (95%) and p (two-sided, not adjusted for the number of cells), one
        row per network x layer x target the baseline also has; the pixel control and the
        baseline itself are skipped. Cells :func:`welch_test` cannot test (fewer than 2
        seeds in a group, no variance) have NaN se, interval and p.
    """
    if not isinstance(baseline, str):
        raise TypeError(f"Argument baseline must be a network name (str), got {baseline!r}.")
    seeds = per_seed(results)
    base = {key[1:]: sub["accuracy"].to_numpy(float)
            for key, sub in seeds[seeds.network == baseline].groupby(KEYS, sort=False)}
    rows = []
    others = seeds[~seeds.network.isin([baseline, "pixels"])]
    for (net, layer, target), sub in others.groupby(KEYS, sort=False):
        if (layer, target) not in base:
            continue
        res = welch_test(sub["accuracy"].to_numpy(float), base[(layer, target)])
        rows.append(dict(network=net, layer=layer, target=target, n_seeds=res.n_a,
                         n_seeds_baseline=res.n_b, difference=res.difference, se=res.se,
                         df=res.df, ci_low=res.ci_low, ci_high=res.ci_high, p=res.p))
    columns = ["network", "layer", "target", "n_seeds", "n_seeds_baseline", "difference",
               "se", "df", "ci_low", "ci_high", "p"]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- tests


@dataclasses.dataclass(frozen=True)
class SeedTest:
    """The result of a t test over seeds.

    All numbers are in the units of the input (accuracies as fractions in the study).
    A quantity that the data do not define is NaN, never 0.

    Attributes
    ----------
    test : str
        "Welch's t" or "paired t".
    n_a, n_b : int
        Values used in each group; for the paired test both are the number of pairs.
    mean_a, mean_b : float
        Group means (for the paired test, over the paired seeds only).
    difference : float
        ``mean_a - mean_b``.
    se : float
        Standard error of the difference: Welch's ``sqrt(var_a/n_a + var_b/n_b)``, or the
        paired ``sd(a - b) / sqrt(n)``.
    df : float
        Degrees of freedom: Welch-Satterthwaite, or ``n - 1`` for pairs.
    t : float
        ``difference / se``.
    ci_low, ci_high : float
        95% confidence interval of the difference.
    p : float
        Two-sided p value.
    note : str
        Why p is undefined, when it is; "" otherwise.
    """

    test: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    difference: float
    se: float
    df: float
    t: float
    ci_low: float
    ci_high: float
    p: float
    note: str = ""

    def as_dict(self) -> dict:
        """The fields as a plain dict (for a table row)."""
        return dataclasses.asdict(self)


def _values(name: str, values: Any) -> np.ndarray:
    x = as_vector(name, values, per="one value per seed")
    if np.isinf(x).any():
        raise ValueError(f"Argument {name} contains infinite values; accepts finite numbers "
                         "(NaN marks a missing seed and is dropped).")
    return x


def _constant(x: np.ndarray, scale: float | None = None) -> bool:
    # "no variance" up to float rounding, relative to the size of the numbers the values
    # came from: 0.3 - 0.2 and 0.4 - 0.3 are the same difference but not the same float
    if scale is None:
        scale = float(np.max(np.abs(x))) if x.size else 0.0
    return float(np.ptp(x)) <= 8 * np.finfo(float).eps * scale


def _finish(test, n_a, n_b, mean_a, mean_b, se, df, note) -> SeedTest:
    d = mean_a - mean_b
    if note or not (se > 0):
        return SeedTest(test, n_a, n_b, mean_a, mean_b, d, se, math.nan, math.nan,
                        math.nan, math.nan, math.nan, note)
    t = d / se
    p = float(2 * _stats.t.sf(abs(t), df))
    half = float(_stats.t.ppf(0.5 + _LEVEL / 2, df)) * se
    return SeedTest(test, n_a, n_b, mean_a, mean_b, d, se, float(df), t, d - half, d + half, p)


def welch_test(a: Any, b: Any) -> SeedTest:
    """Welch's unequal-variance t test of two independent groups of seeds.

    Use it for two different networks at the same layer and target: their seeds are
    separate initialisations, not pairs.

    Parameters
    ----------
    a, b : sequence of float
        One value per seed (fold-averaged accuracy). NaN marks a missing seed and is
        dropped.

    Returns
    -------
    SeedTest
        With ``difference = mean(a) - mean(b)``, ``se = sqrt(var_a/n_a + var_b/n_b)``
        (ddof 1), Welch-Satterthwaite df, the 95% interval and the two-sided p; matches
        ``scipy.stats.ttest_ind(a, b, equal_var=False)``.

    Notes
    -----
    Degenerate input never raises, so that a report can show it as inconclusive:

    * fewer than 2 values in either group: a variance cannot be estimated, so se, df, t,
      the interval and p are NaN (the means and difference are kept where defined);
    * no variance in either group (all values tied within each group, as when every seed
      sits at the same quantised accuracy): se is 0 and t would be 0/0 or infinite. A t
      test says nothing then, because its reference distribution assumes a positive
      variance, so t, df, the interval and p are NaN.
    """
    x, y = _values("a", a), _values("b", b)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    n_a, n_b = int(x.size), int(y.size)
    mean_a = float(x.mean()) if n_a else math.nan
    mean_b = float(y.mean()) if n_b else math.nan
    test = "Welch's t"
    if n_a < 2 or n_b < 2:
        return _finish(test, n_a, n_b, mean_a, mean_b, math.nan, math.nan,
                       f"fewer than 2 seeds in a group ({n_a} vs {n_b}): no variance estimate")
    va, vb = float(np.var(x, ddof=1)), float(np.var(y, ddof=1))
    if _constant(x) and _constant(y):
        return _finish(test, n_a, n_b, mean_a, mean_b, 0.0, math.nan,
                       "no variance across seeds in either group: the t test is undefined")
    qa, qb = va / n_a, vb / n_b
    se = math.sqrt(qa + qb)
    df = (qa + qb) ** 2 / (qa**2 / (n_a - 1) + qb**2 / (n_b - 1))
    return _finish(test, n_a, n_b, mean_a, mean_b, se, df, "")


def _by_seed(name: str, values: np.ndarray, seeds: Any, seeds_name: str) -> pd.Series:
    s = np.asarray(seeds, dtype=object)
    if s.ndim != 1 or s.size != values.size:
        raise ValueError(
            f"Argument {seeds_name} must give one seed per value of {name}: got "
            f"{s.size if s.ndim == 1 else s.shape} seeds for {values.size} values."
        )
    keep = ~pd.isna(s) & ~np.isnan(values)
    # 3 and 3.0 are the same seed: compare seeds as numbers when they are numbers
    keys = [int(k) if isinstance(k, numbers.Real) and float(k).is_integer() else k
            for k in s[keep]]
    series = pd.Series(values[keep], index=pd.Index(keys, dtype=object))
    if series.index.has_duplicates:
        dup = sorted({k for k in keys if keys.count(k) > 1}, key=str)
        raise ValueError(f"Argument {seeds_name} repeats the seed(s) {dup}; a seed can pair "
                         "with only one value.")
    return series


def paired_test(a: Any, b: Any, seeds_a: Any, seeds_b: Any) -> SeedTest:
    """Paired t test over seeds: two measurements (e.g. two layers) of the same networks.

    Parameters
    ----------
    a, b : sequence of float
        One value per seed.
    seeds_a, seeds_b : sequence
        The seed of each value of ``a`` and ``b``. Values pair by seed; a seed present in
        only one group, a missing seed or a NaN value is dropped. Seeds must not repeat
        within a group.

    Returns
    -------
    SeedTest
        ``n_a == n_b ==`` the number of pairs; ``mean_a``, ``mean_b`` over the pairs,
        ``difference`` the mean of ``a - b``, ``se = sd(a - b) / sqrt(n)`` (the paired SE,
        not the combined SE of two independent groups), ``df = n - 1``, the 95% interval
        and the two-sided p; matches ``scipy.stats.ttest_rel`` on the paired values.

    Notes
    -----
    Degenerate input never raises: with fewer than 2 pairs se, df, t, the interval and p
    are NaN; when the paired differences do not vary (every seed shows the same
    difference) se is 0, the t statistic is 0/0 or infinite and its reference
    distribution does not apply, so t, df, the interval and p are NaN.
    """
    x, y = _values("a", a), _values("b", b)
    sa = _by_seed("a", x, seeds_a, "seeds_a")
    sb = _by_seed("b", y, seeds_b, "seeds_b")
    in_b = set(sb.index)
    common = [k for k in sa.index if k in in_b]
    x, y = sa.loc[common].to_numpy(float), sb.loc[common].to_numpy(float)
    n = len(common)
    mean_a = float(x.mean()) if n else math.nan
    mean_b = float(y.mean()) if n else math.nan
    test = "paired t"
    if n < 2:
        return _finish(test, n, n, mean_a, mean_b, math.nan, math.nan,
                       f"fewer than 2 pairs ({n}): no variance estimate")
    d = x - y
    if _constant(d, float(max(np.max(np.abs(x)), np.max(np.abs(y))))):
        return _finish(test, n, n, mean_a, mean_b, 0.0, math.nan,
                       "the paired differences do not vary across seeds: the t test is "
                       "undefined")
    se = float(np.std(d, ddof=1)) / math.sqrt(n)
    return _finish(test, n, n, mean_a, mean_b, se, n - 1, "")

