"""Everything random or checked before a face is rendered: the argument checks, the
random streams, the people of each generator, their labels, and the nuisance (pose,
position, lighting, background, noise) of studio and in-the-wild pictures."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..._utils import check_choice, check_positive_int, format_choices
from ._identity import _identity_tables
from ._noise import _noise_seeds
from ._renderer import _NUISANCE
from ._shape import _HALF_EXTENT
from ._vocabulary import _MIN_SIZE, _STREAMS, _VIEW_ORDER, EXPRESSIONS, SESSIONS, VIEWPOINTS

# ---------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------


def _check_codes(name: str, value: Any, valid: Sequence[str]) -> tuple[str, ...]:
    """Validate a collection of codes (or one code); return them in ``valid``'s order."""
    if isinstance(value, str):
        value = (value,)
    try:
        values = list(value)
    except TypeError:
        raise ValueError(
            f"Argument {name} must be a sequence of codes from {format_choices(valid)}, "
            f"got {value!r}."
        ) from None
    if not values:
        raise ValueError(f"Argument {name} is empty; give at least one of {format_choices(valid)}.")
    unknown = [v for v in values if not isinstance(v, str) or v not in valid]
    if unknown:
        raise ValueError(
            f"Unknown value(s) {unknown} in argument {name}. Valid values are "
            f"{format_choices(valid)}."
        )
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"Argument {name} lists {dupes} more than once; give each code once.")
    return tuple(v for v in valid if v in values)


def _check_size(size: Any) -> int:
    return check_positive_int("size", size, minimum=_MIN_SIZE)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"Argument seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def _check_jitter(yaw_jitter: Any) -> float:
    if (
        isinstance(yaw_jitter, bool)
        or not isinstance(yaw_jitter, numbers.Real)
        or not 0.0 <= float(yaw_jitter) <= 90.0
    ):
        raise ValueError(
            f"Argument yaw_jitter must be a number of degrees in [0, 90], got {yaw_jitter!r}."
        )
    return float(yaw_jitter)


def _check_wild(split: Any, size: Any, seed: Any, yaw_jitter: Any) -> tuple[str, int, int, float]:
    """The arguments every in-the-wild face set shares, checked in this order."""
    split = check_choice("split", split, ("train", "test"))
    return split, _check_size(size), _check_seed(seed), _check_jitter(yaw_jitter)


# ---------------------------------------------------------------------------------------
# random streams and people
# ---------------------------------------------------------------------------------------


def _stream_rng(seed: int, *key: int) -> np.random.Generator:
    """The generator of one random stream: ``key`` starts with the stream number of
    ``_STREAMS`` and goes on to name the person, sitting or block within it."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _random_people(seed: int, stream: int, n: int) -> pd.DataFrame:
    """Identity parameters of ``n`` people of a stream; person ``i`` depends only on
    (seed, stream, i), so ``n`` people are the first ``n`` of any bigger draw."""
    seqs = [np.random.SeedSequence(seed, spawn_key=(stream, 0, i)) for i in range(n)]
    sexes = [int(ss.spawn(1)[0].generate_state(1)[0] & 1) for ss in seqs]
    return _identity_tables(seqs, sexes)


def _kdef_people(seed: int, n: int) -> tuple[list[tuple[int, int]], pd.DataFrame]:
    """The people of :func:`synthetic_faces`: (sex, number) pairs (women first, one
    more woman when ``n`` is odd) and their identity parameters. Person ``F03`` depends
    only on (seed, female, 3)."""
    n_f = (n + 1) // 2
    people = [(0, k) for k in range(1, n_f + 1)] + [(1, k) for k in range(1, n - n_f + 1)]
    stream = _STREAMS["faces"]
    seqs = [np.random.SeedSequence(seed, spawn_key=(stream, sex, k, 0)) for sex, k in people]
    return people, _identity_tables(seqs, [sex for sex, _ in people])


def _labels(prefix: str, n: int) -> list[str]:
    """Names of ``n`` people: the prefix and a number from 1, at least four digits."""
    width = max(4, len(str(n)))
    return [f"{prefix}{k + 1:0{width}d}" for k in range(n)]


# ---------------------------------------------------------------------------------------
# nuisance draws
# ---------------------------------------------------------------------------------------

_PX48 = 2.0 * _HALF_EXTENT / 48.0  # one pixel of a 48 x 48 image, in head units


def _free_nuisance(rng: np.random.Generator, n: int, yaw_jitter: float) -> dict[str, np.ndarray]:
    """Nuisance of in-the-wild training images: random yaw, position, scale, lighting,
    background and noise, one draw per image."""
    return {
        "yaw": rng.uniform(-yaw_jitter, yaw_jitter, n),
        "shift_x": np.clip(rng.normal(0.0, 1.5, n), -4, 4) * _PX48,
        "shift_y": np.clip(rng.normal(0.0, 1.5, n), -4, 4) * _PX48,
        "scale": np.clip(rng.normal(1.0, 0.06, n), 0.85, 1.15),
        "light_az": rng.uniform(-50.0, 50.0, n),
        "light_el": rng.uniform(0.0, 55.0, n),
        "light_int": rng.uniform(0.85, 1.4, n),
        "ambient": rng.uniform(0.15, 0.45, n),
        "bg": rng.uniform(0.05, 0.95, n),
        "bg_grad": rng.normal(0.0, 0.08, n),
        "noise": rng.uniform(0.0, 0.035, n),
        "noise_seed": _noise_seeds(rng, n),
    }


def _studio_nuisance(
    seed: int, people: Sequence[tuple[int, int]], cells: Sequence[tuple[int, str, str, str]]
) -> dict[str, np.ndarray]:
    """Nuisance of the KDEF-like studio pictures.

    Parameters
    ----------
    seed : int
        Seed of the random streams.
    people : sequence of (sex, number)
        The people, as :func:`_kdef_people` gives them.
    cells : sequence of (person, expression, viewpoint, session)
        One entry per picture: the row of ``people`` and the three codes.

    Returns
    -------
    dict of str -> ndarray (len(cells),)
        The ``_NUISANCE`` columns.
    """
    stream = _STREAMS["faces"]
    n_e_all, n_v_all = len(EXPRESSIONS), len(_VIEW_ORDER)
    # per person and session: a base draw, plus per-picture jitter for every expression
    # x viewpoint (drawn for all of them, so that subsets are stable)
    sittings = {}
    for i, (sex, k) in enumerate(people):
        for si, letter in enumerate(SESSIONS):
            rng = _stream_rng(seed, stream, sex, k, 1, si)
            # a studio: the same backdrop and key light for everyone, re-set up a little
            # differently for each sitting
            base = {
                "shift_x": float(np.clip(rng.normal(0.0, 0.45), -1.2, 1.2)),
                "shift_y": float(np.clip(rng.normal(0.0, 0.45), -1.2, 1.2)),
                "scale": float(np.clip(rng.normal(1.0, 0.012), 0.97, 1.03)),
                "light_az": float(10.0 + rng.uniform(-8.0, 8.0)),
                "light_el": float(30.0 + rng.uniform(-5.0, 5.0)),
                "light_int": float(1.15 * rng.uniform(0.92, 1.08)),
                "ambient": float(rng.uniform(0.27, 0.33)),
                "bg": float(0.5 + rng.normal(0.0, 0.02)),
                "bg_grad": float(rng.normal(0.0, 0.01)),
                "noise": float(rng.uniform(0.005, 0.015)),
            }
            jit = {
                "jx": rng.normal(0.0, 0.15, (n_e_all, n_v_all)),
                "jy": rng.normal(0.0, 0.15, (n_e_all, n_v_all)),
                "jl": rng.normal(1.0, 0.02, (n_e_all, n_v_all)),
                "seed": _noise_seeds(rng, (n_e_all, n_v_all)),
            }
            sittings[i, letter] = (base, jit)

    cols = {name: [] for name in _NUISANCE}
    for i, e, v, letter in cells:
        base, jit = sittings[i, letter]
        ei, vi = EXPRESSIONS.index(e), _VIEW_ORDER.index(v)
        cols["yaw"].append(VIEWPOINTS[v])
        cols["shift_x"].append((base["shift_x"] + jit["jx"][ei, vi]) * _PX48)
        cols["shift_y"].append((base["shift_y"] + jit["jy"][ei, vi]) * _PX48)
        cols["light_int"].append(base["light_int"] * jit["jl"][ei, vi])
        cols["noise_seed"].append(jit["seed"][ei, vi])
        for name in ("scale", "light_az", "light_el", "ambient", "bg", "bg_grad", "noise"):
            cols[name].append(base[name])
    nuisance = {name: np.asarray(vals) for name, vals in cols.items()}
    nuisance["noise_seed"] = nuisance["noise_seed"].astype(np.uint64)
    return nuisance
