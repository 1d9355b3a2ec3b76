"""`StimulusSet`: images plus a tidy table of the factors each image was made with."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._utils import format_choices

__all__ = ["StimulusSet", "default_transform"]


def default_transform(size: int = 48, grayscale: bool = True) -> Callable:
    """The transform a table-built `StimulusSet` applies by default: convert to
    grayscale and resize to ``size`` x ``size``, giving a float32 array (C, H, W) in [0, 1].

    Parameters
    ----------
    size : int
        Output height and width in pixels.
    grayscale : bool
        Convert to one channel (ITU-R 601-2 luma, as PIL's ``"L"`` mode) when True;
        keep three RGB channels when False.
    """
    from torchvision import transforms

    steps = [transforms.Grayscale(1)] if grayscale else [transforms.Lambda(_to_rgb)]
    steps += [transforms.Resize((size, size), antialias=True), transforms.ToTensor()]
    return transforms.Compose(steps)


def _to_rgb(img):
    return img.convert("RGB")


class StimulusSet:
    """A set of images with one metadata row per image.

    Parameters
    ----------
    images : array-like of shape (n_images, n_channels, height, width)
        Pixel values, converted to float32. Values are expected in [0, 1].
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
        if hasattr(images, "detach"):  # a torch tensor
            images = images.detach().cpu().numpy()
        images = np.asarray(images, dtype=np.float32)
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
        if not isinstance(metadata, pd.DataFrame):
            raise TypeError(
                f"Argument metadata must be a pandas DataFrame, got {type(metadata).__name__}."
            )
        if len(metadata) != images.shape[0]:
            raise ValueError(
                f"images has {images.shape[0]} images but metadata has {len(metadata)} rows; "
                "give one metadata row per image."
            )
        if not np.isfinite(images).all():
            raise ValueError("Argument images contains NaN or Inf values.")
        self.images = images
        self.metadata = metadata.reset_index(drop=True)
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
        if isinstance(key, slice):
            idx = np.arange(len(self))[key]
        else:
            key = np.asarray(key)
            if key.dtype == bool:
                if key.shape != (len(self),):
                    raise IndexError(
                        f"boolean mask has shape {key.shape}, expected ({len(self)},)"
                    )
                idx = np.flatnonzero(key)
            elif np.issubdtype(key.dtype, np.integer):
                idx = key
            else:
                raise IndexError(
                    f"StimulusSet indices must be int, slice, integer array or boolean mask, "
                    f"got {key.dtype}"
                )
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

    @property
    def factors(self) -> list[str]:
        """The metadata columns that act as factors (every column except ``path``)."""
        return [c for c in self.metadata.columns if c != "path"]

    def check_factor(self, factor: str, argument: str = "target") -> str:
        return check_factor_column(self.metadata, factor, argument)

    def classes(self, factor: str) -> list:
        """The levels of ``factor`` in their natural order (a Categorical's order, else sorted),
        restricted to the levels present."""
        return factor_levels(self.metadata[self.check_factor(factor, "factor")])

    def labels(self, factor: str, classes: Sequence | None = None) -> np.ndarray:
        """Integer codes of ``factor`` for every image, in the order of ``classes``
        (default: :meth:`classes`)."""
        col = self.metadata[self.check_factor(factor, "factor")]
        return encode_labels(col, self.classes(factor) if classes is None else classes)

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
            :func:`default_transform` (grayscale, 48 x 48).
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
        transform = transform if transform is not None else default_transform()
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


def check_factor_column(metadata: pd.DataFrame, factor: str, argument: str,
                        hint: str = "") -> str:
    """Return ``factor`` if it is a column of ``metadata``, else raise a ``ValueError`` that
    names the argument and lists the factor columns (every column but ``path``)."""
    if factor not in metadata.columns:
        valid = [c for c in metadata.columns if c != "path"]
        raise ValueError(
            f"Unknown value {factor!r} for argument {argument}: it is not a column of the "
            f"metadata. Valid values are {format_choices(valid)}." + (f" {hint}" if hint else "")
        )
    return factor


def factor_levels(col: pd.Series) -> list:
    """Levels of a factor column in their natural order: a Categorical's category order
    (present levels only), else sorted unique values."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        present = set(col.dropna().unique())
        return [c for c in col.cat.categories if c in present]
    return sorted(col.dropna().unique().tolist())


def encode_labels(col: pd.Series, classes: Sequence) -> np.ndarray:
    """Integer codes of ``col`` against ``classes``; a value not in ``classes`` is an error."""
    lookup = {c: i for i, c in enumerate(classes)}
    values = col.tolist()
    unknown = sorted({v for v in values if v not in lookup}, key=str)
    if unknown:
        raise ValueError(
            f"Column {col.name!r} has value(s) {unknown} that are not among the classes "
            f"{format_choices(classes)}."
        )
    return np.fromiter((lookup[v] for v in values), dtype=np.int64, count=len(values))
