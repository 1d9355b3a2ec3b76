"""Training loop with the study's protocol as default."""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .._utils import (
    REMOVAL_VERSION,
    check_choice,
    check_positive_float,
    check_positive_int,
    check_seed,
    hide_progress,
    logger,
    resolve_device,
    torch_seed,
)
from ..stimuli import StimulusSet
from ._densenet import check_input_shape


@dataclass
class TrainHistory:
    """Per-epoch record of a training run."""

    epochs: list[int] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float | None] = field(default_factory=list)
    seconds: float = 0.0
    images_per_second: float = 0.0

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            {
                "epoch": self.epochs, "lr": self.lr, "loss": self.loss,
                "train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy,
            }
        )


def _as_tensors(data: Any, target: str | None, classes: Sequence | None, argument: str):
    """(images, labels, classes) from a StimulusSet or a (images, labels) tensor pair."""
    if isinstance(data, StimulusSet):
        if target is None:
            raise ValueError(
                f"Argument target is needed when {argument} is a StimulusSet: name the factor "
                f"to learn, one of {{{', '.join(data.factors)}}}."
            )
        data.check_factor(target)
        classes = data.classes(target) if classes is None else list(classes)
        return data.tensor(), torch.from_numpy(data.labels(target, classes)), classes
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = (torch.as_tensor(np.asarray(a)) if not torch.is_tensor(a) else a for a in data)
        if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(
                f"Argument {argument} as a pair must be (images of shape (N, C, H, W), labels of "
                f"shape (N,)), got shapes {tuple(x.shape)} and {tuple(y.shape)}."
            )
        y = y.long()
        if classes is None:
            classes = list(range(int(y.max()) + 1))
        return x.float(), y, list(classes)
    raise TypeError(
        f"Argument {argument} must be a StimulusSet or an (images, labels) pair, "
        f"got {type(data).__name__}."
    )


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 256,
             device: Any = "auto") -> float:
    """Top-1 accuracy of a classifier ``model`` on images ``x`` (N, C, H, W) with integer
    labels ``y`` (N,); the model's train/eval mode is restored afterwards."""
    batch_size = check_positive_int("batch_size", batch_size)
    device = resolve_device(device)
    was_training = model.training
    model.eval()
    correct = 0
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device, non_blocking=True)
            pred = model(xb).argmax(1).cpu()
            correct += int((pred == y[i : i + batch_size]).sum())
    finally:
        model.train(was_training)
    return correct / max(len(x), 1)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 256,
             device: Any = "auto") -> float:
    """Deprecated name of :func:`accuracy` (``dnnrsa.rsa.evaluate`` is the RSA one)."""
    warnings.warn("dnnrsa.zoo.evaluate was renamed dnnrsa.zoo.accuracy (dnnrsa.rsa.evaluate "
                  f"is another function); the old name stops working in dnnrsa "
                  f"{REMOVAL_VERSION}.", FutureWarning, stacklevel=2)
    return accuracy(model, x, y, batch_size=batch_size, device=device)


def train(
    model: nn.Module,
    data: Any,
    *,
    target: str | None = None,
    test: Any = None,
    test_every: int = 1,
    epochs: int = 200,
    batch_size: int = 64,
    lr: float = 0.1,
    momentum: float = 0.9,
    lr_step: int = 30,
    lr_gamma: float = 0.5,
    weight_decay: float = 0.0,
    augment: str | None = None,
    optimizer: str = "sgd",
    seed: int = 0,
    device: Any = "auto",
    progress: bool | None = None,
) -> TrainHistory:
    """Train a classifier with the study's protocol as default.

    SGD with momentum 0.9, learning rate ``0.1 * 0.5 ** (epoch // 30)``, 200 epochs,
    batch 64, cross-entropy. The model is left in eval mode on its original device, and
    ``model.dnnrsa_info`` records classes, target, seed, epochs and test accuracy, which
    :func:`dnnrsa.zoo.save` writes to the checkpoint's sidecar.

    Parameters
    ----------
    model : torch.nn.Module
        The network; its last layer must have as many outputs as there are classes.
    data : StimulusSet or (images, labels)
        Training images of shape (n_images, C, H, W) and their labels (a factor of the
        StimulusSet named by ``target``).
    target : str, optional
        The factor to learn when ``data`` is a StimulusSet.
    test : StimulusSet or (images, labels), optional
        Held-out images, scored every ``test_every`` epochs and after the last.
    test_every : int
        How often to score ``test`` (scoring costs a forward pass over it).
    epochs, batch_size, lr, momentum, lr_step, lr_gamma, weight_decay
        The optimisation protocol (defaults: the paper's).
    optimizer : {"sgd", "adam"}
        ``"sgd"`` (the paper's, with ``momentum``) or ``"adam"`` (no momentum argument).
        The quick preset uses Adam: with a few thousand synthetic images and a few epochs,
        SGD at lr 0.1 stays on the initial loss plateau (measured: chance after 10 epochs
        of 1,400 images), while Adam at 2e-3 leaves it within 4 epochs.
    augment : {None, "hflip"}
        ``"hflip"`` flips each training image left-right with probability 0.5 (the CelebA
        identity networks of the paper; the paper's FER2013 flip never fired, so the
        expression networks train without it).
    seed : int
        Seeds batch order, dropout and augmentation: same seed, same weights on a CPU.
    device : {"auto", "cpu", "cuda", ...}
        Where to train; ``"auto"`` uses a GPU when there is one.
    progress : bool, optional
        Show a tqdm progress bar (default: only when writing to a terminal).

    Returns
    -------
    TrainHistory
    """
    epochs = check_positive_int("epochs", epochs, 0)
    batch_size = check_positive_int("batch_size", batch_size, 1)
    lr = check_positive_float("lr", lr)
    lr_step = check_positive_int("lr_step", lr_step, 1)
    lr_gamma = check_positive_float("lr_gamma", lr_gamma)
    test_every = check_positive_int("test_every", test_every, 1)
    seed = check_seed("seed", seed)
    if not 0.0 <= float(momentum) < 1.0:
        raise ValueError(f"Argument momentum must be in [0, 1), got {momentum!r}.")
    if not 0.0 <= float(weight_decay) < float("inf"):
        raise ValueError(f"Argument weight_decay must be a finite number >= 0, got {weight_decay!r}.")
    check_choice("augment", augment, [None, "hflip"])
    check_choice("optimizer", optimizer, ["sgd", "adam"])
    device = resolve_device(device)
    x, y, classes = _as_tensors(data, target, None, "data")
    check_input_shape(model, x.shape[1:], "data")
    n_out = _n_outputs(model)
    if n_out is not None and len(classes) > n_out:
        raise ValueError(
            f"The data have {len(classes)} classes of {target!r} but the model has {n_out} "
            f"outputs; build it with n_classes={len(classes)}."
        )
    if test is not None:
        xt, yt, _ = _as_tensors(test, target, classes, "test")
    home_device = next(model.parameters()).device
    model.to(device)

    gen = torch.Generator().manual_seed(seed)
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                              weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=lr_step, gamma=lr_gamma)
    hist = TrainHistory()
    # Whole data set on the device once: these sets are small (28k x 48 x 48 = 260 MB float32).
    xd, yd = x.to(device), y.to(device)
    n = len(xd)

    start = time.perf_counter()
    bar = tqdm(range(epochs), desc="train", unit="epoch", disable=hide_progress(progress),
               leave=False)
    with torch_seed(seed, device):  # dropout draws from the global generators
        for epoch in bar:
            model.train()
            order = torch.randperm(n, generator=gen).to(device)
            total_loss, correct = 0.0, 0
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                xb, yb = xd[idx], yd[idx]
                if augment == "hflip":
                    flip = (torch.rand(len(idx), generator=gen) < 0.5).to(device)
                    xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
                out = model(xb)
                loss = F.cross_entropy(out, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total_loss += float(loss.detach()) * len(idx)
                correct += int((out.detach().argmax(1) == yb).sum())
            hist.epochs.append(epoch + 1)
            hist.lr.append(opt.param_groups[0]["lr"])
            hist.loss.append(total_loss / n)
            hist.train_accuracy.append(correct / n)
            sched.step()
            due = (epoch + 1) % test_every == 0 or epoch + 1 == epochs
            acc = accuracy(model, xt, yt, device=device) if test is not None and due else None
            hist.test_accuracy.append(acc)
            bar.set_postfix(loss=f"{hist.loss[-1]:.3f}", acc=f"{hist.train_accuracy[-1]:.2f}",
                            **({"test": f"{acc:.2f}"} if acc is not None else {}))
            logger.debug("epoch %d loss %.4f train %.3f test %s", epoch + 1, hist.loss[-1],
                         hist.train_accuracy[-1], acc)
    hist.seconds = time.perf_counter() - start
    hist.images_per_second = n * epochs / hist.seconds if hist.seconds > 0 else 0.0
    model.eval()
    model.to(home_device)
    info = dict(getattr(model, "dnnrsa_info", {}) or {})
    info.update(
        classes=[_jsonable(c) for c in classes], target=target, seed=int(seed), epoch=epochs,
        train_accuracy=hist.train_accuracy[-1] if epochs else None,
        test_accuracy=hist.test_accuracy[-1] if epochs and test is not None else None,
        protocol=dict(optimizer=optimizer, batch_size=batch_size, lr=lr, momentum=momentum,
                      lr_step=lr_step,
                      lr_gamma=lr_gamma, weight_decay=weight_decay, augment=augment),
    )
    info["data"] = dict(name=getattr(data, "name", None), n_images=int(n),
                        sha256=_data_checksum(x, y))
    model.dnnrsa_info = info
    return hist


def _data_checksum(x: torch.Tensor, y: torch.Tensor) -> str:
    """Short SHA-256 of training images and labels: which data made these weights."""
    h = hashlib.sha256(x.contiguous().numpy().tobytes())
    h.update(y.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _jsonable(v):
    return v.item() if isinstance(v, np.generic) else v


def _n_outputs(model: nn.Module) -> int | None:
    last = None
    for m in model.modules():
        if isinstance(m, nn.Linear):
            last = m
    return None if last is None else last.out_features
