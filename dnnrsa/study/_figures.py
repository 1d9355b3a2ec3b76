"""Figures of the study: accuracy per layer (Figure 2A), trained minus untrained (2B) and
how hard the test faces are (the calibration figure).

Error bars are 95% intervals over network seeds, the unit of replication: a t interval
of the mean in 2A, Welch's interval of the difference in 2B (the test of the report's
findings). Where an interval is undefined (fewer than 2 seeds, no variance) no bar is
drawn, rather than a bar of zero length that would read as "no variability". Each
figure says in its caption how many seeds it shows and how its bars were computed."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

__all__ = ["plot_calibration", "plot_fig2a", "plot_fig2b"]

COLORS = {"expression": "#d95f02", "identity": "#1b9e77", "scene": "#7570b3",
          "untrained": "#666666", "pixels": "#000000"}
TITLES = {"identity": "Identity readout", "expression": "Expression readout"}


def _figure(n):
    # pyplot is imported when a figure is asked for; the backend stays the user's choice
    # (matplotlib falls back to Agg by itself where there is no display).
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.6), squeeze=False)
    return fig, axes[0]


def _finish(fig, axes, title, caption):
    """One legend for all panels below them (so it never hides a data point), then the
    caption, then the title."""
    handles, labels = axes[0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    if seen:
        fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=min(len(seen), 4),
                   fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.075))
    width = max(60, int(19 * fig.get_figwidth()))
    fig.text(0.01, 0.01, textwrap.fill(caption, width), fontsize=7, va="bottom",
             color="#333333")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.2, 1, 1))


def _net_label(net: str, n: int) -> str:
    name = "untrained" if net == "untrained" else f"{net}-trained"
    return f"{name} (n={n})"


def _seed_counts(frame: pd.DataFrame, column: str) -> str:
    counts = sorted({int(c) for c in frame[column].dropna()})
    return "/".join(str(c) for c in counts) if counts else "0"


def plot_fig2a(summary: pd.DataFrame, layers, targets, *, title: str | None = None):
    """Mean accuracy per layer, one panel per target, one line per network, with the 95% t
    interval over seeds (none where it is undefined); dashed: chance; dotted: the pixel
    control. The legend gives each network's number of seeds and the caption says how
    the bars were computed."""
    fig, axes = _figure(len(targets))
    x = np.arange(len(layers))
    trained = summary[summary.network != "pixels"]
    for ax, target in zip(axes, targets):
        sub = summary[summary.target == target]
        nets = [n for n in sub.network.unique() if n != "pixels"]
        for k, net in enumerate(nets):
            s = sub[sub.network == net].set_index("layer").reindex(layers)
            off = (k - (len(nets) - 1) / 2) * 0.06
            mean = 100 * s["mean"].to_numpy(float)
            err = np.vstack([mean - 100 * s["ci_low"].to_numpy(float),
                             100 * s["ci_high"].to_numpy(float) - mean])
            n = int(s["n_seeds"].max()) if s["n_seeds"].notna().any() else 0
            ax.errorbar(x + off, mean, yerr=err, marker="o", capsize=3,
                        label=_net_label(net, n), color=COLORS.get(net))
        chance = sub["chance"].iloc[0] if len(sub) else np.nan
        ax.axhline(100 * chance, ls="--", color="grey", lw=1, label="chance")
        pix = sub[sub.network == "pixels"]
        if len(pix):
            ax.axhline(100 * pix["mean"].iloc[0], ls=":", color="black", lw=1.5,
                       label="pixel control")
        ax.set_xticks(x, layers)
        ax.set_xlabel("layer")
        ax.set_ylabel("held-out-viewpoint accuracy (%)")
        ax.set_title(TITLES.get(target, f"{target} readout"))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    caption = (
        f"Mean over network seeds (n = {_seed_counts(trained, 'n_seeds')} per network) of "
        "the accuracy on the held-out viewpoint, averaged over the folds of each seed. Bars: "
        "95% t interval of the mean across seeds (none where fewer than 2 seeds). Dashed: "
        "chance. Dotted: pixel control, one linear readout on the pixels with the same folds "
        "(no seeds).")
    _finish(fig, axes, title, caption)
    return fig


def plot_fig2b(diff: pd.DataFrame, layers, targets, *, title: str | None = None,
               pixels: pd.DataFrame | None = None):
    """Trained minus untrained accuracy per layer, one panel per target, with Welch's 95%
    interval of the difference across seeds (``diff`` from
    :func:`dnnrsa.study.welch_differences`; none where undefined). With ``pixels`` (the
    summary's ``pixels`` and ``untrained`` rows) the pixel control minus the untrained
    network is marked too."""
    fig, axes = _figure(len(targets))
    x = np.arange(len(layers))
    for ax, target in zip(axes, targets):
        sub = diff[diff.target == target]
        nets = list(sub.network.unique())
        if not nets:
            ax.text(0.5, 0.5, "no trained network in this run", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
        width = 0.8 / max(len(nets), 1)
        for k, net in enumerate(nets):
            s = sub[sub.network == net].set_index("layer").reindex(layers)
            d = 100 * s["difference"].to_numpy(float)
            err = np.vstack([d - 100 * s["ci_low"].to_numpy(float),
                             100 * s["ci_high"].to_numpy(float) - d])
            n = int(s["n_seeds"].max()) if s["n_seeds"].notna().any() else 0
            ax.bar(x + (k - (len(nets) - 1) / 2) * width, d, width, yerr=err, capsize=3,
                   color=COLORS.get(net), label=_net_label(net, n))
        if pixels is not None:
            pix = pixels[(pixels.network == "pixels") & (pixels.target == target)]
            base = pixels[(pixels.network == "untrained") & (pixels.target == target)]
            if len(pix) and len(base):
                b = base.set_index("layer").reindex(layers)["mean"].to_numpy(float)
                ax.scatter(x, 100 * (pix["mean"].iloc[0] - b), marker="D", s=28,
                           facecolors="white", edgecolors="#333333", zorder=4,
                           label="pixel control - untrained")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, layers)
        ax.set_xlabel("layer")
        ax.set_ylabel("trained - untrained accuracy (points)")
        ax.set_title(TITLES.get(target, f"{target} readout"))
        ax.grid(alpha=0.3, axis="y")
    n_base = _seed_counts(diff, "n_seeds_baseline")
    caption = (
        f"Difference of the mean accuracies across seeds (n = {_seed_counts(diff, 'n_seeds')}"
        f" per trained network, {n_base} untrained). Bars: 95% Welch interval of the "
        "difference (independent seeds; none where fewer than 2 seeds or no variance), not "
        "adjusted for the number of cells; the report's findings test their cells with "
        "Holm-adjusted p values. 0: no difference from the untrained network.")
    _finish(fig, axes, title, caption)
    return fig


#: The x-chance ranges the calibration targets allow (issue 10), for the figure's bands.
_CALIBRATION_BANDS = {"untrained_conv1": (3.0, 9.0), "brightness": (0.0, 2.5)}


def plot_calibration(calib: pd.DataFrame, *, title: str | None = None):
    """How hard the test faces are: each calibration measure in multiples of chance (bars),
    its target range (green band) and KDEF's figure from the paper (diamond, 70
    identities). Measures that could not be taken (NaN) are listed, not drawn."""
    import matplotlib.pyplot as plt

    rows = calib[np.isfinite(calib["x_chance"].astype(float))].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.55 * max(len(rows), 1)))
    y = np.arange(len(rows))[::-1]
    ax.barh(y, rows["x_chance"], color="#1b9e77", height=0.5, label="this test set")
    for yi, (_, r) in zip(y, rows.iterrows()):
        band = _CALIBRATION_BANDS.get(r["measure"])
        right = float(r["x_chance"])  # the value's label goes right of all drawn here
        if band is not None:
            ax.fill_betweenx([yi - 0.38, yi + 0.38], *band, facecolor="none",
                             edgecolor="#1a9641", hatch="///", lw=1, zorder=3,
                             label="target range")
        if np.isfinite(r["kdef"]):
            kdef_chance = 1 / 7 if r["measure"].startswith("quick_expression") else 1 / 70
            ax.plot(r["kdef"] / kdef_chance, yi, "D", color="#d95f02", zorder=4,
                    label="KDEF (paper)")
            right = max(right, r["kdef"] / kdef_chance + 0.3)
        if band is not None:
            right = max(right, band[1])
        ax.text(right, yi, f" {100 * r['value']:.1f}%", va="center", fontsize=8)
    ax.axvline(1.0, ls="--", color="grey", lw=1, label="chance")
    ax.set_yticks(y, rows["measure"])
    ax.set_xlabel("accuracy / chance")
    missing = calib.loc[~calib["measure"].isin(rows["measure"]), "measure"].tolist()
    ax.set_title(title or "How hard is the test set? (no training involved)", fontsize=10)
    if missing:
        ax.set_title((title or "How hard is the test set? (no training involved)")
                     + "\nnot measurable here: " + ", ".join(missing), fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    ax.set_xlim(0, 1.15 * max(float(rows["x_chance"].max()), 9.5))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(seen.values(), seen.keys(), fontsize=7, loc="lower center", ncol=4,
               frameon=False)
    return fig
