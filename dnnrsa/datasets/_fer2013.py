"""FER2013 (expression): the Kaggle ``fer2013.csv`` or torchvision's alternative files.

Why the CSV is parsed here rather than through ``torchvision.datasets.FER2013``:
torchvision's class merges PublicTest and PrivateTest into one ``"test"`` split (the
study tests on PublicTest only), stops at the first malformed row with a bare
``ValueError`` that names no line, and hashes the whole 300 MB file on every call. The
file layouts, precedence (``fer2013.csv`` > ``icml_face_data.csv`` > ``train.csv``) and
md5s are the same as torchvision's, so a folder prepared for torchvision works here, and
the tests check that both parsers give the same images and labels.
"""

from __future__ import annotations

import csv
import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .._utils import check_choice, check_positive_int
from ..stimuli import StimulusSet
from ._manifest import (
    DatasetReport,
    Findings,
    build_transform,
    counts_summary,
    dataset_root,
    find_base,
    load_manifest,
    log_notes,
    verify_checksums,
)

logger = logging.getLogger("dnnrsa")

__all__ = ["fer2013"]

_NAME = "fer2013"
_MAX_BAD_ROWS = 50  # bad rows listed per file; the rest are counted


def _locate(root: Path, manifest: Mapping) -> tuple[Path, str]:
    """The folder holding the CSV and which of the accepted files is used."""
    layout = manifest["layout"]
    for name in layout["precedence"]:
        base = find_base(root, manifest, lambda b, n=name: (b / n).is_file())
        if base is not None:
            return base, name
    others = [n for n in layout["precedence"] if n != "fer2013.csv"]
    subfolders = [c for c in layout.get("base_candidates", ["."]) if c not in (".", "")]
    where = f"{root}" + "".join(f" or {root / c}" for c in subfolders)
    raise FileNotFoundError(
        f"fer2013.csv not found in {where} (nor {' or '.join(others)}). "
        f"See data_manifests/{_NAME}.json for how to obtain it."
    )


def _parse_csv(path: Path, spec: Mapping, manifest: Mapping, findings: Findings) -> dict:
    """Read one FER CSV, validating every row.

    Returns a dict of arrays: ``pixels`` (n, H, W) uint8, ``label`` (n,) int64 (-1 when
    the file has no labels), ``usage`` (n,) object (None when the file has no Usage
    column), ``row`` (n,) int64, the 0-based data-row index in the file.
    """
    classes = manifest["classes"]
    h, w = manifest["image"]["height"], manifest["image"]["width"]
    n_pixels = h * w
    columns = list(spec["columns"])
    usages = list(spec["usages"])
    has_usage_col = "Usage" in columns
    has_label = "emotion" in columns
    fname = path.name
    bad: list[str] = []

    pixels, labels, usage_vals, rows = [], [], [], []
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            findings.add("bad_row", f"{fname} is empty (expected a header {','.join(columns)})")
            return _empty(h, w)
        header = [c.strip() for c in header]
        missing_cols = [c for c in columns if c not in header]
        if missing_cols:
            findings.add(
                "bad_row",
                f"{fname} line 1: the header has columns {header}, expected {columns} "
                f"(missing {missing_cols})",
            )
            return _empty(h, w)
        i_pix = header.index("pixels")
        i_emo = header.index("emotion") if has_label else None
        i_use = header.index("Usage") if has_usage_col else None
        n_cols = len(header)
        data_row = -1
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # a blank line
            data_row += 1
            line = reader.line_num
            if len(record) != n_cols:
                bad.append(f"{fname} line {line}: expected {n_cols} fields, got {len(record)}")
                continue
            label = -1
            if has_label:
                text = record[i_emo].strip()
                try:
                    label = int(text)
                except ValueError:
                    bad.append(f"{fname} line {line}: emotion {text!r} is not an integer "
                               f"label 0-{len(classes) - 1}")
                    continue
                if not 0 <= label < len(classes):
                    bad.append(f"{fname} line {line}: emotion {label} is not a label "
                               f"0-{len(classes) - 1} ({', '.join(classes)})")
                    continue
            usage = usages[0] if len(usages) == 1 else None
            if has_usage_col:
                usage = record[i_use].strip()
                if usage not in usages:
                    bad.append(f"{fname} line {line}: unknown Usage {usage!r}; valid values "
                               f"are {{{', '.join(usages)}}}")
                    continue
            values, msg = _parse_pixels(record[i_pix], n_pixels)
            if msg:
                bad.append(f"{fname} line {line}: {msg}")
                continue
            pixels.append(values.reshape(h, w))
            labels.append(label)
            usage_vals.append(usage)
            rows.append(data_row)
    for msg in bad[:_MAX_BAD_ROWS]:
        findings.add("bad_row", msg)
    if len(bad) > _MAX_BAD_ROWS:
        findings.add("bad_row", f"... and {len(bad) - _MAX_BAD_ROWS} more bad rows in {fname}")
    if not pixels:
        return _empty(h, w)
    return {
        "pixels": np.stack(pixels),
        "label": np.asarray(labels, np.int64),
        "usage": np.asarray(usage_vals, object),
        "row": np.asarray(rows, np.int64),
    }


def _empty(h: int, w: int) -> dict:
    return {"pixels": np.zeros((0, h, w), np.uint8), "label": np.zeros(0, np.int64),
            "usage": np.zeros(0, object), "row": np.zeros(0, np.int64)}


def _parse_pixels(text: str, n_pixels: int) -> tuple[np.ndarray | None, str | None]:
    """Pixel values of one row, or an error message."""
    # numpy's text parser is several times faster than int() per token. At a token that
    # is not an integer it raises (numpy >= 2.3) or warns and stops (older numpy); both
    # become a message naming the token.
    failed = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            values = np.fromstring(text, dtype=np.int64, sep=" ")
        except ValueError:
            failed = True
    if failed or caught or values.size != n_pixels:
        tokens = text.split()
        if len(tokens) != n_pixels:
            return None, f"expected {n_pixels} pixel values, got {len(tokens)}"
        odd = next((t for t in tokens if not t.isdigit()), None)
        return None, f"pixel value {odd!r} is not an integer 0-255"
    if values.min() < 0 or values.max() > 255:
        odd = values[(values < 0) | (values > 255)][0]
        return None, f"pixel value {odd} is outside 0-255"
    return values.astype(np.uint8), None


def _check_counts(data: dict, fname: str, spec: Mapping, manifest: Mapping,
                  findings: Findings) -> None:
    classes = manifest["classes"]
    expected = manifest["counts"]
    if spec.get("unlabelled"):
        want = sum(sum(expected[u].values()) for u in spec["usages"])
        if len(data["row"]) != want:
            findings.add("count", f"wrong count: {fname} has {len(data['row'])} valid rows, "
                                  f"expected {want}")
        return
    for usage in spec["usages"]:
        in_usage = data["usage"] == usage
        found = np.bincount(data["label"][in_usage], minlength=len(classes))
        for k, cls in enumerate(classes):
            want = int(expected[usage][cls])
            if found[k] != want:
                findings.add("count", f"wrong count: {fname} has {found[k]} {usage} rows of "
                                      f"class {k} ({cls}), expected {want}")


def _scan(root: Path, manifest: Mapping, verify: bool, findings: Findings,
          files: list[str] | None = None) -> tuple[Path, str, dict[str, dict]]:
    """Locate, checksum and parse the FER CSV(s): ``(base, main_file, parsed)``."""
    base, main = _locate(root, manifest)
    specs = manifest["layout"]["files"]
    names = [main] if files is None else files
    if verify:
        verify_checksums(base, manifest, findings, only=names)
    parsed = {}
    for name in names:
        if not (base / name).is_file():
            continue
        data = _parse_csv(base / name, specs[name], manifest, findings)
        _check_counts(data, name, specs[name], manifest, findings)
        parsed[name] = data
    return base, main, parsed


def fer2013(
    root: str | os.PathLike | None = None,
    split: str = "train",
    *,
    size: int = 48,
    verify: bool = True,
    manifest: Mapping | str | os.PathLike | None = None,
) -> StimulusSet:
    """FER2013 facial-expression images.

    Parameters
    ----------
    root : path, optional
        The folder holding ``fer2013.csv`` (directly or in a ``fer2013/`` subfolder, as
        torchvision lays it out). Default: ``data_root() / "fer2013"``. Instead of
        ``fer2013.csv`` the folder may hold torchvision's alternatives,
        ``icml_face_data.csv`` (same data) or ``train.csv`` (Training usage only: its
        companion ``test.csv`` has no labels, so it serves no test split).
    split : {"train", "public_test", "private_test"}
        The rows whose ``Usage`` is Training (28,709 images), PublicTest (3,589; the
        study's test set) or PrivateTest (3,589).
    size : int
        Output height and width (default 48: the images' own size).
    verify : bool
        Compare the CSV's md5 with the manifest's (computed once, then remembered under
        ``$DNNRSA_HOME`` while the file's path, size and modification time are unchanged).
        Rows and counts per usage and class are checked in any case; pass False for a
        re-encoded copy whose bytes differ.
    manifest : dict or path, optional
        A manifest to use instead of ``data_manifests/fer2013.json``.

    Returns
    -------
    StimulusSet
        ``images`` of shape (n, 1, size, size), float32 in [0, 1]; ``metadata`` with
        ``expression`` (Categorical angry, disgust, fear, happy, sad, surprise, neutral,
        in label order), ``label`` (int 0-6), ``usage`` and ``row`` (0-based data-row
        index in the CSV: file line ``row + 2``).

    Raises
    ------
    FileNotFoundError
        No accepted CSV in ``root``.
    ValueError
        A malformed row (named by file and line), wrong counts, or a wrong checksum.
    """
    m = load_manifest(_NAME, manifest)
    split_usage = m["splits"]
    check_choice("split", split, list(split_usage))
    size = check_positive_int("size", size)
    usage = split_usage[split]
    folder = dataset_root(_NAME, root)

    findings = Findings()
    base, main, parsed = _scan(folder, m, verify, findings)
    spec = m["layout"]["files"][main]
    if usage not in spec["usages"] or spec.get("unlabelled"):
        raise ValueError(
            f"Argument split={split!r} needs the {usage} rows with their labels, but {main} in "
            f"{base} holds only {', '.join(spec['usages'])}. Put fer2013.csv or "
            f"icml_face_data.csv in {base} for split='public_test' or 'private_test'."
        )
    findings.raise_if_any(_NAME, base)
    log_notes(_NAME, findings)
    data = parsed[main]
    keep = data["usage"] == usage
    pixels = data["pixels"][keep]
    labels = data["label"][keep]

    transform = build_transform(m["preprocessing"], size)
    h, w = m["image"]["height"], m["image"]["width"]
    if (size, size) == (h, w) and not m["preprocessing"].get("center_crop"):
        # Grayscale of a grayscale image and a resize to its own size change nothing:
        # dividing by 255 is what the transform would do, thousands of times faster.
        images = pixels[:, None].astype(np.float32) / np.float32(255.0)
    else:
        from PIL import Image

        images = np.stack([np.asarray(transform(Image.fromarray(p)), np.float32)
                           for p in pixels]) if len(pixels) else np.zeros(
            (0, 1, size, size), np.float32)
    classes = m["classes"]
    metadata = pd.DataFrame({
        "expression": pd.Categorical.from_codes(labels, categories=classes),
        "label": labels,
        "usage": pd.Categorical([usage] * len(labels), categories=list(split_usage.values())),
        "row": data["row"][keep],
    })
    logger.info("Loaded %d FER2013 %s images from %s.", len(labels), usage, base / main)
    return StimulusSet(images, metadata, transform=transform, name=f"fer2013_{split}")


def _check(root: Path, manifest: Mapping, verify: bool) -> DatasetReport:
    findings = Findings()
    try:
        base, main = _locate(root, manifest)
    except FileNotFoundError as exc:
        return DatasetReport(_NAME, str(root), problems=[str(exc)], verified=verify)
    files = [main]
    if main == "train.csv":
        if (base / "test.csv").is_file():
            files.append("test.csv")
        else:
            findings.note("test.csv is absent: only the Training usage can be loaded")
        findings.note("torchvision's train.csv/test.csv layout has no test labels; "
                      "split='public_test' and 'private_test' need fer2013.csv or "
                      "icml_face_data.csv")
    _, _, parsed = _scan(root, manifest, verify, findings, files=files)
    if not verify:
        findings.note("checksums not compared (verify=False)")
    summary = {}
    if main in parsed:
        data = parsed[main]
        spec = manifest["layout"]["files"][main]
        summary = counts_summary(
            data["usage"], [manifest["classes"][k] for k in data["label"]],
            manifest["classes"], spec["usages"],
        )
    if "test.csv" in parsed:
        summary["test.csv (unlabelled)"] = {"rows": int(len(parsed["test.csv"]["row"]))}
    return DatasetReport(_NAME, str(base), problems=findings.messages(), summary=summary,
                         notes=findings.notes, verified=verify)
