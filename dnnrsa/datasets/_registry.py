"""The real data sets dnnrsa can read: each name with its loader and its check, and
:func:`check_dataset`, the health check behind ``dnnrsa data check`` that dispatches on
this table.

A data set is known when it has both a manifest (``data_manifests/<name>.json``) and an
entry here; one without the other is a packaging mistake, reported as such.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .._utils import check_choice, keyword_only
from . import _celeba, _fer2013, _kdef, _uc_merced
from ._manifest import dataset_names, load_manifest, manifest_dir
from ._paths import data_root
from ._report import DatasetReport

__all__ = ["REGISTRY", "Entry", "check_dataset", "registered"]


@dataclass(frozen=True)
class Entry:
    """How one data set is read.

    Attributes
    ----------
    load : callable
        The public loader its manifest's ``loader`` names (``dnnrsa.datasets.kdef``).
    check : callable
        ``check(root, manifest, verify) -> DatasetReport`` for :func:`check_dataset`.
    """

    load: Callable
    check: Callable[[Path, Mapping, bool], DatasetReport]


#: Data-set name (its manifest's name) -> its loader and its check.
REGISTRY: dict[str, Entry] = {
    "celeba": Entry(_celeba.celeba_identities, _celeba.check),
    "fer2013": Entry(_fer2013.fer2013, _fer2013.check),
    "kdef": Entry(_kdef.kdef, _kdef.check),
    "uc_merced": Entry(_uc_merced.uc_merced, _uc_merced.check),
}


def registered(name: str, has_manifest: bool = True) -> Entry:
    """The entry of data set ``name``.

    Parameters
    ----------
    name : str
        A data-set name.
    has_manifest : bool
        Whether a manifest for ``name`` is at hand (shipped, or given by the caller).

    Raises
    ------
    ValueError
        ``name`` is neither registered nor has a manifest, or has a manifest but no
        registered loader.
    FileNotFoundError
        ``name`` is registered but has no manifest.
    """
    shipped = dataset_names()
    check_choice("name", name, sorted(set(shipped) | set(REGISTRY)),
                 hint="dnnrsa.datasets.list_datasets() lists them.")
    if name not in REGISTRY:
        raise ValueError(
            f"Data set {name!r} has a manifest ({manifest_dir()}/{name}.json) but no loader "
            f"is registered for it in dnnrsa/datasets/_registry.py (which knows "
            f"{sorted(REGISTRY)}). Register its loader and check there, or remove the "
            "manifest."
        )
    if not has_manifest and name not in shipped:
        raise FileNotFoundError(
            f"Data set {name!r} has a loader registered in dnnrsa/datasets/_registry.py but "
            f"no manifest: {manifest_dir()}/{name}.json is missing. Add the manifest, or "
            "pass manifest=... with one."
        )
    return REGISTRY[name]


@keyword_only("verify")
def check_dataset(
    name: str,
    path: str | os.PathLike | None = None,
    *,
    verify: bool = True,
    manifest: Mapping | str | os.PathLike | None = None,
) -> DatasetReport:
    """Check a local copy of a data set against its manifest, without raising.

    Parameters
    ----------
    name : str
        Data-set name, one of :func:`list_datasets` ``.name``.
    path : path, optional
        The data set's folder (default: ``data_root() / name``).
    verify : bool
        Also compare checksums and decode every image (slow for CelebA: minutes).
        With False only the layout, the names and the counts are checked.
    manifest : dict or path, optional
        A manifest to check against instead of the shipped one.

    Returns
    -------
    DatasetReport
        ``.ok``, ``.problems``, ``.summary``; ``str(report)`` is a short human report.
    """
    entry = registered(name, has_manifest=manifest is not None)
    m = load_manifest(name, manifest)
    root = data_root() / name if path is None else Path(path).expanduser()
    if not root.is_dir():
        if root.exists():
            text = (f"{root} is a file, not a folder: pass the folder that holds the data "
                    f"set (see data_manifests/{name}.json for the layout expected)")
        else:
            text = (f"folder {root} does not exist (see data_manifests/{name}.json for how "
                    "to obtain the data set)")
        return DatasetReport(name, str(root), problems=[text], verified=bool(verify))
    return entry.check(root, m, bool(verify))
