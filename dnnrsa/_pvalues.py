"""Adjustment of p values for a family of tests, shared by every stage that reports
several tests at once (the study's findings, layer-vs-best tests of model vs brain)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["holm", "as_vector"]


def as_vector(name: str, values: Any, per: str = "") -> np.ndarray:
    """``values`` as a 1-D float array, or a TypeError/ValueError naming argument ``name``
    (``per`` says what one entry is, e.g. "one value per seed")."""
    try:
        x = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            f"Argument {name} must be a 1-D sequence of numbers, got {type(values).__name__}."
        ) from None
    if x.ndim != 1:
        what = f" ({per})" if per else ""
        raise ValueError(f"Argument {name} must be 1-D{what}, got shape {x.shape}.")
    return x


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
    x = as_vector("p", p)
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
