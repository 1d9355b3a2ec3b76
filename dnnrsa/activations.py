"""`Activations`: one layer's (or one brain region's) responses to a stimulus set,
shaped like ROI data: observations x channels, plus the factor table."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._metadata import FactorTable, check_metadata, factor_codes, row_index

__all__ = ["Activations", "Residuals"]

_FORMAT = "dnnrsa.activations/1"


@dataclass(frozen=True)
class Residuals:
    """What a first-level GLM left unexplained: the residual time series of every feature
    (voxel), the scans of all runs stacked, with their degrees of freedom (scans minus the
    rank of each run's design, summed over runs). The noise estimate
    ``noise="residuals"`` of :func:`dnnrsa.rsa.rdm` is computed from them.

    Parameters
    ----------
    data : ndarray of shape (n_scans, n_features)
    dof : int
    """

    data: np.ndarray
    dof: int

    def __post_init__(self):
        data = np.asarray(self.data)
        if data.ndim != 2 or data.dtype.kind != "f":
            raise ValueError(
                "Residuals.data must be a float array of shape (n_scans, n_features), got "
                f"shape {data.shape} and dtype {data.dtype}."
            )
        if int(self.dof) < 1:
            raise ValueError(f"Residuals.dof must be >= 1, got {self.dof}.")
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "dof", int(self.dof))


class Activations(FactorTable):
    """Responses of one layer or region to a set of stimuli.

    Parameters
    ----------
    data : array-like of shape (n_obs, n_channels) or (n_obs, C, H, W)
        The responses. A convolutional layer keeps its spatial shape so that readouts
        that pool over space can use it; :attr:`X` always gives the flat view.
        A numpy memmap is kept as it is (not read into memory).
    metadata : pandas.DataFrame of n_obs rows
        The factors of each observation (``identity``, ``expression``, ``viewpoint``,
        ``session``, ``run``, ...).
    provenance : dict, optional
        Where the data come from, JSON-serialisable: ``model``, ``seed``, ``layer``,
        ``stimuli``, ``preprocessing``, ...
    mask : nibabel image, optional
        For brain data: the 3-D mask whose voxels (C order of the mask array, as nilearn's
        ``NiftiMasker``) are the columns; lets per-voxel results go back into a volume.
    residuals : Residuals, optional
        For brain data estimated by a GLM: its residuals, for ``noise="residuals"``.

    Examples
    --------
    Brain data enter the same way as network layers:

    >>> import numpy as np, pandas as pd
    >>> roi = Activations.from_arrays(np.random.rand(6, 50),
    ...     pd.DataFrame({"identity": list("aabbcc")}), region="FFA")
    >>> roi.X.shape, roi.provenance["region"]
    ((6, 50), 'FFA')
    """

    def __init__(self, data: Any, metadata: pd.DataFrame, provenance: Mapping | None = None,
                 *, mask: Any = None, residuals: Residuals | None = None):
        if hasattr(data, "detach"):
            data = data.detach().cpu().numpy()
        if not isinstance(data, np.ndarray):
            data = np.asarray(data)
        if data.dtype.kind not in "fiub":
            raise TypeError(f"Argument data must be numeric, got dtype {data.dtype}.")
        if data.ndim < 2:
            raise ValueError(
                "Argument data must have shape (n_obs, n_channels) or (n_obs, C, H, W), "
                f"got shape {data.shape}."
            )
        self.metadata = check_metadata(metadata, data.shape[0], "observations")
        self.data = data
        self.provenance = dict(provenance or {})
        try:  # refused here, not when the activations are saved hours later
            json.dumps(self.provenance, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"Argument provenance must hold JSON-serialisable values (str, "
                            f"numbers, lists, dicts, paths, numpy scalars): {exc}.") from None
        n_features = int(np.prod(data.shape[1:]))
        if mask is not None:
            from ._nifti import check_mask_image

            check_mask_image(mask, n_features)
        if residuals is not None:
            if not isinstance(residuals, Residuals):
                raise TypeError(
                    "Argument residuals must be a dnnrsa.Residuals (residual time series and "
                    f"their degrees of freedom), got {type(residuals).__name__}."
                )
            if residuals.data.shape[1] != n_features:
                raise ValueError(
                    f"Argument residuals has {residuals.data.shape[1]} features but the data "
                    f"have {n_features}."
                )
        self.mask = mask
        self.residuals = residuals

    @classmethod
    def from_arrays(cls, X: Any, metadata: pd.DataFrame, **provenance) -> Activations:
        """Wrap any (n_obs x n_channels) array, e.g. voxels of a region of interest, with
        its factor table. Keyword arguments become provenance."""
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(
                f"Argument X must have shape (n_obs, n_channels), got shape {X.shape}."
            )
        return cls(X, metadata, provenance)

    # -- shape ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.data.shape[0]

    def __repr__(self) -> str:
        what = self.provenance.get("layer") or self.provenance.get("region") or "data"
        model = self.provenance.get("model")
        src = f" of {model}" if model else ""
        return f"Activations({what}{src}: {len(self)} obs x {self.shape})"

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one observation: (C, H, W) for a convolutional layer, (n_channels,) else."""
        return tuple(self.data.shape[1:])

    @property
    def n_features(self) -> int:
        return int(np.prod(self.shape))

    @property
    def X(self) -> np.ndarray:
        """The responses as a (n_obs, n_features) matrix (a view, not a copy)."""
        return self.data.reshape(len(self), -1)

    @property
    def layer(self) -> str | None:
        return self.provenance.get("layer")

    def __getitem__(self, key) -> Activations:
        """A slice, integer array or boolean mask gives a new `Activations`."""
        idx = row_index(key, len(self), "Activations")
        return Activations(self.data[idx], self.metadata.iloc[idx], self.provenance,
                           mask=self.mask, residuals=self.residuals)

    # -- conversions ----------------------------------------------------------------------
    def to_arrays(self, target: str, groups: str | None = None):
        """``(X, y, groups)`` for scikit-learn or nilearn.

        Parameters
        ----------
        target : str
            Factor column to predict; ``y`` holds its integer codes in the order of
            :meth:`classes`.
        groups : str, optional
            Factor column for group-wise cross-validation (``"viewpoint"``, ``"session"``,
            ``"run"``); returned as integer codes, or None.

        Returns
        -------
        X : ndarray of shape (n_obs, n_features)
        y : ndarray of shape (n_obs,)
        groups : ndarray of shape (n_obs,) or None
        """
        y = factor_codes(self.metadata[self.check_factor(target, "target")], argument="target")
        g = None
        if groups is not None:
            g = factor_codes(self.metadata[self.check_factor(groups, "groups")],
                             argument="groups")
        return self.X, y, g

    def to_rsatoolbox(self):
        """An ``rsatoolbox.data.Dataset`` with the factors as ``obs_descriptors`` and the
        provenance as ``descriptors``."""
        from rsatoolbox.data import Dataset

        obs = {c: self.metadata[c].to_numpy() for c in self.metadata.columns}
        desc = {k: v for k, v in self.provenance.items() if np.isscalar(v) or v is None}
        return Dataset(np.asarray(self.X, dtype=np.float64), descriptors=desc, obs_descriptors=obs)

    # -- storage --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Save as one safetensors file (data, factor table and provenance in its header);
        no pickle. Written to a temporary name first, so a crash leaves nothing half-written."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "format": _FORMAT,
            "metadata": _frame_to_json(self.metadata),
            "provenance": json.dumps(self.provenance, default=_json_default),
        }
        tensors = {"data": np.ascontiguousarray(self.data)}
        if self.mask is not None:
            tensors["mask"] = np.ascontiguousarray(np.asanyarray(self.mask.dataobj), np.uint8)
            header["mask_affine"] = json.dumps(np.asarray(self.mask.affine).tolist())
        if self.residuals is not None:
            tensors["residuals"] = np.ascontiguousarray(self.residuals.data)
            header["residual_dof"] = str(self.residuals.dof)
        tmp = path.with_name(path.name + ".partial")
        try:
            save_file(tensors, str(tmp), metadata=header)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, mmap: bool = False) -> Activations:
        """Read a file written by :meth:`save`. With ``mmap=True`` the data stay on disk as a
        read-only memory map (for layers larger than memory)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Argument path: no activations file at {path}.")
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            try:
                header = json.loads(fh.read(n))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path} is not a safetensors file written by dnnrsa.") from exc
        meta = header.get("__metadata__", {})
        if meta.get("format") != _FORMAT or "data" not in header:
            raise ValueError(
                f"{path} is not an activations file written by Activations.save "
                f"(format {meta.get('format')!r}, expected {_FORMAT!r})."
            )
        def tensor(name, keep_mapped=False):
            info = header[name]
            dtype = _SAFETENSORS_DTYPES[info["dtype"]]
            start, _ = info["data_offsets"]
            arr = np.memmap(path, dtype=dtype, mode="r", offset=8 + n + start,
                            shape=tuple(info["shape"]))
            return arr if keep_mapped else np.array(arr)

        data = tensor("data", keep_mapped=mmap)
        mask = residuals = None
        if "mask" in header:
            import nibabel as nib

            mask = nib.Nifti1Image(tensor("mask"), np.array(json.loads(meta["mask_affine"])))
        if "residuals" in header:
            residuals = Residuals(tensor("residuals"), int(meta["residual_dof"]))
        return cls(data, _frame_from_json(meta["metadata"]), json.loads(meta["provenance"]),
                   mask=mask, residuals=residuals)

    def to_nifti(self, folder: str | os.PathLike) -> dict[str, Path]:
        """Write the responses as a region that neuroimaging tools read.

        Files in ``folder``: ``responses.nii.gz`` (4-D, one volume per observation, in the
        data's dtype), ``mask.nii.gz`` (the voxels that hold the columns) and
        ``events.tsv`` (the factor table, one row per volume, tab-separated, as BIDS
        tables). Brain data are written on the grid of their :attr:`mask`; a network
        layer has no volume and is laid out in a near-cubic box whose first
        ``n_features`` voxels (C order) are its units in order, so that
        ``dnnrsa.neural.from_images(paths["responses"], paths["events"],
        mask=paths["mask"])`` gives the same numbers back. Each file is written under a
        temporary name first.

        Returns
        -------
        dict
            ``{"responses": path, "mask": path, "events": path}``.
        """
        from ._nifti import box_mask, save_image, unmask

        if not np.isfinite(self.X).all():
            raise ValueError("Activations.to_nifti: the data contain NaN or Inf values.")
        folder = Path(folder)
        mask = self.mask if self.mask is not None else box_mask(self.n_features)
        paths = {
            "responses": folder / "responses.nii.gz",
            "mask": folder / "mask.nii.gz",
            "events": folder / "events.tsv",
        }
        save_image(unmask(np.asarray(self.X), mask), paths["responses"])
        mask_img = type(mask)(np.asanyarray(mask.dataobj).astype(np.uint8), mask.affine)
        save_image(mask_img, paths["mask"])
        tmp = paths["events"].with_name("events.partial.tsv")
        try:
            self.metadata.to_csv(tmp, sep="\t", index=False, na_rep="n/a")
            os.replace(tmp, paths["events"])
        finally:
            if tmp.exists():
                tmp.unlink()
        return paths


_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "BOOL": np.bool_,
}


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (np.ndarray, tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"provenance value {obj!r} of type {type(obj).__name__} is not JSON-serialisable")


def _frame_to_json(df: pd.DataFrame) -> str:
    """A DataFrame as JSON that keeps categorical order and column dtypes."""
    cols = []
    for name in df.columns:
        col = df[name]
        entry = {"name": str(name)}
        if isinstance(col.dtype, pd.CategoricalDtype):
            entry["categories"] = col.cat.categories.tolist()
            entry["ordered"] = bool(col.cat.ordered)
            entry["values"] = col.astype(object).where(col.notna(), None).tolist()
        else:
            entry["dtype"] = str(col.dtype)
            entry["values"] = col.astype(object).where(col.notna(), None).tolist()
        cols.append(entry)
    return json.dumps({"columns": cols, "n": len(df)}, default=_json_default)


def _frame_from_json(text: str) -> pd.DataFrame:
    spec = json.loads(text)
    data = {}
    for entry in spec["columns"]:
        if "categories" in entry:
            data[entry["name"]] = pd.Categorical(
                entry["values"], categories=entry["categories"], ordered=entry["ordered"]
            )
        else:
            values = pd.Series(entry["values"], dtype=object)
            try:
                values = values.astype(entry["dtype"])
            except (TypeError, ValueError):
                pass  # e.g. an object column of mixed values stays object
            data[entry["name"]] = values
    return pd.DataFrame(data, index=range(spec["n"]))
