"""Readouts trained on frozen features: the paper's head and a linear baseline, both
scikit-learn estimators."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._utils import check_choice, resolve_device

READOUTS = ("paper", "linear")


def _as_maps(X: Any) -> np.ndarray:
    """(n, C, H, W) float32 from (n, C, H, W) or (n, F) input; flat features become
    1 x 1 maps."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 2:
        X = X[:, :, None, None]
    if X.ndim != 4:
        raise ValueError(
            f"Argument X must have shape (n_samples, n_features) or (n_samples, C, H, W), "
            f"got shape {X.shape}."
        )
    return X


class _Head(nn.Module):
    def __init__(self, channels: int, size: tuple[int, int], n_classes: int, pool: int,
                 kind: str, mean=None, scale=None):
        super().__init__()
        self.kind = kind
        if kind == "paper":
            self.pool = min(pool, *size)
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

    ``BatchNorm2d(C) -> ReLU -> avg_pool2d(pool) -> Linear(C * floor(H / pool)^2 -> classes)``,
    trained with SGD (lr 0.1, momentum 0.9, no weight decay, no schedule), batch 32,
    100 epochs, cross-entropy. The BatchNorm's affine parameters are trained (the original
    script's attempt to freeze them had no effect; quirk 4 of PAPER.md). With
    ``head="linear"`` it is a single linear layer on the flattened input, trained the same
    way on inputs standardised with the training set's mean and SD: the study's pixel
    control.

    Parameters
    ----------
    epochs, batch_size, lr, momentum
        The optimisation protocol (defaults: the paper's).
    pool : int
        Average-pooling kernel; clipped to the map size for small maps (flat features are
        1 x 1 maps, so the head is BatchNorm -> ReLU -> Linear on them).
    head : {"paper", "linear"}
    seed : int
        Seeds initialisation and batch order: same seed, same predictions on a CPU.
    device : {"cpu", "cuda", "auto", ...}
    """

    def __init__(self, epochs: int = 100, batch_size: int = 32, lr: float = 0.1,
                 momentum: float = 0.9, pool: int = 8, head: str = "paper", seed: int = 0,
                 device: Any = "cpu"):
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.pool = pool
        self.head = head
        self.seed = seed
        self.device = device

    def fit(self, X, y):
        check_choice("head", self.head, ("paper", "linear"))
        X = _as_maps(X)
        y = np.asarray(y)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)}.")
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y has {len(self.classes_)} class; a readout needs at least 2 classes."
            )
        if not np.isfinite(X).all():
            raise ValueError("Argument X contains NaN or Inf values.")
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        device = resolve_device(self.device)
        gen = torch.Generator().manual_seed(int(self.seed))
        torch.manual_seed(int(self.seed))
        mean = scale = None
        if self.head == "linear":
            flat = X.reshape(len(X), -1)
            mean, sd = flat.mean(0), flat.std(0)
            scale = np.where(sd > 0, sd, 1.0).astype(np.float32)
        head = _Head(X.shape[1], X.shape[2:], len(self.classes_), int(self.pool), self.head,
                     mean=mean, scale=scale)
        head.to(device).train()
        opt = torch.optim.SGD(head.parameters(), lr=self.lr, momentum=self.momentum)
        xd = torch.from_numpy(X).to(device)
        yd = torch.from_numpy(codes.astype(np.int64)).to(device)
        n = len(xd)
        self.loss_curve_ = []
        for _ in range(int(self.epochs)):
            order = torch.randperm(n, generator=gen).to(device)
            total = 0.0
            for i in range(0, n, self.batch_size):
                idx = order[i : i + self.batch_size]
                if len(idx) < 2 and self.head == "paper":
                    continue  # BatchNorm cannot normalise a batch of one
                loss = F.cross_entropy(head(xd[idx]), yd[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            self.loss_curve_.append(total / n)
        self.module_ = head.cpu().eval()
        return self

    @torch.no_grad()
    def decision_function(self, X):
        check_is_fitted(self, "module_")
        X = _as_maps(X)
        n_feat = int(np.prod(X.shape[1:]))
        if n_feat != self.n_features_in_:
            raise ValueError(
                f"X has {n_feat} features per sample, but the readout was fitted on "
                f"{self.n_features_in_}."
            )
        out = [self.module_(torch.from_numpy(X[i : i + 512])) for i in range(0, len(X), 512)]
        return torch.cat(out).numpy()

    def predict(self, X):
        check_is_fitted(self, "module_")
        return self.classes_[self.decision_function(X).argmax(1)]


def _pool_flatten(X, pool):
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 4 and pool and pool > 1:
        k = min(pool, X.shape[2], X.shape[3])
        X = F.avg_pool2d(torch.from_numpy(X), k).numpy()
    return X.reshape(len(X), -1)


def linear_readout(pool: int | None = None, C: float = 1.0, max_iter: int = 2000):
    """Multinomial logistic regression on standardised, optionally average-pooled,
    flattened features (a scikit-learn pipeline)."""
    return make_pipeline(
        FunctionTransformer(_pool_flatten, kw_args={"pool": pool}),
        StandardScaler(),
        LogisticRegression(C=C, max_iter=max_iter),
    )


def make_readout(readout: Any, *, pixels: bool = False, epochs: int = 100, pool: int | None = None,
                 batch_size: int = 32, lr: float = 0.1, seed: int = 0, device: Any = "cpu"):
    """An unfitted estimator for ``readout`` (a name or a scikit-learn classifier)."""
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
        if "random_state" in est.get_params():
            est.set_params(random_state=seed)
        return make_pipeline(FunctionTransformer(_pool_flatten, kw_args={"pool": pool}), est)
    raise ValueError(
        f"Unknown value {readout!r} for argument readout. Valid values are "
        "{paper, linear} or a scikit-learn classifier instance."
    )
