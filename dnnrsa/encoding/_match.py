"""What goes with what in :func:`dnnrsa.encoding.encode`: the network layers and brain
regions it was given, resolved into named `Activations`, and the stimulus features that
belong to each brain observation (matched by condition)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._metadata import check_factor_column
from ..activations import Activations

__all__ = [
    "ConditionMatch",
    "check_conditions",
    "check_finite",
    "condition_means",
    "match_conditions",
    "resolve_brain",
    "resolve_features",
]

#: (network, seed, layer): the name of one set of stimulus features.
FeatureKey = tuple


def _network_and_seed(acts: Activations, default_seed: Any) -> tuple[Any, Any]:
    prov = acts.provenance
    network = prov.get("model", prov.get("network")) or "model"
    seed = prov.get("seed")
    return str(network), default_seed if seed is None else seed


def _check_layer_dict(layers: Any, argument: str) -> Mapping:
    if not isinstance(layers, Mapping) or not layers:
        raise TypeError(
            f"Argument {argument} must be a non-empty dict of layer name -> Activations, got "
            f"{type(layers).__name__}{' (empty)' if isinstance(layers, Mapping) else ''}."
        )
    for name, acts in layers.items():
        if not isinstance(name, str):
            raise TypeError(
                f"The layer names of {argument} must be strings, got {name!r} "
                f"({type(name).__name__})."
            )
        if not isinstance(acts, Activations):
            raise TypeError(
                f"{argument}[{name!r}] must be a dnnrsa.Activations, got {type(acts).__name__}."
            )
    return layers


def resolve_features(features: Any) -> dict[FeatureKey, Activations]:
    """The stimulus features of :func:`encode` as ``{(network, seed, layer): Activations}``.

    One `Activations` is one layer (its provenance ``layer``, else ``"layer"``); a dict maps
    layer names to `Activations`; a list of such dicts holds several networks or training
    seeds. The network is the provenance ``model`` (or ``network``), else ``"model"``; the
    seed is the provenance ``seed``, else the position of the dict in the list (0 for a
    single dict or `Activations`).
    """
    if isinstance(features, Activations):
        network, seed = _network_and_seed(features, 0)
        return {(network, seed, str(features.layer or "layer")): features}
    if isinstance(features, Mapping):
        dicts = [_check_layer_dict(features, "features")]
    elif isinstance(features, Sequence) and not isinstance(features, str):
        if not features:
            raise ValueError("Argument features is an empty list; give at least one dict of "
                             "layer name -> Activations.")
        dicts = [_check_layer_dict(d, f"features[{i}]") for i, d in enumerate(features)]
    else:
        raise TypeError(
            "Argument features must be an Activations, a dict of layer name -> Activations or a "
            f"list of such dicts (one per network or seed), got {type(features).__name__}."
        )
    out: dict[FeatureKey, Activations] = {}
    for index, layers in enumerate(dicts):
        for layer, acts in layers.items():
            network, seed = _network_and_seed(acts, index)
            key = (network, seed, layer)
            if key in out:
                raise ValueError(
                    f"Argument features holds layer {layer!r} of network {network!r} seed "
                    f"{seed!r} twice; give each network/seed a distinct provenance 'model' or "
                    "'seed' (or drop the provenance so that list positions number the seeds)."
                )
            out[key] = acts
    return out


def resolve_brain(brain: Any) -> dict[str, Activations]:
    """The brain data of :func:`encode` as ``{roi: Activations}``: one `Activations` (named
    by its provenance ``region`` or ``roi``, else ``"roi"``) or a dict ROI name ->
    `Activations`."""
    if isinstance(brain, Activations):
        prov = brain.provenance
        return {str(prov.get("region", prov.get("roi")) or "roi"): brain}
    if not isinstance(brain, Mapping) or not brain:
        raise TypeError(
            "Argument brain must be an Activations (one region) or a non-empty dict of ROI "
            f"name -> Activations, got {type(brain).__name__}."
        )
    for name, acts in brain.items():
        if not isinstance(name, str):
            raise TypeError(f"The ROI names of brain must be strings, got {name!r}.")
        if not isinstance(acts, Activations):
            raise TypeError(
                f"brain[{name!r}] must be a dnnrsa.Activations, got {type(acts).__name__}."
            )
    return dict(brain)


def check_finite(acts: Activations, what: str) -> None:
    """A ValueError that counts the NaN/inf values of ``acts`` (there is no silent
    imputation)."""
    X = acts.X
    if X.dtype.kind != "f":
        return
    bad = np.count_nonzero(~np.isfinite(X))
    if bad:
        rows = np.count_nonzero(~np.isfinite(X).all(axis=1))
        raise ValueError(
            f"{what} holds {bad} NaN or infinite value(s) in {rows} of {len(acts)} rows; "
            "remove or impute them before calling encode (nothing is filled in silently)."
        )


def check_conditions(conditions: Any) -> tuple[str, ...] | None:
    """``conditions`` as a tuple of column names, or None."""
    if conditions is None:
        return None
    if isinstance(conditions, str):
        return (conditions,)
    if isinstance(conditions, (tuple, list)) and conditions and all(
            isinstance(c, str) for c in conditions):
        return tuple(conditions)
    raise TypeError(
        "Argument conditions must be None, a column name or a tuple of column names, got "
        f"{conditions!r}."
    )


def _keys(metadata: pd.DataFrame, columns: tuple[str, ...], side: str) -> list[tuple]:
    for col in columns:
        check_factor_column(metadata, col, "conditions",
                            hint=f"conditions must be a column of the {side} metadata.")
    missing = metadata.loc[:, list(columns)].isna().any(axis=1)
    if missing.any():
        raise ValueError(
            f"Argument conditions: the {side} metadata have a missing value in "
            f"{list(columns)} for {int(missing.sum())} of {len(metadata)} rows; every row needs "
            "a condition. Drop those rows or fill them in first."
        )
    return list(zip(*(metadata[c].tolist() for c in columns), strict=True))


def _show(key: tuple) -> Any:
    return key[0] if len(key) == 1 else key


@dataclass(frozen=True)
class ConditionMatch:
    """Which feature rows belong to each brain row.

    Attributes
    ----------
    feature_rows : list of ndarray
        For each brain condition (in the order of the feature table), the feature rows of
        that condition (averaged into one feature vector).
    brain_codes : ndarray of shape (n_brain_rows,)
        The condition (index into ``feature_rows``) of every brain row.
    labels : list
        The brain conditions.
    """

    feature_rows: list
    brain_codes: np.ndarray
    labels: list

    @property
    def n_conditions(self) -> int:
        return len(self.feature_rows)


def match_conditions(feature_meta: pd.DataFrame, brain_meta: pd.DataFrame,
                     columns: tuple[str, ...] | None, *, what: str) -> ConditionMatch:
    """Match brain rows to feature rows by the values of ``columns`` (or one to one when
    ``columns`` is None). ``what`` names the pair in error messages."""
    n_feat, n_brain = len(feature_meta), len(brain_meta)
    if columns is None:
        if n_feat != n_brain:
            raise ValueError(
                f"{what}: the features have {n_feat} rows and the brain data {n_brain}; with "
                "conditions=None rows must correspond one to one. Give conditions= (a column "
                "or tuple of columns in both metadata tables, e.g. conditions='stimulus') to "
                "match brain rows to stimuli."
            )
        rows = [np.array([i]) for i in range(n_feat)]
        return ConditionMatch(rows, np.arange(n_brain), list(range(n_brain)))
    feat_keys = _keys(feature_meta, columns, "feature")
    brain_keys = _keys(brain_meta, columns, "brain")
    by_key: dict[tuple, list[int]] = {}
    for i, key in enumerate(feat_keys):
        by_key.setdefault(key, []).append(i)
    present = set(brain_keys)
    missing = sorted((k for k in present if k not in by_key), key=str)
    if missing:
        shown = [_show(k) for k in missing[:20]]
        more = f" (and {len(missing) - 20} more)" if len(missing) > 20 else ""
        raise ValueError(
            f"{what}: {len(missing)} brain condition(s) of conditions={list(columns)} have no "
            f"feature rows: {shown}{more}. Every brain condition needs the features of its "
            "stimulus; check that both metadata tables spell the conditions alike."
        )
    order = [k for k in by_key if k in present]
    code_of = {k: i for i, k in enumerate(order)}
    codes = np.array([code_of[k] for k in brain_keys], dtype=np.int64)
    return ConditionMatch([np.asarray(by_key[k]) for k in order], codes,
                          [_show(k) for k in order])


def condition_means(X: np.ndarray, match: ConditionMatch) -> np.ndarray:
    """The mean feature vector of every brain condition, shape (n_conditions, n_features),
    float64."""
    if all(len(rows) == 1 for rows in match.feature_rows):
        return np.asarray(X[np.concatenate(match.feature_rows)], dtype=np.float64)
    out = np.empty((match.n_conditions, X.shape[1]), dtype=np.float64)
    for i, rows in enumerate(match.feature_rows):
        out[i] = np.asarray(X[rows], dtype=np.float64).mean(axis=0)
    return out
