"""Speed and agreement of dnnrsa.rsa against rsatoolbox 0.3.2, side by side in one run.

Workload (default): 1,470 observations (70 identities x 7 expressions x 3 viewpoints) of
20,000 random float64 channels; RDMs over the 490 identity x expression conditions;
crossnobis cross-validated over viewpoint; then 100 random RDMs compared with one RDM
(119,805 dissimilarities each).

    python benchmarks/bench_rsa.py                  # full workload (3-4 min, ~8 GB of RAM)
    python benchmarks/bench_rsa.py --part compare   # only the comparisons (~40 s)
    python benchmarks/bench_rsa.py --quick          # small workload, seconds

Timings are interleaved: each repeat runs dnnrsa and rsatoolbox back to back (in
alternating order; the compare rows after one untimed warm-up of each), so that a change
of load hits both sides alike. Each row reports the min and median over repeats of both
sides, the ratio of the medians, and the worst ratio of any single repeat ("worst", the
number behind a claim such as "at least 3x in every run"); ``--verbose`` prints every
repeat. "max rel diff" is max |ours - rsatoolbox| / max |rsatoolbox| over all entries of
the RDM (or of the comparison table).

Both libraries run with single-threaded BLAS by default (``--blas-threads 0`` keeps the BLAS
default). On the shared 2-core reference machine, OpenBLAS's two threads stall each other
whenever another process holds a core: the 490 x 20,000 Gram products then take 3-5 times
longer than on one thread, and timings swing from run to run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _interleaved(ours_fn, ref_fn, repeats: int, warmup: bool, verbose: bool = False):
    """Per-repeat timings (ours, ref) of two functions run back to back, after one
    untimed warm-up call of each if ``warmup``; the order alternates between repeats."""
    if warmup:
        ours_fn(), ref_fn()
    t_ours, t_ref = [], []
    for k in range(repeats):
        if k % 2:
            t_r, ref = _timed(ref_fn)
            t_o, ours = _timed(ours_fn)
        else:
            t_o, ours = _timed(ours_fn)
            t_r, ref = _timed(ref_fn)
        t_ours.append(t_o)
        t_ref.append(t_r)
        if verbose:
            print(f"    repeat {k}: ours {t_o:.3f} s, rsatoolbox {t_r:.3f} s, "
                  f"ratio {t_r / t_o:.1f}x", flush=True)
    return np.array(t_ours), np.array(t_ref), ours, ref


def _rel(ours, ref) -> float:
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small workload (seconds)")
    parser.add_argument("--part", choices=("all", "rdm", "compare"), default="all",
                        help="which rows to time (default all)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="interleaved repeats of each rdm row (default 2)")
    parser.add_argument("--compare-repeats", type=int, default=7,
                        help="interleaved repeats of each compare row (default 7)")
    parser.add_argument("--verbose", action="store_true", help="print every repeat")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu",
                        help="device of dnnrsa's RDMs (default cpu, the like-for-like "
                             "comparison; 'auto' or 'cuda' times the GPU path)")
    parser.add_argument("--compare-device", default="none",
                        help="device of dnnrsa's compare (default none: numpy on the CPU, "
                             "the like-for-like comparison; 'cuda' times the torch path)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads for both libraries (default 1; 0 keeps the BLAS "
                             "default)")
    args = parser.parse_args(argv)
    if min(args.repeats, args.compare_repeats) < 1:
        parser.error("--repeats and --compare-repeats must be at least 1")
    # load every BLAS (numpy's, scipy's) first: the thread limit reaches loaded libraries only
    import rsatoolbox.rdm  # noqa: F401
    import scipy.linalg  # noqa: F401

    import dnnrsa.rsa  # noqa: F401

    if args.blas_threads > 0:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=args.blas_threads, user_api="blas"):
            return _run(args)
    return _run(args)


def _run(args) -> int:
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm
    from rsatoolbox.rdm import compare as rsa_compare

    from dnnrsa import Activations
    from dnnrsa.rsa import compare, rdm

    n_id, n_expr, n_view, n_chan, n_rdms = (70, 7, 3, 20_000, 100)
    if args.quick:
        n_id, n_chan, n_rdms = 20, 2_000, 20
    rng = np.random.default_rng(args.seed)
    rows = [(f"F{i:02d}", f"E{e}", f"V{v}") for i in range(n_id) for e in range(n_expr)
            for v in range(n_view)]
    meta = pd.DataFrame(rows, columns=["identity", "expression", "viewpoint"])
    X = rng.standard_normal((len(meta), n_chan))
    acts = Activations.from_arrays(X, meta, layer="bench", model="random", seed=args.seed)
    obs = {c: meta[c].to_numpy() for c in meta.columns}
    obs["condition"] = (meta["identity"] + "|" + meta["expression"]).to_numpy()
    ds = Dataset(X, obs_descriptors=obs)
    conditions = ("identity", "expression")

    # warm up imports and thread pools of both libraries on a small slice
    rdm(acts[:63], method="euclidean", conditions=conditions, device=args.device)
    calc_rdm(Dataset(X[:63], obs_descriptors={k: v[:63] for k, v in obs.items()}),
             method="euclidean", descriptor="condition")

    results = []

    def row(name, ours_fn, ref_fn, extract, repeats, warmup=False):
        t_ours, t_ref, ours, ref = _interleaved(ours_fn, ref_fn, repeats, warmup,
                                                args.verbose)
        ratios = t_ref / t_ours
        results.append((name, t_ours.min(), np.median(t_ours), t_ref.min(), np.median(t_ref),
                        np.median(t_ref) / np.median(t_ours), ratios.min(),
                        _rel(extract(ours), extract(ref))))
        print(f"  {name}: ours {np.median(t_ours):.3f} s, rsatoolbox {np.median(t_ref):.3f} s "
              f"(medians of {repeats}); worst repeat {ratios.min():.1f}x", flush=True)
        return ours

    vec = lambda r: r.dissimilarities  # noqa: E731
    n_cond = n_id * n_expr
    if args.part in ("all", "rdm"):
        print(f"rdm over {n_cond} conditions, {len(meta)} observations x {n_chan} channels")
        row("rdm crossnobis (cv=viewpoint)",
            lambda: rdm(acts, method="crossnobis", conditions=conditions, cv="viewpoint",
                        device=args.device),
            lambda: calc_rdm(ds, method="crossnobis", descriptor="condition",
                             cv_descriptor="viewpoint"), vec, args.repeats)
        data_rdm = row("rdm correlation",
                       lambda: rdm(acts, method="correlation", conditions=conditions,
                                   device=args.device),
                       lambda: calc_rdm(ds, method="correlation", descriptor="condition"),
                       vec, args.repeats)
        row("rdm euclidean",
            lambda: rdm(acts, method="euclidean", conditions=conditions, device=args.device),
            lambda: calc_rdm(ds, method="euclidean", descriptor="condition"), vec,
            args.repeats)
    else:
        data_rdm = rdm(acts, method="correlation", conditions=conditions, device=args.device)

    if args.part in ("all", "compare"):
        n_pairs = n_cond * (n_cond - 1) // 2
        many = rng.random((n_rdms, n_pairs))
        device = None if args.compare_device == "none" else args.compare_device
        print(f"compare {n_rdms} RDMs vs 1 ({n_pairs} dissimilarities each)"
              + (f" on {device}" if device else ""))
        for method in ("spearman", "tau-a"):
            row(f"compare {n_rdms} vs 1 {method}",
                lambda m=method: compare(many, data_rdm, method=m, device=device),
                lambda m=method: rsa_compare(many, data_rdm.get_vectors(), method=m),
                lambda x: x, args.compare_repeats, warmup=True)

    table = pd.DataFrame(results, columns=[
        "method", "ours min", "ours median", "rsatoolbox min", "rsatoolbox median",
        "ratio", "worst", "max rel diff"])
    from importlib.metadata import version

    from threadpoolctl import threadpool_info

    blas = [f"{i['internal_api']} {i['num_threads']} thread(s)" for i in threadpool_info()
            if i["user_api"] == "blas"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f}; "
          f"numpy {np.__version__} ({', '.join(blas)}), rsatoolbox {version('rsatoolbox')}; "
          "times in s; ratio of medians; worst: the smallest ratio of one repeat"
          + ("; --quick workload" if args.quick else ""))
    with pd.option_context("display.width", 120):
        seconds = {c: "{:.3f}".format for c in table.columns if "min" in c or "median" in c}
        print(table.to_string(index=False, formatters={
            **seconds, "ratio": "{:.1f}x".format, "worst": "{:.1f}x".format,
            "max rel diff": "{:.1e}".format}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
