"""The epoch loop that every way of training shares (one network, several as one grouped
network, several on threads), with what it records: the checked options of one
:func:`dnnrsa.zoo.train` call (:class:`_Run`), the per-epoch history, resumable states and
kept epochs through :mod:`._resume`, and the ``dnnrsa_info`` a trained network carries."""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._utils import hide_progress, logger
from . import _resume


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


@dataclass
class _Run:
    """The checked options and data of one call of :func:`train`."""

    x: torch.Tensor
    y: torch.Tensor
    xt: torch.Tensor | None
    yt: torch.Tensor | None
    classes: list
    target: str | None
    data_name: str | None
    epochs: int
    batch_size: int
    test_every: int
    augment: str | None
    device: torch.device
    precision: str
    channels_last: bool
    compile: bool
    progress: bool | None
    protocol: dict
    keep_epochs: frozenset = frozenset()
    on_keep: Callable | None = None
    #: seed -> (state path, owner, loaded state or None); empty without ``state``
    states: dict = field(default_factory=dict)
    state_every: int = 1
    data_sha: str | None = None

    def keeper(self, seeds: list[int], lone: torch.device | None):
        """The :class:`_resume.StateKeeper` of these members, None without states."""
        if not self.states:
            return None
        rows = [self.states[s] for s in seeds]
        return _resume.StateKeeper([r[0] for r in rows], [r[1] for r in rows],
                                   [r[2] for r in rows], self.state_every, lone=lone)

    def start(self, seed: int) -> int:
        """Epochs already done by ``seed`` (its loaded state's)."""
        row = self.states.get(seed)
        return row[2]["epochs_done"] if row and row[2] else 0

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.precision == "bf16")

    def optimizer(self, params):
        p = self.protocol
        if p["optimizer"] == "sgd":
            opt = torch.optim.SGD(params, lr=p["lr"], momentum=p["momentum"],
                                  weight_decay=p["weight_decay"])
        else:
            opt = torch.optim.Adam(params, lr=p["lr"], weight_decay=p["weight_decay"])
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=p["lr_step"],
                                                    gamma=p["lr_gamma"])


def _layout(run: _Run):
    return torch.channels_last if run.channels_last else torch.contiguous_format


@dataclass
class _Hooks:
    """What :func:`_fit` needs for states and kept epochs: the members (home copies),
    ``states()`` their current state dicts, the state keeper (or None) and the ensemble's
    dropout generators (None for a lone network, whose dropout draws from the global
    generators)."""

    models: list
    states: Callable[[], list[dict]]
    keeper: Any
    dropout: list | None


def _fit(net: nn.Module, step, seeds: list[int], run: _Run, score,
         hooks: _Hooks | None = None) -> list[TrainHistory]:
    """The epoch loop for K members: ``step(idx, flip)`` takes the members' batch indices
    (K, b) and flips (K, b) or None and returns the members' losses (K,), the loss to
    back-propagate and the members' correct counts (K,); ``score()`` the members' test
    accuracies. Member k's batch order and flips come from a generator seeded with
    ``seeds[k]``, drawn in the order of a lone run."""
    k, n, bs, device = len(seeds), len(run.x), run.batch_size, run.device
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    opt, sched = run.optimizer(net.parameters())
    hists = [TrainHistory() for _ in seeds]
    keeper = hooks.keeper if hooks is not None else None
    first, before = 0, 0.0
    if keeper is not None:
        before = keeper.restore(net, opt, sched, gens, hists, hooks.dropout, TrainHistory)
        first = keeper.start
    start = time.perf_counter()
    bar = tqdm(range(first, run.epochs), desc="train", unit="epoch",
               disable=hide_progress(run.progress), leave=False)
    for epoch in bar:
        net.train()
        orders = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)
        flips = None
        if run.augment == "hflip":
            flips = torch.stack([
                torch.cat([torch.rand(min(bs, n - i), generator=g) < 0.5
                           for i in range(0, n, bs)]) for g in gens]).to(device)
        # summed on the device in float64 (as Python floats would be): no sync per step
        total_loss = torch.zeros(k, dtype=torch.float64, device=device)
        correct = torch.zeros(k, dtype=torch.long, device=device)
        for i in range(0, n, bs):
            idx = orders[:, i : i + bs]
            with run.autocast():
                losses, loss, hits = step(idx, None if flips is None else flips[:, i : i + bs])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += losses.double() * idx.shape[1]
            correct += hits
        lr = opt.param_groups[0]["lr"]
        sched.step()
        due = ((epoch + 1) % run.test_every == 0 or epoch + 1 == run.epochs
               or epoch + 1 in run.keep_epochs)
        if run.xt is not None and due:
            with run.autocast():
                accs = score()
        else:
            accs = [None] * k
        for hist, loss_sum, hit, acc in zip(hists, total_loss.tolist(), correct.tolist(), accs):
            hist.epochs.append(epoch + 1)
            hist.lr.append(lr)
            hist.loss.append(loss_sum / n)
            hist.train_accuracy.append(hit / n)
            hist.test_accuracy.append(acc)
        h = hists[0]
        bar.set_postfix(loss=f"{h.loss[-1]:.3f}", acc=f"{h.train_accuracy[-1]:.2f}",
                        **({"test": f"{accs[0]:.2f}"} if accs[0] is not None else {}))
        logger.debug("epoch %d loss %s train %s test %s", epoch + 1,
                     [round(x.loss[-1], 4) for x in hists],
                     [round(x.train_accuracy[-1], 3) for x in hists], accs)
        done = epoch + 1
        write = keeper is not None and keeper.due(done)
        if write or done in run.keep_epochs:
            states = hooks.states()
            if done in run.keep_epochs:  # before the state: a resumed run never skips one
                for model, state, seed, hist in zip(hooks.models, states, seeds, hists):
                    run.on_keep(_snapshot(model, state, hist, seed, run, done), seed, done)
            if write:
                keeper.write(done, states, net, opt, sched, gens, hists, hooks.dropout,
                             before + time.perf_counter() - start)
    seconds = before + time.perf_counter() - start
    for hist in hists:
        hist.seconds = seconds
        hist.images_per_second = n * run.epochs / seconds if seconds > 0 else 0.0
    return hists


def _snapshot(model: nn.Module, state: dict, hist: TrainHistory, seed: int, run: _Run,
              epoch: int) -> nn.Module:
    """A CPU copy of ``model`` holding ``state``, in eval mode, with the ``dnnrsa_info``
    of a run stopped after ``epoch`` epochs."""
    snap = copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format)
    snap.load_state_dict(state)
    snap.eval()
    _record(snap, hist, seed, run, epoch=epoch)
    return snap


def _record(model: nn.Module, hist: TrainHistory, seed: int, run: _Run,
            epoch: int | None = None) -> None:
    """``model.dnnrsa_info`` after training (or after ``epoch`` epochs of it): what
    :func:`dnnrsa.zoo.save` writes."""
    epoch = run.epochs if epoch is None else epoch
    info = dict(getattr(model, "dnnrsa_info", {}) or {})
    protocol = dict(run.protocol)
    if run.precision != "fp32":  # fp32 sidecars stay as they were before the option
        protocol["precision"] = run.precision
    info.update(
        classes=[_jsonable(c) for c in run.classes], target=run.target, seed=int(seed),
        epoch=epoch,
        train_accuracy=hist.train_accuracy[epoch - 1] if epoch else None,
        test_accuracy=hist.test_accuracy[epoch - 1] if epoch and run.xt is not None else None,
        protocol=protocol,
    )
    info["data"] = dict(name=run.data_name, n_images=int(len(run.x)),
                        sha256=run.data_sha or _data_checksum(run.x, run.y))
    model.dnnrsa_info = info


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
