"""The identity model: about forty shape and albedo parameters of a person, drawn as
clipped normals whose means differ a little between women and men, plus each person's
gains on the facial actions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._actions import _ACTIONS

# name: (female mean, male mean, sd, low, high); drawn as clipped normals.
# Skin and hair albedo, hair line and neck width vary only as much as across the people of
# one real set (KDEF: one population photographed alike), so that identity is carried by
# the 3-D shape, proportions and surface detail, which change appearance as the head
# turns, rather than by an overall brightness or outline that survives every rotation.
_IDENTITY_SPEC = {
    "head_w": (0.96, 1.03, 0.04, 0.86, 1.14),
    "head_top": (1.28, 1.31, 0.05, 1.16, 1.44),
    "chin_y": (-1.38, -1.47, 0.05, -1.62, -1.25),
    "jaw_w": (0.62, 0.74, 0.05, 0.5, 0.88),
    "jaw_sq": (2.3, 3.1, 0.3, 1.8, 3.9),
    "face_depth": (0.97, 1.02, 0.05, 0.85, 1.15),
    "back_depth": (1.15, 1.22, 0.05, 1.02, 1.36),
    "brow_ridge": (0.4, 0.8, 0.2, 0.0, 1.2),
    "cheekbone": (0.5, 0.45, 0.25, 0.0, 1.0),
    "eye_y": (0.0, 0.0, 0.03, -0.08, 0.08),
    "eye_sep": (0.355, 0.37, 0.022, 0.30, 0.44),
    "eye_w": (0.15, 0.15, 0.012, 0.12, 0.18),
    "eye_h": (0.062, 0.055, 0.008, 0.038, 0.08),
    "eye_tilt": (0.06, 0.03, 0.06, -0.1, 0.2),
    "iris": (0.28, 0.28, 0.09, 0.08, 0.55),
    "brow_h": (0.21, 0.18, 0.022, 0.13, 0.27),
    "brow_thick": (0.035, 0.05, 0.007, 0.02, 0.07),
    "brow_arch": (0.045, 0.028, 0.012, 0.0, 0.08),
    "nose_tip_y": (-0.40, -0.46, 0.04, -0.56, -0.30),
    "nose_prot": (0.25, 0.31, 0.035, 0.17, 0.40),
    "nose_w": (0.145, 0.165, 0.015, 0.11, 0.21),
    "nose_bridge": (0.04, 0.07, 0.02, 0.0, 0.12),
    "mouth_y": (-0.76, -0.82, 0.035, -0.92, -0.66),
    "mouth_w": (0.27, 0.29, 0.022, 0.22, 0.35),
    "lip_upper": (0.045, 0.035, 0.008, 0.02, 0.065),
    "lip_lower": (0.06, 0.05, 0.009, 0.03, 0.08),
    "lip_alb": (0.62, 0.72, 0.06, 0.45, 0.85),
    "lip_prot": (0.07, 0.06, 0.015, 0.03, 0.11),
    "chin_prot": (0.03, 0.05, 0.015, 0.0, 0.09),
    "skin": (0.63, 0.61, 0.02, 0.56, 0.69),
    "hair_alb": (0.26, 0.24, 0.04, 0.12, 0.38),
    "hairline": (0.80, 0.86, 0.05, 0.66, 1.0),
    "hair_part": (0.0, 0.0, 0.5, -1.0, 1.0),
    "ear_y": (-0.12, -0.14, 0.04, -0.25, 0.0),
    "ear_size": (0.21, 0.24, 0.025, 0.16, 0.30),
    "neck_w": (0.52, 0.56, 0.025, 0.46, 0.62),
    "fold": (0.12, 0.15, 0.06, 0.0, 0.3),
}
# hair styles: (p(long | female), p(long | male)); long and short styles below. Long
# hair is worn tied back (it lies on the nape and never over the face or cheeks).
_P_LONG = (0.8, 0.12)
# name: (long mean, short mean, sd, low, high)
_HAIR_SPEC = {
    "hair_side": (-0.02, 0.12, 0.06, -0.15, 0.25),
    "hair_len": (-1.3, -0.5, 0.12, -1.6, -0.3),
    "sideburn": (0.0, 0.2, 0.06, 0.0, 0.35),
    "hair_vol": (0.08, 0.05, 0.02, 0.02, 0.14),
    "fringe": (0.15, 0.08, 0.08, 0.0, 0.35),
}
_ID_NAMES = tuple(_IDENTITY_SPEC) + tuple(_HAIR_SPEC) + ("long_hair",)


def _draw_identity(ss: np.random.SeedSequence, sex: int) -> dict[str, float]:
    """Shape and albedo parameters of one person (``sex`` 0 female, 1 male).

    The draws depend only on ``ss``; the gains of the facial actions are drawn from the
    same stream, after the shape (see :func:`_identity_tables`)."""
    rng = np.random.default_rng(ss)
    out = {}
    for name, (mf, mm, sd, lo, hi) in _IDENTITY_SPEC.items():
        out[name] = float(np.clip(rng.normal(mm if sex else mf, sd), lo, hi))
    long_hair = rng.random() < _P_LONG[sex]
    for name, (ml, ms, sd, lo, hi) in _HAIR_SPEC.items():
        out[name] = float(np.clip(rng.normal(ml if long_hair else ms, sd), lo, hi))
    out["long_hair"] = float(long_hair)
    # brows follow the hair colour, darker
    out["brow_alb"] = float(
        np.clip(0.45 * out["hair_alb"] + 0.04 + rng.normal(0, 0.03), 0.03, 0.45)
    )
    gains = rng.uniform(0.7, 1.2, size=len(_ACTIONS))
    out.update({f"gain_{a}": float(g) for a, g in zip(_ACTIONS, gains, strict=True)})
    return out


def _identity_tables(seqs: Sequence[np.random.SeedSequence], sexes: Sequence[int]) -> pd.DataFrame:
    """Identity parameters for many people, one row each."""
    rows = [_draw_identity(ss, int(s)) for ss, s in zip(seqs, sexes, strict=True)]
    table = pd.DataFrame(rows)
    table["sex_code"] = np.asarray(sexes, dtype=np.int64)
    return table

