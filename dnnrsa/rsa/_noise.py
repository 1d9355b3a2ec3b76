"""Noise precision for the Mahalanobis and crossnobis RDMs.

An RDM kernel never sees a precision matrix W itself: it asks a *metric* for the two
factors of the product A W B^T, so that a metric can keep W implicit. The metrics are

``_Identity``
    W = I (Euclidean distances); the kernels skip the product altogether.
``_Diagonal``
    W = diag(w): a diagonal precision given by the caller, or the inverse residual
    variance of each feature (univariate noise normalisation).
``_Dense``
    A precision matrix given by the caller, applied as (A W) B^T.
``_Woodbury``
    The inverse of a covariance diag(d) + c R^T R with few rows R (the shrinkage
    estimates), applied through the Woodbury identity without forming any
    n_features x n_features matrix.

The estimates (``noise="shrinkage"`` etc.) come from the residuals of the observations
around their condition means and equal ``rsatoolbox.data.prec_from_residuals`` (0.3.2)
with ``dof = n_obs - n_cond``:

``"shrinkage"`` / ``"shrinkage_eye"``
    Ledoit-Wolf shrinkage of the sample covariance towards a multiple of the identity.
``"shrinkage_diag"``
    Schäfer & Strimmer (2005) shrinkage of the correlations towards 0, keeping each
    feature's variance.
``"diag"``
    The residual variance of each feature alone (univariate noise normalisation).

A noise estimate from the residuals of a GLM fit (brain data given as trial-wise
responses plus a design) belongs here too; it is planned, not yet written.
"""

from __future__ import annotations

import numpy as np

from .._utils import check_choice
from ._conditions import Conditions

__all__ = ["NOISE_ESTIMATES", "noise_metric", "IDENTITY"]

NOISE_ESTIMATES = ("shrinkage", "shrinkage_eye", "shrinkage_diag", "diag")


class _Identity:
    is_identity = True

    def left(self, A):
        return A

    def right(self, A):
        return A


#: The metric of Euclidean distances; stateless, so one object serves every call.
IDENTITY = _Identity()


class _Diagonal:
    """Precision diag(w), ``w`` of shape (1, n_features)."""

    is_identity = False

    def __init__(self, w):
        self.w = w

    def left(self, A):
        return A * self.w

    def right(self, A):
        return A


class _Dense:
    """A given precision matrix W: A W B^T = (A W) B^T."""

    is_identity = False

    def __init__(self, ops, W):
        self.ops, self.W = ops, W

    def left(self, A):
        return self.ops.matmul(A, self.W)

    def right(self, A):
        return A


class _Woodbury:
    """Precision of the covariance diag(d) + c R^T R (R: n_res x n_features) without
    forming it: by the Woodbury identity, A S^-1 B^T = A D^-1 B^T - (A V^T) G (B V^T)^T
    with V = R D^-1 and G = (I / c + R D^-1 R^T)^-1, i.e. a Gram product of the extended
    rows [A D^-1, -(A V^T) G] and [B, B V^T]."""

    is_identity = False

    def __init__(self, ops, dinv, V, G):
        self.ops, self.dinv, self.V, self.G = ops, dinv, V, G

    def left(self, A):
        AV = self.ops.gram(A, self.V)
        return self.ops.hstack([A * self.dinv, -self.ops.matmul(AV, self.G)])

    def right(self, A):
        return self.ops.hstack([A, self.ops.gram(A, self.V)])


def noise_metric(noise, X, cond: Conditions, ops):
    """The metric of argument ``noise`` of :func:`dnnrsa.rsa.rdm` for the data ``X``
    (already on the backend ``ops``), and the descriptors that record it."""
    n_features = X.shape[1]
    if noise is None:
        return IDENTITY, {"noise": "identity"}
    if isinstance(noise, str):
        check_choice("noise", noise, NOISE_ESTIMATES)
        return _estimated_metric(noise, X, cond, ops)
    if hasattr(noise, "detach"):
        noise = noise.detach().cpu().numpy()
    W = np.asarray(noise)
    if W.dtype.kind not in "fiu":
        raise TypeError(
            f"Argument noise must be numeric (a precision matrix or its diagonal) or one of "
            f"{NOISE_ESTIMATES}, got an array of dtype {W.dtype}."
        )
    if W.shape == (n_features,):
        if not (np.isfinite(W).all() and (W >= 0).all()):
            raise ValueError("Argument noise (a diagonal precision) must be finite and >= 0.")
        return _Diagonal(ops.from_numpy(W)[None, :]), {"noise": "diagonal precision"}
    if W.shape != (n_features, n_features):
        raise ValueError(
            f"Argument noise must be a precision matrix of shape ({n_features}, {n_features}) "
            f"or its diagonal of shape ({n_features},), got shape {W.shape}."
        )
    if not np.isfinite(W).all():
        raise ValueError("Argument noise contains NaN or Inf values.")
    scale = float(np.abs(W).max()) or 1.0
    if not np.allclose(W, W.T, rtol=0, atol=1e-10 * scale):
        raise ValueError("Argument noise must be a symmetric precision matrix.")
    return _Dense(ops, ops.from_numpy(W)), {"noise": "precision matrix"}


def _singular(kind: str, fix: str) -> ValueError:
    return ValueError(
        f"noise={kind!r}: the estimated shrinkage is 0, so the covariance estimate is the "
        f"sample covariance, which is singular here. {fix}"
    )


def _estimated_metric(kind: str, X, cond: Conditions, ops):
    """Noise precision from the residuals, as rsatoolbox's ``prec_from_residuals`` with
    ``dof = n_obs - n_cond`` (which is what ``prec_from_unbalanced`` uses)."""
    n_obs, n_features = X.shape
    C = cond.n_cond
    dof = n_obs - C
    if dof < 1:
        raise ValueError(
            f"noise={kind!r} is estimated from the residuals around the condition means, "
            f"but there are {n_obs} observations for {C} conditions: no residual degrees "
            "of freedom. Give a precision matrix instead."
        )
    counts = np.bincount(cond.codes, minlength=C)
    M = ops.group_sums(X, cond.codes, C) / ops.from_numpy(counts)[:, None]
    R = X - ops.take_rows(M, cond.codes)
    R = R - ops.colmean(R)  # rsatoolbox demeans the residuals once more
    if kind in ("shrinkage", "shrinkage_eye"):
        return _shrinkage_eye(kind, R, dof, ops)
    return _shrinkage_diag(kind, R, dof, ops)


def _shrinkage_eye(kind: str, R, dof: int, ops):
    """Ledoit-Wolf shrinkage towards a multiple of the identity, from the Gram matrix of
    the residuals (n_obs x n_obs) rather than their covariance."""
    n, n_features = R.shape
    G = ops.gram(R)
    norms = G.diagonal()
    s_fro2 = ops.sum(G * G) / n**2  # ||R^T R / n||_F^2
    b2 = (ops.sum(norms * norms) / n - s_fro2) / n
    m = ops.sum(norms) / (n * n_features)
    d2 = s_fro2 - m * m * n_features
    if d2 <= 0:
        # the sample covariance is a multiple of the identity already
        alpha, beta = m * n / dof, 0.0
        lam = 1.0
    else:
        b2 = min(d2, b2)
        lam = b2 / d2
        alpha = lam * m * n / dof
        beta = (1.0 - lam) / dof
    if alpha <= 0:
        raise _singular(kind, "Give a precision matrix.")
    info = {"noise": "shrinkage_eye", "noise_shrinkage": float(lam), "noise_dof": dof}
    if beta == 0.0:
        w = ops.from_numpy(np.full(n_features, 1.0 / alpha))[None, :]
        return _Diagonal(w), info
    dinv = 1.0 / alpha
    inner = G * dinv + ops.from_numpy(np.eye(n) / beta)
    return _Woodbury(ops, dinv, R * dinv, ops.spd_inverse(inner)), info


def _shrinkage_diag(kind: str, R, dof: int, ops):
    """``"diag"`` and ``"shrinkage_diag"`` (Schäfer & Strimmer 2005, with rsatoolbox's
    normalisations): both start from the residual variance of each feature."""
    n, n_features = R.shape
    sumsq = (R * R).sum(0)
    var = sumsq / dof
    zero = ops.to_numpy(var) <= 0
    if zero.any():
        raise ValueError(
            f"noise={kind!r} divides by the residual variance of each feature, but "
            f"{int(zero.sum())} of {n_features} features have zero residual variance "
            "(e.g. units that never respond). Drop those features or use noise='shrinkage'."
        )
    info = {"noise": kind, "noise_dof": dof}
    if kind == "diag":
        return _Diagonal((1.0 / var)[None, :]), info
    Z = R / ops.sqrt(var)[None, :]
    GZ = ops.gram(Z)
    q = GZ.diagonal()  # sum over features of z^2, per residual
    diag_part = ops.sum(sumsq * sumsq / (var * var))  # sum_i (sum_r z_ri^2)^2
    off_s = (ops.sum(GZ * GZ) - diag_part) / (n - 1) ** 2
    off_s2 = (ops.sum(q * q) - ops.sum(Z**4)) / (n - 1)
    var_hat = n / dof**2 * (off_s2 - off_s)
    lam = var_hat / off_s if off_s > 0 else 1.0
    lam = max(min(lam, 1.0), 0.0)
    info["noise_shrinkage"] = float(lam)
    if lam >= 1.0:
        return _Diagonal((1.0 / var)[None, :]), info
    if lam <= 0.0:
        raise _singular(kind, "Use noise='shrinkage'.")
    dinv = (1.0 / (lam * var))[None, :]
    c = (1.0 - lam) / dof
    V = R * dinv
    inner = ops.gram(V, R) + ops.from_numpy(np.eye(n) / c)
    return _Woodbury(ops, dinv, V, ops.spd_inverse(inner)), info
