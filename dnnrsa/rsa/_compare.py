"""Comparing RDMs: many against many in one call, equal to ``rsatoolbox.rdm.compare``.

Each RDM is transformed once (centred, ranked, or whitened), then every pair of RDMs is a
normalised inner product, i.e. one BLAS matrix product for the whole (n_a, n_b) table.
Kendall's tau-a counts discordant pairs with an O(n log n) merge/Fenwick count per pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from .._utils import check_choice, logger

__all__ = ["compare", "COMPARE_METHODS"]

COMPARE_METHODS = ("cosine", "corr", "spearman", "tau-a", "rho-a", "corr_cov", "cosine_cov")


def compare(rdms_a, rdms_b, *, method: str = "spearman") -> np.ndarray:
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

    Returns
    -------
    ndarray of shape (n_a, n_b)
        Similarities; 0 where an RDM has zero norm after its transform (as rsatoolbox).

    Raises
    ------
    ValueError
        For an unknown method, RDMs of different sizes, or NaN entries in different
        places in ``rdms_a`` and ``rdms_b``.
    """
    check_choice("method", method, COMPARE_METHODS)
    A = as_vectors(rdms_a, "rdms_a")
    B = as_vectors(rdms_b, "rdms_b")
    check_same_size(A, B)
    _warn_misaligned(rdms_a, rdms_b)
    A, B, valid = drop_nan(A, B)
    return similarity(A, B, method, valid)


# -- input -----------------------------------------------------------------------------------
def as_vectors(obj, argument: str) -> np.ndarray:
    """(n_rdms, n_pairs) float64 dissimilarity vectors of RDMs or array-likes."""
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
    if not np.isfinite(V.sum()) and np.isinf(V).any():  # one pass when all is finite
        raise ValueError(f"Argument {argument} contains infinite dissimilarities.")
    return V


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


def drop_nan(A: np.ndarray, B: np.ndarray):
    """Remove the entries that are NaN in any RDM (rsatoolbox's rule); both sides must have
    NaNs in the same places. Returns the reduced vectors and the mask of kept entries."""
    if np.isfinite(A.sum()) and np.isfinite(B.sum()):  # no NaN anywhere: one pass each
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
        pa, pb = tau_prepare(A), tau_prepare(B, with_dense=True)
        return np.array([_tau_a_pair(pa, i, pb, i) for i in range(A.shape[0])])
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
    out = TA @ TB.T
    ok_a, ok_b = na > 0, nb > 0
    if ok_a.all() and ok_b.all():
        out /= na[:, None]
        out /= nb[None, :]
        return out
    with np.errstate(invalid="ignore", divide="ignore"):
        out = out / na[:, None] / nb[None, :]
    out[~ok_a, :] = 0.0
    out[:, ~ok_b] = 0.0
    return out


# -- ranks -----------------------------------------------------------------------------------
_SIGN = np.uint64(1 << 63)
_LOW63 = np.uint64((1 << 63) - 1)


def argsort_finite(v: np.ndarray) -> np.ndarray:
    """``np.argsort`` of a finite float64 vector (any order among equal values), about
    twice as fast.

    numpy sorts float64 values with SIMD instructions but not their indices. Each value
    is mapped to an order-preserving 64-bit key, its low bits are replaced by the
    element's index, and the keys are sorted *as float64 values* (shifted so that every
    key is a positive normal float, whose float order is its integer order); the indices
    are read back from the low bits. Values whose keys differ only in those low bits
    (relative difference below ~2^-33) are re-sorted exactly afterwards.
    """
    n = v.shape[0]
    b = max(1, int(n - 1).bit_length())
    if n < 64 or b > 40 or not np.abs(v).max() < 2.0**1022:
        return np.argsort(v)
    bits = np.ascontiguousarray(v, dtype=np.float64).view(np.uint64)
    # order-preserving map: flip all bits of negatives, only the sign bit of the rest
    key = bits ^ (((bits >> np.uint64(63)) * _LOW63) | _SIGN)
    key >>= np.uint64(1)  # top bit 0 and, as |v| < 2^1022, exponent neither 0 nor all ones
    mask = np.uint64((1 << b) - 1)
    key &= ~mask
    key |= np.arange(n, dtype=np.uint64)
    packed = key.view(np.float64)
    packed.sort()
    sorted_keys = packed.view(np.uint64)
    order = (sorted_keys & mask).astype(np.intp)
    high = sorted_keys >> np.uint64(b)
    same_high = high[1:] == high[:-1]
    if same_high.any():
        vals = v[order]
        bad = same_high & (vals[1:] != vals[:-1])
        if bad.any():  # distinct values that collided: sort their runs by value
            run = np.cumsum(np.concatenate(([True], ~same_high)))
            pos = np.flatnonzero(np.isin(run, run[1:][bad]))
            sub = order[pos]
            order[pos] = sub[np.lexsort((v[sub], run[pos]))]
    return order


def _sort_rows(V: np.ndarray):
    """Yield (row, sort order, sorted values, has ties) for each row of V.

    One sort per row, row by row: each order is a fresh ~1 MB array that the allocator
    recycles, where a single (n_rows, n) argsort would touch (and page-fault) a new
    array as large as V."""
    sorted_buf = np.empty(V.shape[1], dtype=V.dtype)
    for r in range(V.shape[0]):
        order = argsort_finite(V[r])
        s = V[r].take(order, out=sorted_buf)
        yield r, order, s, bool((s[1:] == s[:-1]).any())


def _new_values(s: np.ndarray) -> np.ndarray:
    """Mask of the entries of a sorted vector that differ from their predecessor: the
    starts of its runs of tied values."""
    new = np.empty(s.shape[0], dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    return new


def rank_rows(V: np.ndarray, center: bool = False) -> np.ndarray:
    """Ranks 1..n of each row, ties given their average rank (``scipy.stats.rankdata``'s
    default), from one sort per row; minus their row mean if ``center``."""
    n = V.shape[1]
    R = np.empty(V.shape, dtype=np.float64)
    base = np.arange(1, n + 1, dtype=np.float64)
    if center:
        base -= base.mean()
    for r, order, s, ties in _sort_rows(V):
        if not ties:
            R[r, order] = base
            continue
        new = _new_values(s)
        starts = np.flatnonzero(new)
        counts = np.diff(np.append(starts, n))
        ranks = np.repeat(starts + (counts + 1) / 2.0, counts)
        if center:
            ranks -= ranks.mean()
        R[r, order] = ranks
    return R


# -- Kendall's tau-a -------------------------------------------------------------------------
@dataclass
class TauPrep:
    """Per-RDM quantities for tau-a: the sort order, the dense ranks (1-based) in sorted
    order, the number of tied pairs, and (on request) the dense ranks in the original
    order."""

    order: np.ndarray
    dense_sorted: list
    ties: np.ndarray
    max_rank: np.ndarray
    dense: list | None = None


def tau_prepare(V: np.ndarray, with_dense: bool = False) -> TauPrep:
    n = V.shape[1]
    plain = np.arange(1, n + 1, dtype=np.intp)
    orders = []
    sorted_l = [plain] * V.shape[0]
    ties = np.zeros(V.shape[0], dtype=np.int64)
    max_rank = np.full(V.shape[0], n, dtype=np.int64)
    for r, order, s, has_ties in _sort_rows(V):
        orders.append(order.astype(np.intp, copy=False))
        if not has_ties:
            continue
        new = _new_values(s)
        sorted_l[r] = np.cumsum(new, dtype=np.intp)
        counts = np.diff(np.append(np.flatnonzero(new), n)).astype(np.int64)
        ties[r] = int((counts * (counts - 1) // 2).sum())
        max_rank[r] = int(sorted_l[r][-1])
    prep = TauPrep(orders, sorted_l, ties, max_rank)
    if with_dense:
        dense = []
        for r in range(V.shape[0]):
            d = np.empty(n, dtype=np.intp)
            d[orders[r]] = sorted_l[r]
            dense.append(d)
        prep.dense = dense
    return prep


def tau_a(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Kendall's tau-a of every row of A with every row of B.

    Per pair, the rows of the side with more RDMs are put in their own sort order (sorted
    once per RDM), the other RDM's ranks are gathered in that order, and the discordant
    pairs are counted in O(n log n); ties are counted from the sorted values, as in
    rsatoolbox's ``_tau_a`` (which sorts both vectors anew for every pair)."""
    if A.shape[0] < B.shape[0]:
        return tau_a(B, A).T
    px = tau_prepare(A)
    py = tau_prepare(B, with_dense=True)
    out = np.empty((A.shape[0], B.shape[0]))
    for i in range(A.shape[0]):
        for j in range(B.shape[0]):
            out[i, j] = _tau_a_pair(px, i, py, j)
    return out


def _tau_a_pair(px: TauPrep, i: int, py: TauPrep, j: int) -> float:
    x = px.dense_sorted[i]
    y = py.dense[j][px.order[i]]  # ranks of the other RDM, in this RDM's sort order
    n = x.shape[0]
    tot = n * (n - 1) // 2
    if tot == 0:
        return 0.0
    dis = discordant(x, y)
    xtie, ytie = int(px.ties[i]), int(py.ties[j])
    ntie = _joint_ties(x, y, int(py.max_rank[j])) if (xtie and ytie) else 0
    tau = (tot - xtie - ytie + ntie - 2 * dis) / tot
    return min(1.0, max(-1.0, tau))


def _joint_ties(x: np.ndarray, y: np.ndarray, y_max: int) -> int:
    """Pairs tied in both x and y."""
    n = x.shape[0]
    key = x.astype(np.int64) * (y_max + 1) + y
    if int(key[-1]) <= 8 * n:  # x is sorted, so key[-1] bounds the keys from above
        counts = np.bincount(key)
    else:
        _, counts = np.unique(key, return_counts=True)
    counts = counts.astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def discordant_numpy(x: np.ndarray, y: np.ndarray) -> int:
    """Number of pairs with x_i < x_j and y_i > y_j, for x sorted ascending.

    Pure numpy: sort by (x, y), then count strict inversions of y with a bottom-up merge
    whose cross-block counts come from one ``searchsorted`` per level. O(n log^2 n);
    the fallback of :func:`discordant`."""
    order = np.lexsort((y, x))
    seq = np.asarray(y, dtype=np.int64)[order]
    n = seq.shape[0]
    big = int(seq.max(initial=0)) + 1
    total = 0
    width = 1
    pos = np.arange(n)
    while width < n:
        block = pos // width
        pair = block // 2
        is_left = (block % 2) == 0
        key = pair * big + seq  # blocks of each pair are sorted, so keys of left blocks are too
        left_keys = key[is_left]
        right_keys = key[~is_left]
        right_pair = pair[~is_left]
        # left elements of the same pair that are <= each right element
        le = np.searchsorted(left_keys, right_keys, side="right") - np.searchsorted(
            left_keys, right_pair * big, side="left"
        )
        left_size = np.minimum(width, n - right_pair * 2 * width)
        total += int((left_size - le).sum())
        seq = np.sort(key) - pair * big  # merge each pair of blocks
        width *= 2
    return total


def _make_discordant():
    """scipy's compiled Knight/Fenwick count of discordant pairs (``_kendall_dis``, the
    routine behind ``scipy.stats.kendalltau`` and rsatoolbox's tau-a) if this scipy has it
    and it agrees with :func:`discordant_numpy` on a check case; the numpy merge count
    otherwise."""
    try:
        from scipy.stats._stats import _kendall_dis
    except ImportError:  # pragma: no cover - depends on the scipy version
        logger.debug("scipy's _kendall_dis is unavailable; tau-a uses the numpy merge count")
        return discordant_numpy

    def compiled(x, y):
        return int(_kendall_dis(np.ascontiguousarray(x, dtype=np.intp),
                                np.ascontiguousarray(y, dtype=np.intp)))

    rng = np.random.default_rng(12345)
    x = np.sort(rng.integers(1, 6, 200)).astype(np.intp)
    y = rng.integers(1, 9, 200).astype(np.intp)
    try:
        ok = compiled(x, y) == discordant_numpy(x, y)
    except Exception:  # pragma: no cover - depends on the scipy version  # noqa: BLE001
        ok = False
    if not ok:  # pragma: no cover
        logger.debug("scipy's _kendall_dis failed its check; tau-a uses the numpy merge count")
        return discordant_numpy
    return compiled


discordant = _make_discordant()


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
