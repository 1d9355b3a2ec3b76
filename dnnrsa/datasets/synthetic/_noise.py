"""Small numeric helpers of the renderers: pixel-coverage ramps, smooth steps and bumps,
the counter-based hash noise that makes an image's pixel noise independent of batching,
and the final lens blur."""

from __future__ import annotations

import numpy as np

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


def _soften(img: np.ndarray, amount: float = 0.5) -> np.ndarray:
    """Mix a 3x3 binomial blur into ``img`` (b, H, W) with weight ``amount``."""
    pad = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h = pad[:, :, :-2] * _F(0.25) + pad[:, :, 1:-1] * _F(0.5) + pad[:, :, 2:] * _F(0.25)
    v = h[:, :-2] * _F(0.25) + h[:, 1:-1] * _F(0.5) + h[:, 2:] * _F(0.25)
    return img + (v - img) * _F(amount)


def _noise_seeds(rng: np.random.Generator, n) -> np.ndarray:
    """Seeds of the hash noise (uint64, shape ``n``), drawn from ``rng``."""
    return rng.integers(0, np.iinfo(np.int64).max, size=n, dtype=np.int64).astype(np.uint64)

