"""Categorical model RDMs: 0 for two conditions at the same level of a factor, 1 otherwise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._metadata import factor_codes
from .._utils import format_choices, keyword_only, logger
from ._conditions import factor_table, group_conditions, normalise_factors

__all__ = ["factor_rdms", "DEFAULT_FACTORS"]

DEFAULT_FACTORS = ("identity", "expression", "viewpoint", "sex")


@keyword_only("conditions", "factors")
def factor_rdms(
    stimuli_or_acts,
    *,
    conditions: str | Sequence[str] | None = "identity",
    factors: Sequence[str] | None = None,
):
    """Model RDMs of the stimulus factors over the conditions of an RDM.

    For each factor, two conditions are at dissimilarity 0 when they share the factor's
    level and 1 otherwise. The conditions, and their order, are those
    :func:`dnnrsa.rsa.rdm` gives for the same ``conditions``.

    Parameters
    ----------
    stimuli_or_acts : StimulusSet, Activations, rsatoolbox Dataset or RDMs, or DataFrame
        Where the factor table comes from. With an ``RDMs`` object (e.g. the data RDM
        these models are for), its pattern descriptors are the conditions and
        ``conditions`` is ignored.
    conditions : str, tuple of str, or None
        The factor(s) defining the conditions, as in :func:`dnnrsa.rsa.rdm`. Keyword-only
        (passing it, or ``factors``, positionally still works in this release, with a
        FutureWarning).
    factors : sequence of str, optional
        The factors to model. A factor must be a column of the metadata and take one
        level within every condition (``viewpoint`` cannot be modelled when the
        conditions are identity x expression averages over viewpoints). Default:
        those of ``("identity", "expression", "viewpoint", "sex")`` that qualify and
        are not constant over the conditions.

    Returns
    -------
    rsatoolbox.rdm.RDMs
        One 0/1 RDM per factor; ``rdm_descriptors["name"]`` is the factor,
        ``pattern_descriptors`` are those of :func:`dnnrsa.rsa.rdm`.

    Raises
    ------
    ValueError
        For a factor that is not in the metadata, or that varies within a condition.
    """
    from rsatoolbox.rdm import RDMs

    desc, cond_name, combined = _condition_table(stimuli_or_acts, conditions)
    n_cond = len(desc["index"])
    explicit = factors is not None
    if explicit:
        factors = normalise_factors(factors, "factors")
        if factors is None:
            raise ValueError("Argument factors must name at least one factor.")
    else:
        factors = tuple(f for f in DEFAULT_FACTORS if f in desc)
    vectors, names = [], []
    i, j = np.triu_indices(n_cond, k=1)
    for f in factors:
        if f not in desc:
            raise _unusable(f, stimuli_or_acts, desc, cond_name, combined)
        col = pd.Series(desc[f], name=f)
        n_missing = int(col.isna().sum())
        if n_missing:
            raise ValueError(
                f"Factor {f!r} has no level for {n_missing} of {n_cond} conditions (a "
                "missing value in the pattern descriptors); it cannot be modelled. Leave it "
                "out of factors."
            )
        codes = factor_codes(col, argument="factors")
        vec = (codes[i] != codes[j]).astype(np.float64)
        if not explicit and (vec.min() == vec.max()):
            logger.debug("factor_rdms: skipping %r, constant over the conditions", f)
            continue
        vectors.append(vec)
        names.append(f)
    if not vectors:
        raise ValueError(
            "No factor can be modelled over these conditions: none of "
            f"{format_choices(DEFAULT_FACTORS)} is in the metadata, constant within every "
            "condition and varying between conditions. Give factors=... explicitly."
        )
    return RDMs(
        dissimilarities=np.vstack(vectors),
        dissimilarity_measure="categorical",
        descriptors={"conditions": cond_name},
        rdm_descriptors={"name": names},
        pattern_descriptors={k: np.array(v, copy=True) for k, v in desc.items()},
    )


def _condition_table(obj, conditions):
    if hasattr(obj, "pattern_descriptors") and hasattr(obj, "dissimilarities"):
        desc = {k: np.asarray(v) for k, v in obj.pattern_descriptors.items()}
        name = (obj.descriptors or {}).get("conditions", "index")
        parts = name.split("_")
        combined = name if len(parts) > 1 and all(p in desc for p in parts) else None
        return desc, name, combined
    meta = factor_table(obj)
    if meta is None:
        raise TypeError(
            "Argument stimuli_or_acts must be a StimulusSet, Activations, rsatoolbox "
            f"Dataset or RDMs, or a DataFrame of factors; got {type(obj).__name__}."
        )
    cond = group_conditions(meta, conditions)
    return cond.descriptors, cond.name, (cond.name if len(cond.factors) > 1 else None)


def _unusable(factor, obj, desc, cond_name, combined) -> ValueError:
    usable = [k for k in desc if k not in ("index", combined)]
    meta = factor_table(obj)
    if meta is not None and factor in meta.columns:
        return ValueError(
            f"Factor {factor!r} varies within the conditions {cond_name!r} (they average "
            f"over several {factor} levels), so it has no model RDM over them. Usable "
            f"factors here: {format_choices(usable)}; or include {factor!r} in conditions."
        )
    valid = [c for c in (usable if meta is None else meta.columns) if c != "path"]
    return ValueError(
        f"Unknown value {factor!r} for argument factors: it is not a factor of the metadata. "
        f"Valid values are {format_choices(valid)}."
    )
