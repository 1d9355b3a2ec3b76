"""The simulated fMRI subject: a GLM with the true model recovers the planted amplitudes,
the design and volume keep their promises, the snr is what was asked for, and every bad
input is refused before any work."""

import math
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import FirstLevelModel, make_first_level_design_matrix
from nilearn.maskers import NiftiMasker
from nilearn.masking import apply_mask
from nilearn.signal import create_cosine_drift

import dnnrsa.datasets._simulated_fmri as sim
from dnnrsa import Activations
from dnnrsa.datasets._simulated_fmri import SimulatedFMRI, simulated_fmri


def _glm_maps(sub, output_type, **options):
    """One map per condition (rows in stimulus order, columns in mask order) from a
    FirstLevelModel fitted to all runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's notes on masks and contrasts
        glm = FirstLevelModel(t_r=sub.t_r, hrf_model="glover", drift_model="cosine",
                              high_pass=0.01, signal_scaling=False, mask_img=sub.mask,
                              **options).fit(sub.bold, sub.events)
        return np.stack([apply_mask(glm.compute_contrast(tt, output_type=output_type), sub.mask)
                         for tt in sub.conditions["trial_type"]])


def _design(events, n_scans, t_r, trial_types):
    """The reference regressors: nilearn's own design matrix, columns in stimulus order."""
    frame_times = np.linspace(0, (n_scans - 1) * t_r, n_scans)
    dm = make_first_level_design_matrix(frame_times, events, hrf_model="glover",
                                        drift_model=None)
    return dm[list(trial_types)].to_numpy()


def _region(sub):
    return int(np.asanyarray(sub.region_mask.dataobj).sum())


# -- the planted answer ---------------------------------------------------------------------
def test_glm_recovers_amplitudes_exactly_without_noise(toy_stimuli):
    # the GLM with the same HRF and a cosine drift model is the true model: at a huge snr
    # the betas are the amplitudes, drift and baseline removed
    sub = simulated_fmri(toy_stimuli, source="identity", n_runs=1, n_voxels=200, snr=1e5,
                         seed=3)
    betas = _glm_maps(sub, "effect_size")
    np.testing.assert_allclose(betas, sub.amplitudes, atol=2e-3)


def test_glm_recovers_planted_signal_and_noise_region_is_null(toy_stimuli):
    sub = simulated_fmri(toy_stimuli, source="identity", n_runs=2, n_voxels=300, snr=2.0,
                         seed=1)
    n_region = _region(sub)
    betas = _glm_maps(sub, "effect_size")
    r = np.corrcoef(betas[:, :n_region].ravel(), sub.amplitudes[:, :n_region].ravel())[0, 1]
    assert r > 0.85
    # a lower snr recovers less
    low = simulated_fmri(toy_stimuli, source="identity", n_runs=2, n_voxels=300, snr=0.25,
                         seed=1)
    betas_low = _glm_maps(low, "effect_size")
    r_low = np.corrcoef(betas_low[:, :n_region].ravel(),
                        low.amplitudes[:, :n_region].ravel())[0, 1]
    assert r_low < r - 0.2
    # noise region: true amplitude 0 and white noise, so with the OLS noise model the
    # z-scores are standard normal
    z = _glm_maps(sub, "z_score", noise_model="ols")[:, n_region:]
    assert abs(z.mean()) < 0.15
    assert 0.9 < z.std() < 1.1
    region_z = _glm_maps(sub, "z_score", noise_model="ols")[:, :n_region]
    assert region_z.std() > 2  # the region does carry signal


def test_factor_source_patterns(toy_stimuli):
    sub = simulated_fmri(toy_stimuli, source="expression", n_runs=1, n_voxels=100, seed=0)
    n_region = _region(sub)
    region = sub.amplitudes[:, :n_region]
    expression = toy_stimuli.metadata["expression"].to_numpy()
    patterns = {}
    for level in np.unique(expression):
        rows = region[expression == level]
        np.testing.assert_array_equal(rows, np.broadcast_to(rows[0], rows.shape))
        patterns[level] = rows[0]
    a, b = patterns.values()
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.5
    np.testing.assert_allclose([region.mean(), region.std()], [0, 1], atol=1e-12)
    np.testing.assert_array_equal(sub.amplitudes[:, n_region:], 0)
    assert sub.source == "factor 'expression' (2 levels)"


def _layer(toy_stimuli, rng, n_features=40):
    X = rng.standard_normal((len(toy_stimuli), n_features))
    return Activations(X, toy_stimuli.metadata, {"layer": "fc1", "model": "toy"})


def test_activations_source_follows_feature_similarity(toy_stimuli, rng):
    acts = _layer(toy_stimuli, rng)
    sub = simulated_fmri(toy_stimuli, source=acts, n_runs=1, n_voxels=6000, seed=0)
    n_region = _region(sub)
    A = sub.amplitudes[:, :n_region]
    X = acts.X
    Z = X - X.mean(0)
    gram = Z @ Z.T / Z.shape[1]
    # the voxels of Z @ W / sqrt(F) have covariance gram over stimuli: so have ours
    ours = A @ A.T / n_region
    iu = np.triu_indices(len(A))
    assert np.corrcoef(ours[iu], gram[iu])[0, 1] > 0.95
    # a brute-force Z @ W mix agrees with ours about the stimulus similarity structure
    W = rng.standard_normal((Z.shape[1], n_region))
    brute = Z @ W / math.sqrt(Z.shape[1])
    brute = (brute - brute.mean()) / brute.std()
    assert np.corrcoef(ours[iu], (brute @ brute.T / n_region)[iu])[0, 1] > 0.9
    np.testing.assert_allclose([A.mean(), A.std()], [0, 1], atol=1e-12)
    assert sub.source == "activations fc1 of toy (40 features)"


def test_activations_source_keeps_the_layer_geometry(toy_stimuli, rng):
    acts = _layer(toy_stimuli, rng, n_features=10)
    base = simulated_fmri(toy_stimuli, source=acts, n_runs=1, n_voxels=50, seed=4)
    # one feature rescaled: the layer's geometry changes, so does the region
    X = acts.X.copy()
    X[:, 3] = 50 * X[:, 3]
    rescaled = simulated_fmri(toy_stimuli, source=Activations(X, toy_stimuli.metadata),
                              n_runs=1, n_voxels=50, seed=4)
    assert not np.allclose(rescaled.amplitudes, base.amplitudes, atol=1e-3)
    # every feature scaled alike and shifted: the same geometry, the same region
    X = 3.0 * acts.X + rng.normal(size=acts.X.shape[1])
    X = np.column_stack([X, np.full(len(X), 2.5)])  # constant: dropped
    other = Activations(X, toy_stimuli.metadata, {"layer": "fc1"})
    changed = simulated_fmri(toy_stimuli, source=other, n_runs=1, n_voxels=50, seed=4)
    np.testing.assert_allclose(changed.amplitudes, base.amplitudes, atol=1e-9)
    assert changed.source == "activations fc1 (10 features, 1 constant dropped)"


# -- design and volume ----------------------------------------------------------------------
def test_design_invariants(toy_stimuli):
    t_r, soa, duration = 1.5, 3.0, 0.5
    sub = simulated_fmri(toy_stimuli, source="identity", n_runs=3, n_voxels=250,
                         region_fraction=0.3, t_r=t_r, soa=soa, duration=duration, seed=2)
    trial_types = sub.conditions["trial_type"].tolist()
    assert trial_types == [f"stim{i:03d}" for i in range(len(toy_stimuli))]
    orders = []
    for img, events in zip(sub.bold, sub.events, strict=True):
        assert list(events.columns) == ["onset", "duration", "trial_type"]
        assert sorted(events["trial_type"]) == sorted(trial_types)
        onsets = events["onset"].to_numpy()
        gaps = np.diff(onsets)
        assert onsets[0] == pytest.approx(2 * t_r)
        assert (gaps >= soa).all() and (gaps < 1.5 * soa).all()
        np.testing.assert_array_equal(events["duration"], duration)
        n_scans = img.shape[-1]
        assert n_scans == math.ceil((onsets[-1] + 20) / t_r)
        assert onsets[-1] + duration < (n_scans - 1) * t_r
        assert img.get_data_dtype() == np.float32
        assert img.header.get_zooms() == pytest.approx((3, 3, 3, t_r))
        orders.append(events["trial_type"].tolist())
    assert orders[0] != orders[1] != orders[2]  # a fresh random order each run

    brain = np.asanyarray(sub.mask.dataobj)
    region = np.asanyarray(sub.region_mask.dataobj)
    noise = np.asanyarray(sub.noise_mask.dataobj)
    atlas = np.asanyarray(sub.atlas.dataobj)
    assert brain.dtype == region.dtype == noise.dtype == np.uint8
    assert brain.sum() == 250 and region.sum() == round(0.3 * 250)
    np.testing.assert_array_equal(region + noise, brain)
    assert not (region & noise).any()
    np.testing.assert_array_equal(atlas, region * 1 + noise * 2)
    assert sub.labels == {1: "region", 2: "noise"}
    # a slab at low x: every region voxel at or below every noise voxel's x
    assert np.nonzero(region)[0].max() <= np.nonzero(noise)[0].min()
    np.testing.assert_allclose(np.diag(sub.mask.affine), [3, 3, 3, 1])
    # amplitudes are in NiftiMasker's column order: non-zero exactly on the region
    in_region = NiftiMasker(sub.mask, standardize=None).fit().transform(sub.region_mask).ravel()
    np.testing.assert_array_equal(np.abs(sub.amplitudes).sum(0) > 0, in_region > 0)
    # conditions: trial_type, then the stimulus factors in stimulus order
    assert list(sub.conditions.columns) == ["trial_type", "identity", "expression", "viewpoint"]
    pd.testing.assert_frame_equal(sub.conditions.iloc[:, 1:], toy_stimuli.metadata)


def test_image_id_names_conditions():
    stim = pd.DataFrame({"identity": list("aabb"), "image_id": ["a1", "a2", "b1", "b2"]})
    sub = simulated_fmri(stim, source="identity", n_runs=1, n_voxels=20)
    assert sub.conditions["trial_type"].tolist() == ["a1", "a2", "b1", "b2"]
    assert sorted(sub.events[0]["trial_type"]) == ["a1", "a2", "b1", "b2"]
    stim["image_id"] = ["x", "x", "y", "z"]  # not unique: numbered instead
    sub = simulated_fmri(stim, source="identity", n_runs=1, n_voxels=20)
    assert sub.conditions["trial_type"].tolist() == ["stim000", "stim001", "stim002", "stim003"]


def test_regressors_are_nilearns_design_columns(toy_stimuli):
    sub = simulated_fmri(toy_stimuli, source="identity", n_runs=1, n_voxels=20, seed=5)
    events, n_scans = sub.events[0], sub.bold[0].shape[-1]
    trial_types = sub.conditions["trial_type"]
    np.testing.assert_allclose(sim._regressors(events, list(trial_types), n_scans, sub.t_r),
                               _design(events, n_scans, sub.t_r, trial_types), atol=1e-12)


def test_drift_lies_below_the_high_pass_cutoff():
    for n_scans, t_r in [(70, 2.0), (200, 2.0), (300, 1.0), (40, 0.5)]:
        drifts = sim._cosine_drifts(n_scans, t_r)
        frame_times = np.linspace(0, (n_scans - 1) * t_r, n_scans)
        basis = create_cosine_drift(0.01, frame_times)
        coef, *_ = np.linalg.lstsq(basis, drifts, rcond=None)
        np.testing.assert_allclose(basis @ coef, drifts, atol=1e-10)
        assert drifts.shape[1] == min(3, math.ceil(2 * n_scans * t_r * 0.01) - 1)


# -- snr ------------------------------------------------------------------------------------
@pytest.mark.parametrize("snr", [0.5, 3.0])
def test_empirical_snr_matches_request(toy_stimuli, snr):
    sub = simulated_fmri(toy_stimuli, source="identity", n_runs=2, n_voxels=2000, snr=snr,
                         seed=7)
    n_region = _region(sub)
    trial_types = sub.conditions["trial_type"]
    signal, rss, dof, rss_const, dof_const = [], 0.0, 0, 0.0, 0
    for img, events in zip(sub.bold, sub.events, strict=True):
        n_scans = img.shape[-1]
        signal.append(_design(events, n_scans, sub.t_r, trial_types)
                      @ sub.amplitudes[:, :n_region])
        # noise region: baseline + drift + noise; the cosine model takes out the first two
        Y = apply_mask(img, sub.noise_mask).astype(np.float64)
        basis = create_cosine_drift(0.01, np.linspace(0, (n_scans - 1) * sub.t_r, n_scans))
        resid = Y - basis @ np.linalg.lstsq(basis, Y, rcond=None)[0]
        rss += (resid**2).sum()
        dof += (n_scans - basis.shape[1]) * Y.shape[1]
        rss_const += ((Y - Y.mean(0)) ** 2).sum()
        dof_const += (n_scans - 1) * Y.shape[1]
    noise_sd = math.sqrt(rss / dof)
    signal_sd = np.concatenate(signal).std(axis=0).mean()
    assert signal_sd / noise_sd == pytest.approx(snr, rel=0.05)
    assert noise_sd == pytest.approx(sub.noise_sd, rel=0.05)
    # there is a drift for the cosine model to remove
    assert rss_const / dof_const > 1.2 * noise_sd**2


# -- reproducibility and files --------------------------------------------------------------
def test_same_seed_same_data(toy_stimuli):
    opts = dict(source="identity", n_runs=2, n_voxels=60)
    a, b = simulated_fmri(toy_stimuli, **opts, seed=9), simulated_fmri(toy_stimuli, **opts, seed=9)
    c = simulated_fmri(toy_stimuli, **opts, seed=10)
    for x, y in zip(a.bold, b.bold, strict=True):
        np.testing.assert_array_equal(x.get_fdata(), y.get_fdata())
    for x, y in zip(a.events, b.events, strict=True):
        pd.testing.assert_frame_equal(x, y)
    np.testing.assert_array_equal(a.amplitudes, b.amplitudes)
    assert a.noise_sd == b.noise_sd
    assert not np.array_equal(a.amplitudes, c.amplitudes)
    assert not a.events[0].equals(c.events[0])
    assert a.bold[0].shape != c.bold[0].shape or not np.array_equal(
        a.bold[0].get_fdata(), c.bold[0].get_fdata())


def test_save_writes_readable_bids_like_files(toy_stimuli, tmp_path):
    sub = simulated_fmri(toy_stimuli, source="identity", n_runs=2, n_voxels=60, seed=1)
    assert isinstance(sub, SimulatedFMRI)
    paths = sub.save(tmp_path / "sub")
    names = sorted(p.name for p in (tmp_path / "sub").iterdir())
    assert names == sorted([
        "atlas.nii.gz", "conditions.tsv", "mask.nii.gz",
        "sub-01_task-faces_run-1_bold.nii.gz", "sub-01_task-faces_run-1_events.tsv",
        "sub-01_task-faces_run-2_bold.nii.gz", "sub-01_task-faces_run-2_events.tsv",
    ])
    for k in range(2):
        img = nib.load(paths["bold"][k])
        np.testing.assert_array_equal(img.get_fdata(), sub.bold[k].get_fdata())
        np.testing.assert_array_equal(img.affine, sub.mask.affine)
        assert img.header.get_zooms()[3] == pytest.approx(sub.t_r)
        pd.testing.assert_frame_equal(pd.read_csv(paths["events"][k], sep="\t"), sub.events[k])
    np.testing.assert_array_equal(nib.load(paths["mask"]).get_fdata(), sub.mask.get_fdata())
    atlas = nib.load(paths["atlas"])
    np.testing.assert_array_equal(np.asanyarray(atlas.dataobj), np.asanyarray(sub.atlas.dataobj))
    conditions = pd.read_csv(paths["conditions"], sep="\t")
    pd.testing.assert_frame_equal(conditions, sub.conditions.astype(str))


def test_realistic_size_has_the_documented_run_length():
    # 80 stimuli once per run: about 200 volumes per run (the size benchmarks/bench_brain.py
    # times; speed is measured there, not here)
    stim = pd.DataFrame({"identity": np.repeat([f"id{i}" for i in range(8)], 10)})
    sub = simulated_fmri(stim, source="identity", n_runs=6, n_voxels=2000)
    for img, events in zip(sub.bold, sub.events, strict=True):
        last = events["onset"].max()
        assert img.shape[-1] == int(np.ceil((last + 20.0) / sub.t_r)) > 190


# -- bad input ------------------------------------------------------------------------------
@pytest.fixture
def no_work(monkeypatch):
    """Any bad input must be refused before the design and volumes are built."""
    def fail(*args, **kwargs):
        raise AssertionError("work started before the input was checked")
    monkeypatch.setattr(sim, "_regressors", fail)
    monkeypatch.setattr(sim, "_volume", fail)


@pytest.mark.parametrize("options, error, match", [
    (dict(n_runs=0), ValueError, "n_runs must be an integer >= 1, got 0"),
    (dict(n_runs=2.0), TypeError, "n_runs must be an integer"),
    (dict(n_voxels=1), ValueError, "n_voxels must be an integer >= 2, got 1"),
    (dict(region_fraction=0.0), ValueError, "region_fraction must lie strictly between 0 and 1"),
    (dict(region_fraction=1.0), ValueError, "region_fraction must lie strictly between 0 and 1"),
    (dict(region_fraction=1.5), ValueError, "region_fraction must lie strictly between"),
    (dict(region_fraction="half"), TypeError, "region_fraction must be a number"),
    (dict(n_voxels=2, region_fraction=0.1), ValueError, "give 0 region voxels"),
    (dict(n_voxels=3, region_fraction=0.9), ValueError, "give 3 region voxels"),
    (dict(snr=0), ValueError, "snr must be a finite number > 0, got 0"),
    (dict(snr=-1.0), ValueError, "snr must be a finite number > 0"),
    (dict(snr=float("nan")), ValueError, "snr must be a finite number > 0, got nan"),
    (dict(snr=float("inf")), ValueError, "snr must be a finite number > 0, got inf"),
    (dict(t_r=0), ValueError, "t_r must be a finite number > 0"),
    (dict(soa=-2.0), ValueError, "soa must be a finite number > 0"),
    (dict(duration=0), ValueError, "duration must be a finite number > 0"),
    (dict(duration=5.0, soa=4.0), ValueError, r"duration \(5 s\) is longer than soa \(4 s\)"),
    (dict(seed=-1), ValueError, "seed must be an integer"),
    (dict(source="identiy"), ValueError,
     r"Unknown value 'identiy' for argument source.*\{identity, expression, viewpoint\}"),
    (dict(source=3), TypeError, "source must be a factor name"),
])
def test_bad_options(toy_stimuli, no_work, options, error, match):
    options = {"source": "identity", **options}
    with pytest.raises(error, match=match):
        simulated_fmri(toy_stimuli, **options)


def test_bad_stimuli(toy_stimuli, no_work):
    with pytest.raises(ValueError, match="stimuli is empty"):
        simulated_fmri(pd.DataFrame({"identity": []}), source="identity")
    with pytest.raises(TypeError, match="stimuli must be a dnnrsa.StimulusSet or a pandas"):
        simulated_fmri(["a", "b"], source="identity")
    table = toy_stimuli.metadata.assign(trial_type="x")
    with pytest.raises(ValueError, match="already has a 'trial_type' column"):
        simulated_fmri(table, source="identity")
    table = toy_stimuli.metadata.astype(object)
    table.loc[2, "identity"] = None
    with pytest.raises(ValueError, match="Factor 'identity' .*missing for 1 of 24"):
        simulated_fmri(table, source="identity")


def test_bad_activations_source(toy_stimuli, rng, no_work):
    acts = _layer(toy_stimuli, rng)
    with pytest.raises(ValueError, match="source has 23 rows but there are 24 stimuli"):
        simulated_fmri(toy_stimuli, source=acts[:23])
    shuffled = acts[np.r_[1, 0, 2:24]]
    with pytest.raises(ValueError, match=r"column 'viewpoint' differs \(first at row 0"):
        simulated_fmri(toy_stimuli, source=shuffled)
    X = acts.X.copy()
    X[5, 7] = np.nan
    X[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"source contains 2 NaN or Inf value\(s\)"):
        simulated_fmri(toy_stimuli, source=Activations(X, toy_stimuli.metadata))
    flat = Activations(np.ones((24, 5)), toy_stimuli.metadata)
    with pytest.raises(ValueError, match="no feature that varies over the 24 stimuli"):
        simulated_fmri(toy_stimuli, source=flat)


def test_source_without_signal_is_refused():
    # one level and one region voxel: every amplitude equal, no signal to scale to 1
    stim = pd.DataFrame({"identity": ["a", "a", "a"]})
    with pytest.raises(ValueError, match="same amplitude in all 1 region voxels"):
        simulated_fmri(stim, source="identity", n_voxels=2)


def test_subjects_noise_regions_are_independent(toy_stimuli):
    """Different seeds are independent subjects: their noise-region crossnobis RDMs
    correlate 0 on average. One triplet's noise ceiling can still sit well above 0 (seeds
    0-2 of the model-vs-brain example: lower bound 0.125), because a crossnobis RDM of
    pure noise holds about half its variance in condition main effects (d_ij contains
    <e_i, e'_i> + <e_j, e'_j>), so two RDMs agree or disagree over only ~n_conditions
    degrees of freedom: measured over 24 seeds with 48 faces, pairwise Spearman mean 0.000,
    SD 0.069, against SD 0.028 for i.i.d. vectors of the same length."""
    from itertools import combinations

    from scipy.stats import spearmanr

    from dnnrsa.neural import from_runs
    from dnnrsa.rsa import rdm

    V = []
    for seed in range(8):
        sub = simulated_fmri(toy_stimuli, source="identity", n_runs=4, n_voxels=120, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nilearn's notes on masks
            acts = from_runs(sub.bold, sub.events, mask=sub.noise_mask, t_r=sub.t_r,
                             factors=sub.conditions, region="noise")
        V.append(rdm(acts, method="crossnobis", conditions="trial_type", cv="run",
                     noise="residuals").get_vectors()[0])
    V = np.array(V)
    rho = np.array([spearmanr(V[i], V[j])[0] for i, j in combinations(range(len(V)), 2)])
    # 8 seeds, 24 conditions: measured mean -0.034, SD 0.10 over the 28 pairs; noise shared
    # between seeds would push the mean towards the 0.9 of the planted region
    assert abs(rho.mean()) < 0.1
    # the cause of the wide spread: the additive condition effects c_i + c_j
    n = len(toy_stimuli)
    iu = np.triu_indices(n, 1)
    A = np.zeros((len(iu[0]), n))
    A[np.arange(len(iu[0])), iu[0]] = A[np.arange(len(iu[0])), iu[1]] = 1.0
    Vc = V - V.mean(axis=1, keepdims=True)
    fit = A @ np.linalg.lstsq(A, Vc.T, rcond=None)[0]
    share = (fit ** 2).sum(axis=0) / (Vc ** 2).sum(axis=1)
    assert np.all((share > 0.2) & (share < 0.8))  # measured 0.37-0.65
