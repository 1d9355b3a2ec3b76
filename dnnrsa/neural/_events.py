"""Events tables of BOLD runs (BIDS ``events.tsv``: ``onset``, ``duration``,
``trial_type``) and the factors read out of trial types: a pattern such as
``"{identity}_{expression}"`` or a table with one row per trial type."""

from __future__ import annotations

import os
import re
import string
from typing import Any

import numpy as np
import pandas as pd

from ._inputs import read_tsv

__all__ = ["check_events", "check_factors", "factor_table", "load_events"]

REQUIRED = ("onset", "duration", "trial_type")
#: Metadata columns that `from_runs` writes itself; factors must not take these names.
RESERVED = ("run", "trial_type", "trial", "onset")
_N_SHOWN = 5


def load_events(events: Any, n_runs: int) -> tuple[list[pd.DataFrame], list[str | None]]:
    """One events table per run (DataFrames or TSV paths) and their file names."""
    if isinstance(events, (pd.DataFrame, str, os.PathLike)):
        events = [events]
    if not isinstance(events, (list, tuple)):
        raise TypeError(
            "Argument events must be a DataFrame or an events.tsv path per run (a list for "
            f"several runs), got {type(events).__name__}."
        )
    if len(events) != n_runs:
        raise ValueError(
            f"Argument events has {len(events)} table(s) but bold has {n_runs} run(s); give "
            "one events table per run, in the order of the runs."
        )
    tables, labels = [], []
    for i, ev in enumerate(events):
        if isinstance(ev, pd.DataFrame):
            tables.append(ev.reset_index(drop=True))
            labels.append(None)
        elif isinstance(ev, (str, os.PathLike)):
            tables.append(read_tsv(ev, f"events[{i}]", str_columns=("trial_type",)))
            labels.append(str(ev))
        else:
            raise TypeError(f"Argument events[{i}] must be a DataFrame or an events.tsv path, "
                            f"got {type(ev).__name__}.")
    return tables, labels


def _where(run: int, label: str | None) -> str:
    return f"run {run} ({'in-memory table' if label is None else label})"


def check_events(table: pd.DataFrame, run: int, label: str | None, n_scans: int,
                 t_r: float) -> pd.DataFrame:
    """The ``onset``, ``duration``, ``trial_type`` columns of one run's events, checked:
    present, complete, numeric, and every onset inside the run."""
    where = _where(run, label)
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(
            f"The events of {where} lack column(s) {missing}; it has columns "
            f"{list(map(str, table.columns))}. Events need {list(REQUIRED)} (BIDS events.tsv)."
        )
    if len(table) == 0:
        raise ValueError(f"The events of {where} have no rows; every run needs events.")
    out = table[list(REQUIRED)].copy()
    for col in ("onset", "duration"):
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna() & out[col].notna()
        if bad.any() or not np.isfinite(values.dropna()).all():
            raise ValueError(f"Column {col!r} of the events of {where} must hold numbers (in "
                             f"seconds), got {out[col][bad].tolist()[:_N_SHOWN]}.")
        if values.isna().any():
            rows = np.flatnonzero(values.isna())[:_N_SHOWN].tolist()
            raise ValueError(f"Column {col!r} of the events of {where} is missing (n/a) in "
                             f"trial(s) {rows}; every trial needs an {col}.")
        out[col] = values.astype(np.float64)
    tt = out["trial_type"]
    if tt.isna().any():
        rows = np.flatnonzero(tt.isna())[:_N_SHOWN].tolist()
        raise ValueError(f"Column 'trial_type' of the events of {where} is missing (n/a) in "
                         f"trial(s) {rows}; every trial needs a trial_type.")
    not_text = [v for v in tt.tolist() if not isinstance(v, str) or not v]
    if not_text:
        raise TypeError(
            f"Column 'trial_type' of the events of {where} must hold non-empty strings (they "
            f"name the GLM regressors), got {not_text[:_N_SHOWN]}. Convert it, e.g. "
            "events['trial_type'] = events['trial_type'].astype(str)."
        )
    out["trial_type"] = tt.astype(object)
    if (out["duration"] < 0).any():
        rows = np.flatnonzero(out["duration"] < 0)[:_N_SHOWN].tolist()
        raise ValueError(f"The events of {where} have negative durations in trial(s) {rows}.")
    length = n_scans * t_r
    outside = (out["onset"] < 0) | (out["onset"] >= length)
    if outside.any():
        trial = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"Trial {trial} of {where} has onset {out['onset'][trial]:g} s, outside the run: "
            f"the run has {n_scans} scans x t_r {t_r:g} s = {length:g} s, and onsets must be "
            f"in [0, {length:g}). {int(outside.sum())} trial(s) are outside; check t_r and the "
            "onsets' units (seconds from the first scan)."
        )
    return out


def check_factors(factors: Any):
    """``factors`` checked before any work: None, a compiled pattern (regex, names) for a
    pattern string, or a DataFrame with a ``trial_type`` column and factor columns."""
    if factors is None:
        return None
    if isinstance(factors, str):
        return _compile_pattern(factors)
    if isinstance(factors, pd.DataFrame):
        if "trial_type" not in factors.columns:
            raise ValueError(f"Argument factors (a table) needs a 'trial_type' column; it has "
                             f"{list(map(str, factors.columns))}.")
        names = [str(c) for c in factors.columns if c != "trial_type"]
        if not names:
            raise ValueError("Argument factors (a table) has no factor column besides "
                             "'trial_type'.")
        _check_names(names)
        tt = factors["trial_type"]
        twice = sorted(set(tt[tt.duplicated()].astype(str)))
        if twice:
            raise ValueError(f"Argument factors lists trial_type(s) {twice[:_N_SHOWN]} more "
                             "than once; give one row per trial_type.")
        return factors.reset_index(drop=True)
    raise TypeError(
        "Argument factors must be None, a pattern string such as '{identity}_{expression}' "
        f"or a DataFrame with a trial_type column, got {type(factors).__name__}."
    )


def _check_names(names) -> None:
    clash = [n for n in names if n in RESERVED]
    if clash:
        raise ValueError(
            f"Argument factors names factor(s) {clash}, which from_runs writes itself "
            f"({', '.join(RESERVED)}); rename them."
        )


def _compile_pattern(pattern: str):
    try:
        pieces = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise ValueError(f"Argument factors: cannot read the pattern {pattern!r} ({exc}). "
                         "Write fields as {name}, e.g. '{identity}_{expression}'.") from exc
    regex, names = "", []
    for literal, field, spec, conversion in pieces:
        regex += re.escape(literal)
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(
                f"Argument factors: field {{{field}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} of the pattern {pattern!r} must be a plain "
                "name such as {identity}."
            )
        if field in names:
            raise ValueError(f"Argument factors: the pattern {pattern!r} uses {{{field}}} "
                             "twice.")
        names.append(field)
        regex += f"(?P<{field}>.+?)"
    if not names:
        raise ValueError(f"Argument factors: the pattern {pattern!r} has no {{name}} field; "
                         "write it like '{identity}_{expression}'.")
    _check_names(names)
    return pattern, re.compile(regex, re.DOTALL), names


def factor_table(factors, trial_types: list[str]) -> pd.DataFrame | None:
    """One row per trial type (``trial_type`` plus the factor columns), or None."""
    if factors is None:
        return None
    if isinstance(factors, pd.DataFrame):
        present = set(factors["trial_type"].tolist())
        missing = [t for t in trial_types if t not in present]
        if missing:
            raise ValueError(
                f"Argument factors has no row for trial_type(s) {missing[:_N_SHOWN]}"
                f"{' ...' if len(missing) > _N_SHOWN else ''} ({len(missing)} of "
                f"{len(trial_types)} missing); give one row per trial_type of the events."
            )
        return factors.set_index("trial_type").loc[trial_types].reset_index()
    pattern, regex, names = factors
    rows, unmatched = [], []
    for t in trial_types:
        m = regex.fullmatch(t)
        if m is None:
            unmatched.append(t)
        else:
            rows.append({"trial_type": t, **m.groupdict()})
    if unmatched:
        raise ValueError(
            f"{len(unmatched)} trial_type(s) do not match the factors pattern {pattern!r}: "
            f"{unmatched[:_N_SHOWN]}{' ...' if len(unmatched) > _N_SHOWN else ''}. Each "
            "trial_type must match it whole, every field a non-empty part."
        )
    return pd.DataFrame(rows, columns=["trial_type", *names])

