"""Checkpoints: weights as safetensors plus a JSON sidecar; never pickle."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from .._utils import format_choices, resolve_device
from .._version import __version__
from ._densenet import ARCHITECTURES

FORMAT = "dnnrsa.checkpoint/1"


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_suffix(".safetensors"), path.with_suffix(".json")


def build(architecture: str = "ccn2022", **options) -> nn.Module:
    """Build a network of the zoo.

    Parameters
    ----------
    architecture : {"ccn2022"}
        ``"ccn2022"`` is the DenseNet of the CCN-2022 study (see
        :class:`dnnrsa.zoo.CCNDenseNet` for its options: ``n_classes``, ``growth``,
        ``depth``, ``input_size``, ...).

    Examples
    --------
    >>> net = build("ccn2022", n_classes=7)
    >>> net.widths
    {'conv1': 64, 'dense1': 160, 'dense2': 176, 'dense3': 184}
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"Unknown value {architecture!r} for argument architecture. "
            f"Valid values are {format_choices(ARCHITECTURES)}."
        )
    return ARCHITECTURES[architecture](**options)


def save(model: nn.Module, path: str | os.PathLike, **info: Any) -> Path:
    """Write ``model``'s weights to ``PATH.safetensors`` and what is needed to rebuild and
    trust them to ``PATH.json``: architecture config, classes, seed, epoch, data identity,
    test accuracy and the dnnrsa version. Keyword arguments add to (or override) the
    ``model.dnnrsa_info`` that :func:`train` records.

    Both files are written under temporary names and renamed at the end, so an interrupted
    save leaves no half-written checkpoint.

    Returns
    -------
    pathlib.Path
        The ``.safetensors`` path.
    """
    from safetensors.torch import save_file

    config = getattr(model, "config", None)
    if not isinstance(config, dict) or config.get("architecture") not in ARCHITECTURES:
        raise TypeError(
            f"Argument model must be a zoo network (one of {format_choices(ARCHITECTURES)}) "
            f"to be saved as a dnnrsa checkpoint, got {type(model).__name__}. For other "
            "networks save the state_dict with safetensors yourself."
        )
    weights, sidecar = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(getattr(model, "dnnrsa_info", {}) or {})
    meta.update(info)
    meta.update(format=FORMAT, config=config, dnnrsa_version=__version__)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp_w = weights.with_name(weights.name + ".partial")
    tmp_j = sidecar.with_name(sidecar.name + ".partial")
    try:
        save_file(state, str(tmp_w), metadata={"format": FORMAT})
        tmp_j.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        os.replace(tmp_w, weights)
        os.replace(tmp_j, sidecar)
    finally:
        for t in (tmp_w, tmp_j):
            if t.exists():
                t.unlink()
    return weights


def read_info(path: str | os.PathLike) -> dict:
    """The JSON sidecar of a checkpoint."""
    weights, sidecar = _paths(path)
    if not sidecar.is_file():
        raise FileNotFoundError(
            f"No checkpoint sidecar at {sidecar}: a dnnrsa checkpoint is a .safetensors file "
            "with a .json file of the same name beside it (written by dnnrsa.zoo.save)."
        )
    try:
        meta = json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"Checkpoint sidecar {sidecar} is not valid JSON: {exc}.") from exc
    if meta.get("format") != FORMAT or "config" not in meta:
        raise ValueError(
            f"{sidecar} is not a dnnrsa checkpoint sidecar (format {meta.get('format')!r}, "
            f"expected {FORMAT!r})."
        )
    return meta


def load(path: str | os.PathLike, *, device: Any = "auto") -> nn.Module:
    """Rebuild a zoo network from a checkpoint written by :func:`save`.

    The network is returned in eval mode with ``model.dnnrsa_info`` holding the sidecar.
    Weights that do not fit the architecture the sidecar describes raise a ``ValueError``
    that lists the mismatching tensors.
    """
    from safetensors.torch import load_file

    weights, _ = _paths(path)
    meta = read_info(path)
    if not weights.is_file():
        raise FileNotFoundError(f"Checkpoint weights {weights} are missing (its sidecar is there).")
    config = dict(meta["config"])
    model = build(config.pop("architecture"), **config)
    state = load_file(str(weights))
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append("shape mismatches " + "; ".join(wrong[:5]))
        if missing:
            parts.append(f"missing tensors {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected tensors {unexpected[:5]}")
        raise ValueError(
            f"Checkpoint {weights} does not match the architecture in its sidecar "
            f"({meta['config']}): " + ", ".join(parts) + ". The weights were saved from a "
            "different network; retrain or restore the matching .json file."
        )
    model.load_state_dict(state)
    model.to(resolve_device(device))
    model.eval()
    model.dnnrsa_info = {k: v for k, v in meta.items() if k not in ("format", "config")}
    return model

