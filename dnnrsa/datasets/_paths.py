"""Where the local copies of the real data sets live, and how their folders are read.

dnnrsa never downloads data: :func:`data_root` is the folder the user filled
(``$DNNRSA_DATA``), each data set sits in ``data_root() / <name>`` unless a loader is given
its own folder, and a manifest's ``layout.base_candidates`` say where inside that folder
the files may start (``KDEF/`` or the folder itself, say).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = [
    "DATA_ENV",
    "data_root",
    "dataset_root",
    "find_base",
    "folder_problem",
    "is_os_junk",
    "list_dirs",
    "list_files",
    "searched",
]

#: Environment variable naming the folder that holds the local copies of the data sets.
DATA_ENV = "DNNRSA_DATA"

# Files that operating systems drop into folders; never counted as stray images.
_OS_JUNK = frozenset({"thumbs.db", "desktop.ini", "icon\r"})


def folder_problem(path: Path) -> str | None:
    """What is wrong with ``path`` as a folder to read ("does not exist", "is a file, not a
    folder"), or None when it is a folder."""
    if path.is_dir():
        return None
    if path.exists():
        return "is a file, not a folder"
    return "does not exist"


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
        When neither ``root`` nor ``DNNRSA_DATA`` is given, or the folder does not exist
        (or is a file).
    """
    if root is not None:
        path = Path(root).expanduser()
        problem = folder_problem(path)
        if problem:
            raise FileNotFoundError(
                f"Argument root: the data folder {path} {problem}. Give the folder that "
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
    problem = folder_problem(path)
    if problem:
        what = "that is a file" if path.exists() else "that folder does not exist"
        raise FileNotFoundError(
            f"${DATA_ENV} is {env!r} but {what}. Set {DATA_ENV} to the "
            "folder that holds your local copies of the data sets, or pass root=..."
        )
    return path


def dataset_root(name: str, root: str | os.PathLike | None) -> Path:
    """``root`` as a Path, or ``data_root() / name`` when ``root`` is None; an error when
    that is not a folder."""
    path = data_root() / name if root is None else Path(root).expanduser()
    problem = folder_problem(path)
    if problem:
        raise FileNotFoundError(
            f"Argument root: the {name} folder {path} {problem}. Pass root= the folder "
            f"of your local copy (or set ${DATA_ENV} so that it is ${DATA_ENV}/{name}). "
            f"See data_manifests/{name}.json for how to obtain it."
        )
    return path


def _candidates(root: Path, manifest: Mapping) -> list[Path]:
    return [root if c in (".", "") else root / c
            for c in manifest["layout"].get("base_candidates", ["."])]


def find_base(root: Path, manifest: Mapping, is_base: Callable[[Path], bool]) -> Path | None:
    """The first of the manifest's ``layout.base_candidates`` (relative to ``root``) for
    which ``is_base`` holds, or None."""
    for base in _candidates(root, manifest):
        if base.is_dir() and is_base(base):
            return base
    return None


def searched(root: Path, manifest: Mapping) -> str:
    """The folders :func:`find_base` looks in, for a message saying nothing was found."""
    return " or ".join(str(p) for p in _candidates(root, manifest))


def is_os_junk(name: str) -> bool:
    """Hidden files and the files operating systems drop into folders (``.DS_Store``,
    ``Thumbs.db``, ``desktop.ini``): never data, never counted as stray."""
    return name.startswith(".") or name.lower() in _OS_JUNK


def list_files(folder: Path) -> list[str]:
    """Names of the regular files in ``folder`` (OS junk excluded), sorted."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_file() and not is_os_junk(e.name))


def list_dirs(folder: Path) -> list[str]:
    """Names of the sub-folders of ``folder`` (hidden ones excluded), sorted."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_dir() and not is_os_junk(e.name))
