"""`from_images()`: one image per observation (beta maps, t maps, single-trial estimates,
or a layer written by `Activations.to_nifti`) into `Activations`, through nilearn's
``NiftiMasker``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._utils import logger
from ..activations import Activations
from ._inputs import (
    check_bool,
    check_same_grid,
    describe,
    invalid_columns,
    invalid_message,
    load_atlas,
    load_image,
    load_mask,
    load_table,
    mask_image,
    stem,
)

__all__ = ["from_images"]

_WHOLE_GRID = "all voxels"


def from_images(
    imgs: Any,
    table: Any,
    *,
    mask: Any = None,
    atlas: Any = None,
    labels: Mapping[int, str] | Sequence[str] | None = None,
    region: str | Sequence[str] | None = None,
    standardize: bool = False,
    drop_invalid: bool = False,
) -> Activations | dict[str, Activations]:
    """Images, one per observation, as `Activations` of a region (or of every region of an
    atlas).

    Parameters
    ----------
    imgs : list of 3-D images, or one 4-D image
        Paths or nibabel images: a list with one 3-D image per row of ``table``, or one 4-D
        image with one volume per row. All on one voxel grid.
    table : pandas.DataFrame or path
        The factors of each image (``identity``, ``expression``, ``run``, ...), one row per
        image; a path is read as a BIDS table (tab separated, ``n/a`` is missing).
    mask : path or nibabel image, optional
        A 3-D 0/1 image on the grid of ``imgs`` (same shape and affine; nothing is
        resampled). The columns are its voxels in C order, as nilearn's ``NiftiMasker``.
    atlas : path or nibabel image, optional
        A 3-D integer label image on the same grid, 0 being background (as nilearn's
        ``NiftiLabelsMasker``). Each region keeps its voxels (they are not averaged).
        With ``mask`` as well, each region is intersected with the mask.
    labels : dict or list of str, optional
        Names of the atlas regions: ``{value: name}`` naming every non-zero value, or a
        list of names for the sorted non-zero values. Default: ``str(value)``.
    region : str or list of str, optional
        With an atlas: the region (a str gives one `Activations`) or regions (a list gives
        a dict) to return; default all. Without an atlas: the name written to the
        provenance (default: the mask's file name without ``.nii``/``.nii.gz``, ``"mask"``
        for an in-memory mask, ``"all voxels"`` without a mask).
    standardize : bool
        z-score every voxel across the observations (nilearn's ``"zscore_sample"``: mean
        0, sample standard deviation 1).
    drop_invalid : bool
        Voxels with NaN/Inf values, or constant across the observations, are an error;
        with True they are dropped (and left out of the returned ``mask``), their number
        is written to the provenance (``n_dropped``) and logged.

    Returns
    -------
    Activations or dict of str to Activations
        ``X`` of shape (n_images, n_voxels) in the images' dtype (float images are not
        cast; integer images keep their dtype unless standardized), the table as metadata
        (index reset), ``mask`` the region's voxels as a uint8 image, and provenance
        ``region``, ``mask``, ``atlas``, ``images``, ``standardize``, ``n_voxels``,
        ``n_dropped``, ``source``. A dict (region name to `Activations`) for an atlas
        unless ``region`` is one name.

    Notes
    -----
    Without ``mask`` and ``atlas`` every voxel of the image grid is a column; background
    voxels (constant 0) then trip the constant-voxel check, so give a brain mask.
    Integer images are read without nilearn's masker, which would hand them back as
    float32 (inexact above 2**24); their columns are in the same C order.

    Examples
    --------
    >>> acts = from_images("betas.nii.gz", "events.tsv", mask="ffa.nii.gz")  # doctest: +SKIP
    >>> acts.X.shape  # doctest: +SKIP
    (48, 812)
    """
    standardize = check_bool("standardize", standardize)
    drop_invalid = check_bool("drop_invalid", drop_invalid)
    names = _check_region_argument(region)
    if atlas is None and labels is not None:
        raise ValueError("Argument labels names the regions of an atlas, but atlas is None. "
                         "Give atlas=... or leave labels out.")
    if atlas is None and isinstance(names, list):
        raise ValueError(f"Argument region is a list ({names}), which selects regions of an "
                         "atlas, but atlas is None. Give atlas=... or one name.")
    metadata = load_table(table, "table")
    images, labels_of_images = _load_images(imgs)
    n_obs = images[0].shape[3] if len(images) == 1 and len(images[0].shape) == 4 else len(images)
    if n_obs != len(metadata):
        raise ValueError(
            f"imgs hold {n_obs} images but table has {len(metadata)} rows; give one table row "
            "per image (volume)."
        )
    if standardize and n_obs < 2:
        raise ValueError(f"standardize=True needs at least 2 images to z-score across, got "
                         f"{n_obs}.")
    ref, ref_label = images[0], labels_of_images[0]
    grid = ref.shape[:3]

    mask_label = atlas_label = None
    inside = np.ones(grid, dtype=bool)
    if mask is not None:
        mask_img, mask_label, inside = load_mask(mask, "mask")
        check_same_grid(mask_img, mask_label, "mask", ref, ref_label, "imgs")
    regions = values = None
    if atlas is not None:
        atlas_label, values, regions, inside = _select_regions(atlas, labels, names, inside,
                                                               ref, ref_label)

    data = _read_volumes(images, labels_of_images)  # (x, y, z, n_obs), the images' dtype
    selected_voxels = inside
    raw = data[inside].T  # (n_obs, n_voxels), columns in C order
    nonfinite, constant = invalid_columns(raw)
    bad = nonfinite | constant
    if bad.any():
        coords = np.argwhere(inside)
        hint = ("or give a mask: without mask or atlas every voxel of the image grid is a "
                "column, background included") if mask is None and atlas is None else ""
        if not drop_invalid:
            raise ValueError(invalid_message(nonfinite, constant, coords, "imgs", hint))
        logger.info("from_images: dropping %d of %d voxels (%d NaN/Inf, %d constant).",
                    int(bad.sum()), len(bad), int(nonfinite.sum()), int(constant.sum()))
        inside = inside.copy()
        inside[tuple(coords[bad].T)] = False
        if regions is not None:
            empty = [n for n, v in regions.items() if not (inside & (values == v)).any()]
            if empty:
                raise ValueError(f"After dropping invalid voxels, region(s) {empty} have no "
                                 "voxel left.")
        elif not inside.any():
            raise ValueError("Every voxel of imgs is NaN/Inf or constant; none is left.")
        raw = raw[:, ~bad]

    X = _mask_with_nilearn(data, ref.affine, inside, standardize, raw)
    prov = dict(
        mask=None if mask is None else describe(mask_label),
        atlas=None if atlas is None else describe(atlas_label),
        images=("in-memory images" if any(lb is None for lb in labels_of_images)
                else list(labels_of_images)),
        standardize=standardize, source="from_images",
    )
    if regions is None:
        name = names if isinstance(names, str) else (stem(mask_label) if mask is not None
                                                    else _WHOLE_GRID)
        return _activations(X, metadata, inside, ref.affine, dict(prov, region=name),
                            int(bad.sum()))
    column_values = values[inside]  # the atlas value of every column, C order
    out = {}
    for name, value in regions.items():
        region_inside = inside & (values == value)
        n_dropped = int((selected_voxels & (values == value) & ~inside).sum())
        out[name] = _activations(X[:, column_values == value], metadata, region_inside,
                                 ref.affine, dict(prov, region=name, atlas_value=int(value)),
                                 n_dropped)
    return out[names] if isinstance(names, str) else out


def _activations(X, metadata, inside, affine, prov, n_dropped) -> Activations:
    prov.update(n_voxels=int(X.shape[1]), n_dropped=n_dropped)
    return Activations(X, metadata.reset_index(drop=True), prov,
                       mask=mask_image(inside, affine))


def _select_regions(atlas, labels, names, inside, ref, ref_label):
    """The atlas (label, values), the chosen regions (name -> value) and the voxels they
    cover inside ``inside`` (the mask, or every voxel)."""
    atlas_img, atlas_label, values = load_atlas(atlas, "atlas")
    check_same_grid(atlas_img, atlas_label, "atlas", ref, ref_label, "imgs")
    regions = _name_regions(values, labels)
    selected = list(regions) if names is None else [names] if isinstance(names, str) else names
    missing = [n for n in selected if n not in regions]
    if missing:
        raise ValueError(f"Region(s) {missing} of argument region are not in the atlas. "
                         f"Available regions: {list(regions)}.")
    regions = {n: regions[n] for n in selected}
    region_values = np.where(inside, values, 0)
    empty = [n for n, v in regions.items() if not (region_values == v).any()]
    if empty:
        raise ValueError(
            f"Region(s) {empty} of the atlas have no voxel inside the mask; choose other "
            "regions with region=[...] or check that mask and atlas belong together."
        )
    return atlas_label, values, regions, np.isin(region_values, list(regions.values()))


def _check_region_argument(region):
    if region is None or isinstance(region, str):
        if isinstance(region, str) and not region:
            raise ValueError("Argument region must be a non-empty name, got ''.")
        return region
    if isinstance(region, (list, tuple)) and all(isinstance(r, str) for r in region):
        names = list(region)
        if not names:
            raise ValueError("Argument region is an empty list; give at least one region "
                             "name, or None for all regions.")
        if len(set(names)) != len(names):
            raise ValueError(f"Argument region names a region twice: {names}.")
        return names
    raise TypeError(f"Argument region must be a str, a list of str or None, got {region!r}.")


def _name_regions(values: np.ndarray, labels) -> dict[str, int]:
    """Region name -> atlas value, in the order of the sorted non-zero values."""
    present = [int(v) for v in np.unique(values) if v != 0]
    if labels is None:
        return {str(v): v for v in present}
    if isinstance(labels, Mapping):
        keys = {}
        for key, name in labels.items():
            if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
                raise TypeError(f"Argument labels must map integer atlas values to names, "
                                f"got key {key!r}.")
            keys[int(key)] = name
        unnamed = [v for v in present if v not in keys]
        if unnamed:
            raise ValueError(
                f"Argument labels does not name atlas value(s) {unnamed[:10]}; the atlas "
                f"holds the non-zero values {present[:20]}{' ...' if len(present) > 20 else ''}"
                ". Name every one of them."
            )
        names = [keys[v] for v in present]
    elif isinstance(labels, (list, tuple)):
        if len(labels) != len(present):
            raise ValueError(
                f"Argument labels has {len(labels)} names but the atlas has {len(present)} "
                f"non-zero values ({present[:20]}{' ...' if len(present) > 20 else ''}); give "
                "one name per value in sorted order (background 0 not included), or a dict "
                "{value: name}."
            )
        names = list(labels)
    else:
        raise TypeError(f"Argument labels must be a dict {{value: name}}, a list of names or "
                        f"None, got {type(labels).__name__}.")
    if not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"Argument labels: every region name must be a non-empty str, got "
                        f"{[n for n in names if not (isinstance(n, str) and n)][:5]}.")
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"Argument labels gives the same name to several regions: {twice}.")
    return dict(zip(names, present, strict=True))


def _load_images(imgs):
    """The images (headers read, data not yet) and their file names (None in memory),
    checked to be one 4-D image or 3-D images on one grid."""
    if isinstance(imgs, (list, tuple)):
        if not imgs:
            raise ValueError("Argument imgs is an empty list; give one 3-D image per row.")
        loaded = [load_image(im, f"imgs[{i}]", ndim=3) for i, im in enumerate(imgs)]
        images = [im for im, _ in loaded]
        names = [lb for _, lb in loaded]
        for i in range(1, len(images)):
            check_same_grid(images[i], names[i], f"imgs[{i}]", images[0], names[0], "imgs[0]")
        return images, names
    img, label = load_image(imgs, "imgs")
    if len(img.shape) != 4:
        raise ValueError(
            f"Argument imgs ({describe(label)}) has shape {tuple(img.shape)}; give one 4-D "
            "image (one volume per table row) or a list of 3-D images."
        )
    return [img], [label]


def _read_volumes(images, names) -> np.ndarray:
    """The data as one (x, y, z, n_obs) array in the images' own dtype (scaled integer
    files give floats, as nibabel reads them)."""
    if len(images) == 1 and len(images[0].shape) == 4:
        return np.asanyarray(images[0].dataobj)
    arrays = [np.asanyarray(im.dataobj) for im in images]
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) > 1:
        first = arrays[0].dtype
        other = next(i for i, a in enumerate(arrays) if a.dtype != first)
        raise ValueError(
            f"The images of argument imgs differ in dtype: imgs[0] ({describe(names[0])}) is "
            f"{first} but imgs[{other}] ({describe(names[other])}) is {arrays[other].dtype}. "
            "Write them with one dtype; dnnrsa does not cast them for you."
        )
    return np.stack(arrays, axis=-1)


def _mask_with_nilearn(data, affine, inside, standardize, raw) -> np.ndarray:
    """The columns through nilearn's NiftiMasker (C order of the mask), z-scored with its
    ``"zscore_sample"`` when asked; integer images unstandardized are ``raw`` as read."""
    import nibabel as nib
    from nilearn.maskers import NiftiMasker

    if not standardize and data.dtype.kind != "f":
        return raw
    # nilearn >= 0.13 warns on the boolean spellings; None and "zscore_sample" are the
    # spellings every release since 0.10.1 accepts.
    masker = NiftiMasker(mask_img=mask_image(inside, affine),
                         standardize="zscore_sample" if standardize else None)
    header = nib.Nifti1Header()
    header.set_data_dtype(data.dtype)
    X = masker.fit().transform(nib.Nifti1Image(data, affine, header))
    return np.asarray(X).reshape(data.shape[3], -1)
