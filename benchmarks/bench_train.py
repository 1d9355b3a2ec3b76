"""Training throughput (images/s) of dnnrsa.zoo.train against a plain DataLoader loop.

Baseline: the loop most scripts write (torch.utils.data.DataLoader over a TensorDataset,
shuffle=True, batch 64), same model, optimiser and data, run side by side.

    python benchmarks/bench_train.py [--sizes quick paper] [--images 1024] [--device auto]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from dnnrsa import zoo
from dnnrsa._utils import resolve_device

CONFIGS = {
    "quick": dict(zoo.QUICK["arch"]),
    "paper": dict(zoo.FULL["arch"]),
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["quick", "paper"], choices=list(CONFIGS))
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.images} images, 1 epoch, batch 64")
    print(f"{'network':<8} {'widths':<28} {'dnnrsa img/s':>13} {'DataLoader img/s':>17} {'ratio':>6}")
    for name in args.sizes:
        arch = CONFIGS[name]
        s = arch["input_size"]
        g = torch.Generator().manual_seed(0)
        x = torch.rand(args.images, 1, s, s, generator=g)
        y = torch.randint(0, 7, (args.images,), generator=g)
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
        widths = "/".join(str(v) for v in ours.widths.values()) + f" @{s}px"
        print(f"{name:<8} {widths:<28} {hist.images_per_second:>13.1f} {base_rate:>17.1f} "
              f"{hist.images_per_second / base_rate:>6.2f}")


if __name__ == "__main__":
    main()
