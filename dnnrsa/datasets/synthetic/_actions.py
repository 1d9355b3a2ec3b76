"""Facial actions (after FACS action units) and how much of each the seven expression
prototypes show."""

from __future__ import annotations

import numpy as np

from ._vocabulary import EXPRESSIONS

_ACTIONS = (
    "brow_raise",  # AU1+2: whole brow up, forehead wrinkles
    "inner_brow_raise",  # AU1: inner ends up (oblique brows)
    "brow_lower",  # AU4: brows down and together, frown lines
    "upper_lid_raise",  # AU5: eyes wide, sclera above the iris
    "lid_tighten",  # AU7: narrower eye aperture
    "cheek_raise",  # AU6: cheeks up, lower lid up, crow's feet
    "nose_wrinkle",  # AU9
    "upper_lip_raise",  # AU10
    "lip_corner_pull",  # AU12: smile
    "lip_corner_depress",  # AU15
    "lip_stretch",  # AU20
    "lip_press",  # AU23/24: thin, tight lips
    "jaw_drop",  # AU25/26/27: mouth opens, chin down
    "chin_raise",  # AU17: lower lip pushed up, chin boss
)
_A = {name: i for i, name in enumerate(_ACTIONS)}

_EXPRESSION_ACTIONS = {
    "AF": {
        "brow_raise": 0.6,
        "inner_brow_raise": 0.8,
        "brow_lower": 0.45,
        "upper_lid_raise": 1.0,
        "lip_stretch": 1.0,
        "jaw_drop": 0.45,
    },
    "AN": {
        "brow_lower": 1.0,
        "upper_lid_raise": 0.35,
        "lid_tighten": 0.8,
        "lip_press": 1.0,
        "chin_raise": 0.5,
    },
    "DI": {
        "brow_lower": 0.6,
        "lid_tighten": 0.5,
        "cheek_raise": 0.5,
        "nose_wrinkle": 1.0,
        "upper_lip_raise": 1.0,
        "lip_corner_depress": 0.5,
        "jaw_drop": 0.12,
    },
    "HA": {
        "cheek_raise": 0.9,
        "lid_tighten": 0.15,
        "lip_corner_pull": 1.0,
        "jaw_drop": 0.3,
    },
    "NE": {},
    "SA": {
        "inner_brow_raise": 1.0,
        "brow_lower": 0.35,
        "lid_tighten": 0.35,
        "lip_corner_depress": 1.0,
        "chin_raise": 0.7,
    },
    "SU": {
        "brow_raise": 1.0,
        "inner_brow_raise": 0.3,
        "upper_lid_raise": 1.0,
        "jaw_drop": 1.0,
    },
}


def _action_table() -> np.ndarray:
    """Prototype action intensities, shape (n_expressions, n_actions), rows in
    EXPRESSIONS order."""
    table = np.zeros((len(EXPRESSIONS), len(_ACTIONS)), dtype=np.float64)
    for i, code in enumerate(EXPRESSIONS):
        for action, value in _EXPRESSION_ACTIONS[code].items():
            table[i, _A[action]] = value
    return table


_ACTION_TABLE = _action_table()
