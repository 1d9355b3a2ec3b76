"""NIfTI plumbing shared by the core type and the brain stage: where the columns of an
`Activations` sit in a volume, and writing images without leaving half-written files.

The columns of brain data are the voxels of a mask in C order of the mask array, which is
the order of nilearn's ``NiftiMasker`` (``data[mask]``). A network layer has no volume; it
is laid out in a near-cubic box whose first ``n`` voxels (C order) form the mask, so that
masking the box gives the columns back in their order.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

__all__ = ["box_mask", "check_mask_image", "unmask", "save_image"]


def box_mask(n_features: int):
    """A 3-D mask image (identity affine, 1 mm voxels) whose first ``n_features`` voxels
    in C order are set."""
    import nibabel as nib

    side = max(1, math.ceil(round(n_features ** (1 / 3), 9)))
    while side**3 < n_features:
        side += 1
    ny = side
    nx = max(1, math.ceil(n_features / (side * side)))
    flat = np.zeros(nx * ny * side, dtype=np.uint8)
    flat[:n_features] = 1
    return nib.Nifti1Image(flat.reshape(nx, ny, side), np.eye(4))


def check_mask_image(mask, n_features: int | None = None, argument: str = "mask"):
    """A 3-D nibabel image of 0/1 values; with ``n_features``, one set voxel per column."""
    import nibabel as nib

    if not isinstance(mask, nib.spatialimages.SpatialImage):
        raise TypeError(
            f"Argument {argument} must be a nibabel image, got {type(mask).__name__}."
        )
    data = np.asanyarray(mask.dataobj)
    if data.ndim != 3:
        raise ValueError(f"Argument {argument} must be a 3-D image, got shape {data.shape}.")
    values = np.unique(data)
    if not np.isin(values, (0, 1)).all():
        raise ValueError(
            f"Argument {argument} must hold 0 and 1 only, got values {values[:6].tolist()}."
        )
    if n_features is not None and int(data.sum()) != n_features:
        raise ValueError(
            f"Argument {argument} has {int(data.sum())} voxels but the data have "
            f"{n_features} columns; one voxel per column is needed."
        )
    return mask


def unmask(X: np.ndarray, mask):
    """Rows of ``X`` (n_maps x n_voxels) back into a 4-D image (or 3-D for one row) on the
    grid of ``mask``; voxels outside the mask are 0."""
    import nibabel as nib

    X = np.asarray(X)
    inside = np.asanyarray(mask.dataobj).astype(bool)
    rows = X[None, :] if X.ndim == 1 else X
    vol = np.zeros(inside.shape + (rows.shape[0],), dtype=rows.dtype)
    vol[inside] = rows.T
    if X.ndim == 1:
        vol = vol[..., 0]
    header = nib.Nifti1Header()
    header.set_data_dtype(vol.dtype)
    return nib.Nifti1Image(vol, mask.affine, header)


def save_image(img, path: str | os.PathLike) -> Path:
    """Write a nibabel image to ``path`` through a temporary name in the same folder."""
    import nibabel as nib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    tmp = path.with_name(path.name[: len(path.name) - len(suffix)] + ".partial" + suffix)
    try:
        nib.save(img, str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
