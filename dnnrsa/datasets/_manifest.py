"""Data-set manifests: finding, reading and validating them.

A manifest (``data_manifests/<name>.json``) says where a data set comes from, under
which terms, how its files are laid out, how many images each class and split holds,
the checksums that are known, and how images are preprocessed. The loaders read
everything of that kind from the manifest, so it is written in one place only.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from .._utils import check_choice

__all__ = ["dataset_names", "list_datasets", "load_manifest", "manifest_dir"]

_REQUIRED_KEYS = ("name", "title", "description", "homepage", "obtain", "licence", "layout",
                  "preprocessing", "checksums")


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
