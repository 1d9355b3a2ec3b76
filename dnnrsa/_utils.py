"""Small helpers shared by every stage: argument checks with helpful messages, device
resolution, seeded random state that leaves the caller's untouched, deprecation of old
spellings, atomic writes and the package logger (the one ``logging.getLogger("dnnrsa")``
every module logs to)."""

from __future__ import annotations

import functools
import inspect
import logging
import math
import numbers
import os
import warnings
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger("dnnrsa")

#: The release in which the spellings deprecated in this one stop working.
REMOVAL_VERSION = "0.3"


def format_choices(valid: Iterable[Any]) -> str:
    return "{" + ", ".join(str(v) for v in valid) + "}"


def check_choice(name: str, value: Any, valid: Iterable[Any], hint: str = "") -> Any:
    """Return ``value`` if it is one of ``valid``, else raise a ``ValueError``
    that names the argument, what it got and what it accepts."""
    valid = list(valid)
    if value not in valid:
        msg = (
            f"Unknown value {value!r} for argument {name}. "
            f"Valid values are {format_choices(valid)}."
        )
        if hint:
            msg += " " + hint
        raise ValueError(msg)
    return value


def check_positive_int(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum], else a TypeError/ValueError naming
    ``name``, what it got and what it accepts."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Argument {name} must be an integer >= {minimum}, got {value!r}.")
    value = int(value)
    if value < minimum:
        raise ValueError(f"Argument {name} must be an integer >= {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(
            f"Argument {name} must be an integer between {minimum} and {maximum}, got {value}."
        )
    return value


def check_seed(name: str, value: Any) -> int:
    """A seed: an integer in [0, 2**63), the range numpy and torch both accept."""
    return check_positive_int(name, value, 0, 2**63 - 1)


def check_seed_list(name: str, seeds: Any, *, count_ok: bool) -> list[int]:
    """Distinct seeds as a list: a sequence of seeds or, with ``count_ok``, a number n
    meaning 0..n-1; else a TypeError/ValueError naming ``name``."""
    if count_ok and isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        return list(range(check_positive_int(name, seeds, 1)))
    what = ("a number of seeds or a list of seeds" if count_ok
            else "a sequence of network seeds such as (0, 1, 2)")
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__") or (
            not count_ok and isinstance(seeds, numbers.Integral)):
        raise TypeError(f"Argument {name} must be {what}, got {seeds!r}.")
    seeds = [check_seed(name, s) for s in seeds]
    if not seeds:
        raise ValueError(f"Argument {name} is empty: give {what}.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"Argument {name} lists a seed twice: {seeds}. Give distinct seeds.")
    return seeds


def check_positive_float(name: str, value: Any) -> float:
    """``value`` as a finite float > 0 (a learning rate, a regularisation strength)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Argument {name} must be a finite number > 0, got {value!r}.")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"Argument {name} must be a finite number > 0, got {value}.")
    return value


def hide_progress(progress: bool | None) -> bool | None:
    """tqdm's ``disable`` for a ``progress`` option: None hides the bar when not writing to
    a terminal, True shows it, False hides it."""
    return None if progress is None else not progress


@contextmanager
def torch_seed(seed: int, device: Any = None):
    """Run a block with torch's global generators seeded with ``seed`` (the CPU one, and
    ``device``'s when it is a CUDA device), and give the caller's generator states back
    afterwards: a library call never changes the random numbers of the user's script.

    Module initialisation (``nn.Linear``'s default weights) and dropout draw from these
    global generators, which is why they are seeded at all.
    """
    import torch

    cuda = []
    if device is not None and torch.device(device).type == "cuda":
        dev = torch.device(device)
        cuda = [dev.index if dev.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(int(seed))
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(int(seed))
        yield


def warn_renamed(old: str, new: str, where: str, stacklevel: int = 3) -> None:
    """The FutureWarning of an argument that was renamed; the old name still works for one
    release."""
    warnings.warn(
        f"Argument {old} of {where} was renamed to {new}; {old} stops working in dnnrsa "
        f"{REMOVAL_VERSION}. Write {new}=... instead.",
        FutureWarning, stacklevel=stacklevel,
    )


def keyword_only(*old_positional: str) -> Callable:
    """Decorator for a function whose options became keyword-only: calls that still pass
    ``old_positional`` (the options in their old order) positionally keep working for one
    release, with a FutureWarning that says how to write the call."""

    def decorate(func):
        sig = inspect.signature(func)
        n_positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                           for p in sig.parameters.values())

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            extra = args[n_positional:]
            if extra:
                if len(extra) > len(old_positional):
                    raise TypeError(
                        f"{func.__name__}() takes {n_positional} positional argument(s) "
                        f"but {len(args)} were given."
                    )
                names = old_positional[: len(extra)]
                twice = [k for k in names if k in kwargs]
                if twice:
                    raise TypeError(f"{func.__name__}() got multiple values for {twice}.")
                warnings.warn(
                    f"Passing {', '.join(names)} positionally to {func.__name__}() is "
                    f"deprecated and stops working in dnnrsa {REMOVAL_VERSION}; write "
                    + ", ".join(f"{k}=..." for k in names) + ".",
                    FutureWarning, stacklevel=2,
                )
                kwargs.update(zip(names, extra, strict=True))
                args = args[:n_positional]
            return func(*args, **kwargs)

        return wrapper

    return decorate


def resolve_device(device: Any = "auto"):
    """Turn ``device`` into a :class:`torch.device`.

    ``"auto"`` picks CUDA when available, else CPU. Asking for CUDA without a GPU is an
    error, never a silent fallback.
    """
    import torch

    if isinstance(device, torch.device):
        dev = device
    elif device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except RuntimeError as exc:
            raise ValueError(
                f"Unknown value {device!r} for argument device. "
                "Valid values are {auto, cpu, cuda, cuda:N, mps}."
            ) from exc
    else:
        raise TypeError(
            f"Argument device must be a string or torch.device, got {type(device).__name__}."
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(dev)!r} was asked for but CUDA is not available on this machine. "
            "Use device='cpu', or device='auto' to choose whatever is present."
        )
    if dev.type == "mps" and not (
        hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    ):
        raise ValueError(
            f"device={str(dev)!r} was asked for but MPS is not available on this machine. "
            "Use device='cpu' or device='auto'."
        )
    return dev


def dnnrsa_home(home: str | os.PathLike | None = None) -> Path:
    """The folder where dnnrsa keeps trained models: ``home``, else ``$DNNRSA_HOME``,
    else ``~/.cache/dnnrsa``."""
    if home is not None:
        return Path(home).expanduser()
    env = os.environ.get("DNNRSA_HOME")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/dnnrsa").expanduser()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so a crash never
    leaves a half-written file behind."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its closest ancestor that does."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(path.anchor or ".")


def _writable_folder(folder: Path) -> str | None:
    """None if a file can be created in ``folder`` (tried with a temporary file, removed
    at once), else why not."""
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=".dnnrsa-write-test-", dir=folder)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    os.unlink(tmp)
    return None


def check_output_path(name: str, path: Any, *, kind: str = "folder") -> Path:
    """Check, before any work, that ``path`` can receive the output of argument ``name``.

    Nothing is created: a folder that does not exist yet is fine when the nearest
    existing ancestor is a folder that can be written (tested by creating and removing a
    temporary file there).

    Parameters
    ----------
    name : str
        The argument's name as the caller knows it (``"out"``, ``"--csv"``), used in the
        message.
    path : str or os.PathLike
        The output folder (``kind="folder"``) or file (``kind="file"``).
    kind : {"folder", "file"}
        What ``path`` will be.

    Returns
    -------
    pathlib.Path
        ``path`` with ``~`` expanded.

    Raises
    ------
    TypeError
        ``path`` is not a str or os.PathLike.
    ValueError
        An existing file where a folder is wanted, a folder where a file is wanted, a
        parent that cannot be created (a regular file in the way) or a location that is
        not writable. The message names the argument, the path and the fix.
    """
    check_choice("kind", kind, ("folder", "file"))
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"Argument {name} must be a path (str or os.PathLike), got "
                        f"{type(path).__name__}.")
    if str(path) == "":
        raise ValueError(f"Argument {name} is an empty path: give a {kind} to write to.")
    path = Path(path).expanduser()
    if path.exists():
        if kind == "folder" and not path.is_dir():
            raise ValueError(f"Argument {name}={str(path)!r} is a file, not a folder: give a "
                             "folder for the output (it is created if missing).")
        if kind == "file" and path.is_dir():
            raise ValueError(f"Argument {name}={str(path)!r} is a folder, not a file: give "
                             f"a file name, e.g. {str(path / 'results.csv')!r}.")
    # The folder that must accept a new entry: the output folder itself when it exists,
    # else the nearest existing ancestor (where the missing folders would be created).
    target = path if kind == "folder" else path.parent
    anchor = _nearest_existing(target)
    if not anchor.is_dir():
        raise ValueError(
            f"Argument {name}={str(path)!r} cannot be created: {str(anchor)!r} is a file, "
            f"not a folder. Give a {kind} whose parent folders exist or can be created."
        )
    why = _writable_folder(anchor)
    if why is None and kind == "file" and path.exists() and not os.access(path, os.W_OK):
        why = "the file is read-only"
    if why is not None:
        where = "in" if anchor == target else "under"
        raise ValueError(
            f"Argument {name}={str(path)!r} is not writable: cannot create files {where} "
            f"{str(anchor)!r} ({why}). Give a {kind} in a folder you can write to."
        )
    return path
