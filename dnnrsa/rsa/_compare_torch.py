"""``compare(..., device=...)``: the rank, cosine and correlation methods in torch
(batched sorts; tau-a by a radix inversion count), equal to the numpy path."""

from __future__ import annotations

import numpy as np

from .._utils import resolve_device
from ._compare import _normalise, _rho_a_scale

# -- torch (device=...) ----------------------------------------------------------------------
TORCH_METHODS = ("cosine", "corr", "spearman", "tau-a", "rho-a")
_TORCH_BLOCK = 1 << 23  # elements of a (rows, n) block: bounds the device memory


def check_device(device, method: str):
    """The torch device ``compare`` runs on, or None for numpy; raises before any work."""
    if device is None:
        return None
    if isinstance(device, str) and device == "auto":
        import torch

        if not torch.cuda.is_available():
            return None
    dev = resolve_device(device)
    if dev.type == "mps":
        raise ValueError(
            f"Argument device={str(dev)!r}: RDMs are compared in float64, which MPS does not "
            "support. Use device=None (numpy), 'cpu' or 'cuda'."
        )
    if method not in TORCH_METHODS:
        raise ValueError(
            f"Argument device={str(dev)!r}: method={method!r} runs with numpy only; torch "
            f"devices support {{{', '.join(TORCH_METHODS)}}}. Use device=None."
        )
    return dev


def _blocks(n_rows: int, n: int):
    step = max(1, _TORCH_BLOCK // max(n, 1))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def _run_first(s):
    """Mask of the entries of sorted rows (m, n) that start a run of equal values."""
    import torch

    first = torch.ones(s.shape, dtype=torch.bool, device=s.device)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    return first


def _run_bounds(first):
    """Positions, and the first and last position of each entry's run, (m, n) each."""
    import torch

    n = first.shape[1]
    pos = torch.arange(n, device=first.device).expand_as(first)
    start = torch.cummax(torch.where(first, pos, 0), dim=1).values
    last = torch.ones_like(first)
    last[:, :-1] = first[:, 1:]
    end = torch.cummin(torch.where(last, pos, n - 1).flip(1), dim=1).values.flip(1)
    return pos, start, end


def _tied_pairs(first):
    """Tied pairs of each row, the sum over runs of c (c - 1) / 2, from its run starts."""
    pos, start, _ = _run_bounds(first)
    return (pos - start).sum(dim=1)


def torch_ranks(X, center: bool):
    """Average ranks (1..n) of the rows of a (m, n) float64 tensor, as :func:`rank_rows`."""
    import torch

    s, order = torch.sort(X, dim=1)
    _, start, end = _run_bounds(_run_first(s))
    shift = (X.shape[1] + 1) / 2.0 if center else 0.0
    ranks = (start + end).to(torch.float64) / 2.0 + (1.0 - shift)
    return torch.empty_like(X).scatter_(1, order, ranks)


def torch_inversions(Y):
    """Pairs i < j with Y[r, i] > Y[r, j] in each row of a non-negative int64 (m, n)
    tensor, shape (m,).

    A radix count from the highest bit down: at each bit, within each run of entries that
    agree on the higher bits (kept in their original order), each entry with the bit clear
    is passed by the earlier entries with it set; then each run is split stably by the
    bit. O(n) work per bit, all rows at once."""
    import torch

    total = torch.zeros(Y.shape[0], dtype=torch.int64, device=Y.device)
    S = Y
    for level in range(int(Y.max()).bit_length() - 1, -1, -1):
        bit = (S >> level) & 1
        pos, start, end = _run_bounds(_run_first(S >> (level + 1)))
        ones_incl = torch.cumsum(bit, dim=1)
        ones_excl = ones_incl - bit
        before_run = ones_excl.gather(1, start)
        ones_before = ones_excl - before_run  # earlier entries of the run with the bit set
        total += (ones_before * (1 - bit)).sum(dim=1)
        if level:
            run_zeros = (end - start + 1) - (ones_incl.gather(1, end) - before_run)
            zeros_before = (pos - start) - ones_before
            target = start + torch.where(bit == 0, zeros_before, run_zeros + ones_before)
            S = torch.empty_like(S).scatter_(1, target, S)
    return total


def torch_tau_a(A, B):
    """Kendall's tau-a table of two float64 tensors, equal to :func:`tau_a`: for each RDM
    of the smaller side, all rows of the other side at once (in blocks)."""
    import torch

    if A.shape[0] < B.shape[0]:
        return torch_tau_a(B, A).T
    n = A.shape[1]
    tot = n * (n - 1) // 2
    out = torch.zeros((A.shape[0], B.shape[0]), dtype=torch.float64, device=A.device)
    for j in range(B.shape[0] if tot else 0):
        ys, by_y = torch.sort(B[j])
        first_y = _run_first(ys[None, :])
        dense_y = torch.cumsum(first_y[0].to(torch.int64), dim=0)  # 1-based, sorted order
        ytie = _tied_pairs(first_y)
        for rows in _blocks(A.shape[0], n):
            # sort by A, ties in the order of B: pairs tied in A are never inversions
            xs, order = torch.sort(A[rows][:, by_y], dim=1, stable=True)
            y = dense_y[order]
            first_x = _run_first(xs)
            ntie = _tied_pairs(first_x | _run_first(y))  # runs tied in both
            num = tot - _tied_pairs(first_x) - ytie + ntie - 2 * torch_inversions(y)
            out[rows, j] = (num.to(torch.float64) / tot).clamp(-1.0, 1.0)
    return out


def torch_similarity(A: np.ndarray, B: np.ndarray, method: str, dev) -> np.ndarray:
    """:func:`similarity` of NaN-free vectors in torch on ``dev`` (``TORCH_METHODS``)."""
    import torch

    TA = torch.as_tensor(A, dtype=torch.float64, device=dev)
    TB = TA if B is A else torch.as_tensor(B, dtype=torch.float64, device=dev)
    if method == "tau-a":
        return torch_tau_a(TA, TB).cpu().numpy()
    n = A.shape[1]

    def transformed(T):
        if method == "cosine":
            return T
        if method == "corr":
            return T - T.mean(dim=1, keepdim=True)
        return torch.cat([torch_ranks(T[rows], True) for rows in _blocks(T.shape[0], n)])

    RA = transformed(TA)
    RB = RA if TB is TA else transformed(TB)
    dots = (RA @ RB.T).cpu().numpy()
    if method == "rho-a":
        return dots * _rho_a_scale(n)
    norms = [torch.linalg.vector_norm(R, dim=1).cpu().numpy() for R in (RA, RB)]
    return _normalise(dots, *norms)


