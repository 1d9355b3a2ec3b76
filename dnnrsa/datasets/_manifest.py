"""Data-set manifests and the checks every real-data loader shares.

A manifest (``data_manifests/<name>.json``) says where a data set comes from, under
which terms, how its files are laid out, how many images each class and split holds,
the checksums that are known, and how images are preprocessed. The loaders read
everything of that kind from the manifest, so it is written in one place only.

This module also holds:

* :func:`data_root`: where local copies live (``$DNNRSA_DATA``); nothing is ever
  downloaded;
* checksums with a remembered-verification cache under ``$DNNRSA_HOME``: a file whose
  absolute path, size and modification time are unchanged is not hashed again;
* :class:`DatasetReport` and :func:`check_dataset`, the human-readable health check
  behind ``dnnrsa data check``;
* the image loading loop the folder-based loaders share, which reports every file
  that fails to decode by name.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.resources
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._utils import atomic_write_bytes, check_choice, dnnrsa_home

logger = logging.getLogger("dnnrsa")

__all__ = [
    "DatasetReport",
    "check_dataset",
    "data_root",
    "list_datasets",
    "load_manifest",
    "manifest_dir",
]

#: Environment variable naming the folder that holds the local copies of the data sets.
DATA_ENV = "DNNRSA_DATA"

#: File (under ``dnnrsa_home()``) that remembers the checksums already computed.
CHECKSUM_CACHE = "verified_checksums.json"

# Files that operating systems drop into folders; never counted as stray images.
_OS_JUNK = frozenset({"thumbs.db", "desktop.ini", "icon\r"})

# A loader's error lists at most this many problems; check_dataset() lists them all.
_MAX_LISTED = 500

_REQUIRED_KEYS = ("name", "title", "description", "homepage", "obtain", "licence", "layout",
                  "preprocessing", "checksums")


# ---------------------------------------------------------------------------------------
# Manifests
# ---------------------------------------------------------------------------------------
def manifest_dir():
    """The folder that holds the data-set manifests.

    Returns
    -------
    importlib.resources.abc.Traversable or pathlib.Path
        ``importlib.resources.files("dnnrsa") / "data_manifests"`` when the installed
        package ships the manifests, else the repository's top-level ``data_manifests/``.
    """
    try:
        shipped = importlib.resources.files("dnnrsa") / "data_manifests"
        if shipped.is_dir() and any(
            entry.name.endswith(".json") for entry in shipped.iterdir()
        ):
            return shipped
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    return Path(__file__).resolve().parents[2] / "data_manifests"


def dataset_names() -> list[str]:
    """Names of the data sets that have a manifest, sorted."""
    folder = manifest_dir()
    if not folder.is_dir():
        return []
    return sorted(e.name[: -len(".json")] for e in folder.iterdir() if e.name.endswith(".json"))


def load_manifest(name: str, manifest: Mapping | str | os.PathLike | None = None) -> dict:
    """Read the manifest of data set ``name``.

    Parameters
    ----------
    name : str
        Data-set name (``"fer2013"``, ``"celeba"``, ``"kdef"``, ``"uc_merced"``).
    manifest : dict or path, optional
        Use this manifest instead of the shipped one: a dict, or the path of a JSON file.
        Useful for a copy whose files differ from the published ones (a re-encoded copy,
        a test fixture). It must describe the same data set (its ``name`` is ``name``).

    Returns
    -------
    dict
        A fresh copy, safe to modify.
    """
    if manifest is None:
        names = dataset_names()
        check_choice("name", name, names,
                     hint=f"Manifests are read from {manifest_dir()}.")
        source = f"data_manifests/{name}.json"
        text = (manifest_dir() / f"{name}.json").read_text(encoding="utf-8")
        data = _parse_json(text, source)
    elif isinstance(manifest, Mapping):
        data = copy.deepcopy(dict(manifest))
        source = "the manifest dict given"
    elif isinstance(manifest, (str, os.PathLike)):
        path = Path(manifest).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"Argument manifest: no manifest file at {path}. Give the path of a JSON "
                f"manifest (see data_manifests/{name}.json for the format), a dict, or None "
                "for the shipped manifest."
            )
        source = str(path)
        data = _parse_json(path.read_text(encoding="utf-8"), source)
    else:
        raise TypeError(
            "Argument manifest must be None, a dict or the path of a JSON file, got "
            f"{type(manifest).__name__}."
        )
    missing = [k for k in _REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(
            f"Argument manifest: {source} lacks the key(s) {missing}. Start from "
            f"data_manifests/{name}.json and change only what differs."
        )
    if data["name"] != name:
        raise ValueError(
            f"Argument manifest: {source} describes data set {data['name']!r}, not {name!r}. "
            f"Give the manifest of {name!r}."
        )
    return data


def _parse_json(text: str, source: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Manifest {source} is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ValueError(f"Manifest {source} must hold a JSON object, got {type(data).__name__}.")
    return data


def list_datasets() -> pd.DataFrame:
    """The data sets dnnrsa can read, from their manifests.

    Returns
    -------
    pandas.DataFrame
        One row per data set with columns ``name``, ``title``, ``description``,
        ``licence``, ``homepage``, ``obtain`` (how to get a local copy) and
        ``expected_files`` (the layout the loader expects under the data set's folder).
    """
    rows = []
    for name in dataset_names():
        m = load_manifest(name)
        rows.append({
            "name": name,
            "title": m["title"],
            "description": m["description"],
            "licence": m["licence"],
            "homepage": m["homepage"],
            "obtain": m["obtain"],
            "expected_files": m["layout"].get("summary", ""),
        })
    columns = ["name", "title", "description", "licence", "homepage", "obtain", "expected_files"]
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------------------
# Where the data live
# ---------------------------------------------------------------------------------------
def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds the local copies of the data sets.

    Parameters
    ----------
    root : path, optional
        Use this folder. Default: the environment variable ``DNNRSA_DATA``.

    Returns
    -------
    pathlib.Path
        Each data set is then looked for in ``data_root() / <name>`` (``fer2013``,
        ``celeba``, ``kdef``, ``uc_merced``).

    Raises
    ------
    FileNotFoundError
        When neither ``root`` nor ``DNNRSA_DATA`` is given, or the folder does not exist.
    """
    if root is not None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"Argument root: the data folder {path} does not exist. Give the folder that "
                f"holds your local copies of the data sets, or set ${DATA_ENV}."
            )
        return path
    env = os.environ.get(DATA_ENV)
    if not env:
        raise FileNotFoundError(
            f"No data folder given: pass root=... or set the environment variable {DATA_ENV} "
            f"to the folder that holds your local copies (e.g. `export {DATA_ENV}=/data`; "
            "KDEF is then read from /data/kdef). dnnrsa never downloads data: "
            "dnnrsa.datasets.list_datasets() says where to obtain each data set."
        )
    path = Path(env).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"${DATA_ENV} is {env!r} but that folder does not exist. Set {DATA_ENV} to the "
            "folder that holds your local copies of the data sets, or pass root=..."
        )
    return path


def dataset_root(name: str, root: str | os.PathLike | None) -> Path:
    """``root`` as a Path, or ``data_root() / name`` when ``root`` is None; an error when
    the folder does not exist."""
    path = data_root() / name if root is None else Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"Argument root: the {name} folder {path} does not exist. Pass root= the folder "
            f"of your local copy (or set ${DATA_ENV} so that it is ${DATA_ENV}/{name}). "
            f"See data_manifests/{name}.json for how to obtain it."
        )
    return path


def find_base(root: Path, manifest: Mapping, is_base: Callable[[Path], bool]) -> Path | None:
    """The first of the manifest's ``layout.base_candidates`` (relative to ``root``) for
    which ``is_base`` holds, or None."""
    for cand in manifest["layout"].get("base_candidates", ["."]):
        base = root if cand in (".", "") else root / cand
        if base.is_dir() and is_base(base):
            return base
    return None


def is_os_junk(name: str) -> bool:
    """Hidden files and the files operating systems drop into folders (``.DS_Store``,
    ``Thumbs.db``, ``desktop.ini``): never data, never counted as stray."""
    return name.startswith(".") or name.lower() in _OS_JUNK


# ---------------------------------------------------------------------------------------
# Checksums, remembered between runs
# ---------------------------------------------------------------------------------------
def _cache_path() -> Path:
    return dnnrsa_home() / CHECKSUM_CACHE


def _read_cache() -> dict:
    path = _cache_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache: dict) -> None:
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(cache, indent=1, sort_keys=True).encode("utf-8"))
    except OSError as exc:  # a read-only home only costs re-hashing next time
        logger.warning("Could not remember checksums in %s (%s); files will be hashed again.",
                       path, exc)


def hash_file(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Hex digest of a file's bytes (no cache)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_checksum(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Hex digest of a file, remembered in ``$DNNRSA_HOME/verified_checksums.json``
    under its absolute path, size and modification time: an unchanged file is hashed once."""
    path = Path(path).resolve()
    st = path.stat()
    key = str(path)
    cache = _read_cache()
    entry = cache.get(key)
    if (isinstance(entry, dict) and entry.get("size") == st.st_size
            and entry.get("mtime_ns") == st.st_mtime_ns and algorithm in entry):
        return entry[algorithm]
    t0 = time.perf_counter()
    value = hash_file(path, algorithm)
    logger.info("Computed the %s of %s in %.1f s.", algorithm, path, time.perf_counter() - t0)
    if not (isinstance(entry, dict) and entry.get("size") == st.st_size
            and entry.get("mtime_ns") == st.st_mtime_ns):
        entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    entry[algorithm] = value
    cache = _read_cache()  # re-read: another process may have added entries meanwhile
    cache[key] = entry
    _write_cache(cache)
    return value


def parse_checksum(spec: str, where: str) -> tuple[str, str]:
    """Split a manifest checksum ``"md5:<hex>"`` / ``"sha256:<hex>"`` into (algorithm, hex)."""
    algorithm, sep, value = str(spec).partition(":")
    if not sep or algorithm not in ("md5", "sha1", "sha256") or not value:
        raise ValueError(
            f"Manifest checksum {spec!r} for {where} is malformed; write it as "
            "'md5:<hex digits>' or 'sha256:<hex digits>'."
        )
    return algorithm, value.lower()


def verify_checksum(path: Path, spec: str, label: str) -> str | None:
    """Compare a file's checksum with the manifest's ``spec``; a problem message on
    mismatch, None when it matches."""
    algorithm, expected = parse_checksum(spec, label)
    actual = file_checksum(path, algorithm)
    if actual == expected:
        return None
    return (
        f"wrong checksum for {label}: its {algorithm} is {actual}, expected {expected} "
        "(the file is corrupted, truncated or a different version; pass verify=False to "
        "skip checksums for a deliberately re-encoded copy)"
    )


def verify_checksums(base: Path, manifest: Mapping, findings: Findings,
                     only: Iterable[str] | None = None) -> None:
    """Check every manifest checksum whose file exists under ``base`` (or only the
    relative paths in ``only``); mismatches become ``checksum`` problems."""
    wanted = None if only is None else set(only)
    for rel, spec in manifest.get("checksums", {}).items():
        if wanted is not None and rel not in wanted:
            continue
        path = base / rel
        if path.is_file():
            msg = verify_checksum(path, spec, rel)
            if msg:
                findings.add("checksum", msg)


# ---------------------------------------------------------------------------------------
# Problems and reports
# ---------------------------------------------------------------------------------------
class Findings:
    """What a scan found wrong (``problems``: the copy is not usable as it is) and what
    it merely noticed (``notes``)."""

    def __init__(self):
        self.problems: list[tuple[str, str]] = []
        self.notes: list[str] = []

    def add(self, kind: str, message: str) -> None:
        """Record a problem; ``kind`` is one of missing, unreadable, bad_row, stray,
        misplaced, checksum, count, layout."""
        self.problems.append((kind, message))

    def note(self, message: str) -> None:
        self.notes.append(message)

    def __bool__(self) -> bool:
        return bool(self.problems)

    def messages(self) -> list[str]:
        return [m for _, m in self.problems]

    def raise_if_any(self, name: str, where: Path | str, hint: str = "") -> None:
        """Raise one error listing every problem: FileNotFoundError when all are missing
        files, else ValueError. ``hint`` ends the message."""
        if not self.problems:
            return
        kinds = {k for k, _ in self.problems}
        msgs = self.messages()
        listed = msgs[:_MAX_LISTED]
        if len(msgs) > _MAX_LISTED:
            listed.append(f"... and {len(msgs) - _MAX_LISTED} more")
        text = (
            f"The {name} data set at {where} is not usable as it is: "
            f"{len(msgs)} problem(s):\n  - " + "\n  - ".join(listed) + "\n"
            f"See data_manifests/{name}.json for how to obtain it and the layout expected; "
            f"dnnrsa.datasets.check_dataset({name!r}, {str(where)!r}) gives a full report."
            + (f" {hint}" if hint else "")
        )
        raise (FileNotFoundError if kinds == {"missing"} else ValueError)(text)


@dataclass
class DatasetReport:
    """The result of :func:`check_dataset`.

    Attributes
    ----------
    name : str
        Data-set name.
    path : str
        The folder that was checked.
    problems : list of str
        Everything that makes the copy unusable as it is (missing or stray files,
        undecodable images, bad CSV rows, wrong checksums, wrong counts). Empty when usable.
    summary : dict of {str: dict of {str: int}}
        Counts found, per group (split, usage or viewpoint) and class.
    notes : list of str
        Observations that do not stop the loaders (ignored folders, unusual image sizes,
        checks that were skipped).
    verified : bool
        Whether checksums were compared and every image decoded (``verify=True``).
    """

    name: str
    path: str
    problems: list[str] = field(default_factory=list)
    summary: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    verified: bool = True

    @property
    def ok(self) -> bool:
        """True when no problem was found: the loaders will accept this copy."""
        return not self.problems

    def summary_table(self) -> pd.DataFrame:
        """:attr:`summary` as a table: one row per class, one column per group."""
        if not self.summary:
            return pd.DataFrame()
        table = pd.DataFrame(self.summary)
        return table.fillna(0).astype(int)

    def __str__(self) -> str:
        status = "usable" if self.ok else f"NOT usable, {len(self.problems)} problem(s)"
        lines = [f"{self.name} at {self.path}: {status}"
                 + ("" if self.verified else " (checksums and decoding not checked: verify=False)")]
        table = self.summary_table()
        if not table.empty:
            lines.append("counts found:")
            lines += ["  " + ln for ln in table.to_string().splitlines()]
        if self.problems:
            lines.append("problems:")
            lines += [f"  - {p}" for p in self.problems]
        if self.notes:
            lines.append("notes:")
            lines += [f"  - {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"DatasetReport(name={self.name!r}, ok={self.ok}, "
                f"problems={len(self.problems)}, path={self.path!r})")


def check_dataset(
    name: str,
    path: str | os.PathLike | None = None,
    verify: bool = True,
    *,
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
    check_choice("name", name, dataset_names(),
                 hint="dnnrsa.datasets.list_datasets() lists them.")
    m = load_manifest(name, manifest)
    root = data_root() / name if path is None else Path(path).expanduser()
    if not root.is_dir():
        return DatasetReport(
            name, str(root),
            problems=[f"folder {root} does not exist (see data_manifests/{name}.json for how "
                      "to obtain the data set)"],
            verified=bool(verify),
        )
    module = importlib.import_module(f"{__package__}._{name}")
    report = module._check(root, m, bool(verify))
    return report


# ---------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------
def build_transform(preprocessing: Mapping, size: int):
    """The transform a manifest's ``preprocessing`` describes: optional grayscale, optional
    center crop, resize to ``size`` x ``size`` (PIL bilinear with antialiasing), then
    conversion to a float32 (C, H, W) tensor in [0, 1]."""
    from torchvision import transforms

    steps = []
    if preprocessing.get("grayscale", True):
        steps.append(transforms.Grayscale(num_output_channels=1))
    crop = preprocessing.get("center_crop")
    if crop:
        steps.append(transforms.CenterCrop(int(crop)))
    steps.append(transforms.Resize((size, size), antialias=True))
    steps.append(transforms.ToTensor())
    return transforms.Compose(steps)


def _n_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _decode_one(path: Path, transform: Callable | None):
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            size = img.size
            out = None if transform is None else np.asarray(transform(img), dtype=np.float32)
        return out, size, None
    except Exception as exc:  # report any decoder failure by file name
        return None, None, f"{type(exc).__name__}: {exc}"


def load_images(
    paths: Sequence[Path],
    labels: Sequence[str],
    transform: Callable | None,
    findings: Findings,
    expected_size: Sequence[int] | None = None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Decode (and transform) every image, in threads.

    Returns ``(images, ok)``: the stacked transformed images (None without a transform)
    of the files that decoded, and a boolean mask over ``paths``. Each file that fails
    becomes an ``unreadable`` problem naming ``labels[i]``; images whose (width, height)
    differ from ``expected_size`` become a note.
    """
    if len(paths) == 0:
        return (np.zeros((0, 1, 1, 1), np.float32) if transform is not None else None,
                np.zeros(0, bool))
    with ThreadPoolExecutor(max_workers=_n_workers()) as pool:
        results = list(pool.map(lambda p: _decode_one(p, transform), paths))
    ok = np.zeros(len(paths), bool)
    arrays, odd_sizes = [], []
    for i, (arr, size, err) in enumerate(results):
        if err is not None:
            findings.add("unreadable", f"cannot decode image {labels[i]} ({err})")
            continue
        ok[i] = True
        if transform is not None:
            arrays.append(arr)
        if expected_size is not None and tuple(size) != tuple(expected_size):
            odd_sizes.append(f"{labels[i]} ({size[0]}x{size[1]})")
    if odd_sizes:
        findings.note(
            f"{len(odd_sizes)} image(s) are not {expected_size[0]}x{expected_size[1]} "
            f"(width x height) as the manifest expects; they are cropped and resized like the "
            f"others: {', '.join(odd_sizes[:20])}" + (" ..." if len(odd_sizes) > 20 else "")
        )
    if transform is None:
        return None, ok
    images = np.stack(arrays) if arrays else np.zeros((0, 1, 1, 1), np.float32)
    return images, ok


def log_notes(name: str, findings: Findings) -> None:
    """Loaders log what a scan noticed but did not count as a problem."""
    for note in findings.notes:
        logger.warning("%s: %s", name, note)


def list_files(folder: Path) -> list[str]:
    """Names of the regular files in ``folder`` (OS junk excluded), sorted."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_file() and not is_os_junk(e.name))


def list_dirs(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_dir() and not is_os_junk(e.name))


def categorical(values: Any, categories: Sequence) -> pd.Categorical:
    """An ordered-as-given (not ordinal) Categorical with every manifest level kept."""
    return pd.Categorical(values, categories=list(categories))


def counts_summary(groups: Sequence, classes: Sequence, class_order: Sequence,
                   group_order: Sequence) -> dict[str, dict[str, int]]:
    """{group: {class: count}} in manifest order, zero counts kept."""
    table = pd.crosstab(pd.Categorical(list(classes), categories=list(class_order)),
                        pd.Categorical(list(groups), categories=list(group_order)),
                        dropna=False)
    return {str(g): {str(c): int(table.loc[c, g]) for c in class_order} for g in group_order}


SKIP_HINT = "Pass on_problem='skip' to load the images that are fine anyway."


def load_listed_images(name: str, base: Path, table: pd.DataFrame, manifest: Mapping,
                       findings: Findings, *, verify: bool, on_problem: str, size: int):
    """Checksums (if ``verify``), then decode and preprocess the images of ``table``
    (columns ``path`` and ``rel``). With ``on_problem="raise"`` every problem found is
    raised together; with ``"skip"`` they are logged and the usable rows kept.

    Returns
    -------
    images : ndarray of shape (n_ok, 1, size, size)
    table : DataFrame of the rows that loaded, index reset
    transform : callable
        The preprocessing applied (provenance for the StimulusSet).
    """
    if verify:
        verify_checksums(base, manifest, findings, only=set(table["rel"]))
    if on_problem == "raise":
        findings.raise_if_any(name, base, SKIP_HINT)
    transform = build_transform(manifest["preprocessing"], size)
    image_size = (manifest["image"]["width"], manifest["image"]["height"])
    images, ok = load_images(list(table["path"]), list(table["rel"]), transform, findings,
                             expected_size=image_size)
    if on_problem == "raise":
        findings.raise_if_any(name, base, SKIP_HINT)
    elif findings:
        msgs = findings.messages()
        logger.warning("%s: skipping %d problem(s) in %s (on_problem='skip'):\n  - %s",
                       name, len(msgs), base, "\n  - ".join(msgs))
    log_notes(name, findings)
    return images, table[ok].reset_index(drop=True), transform
