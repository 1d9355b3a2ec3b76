"""Procedurally rendered stand-ins for KDEF, FER2013, CelebA and UC Merced.

The real image sets cannot be downloaded, so dnnrsa ships a small 3-D face renderer and
an aerial-texture generator that make sets with the same factor structure:

* :func:`synthetic_faces` -- the KDEF-like test set: identities x expressions x
  viewpoints x sessions, one image per cell.
* :func:`synthetic_expressions` -- a FER2013-like training set (expression labels,
  thousands of identities seen once or a few times, random yaw and nuisance).
* :func:`synthetic_identities` -- a CelebA-like training set (identity labels, many
  images of each identity under random expression, yaw and nuisance).
* :func:`synthetic_scenes` -- a UC-Merced-like set of 21 aerial scene classes.

How a face is made
------------------
A head lives in a head-centred frame (x to the image right of a frontal face, y up,
z towards the camera of a frontal face; one unit is about half the head width, y = 0 at
eye level). It is a union of smooth primitives whose horizontal cross-sections are
ellipses: the skull and face (with separate front and back depth profiles: forehead,
face plane, jaw taper), a muzzle carrying the lips and chin, a nose that grows from the
bridge to the tip, two ears, a neck and a hair shell (thin for short hair, hanging to the
shoulders for long hair). The head turns
about the vertical axis by the yaw angle (positive yaw: the nose points to the image
right; ``"HL"`` = -45 degrees shows the left cheek with the nose pointing left, as in
KDEF's half-left pictures) and is seen in orthographic projection. Because a yaw turn
keeps every pixel row at one height of the head, each primitive is intersected with each
pixel's ray in closed form, and the front-most hit wins, so self-occlusion (the nose
hiding the far cheek, the far eye vanishing at 90 degrees) is exact.

Eyes with lids, irises and lashes, brows, nostrils, lips, mouth opening and teeth,
wrinkles, hair line and shading hollows are painted in head-frame coordinates on the
surface, and cheeks, eye sockets and brow ridge are bump-mapped, so all of them turn with
the head. Shading is Lambertian from a light fixed in the camera frame plus ambient
light; a slight blur and pixel noise finish the picture.

*Identity* is about forty shape and albedo parameters (head width, height and depth, jaw
width and squareness, eye spacing and size, brow height and thickness, nose length,
width and protrusion, mouth width, lip thickness, chin, skin and hair albedo, hair line,
length and volume, ears). Women and men differ on average (longer hair, thinner brows,
narrower jaw, smaller nose) but the distributions overlap. *Expression* is a mix of
facial actions (brow raise, inner brow raise, brow lowering and knitting, upper-lid
raise, lid tightening, cheek raise, nose wrinkle, upper-lip raise, lip-corner pull and
depression, lip stretch, lip press, jaw drop, chin raise); each identity shows each action
at its own intensity (0.7 to 1.2 times the prototype). *Session* (KDEF-like set) re-seats
the person in the same studio: position changes by up to about a pixel (at 48 x 48),
scale by up to 3 %, the key light by up to 8 degrees and 8 % intensity, and the
background grey and pixel noise a little. The training sets vary all of these much more
(and yaw), like pictures from the wild.

Random streams
--------------
Every generator draws from ``numpy.random.SeedSequence(seed, spawn_key=(stream, ...))``
with its own stream number (``faces``, ``expressions`` train, ``expressions`` test,
``identities``, ``scenes``), so for one ``seed`` the people of :func:`synthetic_faces`,
of the two splits of :func:`synthetic_expressions` and of :func:`synthetic_identities`
are different people: a network trained on one set is never tested on its own training
identities. Within a generator, a person (and for :func:`synthetic_faces` also each
person's sessions and each picture) has its own child stream, so asking for fewer
expressions, viewpoints or identities gives exactly the corresponding subset of the
bigger set. Everything is deterministic: the same arguments give bit-identical images.
"""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from .._utils import check_choice, check_positive_int, format_choices
from ..stimuli import StimulusSet

__all__ = [
    "EXPRESSIONS",
    "EXPRESSION_NAMES",
    "VIEWPOINTS",
    "SESSIONS",
    "SCENE_CLASSES",
    "synthetic_faces",
    "synthetic_expressions",
    "synthetic_identities",
    "synthetic_scenes",
]

logger = logging.getLogger("dnnrsa")

# ---------------------------------------------------------------------------------------
# public constants
# ---------------------------------------------------------------------------------------

#: KDEF expression codes, in KDEF's order.
EXPRESSIONS = ("AF", "AN", "DI", "HA", "NE", "SA", "SU")
#: Long names of the expression codes.
EXPRESSION_NAMES = {
    "AF": "afraid",
    "AN": "angry",
    "DI": "disgusted",
    "HA": "happy",
    "NE": "neutral",
    "SA": "sad",
    "SU": "surprised",
}
#: KDEF viewpoint codes and their yaw in degrees (negative: the nose points to the image
#: left, as in KDEF's half-left ``HL`` and full-left ``FL`` pictures).
VIEWPOINTS = {"FL": -90.0, "HL": -45.0, "S": 0.0, "HR": 45.0, "FR": 90.0}
#: KDEF photo sessions.
SESSIONS = ("A", "B")
#: The 21 UC Merced land-use classes, in the data set's (alphabetical) order.
SCENE_CLASSES = (
    "agricultural",
    "airplane",
    "baseballdiamond",
    "beach",
    "buildings",
    "chaparral",
    "denseresidential",
    "forest",
    "freeway",
    "golfcourse",
    "harbor",
    "intersection",
    "mediumresidential",
    "mobilehomepark",
    "overpass",
    "parkinglot",
    "river",
    "runway",
    "sparseresidential",
    "storagetanks",
    "tenniscourt",
)

# Stream numbers of the generators (part of every SeedSequence's spawn key). Changing
# them changes every image: treat them as part of the data format.
_STREAMS = {
    "faces": 11,
    "expressions_train": 21,
    "expressions_test": 22,
    "identities": 31,
    "scenes": 41,
}
_SEXES = ("female", "male")
_MIN_SIZE = 16
_CHUNK = 32  # images of 48 x 48 rendered together: arrays stay cache-sized

# ---------------------------------------------------------------------------------------
# facial actions and expression prototypes
# ---------------------------------------------------------------------------------------

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

# ---------------------------------------------------------------------------------------
# identity parameters
# ---------------------------------------------------------------------------------------

# name: (female mean, male mean, sd, low, high); drawn as clipped normals.
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
    "skin": (0.64, 0.61, 0.05, 0.48, 0.78),
    "hair_alb": (0.28, 0.24, 0.14, 0.05, 0.72),
    "hairline": (0.80, 0.88, 0.07, 0.62, 1.05),
    "hair_part": (0.0, 0.0, 0.5, -1.0, 1.0),
    "ear_y": (-0.12, -0.14, 0.04, -0.25, 0.0),
    "ear_size": (0.21, 0.24, 0.025, 0.16, 0.30),
    "neck_w": (0.48, 0.58, 0.04, 0.38, 0.70),
    "fold": (0.12, 0.15, 0.06, 0.0, 0.3),
}
# hair styles: (p(long | female), p(long | male)); long and short styles below
_P_LONG = (0.8, 0.12)
# name: (long mean, short mean, sd, low, high)
_HAIR_SPEC = {
    "hair_side": (-0.8, 0.12, 0.15, -1.4, 0.3),
    "hair_len": (-1.55, -0.5, 0.25, -2.4, -0.2),
    "sideburn": (0.0, 0.2, 0.08, 0.0, 0.4),
    "hair_vol": (0.17, 0.05, 0.035, 0.02, 0.3),
    "fringe": (0.25, 0.08, 0.15, 0.0, 0.6),
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


# ---------------------------------------------------------------------------------------
# small numeric helpers
# ---------------------------------------------------------------------------------------

_F = np.float32


def _cov(d, w):
    """Pixel coverage of the region ``d < 0`` for a signed distance ``d`` and a pixel
    footprint ``w`` (box filter, linear ramp)."""
    return np.clip(_F(0.5) - d / w, _F(0.0), _F(1.0))


def _band(d, half, w):
    """Coverage of the band ``|d| < half`` by a pixel of footprint ``w`` centred at ``d``
    (exact for a box filter), in [0, 1]."""
    hw = w * _F(0.5)
    return np.clip(np.minimum(d + hw, half) - np.maximum(d - hw, -half), _F(0.0), None) / w


def _smooth(x, lo, hi):
    """Smoothstep from 0 at ``lo`` to 1 at ``hi``."""
    t = np.clip((x - lo) / (hi - lo), _F(0.0), _F(1.0))
    return t * t * (_F(3.0) - _F(2.0) * t)


def _gauss(x, s):
    """A Gaussian-like bump of width ``s``: (1 - r^2)^2 on |r| < 1, r = x / (1.8 s),
    cheaper than ``exp`` and exactly zero far away."""
    r2 = np.square(x * (_F(1 / 1.8) / s))
    return np.square(np.maximum(_F(1.0) - r2, _F(0.0)))


def _mix(a, b, t):
    return a + (b - a) * t


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, elementwise on uint64 (a counter-based hash)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _hash_normal(seeds: np.ndarray, n: int) -> np.ndarray:
    """Approximately standard normal float32 noise of shape (len(seeds), n) that depends
    only on each row's uint64 seed (not on how rows are batched): the sum of the four
    16-bit uniforms of one 64-bit hash per value, standardised (Irwin-Hall)."""
    base = _splitmix(seeds.astype(np.uint64)[:, None] * _GOLDEN)
    h = _splitmix(base ^ np.arange(n, dtype=np.uint64)[None, :])
    parts = h.view(np.uint16).reshape(len(seeds), n, 4).astype(np.float32)
    # each part is uniform on {0..65535}: mean 32767.5, variance (65536^2 - 1) / 12
    return (parts.sum(axis=-1) - _F(4 * 32767.5)) * _F(1.0 / (2.0 * 65536.0 / np.sqrt(12.0)))


# ---------------------------------------------------------------------------------------
# the face renderer
# ---------------------------------------------------------------------------------------

_HALF_EXTENT = 1.45  # half the side of the view window, head units
_Y_CENTRE = -0.12  # head-frame height at the image centre
_NEG = _F(-1e9)

# nuisance columns every render call needs, shape (N,) each
_NUISANCE = (
    "yaw",  # degrees
    "shift_x",  # head units, image right
    "shift_y",  # head units, image up
    "scale",
    "light_az",  # degrees, positive from the image right
    "light_el",  # degrees, positive from above
    "light_int",
    "ambient",
    "bg",
    "bg_grad",
    "noise",  # pixel noise sd
    "noise_seed",  # uint64
)


def _ellipse_hit(u, c, s, cx, cz, iax2, iaz2):
    """Front and back roots of rays against horizontal ellipses.

    A pixel's ray in the head frame is ``(u c - t s, y, u s + t c)`` for depth ``t``
    towards the camera; the ellipse at its row has centre (cx, cz) and inverse squared
    semi-axes iax2, iaz2.

    Parameters
    ----------
    u : ndarray (b, 1, W)
        Horizontal image coordinate in head units.
    c, s : ndarray (b, 1, 1)
        Cosine and sine of the yaw.
    cx, cz, iax2, iaz2 : ndarray (b, H, 1)
        Row-wise ellipse centre and inverse squared semi-axes.

    Returns
    -------
    near, far : ndarray (b, H, W)
        Depths of the entry and exit points (NaN where the ray misses; NaN compares
        false, and ``np.fmax`` ignores it).
    """
    q = u * c - cx
    w = u * s - cz
    a = s * s * iax2 + c * c * iaz2
    bq = w * c * iaz2 - q * s * iax2
    cq = q * q * iax2 + w * w * iaz2 - _F(1.0)
    disc = bq * bq - a * cq
    root = np.sqrt(disc)  # NaN where the ray misses
    inv_a = _F(1.0) / a
    return (root - bq) * inv_a, (-root - bq) * inv_a


def _profiles(p: dict, yv: np.ndarray) -> dict:
    """Evaluate the shape profiles at view heights ``yv`` (head units, shape (b, H, 1)).

    Returns a dict of primitive name -> (cx, cz, ax, azf, azb, valid) arrays (b, H, 1),
    plus ``"yg"``, the geometric (jaw-warped) height used for painting."""
    f1 = _F(1.0)
    # the jaw drop stretches the face below the mouth
    ym = p["mouth_y"]
    stretch = f1 + _F(0.22) * p["a_jaw_drop"]
    yg = np.where(yv < ym, ym + (yv - ym) / stretch, yv)

    top, chin = p["head_top"], p["chin_y"]
    y0 = _F(0.05)  # widest level of the skull
    tu = np.clip((yg - y0) / (top - y0), 0.0, 1.0)
    tl = np.clip((y0 - yg) / (y0 - chin), 0.0, 1.0)
    k = p["jaw_sq"]
    ax_up = p["head_w"] * (f1 - tu ** _F(2.3)) ** _F(1 / 2.3)
    # the face narrows to the jaw (all terms flat at y0, so the shading is smooth)
    ax_lo = (
        p["head_w"]
        * (f1 - tl**k) ** (f1 / k)
        * (f1 - (f1 - p["jaw_w"]) * tl * tl)
        * (f1 - _F(0.06) * tl * tl)
    )
    head_ax = np.where(yg >= y0, ax_up, ax_lo)
    # front depth: flat-ish forehead, face plane, receding lower face (C1 everywhere)
    fu = np.clip((yg - _F(-0.25)) / (top - _F(-0.25)), 0.0, 1.0)
    azf_up = (f1 - fu ** _F(2.6)) ** _F(1 / 2.6)
    fl = np.clip((_F(-0.25) - yg) / (_F(-0.25) - chin), 0.0, 1.0)
    azf_lo = (f1 - fl ** _F(4.0)) ** _F(0.25) * (f1 - _F(0.25) * fl * fl)
    azf = p["face_depth"] * np.where(yg >= _F(-0.25), azf_up, azf_lo)
    # back depth: skull, then the nape
    bu = np.clip((yg - _F(0.1)) / (top - _F(0.1)), 0.0, 1.0)
    bl = np.clip((_F(0.1) - yg) / (_F(0.1) - chin + _F(0.15)), 0.0, 1.0)
    azb = p["back_depth"] * np.where(
        yg >= _F(0.1), np.sqrt(f1 - bu**2), (f1 - bl ** _F(2.2)) ** _F(0.6)
    )
    head_valid = (yg > chin) & (yg < top)
    zero = np.zeros_like(yg)
    prims = {
        "head": (zero, zero, head_ax, np.maximum(azf, 1e-3), np.maximum(azb, 1e-3), head_valid)
    }

    # muzzle: lips and chin in front of the lower face
    nb = p["nose_tip_y"] - _F(0.07)
    mtop, mbot = nb, chin
    mt = np.clip((yg - mbot) / (mtop - mbot), 0.0, 1.0)  # 0 at chin, 1 under the nose
    mx = p["mouth_w"] * _F(1.45) * np.sqrt(np.clip(mt * (_F(1.25) - mt) / _F(0.39), 0.0, None))
    mx = mx * (_F(0.8) + _F(0.2) * p["jaw_w"])
    prot = (
        p["lip_prot"] * _gauss(yg - ym - _F(0.045), _F(0.05))
        + _F(0.9) * p["lip_prot"] * _gauss(yg - ym + _F(0.06), _F(0.05))
        + p["chin_prot"] * _gauss(yg - chin - _F(0.17), _F(0.12))
        - _F(0.035)
        + _F(0.03) * _gauss(yg - nb, _F(0.06))
    )
    # pout of the chin raiser
    prot = prot + _F(0.03) * p["a_chin_raise"] * _gauss(yg - ym + _F(0.06), _F(0.05))
    mdepth = _F(0.45)
    mcz = azf + prot - mdepth
    muzzle_valid = (yg > mbot + _F(0.02)) & (yg < mtop)
    prims["muzzle"] = (
        zero,
        mcz,
        np.maximum(mx, 1e-3),
        np.full_like(yg, mdepth),
        np.full_like(yg, mdepth),
        muzzle_valid & (mx > 1e-3),
    )

    # nose: bridge to tip, alae at the base
    yb = p["eye_y"] + _F(0.12)
    yt = p["nose_tip_y"]
    nt = np.clip((yb - yg) / (yb - yt), 0.0, None)  # 0 at bridge, 1 at tip
    wing = p["a_nose_wrinkle"] * _F(0.02) + p["a_upper_lip_raise"] * _F(0.015)
    nprot = np.where(
        nt <= 1.0,
        p["nose_bridge"] + (p["nose_prot"] - p["nose_bridge"]) * nt ** _F(1.3),
        p["nose_prot"] * np.sqrt(np.clip(f1 - ((nt - f1) * (yb - yt) / _F(0.1)) ** 2, 0.0, None)),
    )
    nw = p["nose_w"] * (_F(0.45) + _F(0.55) * np.clip(nt, 0.0, 1.0) ** _F(2.0))
    nw = nw * (f1 + wing * _F(4.0) * _gauss(nt - f1, _F(0.3)))
    nz = nprot + _F(0.12)
    face_front = azf * _F(0.985)
    ncz = face_front + nprot - nz
    nose_valid = (yg < yb) & (yg > yt - _F(0.1)) & (nprot > 1e-3)
    prims["nose"] = (zero, ncz, np.maximum(nw, 1e-3), nz, nz, nose_valid)

    # ears: flattened ellipsoids on the sides, one per side (x centre sign)
    ey = p["ear_y"]
    es = p["ear_size"]
    er = np.clip(f1 - ((yg - ey) / es) ** 2, 0.0, None)
    ear_ax = _F(0.1) * np.sqrt(er)
    ear_az = es * _F(0.55) * np.sqrt(er)
    head_at_ear = p["head_w"] * _F(0.99)
    ear_valid = er > 1e-4
    prims["ear_r"] = (
        head_at_ear + zero,
        zero - _F(0.12),
        np.maximum(ear_ax, 1e-3),
        np.maximum(ear_az, 1e-3),
        np.maximum(ear_az, 1e-3),
        ear_valid,
    )
    prims["ear_l"] = (
        zero - head_at_ear,
        zero - _F(0.12),
        np.maximum(ear_ax, 1e-3),
        np.maximum(ear_az, 1e-3),
        np.maximum(ear_az, 1e-3),
        ear_valid,
    )

    # neck: a slightly flattened cylinder under the head
    nkw = p["neck_w"]
    prims["neck"] = (
        zero,
        zero - _F(0.2),
        nkw + zero,
        nkw * _F(0.95) + zero,
        nkw * _F(0.95) + zero,
        yg < chin + _F(0.55),
    )

    # hair shell around the skull (worn outside the face only)
    vol = p["hair_vol"]
    long_ = p["long_hair"]
    # long hair falls straight from the widest part of the skull, short hair hugs it
    hx = np.where(yg >= y0, ax_up, long_ * p["head_w"] + (f1 - long_) * ax_lo) + vol
    hzb = (
        np.where(
            yg >= _F(0.1),
            p["back_depth"] * np.sqrt(f1 - bu**2),
            long_ * p["back_depth"] + (f1 - long_) * azb,
        )
        + vol
    )
    hzf = np.where(yg >= y0, p["face_depth"] * azf_up, p["face_depth"]) + vol
    top_h = top + vol * _F(0.8)
    hair_valid = (yg > np.minimum(p["hair_side"], p["hair_len"]) - _F(0.1)) & (yg < top_h)
    # round the top of the shell
    tt = np.clip((yg - top) / (vol * _F(0.8) + _F(1e-3)), 0.0, 1.0)
    cap = np.sqrt(np.clip(f1 - tt**2, 0.0, None))
    prims["hair"] = (
        zero,
        zero,
        np.maximum(hx * cap, 1e-3),
        np.maximum(hzf * cap, 1e-3),
        np.maximum(hzb * cap, 1e-3),
        hair_valid,
    )
    prims["yg"] = yg
    return prims


def _face_params(p: dict) -> dict:
    """Derived feature parameters (mouth, eyes, brows) from identity and actions, each
    shaped like the arrays of ``p`` ((b, 1, 1) per image or (n,) per pixel)."""
    f1 = _F(1.0)
    d = {}
    # eyes
    d["eh_up"] = p["eye_h"] * np.clip(
        f1
        + _F(0.9) * p["a_upper_lid_raise"]
        - _F(0.45) * p["a_lid_tighten"]
        - _F(0.25) * p["a_cheek_raise"]
        - _F(0.25) * p["a_brow_lower"] * (f1 - p["a_upper_lid_raise"]),
        0.2,
        None,
    )
    d["eh_lo"] = p["eye_h"] * np.clip(
        _F(0.8)
        + _F(0.25) * p["a_upper_lid_raise"]
        - _F(0.4) * p["a_lid_tighten"]
        - _F(0.55) * p["a_cheek_raise"],
        0.12,
        None,
    )
    # brows
    d["brow_in"] = (
        _F(0.08) * p["a_brow_raise"]
        + _F(0.085) * p["a_inner_brow_raise"]
        - _F(0.085) * p["a_brow_lower"]
    )
    d["brow_out"] = (
        _F(0.09) * p["a_brow_raise"]
        - _F(0.015) * p["a_inner_brow_raise"]
        - _F(0.035) * p["a_brow_lower"]
    )
    d["knit"] = _F(0.045) * p["a_brow_lower"]
    # mouth
    pull, dep, st = p["a_lip_corner_pull"], p["a_lip_corner_depress"], p["a_lip_stretch"]
    press, jaw, ulr = p["a_lip_press"], p["a_jaw_drop"], p["a_upper_lip_raise"]
    d["mw"] = p["mouth_w"] * (
        f1 + _F(0.2) * pull + _F(0.22) * st - _F(0.1) * press - _F(0.12) * jaw * (f1 - st)
    )
    d["corner"] = _F(0.12) * pull - _F(0.08) * dep - _F(0.02) * st
    d["open"] = _F(0.19) * jaw + _F(0.04) * pull + _F(0.025) * st + _F(0.015) * ulr
    d["ulr"] = _F(0.05) * ulr
    thin = np.clip(f1 - _F(0.65) * press - _F(0.25) * st - _F(0.2) * pull, 0.25, None)
    d["lip_u"] = p["lip_upper"] * thin
    d["lip_l"] = p["lip_lower"] * thin
    return d


_ORDER = ("head", "muzzle", "nose", "ear_r", "ear_l", "neck", "hair")
_PID = {name: k + 1 for k, name in enumerate(_ORDER)}  # 0 is the background


def _render_chunk(p: dict, size: int) -> np.ndarray:
    """Render one batch of faces (before blur and noise).

    Parameters
    ----------
    p : dict of str -> ndarray (b, 1, 1) float32
        Identity, action (``a_<name>``) and nuisance parameters of every image.
    size : int
        Output side in pixels.

    Returns
    -------
    ndarray (b, size, size) float32
    """
    f0, f1 = _F(0.0), _F(1.0)
    b = p["yaw"].shape[0]
    px = _F(2.0 * _HALF_EXTENT / size)
    grid = (np.arange(size, dtype=np.float32) + _F(0.5)) * px - _F(_HALF_EXTENT)
    inv_scale = f1 / p["scale"]
    u = (grid[None, None, :] - p["shift_x"]) * inv_scale  # (b, 1, W)
    yv = (-grid[None, :, None] - p["shift_y"]) * inv_scale + _F(_Y_CENTRE)  # (b, H, 1)
    pxh = px * inv_scale  # pixel footprint in head units (b, 1, 1)
    yaw = np.deg2rad(p["yaw"])
    c, s = np.cos(yaw), np.sin(yaw)
    shape = (b, size, size)

    # -- ray casting: every primitive, row range by row range ----------------------------
    dy = _F(0.004)
    prof = _profiles(p, yv)
    prof_d = _profiles(p, yv + dy)
    yg = prof["yg"]
    best = np.full(shape, _NEG, dtype=np.float32)
    kbest = np.full(shape, -1, dtype=np.int8)
    hair_inner = np.zeros(shape, dtype=bool)
    for k, name in enumerate(_ORDER):
        cx, cz, ax, azf, azb, valid = prof[name]
        rows = np.flatnonzero(valid.any(axis=(0, 2)))
        if rows.size == 0:
            continue
        r = slice(rows[0], rows[-1] + 1)
        cx, cz, valid = cx[:, r], cz[:, r], valid[:, r]
        iax2 = f1 / np.square(np.maximum(ax[:, r], _F(1e-3)))
        iazf2 = f1 / np.square(np.maximum(azf[:, r], _F(1e-3)))
        near_f, far_f = _ellipse_hit(u, c, s, cx, cz, iax2, iazf2)
        if name in ("head", "hair"):
            iazb2 = f1 / np.square(np.maximum(azb[:, r], _F(1e-3)))
            near_b, far_b = _ellipse_hit(u, c, s, cx, cz, iax2, iazb2)
            t = np.fmax(
                np.where(u * s + near_f * c >= cz, near_f, _NEG),
                np.where(u * s + near_b * c < cz, near_b, _NEG),
            )
            if name == "hair":
                # the shell only exists above the hair line; where its outside does not,
                # the ray may see its inside, behind the head
                ygr = yg[:, r]
                ok = ygr - _hairline(p, u * c - t * s, u * s + t * c) > _F(-0.02)
                t_in = np.fmax(
                    np.where(u * s + far_f * c >= cz, far_f, _NEG),
                    np.where(u * s + far_b * c < cz, far_b, _NEG),
                )
                ok_in = ygr - _hairline(p, u * c - t_in * s, u * s + t_in * c) > _F(-0.02)
                hair_inner[:, r] = ~ok
                t = np.where(ok, t, np.where(ok_in, t_in, _NEG))
        else:
            t = near_f
        t = np.where(valid, t, _NEG)
        bs = best[:, r]
        np.copyto(kbest[:, r], np.int8(k), where=t > bs)
        np.fmax(bs, t, out=bs)
    fg = kbest >= 0
    pid = kbest + np.int8(1)

    # -- surface normals of the winning primitive --------------------------------------------
    # row parameters of the winning primitive: one flat gather per field
    kb = np.maximum(kbest, 0).astype(np.intp)
    ridx = (kb * b + np.arange(b)[:, None, None]) * size + np.arange(size)[None, :, None]

    def gather(profiles):
        return [
            np.stack([np.broadcast_to(profiles[n][j], (b, size, 1)) for n in _ORDER])
            .reshape(-1)
            .take(ridx)
            for j in range(5)
        ]

    cx, cz, ax, azf, azb = gather(prof)
    dcx, dcz, dax, dazf, dazb = gather(prof_d)
    ax = np.maximum(ax, _F(1e-3))
    X = u * c - best * s
    Z = u * s + best * c
    xq = X - cx
    zq = Z - cz
    front = zq >= 0
    az = np.maximum(np.where(front, azf, azb), _F(1e-3))
    inv_dy = f1 / dy
    daz = (np.where(front, dazf, dazb) - az) * inv_dy
    iax2 = f1 / (ax * ax)
    iaz2 = f1 / (az * az)
    gx = xq * iax2
    gz = zq * iaz2
    gy = -(
        gx * xq * (dax - ax) * inv_dy / ax
        + gz * zq * daz / az
        + gz * (dcz - cz) * inv_dy
        + gx * (dcx - cx) * inv_dy
    )
    flip = np.where((pid == _PID["hair"]) & hair_inner, _F(-1.0), f1)
    norm = flip / np.sqrt(np.maximum(gx * gx + gy * gy + gz * gz, _F(1e-12)))
    nxh, nyh, nzh = gx * norm, gy * norm, gz * norm

    # -- albedo and bump map --------------------------------------------------------------
    Y = np.broadcast_to(yg, shape)
    alb, bump_x, bump_y = _paint(p, X, Y, Z, pid, pxh)
    nxh = nxh - bump_x
    nyh = nyh - bump_y
    inv = f1 / np.sqrt(np.maximum(nxh * nxh + nyh * nyh + nzh * nzh, _F(1e-12)))

    # -- Lambertian shading, light fixed in the camera frame -------------------------------
    az_l = np.deg2rad(p["light_az"])
    el_l = np.deg2rad(p["light_el"])
    lx = np.sin(az_l) * np.cos(el_l)
    ly = np.sin(el_l)
    lz = np.cos(az_l) * np.cos(el_l)
    # camera-frame normal: (nx c + nz s, ny, nz c - nx s)
    lam = ((nxh * c + nzh * s) * lx + nyh * ly + (nzh * c - nxh * s) * lz) * inv
    amb = p["ambient"]
    shade = amb + (f1 - amb) * np.clip(lam, f0, f1)
    img = alb * shade * p["light_int"]
    bg = p["bg"] + p["bg_grad"] * (yv - _F(_Y_CENTRE))
    return np.where(fg, img, bg)


def _hairline(p: dict, X, Z):
    """Height of the hair line at head-frame points (X, Z): the forehead line (with
    fringe and parting) in front, the temples, the sides (above the ears for short hair,
    below them for long hair, with sideburns for short hair) and the nape behind.

    The angle around the vertical axis enters through its cosine, ``Z / |(X, Z)|``
    (1 in front, -1 behind)."""
    f1 = _F(1.0)
    cph = Z / np.sqrt(X * X + Z * Z + _F(1e-6))
    fringe = p["fringe"] * _gauss(X + _F(0.3) * p["hair_part"], _F(0.5))
    front = p["hairline"] - fringe + _F(0.04) * p["hair_part"] * X - _F(0.05) * X * X
    long_ = p["long_hair"]
    temple = p["hairline"] - _F(0.3)
    side = p["hair_side"]
    # long hair ends in a wavy (triangle-wave) line
    phase = (X * _F(1.4) + Z * _F(0.8)) % f1
    back = p["hair_len"] + long_ * _F(0.06) * (_F(4.0) * np.abs(phase - _F(0.5)) - f1)
    ncp = -cph
    # short hair: down to the side level at 62-84 degrees; long hair: at 75-100 degrees
    to_side = long_ * _smooth(ncp, _F(-0.259), _F(0.174)) + (f1 - long_) * _smooth(
        ncp, _F(-0.47), _F(-0.105)
    )
    hl = (
        front
        + (temple - front) * _smooth(ncp, _F(-0.866), _F(-0.47))  # 30 to 62 degrees
        + (side - temple) * to_side
        + (back - side) * _smooth(ncp, _F(0.309), _F(0.866))  # 108 to 150 degrees
    )
    # sideburns of short hair, in front of the ear (about 80 degrees)
    return hl - (f1 - long_) * p["sideburn"] * _gauss(cph - _F(0.174), _F(0.1))


def _paint(p: dict, X, Y, Z, pid, pxh):
    """Albedo of every pixel and the bump-map gradient, from head-frame coordinates.

    Parameters
    ----------
    p : dict of str -> ndarray (b, 1, 1)
    X, Y, Z : ndarray (b, H, W)
        Head-frame hit point (``Y`` is the jaw-warped height).
    pid : ndarray (b, H, W) int8
        Primitive hit (0 background, then ``_ORDER`` from 1).
    pxh : ndarray (b, 1, 1)
        Pixel footprint in head units.

    Returns
    -------
    albedo, bump_x, bump_y : ndarray (b, H, W)
    """
    f0, f1 = _F(0.0), _F(1.0)
    shape = X.shape
    alb = np.broadcast_to(p["skin"], shape).astype(np.float32)
    bump_x = np.zeros(shape, dtype=np.float32)
    bump_y = np.zeros(shape, dtype=np.float32)
    # the facial features only exist on the front of the face: paint them on those
    # pixels alone (a flat list of them), with per-pixel copies of the parameters
    face = (pid >= 1) & (pid <= 3) & (Z > _F(0.05)) & (Y > p["chin_y"] - _F(0.05))
    face &= Y < p["eye_y"] + p["brow_h"] + _F(0.75)
    idx = np.flatnonzero(face)
    if idx.size:
        counts = np.bincount(idx // (shape[1] * shape[2]), minlength=shape[0])
        q = {k: np.repeat(p[k].reshape(-1), counts) for k in _FACE_KEYS}
        a, bx, by = _paint_face(
            q,
            X.reshape(-1)[idx],
            Y.reshape(-1)[idx],
            Z.reshape(-1)[idx],
            pid.reshape(-1)[idx],
            np.repeat(pxh.reshape(-1), counts),
        )
        alb.reshape(-1)[idx] = a
        bump_x.reshape(-1)[idx] = bx
        bump_y.reshape(-1)[idx] = by

    # hair on the scalp and the shell
    hl = _hairline(p, X, Z)
    hair = np.clip((Y - hl) / _F(0.07) + _F(0.5), f0, f1)
    scalp = (pid == _PID["head"]) | (pid == _PID["ear_r"]) | (pid == _PID["ear_l"])
    scalp |= (pid == _PID["neck"]) & (Z < f0)
    hair = np.where(scalp, hair, f0)
    hair = np.where(pid == _PID["hair"], f1, hair)
    streak = f1 + _F(0.1) * np.sin(X * _F(11.0) + Z * _F(7.0) + Y * _F(2.0))
    alb = np.where((pid == _PID["ear_r"]) | (pid == _PID["ear_l"]), alb * _F(0.9), alb)
    alb = np.where(pid == _PID["neck"], alb * _F(0.8), alb)
    alb = alb + (p["hair_alb"] * streak - alb) * hair
    return alb, bump_x, bump_y


_FACE_KEYS = tuple(_IDENTITY_SPEC) + ("brow_alb",) + tuple(f"a_{a}" for a in _ACTIONS)


def _paint_face(q: dict, X, Y, Z, pid, pxh):
    """Facial features on a flat list of front-of-face pixels.

    Parameters
    ----------
    q : dict of str -> ndarray (n,)
        Parameters of each pixel's image.
    X, Y, Z : ndarray (n,)
        Head-frame coordinates of the pixels.
    pid : ndarray (n,) int8
        Primitive of each pixel (head, muzzle or nose).
    pxh : ndarray (n,)
        Pixel footprint in head units.

    Returns
    -------
    albedo, bump_x, bump_y : ndarray (n,)
    """
    f1 = _F(1.0)
    d = _face_params(q)
    w = pxh * _F(1.15)
    front = np.clip((Z - _F(0.05)) / _F(0.2), 0.0, 1.0)
    AX = np.abs(X)
    sgn = np.where(X < 0, -f1, f1)
    skin = q["skin"]
    alb = skin.copy()
    shadow = np.zeros_like(X)  # multiplicative darkening (hollows, creases)
    ey, ex, ew = q["eye_y"], q["eye_sep"], q["eye_w"]

    # -- bumps: cheeks (raised by AU6 and AU12), eye sockets, brow ridge -------------------
    cr = q["a_cheek_raise"] + _F(0.5) * q["a_lip_corner_pull"]
    gx_ = (AX - ex - _F(0.05)) * _F(1 / 0.2)
    gy_ = (Y - ey + _F(0.38) - _F(0.1) * cr) * _F(1 / 0.17)
    g = (_F(0.015) * (_F(0.4) + q["cheekbone"]) + _F(0.035) * cr) * np.exp(-(gx_ * gx_ + gy_ * gy_))
    bx = g * gx_ * _F(-2.0 / 0.2) * sgn
    by = g * gy_ * _F(-2.0 / 0.17)
    sx = (AX - ex) * _F(1 / 0.17)
    sy = (Y - ey - _F(0.04)) * _F(1 / 0.12)
    socket = np.exp(-(sx * sx + sy * sy))
    g = _F(-0.03) * socket
    bx += g * sx * _F(-2.0 / 0.17) * sgn
    by += g * sy * _F(-2.0 / 0.12)
    rx = AX * _F(1 / 0.5)
    ry = (Y - ey - q["brow_h"] + _F(0.02)) * _F(1 / 0.08)
    g = _F(0.02) * q["brow_ridge"] * np.exp(-(rx * rx + ry * ry))
    bx += g * rx * _F(-2.0 / 0.5) * sgn
    by += g * ry * _F(-2.0 / 0.08)
    bx *= front
    by *= front
    shadow += _F(0.16) * socket

    # -- eyes (both at once, mirrored) -----------------------------------------------------
    dx = AX - ex
    dyy = Y - ey
    tx = np.clip(dx / ew, -1.0, 1.0)
    shp = np.clip(f1 - tx * tx, 0.0, 1.0)
    rs = np.sqrt(shp)
    tilt = q["eye_tilt"] * dx
    upper = d["eh_up"] * rs * np.sqrt(rs) + tilt
    lower = -d["eh_lo"] * shp * (
        _F(0.3) + _F(0.7) / (_F(0.3) + _F(0.7) * rs + _F(1e-3))
    ) * rs + tilt * _F(0.5)
    inside_x = _cov(np.abs(dx) - ew, w)
    aperture = _cov(dyy - upper, w) * _cov(lower - dyy, w) * inside_x
    rr = np.sqrt(dx * dx + np.square(dyy - _F(0.005)))
    iris = _cov(rr - _F(0.062), w)
    pupil = _cov(rr - _F(0.025), w)
    eye_val = _mix(_F(0.8), q["iris"], iris)
    eye_val = _mix(eye_val, _F(0.05), pupil * _F(0.7))
    eyem = front * (pid == _PID["head"])
    alb = _mix(alb, eye_val, aperture * eyem)
    # upper lid shadow and lashes, lid crease, lower lid, crow's feet
    lid_line = _band(dyy - upper - _F(0.008), _F(0.014), w) * _cov(np.abs(dx) - ew * _F(1.1), w)
    alb = _mix(alb, _F(0.08), lid_line * eyem * _F(0.85))
    crease = _band(dyy - upper - _F(0.05) - _F(0.02) * shp, _F(0.009), w)
    crease = (
        crease * _cov(np.abs(dx) - ew * _F(0.9), w) * np.clip(f1 - q["a_upper_lid_raise"], 0.0, 1.0)
    )
    shadow += _F(0.4) * crease
    shadow += _F(0.3) * _band(dyy - lower + _F(0.006), _F(0.007), w) * inside_x
    cf = q["a_cheek_raise"] * _cov(dx - ew - _F(0.11), w) * _cov(ew + _F(0.02) - dx, w)
    cf_lines = _band(dyy - _F(0.35) * (dx - ew), _F(0.007), w) + _band(
        dyy + _F(0.35) * (dx - ew) + _F(0.015), _F(0.007), w
    )
    shadow += _F(0.3) * np.clip(cf * cf_lines, 0.0, 1.0)

    # -- brows -------------------------------------------------------------------------
    x_in = _F(0.1) - d["knit"]
    x_out = ex + ew + _F(0.03)
    tb = np.clip((AX - x_in) / (x_out - x_in), 0.0, 1.0)
    brow_y = (
        ey
        + q["brow_h"]
        + q["brow_arch"] * _F(4.0) * tb * (f1 - tb) * (f1 - _F(0.4) * q["a_inner_brow_raise"])
        + d["brow_in"] * (f1 - tb)
        + d["brow_out"] * tb
    )
    thick = q["brow_thick"] * (_F(1.25) - _F(0.55) * tb)
    brow = _band(Y - brow_y, thick * _F(0.5), w) * _cov(x_in - AX, w) * _cov(AX - x_out, w)
    alb = _mix(alb, q["brow_alb"], np.clip(brow, 0.0, 1.0) * _F(0.92))
    # lowered brows shade the eyes; frown lines between the brows; forehead wrinkles
    shadow += _F(0.15) * q["a_brow_lower"] * _gauss(dx, _F(0.16)) * _gauss(dyy - _F(0.1), _F(0.06))
    fr = q["a_brow_lower"] * _band(AX - _F(0.045), _F(0.009), w)
    fr = fr * _cov(np.abs(Y - ey - q["brow_h"] - _F(0.02)) - _F(0.07), w)
    fw = q["a_brow_raise"] + _F(0.6) * q["a_inner_brow_raise"] * _gauss(X, _F(0.18))
    fw = fw * _cov(AX - _F(0.42), w)
    fy = Y - ey - q["brow_h"] - _F(0.17)
    fwl = (
        _band(fy, _F(0.008), w)
        + _band(fy - _F(0.1), _F(0.008), w)
        + _band(fy - _F(0.2), _F(0.008), w)
    )
    shadow += _F(0.4) * np.clip(fr + fw * fwl * _F(0.8), 0.0, 1.0)

    # -- nose: nostrils, alar creases, wrinkles ---------------------------------------------
    yt = q["nose_tip_y"]
    lift = _F(0.02) * (q["a_nose_wrinkle"] + q["a_upper_lip_raise"])
    nx_ = (AX - q["nose_w"] * _F(0.45)) * _F(1 / 0.038)
    ny_ = (Y - yt + _F(0.065) - lift) * _F(1 / 0.02)
    nostril = np.sqrt(np.clip(f1 - (nx_ * nx_ + ny_ * ny_), 0.0, 1.0))
    alb = _mix(alb, _F(0.12), nostril * _F(0.85))
    ala = _band(
        np.sqrt(np.square(AX - q["nose_w"] * _F(0.85)) + np.square(Y - yt + _F(0.02) - lift))
        - _F(0.07),
        _F(0.009),
        w,
    )
    shadow += _F(0.3) * ala * (AX < q["nose_w"] * _F(1.2)) * (Y < yt + _F(0.06) + lift)
    nwk = q["a_nose_wrinkle"] * _cov(AX - _F(0.07), w)
    nwy = Y - ey + _F(0.02)
    nwl = (
        _band(nwy, _F(0.008), w)
        + _band(nwy + _F(0.06), _F(0.008), w)
        + _band(nwy + _F(0.12), _F(0.008), w)
    )
    shadow += _F(0.45) * np.clip(nwk * nwl, 0.0, 1.0)

    # -- mouth --------------------------------------------------------------------------
    ym = q["mouth_y"] + _F(0.02) * q["a_chin_raise"] + _F(0.015) * q["a_upper_lip_raise"]
    mw = d["mw"]
    xm = X / mw
    xm2 = np.clip(xm * xm, 0.0, 1.0)
    om = f1 - xm2
    som = np.sqrt(om)
    inx = _cov(AX - mw, w)
    mid = ym + d["corner"] * xm2 * np.sqrt(xm2) - _F(0.012) * q["a_chin_raise"] * om
    op = d["open"] * som
    o_top = mid + op * _F(0.3) + d["ulr"] * np.sqrt(som)
    o_bot = mid - op * _F(0.7)
    gap = np.maximum(o_top - o_bot, _F(0.0))
    cavity = _cov(Y - o_top, w) * _cov(o_bot - Y, w) * inx
    line = _band(Y - mid, _F(0.018), w) * _cov(AX - mw * _F(1.02), w)
    bow = (
        _F(0.012) * _gauss(AX - _F(0.06), _F(0.05)) * (f1 - _F(0.5) * q["a_lip_press"])
    )  # Cupid's bow
    up_edge = o_top + d["lip_u"] * np.sqrt(som) + bow
    lo_edge = o_bot - d["lip_l"] * som
    lips = _cov(Y - up_edge, w) * _cov(lo_edge - Y, w) * inx
    alb = _mix(alb, skin * q["lip_alb"], lips)
    # teeth: upper row under the upper lip, lower row above the lower lip
    teeth_u = _cov(Y - o_top, w) * _cov(o_top - _F(0.055) - Y, w)
    teeth_l = _cov(Y - o_bot - _F(0.03), w) * _cov(o_bot - Y, w) * _F(0.6)
    teeth = np.clip(teeth_u + teeth_l, 0.0, 1.0) * _cov(AX - mw * _F(0.8), w)
    alb = _mix(alb, _mix(_F(0.06), _F(0.9), teeth), cavity)
    vis = np.clip(gap / (w * _F(0.8)), 0.0, 1.0)
    shadow += _F(0.7) * np.clip(line * (f1 - vis), 0.0, 1.0)
    # lip press bulges the skin around the mouth
    shadow += _F(0.15) * q["a_lip_press"] * _band(Y - mid + _F(0.09), _F(0.02), w) * inx
    # nasolabial folds from the alae to the mouth corners
    ax0 = q["nose_w"] * _F(1.05)
    ax1 = mw + _F(0.05)
    ay1 = ym + d["corner"] - _F(0.03)
    sx_ = ax1 - ax0
    sy_ = ay1 - yt
    tt = np.clip(((AX - ax0) * sx_ + (Y - yt) * sy_) / (sx_ * sx_ + sy_ * sy_), 0.0, 1.0)
    dfold = np.sqrt(np.square(AX - ax0 - tt * sx_) + np.square(Y - yt - tt * sy_))
    fold_k = (
        q["fold"]
        + _F(0.55) * q["a_lip_corner_pull"]
        + _F(0.45) * q["a_upper_lip_raise"]
        + _F(0.25) * q["a_cheek_raise"]
        + _F(0.2) * q["a_nose_wrinkle"]
    )
    shadow += (
        _F(0.45) * _band(dfold, _F(0.012), w) * np.clip(fold_k, 0.0, 1.0) * (f1 - _F(0.5) * tt)
    )
    # hollows: under the lower lip, under the nose, chin boss of the chin raiser
    shadow += _F(0.16) * _gauss(Y - lo_edge + _F(0.03), _F(0.03)) * _gauss(X, mw * _F(0.6))
    shadow += (
        _F(0.08) * _gauss(Y - yt + _F(0.1), _F(0.025)) * _gauss(X, _F(0.12)) * (pid != _PID["nose"])
    )
    shadow += (
        _F(0.08)
        * q["a_chin_raise"]
        * _gauss(Y - q["chin_y"] - _F(0.2), _F(0.06))
        * _gauss(X, _F(0.15))
    )
    alb = alb * (f1 - np.clip(shadow, 0.0, 0.8) * front)
    return alb, bx, by


def _render(
    params: dict[str, np.ndarray],
    size: int,
    chunk_size: int = _CHUNK,
    n_threads: int | None = None,
) -> np.ndarray:
    """Render faces from per-image parameters.

    Parameters
    ----------
    params : dict of str -> ndarray (N,)
        Every identity column (see ``_IDENTITY_SPEC``), ``a_<action>`` intensities and the
        nuisance columns (``_NUISANCE``).
    size : int
        Image side in pixels.
    chunk_size : int
        Images rendered together. Each image is computed independently of the others,
        so this only trades memory against speed.
    n_threads : int, optional
        Chunks rendered in parallel (numpy releases the GIL); default: up to 4, as many
        as there are CPUs.

    Returns
    -------
    ndarray (N, 1, size, size) float32 in [0, 1]
    """
    n = len(params["yaw"])
    # glibc raises its mmap threshold (to the block's size) when a memory-mapped block is
    # freed; doing that once here keeps the many chunk-sized temporaries on the heap
    # instead of mapping and unmapping them for every chunk (about 2x faster on Linux,
    # harmless elsewhere)
    scratch = np.empty(6 << 20, dtype=np.float32)  # 24 MiB, never touched
    del scratch
    out = np.empty((n, 1, size, size), dtype=np.float32)
    keys = [k for k in params if k != "noise_seed"]
    table = {k: np.asarray(params[k], dtype=np.float32) for k in keys}
    seeds = np.asarray(params["noise_seed"]).astype(np.uint64)

    def work(start: int) -> None:
        stop = min(start + chunk_size, n)
        p = {k: v[start:stop, None, None] for k, v in table.items()}
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            img = _render_chunk(p, size)
        # a slight lens blur, then sensor noise
        img = _soften(img)
        noise = _hash_normal(seeds[start:stop], size * size).reshape(-1, size, size)
        out[start:stop, 0] = np.clip(img + noise * p["noise"], 0.0, 1.0)

    starts = range(0, n, chunk_size)
    if n_threads is None:
        n_threads = min(4, os.cpu_count() or 1)
    if n_threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            list(pool.map(work, starts))
    else:
        for start in starts:
            work(start)
    return out


def _soften(img: np.ndarray, amount: float = 0.5) -> np.ndarray:
    """Mix a 3x3 binomial blur into ``img`` (b, H, W) with weight ``amount``."""
    pad = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h = pad[:, :, :-2] * _F(0.25) + pad[:, :, 1:-1] * _F(0.5) + pad[:, :, 2:] * _F(0.25)
    v = h[:, :-2] * _F(0.25) + h[:, 1:-1] * _F(0.5) + h[:, 2:] * _F(0.25)
    return img + (v - img) * _F(amount)


def _image_params(
    ids: pd.DataFrame,
    id_index: np.ndarray,
    expr_index: np.ndarray,
    nuisance: dict[str, np.ndarray],
    action_jitter: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-image render parameters.

    Parameters
    ----------
    ids : DataFrame (n_identities, ...)
        Identity parameters (from :func:`_identity_tables`).
    id_index, expr_index : ndarray (N,) int
        Row of ``ids`` and index into ``EXPRESSIONS`` of every image.
    nuisance : dict of str -> ndarray (N,)
        The ``_NUISANCE`` columns.
    action_jitter : ndarray (N, n_actions), optional
        Per-image factors on the action intensities.

    Returns
    -------
    dict of str -> ndarray (N,)
    """
    params = {name: ids[name].to_numpy(np.float64)[id_index] for name in _ID_NAMES + ("brow_alb",)}
    gains = ids[[f"gain_{a}" for a in _ACTIONS]].to_numpy(np.float64)[id_index]
    acts = _ACTION_TABLE[expr_index] * gains
    if action_jitter is not None:
        acts = acts * action_jitter
    for j, a in enumerate(_ACTIONS):
        params[f"a_{a}"] = acts[:, j]
    for name in _NUISANCE:
        params[name] = np.asarray(nuisance[name])
    return params


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


def _chunk_for(size: int) -> int:
    """Images per render batch: _CHUNK images of 48 x 48, fewer for larger images."""
    return max(1, (_CHUNK * 48 * 48) // (size * size))


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


def _noise_seeds(rng: np.random.Generator, n) -> np.ndarray:
    return rng.integers(0, np.iinfo(np.int64).max, size=n, dtype=np.int64).astype(np.uint64)


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


def _label(prefix: str, i: np.ndarray | int, n: int) -> Any:
    width = max(4, len(str(n)))
    if isinstance(i, (int, np.integer)):
        return f"{prefix}{int(i) + 1:0{width}d}"
    return [f"{prefix}{int(k) + 1:0{width}d}" for k in i]


def _categorical(values, categories) -> pd.Categorical:
    return pd.Categorical(values, categories=list(categories), ordered=True)


# ---------------------------------------------------------------------------------------
# public generators
# ---------------------------------------------------------------------------------------


def synthetic_faces(
    *,
    n_identities: int = 70,
    expressions: Sequence[str] = EXPRESSIONS,
    viewpoints: Sequence[str] = ("HL", "S", "HR"),
    sessions: Sequence[str] = SESSIONS,
    size: int = 48,
    seed: int = 0,
) -> StimulusSet:
    """The KDEF-like test set: one rendered face per identity x expression x viewpoint x
    session.

    Parameters
    ----------
    n_identities : int, default 70
        Number of people; half female (``"F01"``...), half male (``"M01"``...), one more
        woman when odd.
    expressions : sequence of str, default all of :data:`EXPRESSIONS`
        Expression codes (``"AF"``, ``"AN"``, ``"DI"``, ``"HA"``, ``"NE"``, ``"SA"``,
        ``"SU"``).
    viewpoints : sequence of str, default ``("HL", "S", "HR")``
        Viewpoint codes, keys of :data:`VIEWPOINTS` (``"FL"`` -90, ``"HL"`` -45,
        ``"S"`` 0, ``"HR"`` +45, ``"FR"`` +90 degrees of yaw).
    sessions : sequence of str, default ``("A", "B")``
        Photo sessions; each person has their own position, scale, lighting, background
        and noise in each session.
    size : int, default 48
        Image height and width in pixels (at least 16).
    seed : int, default 0
        Seed of the random streams. These people are drawn from the ``faces`` stream and
        are never the people of :func:`synthetic_expressions` or
        :func:`synthetic_identities` for any seed.

    Returns
    -------
    StimulusSet
        ``images`` of shape (n_identities * n_expressions * n_viewpoints * n_sessions,
        1, size, size), float32 in [0, 1]; rows ordered by identity (women first), then
        expression, viewpoint and session, each in its canonical order (whatever order
        the arguments list them in). ``metadata`` columns: ``identity``, ``sex``
        (``"female"``/``"male"``), ``expression``, ``viewpoint``, ``yaw`` (degrees),
        ``session`` and ``image_id`` (KDEF-style ``"AF01ANHL"``: session, sex, person,
        expression, viewpoint). Factor columns are ordered Categoricals (expressions in
        :data:`EXPRESSIONS` order, viewpoints by yaw).

    Notes
    -----
    A person's face, sessions and every single picture have their own random stream,
    so a smaller request (fewer identities, expressions, viewpoints or sessions) returns
    exactly the matching images of a bigger one.

    Examples
    --------
    >>> stim = synthetic_faces(n_identities=2, expressions=("HA", "NE"), size=32)
    >>> stim.images.shape
    (24, 1, 32, 32)
    >>> stim.metadata.image_id.iloc[0]
    'AF01HAHL'
    """
    n_identities = check_positive_int("n_identities", n_identities)
    expressions = _check_codes("expressions", expressions, EXPRESSIONS)
    view_order = tuple(sorted(VIEWPOINTS, key=VIEWPOINTS.get))
    viewpoints = _check_codes("viewpoints", viewpoints, view_order)
    sessions = _check_codes("sessions", sessions, SESSIONS)
    size = _check_size(size)
    seed = _check_seed(seed)
    stream = _STREAMS["faces"]

    people, ids = _kdef_people(seed, n_identities)
    n_e_all, n_v_all = len(EXPRESSIONS), len(view_order)

    # per person and session: a base draw, plus per-picture jitter for every expression
    # x viewpoint (drawn for all of them, so that subsets are stable)
    sess = {}
    for i, (sex, k) in enumerate(people):
        for si, letter in enumerate(SESSIONS):
            rng = np.random.default_rng(
                np.random.SeedSequence(seed, spawn_key=(stream, sex, k, 1, si))
            )
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
            sess[i, letter] = (base, jit)

    rows = []
    cols = {name: [] for name in _NUISANCE}
    for i, (sex, k) in enumerate(people):
        sex_letter = "FM"[sex]
        ident = f"{sex_letter}{k:02d}"
        for e in expressions:
            ei = EXPRESSIONS.index(e)
            for v in viewpoints:
                vi = view_order.index(v)
                for letter in sessions:
                    base, jit = sess[i, letter]
                    cols["yaw"].append(VIEWPOINTS[v])
                    cols["shift_x"].append((base["shift_x"] + jit["jx"][ei, vi]) * _PX48)
                    cols["shift_y"].append((base["shift_y"] + jit["jy"][ei, vi]) * _PX48)
                    cols["light_int"].append(base["light_int"] * jit["jl"][ei, vi])
                    cols["noise_seed"].append(jit["seed"][ei, vi])
                    for name in (
                        "scale",
                        "light_az",
                        "light_el",
                        "ambient",
                        "bg",
                        "bg_grad",
                        "noise",
                    ):
                        cols[name].append(base[name])
                    rows.append(
                        (
                            i,
                            ident,
                            _SEXES[sex],
                            e,
                            v,
                            VIEWPOINTS[v],
                            letter,
                            f"{letter}{sex_letter}{k:02d}{e}{v}",
                        )
                    )
    id_index = np.array([r[0] for r in rows], dtype=np.int64)
    expr_index = np.array([EXPRESSIONS.index(r[3]) for r in rows], dtype=np.int64)
    nuisance = {name: np.asarray(vals) for name, vals in cols.items()}
    nuisance["noise_seed"] = nuisance["noise_seed"].astype(np.uint64)
    params = _image_params(ids, id_index, expr_index, nuisance)
    logger.debug("synthetic_faces: rendering %d images of %dx%d", len(rows), size, size)
    images = _render(params, size, _chunk_for(size))

    idents = [f"{'FM'[s]}{k:02d}" for s, k in people]
    meta = pd.DataFrame(
        {
            "identity": _categorical([r[1] for r in rows], idents),
            "sex": _categorical([r[2] for r in rows], _SEXES),
            "expression": _categorical([r[3] for r in rows], expressions),
            "viewpoint": _categorical([r[4] for r in rows], viewpoints),
            "yaw": np.array([r[5] for r in rows], dtype=np.float64),
            "session": _categorical([r[6] for r in rows], sessions),
            "image_id": [r[7] for r in rows],
        }
    )
    return StimulusSet(images, meta, name="synthetic_faces")


def synthetic_expressions(
    *,
    n_images: int = 2800,
    n_identities: int = 400,
    split: str = "train",
    size: int = 48,
    seed: int = 0,
    yaw_jitter: float = 30.0,
) -> StimulusSet:
    """A FER2013-like training set: expression labels over many people and random views.

    Parameters
    ----------
    n_images : int, default 2800
        Number of images; the seven expressions are balanced (counts differ by at most
        one) and so are the people.
    n_identities : int, default 400
        Number of people the images are spread over.
    split : {"train", "test"}, default "train"
        The two splits draw their people from different random streams, so no person
        is in both (nor in :func:`synthetic_faces` or :func:`synthetic_identities`).
    size : int, default 48
        Image height and width in pixels (at least 16).
    seed : int, default 0
        Seed of the random streams.
    yaw_jitter : float, default 30.0
        Yaw is uniform in [-yaw_jitter, yaw_jitter] degrees (0 to 90).

    Returns
    -------
    StimulusSet
        ``images`` (n_images, 1, size, size) float32 in [0, 1]. ``metadata`` columns:
        ``expression`` (Categorical in :data:`EXPRESSIONS` order), ``identity``
        (``"E0001"``... for the train split, ``"T0001"``... for the test split),
        ``sex`` and ``yaw`` (degrees). Each image also has its own position (about
        +-1.5 pixels at 48 x 48), scale (+-6 %), light direction and intensity,
        background grey, pixel noise and expression intensity (+-20 % per action).

    Examples
    --------
    >>> stim = synthetic_expressions(n_images=14, n_identities=5, size=32)
    >>> stim.metadata.expression.value_counts().tolist()
    [2, 2, 2, 2, 2, 2, 2]
    """
    n_images = check_positive_int("n_images", n_images)
    n_identities = check_positive_int("n_identities", n_identities)
    split = check_choice("split", split, ("train", "test"))
    size = _check_size(size)
    seed = _check_seed(seed)
    yaw_jitter = _check_jitter(yaw_jitter)
    stream = _STREAMS["expressions_" + split]
    ids = _random_people(seed, stream, n_identities)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, 1)))
    expr_index = rng.permutation(np.arange(n_images) % len(EXPRESSIONS))
    id_index = rng.permutation(np.arange(n_images) % n_identities)
    nuisance = _free_nuisance(rng, n_images, yaw_jitter)
    jitter = rng.uniform(0.8, 1.2, (n_images, len(_ACTIONS)))
    params = _image_params(ids, id_index, expr_index, nuisance, jitter)
    logger.debug("synthetic_expressions: rendering %d images of %dx%d", n_images, size, size)
    images = _render(params, size, _chunk_for(size))
    labels = _label("E" if split == "train" else "T", np.arange(n_identities), n_identities)
    meta = pd.DataFrame(
        {
            "expression": _categorical(np.asarray(EXPRESSIONS)[expr_index], EXPRESSIONS),
            "identity": _categorical(np.asarray(labels)[id_index], labels),
            "sex": _categorical(np.asarray(_SEXES)[ids["sex_code"].to_numpy()[id_index]], _SEXES),
            "yaw": nuisance["yaw"].astype(np.float64),
        }
    )
    return StimulusSet(images, meta, name="synthetic_expressions")


def synthetic_identities(
    *,
    n_identities: int = 100,
    n_images_per_identity: int = 20,
    split: str = "train",
    size: int = 48,
    seed: int = 0,
    yaw_jitter: float = 30.0,
) -> StimulusSet:
    """A CelebA-like training set: identity labels, many pictures of each person.

    Parameters
    ----------
    n_identities : int, default 100
        Number of people (``"C0001"``...). They are the same people in both splits and
        never people of :func:`synthetic_faces` or :func:`synthetic_expressions`.
    n_images_per_identity : int, default 20
        Pictures of each person.
    split : {"train", "test"}, default "train"
        Selects an independent set of pictures of the same people (different random
        expression, yaw, position, scale, lighting, background and noise), for
        identity classification.
    size : int, default 48
        Image height and width in pixels (at least 16).
    seed : int, default 0
        Seed of the random streams.
    yaw_jitter : float, default 30.0
        Yaw is uniform in [-yaw_jitter, yaw_jitter] degrees (0 to 90).

    Returns
    -------
    StimulusSet
        ``images`` (n_identities * n_images_per_identity, 1, size, size) float32 in
        [0, 1], rows grouped by person. ``metadata`` columns: ``identity``
        (Categorical), ``sex``, ``expression`` (uniformly random, Categorical in
        :data:`EXPRESSIONS` order) and ``yaw`` (degrees).

    Examples
    --------
    >>> stim = synthetic_identities(n_identities=3, n_images_per_identity=2, size=32)
    >>> stim.metadata.identity.tolist()
    ['C0001', 'C0001', 'C0002', 'C0002', 'C0003', 'C0003']
    """
    n_identities = check_positive_int("n_identities", n_identities)
    n_per = check_positive_int("n_images_per_identity", n_images_per_identity)
    split = check_choice("split", split, ("train", "test"))
    size = _check_size(size)
    seed = _check_seed(seed)
    yaw_jitter = _check_jitter(yaw_jitter)
    stream = _STREAMS["identities"]
    ids = _random_people(seed, stream, n_identities)
    n = n_identities * n_per
    rng = np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(stream, 1, ("train", "test").index(split)))
    )
    id_index = np.repeat(np.arange(n_identities), n_per)
    expr_index = rng.integers(0, len(EXPRESSIONS), n)
    nuisance = _free_nuisance(rng, n, yaw_jitter)
    jitter = rng.uniform(0.8, 1.2, (n, len(_ACTIONS)))
    params = _image_params(ids, id_index, expr_index, nuisance, jitter)
    logger.debug("synthetic_identities: rendering %d images of %dx%d", n, size, size)
    images = _render(params, size, _chunk_for(size))
    labels = _label("C", np.arange(n_identities), n_identities)
    meta = pd.DataFrame(
        {
            "identity": _categorical(np.asarray(labels)[id_index], labels),
            "sex": _categorical(np.asarray(_SEXES)[ids["sex_code"].to_numpy()[id_index]], _SEXES),
            "expression": _categorical(np.asarray(EXPRESSIONS)[expr_index], EXPRESSIONS),
            "yaw": nuisance["yaw"].astype(np.float64),
        }
    )
    return StimulusSet(images, meta, name="synthetic_identities")


# ---------------------------------------------------------------------------------------
# aerial scenes
# ---------------------------------------------------------------------------------------

_SCENE_BLOCK = 10  # images drawn together from one stream (so the train/test rule aligns)
_TAU = _F(2.0 * np.pi)


class _Canvas:
    """Coordinates and random helpers for a block of ``n`` aerial images of ``size``
    pixels; image coordinates run over [-1, 1]."""

    def __init__(self, rng: np.random.Generator, n: int, size: int):
        self.rng, self.n, self.size = rng, n, size
        g = (np.arange(size, dtype=np.float32) + _F(0.5)) * _F(2.0 / size) - _F(1.0)
        self.x = g[None, None, :]
        self.y = -g[None, :, None]
        self.w = _F(2.0 / size)  # pixel footprint
        self.seeds = _noise_seeds(rng, (n, 1, 1))

    def u(self, lo: float, hi: float) -> np.ndarray:
        """One uniform draw per image, shape (n, 1, 1)."""
        return self.rng.uniform(lo, hi, (self.n, 1, 1)).astype(np.float32)

    def frame(self, angle=None, centre: float = 0.3):
        """Rotated and shifted coordinates (xr, yr), each (n, H, W)."""
        th = self.u(0.0, np.pi) if angle is None else angle
        cx, cy = self.u(-centre, centre), self.u(-centre, centre)
        x, y = self.x - cx, self.y - cy
        c, s = np.cos(th), np.sin(th)
        return x * c + y * s, -x * s + y * c

    def noise(self, scale: float) -> np.ndarray:
        """Smooth Gaussian noise with correlation length ``scale`` (image units), unit
        standard deviation per image, shape (n, H, W)."""
        size = self.size
        white = self.rng.standard_normal((self.n, size, size))
        fy = np.fft.fftfreq(size)[:, None]
        fx = np.fft.rfftfreq(size)[None, :]
        sigma_px = scale * size / 2.0
        filt = np.exp(-2.0 * (np.pi * sigma_px) ** 2 * (fx**2 + fy**2))
        field = np.fft.irfft2(np.fft.rfft2(white) * filt, s=(size, size))
        field -= field.mean(axis=(1, 2), keepdims=True)
        field /= field.std(axis=(1, 2), keepdims=True) + 1e-8
        return field.astype(np.float32)

    def cell(self, ix, iy, salt: int) -> np.ndarray:
        """A uniform [0, 1) value per integer cell (ix, iy) of each image."""
        key = (
            self.seeds
            ^ (ix.astype(np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
            ^ (iy.astype(np.int64).astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F))
            ^ np.uint64(salt * 0x165667B19E3779F9 % (1 << 64))
        )
        return ((_splitmix(key) >> np.uint64(40)).astype(np.float32)) * _F(1.0 / (1 << 24))


def _box(x, y, hw, hh, w):
    return _cov(np.abs(x) - hw, w) * _cov(np.abs(y) - hh, w)


def _disc(x, y, r, w):
    return _cov(np.sqrt(x * x + y * y) - r, w)


def _ellipse(x, y, a, b, w):
    """Coverage of the ellipse (x/a)^2 + (y/b)^2 < 1 (approximate distance)."""
    rho = np.sqrt(np.square(x / a) + np.square(y / b))
    return _cov((rho - _F(1.0)) * np.minimum(a, b), w)


def _over(img, cover, value):
    """Paint ``value`` over ``img`` with coverage ``cover``."""
    return img + (value - img) * cover


def _cells(xr, yr, cw, ch):
    """Integer cell indices and cell-centred local coordinates of a rectangular grid."""
    fx, fy = xr / cw, yr / ch
    ix, iy = np.floor(fx), np.floor(fy)
    return ix, iy, (fx - ix - _F(0.5)) * cw, (fy - iy - _F(0.5)) * ch


def _sc_agricultural(cv: _Canvas):
    xr, yr = cv.frame()
    cw = cv.u(0.25, 0.6)
    ch = cw * cv.u(0.5, 1.6)
    ix, iy, lx, ly = _cells(xr, yr, cw, ch)
    tone = _F(0.25) + _F(0.55) * cv.cell(ix, iy, 1)
    along = cv.cell(ix, iy, 2) > 0.5
    freq = cv.u(9.0, 18.0) * _TAU
    rows = np.sin(np.where(along, xr, yr) * freq)
    img = tone + _F(0.1) * cv.cell(ix, iy, 3) * rows + _F(0.03) * cv.noise(0.1)
    edge = _band(np.minimum(cw * _F(0.5) - np.abs(lx), ch * _F(0.5) - np.abs(ly)), _F(0.006), cv.w)
    return img * (_F(1.0) - _F(0.25) * edge)


def _sc_airplane(cv: _Canvas):
    img = _F(0.55) + _F(0.05) * cv.noise(0.3)
    xr, yr = cv.frame()
    for off in (-0.35, 0.3):  # taxiway markings
        img = _over(img, _band(xr - _F(off), _F(0.01), cv.w) * _F(0.7), _F(0.85))
    n_planes = cv.rng.integers(1, 4, (cv.n, 1, 1))
    for k in range(3):
        a, b = cv.frame(centre=0.55)
        size = cv.u(0.22, 0.42)
        on = (n_planes > k).astype(np.float32)
        tone = cv.u(0.75, 0.95)
        for dx, val in ((0.03, 0.25), (0.0, None)):  # shadow first, then the plane
            pa, pb = a - _F(dx), b + _F(dx)
            body = _ellipse(pa, pb, size, size * _F(0.11), cv.w)
            wings = _ellipse(
                pa - size * _F(0.05) + np.abs(pb) * _F(0.35),
                pb,
                size * _F(0.12),
                size * _F(0.95),
                cv.w,
            )
            tail = _ellipse(pa + size * _F(0.85), pb, size * _F(0.07), size * _F(0.32), cv.w)
            cover = np.clip(body + wings + tail, 0.0, 1.0) * on
            img = _over(img, cover, tone if val is None else _F(val))
    return img


def _sc_baseballdiamond(cv: _Canvas):
    img = _F(0.42) + _F(0.05) * cv.noise(0.2)
    xr, yr = cv.frame(centre=0.2)
    yr = yr + _F(0.45)
    rad = cv.u(0.7, 1.0)
    mow = _F(0.04) * np.sign(np.sin(xr * cv.u(8.0, 14.0) * _TAU))
    wedge = (yr > np.abs(xr) - _F(0.05)).astype(np.float32)
    outfield = wedge * _cov(np.sqrt(xr * xr + yr * yr) - rad * _F(1.6), cv.w)
    img = img + mow * outfield
    dirt = wedge * _cov(np.sqrt(xr * xr + yr * yr) - rad * _F(0.75), cv.w)
    img = _over(img, dirt, cv.u(0.65, 0.8))
    side = rad * _F(0.45)
    grass = _cov(np.abs(xr) + np.abs(yr - side) - side * _F(0.8), cv.w)
    img = _over(img, grass, _F(0.45))
    lines = (
        (_band(yr - np.abs(xr), _F(0.008), cv.w))
        * wedge
        * _cov(np.sqrt(xr * xr + yr * yr) - rad * _F(1.6), cv.w)
    )
    img = _over(img, np.clip(lines, 0, 1), _F(0.95))
    for bx, by in ((0.0, 0.0), (1.0, 1.0), (-1.0, 1.0), (0.0, 2.0), (0.0, 1.0)):
        img = _over(img, _disc(xr - side * _F(bx), yr - side * _F(by), _F(0.03), cv.w), _F(0.9))
    return img


def _sc_beach(cv: _Canvas):
    xr, yr = cv.frame(centre=0.4)
    shore = _F(0.15) * np.sin(yr * cv.u(0.2, 0.7) * _TAU + cv.u(0, 6.3)) + _F(0.06) * cv.noise(0.2)
    d = xr - shore
    waves = _F(0.04) * np.sin((d + _F(0.02) * cv.noise(0.1)) * cv.u(25.0, 45.0))
    water = cv.u(0.15, 0.3) + waves
    sand = cv.u(0.7, 0.85) + _F(0.03) * cv.noise(0.05)
    img = _over(water, _cov(-d, cv.w), sand)
    img = _over(img, _band(d + _F(0.03), _F(0.02), cv.w) * _F(0.8), _F(0.95))
    img = _over(img, _band(d - _F(0.04), _F(0.03), cv.w) * _F(0.5), _F(0.5))
    return img


def _sc_buildings(cv: _Canvas):
    xr, yr = cv.frame()
    cw = cv.u(0.35, 0.6)
    ch = cw * cv.u(0.7, 1.4)
    ix, iy, lx, ly = _cells(xr, yr, cw, ch)
    img = _F(0.33) + _F(0.03) * cv.noise(0.05)
    hw = cw * (_F(0.28) + _F(0.15) * cv.cell(ix, iy, 1))
    hh = ch * (_F(0.28) + _F(0.15) * cv.cell(ix, iy, 2))
    img = _over(img, _box(lx - _F(0.03), ly + _F(0.03), hw, hh, cv.w), _F(0.12))  # shadow
    roof = _F(0.45) + _F(0.45) * cv.cell(ix, iy, 3)
    img = _over(img, _box(lx, ly, hw, hh, cv.w), roof)
    unit = _box(lx - hw * _F(0.4), ly - hh * _F(0.3), hw * _F(0.2), hh * _F(0.15), cv.w)
    img = _over(img, unit * (cv.cell(ix, iy, 4) > 0.4), roof * _F(0.7))
    return img


def _sc_chaparral(cv: _Canvas):
    soil = cv.u(0.55, 0.75) + _F(0.05) * cv.noise(0.2)
    shrubs = cv.noise(0.04) + _F(0.6) * cv.noise(0.15)
    cover = np.clip((shrubs - cv.u(-0.2, 0.6)) * _F(3.0), 0.0, 1.0)
    return _over(soil, cover, _F(0.3) + _F(0.08) * cv.noise(0.03))


def _houses(cv: _Canvas, xr, yr, cw, ch, fill, p_house, tone_lo=0.5):
    ix, iy, lx, ly = _cells(xr, yr, cw, ch)
    present = (cv.cell(ix, iy, 11) < p_house).astype(np.float32)
    hw = cw * fill * (_F(0.8) + _F(0.4) * cv.cell(ix, iy, 12))
    hh = ch * fill * (_F(0.8) + _F(0.4) * cv.cell(ix, iy, 13))
    shadow = _box(lx - _F(0.015), ly + _F(0.015), hw, hh, cv.w) * present
    tone = _F(tone_lo) + _F(0.4) * cv.cell(ix, iy, 14)
    gable = np.where(ly > 0, tone, tone * _F(0.75))
    house = _box(lx, ly, hw, hh, cv.w) * present
    tree = _disc(lx - cw * _F(0.45), ly - ch * _F(0.45), cw * _F(0.18), cv.w)
    tree = tree * (cv.cell(ix, iy, 15) < 0.6)
    return shadow, house, gable, tree


def _sc_residential(cv: _Canvas, cell, fill, p_house, street_every, lawn=0.48):
    xr, yr = cv.frame()
    xr = xr + _F(0.04) * np.sin(yr * cv.u(0.5, 2.0) * _TAU) * _F(street_every < 4)
    cw = cv.u(*cell)
    ch = cw * cv.u(0.8, 1.2)
    img = _F(lawn) + _F(0.06) * cv.noise(0.05)
    shadow, house, gable, tree = _houses(cv, xr, yr, cw, ch, fill, p_house)
    img = _over(img, shadow, _F(0.15))
    img = _over(img, house, gable)
    img = _over(img, tree, _F(0.22) + _F(0.05) * cv.noise(0.02))
    sx = xr / (cw * street_every)
    street = _band((sx - np.round(sx)) * cw * street_every, cw * _F(0.12), cv.w)
    return _over(img, street, _F(0.35))


def _sc_denseresidential(cv):
    return _sc_residential(cv, (0.12, 0.17), 0.36, 0.95, 3)


def _sc_mediumresidential(cv):
    return _sc_residential(cv, (0.2, 0.26), 0.27, 0.8, 3)


def _sc_sparseresidential(cv):
    return _sc_residential(cv, (0.3, 0.4), 0.16, 0.35, 8, lawn=0.45)


def _sc_forest(cv: _Canvas):
    crowns = cv.noise(0.025) + _F(0.5) * cv.noise(0.06)
    img = cv.u(0.18, 0.3) + _F(0.09) * np.clip(crowns, -1.5, 2.0)
    gaps = np.clip((cv.noise(0.2) - _F(1.6)) * _F(2.0), 0.0, 1.0)
    return _over(img, gaps, _F(0.45))


def _lanes(cv, d, yr, half_width, n_lanes, tone):
    """A road of ``n_lanes`` lanes across offset ``d`` (distance from its axis)."""
    road = _cov(np.abs(d) - half_width, cv.w)
    img_road = tone + _F(0.02) * cv.noise(0.1)
    dash = (np.sin(yr * _F(30.0)) > 0).astype(np.float32)
    marks = np.zeros_like(d)
    for k in range(1, n_lanes):
        off = -half_width + _F(2.0 * k / n_lanes) * half_width
        marks = marks + _band(d - off, _F(0.006), cv.w) * dash
    edges = _band(np.abs(d) - half_width * _F(0.92), _F(0.005), cv.w)
    return road, img_road, np.clip(marks + edges, 0.0, 1.0)


def _sc_freeway(cv: _Canvas):
    img = _F(0.5) + _F(0.07) * cv.noise(0.1)
    xr, yr = cv.frame()
    gap = cv.u(0.06, 0.14)
    hw = cv.u(0.09, 0.14)
    for sgn in (-1.0, 1.0):
        road, tone, marks = _lanes(cv, xr - _F(sgn) * (gap + hw), yr, hw, 3, cv.u(0.18, 0.3))
        img = _over(img, road, tone)
        img = _over(img, marks * road, _F(0.85))
    return img


def _sc_golfcourse(cv: _Canvas):
    img = _F(0.36) + _F(0.05) * cv.noise(0.1)
    xr, yr = cv.frame()
    d = xr - _F(0.3) * np.sin(yr * cv.u(0.5, 1.2) * _TAU + cv.u(0, 6.3))
    fair = _cov(np.abs(d) - cv.u(0.15, 0.28), cv.w * _F(3.0))
    stripes = _F(0.03) * np.sign(np.sin(yr * _F(25.0)))
    img = _over(img, fair, _F(0.55) + stripes)
    trees = np.clip((cv.noise(0.04) - _F(0.8)) * _F(3.0), 0.0, 1.0) * (_F(1.0) - fair)
    img = _over(img, trees, _F(0.18))
    for _ in range(3):
        bx, by = cv.u(-0.7, 0.7), cv.u(-0.7, 0.7)
        r = cv.u(0.04, 0.09)
        wob = _F(1.0) + _F(0.25) * np.sin(np.arctan2(cv.y - by, cv.x - bx) * _F(3.0))
        img = _over(img, _disc(cv.x - bx, cv.y - by, r * wob, cv.w), _F(0.9))
    gx, gy = cv.u(-0.5, 0.5), cv.u(-0.5, 0.5)
    return _over(img, _disc(cv.x - gx, cv.y - gy, cv.u(0.1, 0.16), cv.w * _F(2.0)), _F(0.65))


def _sc_harbor(cv: _Canvas):
    img = cv.u(0.12, 0.25) + _F(0.03) * cv.noise(0.1)
    xr, yr = cv.frame()
    sp = cv.u(0.22, 0.34)
    fx = xr / sp
    ix = np.round(fx)
    dx = (fx - ix) * sp
    img = _over(img, _band(dx, _F(0.012), cv.w), _F(0.7))
    slot = _F(0.065)
    iy = np.floor(yr / slot)
    ly = (yr / slot - iy - _F(0.5)) * slot
    for side, salt in ((-1.0, 1), (1.0, 2)):
        boat = _ellipse(dx - _F(side) * _F(0.055), ly, _F(0.035), _F(0.016), cv.w)
        present = cv.cell(ix, iy, salt) < cv.u(0.5, 0.95)
        img = _over(img, boat * present, _F(0.8) + _F(0.15) * cv.cell(ix, iy, salt + 5))
    return img


def _sc_intersection(cv: _Canvas):
    xr, yr = cv.frame(centre=0.25)
    q = (xr > 0).astype(np.int64) + 2 * (yr > 0).astype(np.int64)
    tone = _F(0.35) + _F(0.4) * cv.cell(q, q, 1)
    img = tone + _F(0.06) * cv.noise(0.05)
    shadow, house, gable, tree = _houses(cv, xr, yr, _F(0.2), _F(0.2), _F(0.3), _F(0.7))
    img = _over(img, house, gable)
    img = _over(img, tree, _F(0.2))
    hw = cv.u(0.1, 0.15)
    for d, along in ((xr, yr), (yr, xr)):
        road, rt, marks = _lanes(cv, d, along, hw, 2, cv.u(0.3, 0.4))
        img = _over(img, road, rt)
        img = _over(img, marks * road * _cov(hw * _F(1.3) - np.abs(along), cv.w), _F(0.85))
    zebra = (np.sin(xr * _F(90.0)) > 0.2) * _band(np.abs(yr) - hw * _F(1.15), _F(0.03), cv.w)
    zebra = zebra + (np.sin(yr * _F(90.0)) > 0.2) * _band(
        np.abs(xr) - hw * _F(1.15), _F(0.03), cv.w
    )
    return _over(
        img, np.clip(zebra, 0.0, 1.0) * _cov(np.minimum(np.abs(xr), np.abs(yr)) - hw, cv.w), _F(0.9)
    )


def _sc_mobilehomepark(cv: _Canvas):
    xr, yr = cv.frame()
    cw = cv.u(0.08, 0.11)
    ch = cw * cv.u(2.8, 3.6)
    ix, iy, lx, ly = _cells(xr, yr, cw, ch)
    img = _F(0.4) + _F(0.04) * cv.noise(0.05)
    present = cv.cell(ix, iy, 1) < 0.92
    tone = _F(0.65) + _F(0.3) * cv.cell(ix, iy, 2)
    img = _over(
        img,
        _box(lx - _F(0.01), ly + _F(0.01), cw * _F(0.32), ch * _F(0.4), cv.w) * present,
        _F(0.15),
    )
    img = _over(img, _box(lx, ly, cw * _F(0.32), ch * _F(0.4), cv.w) * present, tone)
    tree = np.clip((cv.noise(0.03) - _F(1.3)) * _F(3.0), 0.0, 1.0)
    return _over(img, tree, _F(0.2))


def _sc_overpass(cv: _Canvas):
    img = _F(0.45) + _F(0.07) * cv.noise(0.12)
    th = cv.u(0.0, np.pi)
    xr, yr = cv.frame(angle=th, centre=0.15)
    road, tone, marks = _lanes(cv, xr, yr, cv.u(0.1, 0.15), 2, cv.u(0.22, 0.32))
    img = _over(img, road, tone)
    img = _over(img, marks * road, _F(0.8))
    xr2, yr2 = cv.frame(angle=th + cv.u(0.7, 1.57), centre=0.15)
    hw2 = cv.u(0.08, 0.12)
    img = _over(img, _cov(np.abs(xr2 - _F(0.06)) - hw2, cv.w) * _F(0.8), _F(0.1))  # shadow
    road2, tone2, marks2 = _lanes(cv, xr2, yr2, hw2, 2, cv.u(0.6, 0.72))
    img = _over(img, road2, tone2)
    img = _over(img, _band(np.abs(xr2) - hw2, _F(0.01), cv.w), _F(0.75))  # parapets
    return _over(img, marks2 * road2, _F(0.9))


def _sc_parkinglot(cv: _Canvas):
    xr, yr = cv.frame(centre=0.5)
    img = cv.u(0.25, 0.4) + _F(0.03) * cv.noise(0.1)
    sw = cv.u(0.055, 0.075)
    rd = sw * _F(2.2)
    ix, iy, lx, ly = _cells(xr, yr, sw, rd)
    in_row = (np.mod(iy, 3) != 2).astype(np.float32)  # every third row is an aisle
    lines = _band(np.abs(lx) - sw * _F(0.5), _F(0.005), cv.w) * _cov(
        np.abs(ly) - rd * _F(0.42), cv.w
    )
    img = _over(img, lines * in_row, _F(0.85))
    present = (cv.cell(ix, iy, 1) < cv.u(0.4, 0.95)) * in_row
    car = _box(lx, ly, sw * _F(0.3), rd * _F(0.33), cv.w) * present
    return _over(img, car, _F(0.1) + _F(0.85) * cv.cell(ix, iy, 2))


def _sc_river(cv: _Canvas):
    img = _F(0.42) + _F(0.1) * cv.noise(0.08)
    xr, yr = cv.frame(centre=0.3)
    d = (
        xr
        - cv.u(0.15, 0.4) * np.sin(yr * cv.u(0.6, 1.5) * _TAU + cv.u(0, 6.3))
        - _F(0.05) * cv.noise(0.2)
    )
    hw = cv.u(0.08, 0.2)
    img = _over(img, _cov(np.abs(d) - hw - _F(0.025), cv.w), _F(0.62))  # banks
    return _over(img, _cov(np.abs(d) - hw, cv.w), cv.u(0.12, 0.25) + _F(0.02) * cv.noise(0.1))


def _sc_runway(cv: _Canvas):
    img = _F(0.38) + _F(0.06) * cv.noise(0.15)
    xr, yr = cv.frame(centre=0.2)
    hw = cv.u(0.13, 0.2)
    img = _over(img, _cov(np.abs(xr) - hw, cv.w), cv.u(0.6, 0.72) + _F(0.02) * cv.noise(0.05))
    img = _over(img, _cov(np.abs(xr - _F(0.55)) - hw * _F(0.35), cv.w), _F(0.5))  # taxiway
    centre = _band(xr, _F(0.007), cv.w) * (np.sin(yr * _F(22.0)) > 0)
    edge = _band(np.abs(xr) - hw * _F(0.92), _F(0.005), cv.w)
    keys = (np.sin(xr / hw * _F(20.0)) > 0) * _cov(np.abs(xr) - hw * _F(0.8), cv.w)
    keys = keys * _cov(np.abs(yr - cv.u(0.4, 0.8)) - _F(0.06), cv.w)
    return _over(img, np.clip(centre + edge + keys, 0.0, 1.0), _F(0.92))


def _sc_storagetanks(cv: _Canvas):
    img = _F(0.5) + _F(0.05) * cv.noise(0.2)
    n_tanks = cv.rng.integers(2, 8, (cv.n, 1, 1))
    for k in range(7):
        tx, ty = cv.u(-0.7, 0.7), cv.u(-0.7, 0.7)
        r = cv.u(0.08, 0.2)
        on = (n_tanks > k).astype(np.float32)
        img = _over(img, _disc(cv.x - tx - _F(0.04), cv.y - ty + _F(0.04), r, cv.w) * on, _F(0.15))
        img = _over(img, _disc(cv.x - tx, cv.y - ty, r, cv.w) * on, cv.u(0.7, 0.92))
        ring = _band(
            np.sqrt(np.square(cv.x - tx) + np.square(cv.y - ty)) - r * _F(0.8), _F(0.008), cv.w
        )
        img = _over(img, ring * on, _F(0.5))
    return img


def _sc_tenniscourt(cv: _Canvas):
    img = _F(0.45) + _F(0.07) * cv.noise(0.1)
    xr, yr = cv.frame(centre=0.25)
    n_courts = cv.rng.integers(1, 4, (cv.n, 1, 1))
    cw, cl = cv.u(0.16, 0.22), cv.u(0.38, 0.5)
    surface = cv.u(0.3, 0.65)
    for k in range(3):
        on = (n_courts > k).astype(np.float32)
        lx = xr - (_F(k) - _F(1.0)) * cw * _F(2.4)
        img = _over(img, _box(lx, yr, cw * _F(1.15), cl * _F(1.12), cv.w) * on, surface * _F(0.85))
        img = _over(img, _box(lx, yr, cw, cl, cv.w) * on, surface)
        lines = (
            _band(np.abs(lx) - cw, _F(0.006), cv.w) * _cov(np.abs(yr) - cl, cv.w)
            + _band(np.abs(yr) - cl, _F(0.006), cv.w) * _cov(np.abs(lx) - cw, cv.w)
            + _band(np.abs(lx) - cw * _F(0.78), _F(0.005), cv.w) * _cov(np.abs(yr) - cl, cv.w)
            + _band(np.abs(yr) - cl * _F(0.54), _F(0.005), cv.w)
            * _cov(np.abs(lx) - cw * _F(0.78), cv.w)
            + _band(lx, _F(0.005), cv.w) * _cov(np.abs(yr) - cl * _F(0.54), cv.w)
        )
        img = _over(img, np.clip(lines, 0.0, 1.0) * on, _F(0.95))
        img = _over(
            img, _band(yr, _F(0.006), cv.w) * _cov(np.abs(lx) - cw * _F(1.1), cv.w) * on, _F(0.1)
        )
    return img


_SCENE_MAKERS = {
    "agricultural": _sc_agricultural,
    "airplane": _sc_airplane,
    "baseballdiamond": _sc_baseballdiamond,
    "beach": _sc_beach,
    "buildings": _sc_buildings,
    "chaparral": _sc_chaparral,
    "denseresidential": _sc_denseresidential,
    "forest": _sc_forest,
    "freeway": _sc_freeway,
    "golfcourse": _sc_golfcourse,
    "harbor": _sc_harbor,
    "intersection": _sc_intersection,
    "mediumresidential": _sc_mediumresidential,
    "mobilehomepark": _sc_mobilehomepark,
    "overpass": _sc_overpass,
    "parkinglot": _sc_parkinglot,
    "river": _sc_river,
    "runway": _sc_runway,
    "sparseresidential": _sc_sparseresidential,
    "storagetanks": _sc_storagetanks,
    "tenniscourt": _sc_tenniscourt,
}


def _scene_block(seed: int, class_index: int, block: int, size: int) -> np.ndarray:
    """Images ``block * 10 .. block * 10 + 9`` of one scene class, (10, size, size)."""
    rng = np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(_STREAMS["scenes"], class_index, block))
    )
    cv = _Canvas(rng, _SCENE_BLOCK, size)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        img = _SCENE_MAKERS[SCENE_CLASSES[class_index]](cv).astype(np.float32)
    # exposure: contrast and brightness of the photograph, then sensor noise
    mean = img.mean(axis=(1, 2), keepdims=True)
    img = (img - mean) * cv.u(0.75, 1.25) + mean + cv.u(-0.08, 0.08)
    img = img + cv.noise(0.0) * cv.u(0.005, 0.025)
    return np.clip(_soften(img, 0.4), 0.0, 1.0)


def synthetic_scenes(
    *,
    n_per_class: int = 100,
    split: str | None = None,
    size: int = 48,
    seed: int = 0,
) -> StimulusSet:
    """A UC-Merced-like set of procedural aerial scenes in 21 land-use classes.

    Parameters
    ----------
    n_per_class : int, default 100
        Images per class (UC Merced has 100).
    split : {None, "train", "test"}, default None
        ``None`` returns every image; ``"test"`` every 10th image of each class
        (``index % 10 == 9``), as in the study; ``"train"`` the others.
    size : int, default 48
        Image height and width in pixels (at least 16).
    seed : int, default 0
        Seed of the random streams. Image ``index`` of a class does not depend on
        ``n_per_class`` or ``split``.

    Returns
    -------
    StimulusSet
        ``images`` (n, 1, size, size) float32 in [0, 1], rows grouped by class in
        :data:`SCENE_CLASSES` order. ``metadata`` columns: ``scene`` (Categorical in
        :data:`SCENE_CLASSES` order) and ``index`` (0 .. n_per_class - 1 within its
        class).

    Notes
    -----
    Each class is a procedural texture with random orientation, position, scale and
    contrast: field patchworks (agricultural), parked aircraft, ball fields, shorelines,
    building blocks, shrubland, house grids of three densities, tree canopy, multi-lane
    roads, fairways with bunkers, piers with boats, crossings, trailer rows, bridges with
    shadows, parking stalls with cars, rivers, runways with markings, round tanks and
    tennis courts.

    Examples
    --------
    >>> stim = synthetic_scenes(n_per_class=10, split="test", size=32)
    >>> len(stim), stim.metadata["index"].unique().tolist()
    (21, [9])
    """
    n_per_class = check_positive_int("n_per_class", n_per_class)
    if split is not None:
        split = check_choice("split", split, ("train", "test"), hint="Or None for all images.")
    size = _check_size(size)
    seed = _check_seed(seed)
    index = np.arange(n_per_class)
    if split == "test":
        keep = index % 10 == 9
    elif split == "train":
        keep = index % 10 != 9
    else:
        keep = np.ones(n_per_class, dtype=bool)
    if not keep.any():
        raise ValueError(
            f"split='test' needs n_per_class >= 10 (every 10th image is a test image), "
            f"got n_per_class={n_per_class}."
        )
    n_blocks = -(-n_per_class // _SCENE_BLOCK)
    images, scenes, idx = [], [], []
    for ci, name in enumerate(SCENE_CLASSES):
        block = np.concatenate([_scene_block(seed, ci, j, size) for j in range(n_blocks)])
        images.append(block[:n_per_class][keep])
        scenes += [name] * int(keep.sum())
        idx.append(index[keep])
    meta = pd.DataFrame(
        {"scene": _categorical(scenes, SCENE_CLASSES), "index": np.concatenate(idx)}
    )
    return StimulusSet(np.concatenate(images)[:, None], meta, name="synthetic_scenes")
