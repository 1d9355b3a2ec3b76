"""Many `PaperReadout` heads trained at once: the readout grid (network seeds x folds x
targets) and the permutation refits of one layer as one batched model per map shape.

Each head keeps its own initialisation, batch order, BatchNorm statistics and SGD state;
the heads of a group only share the arithmetic of each step. A head's result equals
``PaperReadout(seed=s, ...).fit(X[train], labels)`` up to floating-point rounding: the
batched step sums in another order and takes the parameters' gradients in closed form
(see `fit_readouts`' Notes for how far apart the two can drift).

A step gathers each head's batch rows from its source (one gather per source, whatever
the number of heads reading it) and runs a fixed sequence of batched tensor operations:
no Python loop over heads inside a step, so that on a GPU a group of many heads costs
about as many kernel launches as one head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from sklearn.utils.multiclass import check_classification_targets

from .._utils import check_positive_int, check_seed, logger, torch_seed
from ._readouts import PaperReadout, _Head, check_readout_options

__all__ = ["ReadoutJob", "fit_predict_readouts", "fit_readouts"]

#: Most bytes of gathered input one step may hold (float32 maps of all heads of a
#: chunk); a group larger than this is split. The step's scratch is twice this.
_STEP_BYTES = 256 * 2**20

#: On a CPU a chunk is sized to stay in the last-level cache: measured on a 32 MiB-L3
#: EPYC, the elementwise passes of a step ran 1.5-2x slower per head once the chunk
#: outgrew it (64 MiB), while the per-step overhead only matters for small maps, which
#: fit many heads in 4 MiB.
_CPU_STEP_BYTES = 4 * 2**20


@dataclass(frozen=True)
class ReadoutJob:
    """One head to train: ``PaperReadout(seed=seed).fit(source[train], labels)``.

    Parameters
    ----------
    source : ndarray of shape (n_rows, C, H, W) or (n_rows, n_features)
        Features; shared, never copied per job (jobs may share one array).
    train : ndarray of int of shape (n_train,)
        Rows of ``source`` to train on, in the order of ``labels``.
    labels : array-like of shape (n_train,)
        Class labels, at least 2 distinct.
    seed : int
        The head's seed (initialisation and batch order).
    test : ndarray of int, optional
        Rows of ``source`` to predict once trained (`fit_predict_readouts`).
    """

    source: Any
    train: Any
    labels: Any
    seed: int
    test: Any = None


class _Source:
    """A job's array as float32 (one conversion per array, not per job), its map shape
    and, while a chunk uses it, its tensor on the device."""

    def __init__(self, array: Any, index: int, check_finite: bool = True):
        if not (hasattr(array, "ndim") and hasattr(array, "shape")):
            array = np.asarray(array)
        if array.ndim not in (2, 4):
            raise ValueError(
                f"The source of job {index} must have shape (n_samples, n_features) or "
                f"(n_samples, C, H, W), got shape {tuple(array.shape)}."
            )
        if np.dtype(array.dtype).kind not in "fiub":
            raise TypeError(f"The source of job {index} must be numeric, got dtype "
                            f"{array.dtype}.")
        # As PaperReadout.fit converts; a read-only input (a memmap) is copied once
        # because torch refuses to wrap it.
        data = np.require(array, dtype=np.float32, requirements=["C", "W"])
        step = max(1, 2**22 // max(1, int(np.prod(data.shape[1:]))))  # bounded temporary
        for start in range(0, len(data) if check_finite else 0, step):
            if not np.isfinite(data[start : start + step]).all():
                raise ValueError(f"Input X contains NaN or infinity (the source of job "
                                 f"{index}).")
        self.shape = tuple(data.shape[1:]) if data.ndim == 4 else (data.shape[1], 1, 1)
        self.data = data
        self.n_rows = len(data)
        self.tensor = None

    def to(self, dev, pool: int | None = None) -> torch.Tensor:
        """The maps on ``dev`` as (n_rows, C, H * W), with ``pool`` in `_window_major`
        order (then a copy per array, kept until its last chunk)."""
        if self.tensor is None:
            maps = torch.from_numpy(self.data).view(self.n_rows, *self.shape).to(dev)
            self.tensor = (maps.flatten(2) if pool is None else _window_major(maps, pool))
        return self.tensor


def _window_major(maps: torch.Tensor, pool: int) -> torch.Tensor:
    """(n, C, H, W) maps as (n, C, H * W) with the pixels of each p x p window that
    avg_pool2d(p) averages side by side (windows in row-major order), followed by the
    pixels it leaves out (the floor's trailing rows and columns). BatchNorm's statistics
    are order-free and the ReLU elementwise, so only the window sums see the order, and
    they become sums of contiguous runs."""
    n, c, h, w = maps.shape
    p = min(pool, h, w)
    ph, pw = h // p, w // p
    if p == 1 or (h == p and w == p):
        return maps.reshape(n, c, h * w)
    out = torch.empty(n, c, h * w, dtype=maps.dtype, device=maps.device)
    q = ph * pw * p * p
    out[:, :, :q].view(n, c, ph, pw, p, p).copy_(
        maps[:, :, : ph * p, : pw * p].unflatten(2, (ph, p)).unflatten(4, (pw, p))
        .permute(0, 1, 2, 4, 3, 5))
    right = maps[:, :, : ph * p, pw * p :]
    r = right.shape[2] * right.shape[3]
    out[:, :, q : q + r].view_as(right).copy_(right)
    out[:, :, q + r :].view_as(maps[:, :, ph * p :]).copy_(maps[:, :, ph * p :])
    return out


class _Prepared(NamedTuple):
    source: _Source
    train: np.ndarray  # int64 rows of the source
    classes: np.ndarray
    codes: np.ndarray  # int64 class codes of the training rows
    seed: int
    test: np.ndarray | None  # int64 rows to predict


def _prepare(job: Any, index: int, sources: dict, check_finite: bool) -> _Prepared:
    if not isinstance(job, ReadoutJob):
        raise TypeError(f"Job {index} must be a ReadoutJob, got {type(job).__name__}.")
    source = sources.get(id(job.source))
    if source is None:
        source = sources[id(job.source)] = _Source(job.source, index, check_finite)
    train = _rows(job.train, "train", index, source.n_rows)
    labels = np.asarray(job.labels)
    if labels.shape != train.shape:
        raise ValueError(f"Job {index} has {len(train)} train rows but labels of shape "
                         f"{labels.shape}.")
    check_classification_targets(labels)
    classes, codes = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"y has {len(classes)} class; a readout needs at least 2 classes "
                         f"(job {index}).")
    seed = check_seed(f"seed of job {index}", job.seed)
    test = None
    if job.test is not None:
        test = _rows(job.test, "test", index, source.n_rows, empty_ok=True)
    return _Prepared(source, train, classes, codes.astype(np.int64), seed, test)


def _rows(rows: Any, what: str, index: int, n_rows: int, empty_ok: bool = False):
    rows = np.asarray(rows)
    if rows.ndim != 1 or (len(rows) and rows.dtype.kind not in "iu") or (
            not len(rows) and not empty_ok):
        raise ValueError(f"The {what} rows of job {index} must be a non-empty 1-D integer "
                         f"array, got {rows.dtype} of shape {rows.shape}.")
    if len(rows) and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError(f"The {what} rows of job {index} must lie in [0, {n_rows}), "
                         f"got {int(rows.min())}..{int(rows.max())}.")
    return rows.astype(np.int64)


def fit_readouts(jobs, *, epochs: int = 100, batch_size: int = 32, lr: float = 0.1,
                 momentum: float = 0.9, pool: int = 8, head: str = "paper",
                 device: Any = "auto", max_step_bytes: int | None = None,
                 check_finite: bool = True) -> list[PaperReadout]:
    """Train many `PaperReadout` heads together; each as if it were trained alone.

    Jobs with the same map shape and number of training rows take the same steps and form
    one group, trained as one batched model (split into chunks whose gathered input stays
    under ``max_step_bytes``). Each head is initialised exactly as `PaperReadout.fit` does
    (``torch_seed(seed)``, BatchNorm2d then Linear), visits its rows in the order of its own
    ``torch.Generator().manual_seed(seed)``, and has its own BatchNorm channels and SGD
    momentum; heads with fewer classes than others get logits of -inf for the missing
    classes, so their loss, gradients and weights are those of the unpadded head.

    Parameters
    ----------
    jobs : sequence of ReadoutJob
        The heads; their sources may be the same array or different ones.
    epochs, batch_size, lr, momentum, pool, head, device
        The options of `PaperReadout`, shared by all jobs.
    max_step_bytes : int, optional
        Bound on one step's gathered input; default 256 MiB on an accelerator and a
        cache-sized 4 MiB on a CPU.
    check_finite : bool, default=True
        Refuse NaN or infinite features (False: the caller has checked them).

    Returns
    -------
    list of PaperReadout
        Fitted, in the order of ``jobs``: ``classes_``, ``n_features_in_``,
        ``map_shape_``, ``module_`` (on the CPU, in eval mode) and ``loss_curve_`` as
        `PaperReadout.fit` sets them.

    Notes
    -----
    On features with many identical values (the uniform background of rendered faces),
    float32 training is sensitive to rounding wherever a BatchNorm output crosses the
    ReLU's zero: a float32 `PaperReadout` and a float64 one then differ by ~1e-4 in their
    weights after a few epochs, and the batched heads differ from either by as much (they
    are no further from float64 than the loop is). On continuous features they agree with
    the loop to ~1e-6.
    """
    return _fit(jobs, dict(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
                           pool=pool, head=head, device=device), max_step_bytes,
                check_finite, predict=False)[0]


def fit_predict_readouts(jobs, *, epochs: int = 100, batch_size: int = 32, lr: float = 0.1,
                         momentum: float = 0.9, pool: int = 8, head: str = "paper",
                         device: Any = "auto", max_step_bytes: int | None = None,
                         check_finite: bool = True):
    """`fit_readouts`, then each head predicts its job's ``test`` rows on the device
    where it trained, while the source is there.

    Parameters
    ----------
    jobs : sequence of ReadoutJob
        As for `fit_readouts`, with ``test`` rows where predictions are wanted.
    epochs, batch_size, lr, momentum, pool, head, device, max_step_bytes, check_finite
        As for `fit_readouts`.

    Returns
    -------
    fitted : list of PaperReadout
    predictions : list of ndarray or None
        Labels (from the head's ``classes_``) of each job's test rows; None for a job
        without. They equal ``fitted[i].predict(source[test])`` up to rounding of the
        forward pass (a label can differ only where two logits tie to ~1e-6).
    """
    return _fit(jobs, dict(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
                           pool=pool, head=head, device=device), max_step_bytes,
                check_finite, predict=True)


def _fit(jobs, options: dict, max_step_bytes, check_finite: bool, predict: bool):
    opts = check_readout_options(**options)
    pool = check_positive_int("pool", options["pool"])
    dev = opts["device"]
    if max_step_bytes is None:
        max_step_bytes = _CPU_STEP_BYTES if dev.type == "cpu" else _STEP_BYTES
    max_step_bytes = check_positive_int("max_step_bytes", max_step_bytes)
    sources: dict[int, _Source] = {}
    prepared = [_prepare(job, i, sources, check_finite) for i, job in enumerate(jobs)]
    if opts["head"] == "paper" and opts["batch_size"] == 1 and any(
            s.shape[1] * s.shape[2] == 1 for s in sources.values()):
        raise ValueError(
            "Argument batch_size=1 with head='paper' on flat features (1 x 1 maps) "
            "would train nothing: BatchNorm cannot normalise one value per channel. "
            "Use batch_size >= 2."
        )
    estimators, modules = [], []
    for src, train, classes, _, seed, _ in prepared:
        est = PaperReadout(**options, seed=seed)
        est.classes_ = classes
        est.n_features_in_ = int(np.prod(src.shape))
        est.map_shape_ = src.shape
        mean = scale = None
        if opts["head"] == "linear":
            # As PaperReadout.fit: the training rows' statistics, computed by numpy on the
            # same contiguous float32 copy, so they match bit for bit.
            flat = src.data[train].reshape(len(train), -1)
            mean, sd = flat.mean(0), flat.std(0)
            scale = np.where(sd > 0, sd, 1.0).astype(np.float32)
        with torch_seed(seed, dev):
            modules.append(_Head(src.shape[0], src.shape[1:], len(classes), pool,
                                 opts["head"], mean=mean, scale=scale))
        estimators.append(est)

    groups: dict[tuple, list[int]] = {}
    for i, job in enumerate(prepared):
        groups.setdefault((job.source.shape, len(job.train)), []).append(i)
    chunks = []
    for (shape, n), members in groups.items():
        # heads of one source side by side: each source is one gather per step
        order = {s: r for r, s in enumerate(dict.fromkeys(prepared[i].source for i in members))}
        members = sorted(members, key=lambda i: order[prepared[i].source])
        per_head = min(opts["batch_size"], n) * int(np.prod(shape)) * 4
        size = max(1, max_step_bytes // per_head)
        chunks.extend(members[i : i + size] for i in range(0, len(members), size))
    last_use = {}
    for c, chunk in enumerate(chunks):
        for i in chunk:
            last_use[prepared[i].source] = c
    logger.debug("fit_readouts: %d heads in %d batched chunks on %s", len(jobs), len(chunks),
                dev)
    predictions = [None] * len(prepared)
    for c, chunk in enumerate(chunks):
        curves, codes = _train_chunk([prepared[i] for i in chunk],
                                     [modules[i] for i in chunk], opts, pool, dev, predict)
        for i, curve, best in zip(chunk, curves, codes, strict=True):
            estimators[i].loss_curve_ = curve
            estimators[i].module_ = modules[i].cpu().eval()
            if best is not None:
                predictions[i] = estimators[i].classes_[best]
        for src in {prepared[i].source for i in chunk}:
            if last_use[src] == c:
                src.tensor = None  # frees the device copy
    return estimators, predictions


class _Stack:
    """The parameters of a chunk's heads, stacked, with their SGD momentum buffers."""

    def __init__(self, modules, kind: str, n_classes: list[int], dev):
        k = len(modules)
        fc = [m.fc for m in modules]
        width = max(n_classes)
        self.weight = torch.zeros(k, width, fc[0].in_features, device=dev)
        self.bias = torch.zeros(k, width, device=dev)
        for j, (lin, c) in enumerate(zip(fc, n_classes, strict=True)):
            self.weight[j, :c] = lin.weight.detach().to(dev)
            self.bias[j, :c] = lin.bias.detach().to(dev)
        # -inf logits for the classes a head does not have: softmax gives them 0, so
        # their gradients are 0 and the padded weights never move.
        self.pad = None
        if min(n_classes) < width:
            self.pad = torch.zeros(k, 1, width, device=dev)
            for j, c in enumerate(n_classes):
                self.pad[j, 0, c:] = -math.inf
        params = [self.weight, self.bias]
        if kind == "paper":
            norm = [m.norm for m in modules]
            self.gamma = torch.stack([b.weight.detach() for b in norm]).to(dev)
            self.beta = torch.stack([b.bias.detach() for b in norm]).to(dev)
            self.running_mean = torch.stack([b.running_mean for b in norm]).to(dev)
            self.running_var = torch.stack([b.running_var for b in norm]).to(dev)
            self.eps, self.bn_momentum = norm[0].eps, norm[0].momentum
            params += [self.gamma, self.beta]
        else:
            self.mean = torch.stack([m.mean[0] for m in modules]).to(dev)[:, None, :]
            self.scale = torch.stack([m.scale[0] for m in modules]).to(dev)[:, None, :]
        self.params = params
        self.velocity = [torch.zeros_like(p) for p in params]

    def step(self, grads, lr: float, momentum: float):
        """torch.optim.SGD(momentum, dampening 0, no weight decay), for every head at once:
        a zero buffer makes the first update ``buf = grad``, as torch's does."""
        for p, g, v in zip(self.params, grads, self.velocity, strict=True):
            v.mul_(momentum).add_(g)
            p.add_(v, alpha=-lr)


def _train_chunk(jobs, modules, opts, pool: int, dev, predict: bool):
    """Train one chunk (same map shape and number of rows) in place; return the loss
    curves and, with ``predict``, the class codes each head predicts for its test rows."""
    kind, bs, epochs = opts["head"], opts["batch_size"], opts["epochs"]
    k = len(jobs)
    c, h, w = jobs[0].source.shape
    n = len(jobs[0].train)
    n_classes = [len(j.classes) for j in jobs]
    stack = _Stack(modules, kind, n_classes, dev)
    # per source, the slice of heads reading it (heads are sorted by source)
    blocks, start = [], 0
    for j in range(1, k + 1):
        if j == k or jobs[j].source is not jobs[start].source:
            blocks.append((jobs[start].source.to(dev, pool if kind == "paper" else None),
                           start, j))
            start = j
    rows_all = torch.from_numpy(np.stack([j.train for j in jobs]))
    codes_all = torch.from_numpy(np.stack([j.codes for j in jobs]))
    gens = [torch.Generator().manual_seed(j.seed) for j in jobs]
    features = c * h * w
    width = 2 if kind == "paper" else 1
    scratch = torch.empty(width * k * min(bs, n) * features, device=dev)
    skip_single = kind == "paper" and h * w == 1
    losses = torch.zeros(epochs, k, dtype=torch.float64, device=dev)
    steps = 0
    for epoch in range(epochs):
        perm = torch.stack([torch.randperm(n, generator=g) for g in gens])
        rows = torch.gather(rows_all, 1, perm).to(dev)
        codes = torch.gather(codes_all, 1, perm).to(dev)
        for i in range(0, n, bs):
            b = min(bs, n - i)
            if b == 1 and skip_single:
                continue
            work = scratch[: width * k * b * features].view(width, k * b, c, h * w)
            for tensor, lo, hi in blocks:
                torch.index_select(tensor, 0, rows[lo:hi, i : i + b].reshape(-1),
                                   out=work[0, lo * b : hi * b])
            y = codes[:, i : i + b]
            if kind == "paper":
                loss = _paper_step(stack, work, k, b, (c, h, w), pool, y, opts)
            else:
                loss = _linear_step(stack, work[0].view(k, b, features), y, opts)
            losses[epoch] += loss.double() * b
            steps += 1
    curves = (losses / n).T.cpu().tolist()
    codes = [None] * k
    if predict:
        codes = [None if job.test is None else
                 _predict(stack, j, n_classes[j], blocks, scratch, job.test, kind, pool,
                          (c, h, w), dev)
                 for j, job in enumerate(jobs)]
    with torch.no_grad():
        for j, m in enumerate(modules):
            m.fc.weight.copy_(stack.weight[j, : n_classes[j]])
            m.fc.bias.copy_(stack.bias[j, : n_classes[j]])
            if kind == "paper":
                m.norm.weight.copy_(stack.gamma[j])
                m.norm.bias.copy_(stack.beta[j])
                m.norm.running_mean.copy_(stack.running_mean[j])
                m.norm.running_var.copy_(stack.running_var[j])
                m.norm.num_batches_tracked.fill_(steps)
    return curves, codes


def _softmax_grads(stack: _Stack, inputs, y):
    """Mean cross-entropy of every head on its batch, and the gradients of its linear
    layer: ``inputs`` (k, b, n_in) are the Linear's inputs."""
    b = inputs.shape[1]
    logits = torch.baddbmm(stack.bias[:, None, :], inputs, stack.weight.transpose(1, 2))
    if stack.pad is not None:
        logits += stack.pad
    logp = torch.log_softmax(logits, dim=-1)
    loss = -logp.gather(-1, y[..., None])[..., 0].mean(1)
    grad = logp.exp_()
    grad.scatter_add_(-1, y[..., None], torch.full_like(grad[..., :1], -1.0))
    grad /= b
    return loss, grad, torch.bmm(grad.transpose(1, 2), inputs), grad.sum(1)


def _linear_step(stack: _Stack, x, y, opts):
    """The linear head: standardise, Linear; ``x`` (k, b, n_features) is scratch."""
    x.sub_(stack.mean).div_(stack.scale)
    loss, _, d_weight, d_bias = _softmax_grads(stack, x, y)
    stack.step([d_weight, d_bias], opts["lr"], opts["momentum"])
    return loss


def _paper_step(stack: _Stack, work, k: int, b: int, shape, pool: int, y, opts):
    """BatchNorm2d (training) -> ReLU -> avg_pool2d -> Linear for every head, and its SGD
    step. ``work[0]`` holds the gathered maps; both halves of ``work`` are scratch.

    Gradients are taken for the parameters only (the features are frozen): with the ReLU
    mask M and centred input xc of a window, the pooled output is ``(a * sum(M xc) +
    beta * sum(M)) / area`` with ``a = gamma / sd``, so the window sums of ``M xc`` and
    ``M`` carry all that the backward pass needs, and no map-sized gradient is formed.
    """
    c, h, w = shape
    p = min(pool, h, w)
    area = float(p * p)
    count = b * h * w
    x = work[0].view(k, b, c, h * w)
    t = work[1].view(k, b, c, h * w)
    mean = x.sum(3).sum(1) / count
    x.sub_(mean[:, None, :, None])
    # centred second moment (no cancellation); a norm along the contiguous pixels reads
    # the maps once and writes nothing
    var = torch.linalg.vector_norm(x, dim=3).square_().sum(1) / count
    mom = stack.bn_momentum
    stack.running_mean.mul_(1 - mom).add_(mean, alpha=mom)
    stack.running_var.mul_(1 - mom).add_(var * (count / (count - 1)), alpha=mom)
    inv_sd = torch.rsqrt(var + stack.eps)
    a = stack.gamma * inv_sd
    torch.mul(x, a[:, None, :, None], out=t)
    t.gt_(-stack.beta[:, None, :, None])  # the ReLU mask: a * xc + beta > 0
    x.mul_(t)
    q = (h // p) * (w // p)
    sums = (work.view(2, k, b, c, h * w) if p == 1 else
            work.view(2 * k * b * c, h * w)[:, : q * p * p].unflatten(1, (q, p * p)).sum(-1)
            .view(2, k, b, c, q))
    masked, active = sums[0], sums[1]
    pooled = (a[:, None, :, None] * masked + stack.beta[:, None, :, None] * active) / area
    loss, grad, d_weight, d_bias = _softmax_grads(stack, pooled.reshape(k, b, -1), y)
    d_pooled = torch.bmm(grad, stack.weight).view(k, b, c, -1) / area
    d_beta = (d_pooled * active).sum((1, 3))
    d_gamma = (d_pooled * masked).sum((1, 3)) * inv_sd
    stack.step([d_weight, d_bias, d_gamma, d_beta], opts["lr"], opts["momentum"])
    return loss


def _predict(stack: _Stack, j: int, n_classes: int, blocks, scratch, rows: np.ndarray,
             kind: str, pool: int, shape, dev) -> np.ndarray:
    """Class codes of head ``j`` for ``rows`` of its source: the eval-mode forward
    (BatchNorm with the running statistics), on the device, in slices of the scratch."""
    c, h, w = shape
    tensor = next(t for t, lo, hi in blocks if lo <= j < hi)
    weight, bias = stack.weight[j, :n_classes], stack.bias[j, :n_classes]
    if kind == "paper":
        p = min(pool, h, w)
        q = (h // p) * (w // p)
        alpha = stack.gamma[j] / torch.sqrt(stack.running_var[j] + stack.eps)
        shift = (stack.beta[j] - stack.running_mean[j] * alpha)[:, None]
        alpha = alpha[:, None]
    step = max(1, scratch.numel() // (c * h * w))
    rows = torch.from_numpy(rows).to(dev)
    best = []
    for i in range(0, len(rows), step):
        idx = rows[i : i + step]
        x = scratch[: len(idx) * c * h * w].view(len(idx), c, h * w)
        torch.index_select(tensor, 0, idx, out=x)
        if kind == "paper":
            x.mul_(alpha).add_(shift).relu_()
            x = x[:, :, : q * p * p].unflatten(2, (q, p * p)).sum(-1) / float(p * p)
        else:
            x = x.view(len(idx), -1).sub_(stack.mean[j]).div_(stack.scale[j])
        best.append(torch.addmm(bias, x.reshape(len(idx), -1), weight.T).argmax(1))
    return (torch.cat(best) if best else torch.zeros(0, dtype=torch.long)).cpu().numpy()
