"""Inference on RDM comparisons, as tidy pandas tables: model evaluations, noise ceilings,
bootstrap standard errors and confidence intervals, condition-label permutation tests,
network seeds treated as subjects, and second-order (layer x layer) similarity."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._utils import (
    REMOVAL_VERSION,
    check_choice,
    check_positive_int,
    check_seed,
    logger,
    warn_renamed,
)
from ._compare import (
    COMPARE_METHODS,
    as_vectors,
    check_same_size,
    drop_nan,
    n_cond_from_pairs,
    similarity,
    similarity_of_transforms,
    similarity_paired,
    transform,
)
from ._rank import rank_rows

__all__ = [
    "evaluate",
    "noise_ceiling",
    "bootstrap",
    "permutation_test",
    "seeds_as_subjects",
    "layer_similarity",
]

BOOTSTRAP_OVER = ("both", "conditions", "subjects")


# -- helpers ---------------------------------------------------------------------------------
def check_seed_option(seed, argument: str = "seed"):
    """``seed`` if it is a valid seed option (an int >= 0, None or a numpy Generator),
    else a TypeError/ValueError naming ``argument``."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return check_seed(argument, seed)
    raise TypeError(
        f"Argument {argument} must be an int >= 0, None or a numpy.random.Generator, got "
        f"{seed!r}. Write {argument}=0 for reproducible results."
    )


def as_generator(seed, argument: str = "seed") -> np.random.Generator:
    """The random generator of a ``seed`` option: an int seeds a fresh one (the same
    numbers on every call), None draws fresh entropy, a Generator is used as it is (and
    advanced)."""
    seed = check_seed_option(seed, argument)
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _labels(obj, n: int, keys: Sequence[str], prefix: str) -> list:
    desc = getattr(obj, "rdm_descriptors", None) or {}
    for key in keys:
        values = desc.get(key)
        if values is not None and len(values) == n and all(v is not None for v in values):
            values = [v.item() if isinstance(v, np.generic) else v for v in values]
            if len(set(map(str, values))) == n:
                return values
    return [f"{prefix}{i}" for i in range(n)]


def _model_input(models):
    """(vectors, names) of the models: an RDMs object (names from rdm_descriptors
    'name'/'model'/'layer'), a mapping name -> RDM, or vectors."""
    if isinstance(models, Mapping):
        names = list(models)
        vectors = [as_vectors(models[k], f"models[{k!r}]") for k in names]
        for k, v in zip(names, vectors, strict=True):
            if v.shape[0] != 1:
                raise ValueError(f"models[{k!r}] must be a single RDM, got {v.shape[0]}.")
        return np.vstack(vectors), names
    V = as_vectors(models, "models")
    return V, _labels(models, V.shape[0], ("name", "model", "layer"), "model")


def _data_input(data, argument="data"):
    V = as_vectors(data, argument)
    return V, _labels(data, V.shape[0], ("subject", "seed", "name", "index"), "rdm")


def _check_method(method):
    check_choice("method", method, COMPARE_METHODS)


# -- evaluations -----------------------------------------------------------------------------
def evaluate(models, data, *, method: str = "spearman") -> pd.DataFrame:
    """Every model compared with every data RDM (subject, session or network seed).

    Parameters
    ----------
    models : RDMs, mapping of name -> RDM, or array of shape (n_models, n_pairs)
        Model RDMs; names come from ``rdm_descriptors["name"]`` (as set by
        :func:`factor_rdms`), else ``"model"``/``"layer"``, else ``model0``, ...
    data : RDMs or array of shape (n_rdms, n_pairs)
        Data RDMs; labelled by ``rdm_descriptors`` ``subject``/``seed``/``name``/``index``.
    method : str
        Comparison method of :func:`compare`.

    Returns
    -------
    pandas.DataFrame
        Long table with columns ``model``, ``rdm``, ``method``, ``value``.
    """
    _check_method(method)
    M, names = _model_input(models)
    D, labels = _data_input(data)
    check_same_size(M, D, ("models", "data"))
    Mv, Dv, valid = drop_nan(M, D)
    values = similarity(Mv, Dv, method, valid)
    return pd.DataFrame({
        "model": np.repeat(np.array(names, dtype=object), len(labels)),
        "rdm": np.tile(np.array(labels, dtype=object), len(names)),
        "method": method,
        "value": values.reshape(-1),
    })


def _pool(V: np.ndarray, method: str) -> np.ndarray:
    """Per-RDM normalisation before averaging, as rsatoolbox's ``pool_rdm``: the average
    of the normalised RDMs is the best single prediction under ``method``."""
    if method in ("cosine", "cosine_cov"):
        return V / np.sqrt(np.mean(V**2, axis=1, keepdims=True))
    if method in ("corr", "corr_cov"):
        Z = V - V.mean(axis=1, keepdims=True)
        return Z / Z.std(axis=1, keepdims=True)
    return rank_rows(V)  # spearman, rho-a, tau-a: average ranks


def noise_ceiling(data, *, method: str = "spearman") -> pd.DataFrame:
    """Noise ceiling of a set of data RDMs (subjects, sessions, or network seeds).

    Upper bound: mean over RDMs of the comparison of each RDM with the average of all
    (including itself). Lower bound: the same with the average of all others
    (leave one out). The average is taken after the normalisation that suits ``method``
    (rsatoolbox's ``pool_rdm``: scaled to unit RMS for cosine, z-scored and shifted to a
    minimum of 0 for correlations, ranked for rank correlations), so the values equal
    ``rsatoolbox.inference.boot_noise_ceiling(data, method)``.

    Parameters
    ----------
    data : RDMs or array of shape (n_rdms, n_pairs)
        At least two RDMs.
    method : str
        Comparison method of :func:`compare`.

    Returns
    -------
    pandas.DataFrame
        One row with columns ``method``, ``lower``, ``upper``, ``n_rdms``.
    """
    _check_method(method)
    V, _ = _data_input(data)
    lower, upper = _noise_ceiling_values(V, method)
    return pd.DataFrame([{"method": method, "lower": lower, "upper": upper, "n_rdms": len(V)}])


def _noise_ceiling_values(V: np.ndarray, method: str):
    n = V.shape[0]
    if n < 2:
        raise ValueError(
            f"A noise ceiling needs at least 2 data RDMs (subjects or seeds), got {n}."
        )
    V, _, valid = drop_nan(V, V)
    pooled = _pool(V, method)
    total = pooled.sum(axis=0)
    mean_all = total / n
    loo = (total[None, :] - pooled) / (n - 1)
    if method in ("corr", "corr_cov"):
        mean_all = mean_all - mean_all.min()
        loo = loo - loo.min(axis=1, keepdims=True)
    upper = float(np.mean(similarity(mean_all[None, :], V, method, valid)))
    lower = float(np.mean(similarity_paired(loo, V, method, valid)))
    return lower, upper


# -- bootstrap -------------------------------------------------------------------------------
def _pair_index(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Position of the pair (i, j), i < j, in an upper-triangle vector of n conditions."""
    return i * n - i * (i + 1) // 2 + (j - i - 1)


def _resample_pairs(idx: np.ndarray, n_cond: int):
    """Map a resampled condition list to (entries of the original vector, mask of pairs
    that are two copies of one condition, to be NaN as in rsatoolbox)."""
    idx = np.sort(idx)
    p, q = np.triu_indices(len(idx), k=1)
    a, b = idx[p], idx[q]
    same = a == b
    k = _pair_index(np.minimum(a, b), np.maximum(a, b), n_cond)
    k[same] = 0
    return k, same


def bootstrap(
    models,
    data,
    *,
    method: str = "spearman",
    over: str = "both",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Bootstrap standard errors and confidence intervals of model evaluations.

    The statistic is a model's comparison with the data RDMs, averaged over the data
    RDMs. Each bootstrap sample redraws conditions and/or data RDMs with replacement
    (pairs formed by two copies of one condition are excluded, as in rsatoolbox's
    ``bootstrap_sample_pattern``; samples with fewer than 3 distinct conditions are
    dropped).

    Parameters
    ----------
    models : RDMs, mapping of name -> RDM, or array of shape (n_models, n_pairs)
    data : RDMs or array of shape (n_rdms, n_pairs)
        Subjects, sessions or network seeds.
    method : str
        Comparison method of :func:`compare`.
    over : {"both", "conditions", "subjects"}
        What to resample: conditions generalise to new stimuli, subjects to new
        subjects (or seeds), both to both.
    n_boot : int
        Number of bootstrap samples.
    ci : float
        Coverage of the percentile confidence interval, in (0, 1).
    seed : int, numpy.random.Generator or None
        Seed of the resampling. The default 0 gives the same samples on every call; None
        draws fresh randomness; a Generator is used (and advanced) as it is.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``model``, ``method``, ``over``, ``estimate`` (on the full
        data), ``se`` (standard deviation of the bootstrap distribution), ``ci_low``,
        ``ci_high``, ``n_boot`` (samples kept), ``n_rdms``.
    """
    _check_method(method)
    check_choice("over", over, BOOTSTRAP_OVER)
    n_boot = check_positive_int("n_boot", n_boot, minimum=2)
    if not (isinstance(ci, numbers.Real) and 0 < ci < 1):
        raise ValueError(f"Argument ci must be in (0, 1), got {ci!r}.")
    rng = as_generator(seed)
    M, names = _model_input(models)
    D, _ = _data_input(data)
    check_same_size(M, D, ("models", "data"))
    if over in ("subjects", "both") and D.shape[0] < 2:
        raise ValueError(
            f"over={over!r} resamples the data RDMs, but data holds {D.shape[0]}; use "
            "over='conditions'."
        )
    samples = _bootstrap_samples(M, D, method, over, n_boot, rng)
    Mv, Dv, valid = drop_nan(M, D)
    estimate = similarity(Mv, Dv, method, valid).mean(axis=1)
    ok = np.isfinite(samples).all(axis=1)
    kept = samples[ok]
    if len(kept) < n_boot:
        logger.info("bootstrap: %d of %d samples dropped (fewer than 3 distinct conditions)",
                    n_boot - len(kept), n_boot)
    if len(kept) < 2:
        raise ValueError("Fewer than 2 usable bootstrap samples; use more conditions.")
    alpha = (1 - ci) / 2
    return pd.DataFrame({
        "model": names,
        "method": method,
        "over": over,
        "estimate": estimate,
        "se": kept.std(axis=0, ddof=1),
        "ci_low": np.quantile(kept, alpha, axis=0),
        "ci_high": np.quantile(kept, 1 - alpha, axis=0),
        "n_boot": len(kept),
        "n_rdms": D.shape[0],
    })


def _bootstrap_samples(M, D, method, over, n_boot, rng) -> np.ndarray:
    """(n_boot, n_models) bootstrap distribution of the mean comparison."""
    n_sub = D.shape[0]
    if over == "subjects":
        Mv, Dv, valid = drop_nan(M, D)
        table = similarity(Mv, Dv, method, valid)  # (n_models, n_sub), computed once
        idx = rng.integers(0, n_sub, size=(n_boot, n_sub))
        return table[:, idx].mean(axis=2).T
    n_cond = n_cond_from_pairs(M.shape[1], "models")
    out = np.full((n_boot, M.shape[0]), np.nan)
    for b in range(n_boot):
        sub = rng.integers(0, n_sub, size=n_sub) if over == "both" else np.arange(n_sub)
        cond = rng.integers(0, n_cond, size=n_cond)
        if len(np.unique(cond)) < 3:
            continue
        k, same = _resample_pairs(cond, n_cond)
        Mb = M[:, k]
        Db = D[sub][:, k]
        Mb[:, same] = np.nan
        Db[:, same] = np.nan
        Mb, Db, valid = drop_nan(Mb, Db)
        out[b] = similarity(Mb, Db, method, valid).mean(axis=1)
    return out


# -- permutation test ------------------------------------------------------------------------
def permutation_test(
    model,
    data,
    *,
    method: str = "spearman",
    n_permutations: int = 1000,
    seed: int | np.random.Generator | None = 0,
    return_null: bool | None = None,
    n_perm: int | None = None,
) -> pd.DataFrame:
    """Condition-label permutation test of one model against data RDM(s).

    The statistic is the comparison of the model with the data (averaged over data RDMs
    if several). Its null distribution comes from relabelling the model's conditions at
    random (the same permutation for rows and columns). One-sided: large values are
    evidence for the model. p = (1 + #{null >= observed}) / (1 + n_permutations), never 0.

    Parameters
    ----------
    model : RDMs or array of shape (n_pairs,)
        One model RDM (without NaN entries).
    data : RDMs or array of shape (n_rdms, n_pairs)
    method : str
        Comparison method of :func:`compare`.
    n_permutations : int
        Number of permutations.
    seed : int, numpy.random.Generator or None
        Seed of the permutations. The default 0 gives the same null on every call; None
        draws fresh randomness; a Generator is used (and advanced) as it is.
    return_null : bool, optional
        Deprecated: the null distribution is always in the table's ``null`` column.
        ``return_null=True`` still returns ``(table, null)`` in this release, with a
        FutureWarning.
    n_perm : int, optional
        Deprecated spelling of ``n_permutations`` (a FutureWarning).

    Returns
    -------
    pandas.DataFrame
        One row: ``model``, ``method``, ``statistic``, ``p_value``, ``n_permutations``,
        ``null_mean``, ``null_sd`` and ``null``, the null distribution itself (an ndarray of
        shape (n_permutations,) in the row's cell: ``table["null"].iloc[0]``). Tables of
        several models stack with ``pd.concat``, each row keeping its own null; drop the
        ``null`` column before ``to_csv`` if a text file should not hold it.
    """
    _check_method(method)
    if n_perm is not None:
        if n_permutations != 1000:
            raise TypeError(
                "permutation_test got both n_permutations and n_perm (its old spelling); "
                "write n_permutations=... only."
            )
        warn_renamed("n_perm", "n_permutations", "permutation_test")
        n_permutations = n_perm
    n_permutations = check_positive_int("n_permutations", n_permutations)
    rng = as_generator(seed)
    M, names = _model_input(model)
    if M.shape[0] != 1:
        raise ValueError(f"Argument model must be a single RDM, got {M.shape[0]}.")
    D, _ = _data_input(data)
    check_same_size(M, D, ("model", "data"))
    if np.isnan(M).any() or np.isnan(D).any():
        raise ValueError("permutation_test needs RDMs without NaN entries.")
    observed = float(similarity(M, D, method).mean())
    null = _permutation_null(M, D, method, n_permutations, rng)
    # ties with the observed value count as "at least as large" (up to rounding)
    n_extreme = int(np.sum(null >= observed - 1e-12 * max(1.0, abs(observed))))
    # The null travels in its row, not in DataFrame.attrs: pd.concat compares attrs and
    # cannot compare arrays, so tables of several models would not stack.
    table = pd.DataFrame([{
        "model": names[0], "method": method, "statistic": observed,
        "p_value": (1 + n_extreme) / (1 + n_permutations), "n_permutations": n_permutations,
        "null_mean": float(null.mean()),
        "null_sd": float(null.std(ddof=1)) if n_permutations > 1 else np.nan,
        "null": null,
    }])
    if return_null is not None:
        warnings.warn(
            "Argument return_null of permutation_test is deprecated and stops working in "
            f"dnnrsa {REMOVAL_VERSION}: permutation_test returns the table, and the null "
            'distribution is in its "null" column. Leave return_null out.',
            FutureWarning, stacklevel=2,
        )
        if return_null:
            return table, null
    return table


def _permutation_null(M, D, method: str, n_permutations: int, rng) -> np.ndarray:
    """The mean comparison of the model ``M`` (one row) with ``D`` under ``n_permutations``
    random relabellings of the model's conditions."""
    n_cond = n_cond_from_pairs(M.shape[1], "model")
    i, j = np.triu_indices(n_cond, k=1)
    # these transforms commute with permuting the entries: transform once, then every
    # relabelled model is a gather of the transformed vector with the same norm
    equivariant = method in ("cosine", "corr", "spearman", "rho-a")
    if equivariant:
        TM = transform(M, method)[0]
        TD = transform(D, method)
        norm_m = float(np.sqrt(TM @ TM))
    null = np.empty(n_permutations)
    chunk = max(1, min(n_permutations, int(4e6 // max(M.shape[1], 1))))  # bounds the memory
    for start in range(0, n_permutations, chunk):
        stop = min(n_permutations, start + chunk)
        perms = np.argsort(rng.random((stop - start, n_cond)), axis=1)
        a, b = perms[:, i], perms[:, j]
        k = _pair_index(np.minimum(a, b), np.maximum(a, b), n_cond)
        if equivariant:
            sims = similarity_of_transforms(TM[k], TD, method, np.full(stop - start, norm_m))
        else:
            sims = similarity(M[0][k], D, method)
        null[start:stop] = sims.mean(axis=1)
    return null


# -- network seeds as subjects ---------------------------------------------------------------
def seeds_as_subjects(
    rdms_by_seed,
    models=None,
    *,
    method: str = "spearman",
    over: str = "both",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> dict[str, pd.DataFrame]:
    """The subject-level tables with network seeds in the role of subjects.

    Parameters
    ----------
    rdms_by_seed : list of RDMs, RDMs, or array of shape (n_seeds, n_pairs)
        One RDM per network seed (same layer, same conditions).
    models : RDMs, mapping or array, optional
        Model RDMs to evaluate against the seeds.
    method, over, n_boot, ci, seed
        As in :func:`bootstrap` (``seed=0`` by default: reproducible).

    Returns
    -------
    dict of str -> pandas.DataFrame
        ``"noise_ceiling"`` (:func:`noise_ceiling`: how consistent the seeds are) and,
        with ``models``, ``"evaluations"`` (:func:`evaluate`) and ``"bootstrap"``
        (:func:`bootstrap`).
    """
    data = _stack(rdms_by_seed)
    tables = {"noise_ceiling": noise_ceiling(data, method=method)}
    if models is not None:
        tables["evaluations"] = evaluate(models, data, method=method)
        tables["bootstrap"] = bootstrap(models, data, method=method, over=over,
                                        n_boot=n_boot, ci=ci, seed=seed)
    return tables


def _stack(items):
    """A list of RDMs objects becomes one RDMs object (labels kept)."""
    if isinstance(items, (list, tuple)) and items and all(
        hasattr(x, "get_vectors") for x in items
    ):
        from rsatoolbox.rdm import RDMs

        V = np.vstack([as_vectors(x, "rdms_by_seed") for x in items])
        labels = []
        for k, x in enumerate(items):
            desc = getattr(x, "rdm_descriptors", {}) or {}
            for key in ("seed", "subject", "name"):
                if key in desc and len(desc[key]) == x.n_rdm:
                    labels.extend(desc[key])
                    break
            else:
                labels.extend([f"rdm{k}"] * x.n_rdm if x.n_rdm == 1 else
                              [f"rdm{k}_{r}" for r in range(x.n_rdm)])
        key = "seed" if all("seed" in (getattr(x, "rdm_descriptors", {}) or {}) for x in items) \
            else "name"
        return RDMs(V, rdm_descriptors={key: list(labels)},
                    pattern_descriptors=dict(items[0].pattern_descriptors))
    return items


# -- second-order RSA ------------------------------------------------------------------------
def layer_similarity(
    rdms_by_key: Mapping[Hashable, Any], *, method: str = "spearman"
) -> pd.DataFrame:
    """Second-order RSA: how similar the representations of layers (or networks) are.

    Parameters
    ----------
    rdms_by_key : mapping of key -> RDMs, list of RDMs, or array
        Keys such as ``"conv3"`` or ``("densenet", "conv3")``; each value holds one RDM,
        or several (e.g. one per seed).
    method : str
        Comparison method of :func:`compare`.

    Returns
    -------
    pandas.DataFrame
        Square table indexed by the keys in both directions (a MultiIndex for tuple
        keys). Entry (k1, k2) is the mean comparison over all pairs of an RDM of k1 with
        an RDM of k2; on the diagonal, with several RDMs per key, the mean over pairs of
        different RDMs (seed-to-seed consistency), else the RDM compared with itself (1 for
        cosine, corr, spearman and the cov methods).
    """
    _check_method(method)
    if not isinstance(rdms_by_key, Mapping) or not rdms_by_key:
        raise TypeError(
            "Argument rdms_by_key must be a non-empty mapping of key -> RDMs, got "
            f"{type(rdms_by_key).__name__}."
        )
    keys = list(rdms_by_key)
    blocks = [
        as_vectors(_stack(v) if isinstance(v, (list, tuple)) else v, f"rdms_by_key[{k!r}]")
        for k, v in rdms_by_key.items()
    ]
    V = np.vstack(blocks)
    for k, b in zip(keys, blocks, strict=True):
        check_same_size(blocks[0], b, (f"rdms_by_key[{keys[0]!r}]", f"rdms_by_key[{k!r}]"))
    V, _, valid = drop_nan(V, V)
    S = similarity(V, V, method, valid)
    bounds = np.cumsum([0] + [b.shape[0] for b in blocks])
    n = len(keys)
    out = np.empty((n, n))
    for a in range(n):
        for b in range(n):
            block = S[bounds[a]:bounds[a + 1], bounds[b]:bounds[b + 1]]
            if a == b and block.shape[0] > 1:
                off = ~np.eye(block.shape[0], dtype=bool)
                out[a, b] = block[off].mean()
            else:
                out[a, b] = block.mean()
    if all(isinstance(k, tuple) for k in keys):
        index = pd.MultiIndex.from_tuples(keys)
    else:
        index = pd.Index(keys)
    return pd.DataFrame(out, index=index, columns=index.copy())
