"""Forward hooks on named layers: a network's responses to a stimulus set as `Activations`."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ._cache import (
    CacheEntry,
    WritePool,
    check_cache_dir,
    check_dtype,
    check_writable,
    model_key,
    stimuli_key,
)
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
    cache_dir: str | os.PathLike | None = None,
    dtype: Any = "float32",
    memmap_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> dict[str, Activations]:
    """Responses of named layers of ``model`` to ``stimuli``.

    The network runs in eval mode under ``torch.inference_mode()`` in chunks of
    ``batch_size`` images; the model's train/eval mode and device are restored afterwards.
    Layers past the last one asked for are not computed. Each chunk's responses are
    written out (into memory, or into the cache) by a forward hook as the layer produces
    them, and dropped.

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
    cache_dir : path, optional
        Keep each layer on disk, as a memory-mapped ``.npy`` file in a cache under this
        folder (created if missing), instead of in memory: for large stimulus sets or
        wide layers. An entry is keyed by a checksum of the model's weights, buffers and
        architecture, the layer, a checksum of the stimuli (images, hence their size, and
        factor table) and ``dtype``; a later call with the same key reads the entry and
        runs no forward pass (logged at INFO on the ``dnnrsa`` logger), and layers that
        are not cached yet are computed and added. Entries are written under temporary
        names and completed by a JSON sidecar written last, so an interrupted run leaves
        nothing that is taken for an entry. The folder must be writable when something
        is missing from it (checked before any forward pass); a read-only cache that
        holds every layer asked for is read as it is.
    dtype : {"float32", "float16"}
        Storage type of the responses; float16 halves memory and disk (about 3 significant
        digits; a layer whose values exceed float16's range, 65504, is an error).
    memmap_dir : path, optional
        The old name of ``cache_dir``, with the same behaviour; give one of the two.
    progress : bool, optional
        Show a progress bar (default: only in a terminal).

    Returns
    -------
    dict of str to Activations
        One entry per layer, in the order asked for. Convolutional layers keep their
        (C, H, W) shape; ``.X`` gives (n_images, C*H*W). With ``cache_dir`` the data
        are read-only ``numpy.memmap`` arrays and ``provenance["cache"]`` is the path of
        the ``.npy`` file; :func:`dnnrsa.rdm` computes RDMs of such layers chunk by
        chunk without reading them into memory. ``provenance["dtype"]`` records
        ``dtype``.

    Raises
    ------
    ValueError
        For an unknown layer or dtype, images the model does not take, both
        ``cache_dir`` and ``memmap_dir``, a cache folder that is a file or cannot be
        written, or float16 overflow.

    Examples
    --------
    >>> net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)  # doctest: +SKIP
    >>> acts = dnnrsa.extract(net, stim, layers=["conv1", "dense3"])  # doctest: +SKIP
    >>> acts["dense3"].shape  # doctest: +SKIP
    (46, 8, 8)
    >>> big = dnnrsa.extract(net, stim, cache_dir="~/.cache/dnnrsa/acts")  # doctest: +SKIP
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Argument model must be a torch.nn.Module, got {type(model).__name__}.")
    if not isinstance(stimuli, StimulusSet):
        raise TypeError(
            f"Argument stimuli must be a dnnrsa.StimulusSet, got {type(stimuli).__name__}. "
            "Wrap images and their factor table with dnnrsa.StimulusSet(images, metadata)."
        )
    if len(stimuli) == 0:
        raise ValueError("Argument stimuli is empty: extract needs at least one image.")
    batch_size = check_positive_int("batch_size", batch_size, 1)
    dtype = check_dtype(dtype)
    cache_arg = "cache_dir"
    if memmap_dir is not None:
        if cache_dir is not None:
            raise ValueError(
                "Arguments cache_dir and memmap_dir were both given; memmap_dir is the old "
                "name of cache_dir. Give cache_dir only."
            )
        cache_dir, cache_arg = memmap_dir, "memmap_dir"
    if cache_dir is not None:
        cache_dir = check_cache_dir(cache_dir, cache_arg)
    targets = _check_layers(model, layers)
    _check_channels(model, stimuli)
    device = resolve_device(device)
    n = len(stimuli)
    base_prov = dict(_model_provenance(model), stimuli=stimuli.name, n_stimuli=n,
                     dtype=dtype.name)

    data: dict[str, np.ndarray] = {}
    entries: dict[str, CacheEntry] = {}
    if cache_dir is not None:
        folder = cache_dir / model_key(model, base_prov["weights_sha256"]) / stimuli_key(stimuli)
        for name in targets:
            key = {"model": folder.parent.name, "stimuli": folder.name, "layer": name,
                   "dtype": dtype.name, "n_stimuli": n}
            entries[name] = CacheEntry(folder, name, dtype, key)
            cached = entries[name].read()
            if cached is not None:
                logger.info("extract: %r read from the cache %s (no forward pass)", name,
                            entries[name].path)
                data[name] = cached
        if len(data) < len(targets):
            check_writable(folder, cache_arg)
    todo = {k: m for k, m in targets.items() if k not in data}
    if todo:
        data.update(_forward(model, stimuli, todo, {k: entries.get(k) for k in todo},
                             batch_size=batch_size, device=device, dtype=dtype,
                             progress=progress, provenance=base_prov))

    result = {}
    for name in targets:
        prov = dict(base_prov, layer=name)
        if cache_dir is not None:
            prov["cache"] = str(entries[name].path)
        result[name] = Activations(data[name], stimuli.metadata, prov)
    logger.debug("extracted %s for %d stimuli (%d computed)", list(result), n, len(todo))
    return result


class _MemorySink:
    """Rows of one layer in memory."""

    def __init__(self, n: int, dtype: np.dtype):
        self.n, self.dtype, self.array = n, dtype, None

    def write(self, start: int, block: np.ndarray) -> None:
        if self.array is None:
            self.array = np.empty((self.n, *block.shape[1:]), dtype=self.dtype)
        self.array[start : start + len(block)] = block

    def finish(self) -> np.ndarray:
        return self.array

    def abort(self) -> None:
        self.array = None


class _CacheSink:
    """Rows of one layer appended to a cache entry; the writer opens at the first chunk,
    when the layer's shape is known."""

    def __init__(self, n: int, entry: CacheEntry, provenance: dict, pool: WritePool):
        self.n, self.entry, self.provenance, self.pool = n, entry, provenance, pool
        self.writer = None

    def write(self, start: int, block: np.ndarray) -> None:
        if self.writer is None:
            self.writer = self.entry.writer((self.n, *block.shape[1:]), self.provenance,
                                            self.pool)
        self.writer.write(block)

    def finish(self) -> np.ndarray:
        out = self.writer.commit()
        logger.debug("extract: wrote %s", self.entry.path)
        return out

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


_FLOAT16_MAX = float(np.finfo(np.float16).max)


def _to_numpy(name: str, t: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """One chunk of a layer on the CPU in ``dtype`` (no copy for float32 CPU tensors)."""
    t = t.detach()
    if dtype == np.float16 and t.dtype != torch.float16 and t.numel():
        peak = float(t.abs().amax())
        if peak > _FLOAT16_MAX:
            raise ValueError(
                f"Layer {name!r} has values up to {peak:.6g}, beyond the range of "
                f"dtype='float16' ({_FLOAT16_MAX:.0f}). Use dtype='float32'."
            )
    out = t.to(device="cpu", dtype=torch.float16 if dtype == np.float16 else torch.float32)
    return out.numpy()


def _forward(model, stimuli, targets, entries, *, batch_size, device, dtype, progress,
             provenance) -> dict[str, np.ndarray]:
    """Run the chunks through ``model``; every hooked layer writes its chunk to its sink
    as soon as it is computed (its tensor is then free to go), and the pass stops after
    the last layer needed."""
    n = len(stimuli)
    # the cache files of this pass share one writer thread and its staging blocks
    n_files = sum(e is not None for e in entries.values())
    pool = WritePool(n_files) if n_files else None
    sinks = {
        name: (_MemorySink(n, dtype) if entries[name] is None else
               _CacheSink(n, entries[name], dict(provenance, layer=name), pool))
        for name in targets
    }
    hooked = {k: m for k, m in targets.items() if m is not None}
    state = {"start": 0, "done": set()}

    def make_hook(name):
        def hook(module, inputs, output):
            if name in state["done"]:  # a module called twice in one pass: keep the first
                return
            if isinstance(output, (tuple, list)):
                output = output[0]
            if not torch.is_tensor(output):
                raise TypeError(f"Layer {name!r} returned {type(output).__name__}, not a tensor.")
            sinks[name].write(state["start"], _to_numpy(name, output, dtype))
            state["done"].add(name)
            if len(state["done"]) == len(hooked):
                raise _StopForward

        return hook

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
                state["start"] = start
                if PIXELS in targets:
                    sinks[PIXELS].write(start, _to_numpy(PIXELS, xb, dtype))
                if hooked:
                    state["done"] = set()
                    try:
                        model(xb.to(device))
                    except _StopForward:
                        pass
                    missing = set(hooked) - state["done"]
                    if missing:
                        raise ValueError(
                            f"Layer(s) {sorted(missing)} did not run in the model's forward "
                            "pass; choose modules that forward() calls."
                        )
        out = {name: sink.finish() for name, sink in sinks.items()}
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    finally:
        for h in handles:
            h.remove()
        model.to(home)
        model.train(was_training)
        if pool is not None:
            pool.close()
    return out
