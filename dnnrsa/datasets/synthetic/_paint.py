"""Painting on the head's surface, in head-frame coordinates so that every feature turns
with the head: the hair line and hair, and on the front of the face the eyes, brows,
nose, mouth, wrinkles and hollows (as albedo) and the cheeks, sockets and brow ridge (as
a bump map)."""

from __future__ import annotations

import numpy as np

from ._actions import _ACTIONS
from ._identity import _IDENTITY_SPEC
from ._noise import _F, _band, _cov, _gauss, _mix, _smooth
from ._shape import _PID


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
