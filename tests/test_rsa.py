"""dnnrsa.rsa: RDMs and their comparison, checked against rsatoolbox 0.3.2 (the numerical
reference), scipy, brute-force definitions and statistical invariants."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from rsatoolbox.data import Dataset
from rsatoolbox.data.noise import prec_from_residuals, prec_from_unbalanced
from rsatoolbox.rdm import RDMs, calc_rdm, get_categorical_rdm
from rsatoolbox.rdm import compare as rsa_compare
from scipy import stats

from dnnrsa import Activations
from dnnrsa.rsa import _rdm as _rdm_module
from dnnrsa.rsa import compare, factor_rdms, rdm
from dnnrsa.rsa._backend import NumpyOps, TorchOps, get_ops
from dnnrsa.rsa._rank import argsort_finite, discordant, discordant_numpy

COND = ("identity", "expression")
RTOL = 1e-8


def _design(n_id=4, n_expr=3, views=("HL", "S", "HR"), extra=None):
    rows = [dict(identity=f"F{i:02d}", expression=f"E{e}", viewpoint=v,
                 sex="m" if i % 2 else "f")
            for i in range(n_id) for e in range(n_expr) for v in views]
    return pd.DataFrame(rows)


def _pair(meta, X, **provenance):
    """The same data as dnnrsa Activations and as an rsatoolbox Dataset whose 'cond'
    descriptor is the identity|expression label."""
    acts = Activations.from_arrays(X, meta, **provenance)
    obs = {c: meta[c].astype(str).to_numpy() for c in meta.columns}
    obs["cond"] = (meta["identity"].astype(str) + "|" + meta["expression"].astype(str)).to_numpy()
    return acts, Dataset(X, obs_descriptors=obs)


def _assert_same_rdm(ours, ref, rtol=RTOL):
    """Same conditions in the same order, same values (relative to the largest entry)."""
    assert list(ours.pattern_descriptors["identity_expression"]) == list(
        ref.pattern_descriptors["cond"])
    a, b = ours.get_vectors(), ref.get_vectors()
    assert a.shape == b.shape
    scale = np.max(np.abs(b))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


def _unbalanced(rng, meta, X, n_drop=5, n_dup=6):
    """Drop some observations and duplicate others: unequal counts per condition."""
    keep = np.ones(len(meta), bool)
    keep[rng.choice(len(meta), n_drop, replace=False)] = False
    dup = rng.choice(len(meta), n_dup, replace=False)
    idx = np.concatenate([np.flatnonzero(keep), dup])
    Xn = X[idx] + rng.normal(scale=0.1, size=(len(idx), X.shape[1]))
    return meta.iloc[idx].reset_index(drop=True), Xn


# -- rdm() against rsatoolbox ----------------------------------------------------------------
@pytest.mark.parametrize("method", ["euclidean", "correlation", "mahalanobis", "poisson"])
@pytest.mark.parametrize("shape", [(3, 2, 5), (5, 3, 40), (4, 4, 120)])
@pytest.mark.parametrize("balanced", [True, False])
def test_rdm_equals_rsatoolbox(rng, method, shape, balanced):
    n_id, n_expr, n_feat = shape
    meta = _design(n_id, n_expr)
    # an offset makes poisson rates positive and tests the Gram trick against cancellation
    X = rng.normal(size=(len(meta), n_feat)) + 4.0
    if not balanced:
        meta, X = _unbalanced(rng, meta, X, n_drop=2, n_dup=3)
    acts, ds = _pair(meta, X)
    ours = rdm(acts, method=method, conditions=COND)
    ref = calc_rdm(ds, method=method, descriptor="cond")
    _assert_same_rdm(ours, ref)
    assert ours.dissimilarity_measure == method


@pytest.mark.parametrize("cv", ["viewpoint", "session"])
@pytest.mark.parametrize("balanced", [True, False])
def test_crossnobis_equals_rsatoolbox(rng, cv, balanced):
    meta = _design(4, 3)
    meta["session"] = np.tile(["s1", "s2", "s3", "s4"], len(meta) // 4 + 1)[: len(meta)]
    if cv == "session":  # every condition in every session: 4 repetitions per condition
        meta = pd.concat([_design(4, 3).assign(session=s) for s in ["s1", "s2", "s3", "s4"]],
                         ignore_index=True)
    X = rng.normal(size=(len(meta), 30)) + 2.0
    if not balanced:  # extra observations in some folds: unequal counts per fold
        extra = rng.choice(len(meta), 7, replace=False)
        meta = pd.concat([meta, meta.iloc[extra]], ignore_index=True)
        X = np.vstack([X, rng.normal(size=(7, 30))])
    acts, ds = _pair(meta, X)
    ours = rdm(acts, method="crossnobis", conditions=COND, cv=cv)
    ref = calc_rdm(ds, method="crossnobis", descriptor="cond", cv_descriptor=cv)
    _assert_same_rdm(ours, ref)
    assert ours.descriptors["cv_descriptor"] == cv


def _correlated(rng, n_obs, n_feat):
    """Noise with strong correlations between features (so shrinkage_diag shrinks < 1)."""
    mixing = rng.normal(size=(n_feat, n_feat)) * 0.6 + np.eye(n_feat)
    return rng.normal(size=(n_obs, n_feat)) @ mixing


@pytest.mark.parametrize("estimate,rsa_method", [
    ("shrinkage", "shrinkage_eye"), ("shrinkage_eye", "shrinkage_eye"),
    ("shrinkage_diag", "shrinkage_diag"), ("diag", "diag")])
@pytest.mark.parametrize("n_feat", [12, 60])  # more and fewer features than residuals
@pytest.mark.parametrize("method", ["mahalanobis", "crossnobis"])
def test_noise_estimates_equal_rsatoolbox(rng, estimate, rsa_method, n_feat, method):
    meta = _design(3, 3)
    X = _correlated(rng, len(meta), n_feat) + rng.normal(size=(1, n_feat)) * 3
    meta, X = _unbalanced(rng, meta, X, n_drop=0, n_dup=4)
    acts, ds = _pair(meta, X)
    prec = prec_from_unbalanced(ds, "cond", method=rsa_method)
    kw = dict(cv_descriptor="viewpoint") if method == "crossnobis" else {}
    ref = calc_rdm(ds, method=method, descriptor="cond", noise=prec, **kw)
    cv = "viewpoint" if method == "crossnobis" else None
    ours = rdm(acts, method=method, conditions=COND, cv=cv, noise=estimate)
    _assert_same_rdm(ours, ref, rtol=1e-7)  # rsatoolbox inverts the n x n matrix explicitly
    # the same precision given as a matrix takes the dense path
    _assert_same_rdm(rdm(acts, method=method, conditions=COND, cv=cv, noise=prec), ref)
    if estimate == "shrinkage_diag":
        assert 0 < ours.descriptors["noise_shrinkage"] < 1  # a real shrinkage, not a clip


def test_shrinkage_estimate_is_prec_from_residuals_with_residual_dof(rng):
    meta = _design(3, 2)
    X = _correlated(rng, len(meta), 20)
    acts, ds = _pair(meta, X)
    means = pd.DataFrame(X).groupby(ds.obs_descriptors["cond"]).transform("mean").to_numpy()
    dof = len(meta) - 6
    prec = prec_from_residuals(X - means, dof=dof, method="shrinkage_eye")
    ref = calc_rdm(ds, method="mahalanobis", descriptor="cond", noise=prec)
    _assert_same_rdm(rdm(acts, method="mahalanobis", conditions=COND, noise="shrinkage"), ref,
                     rtol=1e-7)


@pytest.mark.parametrize("method,kw", [
    ("euclidean", {}), ("correlation", {}), ("poisson", {}),
    ("mahalanobis", {"noise": "shrinkage_diag"}), ("crossnobis", {"cv": "viewpoint"}),
    ("crossnobis", {"cv": "viewpoint", "noise": "shrinkage"}),
    ("crossnobis", {"cv": "viewpoint", "unbalanced": True})])
def test_torch_path_equals_numpy_path(rng, monkeypatch, method, kw):
    """The torch kernels (those of a CUDA device) run on the CPU here, through the backend
    that device='cpu' never picks."""
    kw = dict(kw)
    meta = _design(4, 3)
    X = np.abs(_correlated(rng, len(meta), 25)) + 1.0
    if kw.pop("unbalanced", False):
        meta = pd.concat([meta, meta.iloc[:5]], ignore_index=True)
        X = np.vstack([X, X[:5] + 1])
    acts = Activations.from_arrays(X, meta)
    a = rdm(acts, method=method, conditions=COND, device="cpu", **kw)
    monkeypatch.setattr(_rdm_module, "get_ops", lambda device: TorchOps(torch.device("cpu")))
    b = rdm(acts, method=method, conditions=COND, **kw)
    np.testing.assert_allclose(b.get_vectors(), a.get_vectors(), rtol=1e-10,
                               atol=1e-12 * np.abs(a.get_vectors()).max())


@pytest.mark.gpu
def test_cuda_path_equals_numpy_path(rng):
    meta = _design(6, 4)
    acts = Activations.from_arrays(rng.normal(size=(len(meta), 300)), meta)
    for method, kw in [("correlation", {}), ("crossnobis", {"cv": "viewpoint"})]:
        a = rdm(acts, method=method, conditions=COND, device="cpu", **kw).get_vectors()
        b = rdm(acts, method=method, conditions=COND, device="cuda", **kw).get_vectors()
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12 * np.abs(a).max())
        auto = rdm(acts, method=method, conditions=COND, **kw).get_vectors()
        np.testing.assert_array_equal(auto, b)  # "auto" picks the GPU


def test_device_auto_picks_cuda_when_present_else_numpy_on_the_cpu(rng):
    expected = TorchOps if torch.cuda.is_available() else NumpyOps
    assert type(get_ops("auto")) is expected and type(get_ops(None)) is expected
    assert type(get_ops("cpu")) is NumpyOps
    meta = _design(3, 2)
    acts = Activations.from_arrays(rng.normal(size=(len(meta), 12)), meta)
    a = rdm(acts, method="euclidean", conditions=COND)
    b = rdm(acts, method="euclidean", conditions=COND, device="cpu")
    np.testing.assert_allclose(a.get_vectors(), b.get_vectors(), rtol=1e-10)
    with pytest.raises(ValueError, match="Unknown value 'tpu' for argument device"):
        rdm(acts, conditions=COND, device="tpu")
    with pytest.raises(TypeError, match="device must be a string or torch.device"):
        rdm(acts, conditions=COND, device=0)


def test_crossnobis_is_unbiased_between_conditions_of_one_distribution(rng):
    """Conditions A and B drawn from one distribution, F = 3 folds with one observation per
    condition and fold, P features of unit variance. With d_k = x_A,k - x_B,k (variance 2 per
    feature) the estimate is sum_{k != l} d_k . d_l / (F (F - 1) P): mean 0, and since the
    products for different fold pairs are uncorrelated, each with variance 4 P,
    Var = 2 C(F, 2) 4 P / (F (F - 1) P)^2 = 8 / (F (F - 1) P).
    1,000 disjoint condition pairs give 1,000 independent draws; their mean must lie within
    4 standard errors of 0, and their variance near the formula. The plain Euclidean
    estimate of the same pairs is biased upwards by 2 / F."""
    n_pairs, F, P = 1000, 3, 50
    meta = pd.DataFrame({"identity": np.repeat(np.arange(2 * n_pairs), F),
                         "viewpoint": np.tile(np.arange(F), 2 * n_pairs)})
    acts = Activations.from_arrays(rng.normal(size=(len(meta), P)), meta)
    i = np.arange(0, 2 * n_pairs, 2)  # pairs (0, 1), (2, 3), ...: no condition shared
    n = 2 * n_pairs
    k = i * n - i * (i + 1) // 2
    d = rdm(acts, method="crossnobis", conditions="identity", cv="viewpoint").get_vectors()[0, k]
    var = 8 / (F * (F - 1) * P)
    assert abs(d.mean()) < 4 * np.sqrt(var / n_pairs)
    assert d.var(ddof=1) == pytest.approx(var, rel=0.15)
    e = rdm(acts, method="euclidean", conditions="identity").get_vectors()[0, k]
    assert e.mean() == pytest.approx(2 / F, rel=0.05)


def test_conditions_follow_the_natural_level_order(rng):
    meta = _design(3, 3)
    order = ["E2", "E0", "E1"]  # not alphabetical
    meta["expression"] = pd.Categorical(meta["expression"], categories=order + ["E9"])
    X = rng.normal(size=(len(meta), 15))
    acts, ds = _pair(meta, X)
    ours = rdm(acts, method="correlation", conditions=COND)
    assert list(ours.pattern_descriptors["expression"][:3]) == order
    assert list(ours.pattern_descriptors["identity_expression"][:3]) == [
        "F00|E2", "F00|E0", "F00|E1"]
    ref = calc_rdm(ds, method="correlation", descriptor="cond")  # alphabetical order
    labels = list(ours.pattern_descriptors["identity_expression"])
    pos = [labels.index(c) for c in ref.pattern_descriptors["cond"]]
    ours.reorder(pos)
    np.testing.assert_allclose(ours.get_vectors(), ref.get_vectors(), rtol=RTOL)


def test_descriptors_carry_labels_and_provenance(rng):
    meta = _design(3, 2)
    acts = Activations.from_arrays(rng.normal(size=(len(meta), 10)), meta,
                                   layer="dense3", model="ccn2022", seed=4,
                                   preprocessing={"pool": "avg"})
    r = rdm(acts, method="euclidean", conditions=COND)
    pd_ = r.pattern_descriptors
    assert list(pd_["identity_expression"][:3]) == ["F00|E0", "F00|E1", "F01|E0"]
    assert list(pd_["identity"][:3]) == ["F00", "F00", "F01"]
    assert list(pd_["sex"]) == ["f", "f", "m", "m", "f", "f"]  # constant within conditions
    assert "viewpoint" not in pd_  # averaged over
    for key, value in [("layer", "dense3"), ("model", "ccn2022"), ("seed", 4)]:
        assert r.rdm_descriptors[key] == [value]
        assert r.descriptors[key] == value
    assert "preprocessing" not in r.descriptors  # not a scalar
    assert r.descriptors["conditions"] == "identity_expression"
    single = rdm(acts, method="euclidean", conditions="identity")
    assert list(single.pattern_descriptors["identity"]) == ["F00", "F01", "F02"]


@pytest.mark.parametrize("method", ["euclidean", "correlation", "poisson"])
def test_conditions_none_keeps_every_observation(rng, method):
    meta = _design(2, 2, views=("L", "R"))
    X = rng.random((len(meta), 9))
    acts, ds = _pair(meta, X)
    ours = rdm(acts, method=method, conditions=None)
    np.testing.assert_allclose(ours.get_vectors(), calc_rdm(ds, method=method).get_vectors(),
                               rtol=RTOL)
    assert list(ours.pattern_descriptors["viewpoint"]) == list(meta["viewpoint"])


def test_dataset_and_list_inputs(rng):
    meta = _design(3, 2)
    X = rng.normal(size=(len(meta), 10))
    acts, ds = _pair(meta, X)
    a = rdm(acts, method="correlation", conditions=COND)
    b = rdm(ds, method="correlation", conditions=COND)
    np.testing.assert_array_equal(a.get_vectors(), b.get_vectors())
    seeds = [Activations.from_arrays(X + s, meta, seed=s, layer="c1") for s in range(3)]
    stacked = rdm(seeds, method="euclidean", conditions=COND)
    assert stacked.n_rdm == 3 and stacked.rdm_descriptors["seed"] == [0, 1, 2]
    assert stacked.descriptors["layer"] == "c1"
    np.testing.assert_allclose(stacked.get_vectors()[1],
                               rdm(seeds[1], method="euclidean", conditions=COND).get_vectors()[0])
    with pytest.raises(ValueError, match="different conditions"):
        rdm([acts, acts[:6]], conditions=COND)


def test_rdm_bad_input_messages(rng):
    meta = _design(3, 2, views=("HL", "S"))
    acts = Activations.from_arrays(rng.normal(size=(len(meta), 8)), meta)
    with pytest.raises(ValueError, match=r"Unknown value 'corelation' for argument method\. "
                       r"Valid values are \{euclidean, correlation, mahalanobis, crossnobis, "
                       r"poisson\}"):
        rdm(acts, method="corelation")
    with pytest.raises(ValueError, match=r"Unknown value 'colour' for argument conditions.*"
                       r"Valid values are \{identity, expression, viewpoint, sex\}"):
        rdm(acts, conditions=("identity", "colour"))
    one_view = acts[acts.metadata.viewpoint.to_numpy() == "HL"]
    with pytest.raises(ValueError, match="cv='viewpoint' has only one level"):
        rdm(one_view, method="crossnobis", conditions=COND, cv="viewpoint")
    missing = acts[~((acts.metadata.identity == "F01") & (acts.metadata.viewpoint == "S")
                     & (acts.metadata.expression == "E0")).to_numpy()]
    with pytest.raises(ValueError, match=r"missing: F01\|E0 in viewpoint='S'"):
        rdm(missing, method="crossnobis", conditions=COND, cv="viewpoint")
    with pytest.raises(ValueError, match="needs argument cv"):
        rdm(acts, method="crossnobis", conditions=COND)
    with pytest.raises(ValueError, match="cv applies to method='crossnobis' only"):
        rdm(acts, method="euclidean", conditions=COND, cv="viewpoint")
    with pytest.raises(ValueError, match="is one of the condition factors"):
        rdm(acts, method="crossnobis", conditions=COND, cv="identity")
    with pytest.raises(ValueError, match=r"Unknown value 'ledoit' for argument noise\. Valid "
                       r"values are \{shrinkage, shrinkage_eye, shrinkage_diag, diag, residuals\}"):
        rdm(acts, method="mahalanobis", conditions=COND, noise="ledoit")
    with pytest.raises(ValueError, match=r"shape \(8, 8\) or its diagonal"):
        rdm(acts, method="mahalanobis", conditions=COND, noise=np.eye(7))
    with pytest.raises(ValueError, match="noise applies to method"):
        rdm(acts, method="correlation", conditions=COND, noise="shrinkage")
    with pytest.raises(ValueError, match="non-negative"):
        rdm(Activations.from_arrays(-np.ones((len(meta), 8)), meta), method="poisson",
            conditions=COND)
    dead = acts.X.copy()
    dead[:, 3] = 1.0  # a unit that never varies: zero residual variance
    with pytest.raises(ValueError, match="1 of 8 features have zero residual variance"):
        rdm(Activations.from_arrays(dead, meta), method="mahalanobis", conditions=COND,
            noise="shrinkage_diag")
    flat = acts.X.copy()
    flat[acts.metadata.identity.to_numpy() == "F02"] = 5.0
    with pytest.raises(ValueError, match=r"constant across features: F02\|E0"):
        rdm(Activations.from_arrays(flat, meta), method="correlation", conditions=COND)
    nan = acts.X.copy()
    nan[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        rdm(Activations.from_arrays(nan, meta), conditions=COND)
    with pytest.raises(ValueError, match="at least 2 conditions"):
        rdm(acts[acts.metadata.identity.to_numpy() == "F00"], conditions="identity")


# -- compare() -------------------------------------------------------------------------------
ALL_METHODS = ["cosine", "corr", "spearman", "tau-a", "rho-a", "corr_cov", "cosine_cov"]


def _vectors(rng, n_rdm, n_cond, ties=False):
    V = rng.random((n_rdm, n_cond * (n_cond - 1) // 2))
    if ties:
        V[::2] = np.round(V[::2] * 3)  # few distinct values, as in model RDMs
    return V


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("shape", [(1, 1, 5), (3, 4, 8), (5, 2, 13)])
@pytest.mark.parametrize("ties", [False, True])
def test_compare_equals_rsatoolbox(rng, method, shape, ties):
    n_a, n_b, n_cond = shape
    A, B = _vectors(rng, n_a, n_cond, ties), _vectors(rng, n_b, n_cond, ties)
    ra, rb = RDMs(A), RDMs(B)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = rsa_compare(ra, rb, method=method)
    ours = compare(ra, rb, method=method)
    assert ours.shape == (n_a, n_b)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(compare(A, B, method=method), ours, rtol=0, atol=0)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_compare_excludes_nan_entries_like_rsatoolbox(rng, method):
    A, B = _vectors(rng, 3, 9, ties=True), _vectors(rng, 2, 9)
    for V in (A, B):
        V[:, [0, 7, 20]] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = rsa_compare(A, B, method=method)
    np.testing.assert_allclose(compare(A, B, method=method), ref, rtol=1e-10, atol=1e-12)


def test_spearman_equals_scipy_spearmanr(rng):
    A = _vectors(rng, 4, 12, ties=True)
    B = _vectors(rng, 3, 12, ties=True)
    ours = compare(A, B, method="spearman")
    for i in range(4):
        for j in range(3):
            assert ours[i, j] == pytest.approx(stats.spearmanr(A[i], B[j]).statistic, abs=1e-12)


def _tau_a_brute(x, y):
    """(concordant - discordant) / (n (n - 1) / 2) over all pairs, ties count as neither."""
    s = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    n = len(x)
    return s[np.triu_indices(n, 1)].sum() / (n * (n - 1) / 2)


def test_tau_a_equals_its_definition_and_kendalltau(rng):
    A = _vectors(rng, 4, 10, ties=True)
    B = np.vstack([_vectors(rng, 2, 10, ties=True), np.round(_vectors(rng, 1, 10) * 2)])
    ours = compare(A, B, method="tau-a")
    n0 = A.shape[1] * (A.shape[1] - 1) / 2
    for i in range(len(A)):
        for j in range(len(B)):
            assert ours[i, j] == pytest.approx(_tau_a_brute(A[i], B[j]), abs=1e-12)
            # tau-b rescaled: tau_a = tau_b sqrt((n0 - ties_x)(n0 - ties_y)) / n0
            tx = sum(c * (c - 1) / 2 for c in np.unique(A[i], return_counts=True)[1])
            ty = sum(c * (c - 1) / 2 for c in np.unique(B[j], return_counts=True)[1])
            tau_b = stats.kendalltau(A[i], B[j]).statistic
            assert ours[i, j] == pytest.approx(tau_b * np.sqrt((n0 - tx) * (n0 - ty)) / n0,
                                               abs=1e-12)


def test_discordant_count_numpy_fallback_equals_compiled(rng):
    for n, levels in [(1, 3), (2, 2), (57, 4), (1000, 30), (999, 10**6)]:
        x = np.sort(rng.integers(1, levels + 1, n)).astype(np.intp)
        y = rng.integers(1, levels + 1, n).astype(np.intp)
        brute = int(np.sum(np.triu((x[:, None] < x[None, :]) & (y[:, None] > y[None, :]))))
        assert discordant_numpy(x, y) == brute
        assert discordant(x, y) == brute


def test_fast_argsort_sorts_adversarial_values(rng):
    """The packed-key argsort behind the rank methods: values that differ only in their
    last bits, signed zeros, ties, huge and tiny magnitudes, and a fallback size."""
    n = 3000
    cases = [
        rng.random(n),
        np.resize(np.repeat(rng.normal(size=n // 5), 5), n)
        * (1 + rng.integers(-3, 4, size=n) * 2.0**-50),  # collide in the packed keys
        np.where(rng.random(n) < 0.5, 0.0, -0.0),
        rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, size=n),
        np.round(rng.random(n) * 3),
        np.r_[rng.random(n - 1), 1e308],  # too large for the packed keys: plain argsort
        rng.random(50),
    ]
    for v in cases:
        order = argsort_finite(v)
        assert np.array_equal(np.sort(order), np.arange(len(v)))
        assert (np.diff(v[order]) >= 0).all()


def test_rank_methods_equal_rsatoolbox_on_larger_rdms_with_near_ties(rng):
    V = rng.random((3, 30 * 29 // 2))
    V[1] = np.round(V[1] * 4)
    V[2] = V[0] * (1 + rng.integers(-2, 3, V.shape[1]) * 2.0**-48)  # near-ties with row 0
    for method in ["spearman", "tau-a", "rho-a"]:
        np.testing.assert_allclose(compare(V, V, method=method), rsa_compare(V, V, method=method),
                                   rtol=1e-12, atol=1e-14)


def test_compare_many_vs_many_is_one_table(rng):
    A, B = _vectors(rng, 6, 10), _vectors(rng, 4, 10)
    for method in ALL_METHODS:
        table = compare(A, B, method=method)
        assert table.shape == (6, 4)
        np.testing.assert_allclose(table[2:3, 1:2], compare(A[2], B[1], method=method),
                                   rtol=1e-12)
        np.testing.assert_allclose(compare(B, A, method=method), table.T, rtol=1e-12,
                                   atol=1e-15)


def test_compare_accepts_square_matrices(rng):
    V = _vectors(rng, 2, 7)
    M = RDMs(V).get_matrices()
    np.testing.assert_allclose(compare(M, V, method="corr"), compare(V, V, method="corr"))


def test_compare_bad_input_messages(rng):
    with pytest.raises(ValueError, match=r"same size: rdms_a has 45 dissimilarities "
                       r"\(10 conditions\) per RDM, rdms_b has 36 dissimilarities "
                       r"\(9 conditions\)"):
        compare(_vectors(rng, 2, 10), _vectors(rng, 2, 9))
    with pytest.raises(ValueError, match=r"Unknown value 'kendall' for argument method\. "
                       r"Valid values are \{cosine, corr, spearman, tau-a, rho-a, corr_cov, "
                       r"cosine_cov\}"):
        compare(_vectors(rng, 1, 5), _vectors(rng, 1, 5), method="kendall")
    A, B = _vectors(rng, 1, 5), _vectors(rng, 1, 5)
    A[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN dissimilarities in different places"):
        compare(A, B)
    with pytest.raises(ValueError, match="not n \\(n - 1\\) / 2"):
        compare(np.ones(7), np.ones(7), method="cosine_cov")


# -- factor_rdms() ---------------------------------------------------------------------------
def test_factor_rdms_match_conditions_and_categorical_rdms(rng):
    meta = _design(4, 3)
    meta["expression"] = pd.Categorical(meta["expression"], categories=["E2", "E1", "E0"])
    acts = Activations.from_arrays(rng.normal(size=(len(meta), 6)), meta)
    data = rdm(acts, conditions=COND)
    models = factor_rdms(acts, conditions=COND)
    assert models.rdm_descriptors["name"] == ["identity", "expression", "sex"]  # viewpoint varies
    for key in ("identity", "expression", "identity_expression", "sex"):
        np.testing.assert_array_equal(models.pattern_descriptors[key],
                                      data.pattern_descriptors[key])
    for k, name in enumerate(models.rdm_descriptors["name"]):
        ref = get_categorical_rdm(list(data.pattern_descriptors[name]))
        np.testing.assert_array_equal(models.get_vectors()[k], ref.get_vectors()[0])
    # from the data RDM itself, and from a StimulusSet-like metadata table
    again = factor_rdms(data, factors=["expression", "sex"])
    np.testing.assert_array_equal(again.get_vectors(), models.get_vectors()[1:])
    np.testing.assert_array_equal(
        factor_rdms(meta, conditions=COND).get_vectors(), models.get_vectors())


def test_factor_rdm_compared_with_itself_is_one(rng):
    meta = _design(4, 3)
    models = factor_rdms(meta, conditions=("identity", "expression", "viewpoint"))
    assert models.rdm_descriptors["name"] == ["identity", "expression", "viewpoint", "sex"]
    for method in ["cosine", "corr", "spearman", "corr_cov", "cosine_cov"]:
        np.testing.assert_allclose(np.diag(compare(models, models, method=method)), 1.0,
                                   rtol=1e-12)
    # tau-a is not tie-corrected: with ties it stays below 1 by the tied pairs
    v = models.get_vectors()[0]
    n0 = len(v) * (len(v) - 1) / 2
    ties = sum(c * (c - 1) / 2 for c in np.unique(v, return_counts=True)[1])
    assert compare(v, v, method="tau-a")[0, 0] == pytest.approx((n0 - ties) / n0)


def test_factor_rdms_bad_input_messages(toy_stimuli):
    with pytest.raises(ValueError, match=r"Factor 'viewpoint' varies within the conditions "
                       r"'identity_expression'.*Usable factors here: \{identity, expression\}"):
        factor_rdms(toy_stimuli, conditions=COND, factors=["viewpoint"])
    with pytest.raises(ValueError, match=r"Unknown value 'gender' for argument factors.*"
                       r"Valid values are \{identity, expression, viewpoint\}"):
        factor_rdms(toy_stimuli, conditions=COND, factors=["gender"])
    models = factor_rdms(toy_stimuli, conditions=("identity", "viewpoint"))
    # the viewpoint levels keep their Categorical order HL, S, HR
    assert list(models.pattern_descriptors["viewpoint"][:3]) == ["HL", "S", "HR"]


def test_factor_rdms_positional_options_warn_and_give_the_same_rdms():
    meta = _design(4, 3)
    new = factor_rdms(meta, conditions=COND, factors=["identity", "sex"])
    with pytest.warns(FutureWarning, match=r"Passing conditions positionally to "
                      r"factor_rdms\(\) is deprecated.*write conditions=\.\.\."):
        one = factor_rdms(meta, COND, factors=["identity", "sex"])
    with pytest.warns(FutureWarning, match=r"Passing conditions, factors positionally"):
        both = factor_rdms(meta, COND, ["identity", "sex"])
    for old in (one, both):
        np.testing.assert_array_equal(old.get_vectors(), new.get_vectors())
        assert old.rdm_descriptors["name"] == new.rdm_descriptors["name"]
    with pytest.warns(FutureWarning, match="Passing conditions positionally"):
        identity = factor_rdms(meta, "identity")
    np.testing.assert_array_equal(identity.get_vectors(), factor_rdms(meta).get_vectors())
    with pytest.raises(TypeError, match="takes 1 positional argument"):
        factor_rdms(meta, COND, ["identity"], "extra")


def test_missing_factor_values_are_an_error_naming_the_argument(rng):
    meta = _design(3, 2)
    meta.loc[4, "expression"] = None
    meta.loc[[1, 7], "viewpoint"] = np.nan
    acts = Activations.from_arrays(rng.normal(size=(len(meta), 6)), meta)
    with pytest.raises(ValueError, match=r"Factor 'expression' \(argument conditions\) is "
                       r"missing for 1 of 18 observations.*Drop those rows or fill them in"):
        rdm(acts, conditions=COND)
    with pytest.raises(ValueError, match=r"Factor 'viewpoint' \(argument cv\) is missing "
                       r"for 2 of 17 observations"):
        rdm(acts[np.arange(18) != 4], method="crossnobis", conditions=COND, cv="viewpoint")
    with pytest.raises(ValueError, match=r"Factor 'expression' \(argument conditions\)"):
        factor_rdms(meta, conditions=COND)


def test_an_error_from_a_list_item_names_the_item():
    import pandas as pd

    from dnnrsa import Activations

    meta = pd.DataFrame({"identity": list("aabb")})
    good = Activations(np.arange(20.0).reshape(4, 5) % 7, meta)
    bad = Activations(np.full((4, 5), np.nan), meta)
    with pytest.raises(ValueError, match=r"^acts\[1\]: Argument acts contains NaN"):
        rdm([good, bad], method="euclidean")
