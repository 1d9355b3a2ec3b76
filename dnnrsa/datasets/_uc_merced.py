"""UC Merced Land Use (scenes): ``Images/<class>/<class>NN.tif``, labels from folder names.

The original study scripts computed labels as ``int(index / 100)`` over a flat file list,
which mislabels every 100th image; here the label is the class folder, and a file whose
name names another class is reported, not silently relabelled.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .._metadata import categorical
from .._utils import check_choice, keyword_only
from ..stimuli import StimulusSet
from ._loader import absolute_paths, check_copy, load_stimuli
from ._manifest import load_manifest
from ._paths import find_base, list_dirs, list_files, searched
from ._report import DatasetReport, Findings, counts_summary

__all__ = ["check", "uc_merced"]

_NAME = "uc_merced"
_SPLITS = ("train", "test")


def _split_of(index: int, manifest: Mapping) -> str:
    rule = manifest["split"]
    return "test" if index % int(rule["holdout_every"]) == int(rule["holdout_offset"]) else "train"


def _scan(root: Path, manifest: Mapping, splits: tuple[str, ...],
          findings: Findings) -> tuple[Path, pd.DataFrame]:
    """Find the images of ``splits``: ``(base, table)`` with columns scene, index, split,
    path, rel. Missing, stray and mislabelled files become problems."""
    classes = list(manifest["classes"])
    layout = manifest["layout"]
    base = find_base(root, manifest, lambda b: any(d in classes for d in list_dirs(b)))
    if base is None:
        raise FileNotFoundError(
            "No UC Merced class folders (agricultural/, airplane/, ...) found in "
            f"{searched(root, manifest)}. "
            f"See data_manifests/{_NAME}.json for how to obtain UC Merced Land Use."
        )
    n_per_class = int(manifest["images_per_class"])
    digits = int(layout["index_digits"])
    extensions = {e.lower() for e in layout["extensions"]}
    name_re = re.compile(rf"^(?P<scene>[A-Za-z_]+?)(?P<index>\d{{{digits}}})(?P<ext>\.\w+)$")
    n_in_splits = sum(_split_of(i, manifest) in splits for i in range(n_per_class))

    dirs = list_dirs(base)
    for d in dirs:
        if d not in classes:
            findings.add("stray", f"unexpected folder {d}/ in {base.name}/ (not one of the "
                                  f"{len(classes)} classes of the manifest)")
    for f in list_files(base):
        findings.add("stray", f"unexpected file {f} next to the class folders; move or "
                              "remove it")

    rows = []
    for scene in classes:
        if scene not in dirs:
            findings.add("missing", f"missing folder {scene}/ ({n_in_splits} images)")
            continue
        found = {}
        for fname in list_files(base / scene):
            rel = f"{scene}/{fname}"
            m = name_re.match(fname)
            if m is None or m["ext"].lower() not in extensions:
                findings.add("stray", f"unexpected file {rel}: not a UC Merced image name "
                                      f"(<class>NN.tif, e.g. {scene}00.tif); remove or move it")
                continue
            index = int(m["index"])
            if m["scene"] != scene:
                findings.add("misplaced", f"image {rel} is named for class {m['scene']!r} but "
                                          f"sits in folder {scene}/ (labels come from folders; "
                                          "move it to its class folder)")
                continue
            if index >= n_per_class:
                findings.add("stray", f"unexpected file {rel}: index {index} is beyond the "
                                      f"{n_per_class} images per class")
                continue
            if index in found:
                findings.add("layout", f"image {scene}{index:0{digits}d} is present twice: "
                                       f"{found[index]} and {rel}")
                continue
            found[index] = rel
            split = _split_of(index, manifest)
            if split in splits:
                rows.append((scene, index, split, base / scene / fname, rel))
        for i in range(n_per_class):
            if i not in found and _split_of(i, manifest) in splits:
                findings.add("missing", f"missing image {scene}/{scene}{i:0{digits}d}.tif")
    table = pd.DataFrame(rows, columns=["scene", "index", "split", "path", "rel"])
    return base, table


@keyword_only("split")
def uc_merced(
    root: str | os.PathLike | None = None,
    *,
    split: str | None = "train",
    size: int = 48,
    verify: bool = True,
    on_problem: str = "raise",
    manifest: Mapping | str | os.PathLike | None = None,
) -> StimulusSet:
    """UC Merced Land Use aerial scenes.

    Parameters
    ----------
    root : path, optional
        The folder holding ``UCMerced_LandUse/Images/`` (``Images/`` itself, or the folder
        of the 21 class folders, also works). Default: ``data_root() / "uc_merced"``.
    split : {"train", "test", None}
        Every image whose index NN (in ``<class>NN.tif``) has ``NN % 10 == 9`` is held out
        as ``"test"`` (10 per class, 210 in all); the other 1,890 are ``"train"``. None
        returns all 2,100.
    size : int
        Output height and width (default 48).
    verify : bool
        UC Merced publishes no per-file checksums, so there is nothing to hash unless a
        manifest override gives some (they are then compared). With True or False the
        loader checks the class folders, names and counts, that each file's name agrees
        with its folder, and that every loaded image decodes.
    on_problem : {"raise", "skip"}
        "raise" (default): one error naming every problem file. "skip": log them as a
        warning and load the images that are fine.
    manifest : dict or path, optional
        A manifest to use instead of ``data_manifests/uc_merced.json``.

    Returns
    -------
    StimulusSet
        ``images`` (n, 1, size, size) float32 in [0, 1] (grayscale, resized from 256 x 256);
        ``metadata``: ``scene`` (Categorical, the manifest's class order), ``label`` (int,
        the scene's position in that order), ``index`` (NN), ``split``, ``path``
        (absolute). Labels come from the folder names.

    Raises
    ------
    FileNotFoundError
        No class folders, or (on_problem="raise") only missing images.
    ValueError
        Any other problem (on_problem="raise"), each file named.
    """
    m = load_manifest(_NAME, manifest)
    check_choice("split", split, list(_SPLITS) + [None])
    splits = _SPLITS if split is None else (split,)
    classes = list(m["classes"])

    def metadata(table: pd.DataFrame) -> pd.DataFrame:
        scene = categorical(table["scene"], classes)
        return pd.DataFrame({
            "scene": scene,
            "label": np.asarray(scene.codes, np.int64),
            "index": table["index"].to_numpy(np.int64),
            "split": categorical(table["split"], _SPLITS),
            "path": absolute_paths(table),
        })

    return load_stimuli(
        _NAME, m, root, lambda folder, findings, _verify: _scan(folder, m, splits, findings),
        metadata, what=f"UC Merced image of split {split!r}",
        stimulus_name="uc_merced" + (f"_{split}" if split else ""),
        size=size, verify=verify, on_problem=on_problem,
    )


def check(root: Path, manifest: Mapping, verify: bool) -> DatasetReport:
    """Check both splits of a UC Merced copy (see :func:`check_copy`)."""
    return check_copy(
        _NAME, manifest, root, verify,
        lambda folder, findings, _verify: _scan(folder, manifest, _SPLITS, findings),
        lambda table: counts_summary(table["split"], table["scene"], manifest["classes"],
                                     _SPLITS),
    )
