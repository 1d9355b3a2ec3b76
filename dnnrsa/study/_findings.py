"""The paper's findings, each decided by its test across network seeds.

:func:`findings` runs the study's seven claims (Welch's t for trained vs untrained
networks, a paired t for two layers of one network), adjusts their p values with Holm's
step-down procedure and gives a verdict per claim; :func:`format_finding` renders one
verdict as one line of Markdown.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._paper import PAPER_LAYERS
from ._stats import KEYS, holm, paired_test, per_seed, welch_test

__all__ = ["FINDINGS_COLUMNS", "findings", "format_finding"]

#: Columns of the table :func:`findings` returns, in order.
FINDINGS_COLUMNS = [
    "claim", "test", "network_a", "layer_a", "network_b", "layer_b", "target",
    "n_a", "n_b", "mean_a", "mean_b", "difference", "se", "ci_low", "ci_high",
    "t", "df", "p", "p_holm", "verdict", "reason",
]

_ADJECTIVE = {"expression": "expression-trained", "identity": "identity-trained",
              "scene": "scene-trained", "untrained": "untrained"}


# --------------------------------------------------------------------------- findings


def _claims(layers: Sequence[str]) -> list[dict]:
    top, first = layers[-1], layers[0]
    welch = [
        ("expression", "identity", "carries identity"),
        ("identity", "expression", "carries expression"),
        ("scene", "identity", "carries identity"),
        ("scene", "expression", "carries expression"),
        ("expression", "expression", "reads out expression"),
        ("identity", "identity", "reads out identity"),
    ]
    claims = []
    for net, target, verb in welch:
        own = " (own task)" if net == target else ""
        claims.append(dict(
            claim=f"{_ADJECTIVE[net].capitalize()} {top} {verb} better than untrained{own}",
            test="Welch's t", network_a=net, layer_a=top, network_b="untrained",
            layer_b=top, target=target))
    claims.append(dict(
        claim=(f"In the expression-trained net, identity is read out better from {top} "
               f"than from {first}"),
        test="paired t", network_a="expression", layer_a=top, network_b="expression",
        layer_b=first, target="identity"))
    return claims


def _check_layers(layers: Any) -> tuple[str, ...]:
    # a bare string would iterate into characters: refuse it rather than guess
    if isinstance(layers, str) or not isinstance(layers, Iterable):
        raise TypeError(f"Argument layers must be a sequence of layer names (first to top), "
                        f"got {layers!r}.")
    layers = tuple(layers)
    if not layers or not all(isinstance(x, str) for x in layers):
        raise ValueError(f"Argument layers must be a non-empty sequence of layer names, "
                         f"got {layers!r}.")
    return layers


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def findings(
    results: pd.DataFrame,
    layers: Sequence[str] = PAPER_LAYERS,
    *,
    alpha: float = 0.05,
    min_seeds: int = 3,
) -> pd.DataFrame:
    """Test the paper's claims on this run's seeds and give a verdict on each.

    Parameters
    ----------
    results : pandas.DataFrame
        The sweep's tidy per-fold table (see :func:`per_seed`). Rows without a seed (the
        pixel control) are ignored: a single run is not a sample of seeds.
    layers : sequence of str
        Layers from first to top; claims use the top layer ``layers[-1]``, and the
        layer comparison uses ``layers[0]``.
    alpha : float, default 0.05
        Family-wise error rate, applied to Holm-adjusted p values.
    min_seeds : int, default 3
        Fewest seeds per group (pairs, for the paired claim) for a verdict other than
        "inconclusive". At least 2.

    Returns
    -------
    pandas.DataFrame
        One row per claim, in the paper's order: expression-trained top vs untrained for
        identity; identity-trained vs untrained for expression; scene-trained vs
        untrained for identity, then expression; expression-trained vs untrained for
        expression and identity-trained vs untrained for identity (own tasks), all by
        Welch's t; and, paired by seed, identity from the top vs the first layer of the
        expression-trained net. Columns are :data:`FINDINGS_COLUMNS` (the test's
        numbers, see :class:`SeedTest`, plus ``p_holm``, ``verdict`` and ``reason``).

    Notes
    -----
    Holm's adjustment runs over every claim with a finite p, including those later
    called inconclusive for too few seeds, which can only make the others more
    conservative. Verdicts:

    * "not tested": a network, layer or target of the claim is absent (numbers NaN
      where the absent group is needed; n counts what is present);
    * "inconclusive": fewer than ``min_seeds`` seeds (or pairs) in a group, an
      undefined p (the reason says why), or ``p_holm >= alpha``;
    * "holds": ``p_holm < alpha`` and the difference is positive;
    * "reversed": ``p_holm < alpha`` and the difference is negative, i.e. the data
      support the opposite of the claim.
    """
    layers = _check_layers(layers)
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"Argument alpha must be a number in (0, 1), got {alpha!r}.")
    if isinstance(min_seeds, bool) or not isinstance(min_seeds, numbers.Integral):
        raise TypeError(f"Argument min_seeds must be an integer >= 2, got {min_seeds!r}.")
    if min_seeds < 2:
        raise ValueError(f"Argument min_seeds must be an integer >= 2 (a t test needs two "
                         f"seeds per group), got {min_seeds}.")

    seeds = per_seed(results)
    seeds = seeds[seeds["seed"].notna()]
    accuracy = seeds["accuracy"].to_numpy(float)
    seed_ids = seeds["seed"].to_numpy(object)
    positions: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(*(seeds[k].to_numpy(object) for k in KEYS))):
        positions.setdefault(key, []).append(i)
    cells = {key: (accuracy[i], seed_ids[i]) for key, i in positions.items()}
    empty = (np.empty(0), np.empty(0, dtype=object))

    rows = []
    for c in _claims(layers):
        acc_a, seed_a = cells.get((c["network_a"], c["layer_a"], c["target"]), empty)
        acc_b, seed_b = cells.get((c["network_b"], c["layer_b"], c["target"]), empty)
        absent = [f"{_ADJECTIVE.get(net, net)} {layer}"
                  for net, layer, acc in ((c["network_a"], c["layer_a"], acc_a),
                                          (c["network_b"], c["layer_b"], acc_b))
                  if not np.isfinite(acc).any()]
        reason = f"no {c['target']} results for {' or '.join(absent)} in this run"
        if c["test"] == "paired t" and c["layer_a"] == c["layer_b"]:
            absent = [c["layer_a"]]
            reason = f"layers names a single layer ({c['layer_a']}): nothing to compare"
        if absent:
            na, nb = int(np.isfinite(acc_a).sum()), int(np.isfinite(acc_b).sum())
            rows.append(dict(
                c, n_a=na, n_b=nb,
                mean_a=float(np.nanmean(acc_a)) if na else math.nan,
                mean_b=float(np.nanmean(acc_b)) if nb else math.nan,
                difference=math.nan, se=math.nan, ci_low=math.nan, ci_high=math.nan,
                t=math.nan, df=math.nan, p=math.nan, verdict="not tested", reason=reason))
            continue
        if c["test"] == "paired t":
            res = paired_test(acc_a, acc_b, seed_a, seed_b)
        else:
            res = welch_test(acc_a, acc_b)
        fields = res.as_dict()
        note = fields.pop("note")
        fields.pop("test")
        rows.append(dict(c, **fields, verdict="", reason=note))

    adjusted = holm([r["p"] if r["verdict"] != "not tested" else math.nan for r in rows])
    for r, p_holm in zip(rows, adjusted):
        r["p_holm"] = float(p_holm)
        if r["verdict"] == "not tested":
            continue
        what = "pairs" if r["test"] == "paired t" else "seeds per group"
        if min(r["n_a"], r["n_b"]) < min_seeds:
            r["verdict"], r["reason"] = "inconclusive", f"fewer than {min_seeds} {what}"
        elif not np.isfinite(r["p"]):
            r["verdict"], r["reason"] = "inconclusive", r["reason"] or "p is undefined"
        elif p_holm >= alpha:
            r["verdict"], r["reason"] = "inconclusive", f"p_holm = {_fmt_p(p_holm)} >= {alpha:g}"
        elif r["difference"] > 0:
            r["verdict"], r["reason"] = "holds", f"p_holm = {_fmt_p(p_holm)} < {alpha:g}"
        else:
            r["verdict"] = "reversed"
            r["reason"] = (f"p_holm = {_fmt_p(p_holm)} < {alpha:g} with a negative "
                           "difference: the data support the opposite")
    return pd.DataFrame(rows, columns=FINDINGS_COLUMNS)


def _num(v: Any, spec: str, scale: float = 1.0) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return format(scale * v, spec) if np.isfinite(v) else "n/a"


def format_finding(row: Mapping | pd.Series) -> str:
    """One row of :func:`findings` as one line of Markdown.

    Parameters
    ----------
    row : mapping or pandas.Series
        A row of the table :func:`findings` returns.

    Returns
    -------
    str
        ``"<claim>: **<verdict>** (<means>; difference ... points (SE ...), 95% CI [...],
        <test>(<df>) = <t>, p = ..., Holm p = ...; <n> vs <n> seeds)"``, with the reason
        added for "inconclusive" and "not tested". Accuracies and differences are shown
        in percentage points; any undefined number reads "n/a" (never "nan", never 0).
    """
    if not isinstance(row, (Mapping, pd.Series)):
        raise TypeError(f"Argument row must be a row of findings() (a mapping or pandas "
                        f"Series), got {type(row).__name__}.")
    missing = [c for c in FINDINGS_COLUMNS if c not in row]
    if missing:
        raise ValueError(f"Argument row lacks the field(s) {missing}; it needs "
                         f"{FINDINGS_COLUMNS}.")
    paired = row["test"] == "paired t"
    name_a = row["layer_a"] if paired else _ADJECTIVE.get(row["network_a"], row["network_a"])
    name_b = row["layer_b"] if paired else _ADJECTIVE.get(row["network_b"], row["network_b"])
    means = (f"{name_a} {_num(row['mean_a'], '.1f', 100)}% vs "
             f"{name_b} {_num(row['mean_b'], '.1f', 100)}%").replace("n/a%", "n/a")
    df = row["df"]
    df_text = (_num(df, ".0f") if paired or (np.isfinite(float(df)) and float(df).is_integer())
               else _num(df, ".1f"))
    stat = (f"{row['test']}({df_text}) = {_num(row['t'], '.2f')}"
            if np.isfinite(float(row["t"])) else f"{row['test']} = n/a")
    n_a, n_b = int(row["n_a"]), int(row["n_b"])
    if paired and row["verdict"] != "not tested":
        n_text = f"{n_a} pair{'' if n_a == 1 else 's'}"
    else:
        n_text = f"{n_a} vs {n_b} seeds"
    diff = _num(row["difference"], "+.1f", 100)
    numbers_ = (f"{means}; difference {diff}{'' if diff == 'n/a' else ' points'} "
                f"(SE {_num(row['se'], '.1f', 100)}), 95% CI "
                f"[{_num(row['ci_low'], '+.1f', 100)}, {_num(row['ci_high'], '+.1f', 100)}], "
                f"{stat}, p = {_fmt_p(float(row['p']))}, "
                f"Holm p = {_fmt_p(float(row['p_holm']))}; {n_text}")
    verdict = row["verdict"]
    explain = verdict in ("inconclusive", "not tested") and row["reason"]
    why = f": {row['reason']}" if explain else ""
    return f"{row['claim']}: **{verdict}**{why} ({numbers_})"
