"""Conditions of an RDM: which observations are averaged together, in which order the
conditions appear, and the labels that travel with them as pattern descriptors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._metadata import check_factor_column, factor_codes, factor_levels

SEP = "|"  # joins the levels of several factors into one condition label, e.g. "F01|AN"


@dataclass
class Source:
    """What an RDM is computed from: the (n_obs, n_features) responses, the factor table and
    the provenance."""

    X: Any
    metadata: pd.DataFrame
    provenance: dict


def factor_table(obj) -> pd.DataFrame | None:
    """The factor table of a DataFrame, of anything with a ``.metadata`` DataFrame
    (`Activations`, `StimulusSet`), or of an rsatoolbox Dataset (its obs descriptors);
    None for anything else."""
    if isinstance(obj, pd.DataFrame):
        return obj.reset_index(drop=True)
    if isinstance(getattr(obj, "metadata", None), pd.DataFrame):
        return obj.metadata
    if hasattr(obj, "obs_descriptors"):
        return pd.DataFrame({k: np.asarray(v) for k, v in obj.obs_descriptors.items()})
    return None


def as_source(obj, argument: str = "acts") -> Source:
    """Accept a `dnnrsa.Activations`, an ``rsatoolbox.data.Dataset`` or anything with
    ``.X``/``.metadata`` (and optionally ``.provenance``)."""
    if hasattr(obj, "X") and isinstance(getattr(obj, "metadata", None), pd.DataFrame):
        return Source(obj.X, obj.metadata, dict(getattr(obj, "provenance", {}) or {}))
    if hasattr(obj, "measurements") and hasattr(obj, "obs_descriptors"):
        meas = np.asarray(obj.measurements)
        if meas.ndim != 2:
            raise ValueError(
                f"Argument {argument}: an rsatoolbox dataset with measurements of shape "
                f"(n_obs, n_channels) is needed, got shape {meas.shape} (temporal datasets "
                "are not supported)."
            )
        meta = factor_table(obj)
        if len(meta.columns) == 0:
            meta = pd.DataFrame(index=range(meas.shape[0]))
        provenance = dict(getattr(obj, "descriptors", {}) or {})
        return Source(meas, meta.reset_index(drop=True), provenance)
    raise TypeError(
        f"Argument {argument} must be a dnnrsa.Activations or an rsatoolbox.data.Dataset, "
        f"got {type(obj).__name__}."
    )


def normalise_factors(conditions, argument: str = "conditions") -> tuple[str, ...] | None:
    if conditions is None:
        return None
    if isinstance(conditions, str):
        return (conditions,)
    if isinstance(conditions, (tuple, list)) and conditions and all(
        isinstance(c, str) for c in conditions
    ):
        if len(set(conditions)) != len(conditions):
            raise ValueError(
                f"Argument {argument} names a factor twice: {tuple(conditions)}."
            )
        return tuple(conditions)
    raise TypeError(
        f"Argument {argument} must be a factor name, a tuple of factor names or None, "
        f"got {conditions!r}."
    )


def column_codes(meta: pd.DataFrame, factor: str, argument: str) -> tuple[np.ndarray, list]:
    """Integer codes and levels (natural order) of the metadata column ``factor``; an
    unknown column or a missing value is a ValueError naming ``argument``."""
    col = meta[check_factor_column(meta, factor, argument)]
    levels = factor_levels(col)
    return factor_codes(col, levels, argument=argument), levels


@dataclass
class Conditions:
    """The conditions of an RDM.

    Attributes
    ----------
    factors : tuple of str
        The factors whose level combinations define the conditions; empty when every
        observation is its own condition.
    codes : ndarray of shape (n_obs,)
        Condition index (0..n_cond-1) of each observation, in the natural order.
    descriptors : dict
        Pattern descriptors, one array of n_cond values per entry.
    name : str
        Name of the condition descriptor (``"identity"``, ``"identity_expression"``).
    """

    factors: tuple[str, ...]
    codes: np.ndarray
    descriptors: dict
    name: str

    @property
    def n_cond(self) -> int:
        return len(self.descriptors["index"])

    @property
    def labels(self) -> np.ndarray:
        return self.descriptors[self.name]


def group_conditions(meta: pd.DataFrame, conditions, argument: str = "conditions") -> Conditions:
    """Condition of every observation, conditions in the natural order of the factor levels
    (lexicographic over the factors, in the order given), restricted to the combinations
    present."""
    factors = normalise_factors(conditions, argument)
    n = len(meta)
    if factors is None:
        codes = np.arange(n, dtype=np.int64)
        desc = _constant_descriptors(meta, codes, n, ())
        desc["index"] = np.arange(n)
        return Conditions((), codes, desc, "index")
    per_factor = [column_codes(meta, f, argument) for f in factors]
    sizes = [len(levels) for _, levels in per_factor]
    flat = np.ravel_multi_index([c for c, _ in per_factor], sizes) if n else np.zeros(0, int)
    present, codes = np.unique(flat, return_inverse=True)
    codes = codes.astype(np.int64).reshape(-1)
    level_idx = np.unravel_index(present, sizes)
    desc: dict[str, np.ndarray] = {}
    columns = []
    for f, (_, levels), idx in zip(factors, per_factor, level_idx, strict=True):
        values = [levels[i] for i in idx]
        columns.append(values)
        desc[f] = _as_array(values)
    name = "_".join(factors)
    if len(factors) > 1:
        combos = zip(*columns, strict=True)
        desc[name] = np.array([SEP.join(str(v) for v in combo) for combo in combos])
    desc.update(_constant_descriptors(meta, codes, len(present), factors))
    desc["index"] = np.arange(len(present))
    return Conditions(factors, codes, desc, name)


def _as_array(values: Sequence) -> np.ndarray:
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.dtype == object:
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
    return arr


def _constant_descriptors(meta: pd.DataFrame, codes: np.ndarray, n_cond: int, skip) -> dict:
    """The metadata columns that take one value within every condition, one value per
    condition (like rsatoolbox keeps the obs descriptors that survive averaging)."""
    out = {}
    if n_cond == 0:
        return out
    _, first = np.unique(codes, return_index=True)  # the first observation of each condition
    for col_name in meta.columns:
        if col_name in skip or col_name == "index":
            continue
        col = meta[col_name]
        try:
            value_codes, _ = pd.factorize(col, use_na_sentinel=False)
        except TypeError:  # unhashable values (lists, arrays): not a factor
            continue
        pairs = np.unique(codes * (int(value_codes.max(initial=0)) + 1) + value_codes)
        if len(pairs) != n_cond:
            continue
        values = col.iloc[first].tolist()
        out[str(col_name)] = _as_array(values)
    return out
