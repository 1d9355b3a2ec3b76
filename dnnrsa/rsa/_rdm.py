"""Representational dissimilarity matrices from activations.

Every measure is computed from condition means through Gram matrices (one BLAS matrix
product of the n_cond x n_features mean matrix with itself, or of fold means with each
other), never through an n_features x n_features matrix unless a given precision matrix
needs one. Values and normalisation follow ``rsatoolbox.rdm.calc_rdm`` (0.3.2): squared
distances are divided by the number of features. The noise precision of the Mahalanobis
and crossnobis measures comes from :mod:`._noise`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._utils import check_choice, logger
from ._backend import get_ops
from ._conditions import Conditions, as_source, column_codes, group_conditions
from ._noise import IDENTITY, check_residuals, noise_metric
from ._stream import is_mapped, streamed_rdm

__all__ = ["rdm", "METHODS"]

METHODS = ("euclidean", "correlation", "mahalanobis", "crossnobis", "poisson")

# rsatoolbox's defaults for the Poisson KL divergence: a gamma prior on the rates (not a
# noise model, hence here beside the kernel) of rate 1 with weight 0.1.
PRIOR_LAMBDA = 1.0
PRIOR_WEIGHT = 0.1


def rdm(
    acts,
    *,
    method: str = "correlation",
    conditions: str | Sequence[str] | None = "identity",
    cv: str | None = None,
    noise: Any = None,
    device: Any = "auto",
):
    """Representational dissimilarity matrix of one layer (or region) over conditions.

    Observations are averaged per condition, then the dissimilarity of every pair of
    condition means is computed. Values equal ``rsatoolbox.rdm.calc_rdm`` (0.3.2) with
    ``descriptor`` set to the condition and, for crossnobis, ``cv_descriptor=cv``.

    Parameters
    ----------
    acts : Activations, rsatoolbox.data.Dataset, or a list of these
        Responses of shape (n_obs, n_features) with their factor table. A list gives one
        RDM per item (e.g. one per network seed or per subject), stacked; all items must
        have the same conditions. Data that are a ``numpy.memmap`` (a layer extracted with
        ``dnnrsa.extract(..., cache_dir=...)``, ``Activations.load(..., mmap=True)``) are
        never read into memory as a whole: the condition sums and Gram matrices are
        accumulated over blocks of columns and chunks of rows within a fixed memory
        budget (``dnnrsa.rsa._stream.CHUNK_BYTES``), with the same values as in memory
        to rounding. A full precision matrix and ``noise="residuals"`` keep the
        n_cond x n_features condition sums in memory; ``noise="shrinkage"``,
        ``"shrinkage_eye"`` and ``"shrinkage_diag"`` need all residuals in memory and
        are refused for such data (``acts[:]`` is an in-memory copy).
    method : {"euclidean", "correlation", "mahalanobis", "crossnobis", "poisson"}
        ``euclidean``: squared Euclidean distance divided by n_features.
        ``correlation``: 1 - Pearson correlation of the two condition means.
        ``mahalanobis``: squared Mahalanobis distance under ``noise`` divided by
        n_features (Euclidean without ``noise``).
        ``crossnobis``: cross-validated squared Mahalanobis distance divided by
        n_features; leave-one-fold-out over the levels of ``cv``, averaged over folds
        (unbiased: about 0 for conditions that do not differ, and can be negative).
        ``poisson``: symmetrised KL divergence of Poisson rates (prior of rate 1 and
        weight 0.1, as rsatoolbox), divided by n_features; needs non-negative data.
    conditions : str, tuple of str, or None
        The factor(s) whose level combinations are the conditions, e.g. ``"identity"`` or
        ``("identity", "expression")``. Conditions come in the natural order of the
        levels (a Categorical's order, else sorted), lexicographic over the factors in
        the order given. None makes every observation its own condition.
    cv : str, optional
        Factor whose levels are the cross-validation folds of ``crossnobis``
        (``"viewpoint"``, ``"session"``, ``"run"``). Required for crossnobis, not
        accepted otherwise. Needs at least two levels and every condition in every fold.
    noise : None, ndarray of shape (n_features, n_features) or (n_features,), or str
        Noise precision for ``mahalanobis`` and ``crossnobis``: a precision matrix, the
        diagonal of a diagonal one, or an estimate from the residuals (observations minus
        their condition means): ``"shrinkage"`` (alias ``"shrinkage_eye"``, Ledoit-Wolf
        shrinkage towards a multiple of the identity), ``"shrinkage_diag"`` (shrinkage of
        the correlations towards 0, Schäfer & Strimmer) or ``"diag"`` (univariate noise
        normalisation). Estimates equal
        ``rsatoolbox.data.prec_from_residuals(residuals, dof=n_obs - n_cond, method=...)``.
        ``"residuals"``: for brain data whose ``acts.residuals`` hold the residual time
        series of a first-level GLM (as ``dnnrsa.neural.from_runs`` keeps them),
        ``prec_from_residuals(acts.residuals.data, dof=acts.residuals.dof,
        method="shrinkage_diag")``; each item of a list uses its own residuals.
        Estimates are applied through the Woodbury identity, whose inner matrix is
        min(n_residuals, n_features) squared, so no n_features x n_features matrix is
        formed unless there are more residuals than features. None means the identity.
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device
        Where the arithmetic runs. ``"auto"`` (the default; None reads the same) picks
        CUDA when a GPU is available, else the CPU. On the CPU the kernels run in numpy
        (float64, BLAS); on a CUDA device the same kernels run in torch (float64), equal
        to the CPU values up to rounding (about 1e-10 relative).

    Returns
    -------
    rsatoolbox.rdm.RDMs
        One RDM (or one per item of a list) of n_cond * (n_cond - 1) / 2 dissimilarities.
        ``pattern_descriptors`` hold the condition labels: one entry per factor, a
        combined one for several factors (``"identity_expression"``, values like
        ``"F01|AN"``), and every other metadata column that is constant within each
        condition. ``rdm_descriptors`` and ``descriptors`` carry the scalar provenance
        (``layer``, ``model``, ``seed``, ...); ``descriptors`` also record
        ``conditions``, ``cv_descriptor`` and ``noise``. ``dissimilarity_measure`` is
        ``method``.

    Raises
    ------
    ValueError
        For an unknown method, factor, noise estimate or device, ``noise="residuals"``
        for data without GLM residuals, a missing value in a condition or cv factor, a
        cv factor with one level, a condition missing from a fold, fewer than two
        conditions, non-finite data, ``device="cuda"`` without a GPU, or a shrinkage
        noise estimate for memory-mapped data.

    Examples
    --------
    >>> r = rdm(acts, method="crossnobis", conditions=("identity", "expression"),
    ...         cv="viewpoint", noise="shrinkage")                      # doctest: +SKIP
    """
    check_choice("method", method, METHODS)
    if isinstance(noise, str) and noise == "residuals" and method in ("mahalanobis",
                                                                       "crossnobis"):
        # every item is checked before the first RDM is computed
        many = isinstance(acts, (list, tuple))
        for i, item in enumerate(acts if many else [acts]):
            check_residuals(item, f"acts[{i}]" if many else "acts")
    if isinstance(acts, (list, tuple)):
        return _rdm_list(acts, method=method, conditions=conditions, cv=cv, noise=noise,
                         device=device)
    src = as_source(acts)
    X = src.X
    if X.ndim != 2:
        raise ValueError(
            f"Argument acts must give a (n_obs, n_features) matrix, got shape {X.shape}."
        )
    if X.shape[1] < 1:
        raise ValueError("Argument acts has no features.")
    cond = group_conditions(src.metadata, conditions)
    if cond.n_cond < 2:
        raise ValueError(
            f"An RDM needs at least 2 conditions; conditions={conditions!r} gives "
            f"{cond.n_cond}."
        )
    if method == "crossnobis":
        if cv is None:
            raise ValueError(
                "method='crossnobis' needs argument cv: the factor whose levels are the "
                "cross-validation folds (e.g. cv='viewpoint' or cv='session')."
            )
        if conditions is None:
            raise ValueError(
                "method='crossnobis' needs conditions: the factor(s) whose repeated "
                "measurements are split into folds."
            )
    elif cv is not None:
        raise ValueError(
            f"Argument cv applies to method='crossnobis' only, got cv={cv!r} with "
            f"method={method!r}."
        )
    if noise is not None and method not in ("mahalanobis", "crossnobis"):
        raise ValueError(
            f"Argument noise applies to method 'mahalanobis' or 'crossnobis' only, got "
            f"method={method!r}."
        )
    folds = _cv_folds(src.metadata, cond, cv) if method == "crossnobis" else None

    ops = get_ops(device)
    if is_mapped(X):
        # memory-mapped data (a cached layer): condition sums and Gram blocks are
        # accumulated chunk by chunk, the data are never read into memory as a whole
        vec, noise_info = streamed_rdm(X, cond, method=method, folds=folds, noise=noise,
                                       residuals=getattr(acts, "residuals", None), ops=ops)
        extra = {"conditions": cond.name}
        if noise is not None or method == "crossnobis":
            extra.update(noise_info)
        if method == "crossnobis":
            extra["cv_descriptor"] = cv
        return _build_rdms(vec, method, cond, src.provenance, extra)
    X = ops.asarray(X)
    n_features = X.shape[1]
    extra: dict[str, Any] = {"conditions": cond.name}
    metric = IDENTITY
    if noise is not None or method == "crossnobis":
        metric, noise_info = noise_metric(noise, X, cond, ops,
                                          residuals=getattr(acts, "residuals", None))
        extra.update(noise_info)
    if method == "crossnobis":
        extra["cv_descriptor"] = cv
        vec = _crossnobis(ops, X, cond, folds, metric)
    else:
        M = ops.group_sums(X, cond.codes, cond.n_cond)
        _check_finite(ops, M)
        if method == "correlation":  # scale-free per condition: sums serve as well as means
            vec = _correlation(ops, M, cond)
        else:
            M /= ops.from_numpy(np.bincount(cond.codes, minlength=cond.n_cond))[:, None]
            if method in ("euclidean", "mahalanobis"):
                vec = _squared_distance(ops, M, metric) / n_features
            else:
                vec = _poisson(ops, M) / n_features
    logger.debug("rdm: %s over %d conditions of %s (%s)", method, cond.n_cond,
                 cond.name, ops.name)
    return _build_rdms(vec, method, cond, src.provenance, extra)


# -- kernels ---------------------------------------------------------------------------------
def _pairs_from_kernel(ops, K) -> np.ndarray:
    """Upper-triangle vector of K_ii + K_jj - K_ij - K_ji."""
    d = K.diagonal()
    return ops.triu(d[:, None] + d[None, :] - K - K.T)


def _squared_distance(ops, M, metric) -> np.ndarray:
    # Distances do not change when a common vector is subtracted from every condition mean;
    # removing the mean over conditions first keeps the Gram trick free of cancellation
    # when all responses share a large offset (e.g. post-ReLU activations).
    Mc = M
    Mc -= ops.colmean(M)
    K = ops.gram(Mc) if metric.is_identity else ops.gram(metric.left(Mc), metric.right(Mc))
    return _pairs_from_kernel(ops, K)


def _correlation(ops, M, cond: Conditions) -> np.ndarray:
    """1 - Pearson r of every pair of rows: centre the rows, one Gram matrix, then divide
    its entries by the row norms (its diagonal)."""
    A = M
    A -= ops.rowmean(M)
    return correlation_from_gram(ops, ops.gram(A), cond)


def correlation_from_gram(ops, K, cond: Conditions) -> np.ndarray:
    """1 - Pearson r from the Gram matrix K of the row-centred condition patterns."""
    norms = ops.sqrt(K.diagonal())
    flat = ops.to_numpy(norms) == 0
    if flat.any():
        bad = [str(v) for v in np.asarray(cond.labels)[flat][:5]]
        raise ValueError(
            f"method='correlation' is undefined for conditions whose mean pattern is "
            f"constant across features: {', '.join(bad)}."
        )
    K /= norms[:, None]
    K /= norms[None, :]
    return 1.0 - ops.triu(K)


def _poisson(ops, M) -> np.ndarray:
    rates = (M + PRIOR_LAMBDA * PRIOR_WEIGHT) / (1.0 + PRIOR_WEIGHT)
    lowest = ops.min(rates)
    if lowest <= 0:
        raise ValueError(
            "method='poisson' needs non-negative responses (counts or rates); the "
            f"condition means go down to {ops.min(M):.4g}."
        )
    K = ops.gram(rates, ops.log(rates))
    return _pairs_from_kernel(ops, K)


def _crossnobis(ops, X, cond: Conditions, folds, metric) -> np.ndarray:
    """Leave-one-fold-out crossnobis as rsatoolbox: for fold k, the training means are the
    means over all observations outside fold k, the test means those inside it; the
    estimate is (train_i - train_j) W (test_i - test_j) / n_features, averaged over folds.

    With S_k the per-fold condition sums (one pass over the data) and S their total,
    fold k's kernel is diag(a_k) (S - S_k) W S_k^T diag(b_k), a_k = 1 / n_train and
    b_k = 1 / n_test per condition: one n_cond x n_features x n_cond product per fold,
    and with the identity metric and the same counts in every fold the sum over folds
    collapses to diag(a) (S S^T - sum_k S_k S_k^T) diag(b), i.e. symmetric products only.
    """
    fold_codes, n_folds = folds
    C = cond.n_cond
    n_features = X.shape[1]
    group = cond.codes * n_folds + fold_codes  # sums laid out as (condition, fold, feature)
    counts = np.bincount(group, minlength=C * n_folds).reshape(C, n_folds)
    sums = ops.group_sums(X, group, C * n_folds)
    _check_finite(ops, sums)
    # Subtracting the grand mean from every observation leaves each fold's distances
    # unchanged (it shifts train and test means alike) and removes any large common
    # offset before the Gram products.
    _subtract_outer(ops, sums, counts.reshape(-1).astype(np.float64), ops.colmean(X))
    K = crossnobis_kernel(ops, sums, counts, metric)
    return _pairs_from_kernel(ops, K) / (n_folds * n_features)


def crossnobis_kernel(ops, sums, counts: np.ndarray, metric):
    """The crossnobis kernel summed over folds, sum_k diag(a_k) (S - S_k) W S_k^T diag(b_k),
    from the centred (condition, fold) sums ``sums`` (C * n_folds rows) and their
    ``counts`` (C, n_folds). Linear in the features: the kernels of blocks of columns
    (with a metric that acts on each column alone) add up to the kernel of all of them."""
    C, n_folds = counts.shape
    n_features = sums.shape[1]
    total = counts.sum(1)
    n_train = (total[:, None] - counts).astype(np.float64)  # (C, n_folds)
    balanced = bool((counts == counts[:, :1]).all())
    if balanced and metric.is_identity:
        # sum_k S_k S_k^T is the Gram matrix of the rows of [S_1 ... S_F] (C x F*P)
        S_total = sums.reshape(C, n_folds, n_features).sum(1)
        inner = ops.gram(S_total)
        inner -= ops.gram(sums.reshape(C, n_folds * n_features))
        K = inner * ops.from_numpy(1.0 / n_train[:, 0])[:, None]
        K *= ops.from_numpy(1.0 / counts[:, 0])[None, :]
    else:
        left = metric.left(sums)
        right = sums if metric.is_identity else metric.right(sums)
        left = left.reshape(C, n_folds, left.shape[1])
        right = right.reshape(C, n_folds, right.shape[1])
        left_total = left.sum(1)
        buffer = None
        K = None
        for k in range(n_folds):
            if buffer is None:
                buffer = left_total - left[:, k]
            else:
                buffer[...] = left_total
                buffer -= left[:, k]
            Kk = ops.gram(buffer, right[:, k])
            Kk *= ops.from_numpy(1.0 / n_train[:, k])[:, None]
            Kk *= ops.from_numpy(1.0 / counts[:, k])[None, :]
            K = Kk if K is None else K + Kk
    return K


def _subtract_outer(ops, A, w: np.ndarray, mu, rows: int = 64) -> None:
    """A -= w[:, None] * mu in place, a block of rows at a time (no temporary as large as A)."""
    for start in range(0, A.shape[0], rows):
        stop = min(start + rows, A.shape[0])
        A[start:stop] -= ops.from_numpy(w[start:stop])[:, None] * mu


def _check_finite(ops, M) -> None:
    if not ops.all_finite(M):
        raise ValueError(
            "Argument acts contains NaN or Inf values; the condition means are not finite."
        )


# -- cross-validation folds ------------------------------------------------------------------
def _cv_folds(meta, cond: Conditions, cv) -> tuple[np.ndarray, int]:
    if not isinstance(cv, str):
        raise TypeError(f"Argument cv must be a factor name, got {cv!r}.")
    if cv in cond.factors:
        raise ValueError(
            f"Argument cv={cv!r} is one of the condition factors {cond.factors}; the folds "
            "must split repeated measurements of the same condition."
        )
    codes, levels = column_codes(meta, cv, "cv")
    if len(levels) < 2:
        raise ValueError(
            f"Argument cv={cv!r} has only one level ({levels[0]!r}); crossnobis needs at "
            "least two folds."
        )
    present = np.zeros((len(levels), cond.n_cond), dtype=bool)
    present[codes, cond.codes] = True
    if not present.all():
        f, c = np.nonzero(~present)
        shown = ", ".join(
            f"{cond.labels[ci]!s} in {cv}={levels[fi]!r}"
            for fi, ci in list(zip(f, c, strict=True))[:5]
        )
        more = f" and {len(f) - 5} more" if len(f) > 5 else ""
        raise ValueError(
            f"Every condition must be measured in every fold of cv={cv!r}; missing: "
            f"{shown}{more}."
        )
    return codes, len(levels)


# -- RDMs objects ----------------------------------------------------------------------------
def _is_scalar(v) -> bool:
    return isinstance(v, (str, bool, numbers.Number, np.generic)) and not isinstance(v, complex)


def _build_rdms(vec: np.ndarray, method: str, cond: Conditions, provenance: dict, extra: dict):
    from rsatoolbox.rdm import RDMs

    scalars = {
        str(k): (v.item() if isinstance(v, np.generic) else v)
        for k, v in provenance.items()
        if _is_scalar(v) and k != "index"
    }
    descriptors = dict(scalars)
    descriptors.update(extra)
    pattern = {k: np.array(v, copy=True) for k, v in cond.descriptors.items()}
    return RDMs(
        dissimilarities=np.asarray(vec, dtype=np.float64)[None, :],
        dissimilarity_measure=method,
        descriptors=descriptors,
        rdm_descriptors={k: [v] for k, v in scalars.items()},
        pattern_descriptors=pattern,
    )


def _rdm_list(items, **kwargs):
    from rsatoolbox.rdm import RDMs

    if len(items) == 0:
        raise ValueError("Argument acts is an empty list.")
    parts = []
    for i, item in enumerate(items):
        try:
            parts.append(rdm(item, **kwargs))
        except (ValueError, TypeError) as exc:
            # say which item of the list failed (a subject, a seed), keeping the type
            raise type(exc)(f"acts[{i}]: {exc}") from exc
    first = parts[0]
    name = first.descriptors["conditions"]
    for i, part in enumerate(parts[1:], start=1):
        if not np.array_equal(
            np.asarray(part.pattern_descriptors[name]), np.asarray(first.pattern_descriptors[name])
        ):
            raise ValueError(
                f"acts[{i}] has different conditions than acts[0]; every item of the list "
                "needs the same condition levels."
            )
    keys = []
    for part in parts:
        for k in part.rdm_descriptors:
            if k != "index" and k not in keys:
                keys.append(k)
    rdm_desc = {
        k: [part.rdm_descriptors.get(k, [None])[0] for part in parts] for k in keys
    }
    shared = {
        k: v
        for k, v in first.descriptors.items()
        if all(k in p.descriptors and _same(p.descriptors[k], v) for p in parts[1:])
    }
    return RDMs(
        dissimilarities=np.concatenate([p.dissimilarities for p in parts], axis=0),
        dissimilarity_measure=first.dissimilarity_measure,
        descriptors=shared,
        rdm_descriptors=rdm_desc,
        pattern_descriptors=first.pattern_descriptors,
    )


def _same(a, b) -> bool:
    try:
        return bool(np.all(a == b))
    except Exception:  # noqa: BLE001 - incomparable values are different
        return False
