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

Every estimate is computed by one function, :func:`residual_metric`, from a residual
matrix and its degrees of freedom, and equals ``rsatoolbox.data.prec_from_residuals``
(0.3.2) of that matrix and dof. Two kinds of residuals enter it:

``"shrinkage"`` / ``"shrinkage_eye"``, ``"shrinkage_diag"``, ``"diag"``
    The residuals of the observations around their condition means, with
    ``dof = n_obs - n_cond`` (as ``prec_from_unbalanced``). ``"shrinkage"`` is
    Ledoit-Wolf shrinkage of the sample covariance towards a multiple of the identity;
    ``"shrinkage_diag"`` is Schäfer & Strimmer (2005) shrinkage of the correlations
    towards 0, keeping each feature's variance; ``"diag"`` is the residual variance of
    each feature alone (univariate noise normalisation).
``"residuals"``
    The residual time series of a first-level GLM (``Activations.residuals``, kept by
    ``dnnrsa.neural.from_runs``) with the GLM's residual degrees of freedom, and
    ``"shrinkage_diag"`` shrinkage (rsatoolbox's default method): the noise is estimated
    from the scans the condition estimates were fitted to, not from their scatter.

When there are more residual rows than features, the residual matrix is first replaced
by the triangular factor of its QR decomposition (same R^T R, hence the same covariance),
so the Woodbury inner matrix is never larger than min(n_residuals, n_features) squared.
"""

from __future__ import annotations

import numpy as np

from .._utils import check_choice
from ._conditions import Conditions

__all__ = ["NOISE_ESTIMATES", "noise_metric", "residual_metric", "check_residuals", "IDENTITY"]

#: Estimates from the residuals around the condition means.
_FROM_CONDITIONS = ("shrinkage", "shrinkage_eye", "shrinkage_diag", "diag")
NOISE_ESTIMATES = (*_FROM_CONDITIONS, "residuals")

#: The method of ``prec_from_residuals`` behind each estimate.
_METHOD = {"shrinkage": "shrinkage_eye", "shrinkage_eye": "shrinkage_eye",
           "shrinkage_diag": "shrinkage_diag", "diag": "diag", "residuals": "shrinkage_diag"}


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


def check_residuals(acts, argument: str = "acts"):
    """The GLM residuals of ``acts`` for ``noise="residuals"``, or a ValueError that says
    where such data come from and which estimates work without them."""
    residuals = getattr(acts, "residuals", None)
    if residuals is None:
        what = type(acts).__name__
        if getattr(acts, "provenance", None) is not None and "layer" in acts.provenance:
            what = f"a network layer ({acts.provenance['layer']!r})"
        raise ValueError(
            f"noise='residuals' needs the GLM residuals of brain data, but argument "
            f"{argument} ({what}) has none. Brain data from dnnrsa.neural.from_runs keep "
            "them (Activations.residuals). Without them use noise='shrinkage', "
            "'shrinkage_diag' or 'diag' (estimated from the observations around their "
            "condition means) or give a precision matrix."
        )
    data = getattr(residuals, "data", None)
    dof = getattr(residuals, "dof", None)
    if data is None or dof is None:
        raise TypeError(
            f"Argument {argument}: .residuals must be a dnnrsa.Residuals (data and dof), "
            f"got {type(residuals).__name__}."
        )
    return residuals


def noise_metric(noise, X, cond: Conditions, ops, residuals=None):
    """The metric of argument ``noise`` of :func:`dnnrsa.rsa.rdm` for the data ``X``
    (already on the backend ``ops``), and the descriptors that record it. ``residuals``
    (a ``dnnrsa.Residuals``) is needed by ``noise="residuals"`` only."""
    n_features = X.shape[1]
    if noise is None:
        return IDENTITY, {"noise": "identity"}
    if isinstance(noise, str):
        if noise == "residuals":
            return _glm_metric(residuals, n_features, ops)
        check_choice("noise", noise, NOISE_ESTIMATES,
                     hint="'residuals' needs brain data with GLM residuals "
                          "(dnnrsa.neural.from_runs).")
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
    """Noise precision from the residuals around the condition means, as rsatoolbox's
    ``prec_from_residuals`` with ``dof = n_obs - n_cond`` (which is what
    ``prec_from_unbalanced`` uses)."""
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
    return residual_metric(R, dof, ops, kind=kind)


def _glm_metric(residuals, n_features: int, ops):
    """``noise="residuals"``: shrinkage_diag precision of a GLM's residual time series."""
    if residuals is None:
        raise ValueError(
            "noise='residuals' needs the GLM residuals of brain data (from "
            "dnnrsa.neural.from_runs); use noise='shrinkage', 'shrinkage_diag' or 'diag', "
            "or give a precision matrix."
        )
    data = residuals.data
    if data.ndim != 2 or data.shape[1] != n_features:
        raise ValueError(
            f"noise='residuals': the residuals have shape {data.shape}, but the data have "
            f"{n_features} features; they must be (n_scans, {n_features})."
        )
    if data.shape[0] < 2:
        raise ValueError(
            f"noise='residuals' needs at least 2 residual scans, got {data.shape[0]}."
        )
    R = ops.asarray(data)
    if not ops.all_finite(R):
        raise ValueError("noise='residuals': the GLM residuals contain NaN or Inf values.")
    return residual_metric(R, int(residuals.dof), ops, kind="residuals")


def residual_metric(R, dof: int, ops, *, kind: str):
    """The metric of the noise estimate ``kind`` (a value of :data:`NOISE_ESTIMATES`)
    from a residual matrix ``R`` (n_residuals x n_features, on the backend ``ops``) with
    ``dof`` degrees of freedom: the inverse of
    ``rsatoolbox.data.prec_from_residuals(R, dof=dof, method=...)``'s covariance, which
    demeans the residuals once more before estimating it."""
    R = R - ops.colmean(R)
    if _METHOD[kind] == "shrinkage_eye":
        return _shrinkage_eye(kind, R, dof, ops)
    return _shrinkage_diag(kind, R, dof, ops)


def _gram_stats(ops, R):
    """Squared row norms of R and ||R R^T||_F^2, through the smaller of R R^T and R^T R
    (the two have the same Frobenius norm)."""
    n, n_features = R.shape
    if n <= n_features:
        G = ops.gram(R)
        return G.diagonal(), ops.sum(G * G), G
    G = ops.gram(R.T)
    return (R * R).sum(1), ops.sum(G * G), None


def _factor(ops, R):
    """Rows T with T^T T = R^T R and min(n, n_features) rows: R itself when it has no more
    rows than columns, else the triangular factor of its QR decomposition."""
    n, n_features = R.shape
    if n <= n_features:
        return R
    if ops.name == "torch":
        return ops.torch.linalg.qr(R, mode="r")[1]
    return np.linalg.qr(R, mode="r")


def _shrinkage_eye(kind: str, R, dof: int, ops):
    """Ledoit-Wolf shrinkage towards a multiple of the identity, from the Gram matrix of
    the residuals (n_obs x n_obs) rather than their covariance."""
    n, n_features = R.shape
    norms, frob2, G = _gram_stats(ops, R)
    s_fro2 = frob2 / n**2  # ||R^T R / n||_F^2
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
    T = _factor(ops, R)
    if G is None:
        G = ops.gram(T)
    inner = G * dinv + ops.from_numpy(np.eye(T.shape[0]) / beta)
    return _Woodbury(ops, dinv, T * dinv, ops.spd_inverse(inner)), info


def _shrinkage_diag(kind: str, R, dof: int, ops):
    """``"diag"`` and ``"shrinkage_diag"`` (Schäfer & Strimmer 2005, with rsatoolbox's
    normalisations): both start from the residual variance of each feature."""
    n, n_features = R.shape
    sumsq = (R * R).sum(0)
    var = sumsq / dof
    zero = ops.to_numpy(var) <= 0
    if zero.any():
        fix = ("Drop those features or use noise='shrinkage'." if kind != "residuals" else
               "Drop those features (e.g. voxels outside the brain) or give a precision "
               "matrix.")
        raise ValueError(
            f"noise={kind!r} divides by the residual variance of each feature, but "
            f"{int(zero.sum())} of {n_features} features have zero residual variance "
            f"(e.g. units that never respond). {fix}"
        )
    info = {"noise": kind, "noise_dof": dof}
    if _METHOD[kind] == "diag":
        return _Diagonal((1.0 / var)[None, :]), info
    Z = R / ops.sqrt(var)[None, :]
    q, frob2, _ = _gram_stats(ops, Z)  # q: sum over features of z^2, per residual
    diag_part = ops.sum(sumsq * sumsq / (var * var))  # sum_i (sum_r z_ri^2)^2
    off_s = (frob2 - diag_part) / (n - 1) ** 2
    off_s2 = (ops.sum(q * q) - ops.sum(Z**4)) / (n - 1)
    var_hat = n / dof**2 * (off_s2 - off_s)
    lam = var_hat / off_s if off_s > 0 else 1.0
    lam = max(min(lam, 1.0), 0.0)
    info["noise_shrinkage"] = float(lam)
    if lam >= 1.0:
        return _Diagonal((1.0 / var)[None, :]), info
    if lam <= 0.0:
        raise _singular(kind, "Give a precision matrix." if kind == "residuals" else
                        "Use noise='shrinkage'.")
    dinv = (1.0 / (lam * var))[None, :]
    c = (1.0 - lam) / dof
    T = _factor(ops, R)
    V = T * dinv
    inner = ops.gram(V, T) + ops.from_numpy(np.eye(T.shape[0]) / c)
    return _Woodbury(ops, dinv, V, ops.spd_inverse(inner)), info
