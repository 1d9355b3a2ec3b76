"""Speed of the batched paper readout (decode_grid) against the loop of single heads
(decode_activations, one PaperReadout fit per fold), side by side in one run.

Workload: the paper's readout grid for one network at quick sizes - untrained quick
networks (``zoo.build("ccn2022", **zoo.QUICK["arch"])``, one per network seed) on
``datasets.synthetic_faces(n_identities=20, size=32)`` (both sessions, 840 images),
layers conv1, dense1, dense2, dense3 (their real extracted shapes), targets identity and
expression, leave-one-viewpoint-out (3 folds, 560 training rows each), batch 32.

    python benchmarks/bench_readout.py --quick    # 2 seeds, 5 epochs (well under a minute)
    python benchmarks/bench_readout.py            # 10 seeds, 15 epochs (the quick study)
    python benchmarks/bench_readout.py --device cuda

Both paths run on the same device with the same number of torch threads (default 1, as
each worker of ``reproduce`` on a CPU). "max |acc diff|" is the largest difference between
the two paths' fold accuracies over the whole grid (0 unless a test prediction sits within
rounding of a decision boundary).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LAYERS = ("conv1", "dense1", "dense2", "dense3")
TARGETS = ("identity", "expression")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 5 epochs")
    parser.add_argument("--seeds", type=int, default=None, help="network seeds (default 10)")
    parser.add_argument("--epochs", type=int, default=None, help="readout epochs (default 15)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both paths (0 keeps torch's default)")
    parser.add_argument("--sessions", default="A,B",
                        help="sessions of the synthetic faces (A,B: 840 images; A: 420)")
    args = parser.parse_args(argv)

    from dnnrsa import datasets, extract, zoo
    from dnnrsa._utils import resolve_device
    from dnnrsa.decoding import decode_activations, decode_grid

    n_seeds = args.seeds or (2 if args.quick else 10)
    epochs = args.epochs or (5 if args.quick else 15)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    stimuli = datasets.synthetic_faces(n_identities=20, size=32,
                                       sessions=tuple(args.sessions.split(",")))
    items = []
    for seed in range(n_seeds):
        torch.manual_seed(seed)
        net = zoo.build("ccn2022", **zoo.QUICK["arch"])
        acts = extract(net, stimuli, LAYERS, device=device, progress=False)
        for layer in LAYERS:
            acts[layer].provenance["seed"] = seed
            items.append(acts[layer])
    shapes = {a.layer: a.shape for a in items[: len(LAYERS)]}
    print(f"torch {torch.__version__} on {platform.processor() or platform.machine()}, "
          f"device {device}, {torch.get_num_threads()} torch thread(s)")
    print(f"grid: {n_seeds} seeds x {len(LAYERS)} layers x {len(TARGETS)} targets x 3 folds "
          f"= {n_seeds * len(LAYERS) * len(TARGETS) * 3} heads, {len(stimuli)} images, "
          f"{epochs} epochs, batch 32; maps {shapes}")

    options = dict(epochs=epochs, device=device)
    decode_grid(items[:1], targets=TARGETS[:1], **{**options, "epochs": 1})  # warm-up
    t0 = time.perf_counter()
    grid = decode_grid(items, targets=TARGETS, **options)
    t_grid = time.perf_counter() - t0

    t0 = time.perf_counter()
    loop = [decode_activations(a, target=t, seed=a.provenance["seed"], **options)
            for a in items for t in TARGETS]
    t_loop = time.perf_counter() - t0

    diff = max(float(np.max(np.abs(g.folds - r.folds))) for g, r in zip(grid, loop,
                                                                           strict=True))
    print(f"loop of single heads (decode_activations): {t_loop:8.2f} s")
    print(f"batched (decode_grid):                     {t_grid:8.2f} s")
    print(f"ratio loop / batched: {t_loop / t_grid:.2f}x; max |acc diff| {diff:.4f}; "
          f"mean accuracy {np.mean([r.accuracy for r in grid]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
