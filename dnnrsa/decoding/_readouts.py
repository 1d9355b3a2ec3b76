"""Readouts trained on frozen features: the paper's head and a linear baseline, both
scikit-learn estimators, and the one check of their options."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from .._utils import (
    check_choice,
    check_positive_float,
    check_positive_int,
    check_seed,
    resolve_device,
    torch_seed,
)

READOUTS = ("paper", "linear")

#: The heads of `PaperReadout`.
HEADS = ("paper", "linear")

#: Samples per forward pass at prediction time: bounds memory on large conv maps.
_PREDICT_CHUNK = 512


def check_readout_options(*, epochs: Any = 100, batch_size: Any = 32, lr: Any = 0.1,
                          pool: Any = None, seed: Any = 0, momentum: Any = 0.9,
                          head: Any = "paper", device: Any = "auto") -> dict[str, Any]:
    """Validate the options of a readout before any work is spent on it.

    `make_readout` and `PaperReadout.fit` call it; so can a caller that is about to
    extract features or loop over many fits, to fail in the first second rather than
    the last hour. Every argument defaults to the paper's value, so a caller checks
    just the options it has.

    Parameters
    ----------
    epochs : int
        Passes over the training set, >= 1.
    batch_size : int
        Samples per SGD step, >= 1.
    lr : float
        Learning rate, finite and > 0.
    pool : int or None
        Average-pooling kernel, >= 1; None leaves the choice to the readout.
    seed : int
        Non-negative seed of initialisation and batch order.
    momentum : float
        SGD momentum in [0, 1).
    head : {"paper", "linear"}
        Head of `PaperReadout`.
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a torch.device;
        must be present on this machine.

    Returns
    -------
    dict
        The options normalised: ints as int, floats as float, ``device`` as a
        torch.device.

    Raises
    ------
    TypeError
        An option of the wrong type (a float number of epochs, a string learning rate).
    ValueError
        An option out of range, an unknown head, or a device this machine lacks.
    """
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise TypeError(f"Argument momentum must be a number in [0, 1), got {momentum!r}.")
    if not (math.isfinite(momentum) and 0 <= momentum < 1):
        # momentum >= 1 makes SGD's velocity grow without bound
        raise ValueError(f"Argument momentum must be a number in [0, 1), got {momentum}.")
    return dict(
        epochs=check_positive_int("epochs", epochs),
        batch_size=check_positive_int("batch_size", batch_size),
        lr=check_positive_float("lr", lr),
        pool=None if pool is None else check_positive_int("pool", pool),
        seed=check_seed("seed", seed),
        momentum=float(momentum),
        head=check_choice("head", head, HEADS),
        device=resolve_device(device),
    )


class _Head(nn.Module):
    def __init__(self, channels: int, size: tuple[int, int], n_classes: int, pool: int,
                 kind: str, mean=None, scale=None):
        super().__init__()
        self.kind = kind
        if kind == "paper":
            self.pool = min(pool, *size)
            # BatchNorm before Linear: the documented initialisation order (BatchNorm
            # draws nothing today, but the order is part of the seeding contract).
            self.norm = nn.BatchNorm2d(channels)
            n_in = channels * (size[0] // self.pool) * (size[1] // self.pool)
        else:
            n_in = channels * size[0] * size[1]
            # Inputs standardised with the training set's statistics: raw pixel values
            # (all positive, mean ~0.4) made SGD at lr 0.1 settle on one class.
            self.register_buffer("mean", torch.as_tensor(mean).reshape(1, -1))
            self.register_buffer("scale", torch.as_tensor(scale).reshape(1, -1))
        self.fc = nn.Linear(n_in, n_classes)

    def forward(self, x):
        if self.kind == "paper":
            x = F.avg_pool2d(F.relu(self.norm(x)), self.pool)
            return self.fc(torch.flatten(x, 1))
        return self.fc((torch.flatten(x, 1) - self.mean) / self.scale)


class PaperReadout(ClassifierMixin, BaseEstimator):
    """The readout of the CCN-2022 study, trained on frozen features.

    ``BatchNorm2d(C) -> ReLU -> avg_pool2d(pool) -> Linear(C * floor(H / pool) *
    floor(W / pool) -> classes)``, trained with SGD (lr 0.1, momentum 0.9, no weight
    decay, no schedule), batch 32, 100 epochs, mean cross-entropy. The BatchNorm's
    affine parameters are trained (the original script's attempt to freeze them had no
    effect; quirk 4 of PAPER.md). With ``head="linear"`` it is a single linear layer on
    the flattened input, trained the same way on inputs standardised with the training
    set's mean and (population) SD, a zero SD counting as 1: the study's pixel control.

    Parameters
    ----------
    epochs : int, default=100
        Passes over the training set.
    batch_size : int, default=32
        Samples per SGD step; the last batch of an epoch may be smaller.
    lr : float, default=0.1
        SGD learning rate.
    momentum : float, default=0.9
        SGD momentum, in [0, 1).
    pool : int, default=8
        Average-pooling kernel; clipped to the map size for small maps (flat features are
        1 x 1 maps, so the head is BatchNorm -> ReLU -> Linear on them).
    head : {"paper", "linear"}, default="paper"
        The study's head, or the linear pixel control.
    seed : int, default=0
        Seeds initialisation and batch order (see Notes): same seed, same weights on a
        CPU.
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"} or torch.device, default="auto"
        Where training runs; ``"auto"`` is CUDA when available, else the CPU.
        Prediction runs on the CPU.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    n_features_in_ : int
        Features per sample, ``C * H * W`` for maps.
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame.
    map_shape_ : tuple of int
        ``(C, H, W)`` of the training maps; ``(n_features, 1, 1)`` for flat features.
    module_ : torch.nn.Module
        The trained head, on the CPU, in eval mode.
    loss_curve_ : list of float
        Mean training loss of every epoch.

    Notes
    -----
    Input is ``(n_samples, n_features)`` or ``(n_samples, C, H, W)`` (a convolutional
    layer's maps). After fitting on maps, flat input of ``C * H * W`` columns is read as
    maps of the fitted shape.

    Seeding, so that a hand-written loop can reproduce a fit: the modules are created in
    the order BatchNorm2d, Linear inside ``torch_seed(seed)`` (torch's global generator
    seeded with ``seed``, the caller's state given back afterwards); each epoch visits the
    samples in the order ``torch.randperm(n, generator=g)`` of one
    ``g = torch.Generator().manual_seed(seed)`` made at the start of ``fit``, in
    consecutive batches of ``batch_size``. A batch BatchNorm cannot normalise (one sample
    of 1 x 1 maps) is skipped.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(40, 4, 8, 8))
    >>> y = np.arange(40) % 2
    >>> est = PaperReadout(epochs=2, device="cpu").fit(X, y)
    >>> est.decision_function(X).shape, est.predict_proba(X).shape
    ((40,), (40, 2))
    """

    def __init__(self, epochs: int = 100, batch_size: int = 32, lr: float = 0.1,
                 momentum: float = 0.9, pool: int = 8, head: str = "paper", seed: int = 0,
                 device: Any = "auto"):
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.pool = pool
        self.head = head
        self.seed = seed
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.classifier_tags.multi_label = False
        return tags

    def _validate_X(self, X, y=None, *, reset: bool):
        """``X`` as float32 maps (n, C, H, W) (and ``y`` checked when fitting), through
        scikit-learn's own validation so errors and feature bookkeeping match other
        estimators."""
        if not (hasattr(X, "ndim") and hasattr(X, "shape")):
            X = np.asarray(X)
        if X.ndim == 4:
            if not reset and tuple(X.shape[1:]) != self.map_shape_:
                raise ValueError(
                    f"Argument X has maps of shape {tuple(X.shape[1:])}, but the readout was "
                    f"fitted on maps of shape {self.map_shape_} (C, H, W). Pass features "
                    "of the layer it was fitted on."
                )
            shape = tuple(X.shape[1:])
            # Flattened for scikit-learn's checks, which count C * H * W features.
            X = np.asarray(X).reshape(len(X), -1)
        elif X.ndim == 3 or X.ndim > 4:
            raise ValueError(
                "Argument X must have shape (n_samples, n_features) or (n_samples, C, H, W), "
                f"got shape {tuple(X.shape)}."
            )
        else:
            shape = None  # 1-D and 0-D input get scikit-learn's "Reshape your data" error
        kwargs = dict(reset=reset, accept_sparse=False, dtype=np.float32,
                      ensure_all_finite=True)
        if reset:
            X, y = validate_data(self, X, y, **kwargs)
            self.map_shape_ = shape if shape is not None else (X.shape[1], 1, 1)
        else:
            X = validate_data(self, X, **kwargs)
        return X.reshape(len(X), *self.map_shape_), y

    def fit(self, X, y):
        """Train the head on features ``X`` and labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, C, H, W)
            Finite features.
        y : array-like of shape (n_samples,)
            Class labels, at least 2 distinct.

        Returns
        -------
        self : PaperReadout
        """
        opts = check_readout_options(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, pool=self.pool,
            seed=self.seed, momentum=self.momentum, head=self.head, device=self.device)
        pool = check_positive_int("pool", self.pool)  # None is make_readout's, not ours
        X, y = self._validate_X(X, y, reset=True)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y has {len(self.classes_)} class; a readout needs at least 2 classes."
            )
        n, channels, height, width = X.shape
        one_value_per_channel = opts["head"] == "paper" and height * width == 1
        if one_value_per_channel and opts["batch_size"] == 1:
            raise ValueError(
                "Argument batch_size=1 with head='paper' on flat features (1 x 1 maps) "
                "would train nothing: BatchNorm cannot normalise one value per channel. "
                "Use batch_size >= 2."
            )
        device = opts["device"]
        mean = scale = None
        if opts["head"] == "linear":
            flat = X.reshape(n, -1)
            mean, sd = flat.mean(0), flat.std(0)
            scale = np.where(sd > 0, sd, 1.0).astype(np.float32)
        with torch_seed(opts["seed"], device):
            head = _Head(channels, (height, width), len(self.classes_), pool, opts["head"],
                         mean=mean, scale=scale)
        head.to(device).train()
        opt = torch.optim.SGD(head.parameters(), lr=opts["lr"], momentum=opts["momentum"],
                              weight_decay=0.0)
        gen = torch.Generator().manual_seed(opts["seed"])
        # A read-only input (a memmap) is copied: torch refuses to wrap it.
        xd = torch.from_numpy(np.require(X, requirements="W")).to(device)
        yd = torch.from_numpy(codes.astype(np.int64)).to(device)
        bs = opts["batch_size"]
        self.loss_curve_ = []
        for _ in range(opts["epochs"]):
            order = torch.randperm(n, generator=gen).to(device)
            total = 0.0
            for i in range(0, n, bs):
                idx = order[i : i + bs]
                if len(idx) == 1 and one_value_per_channel:
                    continue
                loss = F.cross_entropy(head(xd[idx]), yd[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            self.loss_curve_.append(total / n)
        self.module_ = head.cpu().eval()
        return self

    @torch.no_grad()
    def _logits(self, X) -> torch.Tensor:
        check_is_fitted(self, "module_")
        X, _ = self._validate_X(X, reset=False)
        # torch.tensor copies each chunk, so a read-only input is fine.
        out = [self.module_(torch.tensor(X[i : i + _PREDICT_CHUNK]))
               for i in range(0, len(X), _PREDICT_CHUNK)]
        return torch.cat(out)  # never empty: validation refuses 0 samples

    def decision_function(self, X):
        """Class scores (logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, C, H, W)

        Returns
        -------
        ndarray of shape (n_samples,) for two classes, else (n_samples, n_classes)
            For two classes, the logit of ``classes_[1]`` minus that of ``classes_[0]``:
            positive means ``classes_[1]``, as in scikit-learn's linear classifiers.
        """
        logits = self._logits(X)
        if len(self.classes_) == 2:
            return (logits[:, 1] - logits[:, 0]).numpy()
        return logits.numpy()

    def predict_proba(self, X):
        """Class probabilities: the softmax of the logits.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, C, H, W)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; rows sum to 1.
        """
        return torch.softmax(self._logits(X).double(), dim=1).numpy()

    def predict_log_proba(self, X):
        """Log of `predict_proba`, computed without underflow.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, C, H, W)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return torch.log_softmax(self._logits(X).double(), dim=1).numpy()

    def predict(self, X):
        """The class of the largest logit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, C, H, W)

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        best = self._logits(X).argmax(1).numpy()  # first: raises NotFittedError if unfitted
        return self.classes_[best]


def _pool_flatten(X, pool):
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 4 and pool and pool > 1:
        k = min(pool, X.shape[2], X.shape[3])
        X = F.avg_pool2d(torch.from_numpy(X), k).numpy()
    return X.reshape(len(X), -1)


class OneThreadLogisticRegression(LogisticRegression):
    """scikit-learn's LogisticRegression, fitted with one BLAS thread.

    lbfgs on a few hundred rows spends its time in small matrix-vector products, which
    several BLAS threads do not speed up and, on a machine whose cores are busy, slow down
    by one to two orders of magnitude (OpenBLAS's threads wait for cores: measured on 2
    loaded cores, a 3-fold pixel readout of 252 faces took 44.9 s wall with the default
    threads and 0.38 s with one, same accuracy). One thread also gives the same
    coefficients on every machine, as the rest of dnnrsa does (the order of BLAS
    summations follows the thread count). Parameters and results are LogisticRegression's.
    """

    def fit(self, X, y, sample_weight=None):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return super().fit(X, y, sample_weight=sample_weight)


def linear_readout(pool: int | None = None, C: float = 1.0, max_iter: int = 2000):
    """Multinomial logistic regression on standardised, optionally average-pooled,
    flattened features (a scikit-learn pipeline), fitted with one BLAS thread
    (:class:`OneThreadLogisticRegression`)."""
    return make_pipeline(
        FunctionTransformer(_pool_flatten, kw_args={"pool": pool}),
        StandardScaler(),
        OneThreadLogisticRegression(C=C, max_iter=max_iter),
    )


def make_readout(readout: Any, *, pixels: bool = False, epochs: int = 100, pool: int | None = None,
                 batch_size: int = 32, lr: float = 0.1, seed: int = 0, device: Any = "auto"):
    """An unfitted estimator for ``readout`` (a name or a scikit-learn classifier).

    Parameters
    ----------
    readout : {"paper", "linear"} or scikit-learn classifier
        ``"paper"``: `PaperReadout` (its linear head when ``pixels``); ``"linear"``:
        `linear_readout`; or a classifier instance, cloned and placed after a step that
        average-pools (``pool``) and flattens the features.
    pixels : bool, default=False
        The features are pixel values: the paper readout uses its linear head.
    epochs, batch_size, lr : int, int, float
        Options of the paper readout; checked whatever ``readout`` is.
    pool : int or None, default=None
        Pooling kernel; None is 8 for the paper readout and no pooling for the others.
    seed : int, default=0
        Seed of the paper readout. A classifier instance whose ``random_state`` is None
        gets ``random_state=seed``, so that decoding is reproducible; an explicit
        ``random_state`` (an int or a RandomState) is kept.
    device : str or torch.device, default="auto"
        Where the paper readout trains; ``"auto"`` is CUDA when available, else the CPU.

    Returns
    -------
    estimator
        Unfitted; the caller clones it for every fit.
    """
    check_readout_options(epochs=epochs, batch_size=batch_size, lr=lr, pool=pool, seed=seed,
                          device=device)
    if isinstance(readout, str):
        check_choice("readout", readout, READOUTS,
                     hint="Or pass any scikit-learn classifier instance.")
        if readout == "paper":
            return PaperReadout(epochs=epochs, batch_size=batch_size, lr=lr,
                                pool=8 if pool is None else pool,
                                head="linear" if pixels else "paper", seed=seed, device=device)
        return linear_readout(pool=pool)
    if hasattr(readout, "fit") and hasattr(readout, "predict"):
        est = clone(readout)
        params = est.get_params(deep=False)
        if "random_state" in params and params["random_state"] is None:
            est.set_params(random_state=seed)
        return make_pipeline(FunctionTransformer(_pool_flatten, kw_args={"pool": pool}), est)
    raise ValueError(
        f"Unknown value {readout!r} for argument readout. Valid values are "
        "{paper, linear} or a scikit-learn classifier instance."
    )
