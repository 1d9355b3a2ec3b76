"""The geometry of the rendered head: the view window, the primitives (skull and face,
muzzle, nose, ears, neck, hair shell) as row-wise ellipse profiles, and the closed-form
intersection of a pixel's ray with one of them."""

from __future__ import annotations

import numpy as np

from ._noise import _F, _gauss

_HALF_EXTENT = 1.45  # half the side of the view window, head units
_Y_CENTRE = -0.12  # head-frame height at the image centre
_NEG = _F(-1e9)
# The primitives in the order the ray caster tries them; a pixel's primitive id is its
# position here plus one, so painting can tell a nose pixel from a hair pixel.
_ORDER = ("head", "muzzle", "nose", "ear_r", "ear_l", "neck", "hair")
_PID = {name: k + 1 for k, name in enumerate(_ORDER)}  # 0 is the background


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
    ear_ax = np.maximum(_F(0.1) * np.sqrt(er), 1e-3)
    ear_az = np.maximum(es * _F(0.55) * np.sqrt(er), 1e-3)
    head_at_ear = p["head_w"] * _F(0.99)
    # both ears share their semi-axes (nothing writes into a profile's arrays)
    ear = (ear_ax, ear_az, ear_az, er > 1e-4)
    prims["ear_r"] = (head_at_ear + zero, zero - _F(0.12), *ear)
    prims["ear_l"] = (zero - head_at_ear, zero - _F(0.12), *ear)

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
    # Hair, long or short, hugs the skull: long hair is worn tied back, lying on the nape
    # (as the people of KDEF wear it: no curtain of hair frames or covers the face), so
    # the head's outline is the skull's, grown by the hair's volume.
    hx = np.where(yg >= y0, ax_up, ax_lo) + vol
    hzb = np.where(yg >= _F(0.1), p["back_depth"] * np.sqrt(f1 - bu**2), azb) + vol
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
