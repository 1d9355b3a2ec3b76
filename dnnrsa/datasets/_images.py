"""Decoding the image files of a data set, in threads, with every failure named.

PIL releases the GIL while it decodes, so a few threads read a folder of JPEGs several
times faster than a loop; a file that fails to decode becomes a problem naming it instead
of stopping the whole load.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ._report import Findings

__all__ = ["load_images"]


def _n_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _decode_one(path: Path, transform: Callable | None):
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            size = img.size
            out = None if transform is None else np.asarray(transform(img), dtype=np.float32)
        return out, size, None
    except Exception as exc:  # report any decoder failure by file name
        return None, None, f"{type(exc).__name__}: {exc}"


def load_images(
    paths: Sequence[Path],
    labels: Sequence[str],
    transform: Callable | None,
    findings: Findings,
    expected_size: Sequence[int] | None = None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Decode (and transform) every image, in threads.

    Parameters
    ----------
    paths : sequence of Path
        The files.
    labels : sequence of str
        How each file is named in messages (its path relative to the data set).
    transform : callable or None
        Applied to each decoded PIL image; None only checks that the files decode.
    findings : Findings
        Each file that fails becomes an ``unreadable`` problem naming ``labels[i]``;
        images whose (width, height) differ from ``expected_size`` become one note.
    expected_size : (int, int), optional
        The manifest's (width, height).

    Returns
    -------
    images : ndarray or None
        The stacked transformed images of the files that decoded (None without a
        transform).
    ok : ndarray of bool
        Which of ``paths`` decoded.
    """
    if len(paths) == 0:
        return (np.zeros((0, 1, 1, 1), np.float32) if transform is not None else None,
                np.zeros(0, bool))
    with ThreadPoolExecutor(max_workers=_n_workers()) as pool:
        results = list(pool.map(lambda p: _decode_one(p, transform), paths))
    ok = np.zeros(len(paths), bool)
    arrays, odd_sizes = [], []
    for i, (arr, size, err) in enumerate(results):
        if err is not None:
            findings.add("unreadable", f"cannot decode image {labels[i]} ({err})")
            continue
        ok[i] = True
        if transform is not None:
            arrays.append(arr)
        if expected_size is not None and tuple(size) != tuple(expected_size):
            odd_sizes.append(f"{labels[i]} ({size[0]}x{size[1]})")
    if odd_sizes:
        findings.note(
            f"{len(odd_sizes)} image(s) are not {expected_size[0]}x{expected_size[1]} "
            f"(width x height) as the manifest expects; they are cropped and resized like the "
            f"others: {', '.join(odd_sizes[:20])}" + (" ..." if len(odd_sizes) > 20 else "")
        )
    if transform is None:
        return None, ok
    images = np.stack(arrays) if arrays else np.zeros((0, 1, 1, 1), np.float32)
    return images, ok
