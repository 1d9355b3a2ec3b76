"""Adjustment of p values for a family of tests, shared by every stage that reports
several tests at once (the study's findings, layer-vs-best tests of model vs brain)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["holm"]


def holm(p: Any) -> np.ndarray:
    """Holm's step-down adjustment of p values (family-wise error control).

    Parameters
    ----------
    p : sequence of float
        p values in [0, 1]; NaN entries are not part of the family and stay NaN.

    Returns
    -------
    numpy.ndarray
        Adjusted p values in the input order: with the m finite p values sorted
        ascending, the i-th (1-based) becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``.
    """
    try:
        x = np.asarray(p, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            f"Argument p must be a 1-D sequence of numbers, got {type(p).__name__}."
        ) from None
    if x.ndim != 1:
        raise ValueError(f"Argument p must be 1-D, got shape {x.shape}.")
    finite = ~np.isnan(x)
    if ((x[finite] < 0) | (x[finite] > 1)).any():
        raise ValueError(f"Argument p must hold p values in [0, 1] (or NaN), got {x.tolist()}.")
    out = np.full(x.shape, np.nan)
    idx = np.flatnonzero(finite)
    m = idx.size
    if m == 0:
        return out
    order = idx[np.argsort(x[idx], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * x[order])
    # the running maximum keeps the adjusted values in the same order as the raw ones
    out[order] = np.maximum.accumulate(scaled)
    return out
