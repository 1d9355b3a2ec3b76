"""`reproduce()`: the CCN-2022 study as one sweep over networks x seeds x layers x targets."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._utils import check_choice, check_positive_int, logger, resolve_device
from ._version import __version__
from .decoding import decode_activations
from .extract import extract
from .stats import difference_from, summarise
from .zoo import QUICK, VARIANTS, load_model, train_variant

__all__ = ["reproduce", "PAPER_RESULTS", "QUICK_STUDY"]

#: Held-out-viewpoint accuracies (%) on KDEF reported by the study (mean over 10 seeds).
PAPER_RESULTS = pd.DataFrame(
    [
        ("expression", "identity", 9.5, 6.3, 14.8, 20.2),
        ("identity", "expression", 17.6, 17.1, 21.5, 42.1),
        ("untrained", "expression", 16.5, 16.2, 15.5, 16.5),
        ("untrained", "identity", 7.9, 7.1, 13.6, 6.1),
        ("scene", "expression", 15.9, 16.0, 23.5, 33.0),
        ("scene", "identity", 9.5, 7.8, 17.3, 29.6),
    ],
    columns=["network", "target", "conv1", "dense1", "dense2", "dense3"],
)

#: Settings of ``reproduce(quick=True)``: small faces set, short readouts, two seeds.
QUICK_STUDY = dict(seeds=2, n_identities=20, sessions=("A",), readout_epochs=15)

PAPER_LAYERS = ("conv1", "dense1", "dense2", "dense3")


def _seeds(seeds) -> list[int]:
    if isinstance(seeds, (int, np.integer)):
        return list(range(check_positive_int("seeds", seeds, 1)))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("Argument seeds is empty: give a number of seeds or a list of seeds.")
    return seeds


def reproduce(
    data: str = "synthetic",
    networks: Sequence[str] = ("expression", "identity", "scene", "untrained"),
    seeds: Any = 10,
    layers: Sequence[str] = PAPER_LAYERS,
    targets: Sequence[str] = ("identity", "expression"),
    *,
    quick: bool = False,
    readout: str = "paper",
    readout_epochs: int | None = None,
    device: Any = "auto",
    out: str | os.PathLike | None = None,
    home: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    stimuli: Any = None,
    pixel_control: bool = True,
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Run the study: train or load each network x seed, extract every layer for the test
    faces, read out every target on a held-out viewpoint, add the pixel control.

    Parameters
    ----------
    data : {"synthetic", "paper"}
        ``"synthetic"``: networks trained on dnnrsa's rendered sets and tested on the
        synthetic faces. ``"paper"``: FER2013, CelebA, UC Merced and KDEF from local copies
        (``data_root`` or ``$DNNRSA_DATA``).
    networks : sequence of {"expression", "identity", "scene", "untrained"}
    seeds : int or sequence of int
        Number of network seeds (0..seeds-1) or the seeds themselves.
    layers : sequence of str
    targets : sequence of str
    quick : bool
        Narrow networks on 32 px images, few epochs, a small face set and short readouts:
        the whole sweep in minutes on a CPU (see ``QUICK`` and ``QUICK_STUDY``).
    readout : {"paper", "linear"}
    readout_epochs : int, optional
        Epochs of the paper readout (default 100, or 15 when quick).
    out : path, optional
        Folder to write ``results.csv``, ``summary.csv``, ``fig2a.png``, ``fig2b.png`` and
        ``report.md`` into. Nothing is written without it.
    stimuli : StimulusSet, optional
        Test faces to use instead of the default (KDEF for ``"paper"``, synthetic faces else).
    n_jobs : int, optional
        Networks processed at once, each in its own process. Default: one per CPU core when
        running on the CPU, 1 on a GPU.

    Returns
    -------
    pandas.DataFrame
        Tidy results, one row per network x seed x layer x target x fold.
    """
    from tqdm.auto import tqdm

    from . import datasets

    check_choice("data", data, ("synthetic", "paper"))
    for n in networks:
        check_choice("networks", n, VARIANTS)
    for t in targets:
        check_choice("targets", t, ("identity", "expression"),
                     hint="Other factors can be decoded with dnnrsa.decode.")
    check_choice("readout", readout, ("paper", "linear"))
    seed_list = _seeds(QUICK_STUDY["seeds"] if (quick and seeds == 10) else seeds)
    device = resolve_device(device)
    epochs = readout_epochs or (QUICK_STUDY["readout_epochs"] if quick else 100)
    size = QUICK["arch"]["input_size"] if quick else 48
    if stimuli is None:
        if data == "paper":
            from .decoding import default_stimuli

            stimuli = default_stimuli(size, data_root=data_root, kind="kdef")
        elif quick:
            stimuli = datasets.synthetic_faces(n_identities=QUICK_STUDY["n_identities"],
                                               sessions=QUICK_STUDY["sessions"], size=size)
        else:
            stimuli = datasets.synthetic_faces(size=size)
    for t in targets:
        stimuli.check_factor(t)
    stimuli.check_factor("viewpoint", "cv")
    out = Path(out) if out is not None else None
    start = time.perf_counter()
    logger.info("reproduce: %d networks x %d seeds x %d layers x %d targets on %s (%d images)",
                len(networks), len(seed_list), len(layers), len(targets), stimuli.name,
                len(stimuli))

    jobs = [(n, s) for n in networks for s in seed_list]
    n_jobs = _n_jobs(n_jobs, device, len(jobs))
    threads = max(1, (os.cpu_count() or 1) // n_jobs) if n_jobs > 1 else None
    task = dict(data=data, quick=quick, home=home, device=device, data_root=data_root,
                stimuli=stimuli, layers=list(layers), targets=list(targets), readout=readout,
                epochs=epochs, threads=threads)
    bar = tqdm(total=len(jobs), desc="networks", unit="net", disable=_hide(progress))
    frames = []
    if n_jobs == 1:
        outputs = (_run_network(n, s, **task) for n, s in jobs)
    else:
        from joblib import Parallel, delayed

        outputs = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_run_network)(n, s, **task) for n, s in jobs)
    for net_name, seed, info, net_frames in outputs:
        acc = info.get("test_accuracy")
        logger.info("%s seed %d: %s%d layers x %d targets decoded", net_name, seed,
                    "" if acc is None else f"own-task held-out accuracy {acc:.3f}; ",
                    len(layers), len(targets))
        frames.extend(net_frames)
        bar.update()
    bar.close()
    if pixel_control:
        from torch import nn

        pix = extract(nn.Identity(), stimuli, ["pixels"], device="cpu")["pixels"]
        for target in targets:
            res = decode_activations(pix, target=target, cv="viewpoint", readout=readout,
                                     epochs=epochs, seed=0, device=device, network="pixels")
            frames.append(res.to_frame())
    results = pd.concat(frames, ignore_index=True)
    # workers finish in any order; sort so that a table reads the same however it was run
    rank = {"network": {n: i for i, n in enumerate([*networks, "pixels"])},
            "layer": {name: i for i, name in enumerate(["pixels", *layers])}}
    results = results.sort_values(
        ["network", "seed", "layer", "target", "fold"],
        key=lambda c: c.map(rank[c.name]) if c.name in rank else c, kind="stable",
    ).reset_index(drop=True)
    results.insert(0, "data", data)
    elapsed = time.perf_counter() - start
    if out is not None:
        write_outputs(results, out, layers=list(layers), targets=list(targets),
                      context=dict(data=data, quick=quick, seeds=seed_list, readout=readout,
                                   readout_epochs=epochs, stimuli=stimuli.name,
                                   n_stimuli=len(stimuli), seconds=elapsed,
                                   device=str(device)))
    return results


def _n_jobs(n_jobs, device, n_tasks: int) -> int:
    """Worker processes: given, else one per core on a CPU (each with its own BLAS thread;
    small convolutions and readouts run faster that way than one process with two threads)
    and one on a GPU."""
    if n_jobs is None:
        n_jobs = 1 if device.type != "cpu" else (os.cpu_count() or 1)
    n_jobs = check_positive_int("n_jobs", n_jobs, 1)
    return max(1, min(n_jobs, n_tasks))


def _run_network(net_name, seed, *, data, quick, home, device, data_root, stimuli, layers,
                 targets, readout, epochs, threads):
    """Train or load one network x seed, extract its layers, decode every layer x target."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    train_variant(net_name, seed, data=data, quick=quick, home=home, device=device,
                  data_root=data_root, progress=False)
    model = load_model(net_name, seed=seed, data=data, home=home)
    acts = extract(model, stimuli, layers, device=device, progress=False)
    frames = []
    for layer in layers:
        for target in targets:
            res = decode_activations(acts[layer], target=target, cv="viewpoint",
                                     readout=readout, epochs=epochs, seed=seed, device=device,
                                     network=net_name, network_seed=seed)
            frames.append(res.to_frame())
    return net_name, seed, model.dnnrsa_info, frames


def _hide(progress):
    return None if progress is None else not progress


def write_outputs(results: pd.DataFrame, out: Path, *, layers, targets, context: dict) -> None:
    """results.csv, summary.csv, fig2a.png, fig2b.png and report.md in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import plot_fig2a, plot_fig2b

    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(results)
    diff = difference_from(summary)
    _write_csv(results, out / "results.csv")
    both = summary.merge(diff[["network", "layer", "target", "difference"]],
                         on=["network", "layer", "target"], how="left")
    both = both.rename(columns={"difference": "minus_untrained"})
    _write_csv(both, out / "summary.csv")
    label = f"{context['data']} data, {len(context['seeds'])} seed(s), readout {context['readout']}"
    for name, fig in (("fig2a.png", plot_fig2a(summary, layers, targets, title=label)),
                      ("fig2b.png", plot_fig2b(diff, layers, targets, title=label))):
        tmp = out / (name + ".partial.png")
        fig.savefig(tmp, dpi=120)
        plt.close(fig)
        os.replace(tmp, out / name)
    (out / "report.md.partial").write_text(report(summary, diff, layers, targets, context))
    os.replace(out / "report.md.partial", out / "report.md")


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".partial")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _pct(v):
    return "" if pd.isna(v) else f"{100 * v:.1f}"


def report(summary: pd.DataFrame, diff: pd.DataFrame, layers, targets, context: dict) -> str:
    """The Markdown report: our table beside the paper's, and which findings hold."""
    lines = [
        "# dnnrsa reproduction of Schwartz et al. (2022), CCN",
        "",
        f"dnnrsa {__version__}; data: **{context['data']}**"
        f"{' (quick settings)' if context['quick'] else ''}; test stimuli: "
        f"{context['stimuli']} ({context['n_stimuli']} images); seeds: {context['seeds']}; "
        f"readout: {context['readout']} ({context['readout_epochs']} epochs); "
        f"device: {context['device']}; {context['seconds']:.0f} s.",
        "",
        "Accuracy (%) of a readout trained on two viewpoints and tested on the third, "
        "mean over the 3 folds, then mean +- SEM over seeds. Paper: KDEF, 10 seeds.",
        "",
    ]
    header = "| network | readout | " + " | ".join(
        f"{layer} ours | {layer} paper" for layer in layers) + " | chance |"
    lines += [header, "|" + "---|" * (3 + 2 * len(layers))]
    for (net, target), sub in summary.groupby(["network", "target"], sort=False):
        s = sub.set_index("layer")
        cells = []
        for layer in layers:
            if layer in s.index:
                sem = s.loc[layer, "sem"]
                ours = _pct(s.loc[layer, "mean"]) + ("" if pd.isna(sem) else f" +- {_pct(sem)}")
            else:
                ours = _pct(s["mean"].iloc[0]) if net == "pixels" else ""
            paper = PAPER_RESULTS[(PAPER_RESULTS.network == net) & (PAPER_RESULTS.target == target)]
            cells.append(f"{ours} | {paper[layer].iloc[0] if len(paper) and layer in paper else ''}")
        lines.append(f"| {net} | {target} | " + " | ".join(cells)
                     + f" | {_pct(sub['chance'].iloc[0])} |")
    lines += ["", "## The paper's findings, checked on this run", ""]
    lines += [f"- {text}" for text in findings(summary, diff, layers)]
    lines += [
        "",
        "## Notes",
        "",
        "- Seeds of different networks are independent initialisations; the SEM of a "
        "trained-minus-untrained difference is sqrt(SEM_a^2 + SEM_b^2).",
        "- The pixel control is one linear layer on pixel values (standardised with the "
        "training fold's mean and SD), same folds; it does not depend on the network, so it "
        "has no seeds.",
        "- Synthetic data are not KDEF: compare patterns, not values. On the synthetic faces "
        "identity survives rotation far better than on KDEF (an untrained conv1 reads it "
        "out at several times the paper's 7.9%), so identity readouts sit high for every "
        "network; chance also differs when the set has another number of identities.",
        *(["- Quick settings: narrow networks (growth 8, 32 px), Adam, 10 epochs, no dropout, "
           "2 seeds, 15-epoch readouts; see dnnrsa.zoo.QUICK. Not the paper's protocol."]
          if context["quick"] else []),
        "",
        "Files: results.csv (one row per fold), summary.csv, fig2a.png, fig2b.png.",
    ]
    return "\n".join(lines) + "\n"


def findings(summary: pd.DataFrame, diff: pd.DataFrame, layers) -> list[str]:
    """Plain-language verdicts on the study's qualitative claims, from this run's numbers."""
    top = layers[-1]

    def get(net, target, layer=top):
        s = summary[(summary.network == net) & (summary.target == target) & (summary.layer == layer)]
        return None if s.empty else s.iloc[0]

    def verdict(claim, a, b, what_a, what_b):
        if a is None or b is None:
            return f"{claim}: not tested in this run."
        # "holds" needs the difference to exceed its combined SEM (a rough 1-SEM criterion)
        d = a["mean"] - b["mean"]
        if pd.isna(a["sem"]) or pd.isna(b["sem"]):
            return (f"{claim}: unclear with one seed, no SEM ({what_a} {_pct(a['mean'])}% vs "
                    f"{what_b} {_pct(b['mean'])}%, difference {100 * d:+.1f} points).")
        margin = np.sqrt(a["sem"] ** 2 + b["sem"] ** 2)
        state = "HOLDS" if d > margin else ("does NOT hold" if d <= 0 else "unclear (within 1 SEM)")
        return (f"{claim}: {state} ({what_a} {_pct(a['mean'])}% vs {what_b} "
                f"{_pct(b['mean'])}%, difference {100 * d:+.1f} points, 1 SEM {100 * margin:.1f}).")

    out = [
        verdict(f"Expression-trained {top} carries identity better than untrained",
                get("expression", "identity"), get("untrained", "identity"),
                "expression-trained", "untrained"),
        verdict(f"Identity-trained {top} carries expression better than untrained",
                get("identity", "expression"), get("untrained", "expression"),
                "identity-trained", "untrained"),
        verdict(f"Expression-trained {top} reads out expression better than untrained (own task)",
                get("expression", "expression"), get("untrained", "expression"),
                "expression-trained", "untrained"),
        verdict(f"Identity-trained {top} reads out identity better than untrained (own task)",
                get("identity", "identity"), get("untrained", "identity"),
                "identity-trained", "untrained"),
        verdict(f"Scene-trained {top} carries identity better than untrained",
                get("scene", "identity"), get("untrained", "identity"),
                "scene-trained", "untrained"),
    ]
    first = layers[0]
    e_first, e_top = get("expression", "identity", first), get("expression", "identity")
    if e_first is not None and e_top is not None:
        out.append(verdict(f"In the expression-trained net, identity is read out better from "
                           f"{top} than from {first} (the paper: 20.2% vs 9.5%)",
                           e_top, e_first, top, first))
    return out
