"""Comparing RDMs: many against many in one call, equal to ``rsatoolbox.rdm.compare``.

Each RDM is transformed once (centred, ranked, or whitened), then every pair of RDMs is a
normalised inner product, i.e. one BLAS matrix product for the whole (n_a, n_b) table.
The rank methods sort each RDM once (a SIMD float sort of packed keys) and, with few RDMs
on one side, stream the other side row by row. Kendall's tau-a counts discordant pairs
with an O(n log n) Fenwick count per pair. With ``device=`` the rank, cosine and
correlation methods run in torch (batched sorts; tau-a by a radix inversion count).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from .._utils import check_choice, logger
from ._rank import RowSorter, _tied_ranks, rank_rows, tau_a

__all__ = ["compare", "COMPARE_METHODS"]

COMPARE_METHODS = ("cosine", "corr", "spearman", "tau-a", "rho-a", "corr_cov", "cosine_cov")


def compare(rdms_a, rdms_b, *, method: str = "spearman", device=None) -> np.ndarray:
    """Similarity of every RDM in ``rdms_a`` with every RDM in ``rdms_b``.

    Equal to ``rsatoolbox.rdm.compare(rdms_a, rdms_b, method)`` (0.3.2, default
    ``sigma_k=None``), including its handling of NaN entries (excluded everywhere).

    Parameters
    ----------
    rdms_a, rdms_b : rsatoolbox.rdm.RDMs, or array-like
        RDMs objects, or dissimilarity vectors of shape (n_pairs,) or (n_rdms, n_pairs)
        (upper triangle, row by row, as ``scipy.spatial.distance.squareform``), or
        square matrices of shape (n_rdms, n_cond, n_cond).
    method : {"spearman", "cosine", "corr", "tau-a", "rho-a", "corr_cov", "cosine_cov"}
        ``cosine``: cosine similarity. ``corr``: Pearson correlation. ``spearman``:
        Pearson correlation of the ranks (ties get their average rank). ``tau-a``:
        Kendall's tau-a, (concordant - discordant) / (n (n - 1) / 2). ``rho-a``:
        Spearman's rho without tie correction, 12 r_a . r_b / (n^3 - n) on centred ranks.
        ``cosine_cov`` / ``corr_cov``: cosine / correlation after whitening the
        dissimilarities by their covariance under i.i.d. pattern noise (equivalently,
        linear CKA of the double-centred second-moment matrices).
    device : None, str or torch.device, default=None
        None: numpy on the CPU. Otherwise the comparison runs in torch on this device
        (``"cuda"``, ``"cuda:N"``, or ``"cpu"``, which runs the torch code on the CPU,
        for testing: it is much slower than numpy there); ``"auto"`` is CUDA when
        available, else numpy. Only for the methods
        {cosine, corr, spearman, tau-a, rho-a}; the results equal numpy's (tau-a
        exactly, the others to rounding).

    Returns
    -------
    ndarray of shape (n_a, n_b)
        Similarities; 0 where an RDM has zero norm after its transform (as rsatoolbox).

    Raises
    ------
    ValueError
        For an unknown method, RDMs of different sizes, NaN entries in different
        places in ``rdms_a`` and ``rdms_b``, an unknown or unavailable device, or a
        device with a method that runs with numpy only (checked before any work).
    TypeError
        For inputs that are not RDMs or arrays, or a device that is not a string or
        torch.device.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> models, data = rng.random((3, 45)), rng.random(45)  # 10 conditions
    >>> compare(models, data, method="tau-a").shape
    (3, 1)
    """
    check_choice("method", method, COMPARE_METHODS)
    # the torch path builds on this module's helpers: imported when it is asked for
    from ._compare_torch import check_device, torch_similarity

    dev = check_device(device, method)
    A, finite_a = _vectors_checked(rdms_a, "rdms_a")
    B, finite_b = _vectors_checked(rdms_b, "rdms_b")
    check_same_size(A, B)
    _warn_misaligned(rdms_a, rdms_b)
    A, B, valid = drop_nan(A, B, finite=finite_a and finite_b)
    if dev is not None:
        return torch_similarity(A, B, method, dev)
    return similarity(A, B, method, valid)


# -- input -----------------------------------------------------------------------------------
def as_vectors(obj, argument: str) -> np.ndarray:
    """(n_rdms, n_pairs) float64 dissimilarity vectors of RDMs or array-likes."""
    return _vectors_checked(obj, argument)[0]


def _vectors_checked(obj, argument: str):
    """:func:`as_vectors`, and whether every entry is finite (known from its one pass)."""
    if hasattr(obj, "get_vectors") and hasattr(obj, "dissimilarities"):
        V = np.asarray(obj.get_vectors(), dtype=np.float64)
    elif isinstance(obj, (list, tuple)) and obj and all(hasattr(o, "get_vectors") for o in obj):
        V = np.concatenate([np.asarray(o.get_vectors(), dtype=np.float64) for o in obj])
    else:
        try:
            V = np.asarray(obj, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"Argument {argument} must be an rsatoolbox RDMs object or an array of "
                f"dissimilarity vectors, got {type(obj).__name__}."
            ) from exc
        if V.ndim == 1:
            V = V[None, :]
        elif V.ndim == 3:
            if V.shape[1] != V.shape[2]:
                raise ValueError(
                    f"Argument {argument}: a 3-d array must hold square matrices "
                    f"(n_rdms, n_cond, n_cond), got shape {V.shape}."
                )
            i, j = np.triu_indices(V.shape[1], k=1)
            V = V[:, i, j]
        elif V.ndim != 2:
            raise ValueError(
                f"Argument {argument} must have shape (n_pairs,), (n_rdms, n_pairs) or "
                f"(n_rdms, n_cond, n_cond), got shape {V.shape}."
            )
    if V.shape[0] == 0 or V.shape[1] == 0:
        raise ValueError(f"Argument {argument} holds no RDMs (shape {V.shape}).")
    finite = bool(np.isfinite(V.sum()))  # one pass when all is finite
    if not finite and np.isinf(V).any():
        raise ValueError(f"Argument {argument} contains infinite dissimilarities.")
    return V, finite


def _n_cond(n_pairs: int) -> int | None:
    """The number of conditions n with n (n - 1) / 2 == n_pairs, or None."""
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    return n if n * (n - 1) // 2 == n_pairs else None


def n_cond_from_pairs(n_pairs: int, argument: str = "rdms") -> int:
    n = _n_cond(n_pairs)
    if n is None:
        raise ValueError(
            f"Argument {argument}: {n_pairs} dissimilarities per RDM is not n (n - 1) / 2 "
            "for any number of conditions n."
        )
    return n


def check_same_size(A: np.ndarray, B: np.ndarray, names=("rdms_a", "rdms_b")) -> None:
    if A.shape[1] != B.shape[1]:
        def describe(n):
            n_c = _n_cond(n)
            return f"{n} dissimilarities" + (f" ({n_c} conditions)" if n_c else "")

        raise ValueError(
            f"{names[0]} and {names[1]} must be RDMs of the same size: {names[0]} has "
            f"{describe(A.shape[1])} per RDM, {names[1]} has {describe(B.shape[1])}."
        )


def drop_nan(A: np.ndarray, B: np.ndarray, *, finite: bool | None = None):
    """Remove the entries that are NaN in any RDM (rsatoolbox's rule); both sides must have
    NaNs in the same places. Returns the reduced vectors and the mask of kept entries.
    ``finite=True`` says the caller has checked that every entry is finite."""
    if finite or (np.isfinite(A.sum()) and np.isfinite(B.sum())):  # one pass each
        return A, B, None
    nan_a = np.isnan(A).any(axis=0)
    nan_b = np.isnan(B).any(axis=0)
    if not (nan_a.any() or nan_b.any()):
        return A, B, None
    if not np.array_equal(nan_a, nan_b):
        raise ValueError(
            "rdms_a and rdms_b have NaN dissimilarities in different places; NaN marks "
            "a pair to exclude and must be the same in both."
        )
    keep = ~nan_a
    return A[:, keep], B[:, keep], keep


def _warn_misaligned(a, b) -> None:
    pa = getattr(a, "pattern_descriptors", None)
    pb = getattr(b, "pattern_descriptors", None)
    if not pa or not pb:
        return
    for key in pa:
        if key == "index" or key not in pb:
            continue
        va, vb = np.asarray(pa[key]), np.asarray(pb[key])
        if va.shape == vb.shape and not np.array_equal(va, vb):
            logger.warning(
                "compare: the pattern descriptor %r differs between the two RDMs objects; "
                "are their conditions in the same order?", key
            )
            return


# -- similarity tables -----------------------------------------------------------------------
def similarity(A, B, method: str, valid=None) -> np.ndarray:
    """(n_a, n_b) similarities of NaN-free vectors; ``valid`` marks which entries of the full
    vector they are (None: all), needed by the covariance-weighted methods."""
    if method == "tau-a":
        return tau_a(A, B)
    if method in ("spearman", "rho-a"):
        return rank_similarity(A, B, method)
    TA = transform(A, method, valid)
    TB = TA if B is A else transform(B, method, valid)
    return similarity_of_transforms(TA, TB, method)


def similarity_of_transforms(TA, TB, method: str, norm_a=None, norm_b=None) -> np.ndarray:
    """(n_a, n_b) similarities of vectors already put through :func:`transform`; the row
    norms may be given when the caller knows them (permuted copies of one vector)."""
    if method == "rho-a":
        return (TA @ TB.T) * _rho_a_scale(TA.shape[1])
    return _cosine(TA, TB, norm_a, norm_b)


def _rho_a_scale(n: int) -> float:
    """12 / (n^3 - n): turns the inner product of centred ranks into Spearman's rho."""
    return 12.0 / (n**3 - n)


def similarity_paired(A, B, method: str, valid=None) -> np.ndarray:
    """Similarity of row i of A with row i of B, shape (n,)."""
    if method == "tau-a":
        return tau_a(A, B, paired=True)
    TA = transform(A, method, valid)
    TB = transform(B, method, valid)
    dots = np.einsum("ij,ij->i", TA, TB)
    if method == "rho-a":
        return dots * _rho_a_scale(A.shape[1])
    na, nb = _row_norms(TA), _row_norms(TB)
    ok = (na > 0) & (nb > 0)
    out = np.zeros(A.shape[0])
    out[ok] = dots[ok] / na[ok] / nb[ok]
    return out


def transform(V: np.ndarray, method: str, valid=None) -> np.ndarray:
    """The per-RDM transform after which a method is a cosine (or, for rho-a, a scaled
    inner product)."""
    if method == "cosine":
        return V
    if method == "corr":
        return V - V.mean(axis=1, keepdims=True)
    if method in ("spearman", "rho-a"):
        return rank_rows(V, center=True)
    if method == "cosine_cov":
        return cov_weight(V, valid)
    if method == "corr_cov":
        return cov_weight(V - V.mean(axis=1, keepdims=True), valid)
    raise ValueError(f"no vector transform for method {method!r}")


def _row_norms(T: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", T, T))


def _cosine(TA: np.ndarray, TB: np.ndarray, na=None, nb=None) -> np.ndarray:
    """Cosine of every row of TA with every row of TB; 0 for a row of zero norm (as
    rsatoolbox)."""
    if na is None:
        na = _row_norms(TA)
    if nb is None:
        nb = na if TB is TA else _row_norms(TB)
    return _normalise(TA @ TB.T, na, nb)


def _normalise(dots: np.ndarray, na: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """Inner products divided by both row norms (in place); 0 where a norm is 0."""
    ok_a, ok_b = na > 0, nb > 0
    if ok_a.all() and ok_b.all():
        dots /= na[:, None]
        dots /= nb[None, :]
        return dots
    with np.errstate(invalid="ignore", divide="ignore"):
        dots = dots / na[:, None] / nb[None, :]
    dots[~ok_a, :] = 0.0
    dots[:, ~ok_b] = 0.0
    return dots


_STREAM_MAX = 4


def rank_similarity(A: np.ndarray, B: np.ndarray, method: str) -> np.ndarray:
    """``spearman`` or ``rho-a`` table of NaN-free vectors.

    With few RDMs on one side (typically models against one data RDM), the other side is
    ranked row by row and never held as a matrix: each row is sorted once, and its inner
    product with the few centred rank vectors is taken in its own sort order (a gather
    of those, no scatter of its ranks)."""
    if min(A.shape[0], B.shape[0]) > _STREAM_MAX:
        TA = rank_rows(A, center=True)
        TB = TA if B is A else rank_rows(B, center=True)
        return similarity_of_transforms(TA, TB, method)
    if A.shape[0] < B.shape[0]:
        return rank_similarity(B, A, method).T
    n = A.shape[1]
    RB = rank_rows(B, center=True)
    shift = (n + 1) / 2.0
    base = np.arange(1, n + 1, dtype=np.float64) - shift
    base_norm = float(np.sqrt(base @ base))
    dots = np.empty((A.shape[0], B.shape[0]))
    norm_a = np.full(A.shape[0], base_norm)
    gathered = np.empty(RB.shape)
    sorter = RowSorter(n)
    for r in range(A.shape[0]):
        order, s, ties = sorter.sort(A[r])
        RB.take(order, axis=1, out=gathered)
        ranks = base
        if ties:
            ranks = _tied_ranks(s) - shift
            norm_a[r] = np.sqrt(ranks @ ranks)
        np.dot(gathered, ranks, out=dots[r])
    if method == "rho-a":
        return dots * _rho_a_scale(n)
    return _normalise(dots, norm_a, _row_norms(RB))



# -- covariance weighting (cosine_cov, corr_cov) ---------------------------------------------
def _incidence(n_cond: int):
    """Sparse (n_pairs, n_cond) matrix with a 1 at both conditions of every pair."""
    i, j = np.triu_indices(n_cond, k=1)
    n_pairs = i.shape[0]
    rows = np.repeat(np.arange(n_pairs), 2)
    cols = np.column_stack([i, j]).ravel()
    return scipy.sparse.csr_array((np.ones(2 * n_pairs), (rows, cols)), shape=(n_pairs, n_cond))


def cov_weight(V: np.ndarray, valid=None) -> np.ndarray:
    """Whiten dissimilarity vectors for i.i.d. pattern noise (rsatoolbox's
    ``_cov_weighting`` with ``sigma_k=None``).

    The RDM becomes the second-moment matrix G = -D / 2, which is double-centred; the
    result lists G's off-diagonal entries (times sqrt 2, as each appears twice in G) and
    its diagonal, so inner products of results are Frobenius inner products of the
    centred G. With NaN entries (``valid`` False), the row and column effects are
    removed by weighted least squares on the entries present, as rsatoolbox does.

    Parameters
    ----------
    V : ndarray of shape (n_rdms, n_valid)
    valid : ndarray of bool, shape (n_pairs,), optional

    Returns
    -------
    ndarray of shape (n_rdms, n_valid + n_cond)
    """
    n_pairs = V.shape[1] if valid is None else valid.shape[0]
    n_cond = n_cond_from_pairs(n_pairs)
    E = _incidence(n_cond)
    n_rdm = V.shape[0]
    W = np.zeros((n_rdm, V.shape[1] + n_cond))
    W[:, : V.shape[1]] = -0.5 * V
    if valid is None:
        g = W[:, :n_pairs]
        m = np.asarray(E.T @ g.T).T / n_cond  # row means of G (its diagonal is 0)
        grand = 2.0 * g.sum(axis=1, keepdims=True) / n_cond**2
        i, j = np.triu_indices(n_cond, k=1)
        W[:, :n_pairs] = g - m[:, i] - m[:, j] + grand
        W[:, n_pairs:] = -2.0 * m + grand
    else:
        Ev = E[valid]
        X = scipy.sparse.vstack([Ev, scipy.sparse.identity(n_cond, format="csr")]).tocsr()
        weights = np.concatenate([np.full(Ev.shape[0], 0.5), np.ones(n_cond)])
        WX = scipy.sparse.diags(weights) @ X
        normal = np.asarray((X.T @ WX).todense())
        # rsatoolbox removes (W X) (X^T D X)^-1 (D X)^T; kept exactly so for equal results
        WXr = np.asarray(X.T @ W.T).T  # W @ X, (n_rdm, n_cond)
        coef = np.linalg.solve(normal, WXr.T).T
        W = W - np.asarray(WX @ coef.T).T
    W[:, : V.shape[1]] *= np.sqrt(2.0)
    return W
