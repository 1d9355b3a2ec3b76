"""The skeleton every real-data loader and every data-set check shares.

A data set's module says only what is its own: how to *scan* a copy (find its files, read
its annotations, compare the checksums of the files it reads itself, and record every
problem), how to describe the rows it found (*metadata*, *summary*) and, when its images
are not files (FER2013's CSV), how to turn rows into images. Everything else is here:

* :func:`load_stimuli`: options, folder, scan, checksums of the image files, decoding,
  ``on_problem`` ("raise": one error naming every problem; "skip": one warning, and the
  rows that are fine are loaded), the empty check, the :class:`~dnnrsa.StimulusSet`;
* :func:`check_copy`: scan, checksums, decoding, summary, :class:`DatasetReport`.

A scan is ``scan(folder, findings, verify) -> (base, table)``: ``base`` is the folder the
files were found in, ``table`` has one row per image. For image files it has the columns
``path`` (a Path) and ``rel`` (the path relative to ``base``, as messages name it). A scan
raises FileNotFoundError when it finds nothing of the data set at all; it stops early
(:meth:`Findings.checkpoint`) only where what follows depends on sound input.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .._utils import check_choice, check_positive_int, logger
from ..stimuli import StimulusSet, image_transform
from ._checksums import verify_checksums
from ._images import load_images
from ._paths import dataset_root
from ._report import ON_PROBLEM, DatasetReport, Findings

__all__ = ["absolute_paths", "check_copy", "load_stimuli"]

Scan = Callable[[Path, Findings, bool], tuple[Path, pd.DataFrame]]
Decode = Callable[[pd.DataFrame, Callable, Findings], tuple[np.ndarray, np.ndarray]]


def load_stimuli(
    name: str,
    manifest: Mapping,
    root: str | os.PathLike | None,
    scan: Scan,
    metadata: Callable[[pd.DataFrame], pd.DataFrame],
    *,
    what: str,
    stimulus_name: str,
    size: int,
    verify: bool,
    on_problem: str,
    decode: Decode | None = None,
) -> StimulusSet:
    """Load the images a data set's ``scan`` finds, as every real-data loader does.

    Parameters
    ----------
    name : str
        The data set's manifest name (``"kdef"``); errors point to its manifest.
    manifest : dict
        The manifest read by the loader (``preprocessing``, ``image``, ``checksums``).
    root : path or None
        The loader's ``root``: the copy's folder, or None for ``data_root() / name``.
    scan : callable
        ``scan(folder, findings, verify) -> (base, table)``, see the module docstring.
    metadata : callable
        ``metadata(table) -> DataFrame`` of the rows that loaded.
    what : str
        The images asked for, for the error when none is usable ("KDEF image of
        sessions ['A'] and viewpoints ['S']").
    stimulus_name : str
        Name of the StimulusSet.
    size, verify, on_problem
        The loader's options.
    decode : callable, optional
        ``decode(table, transform, findings) -> (images, ok)`` for images that are not
        files; default: checksums (when ``verify``) and decoding of ``table["path"]``.

    Returns
    -------
    StimulusSet
        With the manifest's preprocessing as ``transform``.
    """
    check_choice("on_problem", on_problem, ON_PROBLEM)
    size = check_positive_int("size", size)
    folder = dataset_root(name, root)
    findings = Findings(name, on_problem)
    base, table = scan(folder, findings, bool(verify))
    if decode is None and verify:
        verify_checksums(base, manifest, findings, only=table["rel"])
    findings.checkpoint(base)
    pre = manifest["preprocessing"]
    transform = image_transform(size, grayscale=pre.get("grayscale", True),
                                center_crop=pre.get("center_crop"))
    if decode is None:
        images, ok = _decode_files(manifest, table, transform, findings)
    else:
        images, ok = decode(table, transform, findings)
    findings.settle(base)
    table = table[ok].reset_index(drop=True)
    if table.empty:
        raise FileNotFoundError(
            f"No usable {what} in {base}. See data_manifests/{name}.json for the layout "
            "expected."
        )
    meta = metadata(table)
    logger.info("Loaded %d images of %s from %s.", len(meta), stimulus_name, base)
    return StimulusSet(images, meta, transform=transform, name=stimulus_name)


def check_copy(
    name: str,
    manifest: Mapping,
    root: Path,
    verify: bool,
    scan: Scan,
    summary: Callable[[pd.DataFrame], dict],
    *,
    files: bool = True,
) -> DatasetReport:
    """Check a copy as every data set's check does, without raising.

    Parameters
    ----------
    name, manifest
        As for :func:`load_stimuli`.
    root : Path
        The folder to check (it exists).
    verify : bool
        Compare checksums and decode every image file.
    scan : callable
        The data set's scan, asked for everything the copy should hold.
    summary : callable
        ``summary(table) -> {group: {class: count}}`` for :attr:`DatasetReport.summary`.
    files : bool
        Whether the table's rows are image files (``path``, ``rel``) to decode; False
        for a data set whose scan already read every image (FER2013's CSV).
    """
    findings = Findings(name)
    try:
        base, table = scan(root, findings, verify)
    except FileNotFoundError as exc:
        return DatasetReport(name, str(root), problems=[str(exc)], verified=verify)
    if verify and files:
        verify_checksums(base, manifest, findings, only=table["rel"])
        _decode_files(manifest, table, None, findings)
    elif not verify:
        skipped = (["checksums not compared"] if manifest.get("checksums") else []) + (
            ["images not decoded"] if files else [])
        if skipped:
            findings.note(" and ".join(skipped) + " (verify=False)")
    return DatasetReport(name, str(base), problems=findings.messages(), summary=summary(table),
                         notes=findings.notes, verified=verify)


def _decode_files(manifest: Mapping, table: pd.DataFrame, transform: Callable | None,
                  findings: Findings):
    image_size = (manifest["image"]["width"], manifest["image"]["height"])
    return load_images(list(table["path"]), list(table["rel"]), transform, findings,
                       expected_size=image_size)


def absolute_paths(table: pd.DataFrame) -> list[str]:
    """The ``path`` column of a scan's table as absolute strings, for metadata."""
    return [str(Path(p).resolve()) for p in table["path"]]
