"""Peak memory and throughput of dnnrsa.extract into the activation cache, against a bare
forward pass of the same network on the same images, side by side in one run.

Workload (default): the paper's network (``zoo.build("ccn2022")``: 48 px, growth 32),
2,940 random 48 x 48 images (KDEF-sized: 70 identities x 7 expressions x 3 viewpoints x
2 sessions), the four paper layers conv1, dense1, dense2, dense3: about 2.6 MB of float32
responses per image, 7.6 GB in all.

    python benchmarks/bench_extract.py            # full workload (writes ~7.6 GB to disk)
    python benchmarks/bench_extract.py --quick    # 600 images (~1.5 GB), about a minute

Each variant runs in a fresh subprocess, so that its peak resident memory (``VmHWM`` of
/proc/self/status, the kernel's high-water mark of the process's RSS) is its own:

``bare``
    ``model(x)`` in chunks of ``--batch-size`` under ``torch.inference_mode()``, nothing
    kept: the baseline.
``cached``
    ``extract(model, stimuli, PAPER_LAYERS, cache_dir=EMPTY_FOLDER)``: every layer written
    to its cache entry as the chunks go.
``hit``
    The same call again: every layer read from the cache (no forward pass).
``rdm``
    The cached layers read again (no forward pass) and one RDM of each computed from the
    memory-mapped files: correlation distance over the 490 identity x expression
    conditions, streamed in blocks within ``dnnrsa.rsa._stream.CHUNK_BYTES``. Its
    images/s counts the images of all four layers, its ratio is not a goal.
``buffered`` (with ``--buffered``)
    As ``cached``, into a cold cache, with the entries written through the page cache
    instead of with direct I/O (``dnnrsa._cache.DIRECT_IO = False``).
``memory`` (with ``--in-memory``)
    ``extract`` without a cache, all responses held in memory (needs the 7.6 GB).

Every variant runs ``--repeats`` times, the variants alternating; the fastest run is
shown, with the largest peak. "setup MB" is the RSS after the network and images are built, before the timed call;
"peak MB" the high-water mark of the whole subprocess; "cpu s" the user + system CPU time
of the timed call (less sensitive than wall time to other processes on the machine). The
ratio is images/s of a variant over images/s of ``bare``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _child(args) -> dict:
    import numpy as np
    import pandas as pd
    import torch

    import dnnrsa
    from dnnrsa import zoo

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = [dict(identity=f"F{i:02d}", expression=f"E{e}", viewpoint=v, session=s)
            for i in range(70) for e in range(7) for v in ("HL", "S", "HR") for s in "AB"]
    meta = pd.DataFrame(rows).iloc[: args.n_images].reset_index(drop=True)
    images = rng.integers(0, 256, size=(len(meta), 1, 48, 48), dtype=np.uint8)
    stim = dnnrsa.StimulusSet(images, meta, name="bench")
    del images
    torch.manual_seed(0)
    net = zoo.build("ccn2022")
    net.eval()
    x = stim.tensor()
    with torch.inference_mode():  # the same warm-up for every variant
        net(x[: args.batch_size])
    setup = _status_mb("VmRSS")
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    if args.variant == "bare":
        with torch.inference_mode():
            for start in range(0, len(stim), args.batch_size):
                net(x[start : start + args.batch_size])
        nbytes = 0
    else:
        if args.variant == "buffered":
            from dnnrsa import _cache

            _cache.DIRECT_IO = False
        cache = None if args.variant == "memory" else args.cache_dir
        acts = dnnrsa.extract(net, stim, zoo.PAPER_LAYERS, batch_size=args.batch_size,
                              device="cpu", cache_dir=cache, progress=False)
        nbytes = sum(a.data.nbytes for a in acts.values())
        if args.variant == "rdm":
            for a in acts.values():
                dnnrsa.rdm(a, method="correlation", conditions=("identity", "expression"),
                           device="cpu")
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    return {
        "cpu_s": cpu,
        "variant": args.variant,
        "seconds": seconds,
        "images_per_s": len(stim) / seconds,
        "setup_mb": setup,
        "peak_mb": _status_mb("VmHWM"),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "gb": nbytes / 1e9,
    }


def _run_child(variant: str, args, cache_dir: str) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--n-images", str(args.n_images),
           "--batch-size", str(args.batch_size), "--threads", str(args.threads),
           "--cache-dir", cache_dir]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 images instead of 2,940")
    parser.add_argument("--n-images", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads in every variant (default 0: torch's default)")
    parser.add_argument("--in-memory", action="store_true",
                        help="also time extract without a cache (holds everything in RAM)")
    parser.add_argument("--cache-dir", default=None,
                        help="parent of the temporary cache folder (default: the system's "
                             "temporary folder); the cache is deleted afterwards")
    parser.add_argument("--repeats", type=int, default=None,
                        help="runs of every variant, alternating (the fastest is kept; peak "
                             "RSS is the largest); default 2, 1 with --quick")
    parser.add_argument("--buffered", action="store_true",
                        help="also time the cache written through the page cache (no direct "
                             "I/O), the write path before direct I/O")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n_images is None:
        args.n_images = 600 if args.quick else 2940
    if args.repeats is None:
        args.repeats = 1 if args.quick else 2

    if args.child:
        args.variant = args.child
        print(json.dumps(_child(args)))
        return 0

    import torch

    threads = args.threads or torch.get_num_threads()
    print(f"bench_extract: ccn2022 paper net, {args.n_images} images at 48 px, four layers, "
          f"batch {args.batch_size}, {threads} torch threads, {platform.machine()} / "
          f"{os.cpu_count()} cpus, torch {torch.__version__}, best of {args.repeats}")
    variants = ["bare", "cached", "hit", "rdm"]
    variants += (["buffered"] if args.buffered else []) + (["memory"] if args.in_memory else [])
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for _ in range(args.repeats):  # variants alternate, so that a busy spell hits them alike
        folder = tempfile.mkdtemp(prefix="dnnrsa-bench-cache-", dir=args.cache_dir)
        try:
            for v in variants:
                runs[v].append(_run_child(v, args, folder))
                if v == "rdm" and "buffered" in variants:  # a cold cache for "buffered"
                    shutil.rmtree(folder)
                    os.mkdir(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    results = []
    for v in variants:
        best = dict(min(runs[v], key=lambda r: r["seconds"]))
        best["peak_mb"] = max(r["peak_mb"] for r in runs[v])
        results.append(best)
    bare = results[0]["images_per_s"]
    print(f"{'variant':<8} {'seconds':>8} {'cpu s':>7} {'images/s':>9} {'ratio':>6} "
          f"{'setup MB':>9} {'peak MB':>8} {'GB out':>7}")
    for r in results:
        print(f"{r['variant']:<8} {r['seconds']:8.2f} {r['cpu_s']:7.2f} "
              f"{r['images_per_s']:9.1f} {r['images_per_s'] / bare:6.2f} "
              f"{r['setup_mb']:9.0f} {r['peak_mb']:8.0f} {r['gb']:7.2f}")
    cached = next(r for r in results if r["variant"] == "cached")
    print(f"cached / bare throughput: {cached['images_per_s'] / bare:.2f} "
          f"(goal >= 0.80); cached peak RSS {cached['peak_mb']:.0f} MB (goal < 2048)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
