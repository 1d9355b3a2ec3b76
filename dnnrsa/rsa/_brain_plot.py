"""Figure of :func:`dnnrsa.rsa.compare_to_brain`: one panel per region, layers along x,
one line per network with its bootstrap interval, and the region's noise ceiling. Returns
the matplotlib Figure and never shows it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["plot_brain_comparison"]

_NEEDED = ("network", "seed", "layer", "roi", "method", "value", "ci_low", "ci_high",
           "ceiling_low", "ceiling_high")


def plot_brain_comparison(table: pd.DataFrame, *, ax=None):
    """Layer-by-layer similarity of networks to brain regions.

    Parameters
    ----------
    table : pandas.DataFrame
        The table of :func:`compare_to_brain` (columns ``network``, ``seed``, ``layer``,
        ``roi``, ``method``, ``value``, ``ci_low``, ``ci_high``, ``ceiling_low``,
        ``ceiling_high``), one comparison method throughout.
    ax : matplotlib Axes or sequence of Axes, optional
        One Axes per region, in the order the regions appear in the table; by default a
        new Figure with the regions side by side.

    Returns
    -------
    matplotlib.figure.Figure
        Per region (panel title): the layers along x in the order they appear in the
        table; per network a line through the mean over its seeds, with a band from the
        mean ``ci_low`` to the mean ``ci_high`` over seeds (with one seed, its bootstrap
        interval), and each seed as a thin line when there are several; the noise
        ceiling as a grey band from ``ceiling_low`` to ``ceiling_high`` (absent when
        they are NaN, e.g. for one subject). The y label names the method.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Argument table must be a DataFrame, got {type(table).__name__}.")
    missing = [c for c in _NEEDED if c not in table.columns]
    if missing:
        raise ValueError(
            f"Argument table lacks columns {missing}; it must be the table of "
            "compare_to_brain()."
        )
    if len(table) == 0:
        raise ValueError("Argument table has no rows.")
    methods = list(pd.unique(table["method"]))
    if len(methods) > 1:
        raise ValueError(
            f"Argument table mixes comparison methods {methods}; plot one method at a "
            "time (e.g. table[table.method == 'spearman'])."
        )
    rois = list(pd.unique(table["roi"]))
    layers = list(pd.unique(table["layer"]))
    networks = list(pd.unique(table["network"]))
    fig, axes = _axes(ax, len(rois), len(layers))
    x = np.arange(len(layers))
    span = np.array([-0.5, len(layers) - 0.5])
    colors = _colors(len(networks))
    for panel, (roi, axis) in enumerate(zip(rois, axes, strict=True)):
        rows = table[table["roi"] == roi]
        low = rows["ceiling_low"].astype(float).mean()
        high = rows["ceiling_high"].astype(float).mean()
        if np.isfinite(low) and np.isfinite(high):
            axis.fill_between(span, low, high, color="0.85", lw=0, zorder=0,
                              label="noise ceiling", gid="ceiling")
        for network, color in zip(networks, colors, strict=True):
            _draw_network(axis, rows[rows["network"] == network], layers, x, network, color)
        axis.axhline(0, color="black", lw=0.8, zorder=1)
        axis.set_xlim(*span)
        axis.set_xticks(x, [str(v) for v in layers], rotation=30 if len(layers) > 4 else 0,
                        ha="right" if len(layers) > 4 else "center")
        axis.set_title(str(roi))
        axis.set_xlabel("layer")
        if panel == 0:
            axis.set_ylabel(f"similarity to brain RDMs ({methods[0]})")
            axis.legend(frameon=False, fontsize=8, loc="best")
    return fig


def _axes(ax, n_panels: int, n_layers: int):
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(1.0 + (0.6 * n_layers + 1.2) * n_panels, 3.8),
                     layout="constrained")
        axes = fig.subplots(1, n_panels, sharey=True, squeeze=False)[0]
        return fig, list(axes)
    if hasattr(ax, "plot") and hasattr(ax, "figure"):
        axes = [ax]
    elif isinstance(ax, (Sequence, np.ndarray)):
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
    else:
        raise TypeError(f"Argument ax must be a matplotlib Axes or a sequence of Axes, got "
                        f"{type(ax).__name__}.")
    if len(axes) != n_panels:
        raise ValueError(
            f"Argument ax holds {len(axes)} Axes, but the table has {n_panels} region(s); "
            "give one Axes per region."
        )
    return axes[0].figure, axes


def _colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _mean_over_seeds(a: np.ndarray) -> np.ndarray:
    """Column means over the finite entries; NaN where a column has none."""
    finite = np.isfinite(a)
    count = finite.sum(axis=0)
    total = np.where(finite, a, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.full(a.shape[1], np.nan), where=count > 0)


def _draw_network(axis, rows: pd.DataFrame, layers: list, x, network, color) -> None:
    def by_layer(column):
        wide = rows.pivot_table(index="seed", columns="layer", values=column,
                                aggfunc="mean", dropna=False, sort=False)
        return wide.reindex(columns=layers).to_numpy(dtype=float)

    values = by_layer("value")
    if values.shape[0] > 1:
        for k, seed_values in enumerate(values):
            axis.plot(x, seed_values, color=color, lw=0.7, alpha=0.45, zorder=2,
                      label="_seed", gid=f"seed:{network}:{k}")
    mean, low, high = (_mean_over_seeds(a) for a in
                       (values, by_layer("ci_low"), by_layer("ci_high")))
    if np.isfinite(low).any():
        axis.fill_between(x, low, high, color=color, alpha=0.2, lw=0, zorder=1,
                          gid=f"ci:{network}")
    axis.plot(x, mean, color=color, lw=2, marker="o", zorder=3, label=str(network),
              gid=f"mean:{network}")
