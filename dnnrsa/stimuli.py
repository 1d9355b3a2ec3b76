"""`StimulusSet`: images plus a tidy table of the factors each image was made with."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._metadata import FactorTable, check_metadata, factor_levels, row_index
from ._utils import REMOVAL_VERSION, format_choices

__all__ = ["StimulusSet", "image_transform"]


def image_transform(size: int = 48, *, grayscale: bool = True,
                    center_crop: int | None = None) -> Callable:
    """The preprocessing of every image file dnnrsa loads: optional grayscale (ITU-R 601-2
    luma, as PIL's ``"L"`` mode; else conversion to three RGB channels), optional center
    crop, resize to ``size`` x ``size`` (bilinear, antialiased), then a float32 tensor
    (C, H, W) in [0, 1].

    :meth:`StimulusSet.from_table` uses it with its defaults (grayscale, 48 x 48); each
    real data set calls it with the crop its manifest names.

    Parameters
    ----------
    size : int
        Output height and width in pixels.
    grayscale : bool
        One channel when True; three RGB channels when False.
    center_crop : int, optional
        Side of a square cut from the image centre before resizing.
    """
    from torchvision import transforms

    steps = [transforms.Grayscale(1)] if grayscale else [transforms.Lambda(_to_rgb)]
    if center_crop:
        steps.append(transforms.CenterCrop(int(center_crop)))
    steps += [transforms.Resize((size, size), antialias=True), transforms.ToTensor()]
    return transforms.Compose(steps)


def default_transform(size: int = 48, grayscale: bool = True) -> Callable:
    """Deprecated name of :func:`image_transform`."""
    warnings.warn(
        "dnnrsa.stimuli.default_transform was renamed image_transform; the old name stops "
        f"working in dnnrsa {REMOVAL_VERSION}.", FutureWarning, stacklevel=2)
    return image_transform(size, grayscale=grayscale)


def _to_rgb(img):
    return img.convert("RGB")


def _as_unit_images(images: Any) -> np.ndarray:
    """Images as float32 in [0, 1]. uint8 input (0-255, as decoded files are) is divided by
    255; any other input must already lie in [0, 1]: a float array in 0-255 would reach a
    network trained on [0, 1] at 255 times the contrast and read out at chance with no
    other sign of the mistake."""
    if hasattr(images, "detach"):  # a torch tensor
        images = images.detach().cpu().numpy()
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    if images.dtype.kind not in "fiub":
        raise TypeError(
            f"Argument images must be numeric (float in [0, 1] or uint8 in 0-255), got dtype "
            f"{images.dtype}."
        )
    images = images.astype(np.float32, copy=False)
    if images.size:
        if not np.isfinite(images).all():
            raise ValueError("Argument images contains NaN or Inf values.")
        lo, hi = float(images.min()), float(images.max())
        if lo < 0.0 or hi > 1.0:
            hint = ("They look like 0-255 values: divide by 255 (images / 255.0), or pass them "
                    "as uint8, which is divided by 255 for you." if hi > 1.0 and lo >= 0.0 and hi <= 255.0
                    else "Rescale them to [0, 1], e.g. (images - images.min()) / "
                    "(images.max() - images.min()), if that is what they mean.")
            raise ValueError(
                f"Argument images must hold pixel values in [0, 1], got values from {lo:g} to "
                f"{hi:g}. {hint}"
            )
    return images


class StimulusSet(FactorTable):
    """A set of images with one metadata row per image.

    Parameters
    ----------
    images : array-like of shape (n_images, n_channels, height, width)
        Pixel values in [0, 1], stored as float32; a uint8 array (0-255, as image files
        decode) is divided by 255. Values outside [0, 1] are refused, with a message saying
        how to convert them.
    metadata : pandas.DataFrame of n_images rows
        One column per factor (``identity``, ``expression``, ``viewpoint``,
        ``session``, ``path``, ...). Its index is reset to 0..n_images-1.
    transform : callable, optional
        The transform that made ``images`` from files, kept as provenance and used
        again when images are added with :meth:`from_table`.
    name : str, optional
        A short name saying where the set comes from (``"synthetic_faces"``, ``"kdef"``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> stim = StimulusSet(np.zeros((4, 1, 8, 8)), pd.DataFrame({"identity": list("aabb")}))
    >>> len(stim), stim.subset(identity="a").metadata.identity.tolist()
    (4, ['a', 'a'])
    """

    def __init__(
        self,
        images: Any,
        metadata: pd.DataFrame,
        *,
        transform: Callable | None = None,
        name: str | None = None,
    ):
        images = _as_unit_images(images)
        if images.ndim == 3:
            raise ValueError(
                f"Argument images must have shape (n_images, n_channels, height, width), got "
                f"shape {images.shape}. For one-channel images add the channel axis: "
                "images[:, None]."
            )
        if images.ndim != 4:
            raise ValueError(
                "Argument images must have shape (n_images, n_channels, height, width), "
                f"got an array with {images.ndim} dimension(s), shape {images.shape}."
            )
        self.metadata = check_metadata(metadata, images.shape[0], "images")
        self.images = images
        self.transform = transform
        self.name = name

    # -- container protocol -------------------------------------------------------------
    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        factors = ", ".join(
            f"{col}={self.metadata[col].nunique()}" for col in self.factors
        )
        name = f"{self.name!r}, " if self.name else ""
        return f"StimulusSet({name}{n} images of {c}x{h}x{w}, factors: {factors})"

    def __getitem__(self, key):
        """An int gives ``(image, factors)``; a slice, integer array or boolean mask
        gives a new `StimulusSet`."""
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if not -len(self) <= i < len(self):
                raise IndexError(f"index {i} out of range for a StimulusSet of {len(self)}")
            return self.images[i], self.metadata.iloc[i].to_dict()
        idx = row_index(key, len(self), "StimulusSet")
        return StimulusSet(
            self.images[idx],
            self.metadata.iloc[idx],
            transform=self.transform,
            name=self.name,
        )

    # -- factors --------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """(n_channels, height, width) of one image."""
        return tuple(self.images.shape[1:])

    def subset(self, **factor_values) -> StimulusSet:
        """The images whose factors equal the given values; a list or tuple value keeps any
        of its levels: ``stim.subset(viewpoint=("HL", "HR"), session="A")``."""
        mask = np.ones(len(self), dtype=bool)
        for factor, value in factor_values.items():
            col = self.metadata[self.check_factor(factor, "factor")]
            values = list(value) if isinstance(value, (list, tuple, set)) else [value]
            unknown = [v for v in values if v not in set(col.unique())]
            if unknown:
                raise ValueError(
                    f"Unknown value(s) {unknown} for factor {factor}. Valid values are "
                    f"{format_choices(factor_levels(col))}."
                )
            mask &= col.isin(values).to_numpy()
        return self[mask]

    def tensor(self):
        """The images as a torch tensor sharing memory with :attr:`images` (a copy when
        the array is read-only, e.g. memory-mapped by joblib, which torch cannot share)."""
        import torch

        if not self.images.flags.writeable:
            return torch.from_numpy(self.images.copy())
        return torch.from_numpy(self.images)

    # -- construction from files ----------------------------------------------------------
    @classmethod
    def from_table(
        cls,
        table: pd.DataFrame | str | os.PathLike,
        root: str | os.PathLike | None = None,
        *,
        transform: Callable | None = None,
        name: str | None = None,
    ) -> StimulusSet:
        """Load the images listed in a table.

        Parameters
        ----------
        table : pandas.DataFrame or path to a CSV file
            One row per image with a ``path`` column (absolute, or relative to ``root``);
            every other column becomes a factor.
        root : path, optional
            Folder that relative paths are relative to (default: the CSV's folder, or the
            working directory for a DataFrame).
        transform : callable, optional
            Maps a PIL image to a (C, H, W) tensor or array. Default:
            :func:`image_transform` (grayscale, 48 x 48).
        name : str, optional
            Name of the set (default: the CSV's stem).

        Returns
        -------
        StimulusSet
        """
        from PIL import Image, UnidentifiedImageError

        if not isinstance(table, pd.DataFrame):
            csv = Path(table)
            if not csv.is_file():
                raise FileNotFoundError(f"Argument table: no CSV file at {csv}.")
            table = pd.read_csv(csv)
            root = csv.parent if root is None else root
            name = csv.stem if name is None else name
        if "path" not in table.columns:
            raise ValueError(
                "Argument table needs a 'path' column listing the image files; got columns "
                f"{format_choices(table.columns)}."
            )
        if len(table) == 0:
            raise ValueError("Argument table has no rows: there are no images to load.")
        root = Path(root) if root is not None else Path.cwd()
        transform = transform if transform is not None else image_transform()
        paths = [p if Path(p).is_absolute() else root / p for p in table["path"].astype(str)]
        missing = [str(p) for p in paths if not Path(p).is_file()]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise FileNotFoundError(f"{len(missing)} image file(s) listed in the table are missing: {shown}.")
        images, unreadable = [], []
        for p in paths:
            try:
                with Image.open(p) as img:
                    img.load()
                    arr = transform(img)
            except (UnidentifiedImageError, OSError) as exc:
                unreadable.append(f"{p} ({exc.__class__.__name__})")
                continue
            images.append(np.asarray(arr, dtype=np.float32))
        if unreadable:
            raise ValueError(
                f"{len(unreadable)} image file(s) could not be decoded: " + "; ".join(unreadable[:5])
            )
        shapes = {a.shape for a in images}
        if len(shapes) != 1:
            raise ValueError(
                f"The transform gave images of different shapes {sorted(shapes)}; give a "
                "transform that resizes every image to the same size."
            )
        return cls(np.stack(images), table.reset_index(drop=True), transform=transform, name=name)
