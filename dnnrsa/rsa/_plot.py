"""Figures for RSA: an RDM heatmap with factor bands, a 2-D MDS of the conditions, and a
model-comparison bar chart with the noise ceiling. Every function returns the matplotlib
Figure and never shows it."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._utils import check_positive_int, format_choices
from ._compare import as_vectors, n_cond_from_pairs
from ._inference import check_seed_option

__all__ = ["plot_rdm", "plot_mds", "plot_model_comparison"]


def _figure_and_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _matrix(rdms, index: int) -> np.ndarray:
    V = as_vectors(rdms, "rdms")
    if not -V.shape[0] <= index < V.shape[0]:
        raise IndexError(f"Argument index={index} is out of range for {V.shape[0]} RDM(s).")
    n = n_cond_from_pairs(V.shape[1])
    D = np.zeros((n, n))
    i, j = np.triu_indices(n, k=1)
    D[i, j] = V[index]
    D[j, i] = V[index]
    return D


def _pattern_factors(rdms, n: int) -> dict:
    desc = getattr(rdms, "pattern_descriptors", None) or {}
    return {k: np.asarray(v) for k, v in desc.items() if k != "index" and len(v) == n}


def _default_factors(rdms, n: int, limit: int = 3) -> list:
    """Pattern descriptors that group the conditions (2 to n - 1 levels), the condition
    factors first."""
    desc = _pattern_factors(rdms, n)
    cond = (getattr(rdms, "descriptors", None) or {}).get("conditions", "")
    ordered = [k for k in desc if k in cond.split("_")] + [k for k in desc if k not in cond]
    out = []
    for k in ordered:
        n_levels = len(pd.unique(pd.Series(desc[k])))
        if 2 <= n_levels < n and k not in out:
            out.append(k)
    return out[:limit]


def _check_factors(factors, rdms, n: int, argument: str) -> list:
    desc = _pattern_factors(rdms, n)
    if isinstance(factors, str):
        factors = [factors]
    for f in factors:
        if f not in desc:
            raise ValueError(
                f"Unknown value {f!r} for argument {argument}: it is not a pattern "
                f"descriptor of the RDMs. Valid values are {format_choices(list(desc))}."
            )
    return list(factors)


_PALETTES = ("tab10", "Set2", "Dark2", "Pastel1")


def _level_colors(values: np.ndarray, palette: int = 0):
    """Integer codes (in order of first appearance) and one colour per level; each band
    of a figure gets its own qualitative palette.

    First appearance, not :func:`dnnrsa._metadata.factor_levels`: pattern descriptors have
    lost their Categorical order, and the conditions already come in the natural order,
    which sorting would undo (viewpoints HL, S, HR would become HL, HR, S)."""
    from matplotlib import colormaps

    codes, levels = pd.factorize(pd.Series(values))
    cmap = colormaps[_PALETTES[palette % len(_PALETTES)]]
    if len(levels) > cmap.N:
        cmap = colormaps["tab20"] if len(levels) <= 20 else colormaps["turbo"].resampled(
            len(levels))
    colors = [cmap(k % cmap.N) for k in range(len(levels))]
    return codes, list(levels), colors


def plot_rdm(
    rdms,
    *,
    index: int = 0,
    factors: Sequence[str] | str | None = None,
    ax=None,
    cmap: str = "viridis",
    title: str | None = None,
    colorbar: bool = True,
):
    """Heatmap of one RDM with coloured bands marking the factor levels of the conditions.

    Parameters
    ----------
    rdms : RDMs or array of shape (n_pairs,) / (n_rdms, n_pairs)
    index : int
        Which RDM of ``rdms`` to show.
    factors : str or sequence of str, optional
        Pattern descriptors drawn as bands along the top and left edges (one band per
        factor, one colour per level). Default: up to three descriptors that group the
        conditions, the condition factors first. ``[]`` draws none.
    ax : matplotlib Axes, optional
        Draw into this Axes (bands are inset around it); a new Figure otherwise.
    cmap : str
        Colormap of the dissimilarities.
    title : str, optional
        Default: the dissimilarity measure and the layer, when known.
    colorbar : bool

    Returns
    -------
    matplotlib.figure.Figure
    """
    D = _matrix(rdms, index)
    n = D.shape[0]
    fig, ax = _figure_and_axes(ax, (6.4, 5.6))
    factors = _default_factors(rdms, n) if factors is None else _check_factors(
        factors, rdms, n, "factors")
    im = ax.imshow(D, cmap=cmap, interpolation="nearest", aspect="equal")
    ax.set_xticks([])
    ax.set_yticks([])
    desc = _pattern_factors(rdms, n)
    band = 0.035
    from matplotlib.colors import ListedColormap

    for k, f in enumerate(factors):
        codes, _, colors = _level_colors(desc[f], palette=k)
        lc = ListedColormap(colors)
        top = ax.inset_axes([0, 1 + k * band, 1, band])
        top.imshow(codes[None, :], cmap=lc, aspect="auto", interpolation="nearest",
                   vmin=-0.5, vmax=len(colors) - 0.5)
        left = ax.inset_axes([-(k + 1) * band, 0, band, 1])
        left.imshow(codes[:, None], cmap=lc, aspect="auto", interpolation="nearest",
                    vmin=-0.5, vmax=len(colors) - 0.5)
        for a in (top, left):
            a.set_xticks([])
            a.set_yticks([])
        top.set_ylabel(f, rotation=0, ha="right", va="center", fontsize=8)
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title is None:
        measure = getattr(rdms, "dissimilarity_measure", None)
        layer = (getattr(rdms, "rdm_descriptors", None) or {}).get("layer")
        parts = [str(measure)] if measure else []
        if layer is not None and len(layer) > index and layer[index] is not None:
            parts.append(str(layer[index]))
        title = " - ".join(parts)
    if title:
        ax.set_title(title, pad=8 + 14 * len(factors))
    return fig


def _random_state(seed):
    """scikit-learn's ``random_state`` for a ``seed`` option: the int itself (below 2**32,
    scikit-learn's limit), None, or an int drawn from a numpy Generator (which
    scikit-learn does not take)."""
    seed = check_seed_option(seed)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**32))
    return None if seed is None else check_positive_int("seed", seed, 0, 2**32 - 1)


def _mds(D: np.ndarray, seed) -> np.ndarray:
    from sklearn.manifold import MDS

    params = inspect.signature(MDS).parameters
    kwargs = {"n_components": 2, "random_state": _random_state(seed), "n_init": 4}
    if "metric_mds" in params:  # scikit-learn >= 1.8
        kwargs.update(metric="precomputed", metric_mds=True, init="random")
    else:
        kwargs.update(dissimilarity="precomputed")
    if "normalized_stress" in params:
        kwargs["normalized_stress"] = "auto"
    return MDS(**kwargs).fit_transform(D)


def plot_mds(
    rdms,
    *,
    index: int = 0,
    color_by: str | None = None,
    seed: int | np.random.Generator | None = 0,
    ax=None,
    title: str | None = None,
):
    """Two-dimensional metric MDS of the conditions of one RDM, coloured by a factor.

    The dissimilarities are embedded as given (crossnobis estimates below 0 are set to
    0, as a distance cannot be negative). ``sklearn.manifold.MDS`` on the precomputed
    matrix, seeded.

    Parameters
    ----------
    rdms : RDMs or array
    index : int
        Which RDM to embed.
    color_by : str, optional
        Pattern descriptor that colours the points (default: the first condition factor);
        a legend is drawn for up to 20 levels.
    seed : int, numpy.random.Generator or None
        Random state of the MDS. The default 0 gives the same layout on every call; None
        a fresh one; a Generator gives one int seed drawn from it.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    D = np.clip(_matrix(rdms, index), 0, None)
    n = D.shape[0]
    if n < 3:
        raise ValueError(f"MDS needs at least 3 conditions, got {n}.")
    Y = _mds(D, seed)
    fig, ax = _figure_and_axes(ax, (5.6, 5.0))
    if color_by is None:
        defaults = _default_factors(rdms, n, limit=1)
        color_by = defaults[0] if defaults else None
    else:
        color_by = _check_factors(color_by, rdms, n, "color_by")[0]
    if color_by is None:
        ax.scatter(Y[:, 0], Y[:, 1], s=25, color="0.3")
    else:
        codes, levels, colors = _level_colors(_pattern_factors(rdms, n)[color_by])
        for c, (level, color) in enumerate(zip(levels, colors, strict=True)):
            sel = codes == c
            ax.scatter(Y[sel, 0], Y[sel, 1], s=25, color=color, label=str(level))
        if len(levels) <= 20:
            ax.legend(title=color_by, fontsize=7, title_fontsize=8, frameon=False,
                      loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return fig


def plot_model_comparison(
    results: pd.DataFrame,
    noise_ceiling=None,
    *,
    ax=None,
    title: str | None = None,
    color: str = "#4c72b0",
):
    """Bar chart of model evaluations with SEM error bars and the noise ceiling.

    Parameters
    ----------
    results : pandas.DataFrame
        Either the long table of :func:`evaluate` (columns ``model``, ``value``): bars
        are the mean over data RDMs and error bars the standard error of the mean; or
        the table of :func:`bootstrap` (columns ``model``, ``estimate``, ``se``): bars
        are the estimates and error bars the bootstrap standard errors.
    noise_ceiling : DataFrame, (lower, upper), or None
        The table of :func:`noise_ceiling`, or the two bounds; drawn as a grey band.
    ax : matplotlib Axes, optional
    title : str, optional
    color : str
        Bar colour.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"Argument results must be a DataFrame, got {type(results).__name__}.")
    if {"estimate", "se", "model"} <= set(results.columns):
        models = list(results["model"])
        height = results["estimate"].to_numpy(float)
        err = results["se"].to_numpy(float)
    elif {"model", "value"} <= set(results.columns):
        grouped = results.groupby("model", sort=False)["value"]
        models = list(grouped.mean().index)
        height = grouped.mean().to_numpy(float)
        count = grouped.count().to_numpy()
        sd = grouped.std(ddof=1).to_numpy(float)
        err = np.where(count > 1, sd / np.sqrt(np.maximum(count, 1)), np.nan)
    else:
        raise ValueError(
            "Argument results needs columns (model, value) as from evaluate(), or "
            f"(model, estimate, se) as from bootstrap(); got {list(results.columns)}."
        )
    fig, ax = _figure_and_axes(ax, (1.2 + 0.8 * len(models), 4.0))
    x = np.arange(len(models))
    if noise_ceiling is not None:
        if isinstance(noise_ceiling, pd.DataFrame):
            lower = float(noise_ceiling["lower"].iloc[0])
            upper = float(noise_ceiling["upper"].iloc[0])
        else:
            lower, upper = (float(v) for v in noise_ceiling)
        ax.axhspan(lower, upper, color="0.8", zorder=0, label="noise ceiling")
    ax.bar(x, height, color=color, zorder=2)
    ax.errorbar(x, height, yerr=np.nan_to_num(err), fmt="none", ecolor="black", capsize=3,
                zorder=3)
    ax.axhline(0, color="black", lw=0.8, zorder=1)
    ax.set_xticks(x, [str(m) for m in models], rotation=30 if len(models) > 4 else 0,
                  ha="right" if len(models) > 4 else "center")
    method = results["method"].iloc[0] if "method" in results.columns and len(results) else None
    ax.set_ylabel(f"RDM similarity ({method})" if method else "RDM similarity")
    if noise_ceiling is not None:
        ax.legend(frameon=False, fontsize=8, loc="upper right")
    if title:
        ax.set_title(title)
    return fig
