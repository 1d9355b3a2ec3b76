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
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._metadata import categorical
from .._utils import check_choice, keyword_only
from ..stimuli import StimulusSet
from ._checksums import verify_checksums
from ._loader import check_copy, load_stimuli
from ._manifest import load_manifest
from ._paths import find_base, searched
from ._report import DatasetReport, Findings, counts_summary

__all__ = ["check", "fer2013"]

_NAME = "fer2013"


def _locate(root: Path, manifest: Mapping) -> tuple[Path, str]:
    """The folder holding the CSV and which of the accepted files is used."""
    layout = manifest["layout"]
    for name in layout["precedence"]:
        base = find_base(root, manifest, lambda b, n=name: (b / n).is_file())
        if base is not None:
            return base, name
    others = [n for n in layout["precedence"] if n != "fer2013.csv"]
    raise FileNotFoundError(
        f"fer2013.csv not found in {searched(root, manifest)} (nor {' or '.join(others)}). "
        f"See data_manifests/{_NAME}.json for how to obtain it."
    )


def _parse_csv(path: Path, spec: Mapping, manifest: Mapping,
               findings: Findings) -> pd.DataFrame:
    """Read one FER CSV, validating every row.

    Returns one row per valid data row: ``file`` (the CSV's name), ``label`` (int64, -1
    when the file has no labels), ``usage`` (None when the file has no Usage column),
    ``row`` (the 0-based data-row index in the file) and ``pixels`` (an (H, W) uint8
    array each).
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
            return _table(fname, [], [], [], [])
        header = [c.strip() for c in header]
        missing_cols = [c for c in columns if c not in header]
        if missing_cols:
            findings.add(
                "bad_row",
                f"{fname} line 1: the header has columns {header}, expected {columns} "
                f"(missing {missing_cols})",
            )
            return _table(fname, [], [], [], [])
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
    findings.add_bad_lines(fname, bad, noun="rows")
    return _table(fname, labels, usage_vals, rows, pixels)


def _table(fname: str, labels: Sequence[int], usages: Sequence, rows: Sequence[int],
           pixels: Sequence[np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({
        "file": fname,
        "label": np.asarray(labels, np.int64),
        "usage": pd.Series(usages, dtype=object),
        "row": np.asarray(rows, np.int64),
        "pixels": pd.Series(list(pixels), dtype=object),
    })


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


def _check_counts(data: pd.DataFrame, fname: str, spec: Mapping, manifest: Mapping,
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
        in_usage = (data["usage"] == usage).to_numpy()
        found = np.bincount(data["label"].to_numpy()[in_usage], minlength=len(classes))
        for k, cls in enumerate(classes):
            want = int(expected[usage][cls])
            if found[k] != want:
                findings.add("count", f"wrong count: {fname} has {found[k]} {usage} rows of "
                                      f"class {k} ({cls}), expected {want}")


def _read(base: Path, names: Sequence[str], manifest: Mapping, verify: bool,
          findings: Findings) -> pd.DataFrame:
    """Checksum (when ``verify``), parse and count the CSVs ``names`` of ``base``: the
    valid rows of all of them, one table."""
    specs = manifest["layout"]["files"]
    if verify:
        verify_checksums(base, manifest, findings, only=names)
    tables = []
    for name in names:
        data = _parse_csv(base / name, specs[name], manifest, findings)
        _check_counts(data, name, specs[name], manifest, findings)
        tables.append(data)
    return pd.concat(tables, ignore_index=True)


def _decode(fast: bool, h: int, w: int) -> Callable:
    """FER2013's images are pixel rows, not files: stack them and apply the transform."""

    def decode(table: pd.DataFrame, transform: Callable, findings: Findings):
        pixels = np.stack(table["pixels"]) if len(table) else np.zeros((0, h, w), np.uint8)
        if fast:
            # Grayscale of a grayscale image and a resize to its own size change nothing:
            # dividing by 255 is what the transform would do, thousands of times faster.
            images = pixels[:, None].astype(np.float32) / np.float32(255.0)
        else:
            from PIL import Image

            images = np.stack([np.asarray(transform(Image.fromarray(p)), np.float32)
                               for p in pixels]) if len(pixels) else np.zeros(
                (0, 1, 1, 1), np.float32)
        return images, np.ones(len(table), bool)

    return decode


@keyword_only("split")
def fer2013(
    root: str | os.PathLike | None = None,
    *,
    split: str = "train",
    size: int = 48,
    verify: bool = True,
    on_problem: str = "raise",
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
    on_problem : {"raise", "skip"}
        "raise" (default): one error naming every malformed row (by file and line),
        wrong count and wrong checksum. "skip": log those problems as one warning and
        load the rows that are fine (malformed rows are left out, so the counts are
        then smaller than the manifest's).
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
        The split is not in the CSV found; or (on_problem="raise") a malformed row
        (named by file and line), wrong counts, or a wrong checksum.
    """
    m = load_manifest(_NAME, manifest)
    split_usage = m["splits"]
    check_choice("split", split, list(split_usage))
    usage = split_usage[split]
    classes = m["classes"]

    def scan(folder: Path, findings: Findings, verify: bool):
        base, main = _locate(folder, m)
        spec = m["layout"]["files"][main]
        if usage not in spec["usages"] or spec.get("unlabelled"):
            raise ValueError(
                f"Argument split={split!r} needs the {usage} rows with their labels, but "
                f"{main} in {base} holds only {', '.join(spec['usages'])}. Put fer2013.csv "
                f"or icml_face_data.csv in {base} for split='public_test' or 'private_test'."
            )
        table = _read(base, [main], m, verify, findings)
        return base, table[(table["usage"] == usage).to_numpy()].reset_index(drop=True)

    def metadata(table: pd.DataFrame) -> pd.DataFrame:
        labels = table["label"].to_numpy(np.int64)
        return pd.DataFrame({
            "expression": categorical(np.asarray(classes, object)[labels], classes),
            "label": labels,
            "usage": categorical([usage] * len(labels), list(split_usage.values())),
            "row": table["row"].to_numpy(np.int64),
        })

    h, w = m["image"]["height"], m["image"]["width"]
    fast = (size, size) == (h, w) and not m["preprocessing"].get("center_crop")
    return load_stimuli(
        _NAME, m, root, scan, metadata, what=f"FER2013 image of split {split!r}",
        stimulus_name=f"fer2013_{split}", size=size, verify=verify, on_problem=on_problem,
        decode=_decode(fast, h, w),
    )


def check(root: Path, manifest: Mapping, verify: bool) -> DatasetReport:
    """Check every CSV of a FER2013 copy (see :func:`check_copy`)."""
    classes = manifest["classes"]
    read = []  # the CSVs the scan read, main one first, for the summary

    def scan(folder: Path, findings: Findings, verify: bool):
        base, main = _locate(folder, manifest)
        read.append(main)
        if main == "train.csv":
            if (base / "test.csv").is_file():
                read.append("test.csv")
            else:
                findings.note("test.csv is absent: only the Training usage can be loaded")
            findings.note("torchvision's train.csv/test.csv layout has no test labels; "
                          "split='public_test' and 'private_test' need fer2013.csv or "
                          "icml_face_data.csv")
        return base, _read(base, read, manifest, verify, findings)

    def summary(table: pd.DataFrame) -> dict:
        rows = table[table["file"] == read[0]]
        out = counts_summary(rows["usage"], [classes[k] for k in rows["label"]], classes,
                             manifest["layout"]["files"][read[0]]["usages"])
        if "test.csv" in read:
            out["test.csv (unlabelled)"] = {"rows": int((table["file"] == "test.csv").sum())}
        return out

    return check_copy(_NAME, manifest, root, verify, scan, summary, files=False)
