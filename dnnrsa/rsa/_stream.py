"""RDMs of memory-mapped data (a layer in the activation cache of :func:`dnnrsa.extract`,
``Activations.load(..., mmap=True)``) without reading the data into memory.

Every measure of :func:`dnnrsa.rsa.rdm` that sees the data through condition sums and
their Gram matrix can be accumulated: the data are read in blocks of feature columns,
each block in chunks of rows; a chunk adds to the block's condition (or condition x fold)
sums and is dropped, and the block's sums add their share to the kernel before the next
block is read. What is held at once is bounded by :data:`CHUNK_BYTES` (the sums of one
block and one chunk of rows) plus the n_cond x n_cond kernel.

Which measures are exact this way:

- ``euclidean``, ``mahalanobis`` with no noise, a diagonal precision or ``noise="diag"``,
  and ``poisson``: the kernel is a sum over features, so blocks of columns add up.
- ``correlation``: each condition pattern is centred over *all* features, which no block
  sees; the blocks accumulate the Gram matrix and the row sums of the patterns minus a
  per-condition shift (the row means of the first block, against cancellation) and the
  centring is applied at the end: (A - a 1^T)(A - a 1^T)^T = G - r r^T / n_features.
- ``crossnobis`` with those noise models: its fold kernel is a sum over features too.
- ``noise="diag"`` reads each block twice: once for the condition means, once for the
  residual variance of each feature around them.
- A full precision matrix and ``noise="residuals"`` (GLM residuals, already in memory)
  couple all features; their condition sums are accumulated over chunks of rows at full
  width (n_cond x n_features in memory, no more than the noise model itself holds).
- ``noise="shrinkage"``, ``"shrinkage_eye"`` and ``"shrinkage_diag"`` estimate the noise
  covariance from every observation's residual at once; they are refused for mapped data
  with an error that names the alternatives.

Pages of the mapping that a chunk touched are released (``madvise(MADV_DONTNEED)``) once
the chunk is summed, so the file's pages do not pile up in the process's resident memory.
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np

from .._utils import logger
from ._conditions import Conditions
from ._noise import IDENTITY, _Diagonal, noise_metric

__all__ = ["CHUNK_BYTES", "is_mapped", "streamed_rdm"]

#: Bytes the streamed RDM holds at once for the data (a chunk of rows and the condition
#: sums of one block of columns), besides the n_cond x n_cond kernel.
CHUNK_BYTES = 256 * 2**20

_FAULT_AROUND = 64 * 2**10  # bytes the kernel maps around a page fault (Linux default)

#: The estimates that need every residual in memory.
_NEED_ALL_RESIDUALS = ("shrinkage", "shrinkage_eye", "shrinkage_diag")


def _mapping(X) -> tuple[bool, Any]:
    """Whether ``X`` is backed by a memory map, and the ``mmap.mmap`` whose pages may be
    released after reading (None when releasing could lose data: a copy-on-write map)."""
    base = X
    while base is not None:
        if isinstance(base, np.memmap) and getattr(base, "_mmap", None) is not None:
            shared = getattr(base, "mode", None) in ("r", "r+", "w+")
            return True, base._mmap if shared else None
        if isinstance(base, mmap.mmap):
            return True, None
        base = getattr(base, "base", None)
    return False, None


def is_mapped(X) -> bool:
    """True when ``X`` is a numpy memmap (or a view of one): an array on disk."""
    return isinstance(X, np.ndarray) and _mapping(X)[0]


def _release(mm) -> None:
    if mm is not None and hasattr(mmap, "MADV_DONTNEED"):
        mm.madvise(mmap.MADV_DONTNEED)


def _metric(noise, X, cond: Conditions, ops, residuals, method: str):
    """(metric, descriptors, column-wise): the noise model of ``noise`` for streamed data;
    ``metric`` is None for ``noise="diag"`` (estimated block by block)."""
    if isinstance(noise, str) and noise in _NEED_ALL_RESIDUALS:
        raise ValueError(
            f"noise={noise!r} with method={method!r} estimates the noise covariance from "
            "the residuals of all observations at once, which needs the data in memory, "
            "but argument acts is memory-mapped (a cached layer). Use noise='diag' "
            "(univariate noise normalisation, computed chunk by chunk), give a "
            "precision matrix or its diagonal, or read the data into memory first if "
            "they fit: acts[:] is an in-memory copy."
        )
    if isinstance(noise, str) and noise == "diag":
        n_obs, C = X.shape[0], cond.n_cond
        if n_obs - C < 1:
            raise ValueError(
                f"noise='diag' is estimated from the residuals around the condition means, "
                f"but there are {n_obs} observations for {C} conditions: no residual degrees "
                "of freedom. Give a precision matrix instead."
            )
        return None, {"noise": "diag", "noise_dof": n_obs - C}, True
    if noise is None:
        return IDENTITY, {"noise": "identity"}, True
    metric, info = noise_metric(noise, X, cond, ops, residuals=residuals)
    return metric, info, metric.is_identity or isinstance(metric, _Diagonal)


def _plan(n_obs: int, n_features: int, n_groups: int, itemsize: int, blocked: bool):
    """Columns per block and rows per chunk within :data:`CHUNK_BYTES`: half for the sums
    of a block (the sums, a chunk's share and one product of the same size), half for a
    chunk (its float64 copy and its mapped pages, which the kernel maps in windows of up
    to 64 KiB around each row's segment)."""
    half = max(CHUNK_BYTES // 2, 1)
    width = n_features
    if blocked:
        width = int(min(n_features, max(1, half // (3 * 8 * max(n_groups, 1)))))
    per_row = (8 + itemsize) * width + (_FAULT_AROUND if width < n_features else 0)
    rows = int(min(n_obs, max(1, half // per_row)))
    return width, rows


def _read(X, r0: int, r1: int, c0: int, c1: int, ops, mm):
    """Rows r0:r1 of columns c0:c1 as a writable float64 copy on the backend."""
    chunk = np.ascontiguousarray(X[r0:r1, c0:c1], dtype=np.float64)
    _release(mm)
    return ops.asarray(chunk)


def _block_sums(X, codes, n_groups, c0, c1, rows, ops, mm):
    """Group sums (n_groups, c1 - c0) and column sums (1, c1 - c0) of a block of columns."""
    sums = colsum = None
    for r0 in range(0, X.shape[0], rows):
        r1 = min(r0 + rows, X.shape[0])
        A = _read(X, r0, r1, c0, c1, ops, mm)
        part = ops.group_sums(A, codes[r0:r1], n_groups)
        col = ops.colmean(A) * (r1 - r0)
        del A  # before the next chunk is read: one chunk at a time
        if sums is None:
            sums, colsum = part, col
        else:
            sums += part
            colsum += col
        del part
    return sums, colsum


def _diag_precision(X, cond: Conditions, means, dof, c0, c1, rows, ops, mm):
    """Precision diag(1 / var) of columns c0:c1, var the residual variance around the
    condition means ``means`` (n_cond, c1 - c0), as ``noise="diag"`` in memory: the
    residuals are demeaned once more, then their sum of squares is divided by dof."""
    n_obs = X.shape[0]
    ss = rs = None
    for r0 in range(0, n_obs, rows):
        r1 = min(r0 + rows, n_obs)
        R = None  # the previous chunk goes before the next is read
        R = _read(X, r0, r1, c0, c1, ops, mm)
        R -= ops.take_rows(means, cond.codes[r0:r1])
        part_rs = ops.colmean(R) * (r1 - r0)
        R *= R
        part_ss = ops.colmean(R) * (r1 - r0)
        if ss is None:
            ss, rs = part_ss, part_rs
        else:
            ss += part_ss
            rs += part_rs
    var = (ss - rs * rs / n_obs) / dof
    zero = np.flatnonzero(ops.to_numpy(var).reshape(-1) <= 0)
    if zero.size:
        shown = ", ".join(str(c0 + int(j)) for j in zero[:5])
        raise ValueError(
            f"noise='diag' divides by the residual variance of each feature, but features "
            f"{shown}{' ...' if zero.size > 5 else ''} have zero residual variance (e.g. "
            "units that never respond). Drop those features or use noise='shrinkage' on "
            "data in memory."
        )
    return _Diagonal(1.0 / var)


def _columns(metric, c0: int, c1: int, n_features: int):
    if metric.is_identity or (c0 == 0 and c1 == n_features):
        return metric
    return _Diagonal(metric.w[:, c0:c1])


def streamed_rdm(X, cond: Conditions, *, method: str, folds, noise, residuals,
                 ops) -> tuple[np.ndarray, dict]:
    """The dissimilarity vector of :func:`dnnrsa.rsa.rdm` for memory-mapped ``X``
    (n_obs, n_features), and the descriptors of its noise model; the arguments have been
    checked by ``rdm``."""
    from . import _rdm as kernels  # the in-memory kernels, applied to each block

    n_obs, n_features = X.shape
    C = cond.n_cond
    metric, info, blocked = _metric(noise, X, cond, ops, residuals, method)
    if method == "crossnobis":
        fold_codes, n_folds = folds
        codes = cond.codes * n_folds + fold_codes
    else:
        n_folds = 1
        codes = cond.codes
    n_groups = C * n_folds
    counts = np.bincount(codes, minlength=n_groups)
    cond_counts = ops.from_numpy(np.bincount(cond.codes, minlength=C))[:, None]
    width, rows = _plan(n_obs, n_features, n_groups, X.dtype.itemsize, blocked)
    _, mm = _mapping(X)
    logger.debug("rdm: streaming %s of %d x %d in blocks of %d columns, chunks of %d rows",
                 method, n_obs, n_features, width, rows)

    vec = K = shift = rowsum = None
    for c0 in range(0, n_features, width):
        c1 = min(c0 + width, n_features)
        sums = part = block_metric = M = None  # the previous block's arrays go first
        sums, colsum = _block_sums(X, codes, n_groups, c0, c1, rows, ops, mm)
        kernels._check_finite(ops, sums)
        if metric is None:  # noise="diag": the residual variance of this block
            cond_sums = sums if n_folds == 1 else sums.reshape(C, n_folds, c1 - c0).sum(1)
            block_metric = _diag_precision(X, cond, cond_sums / cond_counts,
                                           info["noise_dof"], c0, c1, rows, ops, mm)
        elif method != "correlation" and method != "poisson":
            block_metric = _columns(metric, c0, c1, n_features)
        if method == "correlation":  # scale-free per condition: sums serve as means
            if shift is None:
                shift = ops.rowmean(sums)
            sums -= shift
            part = ops.gram(sums)
            K = part if K is None else K + part
            s = ops.rowmean(sums) * (c1 - c0)
            rowsum = s if rowsum is None else rowsum + s
            continue
        if method == "crossnobis":
            kernels._subtract_outer(ops, sums, counts.astype(np.float64), colsum / n_obs)
            part = kernels.crossnobis_kernel(ops, sums, counts.reshape(C, n_folds),
                                             block_metric)
            K = part if K is None else K + part
            continue
        M = sums
        M /= ops.from_numpy(counts)[:, None]
        if method == "poisson":
            part = kernels._poisson(ops, M)
        else:
            part = kernels._squared_distance(ops, M, block_metric)
        vec = part if vec is None else vec + part
    if method == "correlation":
        K -= ops.gram(rowsum, rowsum) / n_features
        return kernels.correlation_from_gram(ops, K, cond), info
    if method == "crossnobis":
        return kernels._pairs_from_kernel(ops, K) / (n_folds * n_features), info
    return vec / n_features, info
