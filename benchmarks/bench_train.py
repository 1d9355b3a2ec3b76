"""Training throughput (images/s) of dnnrsa.zoo.train: against a plain DataLoader loop, and
several seeds trained together against the same seeds one after another.

Table 1, baseline: the loop most scripts write (torch.utils.data.DataLoader over a
TensorDataset, shuffle=True, batch 64), same model, optimiser and data, run side by side.

Table 2, baseline: ``zoo.train(model, data, seed=s)`` for each of K seeds in turn, against
``zoo.train(models, data, seeds=[...])`` (on a GPU one grouped network; on a CPU one
thread per seed, one torch thread each), same total images (K x --images), each side timed
in turns (best of --repeats); the preset's protocol (quick: Adam, batch 32; paper: SGD,
batch 64). On a CPU two more columns: the seeds one after another in the channels-last
layout that training together uses (the layout's gain apart from running seeds side by
side), and the grouped network on the CPU (``zoo._train.CPU_TOGETHER = "grouped"``). On CUDA, table 3: bf16 autocast + channels-last
against fp32 without, for one model and for K together.

    python benchmarks/bench_train.py [--quick] [--sizes quick paper] [--images 256]
                                     [--ensembles 1 5 10] [--device auto]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch
import torch.nn.functional as F

from dnnrsa import zoo
from dnnrsa._utils import resolve_device, torch_seed

CONFIGS = {
    "quick": dict(zoo.QUICK["arch"]),
    "paper": dict(zoo.FULL["arch"]),
}
PROTOCOLS = {
    "quick": dict(batch_size=zoo.QUICK["batch_size"], optimizer=zoo.QUICK["optimizer"],
                  lr=zoo.QUICK["lr"]),
    "paper": dict(batch_size=zoo.FULL["batch_size"], optimizer=zoo.FULL["optimizer"],
                  lr=zoo.FULL["lr"]),
}


def dataloader_epoch(model, x, y, device, batch_size=64):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
                                         batch_size=batch_size, shuffle=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.to(device).train()
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()


def toy_data(arch, n):
    s = arch["input_size"]
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, s, s, generator=g), torch.randint(0, 7, (n,), generator=g)


def table_dataloader(args, device):
    print(f"\n1. dnnrsa.zoo.train vs a DataLoader loop: {args.images} images, 1 epoch, batch 64")
    print(f"{'network':<8} {'widths':<28} {'dnnrsa img/s':>13} {'DataLoader img/s':>17} "
          f"{'ratio':>6}")
    for name in args.sizes:
        arch = CONFIGS[name]
        x, y = toy_data(arch, args.images)
        # warm-up (allocator, oneDNN/cuDNN kernel choice) so neither side pays it
        warm = zoo.build("ccn2022", n_classes=7, **arch)
        zoo.train(warm, (x[:128], y[:128]), epochs=1, device=device, progress=False)
        torch.manual_seed(0)
        ours = zoo.build("ccn2022", n_classes=7, **arch)
        hist = zoo.train(ours, (x, y), epochs=1, device=device, progress=False)
        torch.manual_seed(0)
        base = zoo.build("ccn2022", n_classes=7, **arch)
        t = time.perf_counter()
        dataloader_epoch(base, x, y, device)
        base_rate = args.images / (time.perf_counter() - t)
        widths = "/".join(str(v) for v in ours.widths.values()) + f" @{arch['input_size']}px"
        print(f"{name:<8} {widths:<28} {hist.images_per_second:>13.1f} {base_rate:>17.1f} "
              f"{hist.images_per_second / base_rate:>6.2f}")


def build_seeds(arch, seeds):
    nets = []
    for s in seeds:
        with torch_seed(s):
            nets.append(zoo.build("ccn2022", n_classes=7, **arch))
    return nets


def one_after_another(arch, data, seeds, device, **options):
    """Seconds to train each seed alone, in turn."""
    nets = build_seeds(arch, seeds)
    _sync(device)
    t = time.perf_counter()
    for net, s in zip(nets, seeds):
        zoo.train(net, data, epochs=1, seed=s, device=device, progress=False, **options)
    _sync(device)
    return time.perf_counter() - t


def together(arch, data, seeds, device, **options):
    """Seconds to train the seeds as one grouped network."""
    nets = build_seeds(arch, seeds)
    _sync(device)
    t = time.perf_counter()
    zoo.train(nets, data, epochs=1, seeds=seeds, device=device, progress=False, **options)
    _sync(device)
    return time.perf_counter() - t


def grouped(arch, data, seeds, device, **options):
    """Seconds to train the seeds as one grouped network on the CPU."""
    before = zoo._train.CPU_TOGETHER
    zoo._train.CPU_TOGETHER = "grouped"
    try:
        return together(arch, data, seeds, device, **options)
    finally:
        zoo._train.CPU_TOGETHER = before


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_of_turns(runs, repeats):
    """Best seconds of each callable, calling them in turns so load hits both alike."""
    best = [float("inf")] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            best[i] = min(best[i], run())
    return best


def table_ensembles(args, device):
    print(f"\n2. K seeds together vs one after another: {args.images} images per seed, "
          f"1 epoch, best of {args.repeats} turns; aggregate images/s")
    cpu = device.type == "cpu"  # elsewhere one by one is channels-last already
    print(f"{'network':<8} {'K':>3} {'protocol':<16} {'together img/s':>15} "
          f"{'one by one img/s':>17} {'ratio':>6}"
          + (f" {'one by one, CL img/s':>21} {'ratio':>6} {'grouped img/s':>14} "
             f"{'ratio':>6}" if cpu else ""))
    for name in args.sizes:
        arch, proto = CONFIGS[name], PROTOCOLS[name]
        data = toy_data(arch, args.images)
        # warm-up of both code paths (kernel choice, allocator)
        together(arch, (data[0][:64], data[1][:64]), [0, 1], device, **proto)
        one_after_another(arch, (data[0][:64], data[1][:64]), [0], device, **proto)
        for k in args.ensembles:
            seeds = list(range(k))
            runs = [partial(together, arch, data, seeds, device, **proto),
                    partial(one_after_another, arch, data, seeds, device, **proto)]
            if cpu:
                runs.append(partial(one_after_another, arch, data, seeds, device,
                                    channels_last=True, **proto))
                runs.append(partial(grouped, arch, data, seeds, device, **proto))
            t_tog, t_seq, *t_cpu = best_of_turns(runs, args.repeats)
            n = k * args.images
            what = f"{proto['optimizer']}, batch {proto['batch_size']}"
            print(f"{name:<8} {k:>3} {what:<16} {n / t_tog:>15.1f} {n / t_seq:>17.1f} "
                  f"{t_seq / t_tog:>6.2f}"
                  + (f" {n / t_cpu[0]:>21.1f} {t_cpu[0] / t_tog:>6.2f} {n / t_cpu[1]:>14.1f}"
                     f" {t_cpu[1] / t_tog:>6.2f}" if cpu else ""))


def table_precision(args, device):
    print(f"\n3. bf16 autocast + channels-last vs fp32 (CUDA): {args.images} images per "
          "seed, 1 epoch; aggregate images/s")
    print(f"{'network':<8} {'K':>3} {'bf16+CL img/s':>14} {'fp32 img/s':>11} {'ratio':>6}")
    fast = dict(precision="bf16", channels_last=True)
    plain = dict(precision="fp32", channels_last=False)
    for name in args.sizes:
        arch, proto = CONFIGS[name], PROTOCOLS[name]
        data = toy_data(arch, args.images)
        for k in sorted({1, max(args.ensembles)}):
            seeds = list(range(k))
            run = together if k > 1 else one_after_another
            run(arch, (data[0][:64], data[1][:64]), seeds, device, **proto, **fast)
            t_fast, t_plain = best_of_turns(
                [partial(run, arch, data, seeds, device, **proto, **fast),
                 partial(run, arch, data, seeds, device, **proto, **plain)], args.repeats)
            n = k * args.images
            print(f"{name:<8} {k:>3} {n / t_fast:>14.1f} {n / t_plain:>11.1f} "
                  f"{t_plain / t_fast:>6.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="quick network only, 128 images, K in {1, 5}, 3 turns (< 1 min idle)")
    ap.add_argument("--sizes", nargs="+", default=None, choices=list(CONFIGS))
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--ensembles", type=int, nargs="+", default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's; reproduce's CPU workers use 1)")
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    defaults = (dict(sizes=["quick"], images=128, ensembles=[1, 5], repeats=3) if args.quick
                else dict(sizes=["quick", "paper"], images=256, ensembles=[1, 5, 10],
                          repeats=2))
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    device = resolve_device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    table_dataloader(args, device)
    table_ensembles(args, device)
    if device.type == "cuda":
        table_precision(args, device)


if __name__ == "__main__":
    main()
