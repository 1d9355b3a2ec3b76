"""The face renderer: per-image parameters in, images out. Rays are cast against the
primitives of :mod:`._shape`, the winning surface is shaded and painted by
:mod:`._paint`, and batches of images run in a few threads."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from ._actions import _ACTION_TABLE, _ACTIONS
from ._identity import _ID_NAMES
from ._noise import _F, _hash_normal, _soften
from ._paint import _hairline, _paint
from ._shape import _HALF_EXTENT, _NEG, _ORDER, _PID, _Y_CENTRE, _ellipse_hit, _profiles

_CHUNK = 32  # images of 48 x 48 rendered together: arrays stay cache-sized

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


def _chunk_for(size: int) -> int:
    """Images per render batch: _CHUNK images of 48 x 48, fewer for larger images."""
    return max(1, (_CHUNK * 48 * 48) // (size * size))


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
