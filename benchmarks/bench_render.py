"""How fast are the synthetic face sets rendered?

Times

* ``synthetic_expressions(n_images=10000)`` (48 x 48), the FER2013-like training set;
* ``synthetic_faces()`` with its defaults (70 x 7 x 3 x 2 = 2940 images), the KDEF-like
  test set;

with the vectorised renderer (batches of images, several threads, and one thread), and
as the baseline the same renderer called one image at a time in a Python loop (batch size
1, one thread) on a sample of the same images, whose speed is extrapolated. It prints
images per second, the speed-up over the baseline and the largest pixel difference
between the two (float rounding only).

Run: ``python benchmarks/bench_render.py`` (about a minute on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dnnrsa.datasets.synthetic import _faces, synthetic_expressions, synthetic_faces  # noqa: E402
from dnnrsa.datasets.synthetic._renderer import _CHUNK, _chunk_for, _render  # noqa: E402


def _capture(fn, **kwargs):
    """Call a generator, recording the per-image parameters it renders from (the face
    sets call the renderer through the name ``_render`` of their module)."""
    captured = {}

    def recording(params, size, chunk_size=_CHUNK, n_threads=None):
        captured["params"], captured["size"] = params, size
        return _render(params, size, chunk_size, n_threads)

    _faces._render = recording
    try:
        start = time.perf_counter()
        stim = fn(**kwargs)
        seconds = time.perf_counter() - start
    finally:
        _faces._render = _render
    return stim, seconds, captured["params"], captured["size"]


def _subset(params: dict, idx: np.ndarray) -> dict:
    return {k: np.asarray(v)[idx] for k, v in params.items()}


def _bench(label: str, fn, n_naive: int, **kwargs) -> None:
    stim, t_full, params, size = _capture(fn, **kwargs)
    n = len(stim)
    print(f"\n{label}: {n} images of {size}x{size}")
    print(
        f"  vectorised, public call (chunks of {_chunk_for(size)}, threads): "
        f"{t_full:7.2f} s  {n / t_full:9.0f} images/s"
    )

    start = time.perf_counter()
    single = _render(params, size, _chunk_for(size), n_threads=1)
    t_single = time.perf_counter() - start
    print(
        f"  vectorised, one thread:                            "
        f"{t_single:7.2f} s  {n / t_single:9.0f} images/s"
    )

    idx = np.linspace(0, n - 1, min(n_naive, n)).astype(int)
    sample = _subset(params, idx)
    start = time.perf_counter()
    naive = _render(sample, size, chunk_size=1, n_threads=1)
    t_naive = time.perf_counter() - start
    rate_naive = len(idx) / t_naive
    print(
        f"  baseline, per-image loop (chunk 1, one thread):    "
        f"{t_naive:7.2f} s  {rate_naive:9.0f} images/s  (sample of {len(idx)}; "
        f"{n / rate_naive:.0f} s extrapolated for all)"
    )
    print(
        f"  speed-up over the per-image loop: {n / t_full / rate_naive:5.1f}x "
        f"(one thread: {n / t_single / rate_naive:.1f}x)"
    )
    diff = float(np.abs(naive - single[idx]).max())
    same = np.array_equal(stim.images, single)
    print(f"  max |per-image - batched| = {diff:.2e}; threaded == one thread: {same}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n-images",
        type=int,
        default=10000,
        help="images of synthetic_expressions (default 10000)",
    )
    parser.add_argument(
        "--naive-images",
        type=int,
        default=300,
        help="images rendered one at a time for the baseline (default 300)",
    )
    args = parser.parse_args(argv)
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    )
    _bench(
        "synthetic_expressions",
        synthetic_expressions,
        args.naive_images,
        n_images=args.n_images,
    )
    _bench("synthetic_faces (defaults)", synthetic_faces, args.naive_images)


if __name__ == "__main__":
    main()
