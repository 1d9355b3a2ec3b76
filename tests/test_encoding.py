"""dnnrsa.encoding: voxel-wise ridge encoding models, checked against plain scikit-learn
loops, a brute-force alpha search, nilearn's masker and planted signals."""

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, PredefinedSplit
from sklearn.preprocessing import StandardScaler

from dnnrsa import Activations
from dnnrsa.encoding import DEFAULT_ALPHAS, EncodingResult, encode
from dnnrsa.encoding._encode import CONSTANT_RTOL, make_folds, standardise

N_COND = 24
WIDTHS = {"a": 10, "b": 12, "c": 16}


def _stimuli(n_cond=N_COND):
    return pd.DataFrame({"stimulus": [f"s{i:02d}" for i in range(n_cond)],
                         "identity": [f"id{i % 6}" for i in range(n_cond)]})


def _layers(rng, widths=WIDTHS, n_cond=N_COND, **prov):
    stim = _stimuli(n_cond)
    return {name: Activations(rng.normal(size=(n_cond, w)), stim, {"layer": name, **prov})
            for name, w in widths.items()}


def _brain(rng, layer, *, n_runs=3, n_vox=40, noise=1.0, signal=True, mask=None):
    """One row per run x stimulus; voxels a linear map of ``layer`` plus noise."""
    stim = _stimuli(len(layer))
    meta = pd.DataFrame({"run": np.repeat(np.arange(1, n_runs + 1), len(stim)),
                         "stimulus": np.tile(stim["stimulus"], n_runs),
                         "identity": np.tile(stim["identity"], n_runs)})
    rows = np.tile(np.arange(len(stim)), n_runs)
    Y = noise * rng.normal(size=(len(meta), n_vox))
    if signal:
        Y += layer.X[rows] @ rng.normal(size=(layer.n_features, n_vox)) / np.sqrt(
            layer.n_features)
    return Activations(Y, meta, {"region": "planted" if signal else "noise"}, mask=mask)


def _pearson(y, p):
    return np.array([np.corrcoef(y[:, j], p[:, j])[0, 1] for j in range(y.shape[1])])


def _design(layer, brain):
    index = {s: i for i, s in enumerate(layer.metadata["stimulus"])}
    return layer.X[[index[s] for s in brain.metadata["stimulus"]]]


# -- numbers against references -------------------------------------------------------------
def test_sklearn_backend_equals_plain_loop(rng):
    layers = _layers(rng)
    roi = _brain(rng, layers["b"], n_runs=3)
    res = encode(layers, roi, conditions="stimulus", cv="run", backend="sklearn")
    runs = roi.metadata["run"].to_numpy()
    for name, layer in layers.items():
        X, Y = _design(layer, roi), roi.X
        ref_r, ref_r2 = [], []
        for tr, te in LeaveOneGroupOut().split(X, groups=runs):
            sc = StandardScaler().fit(X[tr])
            model = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True)
            pred = model.fit(sc.transform(X[tr]), Y[tr]).predict(sc.transform(X[te]))
            ref_r.append(_pearson(Y[te], pred))
            ref_r2.append(r2_score(Y[te], pred, multioutput="raw_values"))
        key = ("model", 0, name, "planted")
        assert np.allclose(res.folds[key], ref_r)
        assert np.allclose(res.folds_r2[key], ref_r2)
        assert np.allclose(res.voxels[key]["r"], np.mean(ref_r, axis=0))
        row = res.table.set_index("layer").loc[name]
        assert row["mean_r"] == pytest.approx(np.mean(ref_r))
        assert row["n_folds"] == 3 and row["n_voxels"] == 40 and row["backend"] == "sklearn"
    assert res.fold_labels["planted"] == ["1", "2", "3"]
    assert np.isnan(res.table["p_value"]).all() and res.null is None


def _scaled(X, train, test, flat_rtol=None):
    """StandardScaler fit on the training rows; with ``flat_rtol``, also zero the columns
    whose training SD is <= flat_rtol x the root mean training variance (the rule encode
    documents), written here from the scaler's ``var_``."""
    sc = StandardScaler().fit(X[train])
    Xtr, Xte = sc.transform(X[train]), sc.transform(X[test])
    if flat_rtol is not None:
        flat = np.sqrt(sc.var_) <= flat_rtol * np.sqrt(sc.var_.mean())
        Xtr[:, flat] = 0.0
        Xte[:, flat] = 0.0
    return Xtr, Xte


def _brute_force_himalaya(X, Y, train, test, inner, alphas, flat_rtol=None):
    """Choose alpha per voxel by mean validation MSE over ``inner`` (himalaya's rule, larger
    alpha on a tie), refit on all training rows, predict the test rows."""
    Xtr, Xte = _scaled(X, train, test, flat_rtol)
    Ytr = Y[train]
    mse = np.zeros((len(alphas), Y.shape[1]))
    for a, alpha in enumerate(alphas):
        for itr, iva in inner:
            p = Ridge(alpha=alpha).fit(Xtr[itr], Ytr[itr]).predict(Xtr[iva])
            mse[a] += ((Ytr[iva] - p) ** 2).mean(0) / len(inner)
    best = np.argmax(-mse + 1e-10 * np.log(alphas)[:, None], axis=0)
    pred = np.empty((len(test), Y.shape[1]))
    for a in np.unique(best):
        cols = best == a
        fit = Ridge(alpha=alphas[a]).fit(Xtr, Ytr[:, cols])
        pred[:, cols] = fit.predict(Xte).reshape(len(test), -1)
    return pred, alphas[best]


@pytest.mark.parametrize("n_runs, width", [(4, 12), (3, 12), (3, 200)])
def test_himalaya_backend_equals_brute_force_search(rng, n_runs, width):
    # 4 runs: 3 training runs, inner leave-one-run-out; 3 runs: inner shuffled 5-fold.
    # 200 features for 48 training rows: the linear-kernel path must give the same fits.
    layer = _layers(rng, {"b": width})["b"]
    roi = _brain(rng, layer, n_runs=n_runs, n_vox=30)
    alphas = np.logspace(-2, 5, 8)
    res = encode(layer, roi, conditions="stimulus", cv="run", alphas=alphas,
                 backend="himalaya", device="cpu", seed=3)
    X, Y = _design(layer, roi), roi.X
    runs = roi.metadata["run"].to_numpy()
    ref_r, ref_alpha = [], []
    for tr, te in LeaveOneGroupOut().split(X, groups=runs):
        if n_runs >= 4:
            inner = list(LeaveOneGroupOut().split(tr[:, None], groups=runs[tr]))
        else:
            inner = list(KFold(5, shuffle=True, random_state=3).split(tr[:, None]))
        pred, alpha = _brute_force_himalaya(X, Y, tr, te, inner, alphas)
        ref_r.append(_pearson(Y[te], pred))
        ref_alpha.append(alpha)
    key = ("model", 0, "b", "planted")
    assert np.allclose(res.folds[key], ref_r, atol=1e-8)
    assert res.table["backend"].iloc[0] == "himalaya:numpy"
    modes = [pd.Series(col).mode() for col in np.array(ref_alpha).T]
    expect = [m.iloc[0] if len(m) == 1 else np.median(col)
              for m, col in zip(modes, np.array(ref_alpha).T)]
    assert np.allclose(res.voxels[key]["alpha"], expect)


# -- invariants -----------------------------------------------------------------------------
def test_planted_layer_wins_and_permutation_null(rng):
    layers = _layers(rng)
    planted = _brain(rng, layers["b"], noise=0.5)
    noise = _brain(rng, layers["b"], signal=False)
    res = encode(layers, {"planted": planted, "noise": noise}, conditions="stimulus",
                 backend="sklearn", n_permutations=19, seed=0)
    t = res.table.set_index(["roi", "layer"])
    assert t.loc["planted", "mean_r"].idxmax() == "b"
    assert t.loc[("planted", "b"), "mean_r"] > 0.5
    assert t.loc[("planted", "b"), "p_value"] == pytest.approx(1 / 20)
    assert (t.loc["noise", "mean_r"].abs() < 0.15).all()
    assert t.loc[("noise", "b"), "p_value"] > 0.1
    key = ("model", 0, "b", "planted")
    assert res.null[key].shape == (19,) and (res.null[key] < t.loc[("planted", "b"),
                                                                    "mean_r"]).all()


def test_brain_row_order_does_not_matter(rng):
    layers = _layers(rng, {"a": 10, "b": 12})
    roi = _brain(rng, layers["b"], n_runs=4)  # himalaya's inner splits: leave one run out
    order = rng.permutation(len(roi))
    shuffled = Activations(roi.X[order], roi.metadata.iloc[order], roi.provenance)
    for backend in ("sklearn", "himalaya"):
        kw = dict(conditions="stimulus", backend=backend, n_permutations=3, device="cpu")
        one, two = encode(layers, roi, **kw), encode(layers, shuffled, **kw)
        for key in one.voxels:
            assert np.allclose(one.voxels[key], two.voxels[key], equal_nan=True)
            assert np.allclose(one.null[key], two.null[key])


def test_feature_rows_of_a_condition_are_averaged(rng):
    layer = _layers(rng, {"b": 12})["b"]
    roi = _brain(rng, layer)
    # two exemplars per stimulus whose mean is the layer's row
    jitter = rng.normal(size=layer.X.shape)
    two = Activations(np.vstack([layer.X + jitter, layer.X - jitter]),
                      pd.concat([layer.metadata, layer.metadata]), {"layer": "b"})
    kw = dict(conditions="stimulus", backend="sklearn")
    assert np.allclose(encode(two, roi, **kw).voxels[("model", 0, "b", "planted")],
                       encode(layer, roi, **kw).voxels[("model", 0, "b", "planted")])


def test_conditions_tuple_averages_every_matching_row(rng):
    layer = _layers(rng, {"b": 12})["b"]
    roi = _brain(rng, layer)
    ids = layer.metadata["identity"]
    means = Activations(np.vstack([layer.X[(ids == i).to_numpy()].mean(0) for i in sorted(
        set(ids))]), pd.DataFrame({"identity": sorted(set(ids))}), {"layer": "b"})
    brain_ids = roi.metadata["identity"]
    expanded = Activations(means.X[[sorted(set(ids)).index(i) for i in brain_ids]],
                           roi.metadata, {"layer": "b"})
    kw = dict(backend="sklearn", cv="run")
    key = ("model", 0, "b", "planted")
    assert np.allclose(encode(layer, roi, conditions=("identity",), **kw).voxels[key],
                       encode(expanded, roi, **kw).voxels[key])
    # two columns name the same conditions as one
    assert np.allclose(encode(layer, roi, conditions=("stimulus", "identity"), **kw).voxels[key],
                       encode(layer, roi, conditions="stimulus", **kw).voxels[key])
    few = layer[np.flatnonzero(layer.metadata["stimulus"] != "s07")]
    with pytest.raises(ValueError, match=r"no feature rows: \[\('s07', 'id1'\)\]"):
        encode(few, roi, conditions=("stimulus", "identity"), **kw)


def test_conditions_none_pairs_rows_one_to_one(rng):
    layer = _layers(rng, {"b": 12})["b"]
    roi = _brain(rng, layer)
    expanded = Activations(_design(layer, roi), roi.metadata, {"layer": "b"})
    kw = dict(backend="sklearn", cv="run")
    a = encode(expanded, roi, **kw).voxels[("model", 0, "b", "planted")]
    b = encode(layer, roi, conditions="stimulus", **kw).voxels[("model", 0, "b", "planted")]
    assert np.allclose(a, b)
    with pytest.raises(ValueError, match=r"24 rows and the brain data 72.*conditions="):
        encode(layer, roi, backend="sklearn")


def test_same_seed_same_numbers(rng):
    layers = _layers(rng, {"a": 10, "b": 12})
    roi = _brain(rng, layers["b"])
    kw = dict(conditions="stimulus", cv=4, backend="himalaya", n_permutations=4, device="cpu")
    one, two, other = encode(layers, roi, seed=1, **kw), encode(layers, roi, seed=1, **kw), \
        encode(layers, roi, seed=2, **kw)
    for key in one.voxels:
        assert np.array_equal(one.folds[key], two.folds[key])
        assert np.array_equal(one.null[key], two.null[key])
        assert not np.allclose(one.folds[key], other.folds[key])
    pd.testing.assert_frame_equal(one.table, two.table)


def test_constant_voxel_is_nan_and_left_out_of_means(rng):
    layer = _layers(rng, {"b": 12})["b"]
    roi = _brain(rng, layer, n_vox=20)
    Y = roi.X.copy()
    Y[:, 3] = 0.1
    res = encode(layer, Activations(Y, roi.metadata, roi.provenance), conditions="stimulus",
                 backend="sklearn")
    vox = res.voxels[("model", 0, "b", "planted")]
    assert np.isnan(vox["r"][3]) and np.isnan(vox["r2"][3])
    assert np.isfinite(vox["r"].drop(3)).all()
    row = res.table.iloc[0]
    assert row["n_voxels_nan"] == 1 and row["n_voxels"] == 20
    assert row["mean_r"] == pytest.approx(vox["r"].drop(3).mean())


def test_group_splitter_holds_out_whole_conditions(rng):
    layer = _layers(rng, {"b": 12})["b"]
    roi = _brain(rng, layer)
    codes = pd.factorize(roi.metadata["stimulus"])[0]
    folds, name = make_folds(GroupKFold(4), roi.metadata, codes, seed=0, inner=True,
                             what="roi")
    assert name == "GroupKFold" and len(folds) == 4
    for f in folds:
        assert not set(codes[f.train]) & set(codes[f.test])
        assert all(len(np.intersect1d(f.train[a], f.train[b])) == 0 for a, b in f.inner)
    # identity as cv: new identities in every test fold, inner LOGO over training identities
    folds, _ = make_folds("identity", roi.metadata, codes, seed=0, inner=True, what="roi")
    ids = roi.metadata["identity"].to_numpy()
    assert len(folds) == 6 and all(len(f.inner) == 5 for f in folds)
    assert all(not set(ids[f.train]) & set(ids[f.test]) for f in folds)


def test_several_networks_and_seeds(rng):
    nets = [_layers(rng, {"a": 10, "b": 12}, model="toy", seed=s) for s in (7, 8)]
    roi = _brain(rng, nets[0]["b"])
    res = encode(nets, roi, conditions="stimulus", backend="sklearn")
    assert list(res.voxels) == [("toy", s, layer, "planted") for s in (7, 8)
                                for layer in ("a", "b")]
    assert res.table[["network", "seed", "layer"]].values.tolist() == [
        ["toy", 7, "a"], ["toy", 7, "b"], ["toy", 8, "a"], ["toy", 8, "b"]]
    with pytest.raises(ValueError, match="layer 'a' of network 'toy' seed 7 twice"):
        encode([nets[0], nets[0]], roi, conditions="stimulus", backend="sklearn")


def test_himalaya_backend_is_restored(rng, monkeypatch):
    from himalaya.backend import get_backend, set_backend

    from dnnrsa.encoding._ridge import Solver

    layer = _layers(rng, {"b": 12})["b"]
    roi = _brain(rng, layer)
    previous = get_backend()
    set_backend("torch")
    try:
        encode(layer, roi, conditions="stimulus", backend="himalaya", device="cpu")
        assert get_backend().name == "torch"

        def boom(*args, **kwargs):
            assert get_backend().name == "numpy"
            raise RuntimeError("fit failed")

        monkeypatch.setattr(Solver, "fit_predict", boom)
        with pytest.raises(RuntimeError, match="fit failed"):
            encode(layer, roi, conditions="stimulus", backend="himalaya", device="cpu")
        assert get_backend().name == "torch"
    finally:
        set_backend(previous)


# -- outputs --------------------------------------------------------------------------------
def test_to_nifti_round_trip(rng, tmp_path):
    from nilearn.maskers import NiftiMasker

    layers = _layers(rng, {"a": 10, "b": 12})
    grid = np.zeros((5, 6, 4), dtype=np.uint8)
    grid.flat[rng.choice(grid.size, 40, replace=False)] = 1
    mask = nib.Nifti1Image(grid, np.diag([2.0, 2.0, 2.0, 1.0]))
    roi = _brain(rng, layers["b"], mask=mask)
    bare = _brain(rng, layers["b"])
    res = encode(layers, {"V1": roi, "bare": bare}, conditions="stimulus", backend="sklearn")
    for score in ("r", "r2", "alpha"):
        path = res.to_nifti(tmp_path / f"{score}.nii.gz", layer="b", roi="V1", score=score)
        img = nib.load(path)
        assert np.allclose(img.affine, mask.affine)
        back = np.ravel(NiftiMasker(mask, standardize=None).fit_transform(img))
        assert np.allclose(back, res.voxels[("model", 0, "b", "V1")][score], rtol=1e-6)
    with pytest.raises(ValueError, match=r"matches 2 results.*layer="):
        res.to_nifti(tmp_path / "x.nii", roi="V1")
    with pytest.raises(ValueError, match="ROI 'bare' has no mask"):
        res.to_nifti(tmp_path / "x.nii", roi="bare", layer="a")
    with pytest.raises(ValueError, match=r"Unknown value 'd' for argument layer.*\{a, b\}"):
        res.to_nifti(tmp_path / "x.nii", roi="V1", layer="d")
    with pytest.raises(ValueError, match="Unknown value 'rho' for argument score"):
        res.to_nifti(tmp_path / "x.nii", roi="V1", layer="a", score="rho")


def test_plot_draws_mean_r_per_layer(rng):
    import matplotlib

    matplotlib.use("Agg")
    layers = _layers(rng)
    rois = {"planted": _brain(rng, layers["b"]), "noise": _brain(rng, layers["b"], signal=False)}
    res = encode(layers, rois, conditions="stimulus", backend="sklearn")
    assert isinstance(res, EncodingResult)
    ax = res.plot()
    assert [c.get_label() for c in ax.containers] == ["planted", "noise"]
    for cont, roi in zip(ax.containers, ["planted", "noise"]):
        y = cont.lines[0].get_ydata()
        assert np.allclose(y, res.table.loc[res.table["roi"] == roi, "mean_r"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]


# -- bad inputs -----------------------------------------------------------------------------
@pytest.fixture
def small(rng):
    layer = _layers(rng, {"b": 12})["b"]
    return layer, _brain(rng, layer, n_vox=10)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(backend="torch"), ValueError, r"Unknown value 'torch' for argument backend"),
    (dict(alphas=[1.0, -1.0]), ValueError, r"alphas must hold finite penalties > 0.*-1\.0"),
    (dict(alphas=[1.0, np.inf]), ValueError, r"alphas must hold finite penalties > 0"),
    (dict(alphas=[]), ValueError, r"non-empty 1-D sequence"),
    (dict(alphas="big"), TypeError, r"alphas must be a 1-D sequence"),
    (dict(cv="session"), ValueError, r"Unknown value 'session' for argument cv.*run"),
    (dict(cv=1), ValueError, r"cv as an int must be between 2 and the 72 rows"),
    (dict(cv=PredefinedSplit([0] * 72)), ValueError, r"gives 1 fold\(s\).*at least 2"),
    (dict(cv=36), ValueError, r"at least 5 and 3\. Use fewer folds"),
    (dict(cv=object()), ValueError, r"Unknown value .* for argument cv"),
    (dict(n_permutations=-1), ValueError, r"n_permutations must be an integer >= 0"),
    (dict(seed=-3), ValueError, r"seed must be an integer"),
    (dict(backend="sklearn", device="mps"), ValueError, r"MPS|CPU only"),
    (dict(conditions="colour"), ValueError, r"Unknown value 'colour' for argument conditions"),
    (dict(conditions=3), TypeError, r"conditions must be None, a column name"),
])
def test_bad_options(small, kwargs, error, match):
    layer, roi = small
    kwargs = {"conditions": "stimulus", **kwargs}
    with pytest.raises(error, match=match):
        encode(layer, roi, **kwargs)


def test_leaky_splitter_is_refused(small):
    class Leaky:
        def split(self, X, y=None, groups=None):
            n = len(X)
            for half in (np.arange(n // 2), np.arange(n // 2, n)):
                yield np.arange(n), half

    layer, roi = small
    with pytest.raises(ValueError, match="both its training and test set"):
        encode(layer, roi, conditions="stimulus", cv=Leaky())


def test_bad_data(small):
    layer, roi = small
    X = layer.X.copy()
    X[2, :3] = np.nan
    nan_layer = Activations(X, layer.metadata, {"layer": "b"})
    with pytest.raises(ValueError, match=r"layer 'b'.* 3 NaN or infinite value\(s\) in 1 of 24"):
        encode(nan_layer, roi, conditions="stimulus")
    Y = roi.X.copy()
    Y[5, 0] = np.inf
    with pytest.raises(ValueError, match=r"ROI 'planted'.* 1 NaN or infinite"):
        encode(layer, Activations(Y, roi.metadata, roi.provenance), conditions="stimulus")
    with pytest.raises(ValueError, match=r"1 brain condition\(s\).*no feature rows: \['s05'\]"):
        encode(layer[np.flatnonzero(layer.metadata["stimulus"] != "s05")], roi,
               conditions="stimulus")
    one_run = roi[np.flatnonzero(roi.metadata["run"] == 1)]
    with pytest.raises(ValueError, match=r"cv factor 'run'.*fewer than 2 unique groups"):
        encode(layer, one_run, conditions="stimulus", cv="run")
    with pytest.raises(TypeError, match="Argument features must be an Activations"):
        encode(layer.X, roi)
    with pytest.raises(TypeError, match=r"brain\['V1'\] must be a dnnrsa.Activations"):
        encode(layer, {"V1": roi.X}, conditions="stimulus")


def test_cuda_without_gpu_is_an_error(small):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    layer, roi = small
    with pytest.raises(ValueError, match="CUDA is not available"):
        encode(layer, roi, conditions="stimulus", backend="himalaya", device="cuda")


@pytest.mark.gpu
def test_himalaya_on_cuda_matches_cpu(rng):
    layer = _layers(rng, {"b": 12})["b"]
    roi = _brain(rng, layer, n_runs=4)
    kw = dict(conditions="stimulus", backend="himalaya")
    cpu = encode(layer, roi, device="cpu", **kw)
    gpu = encode(layer, roi, device="cuda", **kw)
    assert gpu.table["backend"].iloc[0] == "himalaya:torch_cuda"
    key = ("model", 0, "b", "planted")
    assert np.allclose(gpu.folds[key], cpu.folds[key], atol=1e-3)


def test_default_cv_holds_out_whole_conditions_in_every_run(rng):
    """cv="conditions" (the default): no condition is on both sides of an outer split or of
    an inner (himalaya) split, so a layer is scored on stimuli it never saw."""
    from dnnrsa.encoding._encode import make_folds

    layer = _layers(rng, {"b": 12})["b"]
    roi = _brain(rng, layer)
    codes = roi.metadata["stimulus"].astype("category").cat.codes.to_numpy()
    folds, name = make_folds("conditions", roi.metadata, codes, seed=0, inner=True, what="x")
    assert name == "conditions" and len(folds) == 5
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(len(roi)))
    for f in folds:
        assert not set(codes[f.train]) & set(codes[f.test])
        for tr, va in f.inner:
            assert not set(codes[f.train][tr]) & set(codes[f.train][va])
    res = encode(layer, roi, conditions="stimulus", backend="sklearn")
    assert res.table["n_folds"].iloc[0] == 5


# -- near-constant training columns of a sparse wide layer ---------------------------------
def _sparse_wide(rng, *, bad=True, offset=0.5):
    """40 stimuli x 600 post-ReLU-like features (36% non-zero; 16% with offset=1.5) driven
    by 3 latent factors, 5 blocks of 8, and 20 voxels that mix the latents, plus noise. With ``bad``,
    column 0 is 0 except for a rounding-level 3e-7 on stimulus 0 (block 0) and a real 0.05
    on stimulus 8 (block 1): what measured dense1 of an untrained ccn2022 holds (2.5e-7 in
    one training face, 0.03 in a test face, z = 7e5, a fold's mean R^2 = -876)."""
    latent = rng.normal(size=(40, 3))
    X = np.maximum(latent @ rng.normal(size=(3, 600)) + 0.3 * rng.normal(size=(40, 600))
                   - offset, 0.0)
    X[:, 0] = 0.0
    if bad:
        X[0, 0], X[8, 0] = 3e-7, 0.05
    Y = latent @ rng.normal(size=(3, 20)) + 0.5 * rng.normal(size=(40, 20))
    stim = pd.DataFrame({"stimulus": [f"s{i:02d}" for i in range(40)],
                         "block": np.repeat(np.arange(5), 8)})
    return (Activations(X, stim, {"layer": "wide"}),
            Activations(Y, stim, {"region": "planted"}))


def test_rounding_level_column_no_longer_wrecks_a_fold(rng):
    layer, roi = _sparse_wide(rng)
    X, Y = layer.X, roi.X
    blocks = roi.metadata["block"].to_numpy()
    alphas = np.logspace(-2, 5, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no extrapolation warning once the column is zeroed
        res = encode(layer, roi, cv="block", alphas=alphas, backend="himalaya", device="cpu")
    key = ("model", 0, "wide", "planted")
    folds = list(LeaveOneGroupOut().split(X, groups=blocks))
    ref_r2, ref_alpha, plain_r2 = [], [], []
    for tr, te in folds:
        inner = list(LeaveOneGroupOut().split(tr[:, None], groups=blocks[tr]))
        pred, alpha = _brute_force_himalaya(X, Y, tr, te, inner, alphas, CONSTANT_RTOL)
        ref_r2.append(r2_score(Y[te], pred, multioutput="raw_values"))
        ref_alpha.append(alpha)
        pred, _ = _brute_force_himalaya(X, Y, tr, te, inner, alphas)  # plain StandardScaler
        plain_r2.append(r2_score(Y[te], pred, multioutput="raw_values").mean())
    # the failure, reproduced by plain standardisation: only the fold holding out block 1
    # (stimulus 8's 0.05 over a training SD of 5e-8) collapses
    assert plain_r2[1] < -100
    assert all(v > 0 for i, v in enumerate(plain_r2) if i != 1)
    # encode follows the reference with the documented rule, fold by fold
    assert np.allclose(res.folds_r2[key], ref_r2, atol=1e-8)
    assert np.allclose(res.voxels[key]["r2"], np.mean(ref_r2, axis=0), atol=1e-8)
    assert res.table["mean_r2"].iloc[0] > 0.2
    # and rounding noise counts as the 0 it stands for: the same with the 3e-7 set to 0
    X0 = X.copy()
    X0[0, 0] = 0.0
    clean = encode(Activations(X0, layer.metadata, {"layer": "wide"}), roi, cv="block",
                   alphas=alphas, backend="himalaya", device="cpu")
    assert np.allclose(clean.folds_r2[key], res.folds_r2[key], atol=1e-6)


def test_rounding_level_column_sklearn_backend(rng):
    layer, roi = _sparse_wide(rng)
    X, Y = layer.X, roi.X
    blocks = roi.metadata["block"].to_numpy()
    res = encode(layer, roi, cv="block", backend="sklearn")
    ref = []
    for tr, te in LeaveOneGroupOut().split(X, groups=blocks):
        Xtr, Xte = _scaled(X, tr, te, CONSTANT_RTOL)
        pred = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True).fit(Xtr, Y[tr]).predict(Xte)
        ref.append(r2_score(Y[te], pred, multioutput="raw_values"))
    assert np.allclose(res.folds_r2[("model", 0, "wide", "planted")], ref, atol=1e-8)
    assert np.min(np.mean(ref, axis=1)) > 0


def test_standardise_matches_standard_scaler_and_zeroes_flat_columns(rng):
    X = rng.normal(size=(30, 6)) * [1.0, 2.0, 0.5, 1.0, 1.0, 3.0] + 4.0
    X[:, 3] = 7.0                       # exactly constant
    X[:, 4] = 1e-9 * rng.normal(size=30)  # rounding level against the others' SD ~1.5
    train, test = np.arange(20), np.arange(20, 30)
    Xtr, Xte, n_flat = standardise(X[train], X[test])
    sc = StandardScaler().fit(X[train])
    keep = [0, 1, 2, 5]
    assert n_flat == 2
    assert np.allclose(Xtr[:, keep], sc.transform(X[train])[:, keep], atol=1e-12)
    assert np.allclose(Xte[:, keep], sc.transform(X[test])[:, keep], atol=1e-12)
    assert not Xtr[:, [3, 4]].any() and not Xte[:, [3, 4]].any()
    assert Xtr.dtype == Xte.dtype == np.float64


def test_real_but_tiny_training_activity_warns_naming_the_layer(rng):
    # Sparser units (16% non-zero): column 367 is 0.003 on one of 32 training stimuli and
    # 1.33 on a held-out one (z = 2.6e3). That is data, not rounding: encode keeps the
    # documented standardisation, and says which layer and fold extrapolate.
    layer, roi = _sparse_wide(rng, offset=1.5)
    with pytest.warns(RuntimeWarning, match=r"layer 'wide' of 'model' \(seed 0\), fold '3'"):
        res = encode(layer, roi, cv="block", backend="sklearn")
    r2 = res.folds_r2[("model", 0, "wide", "planted")].mean(axis=1)
    assert r2[3] < -100 and np.all(r2[[1, 2, 4]] > -1)
