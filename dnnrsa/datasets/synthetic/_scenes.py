"""A UC-Merced-like set of procedural aerial scenes: a canvas of image coordinates and
random helpers, drawing primitives, one maker per land-use class, and
:func:`synthetic_scenes`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..._metadata import categorical
from ..._utils import check_choice, check_positive_int
from ...stimuli import StimulusSet
from ._noise import _F, _band, _cov, _noise_seeds, _soften, _splitmix
from ._sampling import _check_seed, _check_size, _stream_rng
from ._vocabulary import _STREAMS, SCENE_CLASSES

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
    rng = _stream_rng(seed, _STREAMS["scenes"], class_index, block)
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
        :data:`SCENE_CLASSES` order. ``metadata`` columns: ``scene`` (unordered
        Categorical of all :data:`SCENE_CLASSES`, in that order) and ``index``
        (0 .. n_per_class - 1 within its class).

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
        {"scene": categorical(scenes, SCENE_CLASSES), "index": np.concatenate(idx)}
    )
    return StimulusSet(np.concatenate(images)[:, None], meta, name="synthetic_scenes")
