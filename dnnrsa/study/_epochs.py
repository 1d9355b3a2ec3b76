"""How readouts change while a network learns: the part of a ``reproduce(at_epochs=...)``
run that follows the kept checkpoints of each trained network.

Every kept epoch of every seed is read out exactly as the final network is (same faces,
same folds, same readout seed), so a trajectory is the study's own measure at several
points of training. Intervals are over network seeds, as everywhere in the study: the mean
over folds of each seed, then a 95% t interval of the mean across seeds. Each epoch is also
compared with the untrained networks at the same layer by Welch's t across seeds (the
seeds of the two are independent initialisations), so "identity is above the untrained
level from epoch 3 on" comes with its test; p-values are not adjusted across epochs
(the table says so), since the question is where a curve stands, not a family of claims.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ._stats import _describe, per_seed, welch_test

__all__ = ["epoch_summary", "plot_epochs"]

_COLUMNS = ["network", "layer", "target", "epoch", "mean", "sd", "sem", "n_seeds", "ci_low",
            "ci_high", "chance", "minus_untrained", "minus_untrained_ci_low",
            "minus_untrained_ci_high", "minus_untrained_p"]


def epoch_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy over seeds at every kept epoch of every trained network.

    Parameters
    ----------
    results : pandas.DataFrame
        A sweep's per-fold table with an ``epoch`` column (``reproduce(at_epochs=...)``):
        trained networks at each kept epoch and the last, the untrained networks at epoch
        0, the pixel control without one.

    Returns
    -------
    pandas.DataFrame
        One row per trained network x layer x target x epoch: ``mean``, ``sd``, ``sem``,
        ``n_seeds``, ``ci_low``, ``ci_high`` (95% t interval over seeds), ``chance``, and
        against the untrained networks at the same layer and target: ``minus_untrained``,
        its Welch 95% interval and two-sided p (unadjusted; NaN without untrained seeds
        or with fewer than 2 seeds on a side).
    """
    if "epoch" not in results.columns:
        raise ValueError("Argument results has no 'epoch' column: it comes from "
                         "reproduce(..., at_epochs=[...]).")
    trained = results[(results.network != "untrained") & results.epoch.notna()
                      & (results.network != "pixels")]
    untrained = per_seed(results[results.network == "untrained"])
    base = {key: g["accuracy"].to_numpy(float)
            for key, g in untrained.groupby(["layer", "target"], sort=False)}
    rows = []
    for epoch, at in trained.groupby("epoch", sort=True):
        seeds = per_seed(at)
        for (net, layer, target), sub in seeds.groupby(["network", "layer", "target"],
                                                       sort=False):
            acc = sub["accuracy"].to_numpy(float)
            row = dict(network=net, layer=layer, target=target, epoch=int(epoch),
                       **_describe(acc), chance=sub["chance"].iloc[0])
            ref = base.get((layer, target))
            diff = dict(minus_untrained=math.nan, minus_untrained_ci_low=math.nan,
                        minus_untrained_ci_high=math.nan, minus_untrained_p=math.nan)
            if ref is not None and len(ref) >= 2 and len(acc) >= 2:
                t = welch_test(acc, ref)
                diff = dict(minus_untrained=t.difference, minus_untrained_ci_low=t.ci_low,
                            minus_untrained_ci_high=t.ci_high, minus_untrained_p=t.p)
            rows.append({**row, **diff})
    out = pd.DataFrame(rows, columns=_COLUMNS)
    out["n_seeds"] = out["n_seeds"].astype(int)
    return out.sort_values(["network", "target", "layer", "epoch"], kind="stable",
                           key=_order(results)).reset_index(drop=True)


def _order(results: pd.DataFrame):
    """Sort networks and layers in the order the sweep ran them."""
    rank = {"network": {n: i for i, n in enumerate(dict.fromkeys(results.network))},
            "layer": {n: i for i, n in enumerate(dict.fromkeys(results.layer))},
            "target": {n: i for i, n in enumerate(dict.fromkeys(results.target))}}
    return lambda c: c.map(rank[c.name]) if c.name in rank else c


def plot_epochs(summary: pd.DataFrame, untrained: pd.DataFrame, layers, targets, *,
                title: str | None = None):
    """One panel per trained network x target: accuracy against epoch, one line per layer
    with its 95% t interval over seeds (a band; none where undefined), the untrained
    networks' mean at the same layer as a dotted line of the same colour, chance dashed.

    ``untrained`` is the study's summary (:func:`dnnrsa.study.summarise`) of the untrained
    networks, or an empty frame."""
    import matplotlib.pyplot as plt

    from ._figures import _finish, _seed_counts

    nets = list(dict.fromkeys(summary.network))
    fig, axes = plt.subplots(len(nets), len(targets), figsize=(5.0 * len(targets),
                                                                3.4 * len(nets) + 1.2),
                             squeeze=False)
    cmap = plt.get_cmap("viridis")
    colors = {layer: cmap(i / max(1, len(layers) - 1) * 0.85) for i, layer in
              enumerate(layers)}
    for i, net in enumerate(nets):
        for j, target in enumerate(targets):
            ax = axes[i, j]
            sub = summary[(summary.network == net) & (summary.target == target)]
            for layer in layers:
                s = sub[sub.layer == layer].sort_values("epoch")
                if not len(s):
                    continue
                e = s["epoch"].to_numpy(float)
                ax.plot(e, 100 * s["mean"].to_numpy(float), marker="o", ms=3,
                        color=colors[layer], label=layer)
                lo, hi = s["ci_low"].to_numpy(float), s["ci_high"].to_numpy(float)
                ok = np.isfinite(lo) & np.isfinite(hi)
                if ok.any():
                    ax.fill_between(e[ok], 100 * lo[ok], 100 * hi[ok], color=colors[layer],
                                    alpha=0.15, lw=0)
                u = untrained[(untrained.layer == layer) & (untrained.target == target)]
                if len(u):
                    ax.axhline(100 * u["mean"].iloc[0], ls=":", lw=1, color=colors[layer])
            if len(sub):
                ax.axhline(100 * sub["chance"].iloc[0], ls="--", lw=1, color="grey",
                           label="chance")
            ax.set_title(f"{target} from the {net}-trained network", fontsize=9)
            ax.set_xlabel("training epoch")
            ax.set_ylabel("held-out-viewpoint accuracy (%)")
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
    caption = (
        f"Mean over network seeds (n = {_seed_counts(summary, 'n_seeds')}) of the accuracy "
        "on the held-out viewpoint at each kept epoch, read out as the final networks are. "
        "Bands: 95% t interval of the mean across seeds. Dotted: the untrained networks at "
        "the same layer (colour). Dashed: chance.")
    _finish(fig, list(axes.ravel()), title, caption)
    return fig


def epochs_section(summary: pd.DataFrame) -> list[str]:
    """The report's lines on training trajectories: each trained network x target at its
    deepest layer and first layer, epoch by epoch, against the untrained networks."""
    if not len(summary):
        return []
    lines = [
        "",
        "## While the networks learn",
        "",
        "Accuracy (%) at each kept epoch, mean [95% t CI] over seeds (n per cell), and the "
        "difference from the untrained networks at the same layer (Welch's t across seeds, "
        "two-sided, unadjusted p). All layers and targets: epochs.csv; fig_epochs.png.",
        "",
        "| network | readout | layer | epoch | accuracy | n | minus untrained | p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    layers = list(dict.fromkeys(summary.layer))
    show = [layers[0], layers[-1]] if len(layers) > 1 else layers
    for _, r in summary[summary.layer.isin(show)].iterrows():
        acc = f"{100 * r['mean']:.1f}"
        if np.isfinite(r["ci_low"]):
            acc += f" [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]"
        diff = p = "n/a"
        if np.isfinite(r["minus_untrained"]):
            diff = f"{100 * r['minus_untrained']:+.1f}"
            if np.isfinite(r["minus_untrained_ci_low"]):  # undefined without seed variance
                diff += (f" [{100 * r['minus_untrained_ci_low']:+.1f}, "
                         f"{100 * r['minus_untrained_ci_high']:+.1f}]")
            if np.isfinite(r["minus_untrained_p"]):
                p = f"{r['minus_untrained_p']:.3g}"
        lines.append(f"| {r['network']} | {r['target']} | {r['layer']} | {int(r['epoch'])} | "
                     f"{acc} | {int(r['n_seeds'])} | {diff} | {p} |")
    return lines
