"""Forward hooks on named layers: a network's responses to a stimulus set as `Activations`."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ._utils import check_positive_int, format_choices, hide_progress, logger, resolve_device
from .activations import Activations
from .stimuli import StimulusSet
from .zoo import PAPER_LAYERS, check_input_shape

__all__ = ["extract", "layer_names"]

PIXELS = "pixels"


class _StopForward(Exception):
    """Raised by the last hook that is needed, so layers after it are never computed."""


def layer_names(model: nn.Module) -> list[str]:
    """Names :func:`extract` accepts for ``model``: ``"pixels"`` and every named module
    (for zoo networks these include the paper's ``conv1``, ``dense1``, ``dense2``, ``dense3``)."""
    return [PIXELS] + [name for name, _ in model.named_modules() if name]


def _check_layers(model: nn.Module, layers: Sequence[str]) -> dict[str, nn.Module | None]:
    if isinstance(layers, str):
        layers = [layers]
    if len(layers) == 0:
        raise ValueError("Argument layers is empty: name at least one layer, e.g. ['dense3'].")
    modules = dict(model.named_modules())
    out: dict[str, nn.Module | None] = {}
    for name in layers:
        if name == PIXELS:
            out[name] = None
        elif name in modules and name:
            out[name] = modules[name]
        else:
            valid = layer_names(model)
            shown = valid if len(valid) <= 40 else valid[:40] + ["..."]
            raise ValueError(
                f"Unknown value {name!r} for argument layers. Valid values are "
                f"{format_choices(shown)}" + (
                    f" ({len(valid)} in all; see dnnrsa.layer_names(model))." if len(valid) > 40
                    else ".")
            )
    if len(set(out)) != len(list(layers)):
        raise ValueError(f"Argument layers names a layer twice: {list(layers)}.")
    return out


def _check_channels(model: nn.Module, stimuli: StimulusSet) -> None:
    check_input_shape(model, stimuli.shape)
    first = next((m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)
    if isinstance(first, nn.Conv2d) and first.in_channels != stimuli.shape[0]:
        raise ValueError(
            f"Argument stimuli has {stimuli.shape[0]}-channel images but the model's first "
            f"convolution takes {first.in_channels} channels. Load the images with "
            f"{'grayscale=False' if first.in_channels == 3 else 'grayscale=True'} or repeat "
            "the channel."
        )


def weights_checksum(model: nn.Module) -> str:
    """Short SHA-256 of a model's parameters and buffers: which weights made these data."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _model_provenance(model: nn.Module) -> dict:
    info = getattr(model, "dnnrsa_info", None) or {}
    prov = {
        "model": info.get("variant") or type(model).__name__,
        "seed": info.get("seed"),
        "weights_sha256": weights_checksum(model),
    }
    if isinstance(getattr(model, "config", None), dict):
        prov["architecture"] = dict(model.config)
    spec = info.get("recipe")
    if isinstance(spec, dict):
        prov["training_data"] = spec.get("data")
        prov["recipe"] = info.get("recipe_key")
    return prov


def extract(
    model: nn.Module,
    stimuli: StimulusSet,
    layers: Sequence[str] | str = PAPER_LAYERS,
    *,
    batch_size: int = 128,
    device: Any = "auto",
    memmap_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> dict[str, Activations]:
    """Responses of named layers of ``model`` to ``stimuli``.

    The network runs in eval mode under ``torch.inference_mode()`` in chunks of
    ``batch_size`` images; the model's train/eval mode and device are restored afterwards.
    Layers past the last one asked for are not computed.

    Parameters
    ----------
    model : torch.nn.Module
        Any network. Zoo networks name their layers as the paper does (``conv1``,
        ``dense1``, ``dense2``, ``dense3``; a dense block's output includes its input).
    stimuli : StimulusSet
        Images of shape (n_images, C, H, W) the model accepts, with their factors.
    layers : str or sequence of str
        Module names as given by ``model.named_modules()`` (see :func:`layer_names`), or
        ``"pixels"`` for the images themselves (the pixel control).
    batch_size : int
        Images per forward pass; memory stays bounded by one chunk plus the outputs.
    device : {"auto", "cpu", "cuda", ...}
        Where the forward passes run.
    memmap_dir : path, optional
        Write each layer into ``memmap_dir/LAYER.npy`` as a memory-mapped array instead
        of holding it in memory (for large stimulus sets or wide layers).
    progress : bool, optional
        Show a progress bar (default: only in a terminal).

    Returns
    -------
    dict of str to Activations
        One entry per layer, in the order asked for. Convolutional layers keep their
        (C, H, W) shape; ``.X`` gives (n_images, C*H*W).

    Examples
    --------
    >>> net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)  # doctest: +SKIP
    >>> acts = dnnrsa.extract(net, stim, layers=["conv1", "dense3"])  # doctest: +SKIP
    >>> acts["dense3"].shape  # doctest: +SKIP
    (46, 8, 8)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Argument model must be a torch.nn.Module, got {type(model).__name__}.")
    if not isinstance(stimuli, StimulusSet):
        raise TypeError(
            f"Argument stimuli must be a dnnrsa.StimulusSet, got {type(stimuli).__name__}. "
            "Wrap images and their factor table with dnnrsa.StimulusSet(images, metadata)."
        )
    batch_size = check_positive_int("batch_size", batch_size, 1)
    targets = _check_layers(model, layers)
    _check_channels(model, stimuli)
    device = resolve_device(device)
    n = len(stimuli)
    base_prov = dict(_model_provenance(model), stimuli=stimuli.name, n_stimuli=n)
    if memmap_dir is not None:
        memmap_dir = Path(memmap_dir)
        memmap_dir.mkdir(parents=True, exist_ok=True)

    hooked = {k: m for k, m in targets.items() if m is not None}
    store: dict[str, np.ndarray] = {}
    captured: dict[str, torch.Tensor] = {}

    def make_hook(name):
        def hook(module, inputs, output):
            if name in captured:  # a module called twice in one pass: keep the first call
                return
            if isinstance(output, (tuple, list)):
                output = output[0]
            if not torch.is_tensor(output):
                raise TypeError(f"Layer {name!r} returned {type(output).__name__}, not a tensor.")
            captured[name] = output
            if len(captured) == len(hooked):
                raise _StopForward

        return hook

    def allocate(name, shape):
        full = (n, *shape)
        if memmap_dir is None:
            return np.empty(full, dtype=np.float32)
        return np.lib.format.open_memmap(memmap_dir / f"{name}.npy", mode="w+",
                                         dtype=np.float32, shape=full)

    was_training = model.training
    home = next(iter(model.parameters()), torch.empty(0)).device
    handles = [m.register_forward_hook(make_hook(k)) for k, m in hooked.items()]
    try:
        model.to(device).eval()
        images = stimuli.tensor()
        with torch.inference_mode():
            for start in tqdm(range(0, n, batch_size), desc="extract", unit="batch",
                              disable=hide_progress(progress), leave=False):
                xb = images[start : start + batch_size]
                if hooked:
                    captured.clear()
                    try:
                        model(xb.to(device))
                    except _StopForward:
                        pass
                    missing = set(hooked) - set(captured)
                    if missing:
                        raise ValueError(
                            f"Layer(s) {sorted(missing)} did not run in the model's forward "
                            "pass; choose modules that forward() calls."
                        )
                for name in targets:
                    out = xb if name == PIXELS else captured[name]
                    if name not in store:
                        store[name] = allocate(name, tuple(out.shape[1:]))
                    store[name][start : start + len(xb)] = out.float().cpu().numpy()
    finally:
        for h in handles:
            h.remove()
        model.to(home)
        model.train(was_training)

    result = {}
    for name in targets:
        prov = dict(base_prov, layer=name)
        if memmap_dir is not None:
            store[name].flush()
            prov["memmap"] = str(memmap_dir / f"{name}.npy")
        result[name] = Activations(store[name], stimuli.metadata, prov)
    logger.debug("extracted %s for %d stimuli", list(result), n)
    return result
