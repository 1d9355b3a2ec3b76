"""Small helpers shared by every stage: argument checks with helpful messages,
device resolution and the package logger."""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger("dnnrsa")


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


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Argument {name} must be an integer >= {minimum}, got {value!r}.")
    value = int(value)
    if value < minimum:
        raise ValueError(f"Argument {name} must be an integer >= {minimum}, got {value}.")
    return value


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
