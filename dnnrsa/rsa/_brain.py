"""Model versus brain: every layer of every network seed compared with the RDMs of every
region of interest, with bootstrap confidence intervals and noise ceilings, as one tidy
table.

The brain RDMs are matched to the model's conditions by their labels (not by position),
so brain data whose conditions come in another order, or that were computed elsewhere as
``rsatoolbox.rdm.RDMs``, compare correctly."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._executor import check_scheduler, dask_client, run_units
from .._pvalues import holm
from .._utils import check_choice, check_positive_int, logger
from ..activations import Activations
from ._compare import COMPARE_METHODS, as_vectors, compare
from ._conditions import group_conditions
from ._inference import (
    _bootstrap_samples,
    _pair_index,
    as_generator,
    check_seed_option,
    noise_ceiling,
)
from ._noise import NOISE_ESTIMATES, check_residuals
from ._rdm import METHODS, rdm

__all__ = ["compare_to_brain", "MODEL_RDM_METHODS", "TABLE_COLUMNS"]

#: Measures for the model side: a network layer has one response per stimulus, so there
#: are no repeated measurements to cross-validate over.
MODEL_RDM_METHODS = tuple(m for m in METHODS if m != "crossnobis")

TABLE_COLUMNS = ("network", "seed", "layer", "roi", "method", "rdm_method", "value",
                 "ci_low", "ci_high", "vs_best", "vs_best_ci_low", "vs_best_ci_high",
                 "p_vs_best", "p_vs_best_holm", "ceiling_low", "ceiling_high", "n_subjects",
                 "n_conditions", "note")

_SHOWN = 10  # condition labels listed per side in a mismatch error


def compare_to_brain(
    model,
    brain,
    *,
    conditions: str,
    method: str = "spearman",
    rdm_method: str | None = None,
    model_rdm_method: str = "euclidean",
    cv: str | None = None,
    noise: Any = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int | np.random.Generator | None = 0,
    scheduler: Any = None,
) -> pd.DataFrame:
    """Compare the RDMs of network layers with the RDMs of brain regions.

    Every layer (of every network seed) is compared with every subject's RDM of every
    region; the table gives the mean over subjects, a percentile bootstrap interval over
    subjects and conditions, and the region's noise ceiling.

    Parameters
    ----------
    model : Activations, dict of str -> Activations, or list of such dicts
        One layer; the layers of one network (layer name -> responses of shape
        (n_stimuli, n_features)); or one dict per network seed (or network). A dict's
        network name is its layers' provenance ``model`` (or ``network``), else
        ``"model"``; its seed is their provenance ``seed``, else its position in the list.
    brain : rsatoolbox.rdm.RDMs, list of Activations, or dict of str -> either
        The subjects of one region: RDMs (one per subject) or per-subject responses of
        shape (n_obs, n_voxels), whose RDMs are ``rdm(subject, method=rdm_method,
        conditions=conditions, cv=cv, noise=noise)`` (a list may also hold RDMs objects,
        one per subject; a single Activations is one subject). A dict maps region names
        to regions; a region given without
        a dict is named by its provenance ``region`` (``descriptors["region"]`` of
        RDMs), else ``"brain"``.
    conditions : str
        The factor whose levels are the conditions: a metadata column of the model's
        Activations and of the brain Activations, a pattern descriptor of brain RDMs
        (:func:`rdm` writes it). Brain RDMs are reordered to the model's order of the
        levels; both sides must have the same levels.
    method : {"spearman", "cosine", "corr", "tau-a", "rho-a", "corr_cov", "cosine_cov"}
        How RDMs are compared (:func:`compare`).
    rdm_method : {"euclidean", "correlation", "mahalanobis", "crossnobis", "poisson"}, optional
        Dissimilarity of the brain Activations (:func:`rdm`); None means ``"euclidean"``
        for Activations, and brain RDMs keep their own (a method given with RDMs must be
        theirs). The table's ``rdm_method`` column records what was compared.
        ``"crossnobis"`` with ``cv="run"`` (and ``noise="residuals"`` for data from
        :func:`dnnrsa.neural.from_runs`) is the unbiased choice for fMRI.
    model_rdm_method : {"euclidean", "correlation", "mahalanobis", "poisson"}
        Dissimilarity of the layers (``rdm(layer, method=model_rdm_method,
        conditions=conditions)``). Euclidean by default, not correlation: every stimulus
        shares a large mean pattern in a post-ReLU layer, and the correlation distance of
        a layer's raw patterns mostly measures that shared pattern, which a region
        responding as a linear mix of the layer does not inherit (Walther et al. 2016
        recommend distances over correlations for the same reason). Measured on a
        simulated region mixed from ``dense2`` of a small untrained DenseNet (3 subjects,
        24 faces, snr 1): Euclidean on both sides ranks ``dense2`` first (Spearman .95
        against .93 for the next layer); correlation on both sides ranks it third.
    cv : str, optional
        Fold factor of ``rdm_method="crossnobis"`` on the brain side (``"run"``,
        ``"session"``).
    noise : None, str or ndarray
        Noise precision of the brain side's mahalanobis/crossnobis RDMs, as in
        :func:`rdm`; ``"residuals"`` uses each subject's GLM residuals.
    n_boot : int
        Bootstrap samples per region (>= 2).
    ci : float
        Coverage of the percentile interval, in (0, 1).
    seed : int, numpy.random.Generator or None
        Seed of the bootstrap. An int gives every region the same resampling stream, so a
        region's interval does not depend on which other regions are in the call; a
        Generator is used (and advanced) region after region; None draws fresh entropy.
    scheduler : None, str, os.PathLike or distributed.Client, optional
        Run the regions on a Dask cluster, one task per region (its subjects' RDMs, the
        comparisons, bootstrap and noise ceiling): an address ``"tcp://HOST:PORT"``, a
        scheduler file or a ``distributed.Client``, as in :func:`dnnrsa.reproduce`. Same
        table as a local run (an int seed gives each region its own stream); a Generator
        seed, which regions would share in turn, is refused.

    Returns
    -------
    pandas.DataFrame
        One row per network x seed x layer x region, columns ``network``, ``seed``,
        ``layer``, ``roi``, ``method``, ``rdm_method``, ``value`` (mean over subjects of
        ``compare(layer_rdm, subject_rdm, method=method)``), ``ci_low``, ``ci_high``
        (:func:`bootstrap` with ``over="both"``: subjects and conditions resampled),
        ``vs_best`` (the layer's value minus the best layer's of the same network seed;
        0 for the best), ``vs_best_ci_low``, ``vs_best_ci_high`` (percentile interval of
        that difference over the same resamples), ``p_vs_best`` (two-sided bootstrap p of
        no difference: twice the share of resamples whose difference reaches 0, with the
        +1 correction; NaN for the best layer) and ``p_vs_best_holm`` (Holm over the
        seed's other layers; the best layer is chosen on the same data, so read a small
        p as "this layer is worse than the best", not as proof about the best one),
        ``ceiling_low``, ``ceiling_high`` (:func:`noise_ceiling`, equal to
        ``rsatoolbox.inference.boot_noise_ceiling``), ``n_subjects``, ``n_conditions``
        and ``note`` (empty, or why a value is missing: a region of one subject has
        ``value`` but no interval and no ceiling). Dissimilarities that are NaN in a
        brain RDM are left out of every comparison of that region, as rsatoolbox does.

    Raises
    ------
    ValueError
        For an unknown method, a condition factor missing on either side, conditions
        present on one side only (listed per side), duplicated condition labels, options
        that do not fit ``rdm_method``, or ``noise="residuals"`` for subjects without GLM
        residuals; all before any RDM is computed.
    TypeError
        For inputs of the wrong type.

    Examples
    --------
    >>> table = compare_to_brain({"conv1": c1, "conv5": c5}, {"FFA": subjects},
    ...                          conditions="identity", rdm_method="crossnobis",
    ...                          cv="run", noise="residuals")      # doctest: +SKIP
    """
    check_choice("method", method, COMPARE_METHODS)
    if rdm_method is not None:
        check_choice("rdm_method", rdm_method, METHODS)
    check_choice("model_rdm_method", model_rdm_method, MODEL_RDM_METHODS,
                 hint="A network layer has one response per stimulus, so there is nothing "
                      "to cross-validate; crossnobis applies to the brain side (rdm_method).")
    if not isinstance(conditions, str):
        raise TypeError(
            "Argument conditions must be the name of one factor column (e.g. 'identity'), "
            f"got {conditions!r}. For several factors, add a combined column to the "
            "metadata of both sides."
        )
    n_boot = check_positive_int("n_boot", n_boot, minimum=2)
    if isinstance(ci, bool) or not (isinstance(ci, numbers.Real) and 0 < ci < 1):
        raise ValueError(f"Argument ci must be a number in (0, 1), e.g. 0.95; got {ci!r}.")
    check_seed_option(seed)
    _check_brain_options(rdm_method or "euclidean", cv, noise)
    scheduler = check_scheduler(scheduler)
    if scheduler is not None and isinstance(seed, np.random.Generator):
        raise ValueError("Argument seed is a numpy Generator, which the regions would use in "
                         "turn; with a scheduler they run apart: give an int seed (each "
                         "region the same reproducible stream) or None.")

    models = _model_items(model)
    rois = _roi_items(brain)
    order = _check_inputs(models, rois, conditions, rdm_method, cv, noise)

    M = np.vstack([_model_vector(item, model_rdm_method, conditions, order)
                   for item in models])
    # the layers of one network seed are compared with that seed's best layer
    groups: dict = {}
    for k, (network, net_seed, _, _) in enumerate(models):
        groups.setdefault((network, net_seed), []).append(k)
    groups = list(groups.values())
    rows = []
    shared = dict(conditions=conditions, order=order, M=M, method=method, n_boot=n_boot,
                  ci=ci, seed=seed, groups=groups,
                  rdm_kwargs=dict(method=rdm_method or "euclidean", cv=cv, noise=noise))
    units = [(name, parts) for name, parts in rois]
    per_roi = {}
    if scheduler is None:  # region after region here: a Generator seed advances in turn
        for name, parts in units:
            per_roi[name] = _region(name, parts, **shared)
    else:
        with dask_client(scheduler) as client:
            for i, stats in run_units(_region, units, shared=shared,
                                      labels=[f"compare_to_brain-{name}" for name, _ in units],
                                      scheduler=client, name="dnnrsa"):
                per_roi[units[i][0]] = stats
    for k, (network, net_seed, layer, _) in enumerate(models):
        for name, _ in rois:
            s = per_roi[name]
            rows.append({
                "network": network, "seed": net_seed, "layer": layer, "roi": name,
                "method": method, "rdm_method": s["rdm_method"], "value": s["value"][k],
                "ci_low": s["ci_low"][k], "ci_high": s["ci_high"][k],
                **{c: s[c][k] for c in _VS_BEST},
                "ceiling_low": s["ceiling"][0], "ceiling_high": s["ceiling"][1],
                "n_subjects": s["n_subjects"], "n_conditions": len(order),
                "note": s["note"],
            })
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def _region(name, parts, *, conditions, order, M, method, n_boot, ci, seed, groups,
            rdm_kwargs) -> dict:
    """One region's comparisons with every layer: a unit of work, here or on a worker."""
    D, measure = _brain_vectors(parts, name, conditions, order, rdm_kwargs)
    stats = _roi_stats(M, D, method, n_boot, ci, seed, groups)
    stats["rdm_method"] = measure
    logger.info("compare_to_brain: %s, %d subjects, %d conditions", name, D.shape[0],
                len(order))
    return stats


# -- options and inputs ----------------------------------------------------------------------
def _check_brain_options(rdm_method: str, cv, noise) -> None:
    """What :func:`rdm` would say about ``cv`` and ``noise``, said before any RDM."""
    if rdm_method == "crossnobis" and cv is None:
        raise ValueError(
            "rdm_method='crossnobis' needs argument cv: the factor whose levels are the "
            "cross-validation folds of the brain data (e.g. cv='run' or cv='session')."
        )
    if rdm_method != "crossnobis" and cv is not None:
        raise ValueError(
            f"Argument cv applies to rdm_method='crossnobis' only, got cv={cv!r} with "
            f"rdm_method={rdm_method!r}."
        )
    if cv is not None and not isinstance(cv, str):
        raise TypeError(f"Argument cv must be a factor name, got {cv!r}.")
    if noise is not None and rdm_method not in ("mahalanobis", "crossnobis"):
        raise ValueError(
            "Argument noise applies to rdm_method 'mahalanobis' or 'crossnobis' only, got "
            f"rdm_method={rdm_method!r}."
        )
    if isinstance(noise, str):
        check_choice("noise", noise, NOISE_ESTIMATES)


def _model_items(model) -> list[tuple[str, Any, Any, Activations]]:
    """(network, seed, layer, acts) for every layer of every network seed."""
    if isinstance(model, Activations):
        dicts, listed = [{model.provenance.get("layer") or "layer": model}], False
    elif isinstance(model, Mapping):
        dicts, listed = [model], False
    elif isinstance(model, (list, tuple)):
        if not model:
            raise ValueError("Argument model is an empty list; give one dict per seed.")
        dicts, listed = list(model), True
    else:
        raise TypeError(
            "Argument model must be an Activations (one layer), a dict of layer name -> "
            f"Activations, or a list of such dicts (one per seed); got {type(model).__name__}."
        )
    items, seen = [], {}
    for i, layers in enumerate(dicts):
        where = f"model[{i}]" if listed else "model"
        if not isinstance(layers, Mapping):
            raise TypeError(
                f"Argument {where} must be a dict of layer name -> Activations, got "
                f"{type(layers).__name__}."
            )
        if not layers:
            raise ValueError(f"Argument {where} is an empty dict; it needs at least one layer.")
        for layer, acts in layers.items():
            if not isinstance(acts, Activations):
                raise TypeError(
                    f"Argument {where}[{layer!r}] must be a dnnrsa.Activations, got "
                    f"{type(acts).__name__}."
                )
        network = _shared(layers, ("model", "network"), where, "network") or "model"
        net_seed = _shared(layers, ("seed",), where, "seed")
        net_seed = i if net_seed is None else net_seed
        key = (network, net_seed)
        if key in seen:
            raise ValueError(
                f"Arguments {seen[key]} and {where} are both network {network!r} with seed "
                f"{net_seed!r}; give every seed's layers once (provenance 'seed' tells "
                "them apart)."
            )
        seen[key] = where
        items.extend((network, net_seed, layer, acts) for layer, acts in layers.items())
    return items


def _shared(layers: Mapping, keys, where: str, what: str):
    """The provenance value (first of ``keys`` present) that all layers of a dict share;
    None if none has it."""
    values = []
    for acts in layers.values():
        for key in keys:
            if acts.provenance.get(key) is not None:
                values.append(acts.provenance[key])
                break
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    if len(set(map(repr, values))) > 1:
        raise ValueError(
            f"The layers of argument {where} come from different {what}s "
            f"({sorted(set(map(str, values)))}, read from provenance {'/'.join(keys)}); "
            "put each network seed in a dict of its own."
        )
    return values[0] if values else None


def _is_rdms(obj) -> bool:
    return hasattr(obj, "get_vectors") and hasattr(obj, "pattern_descriptors")


def _roi_items(brain) -> list[tuple[Any, list]]:
    """(region name, subjects) with subjects a list of Activations and RDMs objects."""
    if isinstance(brain, Mapping):
        if not brain:
            raise ValueError("Argument brain is an empty dict; it needs at least one region.")
        return [(name, _subjects(value, f"brain[{name!r}]")) for name, value in brain.items()]
    parts = _subjects(brain, "brain")
    regions = set()
    for part in parts:
        desc = part.provenance if isinstance(part, Activations) else (part.descriptors or {})
        regions.add(desc.get("region"))
    regions.discard(None)
    if len(regions) > 1:
        raise ValueError(
            f"The subjects of argument brain come from different regions "
            f"({sorted(map(str, regions))}); give a dict of region name -> subjects."
        )
    return [(regions.pop() if regions else "brain", parts)]


def _subjects(obj, argument: str) -> list:
    if _is_rdms(obj) or isinstance(obj, Activations):
        return [obj]
    if isinstance(obj, (list, tuple)) and obj:
        for i, part in enumerate(obj):
            if not (_is_rdms(part) or isinstance(part, Activations)):
                raise TypeError(
                    f"Argument {argument}[{i}] must be a dnnrsa.Activations (one subject's "
                    f"responses) or an rsatoolbox RDMs, got {type(part).__name__}."
                )
        return list(obj)
    raise TypeError(
        f"Argument {argument} must be an rsatoolbox RDMs (one RDM per subject), a "
        "non-empty list of per-subject Activations, or a dict of region name -> either; "
        f"got {type(obj).__name__}."
    )


def _check_inputs(models, rois, conditions: str, rdm_method: str, cv, noise) -> list:
    """Check factors, residuals and condition labels of both sides; return the model's
    condition labels (the order of the table's RDMs). Nothing is computed here."""
    order = None
    first = None
    for network, net_seed, layer, acts in models:
        where = f"model layer {layer!r} (network {network!r}, seed {net_seed!r})"
        acts.check_factor(conditions, "conditions")
        labels = _labels(group_conditions(acts.metadata, conditions).labels)
        if order is None:
            order, first = labels, where
            _check_unique(labels, where, conditions)
        else:
            _match(order, labels, conditions, (first, where))
    if len(order) < 3:
        raise ValueError(
            f"compare_to_brain needs at least 3 conditions (the bootstrap and rank "
            f"comparisons need 3 or more dissimilarities); conditions={conditions!r} "
            f"gives {len(order)}."
        )
    any_acts = False
    for name, parts in rois:
        for i, part in enumerate(parts):
            where = f"brain region {name!r}, subject {i}"
            if isinstance(part, Activations):
                any_acts = True
                part.check_factor(conditions, "conditions")
                if cv is not None:
                    part.check_factor(cv, "cv")
                if isinstance(noise, str) and noise == "residuals":
                    check_residuals(part, f"brain ({where})")
                elif noise is not None and not isinstance(noise, str):
                    _check_noise_shape(noise, part.n_features, where)
                labels = _labels(group_conditions(part.metadata, conditions).labels)
            else:
                _check_measure(part, rdm_method, where)
                labels = _labels(_descriptor(part, conditions, where))
            _match(order, labels, conditions, ("the model", where))
    if not any_acts and (cv is not None or noise is not None):
        raise ValueError(
            "Arguments cv and noise apply to brain Activations, but every region of "
            "argument brain is given as RDMs already; leave them out."
        )
    return order


def _check_measure(rdms, rdm_method: str, where: str) -> None:
    measure = rdms.dissimilarity_measure
    if rdm_method is not None and measure != rdm_method:
        raise ValueError(
            f"Argument rdm_method={rdm_method!r} applies to brain Activations, but {where} "
            f"is given as RDMs of dissimilarity {measure!r}; leave rdm_method out or give "
            "the responses."
        )


def _check_noise_shape(noise, n_features: int, where: str) -> None:
    shape = tuple(np.shape(noise))
    if shape not in ((n_features,), (n_features, n_features)):
        raise ValueError(
            f"Argument noise must be a precision matrix of shape ({n_features}, "
            f"{n_features}) or its diagonal for {where} ({n_features} features), got shape "
            f"{shape}."
        )


def _descriptor(rdms, conditions: str, where: str) -> np.ndarray:
    desc = rdms.pattern_descriptors or {}
    if conditions not in desc:
        valid = ", ".join(k for k in desc if k != "index")
        raise ValueError(
            f"Unknown value {conditions!r} for argument conditions: {where} is given as RDMs "
            f"without that pattern descriptor. Valid values are {{{valid}}}. RDMs from "
            "dnnrsa.rsa.rdm(..., conditions=...) carry it."
        )
    return desc[conditions]


def _labels(values) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(values).tolist()]


def _listing(values) -> str:
    shown = ", ".join(repr(v) for v in values[:_SHOWN])
    return shown + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def _check_unique(labels: list, where: str, conditions: str) -> None:
    seen, dups = set(), []
    for v in labels:
        if v in seen and v not in dups:
            dups.append(v)
        seen.add(v)
    if dups:
        raise ValueError(
            f"The conditions of {where} are not unique: {conditions!r} labels "
            f"{_listing(dups)} appear more than once. Each condition needs one RDM row."
        )


def _match(order: list, labels: list, conditions: str, names) -> np.ndarray:
    """Position in ``labels`` of every label of ``order``; a ValueError naming what is
    on one side only."""
    _check_unique(labels, names[1], conditions)
    known = set(order)
    position = {v: i for i, v in enumerate(labels)}
    only_a = [v for v in order if v not in position]
    only_b = [v for v in labels if v not in known]
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"only in {names[0]}: {_listing(only_a)}")
        if only_b:
            parts.append(f"only in {names[1]}: {_listing(only_b)}")
        raise ValueError(
            f"The {conditions!r} conditions of {names[0]} and {names[1]} differ; "
            + "; ".join(parts) + ". Both sides need the same conditions (labels are "
            "compared as values: 1 and '1' differ)."
        )
    return np.array([position[v] for v in order], dtype=np.int64)


# -- RDMs --------------------------------------------------------------------------------------
def _reordered(V: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Dissimilarity vectors whose conditions ``perm[0], perm[1], ...`` become 0, 1, ..."""
    n = len(perm)
    i, j = np.triu_indices(n, k=1)
    a, b = perm[i], perm[j]
    return V[:, _pair_index(np.minimum(a, b), np.maximum(a, b), n)]


def _aligned(rdms, conditions: str, order: list, where: str) -> np.ndarray:
    perm = _match(order, _labels(_descriptor(rdms, conditions, where)), conditions,
                  ("the model", where))
    return _reordered(as_vectors(rdms, where), perm)


def _model_vector(item, model_rdm_method: str, conditions: str, order: list) -> np.ndarray:
    layer, acts = item[2], item[3]
    r = rdm(acts, method=model_rdm_method, conditions=conditions)
    return _aligned(r, conditions, order, f"model layer {layer!r}")


def _brain_vectors(parts, name, conditions: str, order: list, rdm_kwargs: dict):
    """(n_subjects, n_pairs) RDM vectors of a region in the model's condition order, and
    the dissimilarity measure they share."""
    blocks, measures = [], set()
    for i, part in enumerate(parts):
        where = f"brain region {name!r}, subject {i}"
        if isinstance(part, Activations):
            part = rdm(part, conditions=conditions, **rdm_kwargs)
        measures.add(part.dissimilarity_measure)
        blocks.append(_aligned(part, conditions, order, where))
    if len(measures) > 1:
        raise ValueError(
            f"The subjects of brain region {name!r} have RDMs of different dissimilarity "
            f"measures ({sorted(map(str, measures))}); compare like with like."
        )
    return np.vstack(blocks), measures.pop()


_VS_BEST = ("vs_best", "vs_best_ci_low", "vs_best_ci_high", "p_vs_best", "p_vs_best_holm")


def _roi_stats(M: np.ndarray, D: np.ndarray, method: str, n_boot: int, ci: float, seed,
               groups: list):
    n_sub = D.shape[0]
    missing = np.isnan(D).any(axis=0)
    if missing.any():
        # rsatoolbox's rule: a pair NaN in any RDM is left out everywhere. Marking it in
        # every RDM keeps that true in bootstrap samples that leave the subject out.
        M, D = M.copy(), D.copy()
        M[:, missing] = np.nan
        D[:, missing] = np.nan
    value = compare(M, D, method=method).mean(axis=1)
    out = {"value": value, "n_subjects": n_sub}
    nan = np.full(M.shape[0], np.nan)
    if n_sub < 2:
        out.update(ci_low=nan, ci_high=nan, ceiling=(np.nan, np.nan),
                   note="1 subject: no bootstrap interval, no test and no noise ceiling "
                        "(all need at least 2 subjects)",
                   **{c: nan for c in _VS_BEST})
        return out
    # One set of resamples (subjects and conditions, as :func:`bootstrap` with
    # over="both") gives every layer's interval and every layer-vs-best difference.
    samples = _bootstrap_samples(M, D, method, "both", n_boot, as_generator(seed))
    kept = samples[np.isfinite(samples).all(axis=1)]
    if len(kept) < 2:
        raise ValueError("Fewer than 2 usable bootstrap samples; use more conditions.")
    alpha = (1 - ci) / 2
    out.update(ci_low=np.quantile(kept, alpha, axis=0),
               ci_high=np.quantile(kept, 1 - alpha, axis=0), **_vs_best(value, kept, groups, alpha))
    nc = noise_ceiling(D, method=method)
    out.update(ceiling=(float(nc["lower"].iloc[0]), float(nc["upper"].iloc[0])), note="")
    return out


def _vs_best(value: np.ndarray, kept: np.ndarray, groups: list, alpha: float) -> dict:
    """Each layer's difference from the best layer of its network seed: the difference,
    its percentile bootstrap interval, a two-sided bootstrap p (how often the resampled
    difference reaches 0, doubled) and Holm's adjustment over the seed's other layers.
    The best layer itself has difference 0 and no test."""
    out = {c: np.full(len(value), np.nan) for c in _VS_BEST}
    n = len(kept)
    for members in groups:
        best = members[int(np.argmax(value[members]))]
        others = [k for k in members if k != best]
        out["vs_best"][best] = 0.0
        for k in others:
            d = kept[:, k] - kept[:, best]
            out["vs_best"][k] = value[k] - value[best]
            out["vs_best_ci_low"][k] = np.quantile(d, alpha)
            out["vs_best_ci_high"][k] = np.quantile(d, 1 - alpha)
            tail = min(int((d >= 0).sum()), int((d <= 0).sum()))
            out["p_vs_best"][k] = min(1.0, 2 * (1 + tail) / (1 + n))
        if others:
            out["p_vs_best_holm"][others] = holm(out["p_vs_best"][others])
    return out
