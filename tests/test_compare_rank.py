"""The rank comparisons (spearman, rho-a, tau-a) at the sort floor: the packed-key row
sorter, the streamed many-vs-few path, the full table path and the torch path, each
against rsatoolbox, scipy or a brute-force loop."""

import warnings

import numpy as np
import pytest
import torch
from rsatoolbox.rdm import compare as rsa_compare
from scipy import stats

from dnnrsa.rsa import _compare as C
from dnnrsa.rsa import _compare_torch as T
from dnnrsa.rsa import _rank as R
from dnnrsa.rsa import compare

RANK_METHODS = ["spearman", "tau-a", "rho-a"]
TORCH_METHODS = ["cosine", "corr", "spearman", "tau-a", "rho-a"]


def _rdms(rng, n_rdm, n_cond, ties=False):
    n = n_cond * (n_cond - 1) // 2
    if ties:  # integer-valued, as categorical model RDMs
        return rng.integers(0, 4, size=(n_rdm, n)).astype(float)
    return rng.random((n_rdm, n))


def _reference(A, B, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rsa_compare(A, B, method=method)


def _tau_a_brute(x, y):
    s = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    n = len(x)
    return s[np.triu_indices(n, 1)].sum() / (n * (n - 1) / 2)


# -- the row sorter --------------------------------------------------------------------------
def _sorter_cases(rng, n):
    near = np.repeat(rng.random(n // 4), 4)[:n] * (1 + rng.integers(-3, 4, n) * 2.0**-45)
    return {
        "uniform": rng.random(n),
        "near ties (key collisions)": rng.permutation(near),
        "signed near ties": rng.permutation(near * np.sign(rng.normal(size=n))),
        "integers": rng.integers(0, 5, n).astype(float),
        "signed": rng.normal(size=n),
        "signed zeros": np.where(rng.random(n) < 0.5, 0.0, -0.0),
        "wide magnitudes": rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, n),
        "too large to pack": np.r_[rng.random(n - 1), 1e308],
        "tiny": rng.random(5),
    }


def test_row_sorter_gives_an_exact_argsort_and_tie_flag(rng):
    n = 4000
    for name, v in _sorter_cases(rng, n).items():
        sorter = R.RowSorter(v.shape[0])
        for _ in range(2):  # buffers are reused: a second call must be as good
            order, s, ties = sorter.sort(v)
            assert np.array_equal(np.sort(order), np.arange(v.shape[0])), name
            np.testing.assert_array_equal(s, v[order], err_msg=name)
            np.testing.assert_array_equal(s, np.sort(v), err_msg=name)
            assert ties == (np.unique(v).shape[0] < v.shape[0]), name


def test_rank_rows_equal_scipy_rankdata(rng):
    for v in _sorter_cases(rng, 500).values():
        V = np.vstack([v, v[::-1]])
        np.testing.assert_array_equal(R.rank_rows(V), stats.rankdata(V, axis=1))
        centred = stats.rankdata(V, axis=1) - (V.shape[1] + 1) / 2
        np.testing.assert_array_equal(R.rank_rows(V, center=True), centred)


# -- numpy paths against rsatoolbox and scipy ------------------------------------------------
@pytest.mark.parametrize("method", RANK_METHODS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n_a, n_b", [(12, 1), (1, 12), (3, 2), (7, 6)])
def test_rank_methods_equal_rsatoolbox(rng, method, ties, n_a, n_b):
    """(12, 1), (1, 12) and (3, 2) stream one side; (7, 6) ranks both sides fully."""
    A, B = _rdms(rng, n_a, 25, ties), _rdms(rng, n_b, 25, ties)
    if ties:
        A[0] = rng.random(A.shape[1])  # one side without ties against heavy ties
    tol = 1e-12 if method == "tau-a" else 1e-10
    np.testing.assert_allclose(compare(A, B, method=method), _reference(A, B, method),
                               rtol=0, atol=tol)


def test_spearman_and_tau_a_equal_scipy_per_pair(rng):
    A, B = _rdms(rng, 5, 14, ties=True), _rdms(rng, 2, 14)
    A[1] = rng.random(A.shape[1])
    A[2] = rng.normal(size=A.shape[1])  # signed values take the general key map
    A[2, :5] = -0.0
    rho, tau = compare(A, B, method="spearman"), compare(A, B, method="tau-a")
    n = A.shape[1]
    n0 = n * (n - 1) / 2
    for i in range(len(A)):
        for j in range(len(B)):
            assert rho[i, j] == pytest.approx(stats.spearmanr(A[i], B[j]).statistic,
                                              abs=1e-12)
            assert tau[i, j] == pytest.approx(_tau_a_brute(A[i], B[j]), abs=1e-12)
            tx = sum(c * (c - 1) / 2 for c in np.unique(A[i], return_counts=True)[1])
            ty = sum(c * (c - 1) / 2 for c in np.unique(B[j], return_counts=True)[1])
            tau_b = stats.kendalltau(A[i], B[j]).statistic  # tau-b, rescaled to tau-a
            assert tau[i, j] == pytest.approx(tau_b * np.sqrt((n0 - tx) * (n0 - ty)) / n0,
                                              abs=1e-12)


def test_streamed_and_full_tables_agree(rng):
    """Few RDMs on one side take the streamed path, more the full one: same numbers."""
    A = _rdms(rng, 9, 20)
    A[::3] = np.round(A[::3] * 5)
    B = _rdms(rng, C._STREAM_MAX + 2, 20)
    B[1] = np.round(B[1] * 3)
    for method in RANK_METHODS:
        full = compare(A, B, method=method)
        for j in range(B.shape[0]):
            np.testing.assert_allclose(compare(A, B[j], method=method)[:, 0], full[:, j],
                                       rtol=0, atol=1e-13)
            np.testing.assert_allclose(compare(B[j], A, method=method)[0], full[:, j],
                                       rtol=0, atol=1e-13)


@pytest.mark.parametrize("method", RANK_METHODS)
def test_nan_entries_are_excluded_like_rsatoolbox(rng, method):
    A, B = _rdms(rng, 6, 20, ties=True), _rdms(rng, 1, 20)
    for V in (A, B):
        V[:, [0, 5, 33, 100]] = np.nan
    ours = compare(A, B, method=method)
    np.testing.assert_allclose(ours, _reference(A, B, method), rtol=0, atol=1e-12)
    keep = ~np.isnan(B[0])
    np.testing.assert_array_equal(ours, compare(A[:, keep], B[:, keep], method=method))


def test_tau_a_paired_is_the_diagonal(rng):
    A, B = _rdms(rng, 4, 15, ties=True), _rdms(rng, 4, 15)
    B[2] = np.round(B[2] * 2)
    np.testing.assert_array_equal(R.tau_a(A, B, paired=True), np.diag(R.tau_a(A, B)))


def test_constant_rdm_gives_zero_like_rsatoolbox(rng):
    A = _rdms(rng, 3, 12)
    B = np.ones((1, A.shape[1]))
    for method in RANK_METHODS:
        np.testing.assert_allclose(compare(A, B, method=method), _reference(A, B, method),
                                   atol=1e-15)
        np.testing.assert_array_equal(compare(A, B, method=method), 0.0)


# -- torch path ------------------------------------------------------------------------------
def test_torch_inversion_count_equals_brute_force(rng):
    Y = np.vstack([rng.integers(0, 3, 300), rng.permutation(300), rng.integers(0, 1000, 300),
                   np.zeros(300, dtype=int), np.arange(300)[::-1]])
    brute = [(np.triu(y[:, None] > y[None, :])).sum() for y in Y]
    ours = T.torch_inversions(torch.as_tensor(Y, dtype=torch.int64))
    np.testing.assert_array_equal(ours.numpy(), brute)


def test_torch_ranks_equal_rank_rows(rng):
    V = np.vstack(list(_sorter_cases(rng, 300).values())[:-1])
    for center in (False, True):
        ours = T.torch_ranks(torch.as_tensor(V), center).numpy()
        np.testing.assert_array_equal(ours, R.rank_rows(V, center=center))


@pytest.mark.parametrize("method", TORCH_METHODS)
def test_torch_cpu_path_equals_numpy(rng, method):
    A, B = _rdms(rng, 7, 18), _rdms(rng, 3, 18, ties=True)
    A[::2] = np.round(A[::2] * 3)
    for V in (A, B):
        V[:, [4, 50]] = np.nan
    for a, b in [(A, B), (B, A), (A, A[:1])]:
        ours = compare(a, b, method=method, device="cpu")
        atol = 0 if method == "tau-a" else 1e-14
        np.testing.assert_allclose(ours, compare(a, b, method=method), rtol=0, atol=atol)


def test_torch_blocks_cover_every_row(rng, monkeypatch):
    """With a tiny block size the torch path works through many row blocks."""
    monkeypatch.setattr(T, "_TORCH_BLOCK", 200)
    A, B = _rdms(rng, 11, 12, ties=True), _rdms(rng, 2, 12)
    for method in ("spearman", "tau-a"):
        np.testing.assert_allclose(compare(A, B, method=method, device="cpu"),
                                   compare(A, B, method=method), rtol=0, atol=1e-14)


def test_device_auto_without_cuda_is_numpy(rng):
    if torch.cuda.is_available():
        pytest.skip("auto picks CUDA here")
    A, B = _rdms(rng, 3, 10), _rdms(rng, 1, 10)
    assert T.check_device("auto", "spearman") is None
    np.testing.assert_array_equal(compare(A, B, device="auto"), compare(A, B))


def test_device_errors_come_before_any_work(rng):
    A, B = _rdms(rng, 2, 10), _rdms(rng, 2, 9)  # sizes differ: the device is checked first
    with pytest.raises(ValueError, match=r"method='corr_cov' runs with numpy only; torch "
                       r"devices support \{cosine, corr, spearman, tau-a, rho-a\}\. "
                       r"Use device=None"):
        compare(A, B, method="corr_cov", device="cpu")
    with pytest.raises(ValueError, match="Unknown value 'gpu0' for argument device"):
        compare(A, B, device="gpu0")
    with pytest.raises(TypeError, match="Argument device must be a string or torch.device, "
                       "got int"):
        compare(A, B, device=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            compare(A, B, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path_equals_numpy(rng):
    A, B = _rdms(rng, 40, 120), _rdms(rng, 2, 120, ties=True)
    A[::4] = np.round(A[::4] * 6)
    A[:, 7] = B[:, 7] = np.nan
    for method in TORCH_METHODS:
        atol = 0 if method == "tau-a" else 1e-13
        np.testing.assert_allclose(compare(A, B, method=method, device="cuda"),
                                   compare(A, B, method=method), rtol=0, atol=atol)
