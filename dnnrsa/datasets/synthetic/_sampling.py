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


def _check_turned(turned: Any) -> float:
    if (
        isinstance(turned, bool)
        or not isinstance(turned, numbers.Real)
        or not 0.0 <= float(turned) <= 1.0
    ):
        raise ValueError(
            f"Argument turned must be a fraction of the pictures in [0, 1], got {turned!r}; "
            "0 keeps every face within +-yaw_jitter."
        )
    return float(turned)


def _check_wild(
    split: Any, size: Any, seed: Any, yaw_jitter: Any, turned: Any
) -> tuple[str, int, int, float, float]:
    """The arguments every in-the-wild face set shares, checked in this order."""
    split = check_choice("split", split, ("train", "test"))
    return (split, _check_size(size), _check_seed(seed), _check_jitter(yaw_jitter),
            _check_turned(turned))


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


# how far the turned minority of in-the-wild faces turns (degrees either way)
_TURNED_YAW = 60.0


def _free_nuisance(
    rng: np.random.Generator, n: int, yaw_jitter: float, turned: float
) -> dict[str, np.ndarray]:
    """Nuisance of in-the-wild training images: random yaw, position, scale, lighting,
    background and noise, one draw per image.

    Most faces are near-frontal (yaw uniform in +-``yaw_jitter``); a fraction ``turned``
    of them, as the minority of turned faces in FER2013 or CelebA, has its yaw uniform
    in +-60 degrees (or +-``yaw_jitter`` if that is wider)."""
    near = rng.uniform(-yaw_jitter, yaw_jitter, n)
    wide = max(yaw_jitter, _TURNED_YAW)
    far = rng.uniform(-wide, wide, n)
    yaw = np.where(rng.random(n) < turned, far, near)
    return {
        "yaw": yaw,
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
    # A session is one set-up of the studio for everyone photographed in it (KDEF shot
    # series A and B): key light, ambient, backdrop and sensor noise level. The studio's
    # fixed lights and backdrop are set up again, so the two differ only a little. Drawn from a
    # stream of its own (key 2 is no sex), so it never depends on who is in the set.
    studio = {}
    for si, letter in enumerate(SESSIONS):
        rng = _stream_rng(seed, stream, 2, si)
        studio[letter] = {
            "light_az": float(10.0 + rng.uniform(-3.0, 3.0)),
            "light_el": float(30.0 + rng.uniform(-2.0, 2.0)),
            "light_int": float(1.15 * rng.uniform(0.97, 1.03)),
            "ambient": float(rng.uniform(0.29, 0.31)),
            "bg": float(0.5 + rng.normal(0.0, 0.01)),
            "bg_grad": float(rng.normal(0.0, 0.005)),
            "noise": float(rng.uniform(0.008, 0.012)),
        }
    # Where the sitter is in the frame (position, distance) and the flash's small
    # flicker change with every single picture and are drawn independently for each one;
    # nothing is shared by a person's pictures of a sitting, so nothing but the face tags
    # the person. Each person x session stream draws every expression x viewpoint (so
    # that subsets are stable).
    shots = {}
    for i, (sex, k) in enumerate(people):
        for si, letter in enumerate(SESSIONS):
            rng = _stream_rng(seed, stream, sex, k, 1, si)
            grid = (n_e_all, n_v_all)
            shots[i, letter] = {
                "shift_x": np.clip(rng.normal(0.0, 0.5, grid), -1.5, 1.5),
                "shift_y": np.clip(rng.normal(0.0, 0.5, grid), -1.5, 1.5),
                "scale": np.clip(rng.normal(1.0, 0.012, grid), 0.97, 1.03),
                "flicker": np.clip(rng.normal(1.0, 0.04, grid), 0.9, 1.1),
                "seed": _noise_seeds(rng, grid),
            }

    cols = {name: [] for name in _NUISANCE}
    for i, e, v, letter in cells:
        base, shot = studio[letter], shots[i, letter]
        at = EXPRESSIONS.index(e), _VIEW_ORDER.index(v)
        cols["yaw"].append(VIEWPOINTS[v])
        cols["shift_x"].append(shot["shift_x"][at] * _PX48)
        cols["shift_y"].append(shot["shift_y"][at] * _PX48)
        cols["scale"].append(shot["scale"][at])
        cols["light_int"].append(base["light_int"] * shot["flicker"][at])
        cols["noise_seed"].append(shot["seed"][at])
        for name in ("light_az", "light_el", "ambient", "bg", "bg_grad", "noise"):
            cols[name].append(base[name])
    nuisance = {name: np.asarray(vals) for name, vals in cols.items()}
    nuisance["noise_seed"] = nuisance["noise_seed"].astype(np.uint64)
    return nuisance
