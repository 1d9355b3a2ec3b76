"""How do the synthetic test faces compare with KDEF? The calibration bench of issue 10.

Runs :func:`dnnrsa.study.calibration` on the default face set
(``synthetic_faces()``: 70 identities x 7 expressions x 3 viewpoints x 2 sessions,
48 px) and prints, per measure, its value, the multiple of chance, the target, whether it
is met and the paper's KDEF figure where there is one, with the wall time. With
``--quick`` the face set of the quick demo (``QUICK_STUDY``: fewer identities, one
session, 32 px) is measured as well.

Run: ``python benchmarks/bench_calibration.py [--quick] [--seeds 0 1 2] [--no-expression]``
(several minutes on 2 CPU cores, most of it in the pixel and conv1 readouts).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dnnrsa import datasets, zoo  # noqa: E402
from dnnrsa.study import QUICK_STUDY, calibration  # noqa: E402


def _format(table: pd.DataFrame) -> str:
    def pct(v):
        return "" if pd.isna(v) else f"{100 * v:.1f}%"

    out = pd.DataFrame({
        "measure": table.measure,
        "value": table.value.map(pct),
        "chance": table.chance.map(pct),
        "x chance": table.x_chance.map(lambda v: "" if pd.isna(v) else f"{v:.2f}x"),
        "target": table.target,
        "result": table.passes.map(lambda p: "n/a" if pd.isna(p) else "pass" if p else "FAIL"),
        "n": table.n,
        "KDEF": table.kdef.map(pct),
    })
    notes = "\n".join(f"  {m}: {n}" for m, n in zip(table.measure, table.note, strict=True))
    return out.to_string(index=False) + "\n notes:\n" + notes


def _run(label: str, stimuli, args) -> None:
    """Measure ``stimuli`` (None: calibration's default faces, which lets it score the
    quick expression network on those faces rendered at its size)."""
    start = time.perf_counter()
    table = calibration(stimuli, seeds=tuple(args.seeds), device=args.device,
                        quick_expression=not args.no_expression)
    seconds = time.perf_counter() - start
    what = ("synthetic_faces() with its defaults" if stimuli is None else
            f"{stimuli.name}, {len(stimuli)} images of {'x'.join(map(str, stimuli.shape))}")
    print(f"\n== {label}: {what}, seeds {args.seeds} ==")
    print(_format(table))
    print(f" wall time: {seconds:.1f} s")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="also measure the quick demo's face set")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="untrained network seeds (default 0 1 2)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-expression", action="store_true",
                        help="leave out the quick expression network")
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, face renderer {datasets.DATA_VERSION}")
    _run("default set", None, args)
    if args.quick:
        quick = datasets.synthetic_faces(n_identities=QUICK_STUDY["n_identities"],
                                         sessions=QUICK_STUDY["sessions"],
                                         size=zoo.QUICK["arch"]["input_size"])
        _run("quick demo set", quick, args)


if __name__ == "__main__":
    main()
