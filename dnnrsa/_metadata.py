"""The factor table that travels with images, layer responses and brain data: the checks
and codes that `StimulusSet`, `Activations`, cross-validation, RSA and the data sets share.

A *factor* is any metadata column except ``path`` (``identity``, ``expression``,
``viewpoint``, ``session``, ``run``, ...). Its *levels* come in their natural order: a
Categorical's category order, else sorted. Every piece of dnnrsa that turns a factor into
integer codes does it here, so the same column gets the same codes everywhere, and a
missing value is an error everywhere (never a silent code of its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._utils import format_choices

__all__ = [
    "FactorTable",
    "categorical",
    "check_factor_column",
    "check_metadata",
    "factor_codes",
    "factor_levels",
    "row_index",
]


def categorical(values: Any, categories: Sequence) -> pd.Categorical:
    """A factor column as a pandas Categorical whose categories are ``categories`` in the
    order given, all of them kept (also those absent from ``values``). Unordered: the
    order is the natural listing order of the levels (KDEF's expression codes, say), not a
    ranking. Every data set of dnnrsa, real or synthetic, builds its factors with this."""
    return pd.Categorical(values, categories=list(categories), ordered=False)


def check_factor_column(metadata: pd.DataFrame, factor: Any, argument: str,
                        hint: str = "") -> str:
    """Return ``factor`` if it is a column of ``metadata``, else raise a ``ValueError`` that
    names the argument and lists the factor columns (every column but ``path``)."""
    if not isinstance(factor, str) or factor not in metadata.columns:
        valid = [c for c in metadata.columns if c != "path"]
        raise ValueError(
            f"Unknown value {factor!r} for argument {argument}: it is not a column of the "
            f"metadata. Valid values are {format_choices(valid)}." + (f" {hint}" if hint else "")
        )
    return factor


def factor_levels(col: pd.Series) -> list:
    """Levels of a factor column in their natural order: a Categorical's category order
    (present levels only), else sorted unique values. Missing values are not a level."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        present = set(col.dropna().unique())
        return [c for c in col.cat.categories if c in present]
    values = col.dropna().unique().tolist()
    try:
        return sorted(values)
    except TypeError:  # levels of mixed types (1 and "a"): order by their text
        return sorted(values, key=str)


def factor_codes(col: pd.Series, levels: Sequence | None = None, *,
                 argument: str | None = None) -> np.ndarray:
    """Integer codes (int64) of a factor column: the position of each value in ``levels``
    (default :func:`factor_levels`).

    A missing value (NaN/None) or a value that is not among ``levels`` raises a
    ``ValueError`` naming the column (and ``argument``, when given) and what to do: no
    observation is silently given a code of its own or dropped.
    """
    name = f"{col.name!r}" + (f" (argument {argument})" if argument else "")
    n_missing = int(col.isna().sum())
    if n_missing:
        raise ValueError(
            f"Factor {name} is missing for {n_missing} of {len(col)} observations; every "
            "observation needs a level. Drop those rows or fill them in first."
        )
    levels = factor_levels(col) if levels is None else list(levels)
    index = pd.Index(levels)
    if not index.is_unique:
        raise ValueError(f"The levels given for factor {name} repeat a value: {levels}.")
    if isinstance(col.dtype, pd.CategoricalDtype):
        per_category = index.get_indexer(col.cat.categories)
        codes = per_category[col.cat.codes.to_numpy()]
    else:
        codes = index.get_indexer(col.to_numpy())
    if (codes < 0).any():
        unknown = sorted({v for v, c in zip(col.tolist(), codes, strict=True) if c < 0}, key=str)
        raise ValueError(
            f"Factor {name} has value(s) {unknown[:10]} that are not among its levels "
            f"{format_choices(levels)}."
        )
    return codes.astype(np.int64)


def check_metadata(metadata: Any, n: int, what: str) -> pd.DataFrame:
    """``metadata`` as a DataFrame of ``n`` rows with a fresh 0..n-1 index, or a clear error:
    one row per image (``what="images"``) or per observation."""
    if not isinstance(metadata, pd.DataFrame):
        raise TypeError(
            f"Argument metadata must be a pandas DataFrame, got {type(metadata).__name__}."
        )
    if len(metadata) != n:
        one = what[:-1] if what.endswith("s") else what
        raise ValueError(
            f"The data hold {n} {what} but metadata has {len(metadata)} rows; give one "
            f"metadata row per {one}."
        )
    return metadata.reset_index(drop=True)


def row_index(key: Any, n: int, what: str) -> np.ndarray:
    """Integer row positions selected by a slice, an integer array or a boolean mask of
    length ``n``; ``what`` names the container in errors."""
    if isinstance(key, slice):
        return np.arange(n)[key]
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        key = [int(key)]
    key = np.asarray(key)
    if key.dtype == bool:
        if key.shape != (n,):
            raise IndexError(f"boolean mask has shape {key.shape}, expected ({n},)")
        return np.flatnonzero(key)
    if key.size == 0:
        return np.zeros(0, np.int64)
    if not np.issubdtype(key.dtype, np.integer):
        raise IndexError(
            f"{what} indices must be int, slice, integer array or boolean mask, got {key.dtype}"
        )
    if key.ndim != 1:
        raise IndexError(f"{what} indices must be one-dimensional, got shape {key.shape}")
    if len(key) and (key.max() >= n or key.min() < -n):
        bad = int(key[(key >= n) | (key < -n)][0])
        raise IndexError(f"index {bad} out of range for a {what} of {n}")
    return key.astype(np.int64)


class FactorTable:
    """What `StimulusSet` and `Activations` share: a ``metadata`` DataFrame with one row per
    image or observation, read through factor names."""

    metadata: pd.DataFrame

    @property
    def factors(self) -> list[str]:
        """The metadata columns that act as factors (every column except ``path``)."""
        return [c for c in self.metadata.columns if c != "path"]

    def check_factor(self, factor: str, argument: str = "target") -> str:
        """``factor`` if it is a metadata column, else a ValueError that lists them."""
        return check_factor_column(self.metadata, factor, argument)

    def classes(self, factor: str) -> list:
        """The levels of ``factor`` in their natural order (a Categorical's order, else
        sorted), restricted to the levels present."""
        return factor_levels(self.metadata[self.check_factor(factor, "factor")])

    def labels(self, factor: str, classes: Sequence | None = None) -> np.ndarray:
        """Integer codes of ``factor`` for every row, in the order of ``classes``
        (default: :meth:`classes`); a missing value is an error."""
        col = self.metadata[self.check_factor(factor, "factor")]
        return factor_codes(col, classes, argument="factor")
