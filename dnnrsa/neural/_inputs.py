"""Reading and checking what the brain stage is given: images (paths or nibabel), masks,
label atlases and BIDS-style tables, with the errors that say what is wrong and how to fix
it. Nothing here resamples or casts data: a mismatch is an error, never a silent repair.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

IN_MEMORY = "in-memory image"

#: How many voxel coordinates an error about bad voxels lists.
_N_SHOWN = 5


def describe(label: str | None) -> str:
    """A file path, or ``"in-memory image"`` for an image that has none."""
    return IN_MEMORY if label is None else label


def load_image(obj: Any, argument: str, *, ndim: int | tuple[int, ...] | None = None):
    """A nibabel image from a path or an image, and its file name (None in memory).

    Only the header is read for a path (nibabel loads lazily); ``ndim`` checks the number
    of dimensions the image must have.
    """
    import nibabel as nib

    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if not path.is_file():
            raise FileNotFoundError(f"Argument {argument}: no image file at {path}.")
        try:
            img = nib.load(str(path))
        except Exception as exc:  # nibabel raises several types for unreadable files
            raise ValueError(
                f"Argument {argument}: {path} is not an image nibabel can read ({exc})."
            ) from exc
        label = str(path)
    elif isinstance(obj, nib.spatialimages.SpatialImage):
        img, label = obj, None
    else:
        raise TypeError(
            f"Argument {argument} must be a path to a NIfTI file or a nibabel image, got "
            f"{type(obj).__name__}."
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if len(img.shape) not in allowed:
            want = " or ".join(f"{n}-D" for n in allowed)
            raise ValueError(
                f"Argument {argument} ({describe(label)}) must be a {want} image, got shape "
                f"{tuple(img.shape)}."
            )
    return img, label


def check_same_grid(img, label: str | None, what: str, ref, ref_label: str | None,
                    ref_what: str) -> None:
    """Same voxel grid (first three dimensions and affine, ``np.allclose``) or a
    ValueError naming both images, their shapes and affines, and how to resample."""
    shape, ref_shape = tuple(img.shape[:3]), tuple(ref.shape[:3])
    if shape == ref_shape and np.allclose(img.affine, ref.affine):
        return
    raise ValueError(
        f"{what} ({describe(label)}) and {ref_what} ({describe(ref_label)}) are not on the "
        f"same voxel grid: {what} has shape {shape} and affine\n{np.asarray(img.affine)}\n"
        f"while {ref_what} has shape {ref_shape} and affine\n{np.asarray(ref.affine)}.\n"
        f"Resample one onto the other first, e.g. nilearn.image.resample_to_img({what}, "
        f"{ref_what}, interpolation='nearest') for a mask or atlas; dnnrsa never resamples "
        "silently."
    )


def load_mask(mask: Any, argument: str = "mask"):
    """A 3-D mask of 0/1 values with at least one voxel: ``(image, label, boolean array)``."""
    img, label = load_image(mask, argument, ndim=3)
    data = np.asanyarray(img.dataobj)
    if data.dtype.kind not in "biuf":
        raise TypeError(f"Argument {argument} ({describe(label)}) must hold numbers, got "
                        f"dtype {data.dtype}.")
    values = np.unique(data)
    if not np.isin(values, (0, 1)).all():
        raise ValueError(
            f"Argument {argument} ({describe(label)}) must hold 0 and 1 only, got values "
            f"{values[:6].tolist()}{' ...' if len(values) > 6 else ''}. Binarise it first, "
            "e.g. nilearn.image.binarize_img or math_img('img > 0.5', img=...)."
        )
    inside = data.astype(bool)
    if not inside.any():
        raise ValueError(f"Argument {argument} ({describe(label)}) has no voxels set to 1; a "
                         "mask needs at least one voxel.")
    return img, label, inside


def load_atlas(atlas: Any, argument: str = "atlas"):
    """A 3-D integer label image: ``(image, label, int64 array)``. Float storage is
    accepted when every value is a whole number (many atlases are saved as float)."""
    img, label = load_image(atlas, argument, ndim=3)
    data = np.asanyarray(img.dataobj)
    if data.dtype.kind == "f":
        if not np.isfinite(data).all() or not np.array_equal(data, np.round(data)):
            raise ValueError(
                f"Argument {argument} ({describe(label)}) must be an integer label image "
                "(0 = background, one whole number per region), but it holds non-integer or "
                "non-finite values. Give a label atlas, not a probabilistic one."
            )
    elif data.dtype.kind not in "iub":
        raise TypeError(f"Argument {argument} ({describe(label)}) must hold integer labels, "
                        f"got dtype {data.dtype}.")
    values = data.astype(np.int64)
    if not values.any():
        raise ValueError(f"Argument {argument} ({describe(label)}) has no non-zero label; 0 "
                         "is background.")
    return img, label, values


def mask_image(inside: np.ndarray, affine: np.ndarray):
    """A uint8 NIfTI image of a boolean 3-D array."""
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_dtype(np.uint8)
    return nib.Nifti1Image(inside.astype(np.uint8), np.asarray(affine), header)


def stem(label: str | None, default: str = "mask") -> str:
    """The file name of an image without ``.nii``/``.nii.gz``, or ``default`` in memory."""
    if label is None:
        return default
    name = Path(label).name
    for suffix in (".nii.gz", ".nii", ".img", ".hdr", ".mgz", ".mgh"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_tsv(path: str | os.PathLike, argument: str, str_columns: tuple[str, ...] = ()):
    """A BIDS table: tab separated, ``n/a`` is missing (and only ``n/a``; other text such
    as ``NA`` stays text). ``str_columns`` are read as text whatever they look like."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Argument {argument}: no table file at {path}.")
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
    dtype = {c: str for c in str_columns if c in header}
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False,
                       dtype=dtype or None)


def load_table(table: Any, argument: str = "table") -> pd.DataFrame:
    """A DataFrame as it is, or a BIDS TSV file read."""
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, (str, os.PathLike)):
        return read_tsv(table, argument)
    raise TypeError(
        f"Argument {argument} must be a pandas DataFrame or the path of a tab-separated "
        f"(BIDS) table, got {type(table).__name__}."
    )


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Argument {name} must be True or False, got {value!r}.")
    return bool(value)


def check_real(name: str, value: Any, *, minimum: float | None = None,
               strict: bool = False, none_ok: bool = False, hint: str = "") -> float | None:
    """A finite real number (not a bool) above ``minimum``, or None when allowed."""
    if value is None and none_ok:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if ok:
        value = float(value)
        ok = np.isfinite(value) and (minimum is None or (value > minimum if strict
                                                          else value >= minimum))
    if not ok:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        extra = " or None" if none_ok else ""
        raise ValueError(
            f"Argument {name} must be a finite number{bound}{extra}, got {value!r}."
            + (f" {hint}" if hint else "")
        )
    return value


def invalid_columns(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns of ``X`` (n_obs, n_voxels) that hold NaN/Inf, and the finite ones that do
    not vary across rows (only checked with at least two rows)."""
    finite = np.isfinite(X).all(axis=0) if X.dtype.kind == "f" else np.ones(X.shape[1], bool)
    constant = np.zeros(X.shape[1], bool)
    if X.shape[0] >= 2 and X.shape[1]:
        constant = finite & (X.max(axis=0) == X.min(axis=0))
    return ~finite, constant


def invalid_message(nonfinite: np.ndarray, constant: np.ndarray, coords: np.ndarray,
                    where: str, hint: str = "") -> str:
    """What is wrong with the voxels of ``where``: counts, first coordinates, the fix."""
    n = len(nonfinite)
    parts = []
    for what, bad in (("hold NaN or Inf values", nonfinite),
                      ("are constant (zero variance across observations)", constant)):
        if bad.any():
            shown = [tuple(int(c) for c in xyz) for xyz in coords[bad][:_N_SHOWN]]
            more = ", ..." if bad.sum() > _N_SHOWN else ""
            parts.append(f"{int(bad.sum())} of {n} voxels {what}, first (i, j, k): "
                         f"{', '.join(map(str, shown))}{more}")
    return (f"In {where}, " + "; ".join(parts) + ". Pass drop_invalid=True to drop these "
            "voxels (they are left out of the returned mask)" + (f", {hint}" if hint else "")
            + ".")
