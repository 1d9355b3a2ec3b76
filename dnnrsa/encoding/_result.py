"""`EncodingResult`: the scores of :func:`dnnrsa.encoding.encode`, per layer x region and
per voxel, with a volume writer and a layer profile plot."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._nifti import save_image, unmask
from .._utils import check_choice, format_choices

__all__ = ["EncodingResult"]

TABLE_COLUMNS = [
    "network", "seed", "layer", "roi", "mean_r", "median_r", "mean_r2", "n_voxels",
    "n_voxels_nan", "n_folds", "backend", "p_value", "alpha_median",
]
SCORES = ("r", "r2", "alpha")


@dataclass
class EncodingResult:
    """What :func:`encode` found: how well each layer predicts each region, voxel by voxel.

    Keys of the dictionaries are ``(network, seed, layer, roi)`` tuples, the identifying
    columns of :attr:`table`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per network x seed x layer x ROI with columns ``network, seed, layer, roi,
        mean_r, median_r, mean_r2, n_voxels, n_voxels_nan, n_folds, backend, p_value,
        alpha_median``. The means and median are over the voxels whose score is defined
        (``n_voxels - n_voxels_nan`` of them); ``p_value`` is NaN without permutations.
    voxels : dict of key -> DataFrame of shape (n_voxels, 3)
        Per voxel: ``r`` and ``r2`` (mean over folds; NaN when undefined in any fold) and
        ``alpha`` (the penalty chosen most often over folds; the median of the folds'
        penalties when several are chosen equally often).
    folds : dict of key -> ndarray of shape (n_folds, n_voxels)
        Pearson r of every held-out fold.
    folds_r2 : dict of key -> ndarray of shape (n_folds, n_voxels)
        R^2 of every held-out fold.
    fold_labels : dict of str -> list of str
        Per ROI, what each fold held out.
    null : dict of key -> ndarray of shape (n_permutations,), or None
        The mean-over-voxels r of every permutation; None when ``n_permutations=0``.
    masks : dict of str -> nibabel image or None
        The mask of every ROI (the grid :meth:`to_nifti` writes on).
    params : dict
        The options of the run (``cv``, ``conditions``, ``alphas``, ``backend``,
        ``n_permutations``, ``seed``).
    """

    table: pd.DataFrame
    voxels: dict
    folds: dict
    folds_r2: dict
    fold_labels: dict
    null: dict | None
    masks: dict = field(repr=False)
    params: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        t = self.table
        return (f"EncodingResult({t['network'].nunique()} network(s) x {t['seed'].nunique()} "
                f"seed(s) x {t['layer'].nunique()} layer(s) x {t['roi'].nunique()} ROI(s), "
                f"backend={self.params.get('backend')!r})")

    # -- selection ------------------------------------------------------------------------
    def key(self, *, layer: Any = None, roi: Any = None, network: Any = None,
            seed: Any = None) -> tuple:
        """The one ``(network, seed, layer, roi)`` key that matches the selection; a
        ValueError names the valid values, or lists the keys left when it is ambiguous."""
        keys = list(self.voxels)
        chosen = {"network": network, "seed": seed, "layer": layer, "roi": roi}
        for pos, (name, value) in enumerate(chosen.items()):
            if value is None:
                continue
            valid = list(dict.fromkeys(k[pos] for k in keys))
            if value not in valid:
                raise ValueError(
                    f"Unknown value {value!r} for argument {name}. Valid values are "
                    f"{format_choices(valid)}."
                )
            keys = [k for k in keys if k[pos] == value]
        if not keys:
            raise ValueError(
                f"No result for the selection {chosen}: that combination was not fitted. "
                f"Fitted keys (network, seed, layer, roi) are {list(self.voxels)[:20]}."
            )
        if len(keys) > 1:
            free = [n for pos, n in enumerate(chosen) if len({k[pos] for k in keys}) > 1]
            raise ValueError(
                f"The selection {chosen} matches {len(keys)} results: {keys[:20]}. Give "
                f"{', '.join(f'{n}=' for n in free)} to choose one."
            )
        return keys[0]

    # -- output ---------------------------------------------------------------------------
    def to_nifti(self, path: str | os.PathLike, *, layer: Any = None, roi: Any = None,
                 network: Any = None, seed: Any = None, score: str = "r") -> Path:
        """Write one per-voxel map as a 3-D NIfTI image on the grid of the ROI's mask.

        Parameters
        ----------
        path : str or path-like
            Where to write (``.nii`` or ``.nii.gz``); written through a temporary name.
        layer, roi, network, seed : optional
            Which result; each may be left out when only one value exists.
        score : {"r", "r2", "alpha"}
            The per-voxel column of :attr:`voxels` to write. Voxels outside the mask are 0;
            voxels whose score is undefined are NaN.

        Returns
        -------
        pathlib.Path
        """
        check_choice("score", score, SCORES)
        key = self.key(layer=layer, roi=roi, network=network, seed=seed)
        mask = self.masks.get(key[3])
        if mask is None:
            raise ValueError(
                f"ROI {key[3]!r} has no mask, so its voxels have no place in a volume. Build "
                "the brain Activations with mask= (e.g. dnnrsa.neural.from_runs keeps the "
                "mask) to write NIfTI maps."
            )
        values = self.voxels[key][score].to_numpy(dtype=np.float32)
        return save_image(unmask(values, mask), path)

    def plot(self, ax: Any = None):
        """Mean r per layer (x, in the order given) with one line per ROI (and network);
        with several seeds, the mean over seeds with their standard deviation as error bars.

        Parameters
        ----------
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        t = self.table
        layers = list(dict.fromkeys(t["layer"]))
        x = np.arange(len(layers))
        several_networks = t["network"].nunique() > 1
        for (network, roi), sub in t.groupby(["network", "roi"], sort=False):
            stats = sub.groupby("layer", sort=False)["mean_r"].agg(["mean", "std", "count"])
            stats = stats.reindex(layers)
            label = f"{network} / {roi}" if several_networks else str(roi)
            yerr = stats["std"].to_numpy() if (stats["count"] > 1).any() else None
            ax.errorbar(x, stats["mean"].to_numpy(), yerr=yerr, marker="o", capsize=3,
                        label=label)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(layers, rotation=45, ha="right")
        ax.set_xlabel("layer")
        ax.set_ylabel("mean r (held-out)")
        ax.legend(title="ROI", fontsize="small")
        return ax
