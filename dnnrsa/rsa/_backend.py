"""The few array operations the RDM kernels need, once for numpy (BLAS on the CPU) and once
for torch (any device). The kernels in :mod:`._rdm` are written against this small interface,
so the torch path is the same arithmetic in the same order, only on another device."""

from __future__ import annotations

import numpy as np
import scipy.sparse

from .._utils import resolve_device


class _Ops:
    """What numpy arrays and torch tensors spell alike."""

    def gram(self, A, B=None):
        """A @ B.T; A @ A.T (a symmetric rank-k update in BLAS) when B is None."""
        return A @ (A if B is None else B).T

    def matmul(self, A, B):
        return A @ B

    def min(self, a) -> float:
        return float(a.min())

    def sum(self, a) -> float:
        return float(a.sum())


class NumpyOps(_Ops):
    """float64 numpy arrays on the CPU; matrix products go to the BLAS numpy is linked
    against (its thread count follows the usual controls: ``OMP_NUM_THREADS``,
    ``OPENBLAS_NUM_THREADS`` or ``threadpoolctl.threadpool_limits``)."""

    name = "numpy"

    def asarray(self, x):
        if hasattr(x, "detach"):  # a torch tensor, possibly on a GPU
            x = x.detach().cpu().numpy()
        return np.ascontiguousarray(x, dtype=np.float64)

    def to_numpy(self, x) -> np.ndarray:
        return np.asarray(x)

    def group_sums(self, X, codes: np.ndarray, n_groups: int):
        """Sum the rows of ``X`` (n, p) per group code; (n_groups, p).

        A sparse indicator product: O(n * p) work, no sorted copy of ``X``."""
        n = codes.shape[0]
        indicator = scipy.sparse.csr_array(
            (np.ones(n), (codes, np.arange(n))), shape=(n_groups, n)
        )
        return np.asarray(indicator @ X)

    def colmean(self, A):
        return A.mean(axis=0, keepdims=True)

    def rowmean(self, A):
        return A.mean(axis=1, keepdims=True)

    def take_rows(self, A, index: np.ndarray):
        return A[index]

    def sqrt(self, a):
        return np.sqrt(a)

    def log(self, a):
        return np.log(a)

    def hstack(self, arrays):
        return np.hstack(arrays)

    def from_numpy(self, a):
        return np.asarray(a, dtype=np.float64)

    def triu(self, K):
        i, j = np.triu_indices(K.shape[0], k=1)
        return np.asarray(K[i, j])

    def all_finite(self, a) -> bool:
        # a NaN or Inf anywhere makes the total non-finite; one pass, no boolean temporary
        return bool(np.isfinite(a.sum()))

    def spd_inverse(self, C):
        """Inverse of a symmetric positive definite matrix through its Cholesky factor."""
        import scipy.linalg

        c, lower = scipy.linalg.cho_factor(C, lower=True)
        return scipy.linalg.cho_solve((c, lower), np.eye(C.shape[0]))


class TorchOps(_Ops):
    """float64 torch tensors on ``device`` (a CUDA device, or the CPU for testing)."""

    name = "torch"

    def __init__(self, device):
        import torch

        self.torch = torch
        self.device = device

    def asarray(self, x):
        torch = self.torch
        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=torch.float64)
        return torch.as_tensor(np.asarray(x), dtype=torch.float64, device=self.device)

    def to_numpy(self, x) -> np.ndarray:
        return x.detach().cpu().numpy()

    def group_sums(self, X, codes: np.ndarray, n_groups: int):
        torch = self.torch
        idx = torch.as_tensor(codes, dtype=torch.long, device=self.device)
        out = torch.zeros((n_groups, X.shape[1]), dtype=X.dtype, device=self.device)
        return out.index_add_(0, idx, X)

    def colmean(self, A):
        return A.mean(dim=0, keepdim=True)

    def rowmean(self, A):
        return A.mean(dim=1, keepdim=True)

    def take_rows(self, A, index: np.ndarray):
        return A[self.torch.as_tensor(index, dtype=self.torch.long, device=self.device)]

    def sqrt(self, a):
        return self.torch.sqrt(a)

    def log(self, a):
        return self.torch.log(a)

    def hstack(self, arrays):
        return self.torch.hstack(arrays)

    def from_numpy(self, a):
        return self.torch.as_tensor(np.asarray(a), dtype=self.torch.float64, device=self.device)

    def triu(self, K):
        i, j = self.torch.triu_indices(K.shape[0], K.shape[0], offset=1, device=K.device)
        return self.to_numpy(K[i, j])

    def all_finite(self, a) -> bool:
        return bool(self.torch.isfinite(a.sum()))

    def spd_inverse(self, C):
        torch = self.torch
        L = torch.linalg.cholesky(C)
        eye = torch.eye(C.shape[0], dtype=C.dtype, device=C.device)
        return torch.cholesky_solve(eye, L)


def get_ops(device="auto"):
    """The backend of ``device`` (as :func:`dnnrsa._utils.resolve_device` reads it): numpy
    for the CPU, torch on a CUDA device."""
    dev = resolve_device(device)
    if dev.type == "cpu":
        return NumpyOps()
    if dev.type == "mps":
        raise ValueError(
            f"Argument device={str(dev)!r}: RDMs are computed in float64, which MPS does not "
            "support. Use device='cpu' (or 'auto')."
        )
    return TorchOps(dev)
