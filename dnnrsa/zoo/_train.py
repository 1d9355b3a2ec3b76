"""Training loop with the study's protocol as default."""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
import warnings
from collections.abc import Callable, Sequence
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
    hide_progress,
    logger,
    resolve_device,
    torch_seed,
)
from ..stimuli import StimulusSet
from . import _resume
from ._densenet import check_input_shape
from ._ensemble import EnsembleDenseNet, accuracy_together, check_models
from ._loop import (  # noqa: F401  (TrainHistory is public through dnnrsa.zoo)
    TrainHistory,
    _data_checksum,
    _fit,
    _Hooks,
    _layout,
    _n_outputs,
    _record,
    _Run,
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
    labels ``y`` (N,), the images cast to the model's floating dtype; the model's
    train/eval mode is restored afterwards."""
    batch_size = check_positive_int("batch_size", batch_size)
    device = resolve_device(device)
    dtype = _float_dtype(model, x.dtype)
    was_training = model.training
    model.eval()
    correct = 0
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device, dtype, non_blocking=True)
            pred = model(xb).argmax(1).cpu()
            correct += int((pred == y[i : i + batch_size]).sum())
    finally:
        model.train(was_training)
    return correct / max(len(x), 1)


def _float_dtype(model: nn.Module, default: torch.dtype) -> torch.dtype:
    """The dtype of the model's first floating parameter (its images are cast to it)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), default)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 256,
             device: Any = "auto") -> float:
    """Deprecated name of :func:`accuracy` (``dnnrsa.rsa.evaluate`` is the RSA one)."""
    warnings.warn("dnnrsa.zoo.evaluate was renamed dnnrsa.zoo.accuracy (dnnrsa.rsa.evaluate "
                  f"is another function); the old name stops working in dnnrsa "
                  f"{REMOVAL_VERSION}.", FutureWarning, stacklevel=2)
    return accuracy(model, x, y, batch_size=batch_size, device=device)


#: The ``precision`` options of :func:`train`.
PRECISIONS = ("auto", "fp32", "bf16")


def train(
    model: nn.Module | Sequence[nn.Module],
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
    seed: int | None = None,
    seeds: Sequence[int] | None = None,
    device: Any = "auto",
    precision: str = "auto",
    channels_last: bool | None = None,
    compile: bool = False,
    progress: bool | None = None,
    state: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    state_every: int = 1,
    resume: bool = False,
    keep_epochs: Sequence[int] | None = None,
    on_keep: Callable[[nn.Module, int, int], None] | None = None,
) -> TrainHistory | list[TrainHistory]:
    """Train a classifier, or several seeds of one at once, with the study's protocol as
    default.

    SGD with momentum 0.9, learning rate ``0.1 * 0.5 ** (epoch // 30)``, 200 epochs,
    batch 64, cross-entropy. The model is left in eval mode on its original device, and
    ``model.dnnrsa_info`` records classes, target, seed, epochs and test accuracy, which
    :func:`dnnrsa.zoo.save` writes to the checkpoint's sidecar. The whole training set
    stays on the device; batches are drawn and flipped there.

    Given a list of models and one seed per model, the models train together: each is
    trained in place, exactly as it would be alone with its seed (its own initialisation,
    batch order, flips and dropout), and gets the ``dnnrsa_info`` it would get alone.
    :class:`CCNDenseNet` networks of equal ``config`` run at once: on a GPU as one grouped
    network, on a CPU each on a thread of its own with one torch thread (as many at once as
    torch has threads, see :data:`CPU_TOGETHER`), so a member's weights do not depend on
    the number of cores. Both beat one after another (``benchmarks/bench_train.py``: 10
    quick nets on 2 cores, 1.6x). Other networks train one after another.

    Parameters
    ----------
    model : torch.nn.Module or list of torch.nn.Module
        The network, or networks of one architecture (one per seed, each initialised by
        the caller, e.g. built under its own seed); the last layer must have as many
        outputs as there are classes.
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
    seed : int, optional
        Seeds batch order, dropout and augmentation of a single model (default 0): same
        seed, same weights on a CPU.
    seeds : sequence of int, optional
        With a list of models: one distinct seed per model, in the same order.
    device : {"auto", "cpu", "cuda", ...}
        Where to train; ``"auto"`` uses a GPU when there is one.
    precision : {"auto", "fp32", "bf16"}
        ``"bf16"`` runs forward passes under bfloat16 autocast (weights and optimiser stay
        float32); ``"auto"`` is bf16 on CUDA and fp32 elsewhere. A precision other than
        fp32 is recorded in ``dnnrsa_info["protocol"]["precision"]``.
    channels_last : bool, optional
        Train in the channels-last memory layout (same numbers up to rounding, faster
        convolution kernels). Default: on CUDA, and on a CPU for models trained together
        (oneDNN's kernels for these networks run 1.2-2.1 times faster in it, measured);
        off for one model on a CPU, so that a lone run keeps the numbers it always had.
    compile : bool
        Run the network through ``torch.compile`` (pays a compilation of tens of seconds
        up front; for long runs on a GPU).
    progress : bool, optional
        Show a tqdm progress bar (default: only when writing to a terminal).
    state : path or list of paths, optional
        Make the run resumable: every ``state_every`` epochs and after the last one, write
        each network's training state (weights, BatchNorm buffers, optimiser, scheduler,
        every random generator still to be drawn from, epochs done, history so far, and
        what the run is: seed, protocol, data checksums, architecture, epochs, device
        type) to its file, atomically. One path for one model, one per model (in the
        order of ``seeds``) for a list: a file per network, so that each seed resumes on
        its own. The file of the last epoch is left in place (a caller that saves a
        checkpoint removes it afterwards, as :func:`train_variant` does).
    state_every : int
        How many epochs between state writes (default 1: a state of a few MB per epoch).
    resume : bool
        Continue each network from its ``state`` file where there is one (trains from
        scratch, logged, where there is none). On a CPU a resumed run ends bit-identical
        (weights, buffers, history) to one never interrupted. A state of another run
        (other seed, protocol, data, architecture, epochs or device type), or a corrupt
        one, is refused with a ValueError naming the file, before any training. Without
        ``resume`` an existing file is ignored (logged) and overwritten. The option is
        explicit, rather than resuming whenever a file exists, so that a fresh run is
        never silently continued from an old file.
    keep_epochs : sequence of int, optional
        Epochs (from 1 to ``epochs``, distinct) after which ``on_keep`` gets each network;
        the test set is also scored after them.
    on_keep : callable, optional
        ``on_keep(model, seed, epoch)``, with ``model`` a CPU copy of the network in eval
        mode as it is after ``epoch`` epochs, its ``dnnrsa_info`` that of a run of
        ``epoch`` epochs. Called before the state of that epoch is written (so a resumed
        run never skips one); from worker threads for models trained together on a CPU.

    Returns
    -------
    TrainHistory or list of TrainHistory
        One history, or one per model (in the order of ``seeds``) for a list. Models
        trained together share ``seconds``; each history's ``images_per_second`` counts
        that model's images, so their sum is the aggregate rate.

    Raises
    ------
    ValueError
        A bad option, ``seeds`` with a single model, ``seed`` and ``seeds`` together,
        as many seeds as models missing, a seed twice, a model twice, or models of
        different architectures; all before any work.
    TypeError
        ``model`` not a network or a list of networks.

    Examples
    --------
    >>> nets = []  # doctest: +SKIP
    >>> for s in (0, 1, 2):  # doctest: +SKIP
    ...     torch.manual_seed(s)  # each network its own initialisation
    ...     nets.append(dnnrsa.zoo.build("ccn2022", n_classes=7))
    >>> histories = dnnrsa.zoo.train(nets, stim, target="expression",
    ...                              seeds=[0, 1, 2])  # doctest: +SKIP
    """
    epochs = check_positive_int("epochs", epochs, 1)
    batch_size = check_positive_int("batch_size", batch_size, 1)
    lr = check_positive_float("lr", lr)
    lr_step = check_positive_int("lr_step", lr_step, 1)
    lr_gamma = check_positive_float("lr_gamma", lr_gamma)
    test_every = check_positive_int("test_every", test_every, 1)
    if not 0.0 <= float(momentum) < 1.0:
        raise ValueError(f"Argument momentum must be in [0, 1), got {momentum!r}.")
    if not 0.0 <= float(weight_decay) < float("inf"):
        raise ValueError(f"Argument weight_decay must be a finite number >= 0, got {weight_decay!r}.")
    check_choice("augment", augment, [None, "hflip"])
    check_choice("optimizer", optimizer, ["sgd", "adam"])
    models, seed_list, together = check_models(model, seed, seeds)
    state_paths = _resume.check_state_options(state, state_every, resume,
                                              n_models=len(models),
                                              single=isinstance(model, nn.Module))
    keep = _resume.check_keep_epochs(keep_epochs, epochs)
    if keep and not callable(on_keep):
        raise TypeError(f"Argument on_keep must be a callable on_keep(model, seed, epoch) "
                        f"with keep_epochs={list(keep)}, got {on_keep!r}.")
    if on_keep is not None and not keep:
        raise ValueError("Argument on_keep was given without keep_epochs: name the epochs "
                         "to keep, e.g. keep_epochs=[5, 10].")
    device = resolve_device(device)
    check_speed_options(precision, channels_last, compile)
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if channels_last is None:
        channels_last = device.type == "cuda" or together
    x, y, classes = _as_tensors(data, target, None, "data")
    for m in models[:1] if together else models:
        check_input_shape(m, x.shape[1:], "data")
        n_out = _n_outputs(m)
        if n_out is not None and len(classes) > n_out:
            raise ValueError(
                f"The data have {len(classes)} classes of {target!r} but the model has {n_out} "
                f"outputs; build it with n_classes={len(classes)}."
            )
    xt = yt = None
    if test is not None:
        xt, yt, _ = _as_tensors(test, target, classes, "test")
    run = _Run(x=x, y=y, xt=xt, yt=yt, classes=classes, target=target,
               data_name=getattr(data, "name", None), epochs=epochs, batch_size=batch_size,
               test_every=test_every, augment=augment, device=device, precision=precision,
               channels_last=channels_last, compile=compile, progress=progress,
               protocol=dict(optimizer=optimizer, batch_size=batch_size, lr=lr,
                             momentum=momentum, lr_step=lr_step, lr_gamma=lr_gamma,
                             weight_decay=weight_decay, augment=augment),
               keep_epochs=frozenset(keep), on_keep=on_keep)
    if state_paths is not None or keep:
        run.data_sha = _data_checksum(x, y)
    if state_paths is not None:
        test_sha = None if xt is None else _data_checksum(xt, yt)
        owners = [_resume.owner(m, s, epochs=epochs, test_every=test_every,
                                protocol=run.protocol, precision=precision, classes=classes,
                                target=target, data_sha=run.data_sha, n_images=len(x),
                                test_sha=test_sha, device=device)
                  for m, s in zip(models, seed_list)]
        payloads = _resume.open_states(state_paths, owners, resume)  # all before any work
        run.states = {s: (p, o, d) for s, p, o, d in zip(seed_list, state_paths, owners,
                                                         payloads)}
        run.state_every = state_every
    if isinstance(model, nn.Module):
        return _train_one(model, seed_list[0], run)
    if together:
        if device.type == "cpu" and CPU_TOGETHER == "threads":
            return _train_threads(models, seed_list, run)
        return _train_together(models, seed_list, run)
    logger.info("train: the %d networks (%s) are not CCNDenseNets whose weights are all "
                "trainable, of one dtype (float32 or float64); training them one after another "
                "(same results, not batched).", len(models), type(models[0]).__name__)
    return [_train_one(m, s, run) for m, s in zip(models, seed_list)]


def check_speed_options(precision: str, channels_last: bool | None, compile: bool) -> None:
    """Raise a clear error for a bad ``precision``, ``channels_last`` or ``compile`` of
    :func:`train` (which ask for speed, not for other weights)."""
    check_choice("precision", precision, PRECISIONS)
    if channels_last is not None and not isinstance(channels_last, bool):
        raise TypeError(f"Argument channels_last must be True, False or None (default: on "
                        f"CUDA, and for models trained together), got {channels_last!r}.")
    if not isinstance(compile, bool):
        raise TypeError(f"Argument compile must be True or False, got {compile!r}.")


def _train_one(model: nn.Module, seed: int, run: _Run) -> TrainHistory:
    """The training loop of one network (the reference a batched run must equal)."""
    device, fmt = run.device, _layout(run)
    home_device = next(model.parameters()).device
    keeper = run.keeper([seed], device)
    if keeper is not None:
        keeper.load_weights([model])
    model.to(device)
    if run.channels_last:
        model.to(memory_format=torch.channels_last)
    # Whole data set on the device once: these sets are small (28k x 48 x 48 = 260 MB float32).
    xd, yd = run.x.to(device, _float_dtype(model, run.x.dtype)), run.y.to(device)
    net = torch.compile(model) if run.compile else model

    def step(idx, flip):
        idx = idx[0]
        xb, yb = xd[idx], yd[idx]
        if flip is not None:
            xb = torch.where(flip[0][:, None, None, None], xb.flip(-1), xb)
        out = net(xb.contiguous(memory_format=fmt))
        loss = F.cross_entropy(out, yb)
        return loss.detach()[None], loss, (out.detach().argmax(1) == yb).sum()[None]

    def score():
        return [accuracy(net, run.xt, run.yt, device=device)]

    def states():
        return [{key: v.detach().cpu() for key, v in model.state_dict().items()}]

    try:
        with torch_seed(seed, device):  # dropout draws from the global generators
            (hist,) = _fit(model, step, [seed], run, score,
                           _Hooks([model], states, keeper, None))
    finally:
        model.eval()
        if run.channels_last:
            model.to(memory_format=torch.contiguous_format)
        model.to(home_device)
    _record(model, hist, seed, run)
    return hist


def _train_together(models: list[nn.Module], seeds: list[int], run: _Run) -> list[TrainHistory]:
    """Train CCNDenseNets of one config as one grouped network; copy the weights back."""
    if len({run.start(s) for s in seeds}) > 1:
        return _train_by_start(models, seeds, run)
    k, device, fmt = len(models), run.device, _layout(run)
    dtype = _float_dtype(models[0], run.x.dtype)
    keeper = run.keeper(seeds, None)
    if keeper is not None:
        keeper.load_weights(models)  # before the ensemble copies them in
    ensemble = EnsembleDenseNet.from_members(models, device=device, dtype=dtype)
    if run.channels_last:
        ensemble.to(memory_format=torch.channels_last)
    dropout_gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    ensemble.set_generators(dropout_gens)
    xd, yd = run.x.to(device, dtype), run.y.to(device)
    c, h, w = xd.shape[1:]
    net = torch.compile(ensemble) if run.compile else ensemble
    dropout = ensemble.has_dropout
    per_member_loss = device.type == "cpu"

    def step(idx, flip):
        xb = xd[idx]  # (K, b, C, H, W): each member its own batch
        if flip is not None:
            xb = torch.where(flip[..., None, None, None], xb.flip(-1), xb)
        b = idx.shape[1]
        xb = xb.transpose(0, 1).reshape(b, k * c, h, w).contiguous(memory_format=fmt)
        yb = yd[idx]
        if dropout:  # masks in the dtype of the activations they scale, as alone
            ensemble.draw_dropout(b, torch.bfloat16 if run.precision == "bf16"
                                  and dtype == torch.float32 else dtype)
        out = net(xb)  # (K, b, n_classes)
        # each member's mean loss (their sum gives each member its own gradient): on a CPU
        # computed as alone, to the bit; elsewhere in one kernel, fewer launches
        if per_member_loss:
            losses = torch.stack([F.cross_entropy(out[i], yb[i]) for i in range(k)])
        else:
            losses = F.cross_entropy(out.reshape(k * b, -1), yb.reshape(-1),
                                     reduction="none").view(k, b).mean(1)
        return losses.detach(), losses.sum(), (out.detach().argmax(-1) == yb).sum(1)

    if run.xt is not None:
        xt, yt = run.xt.to(device, dtype), run.yt.to(device)

    def score():
        return accuracy_together(net, xt, yt, k, fmt)

    hists = _fit(ensemble, step, seeds, run, score,
                 _Hooks(models, ensemble.member_states, keeper, dropout_gens))
    ensemble.store_members(models)
    for model, seed, hist in zip(models, seeds, hists):
        model.eval()
        _record(model, hist, seed, run)
    return hists


def _train_by_start(models: list[nn.Module], seeds: list[int], run: _Run) -> list[TrainHistory]:
    """Members resuming from different epochs (a run killed between two members' state
    writes) train as one grouped network per starting epoch."""
    groups: dict[int, list[int]] = {}
    for i, s in enumerate(seeds):
        groups.setdefault(run.start(s), []).append(i)
    logger.info("train: the seeds resume from different epochs (%s); training one group "
                "per epoch", {e: [seeds[i] for i in idx] for e, idx in groups.items()})
    hists: list[TrainHistory | None] = [None] * len(models)
    for idx in groups.values():
        for i, h in zip(idx, _train_together([models[i] for i in idx], [seeds[i] for i in idx],
                                             run)):
            hists[i] = h
    return hists


#: How CCNDenseNets trained together run on a CPU: ``"threads"`` (each member on a thread
#: of its own with one torch thread, as many at once as torch has threads) or
#: ``"grouped"`` (one grouped network, the GPU's way). Measured on 2 cores
#: (benchmarks/bench_train.py): oneDNN's grouped convolutions are 12-28% slower per FLOP
#: than ungrouped ones and these networks' small convolutions gain little from a second
#: thread, so on a CPU the members gain most from running side by side on the cores.
CPU_TOGETHER = "threads"


def _train_threads(models: list[nn.Module], seeds: list[int], run: _Run) -> list[TrainHistory]:
    """Train the members on ``min(K, torch.get_num_threads())`` threads, one torch thread
    each, every member as an ensemble of one (its dropout masks drawn from its own
    generator, never from the global one that threads would share). One torch thread per
    member also makes each member's numbers independent of how many cores the machine
    has. Histories share ``seconds`` (the whole call) as those of a grouped run do."""
    k = len(models)
    n_threads = min(k, torch.get_num_threads())
    quiet = dataclasses.replace(run, progress=False)
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for i in range(k):
        todo.put(i)
    hists: list[TrainHistory | None] = [None] * k
    errors: list[BaseException] = []
    bar = tqdm(total=k, desc="train", unit="seed", disable=hide_progress(run.progress),
               leave=False)
    lock = threading.Lock()

    def work():
        torch.set_num_threads(1)  # this thread's own count (OpenMP's is per thread)
        while not errors:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                (hists[i],) = _train_together([models[i]], [seeds[i]], quiet)
            except BaseException as exc:  # re-raised by the caller's thread
                errors.append(exc)
                return
            with lock:
                bar.update()

    start = time.perf_counter()
    threads = [threading.Thread(target=work, name=f"dnnrsa-train-{j}", daemon=True)
               for j in range(n_threads)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except BaseException:  # Ctrl-C: the workers stop after the member they are on
        errors.append(KeyboardInterrupt())
        raise
    finally:
        bar.close()
    if errors:
        raise errors[0]
    seconds = time.perf_counter() - start
    for hist in hists:
        hist.seconds = seconds
        hist.images_per_second = len(run.x) * run.epochs / seconds if seconds > 0 else 0.0
    return hists


