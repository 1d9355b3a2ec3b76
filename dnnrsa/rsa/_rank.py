"""Ranks and Kendall's tau-a of RDM vectors with numpy: one sort per row (a SIMD float
sort of packed keys), average ranks for ties, discordant pairs by an O(n log n) count."""

from __future__ import annotations

import numpy as np

from .._utils import logger

# -- ranks -----------------------------------------------------------------------------------
_SIGN = np.uint64(1 << 63)
_LOW63 = np.uint64((1 << 63) - 1)
_BIT62 = np.uint64(1 << 62)
_TOP_OK = np.float64(2.0**1022).view(np.uint64)  # bits of non-negative values below 2^1022


class RowSorter:
    """Sorts float64 vectors of one length ``n``, one at a time, into reused buffers.

    ``np.argsort`` does not use the SIMD sort that ``np.sort`` uses for float64 values,
    so each value is mapped to an order-preserving 64-bit key whose low ``b`` bits are
    replaced by the element's index; the keys are sorted *as float64 values* (shifted so
    that each is a positive float, whose float order is its integer order) and the
    indices are read back from the low bits. Values whose keys differ only in those low
    bits (relative difference below 2^(b - 51)) come out in index order; each such group
    that is out of order is re-sorted by value afterwards, so the order is exact.
    """

    def __init__(self, n: int):
        self.n = n
        self.b = max(1, int(n - 1).bit_length())
        self.packable = n >= 64 and self.b <= 40
        self.mask = np.uint64((1 << self.b) - 1)
        self.index_bits = np.arange(n, dtype=np.uint64)
        self.index_bits_hi = self.index_bits | _BIT62
        self.keys = np.empty(n, dtype=np.uint64)
        self.order = np.empty(n, dtype=np.intp)
        self.sorted = np.empty(n, dtype=np.float64)
        self.le = np.empty(max(n - 1, 0), dtype=bool)

    def sort(self, v: np.ndarray):
        """(order, sorted values, has ties) of a finite vector of length n; the arrays are
        this sorter's buffers, overwritten by the next call."""
        v = np.ascontiguousarray(v, dtype=np.float64)
        s = self.sorted
        if not self.packable or not self._pack_and_sort(v):
            self.order[:] = np.argsort(v)
            v.take(self.order, out=s)
            return self.order, s, bool((s[1:] == s[:-1]).any())
        le = np.less_equal(s[1:], s[:-1], out=self.le)
        if not le.any():
            return self.order, s, False
        candidates = np.flatnonzero(le)
        descents = candidates[s[candidates + 1] < s[candidates]]
        inside = self._fix_groups(v, descents) if descents.size else None
        ties = bool((s[candidates + 1] == s[candidates]).any())
        if inside is not None and not ties:
            ties = bool((s[inside[1:]] == s[inside[:-1]]).any())
        return self.order, s, ties

    def _pack_and_sort(self, v) -> bool:
        b, keys = self.b, self.keys
        bits = v.view(np.uint64)
        if bits.max() < _TOP_OK:  # all non-negative (no -0.0) and below 2^1022: 3 passes
            np.right_shift(bits, np.uint64(b + 1), out=keys)
            keys <<= np.uint64(b)
            keys |= self.index_bits_hi
        else:
            if not np.abs(v).max() < 2.0**1022:
                return False
            # order-preserving map: flip all bits of negatives, only the sign bit of the rest
            np.multiply(bits >> np.uint64(63), _LOW63, out=keys)
            keys |= _SIGN
            keys ^= bits
            keys >>= np.uint64(1)  # top bit 0; as |v| < 2^1022 the exponent is never all ones
            keys &= ~self.mask
            keys |= self.index_bits
        keys.view(np.float64).sort()
        np.bitwise_and(keys, self.mask, out=self.order.view(np.uint64))
        v.take(self.order, out=self.sorted)
        return True

    def _fix_groups(self, v, descents) -> np.ndarray:
        """Sort by value each group of equal high key bits that holds a descent; returns
        the positions re-sorted (groups in a row)."""
        b = np.uint64(self.b)
        high = self.keys[descents] >> b
        lo = np.searchsorted(self.keys, high << b, side="left")
        lo, first = np.unique(lo, return_index=True)
        hi = np.searchsorted(self.keys, (high[first] + np.uint64(1)) << b, side="left")
        lengths = hi - lo
        ends = np.cumsum(lengths)
        pos = np.arange(ends[-1]) + np.repeat(lo - (ends - lengths), lengths)
        group = np.repeat(np.arange(lo.shape[0]), lengths)
        sub = self.order[pos]
        sub = sub[np.lexsort((v[sub], group))]
        self.order[pos] = sub
        self.sorted[pos] = v[sub]
        return pos


def argsort_finite(v: np.ndarray) -> np.ndarray:
    """``np.argsort`` of a finite float64 vector (any order among equal values), about
    twice as fast (see :class:`RowSorter`)."""
    return RowSorter(v.shape[0]).sort(v)[0].copy()


def _run_starts(s: np.ndarray) -> np.ndarray:
    """Mask of the entries of a sorted vector that differ from their predecessor: the
    starts of its runs of tied values."""
    new = np.empty(s.shape[0], dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    return new


def _tied_ranks(s: np.ndarray) -> np.ndarray:
    """Average ranks (1..n) of a sorted vector with ties, in sorted order."""
    starts = np.flatnonzero(_run_starts(s))
    counts = np.diff(np.append(starts, s.shape[0]))
    return np.repeat(starts + (counts + 1) / 2.0, counts)


def rank_rows(V: np.ndarray, center: bool = False) -> np.ndarray:
    """Ranks 1..n of each row, ties given their average rank (``scipy.stats.rankdata``'s
    default), from one sort per row; minus their mean (n + 1) / 2 if ``center``."""
    n = V.shape[1]
    R = np.empty(V.shape, dtype=np.float64)
    shift = (n + 1) / 2.0 if center else 0.0
    base = np.arange(1, n + 1, dtype=np.float64) - shift
    sorter = RowSorter(n)
    for r in range(V.shape[0]):
        order, s, ties = sorter.sort(V[r])
        R[r, order] = _tied_ranks(s) - shift if ties else base
    return R


# streaming one side row by row pays off while the other side is this small
# -- Kendall's tau-a -------------------------------------------------------------------------
def _dense_sorted(s: np.ndarray, has_ties: bool, plain: np.ndarray):
    """Dense ranks (1-based) of a sorted vector, in sorted order, and its tied pairs."""
    if not has_ties:
        return plain, 0
    new = _run_starts(s)
    counts = np.diff(np.append(np.flatnonzero(new), s.shape[0])).astype(np.int64)
    return np.cumsum(new, dtype=np.intp), int((counts * (counts - 1) // 2).sum())


def _dense_ranks(V: np.ndarray):
    """Dense ranks (1-based) of every row in its own order, (n_rows, n) intp, with the
    tied pairs and the largest rank of each row."""
    n = V.shape[1]
    plain = np.arange(1, n + 1, dtype=np.intp)
    D = np.empty(V.shape, dtype=np.intp)
    ties = np.zeros(V.shape[0], dtype=np.int64)
    sorter = RowSorter(n)
    for r in range(V.shape[0]):
        order, s, has_ties = sorter.sort(V[r])
        dense, ties[r] = _dense_sorted(s, has_ties, plain)
        D[r, order] = dense
    return D, ties, D.max(axis=1, initial=0)


def tau_a(A: np.ndarray, B: np.ndarray, paired: bool = False) -> np.ndarray:
    """Kendall's tau-a of every row of A with every row of B, (n_a, n_b); of row i of A
    with row i of B, (n,), if ``paired``.

    The side with more RDMs is streamed: each of its rows is sorted once, the dense ranks
    of the other side's RDMs are gathered in that order, and the discordant pairs are
    counted in O(n log n) (scipy's compiled Fenwick count); ties are counted from the
    sorted values, as in rsatoolbox's ``_tau_a`` (which sorts both vectors anew for
    every pair). No (n_rdms, n) index array is kept."""
    if A.shape[0] < B.shape[0] and not paired:
        return tau_a(B, A).T
    n = A.shape[1]
    tot = n * (n - 1) // 2
    DB, ties_b, max_b = _dense_ranks(B)
    plain = np.arange(1, n + 1, dtype=np.intp)
    y = np.empty(n, dtype=np.intp)
    out = np.zeros((A.shape[0], 1 if paired else B.shape[0]))
    sorter = RowSorter(n)
    for i in range(A.shape[0] if tot else 0):
        order, s, has_ties = sorter.sort(A[i])
        x, xtie = _dense_sorted(s, has_ties, plain)
        for k, j in enumerate((i,) if paired else range(B.shape[0])):
            DB[j].take(order, out=y)  # ranks of the other RDM, in this RDM's sort order
            ytie = int(ties_b[j])
            ntie = _joint_ties(x, y, int(max_b[j])) if (xtie and ytie) else 0
            tau = (tot - xtie - ytie + ntie - 2 * discordant(x, y)) / tot
            out[i, k] = min(1.0, max(-1.0, tau))
    return out[:, 0] if paired else out


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
