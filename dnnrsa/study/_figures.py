"""Figures of the study: accuracy per layer (Figure 2A) and trained minus untrained (2B).

Error bars are SEMs over network seeds; where a SEM is undefined (one seed) no bar is
drawn, rather than a bar of zero length that would read as "no variability"."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["plot_fig2a", "plot_fig2b"]

COLORS = {"expression": "#d95f02", "identity": "#1b9e77", "scene": "#7570b3",
          "untrained": "#666666", "pixels": "#000000"}
TITLES = {"identity": "Identity readout", "expression": "Expression readout"}


def _figure(n):
    # pyplot is imported when a figure is asked for; the backend stays the user's choice
    # (matplotlib falls back to Agg by itself where there is no display).
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.2), squeeze=False)
    return fig, axes[0]


def _legend_below(fig, axes):
    """One legend for all panels, below them, so it never hides a data point."""
    handles, labels = axes[0].get_legend_handles_labels()
    if not labels:
        return
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8,
               frameon=False)


def plot_fig2a(summary: pd.DataFrame, layers, targets, *, title: str | None = None):
    """Mean accuracy per layer with SEM bars (none where the SEM is undefined), one panel per
    target, one line per network; dashed: chance; dotted: the pixel control."""
    fig, axes = _figure(len(targets))
    x = np.arange(len(layers))
    for ax, target in zip(axes, targets):
        sub = summary[summary.target == target]
        nets = [n for n in sub.network.unique() if n != "pixels"]
        for k, net in enumerate(nets):
            s = sub[sub.network == net].set_index("layer").reindex(layers)
            off = (k - (len(nets) - 1) / 2) * 0.06
            ax.errorbar(x + off, 100 * s["mean"], yerr=100 * s["sem"], marker="o",
                        capsize=3, label=f"{net}-trained" if net != "untrained" else "untrained",
                        color=COLORS.get(net))
        chance = sub["chance"].iloc[0] if len(sub) else np.nan
        ax.axhline(100 * chance, ls="--", color="grey", lw=1, label="chance")
        pix = sub[sub.network == "pixels"]
        if len(pix):
            ax.axhline(100 * pix["mean"].iloc[0], ls=":", color="black", lw=1.5,
                       label="pixel control")
        ax.set_xticks(x, layers)
        ax.set_xlabel("layer")
        ax.set_ylabel("held-out-viewpoint accuracy (%, mean +- SEM)")
        ax.set_title(TITLES.get(target, f"{target} readout"))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    _legend_below(fig, axes)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def plot_fig2b(diff: pd.DataFrame, layers, targets, *, title: str | None = None):
    """Trained minus untrained accuracy per layer with the difference's SEM (none where it
    is undefined), one panel per target."""
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
            ax.bar(x + (k - (len(nets) - 1) / 2) * width, 100 * s["difference"], width,
                   yerr=100 * s["sem"], capsize=3, color=COLORS.get(net),
                   label=f"{net}-trained")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, layers)
        ax.set_xlabel("layer")
        ax.set_ylabel("trained - untrained accuracy (points, +- SEM)")
        ax.set_title(TITLES.get(target, f"{target} readout"))
        ax.grid(alpha=0.3, axis="y")
    _legend_below(fig, axes)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig
