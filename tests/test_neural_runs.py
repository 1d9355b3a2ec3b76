"""`dnnrsa.neural.from_runs`: BOLD runs into Activations through nilearn's
FirstLevelModel, checked against direct FirstLevelModel fits (conditions, LSS trials,
residuals), a planted signal read out by `decode_activations`, and the errors it raises
before any fit."""

import logging
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import FirstLevelModel, make_first_level_design_matrix

from dnnrsa.neural import from_runs

SHAPE = (6, 6, 4)
AFFINE = np.diag([3.0, 3.0, 3.5, 1.0])
T_R = 2.0
N_SCANS = 60
CONDITIONS = ["F01_HA", "F01_SA", "M02_HA", "M02_SA"]


def _mask():
    m = np.zeros(SHAPE, np.uint8)
    m[1:5, 1:5, 1:3] = 1
    return m


def _events(rng, n_trials=8, conditions=CONDITIONS):
    onsets = np.sort(rng.choice(np.arange(2.0, N_SCANS * T_R - 16, 6.0), n_trials,
                                replace=False))
    kinds = rng.permutation(np.resize(conditions, n_trials))
    return pd.DataFrame({"onset": onsets, "duration": 1.0, "trial_type": kinds})


def _run(rng, events, patterns=None, noise=1.0, n_scans=N_SCANS):
    """A run: baseline 100 + noise (+ each condition's voxel pattern times its regressor)."""
    data = 100 + noise * rng.normal(size=SHAPE + (n_scans,))
    if patterns is not None:
        frame_times = np.arange(n_scans) * T_R
        design = make_first_level_design_matrix(frame_times, events, hrf_model="glover",
                                                drift_model=None)
        for cond, pattern in patterns.items():
            data += pattern[..., None] * design[cond].to_numpy()
    return nib.Nifti1Image(data.astype(np.float32), AFFINE)


@pytest.fixture
def two_runs(rng):
    events = [_events(rng), _events(rng)]
    return [_run(rng, ev) for ev in events], events


def _reference(img, events, **kwargs):
    model = FirstLevelModel(t_r=T_R, mask_img=nib.Nifti1Image(_mask(), AFFINE),
                            standardize=False, minimize_memory=False, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return model.fit(img, events)


def _masked(img, inside=None):
    inside = _mask().astype(bool) if inside is None else inside
    return np.asanyarray(img.dataobj)[inside]


@pytest.mark.parametrize("statistic", ["effect_size", "z_score"])
def test_conditions_equal_firstlevelmodel_contrasts(two_runs, statistic):
    bold, events = two_runs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acts = from_runs(bold, events, mask=nib.Nifti1Image(_mask(), AFFINE), t_r=T_R,
                         statistic=statistic)
    assert acts.X.shape == (8, int(_mask().sum())) and acts.X.dtype == np.float64
    assert acts.metadata["run"].tolist() == [1] * 4 + [2] * 4
    assert acts.metadata["trial_type"].tolist() == CONDITIONS * 2
    for r in range(2):
        model = _reference(bold[r], events[r])
        for tt in CONDITIONS:
            expect = _masked(model.compute_contrast(tt, output_type=statistic))
            row = acts.X[((acts.metadata.run == r + 1) & (acts.metadata.trial_type == tt))
                         .to_numpy()]
            np.testing.assert_allclose(row[0], expect, rtol=1e-6, atol=1e-10)
    assert acts.provenance["statistic"] == statistic and acts.provenance["n_runs"] == 2


def test_residuals_are_the_condition_models_residuals(two_runs):
    """Data minus design times parameters, the parameters being every design column's
    effect size from nilearn's own contrasts (nilearn's ``residuals`` attribute mixes raw
    data with the AR(1)-whitened design, so it is no reference)."""
    bold, events = two_runs
    acts = from_runs(bold, events, mask=nib.Nifti1Image(_mask(), AFFINE), t_r=T_R)
    expect, dof = [], 0
    for img, ev in zip(bold, events):
        model = _reference(img, ev)
        design = model.design_matrices_[0]
        betas = np.vstack([
            _masked(model.compute_contrast(np.eye(design.shape[1])[j],
                                           output_type="effect_size"))
            for j in range(design.shape[1])])
        # nilearn's signal_scaling=0: percent change from each voxel's mean over scans,
        # computed by nilearn in the images' float32
        data = _masked(img)
        scaled = 100 * (data / data.mean(axis=-1, keepdims=True) - 1)
        expect.append(scaled.T - design.to_numpy() @ betas)
        dof += design.shape[0] - np.linalg.matrix_rank(design.to_numpy())
    assert acts.residuals.data.shape == (2 * N_SCANS, int(_mask().sum()))
    assert acts.residuals.data.dtype == np.float64
    # float32 data: agreement to float32 precision of values of order 1
    np.testing.assert_allclose(acts.residuals.data, np.vstack(expect), rtol=0, atol=1e-4)
    assert acts.residuals.dof == dof


def test_lss_equals_a_loop_of_firstlevelmodel_fits(rng):
    events = _events(rng, n_trials=6)
    img = _run(rng, events)
    acts = from_runs(img, events, mask=nib.Nifti1Image(_mask(), AFFINE), t_r=T_R,
                     estimate="lss", factors="{identity}_{expression}")
    assert acts.metadata.columns.tolist() == ["run", "trial_type", "trial", "onset",
                                              "identity", "expression"]
    assert acts.metadata["trial"].tolist() == list(range(6))
    np.testing.assert_array_equal(acts.metadata["onset"], events["onset"])
    assert acts.metadata["trial_type"].tolist() == events["trial_type"].tolist()
    for trial in range(6):
        separate = events.copy()
        separate.loc[trial, "trial_type"] = "this_trial"
        model = _reference(img, separate)
        expect = _masked(model.compute_contrast("this_trial", output_type="effect_size"))
        np.testing.assert_allclose(acts.X[trial], expect, rtol=1e-6, atol=1e-10)
    # residuals come from the condition model, also for LSS
    cond = from_runs(img, events, mask=nib.Nifti1Image(_mask(), AFFINE), t_r=T_R)
    np.testing.assert_array_equal(acts.residuals.data, cond.residuals.data)
    assert acts.provenance["estimate"] == "lss"


def test_files_confounds_and_options_go_through(two_runs, tmp_path, rng):
    bold, events = two_runs
    bold_paths, event_paths = [], []
    for r, (img, ev) in enumerate(zip(bold, events)):
        bold_paths.append(tmp_path / f"sub-01_run-{r + 1}_bold.nii.gz")
        nib.save(img, bold_paths[-1])
        event_paths.append(tmp_path / f"sub-01_run-{r + 1}_events.tsv")
        ev.assign(response_time="n/a").to_csv(event_paths[-1], sep="\t", index=False)
    nib.save(nib.Nifti1Image(_mask(), AFFINE), tmp_path / "lFFA_mask.nii.gz")
    motion = [rng.normal(size=(N_SCANS, 2)), rng.normal(size=(N_SCANS, 2))]
    acts = from_runs(bold_paths, event_paths, mask=tmp_path / "lFFA_mask.nii.gz", t_r=T_R,
                     confounds=motion, hrf_model="spm", high_pass=0.02, smoothing_fwhm=4.0,
                     statistic="stat")
    options = dict(hrf_model="spm", high_pass=0.02, smoothing_fwhm=4.0)
    for r in range(2):
        model = FirstLevelModel(t_r=T_R, mask_img=tmp_path / "lFFA_mask.nii.gz",
                                standardize=False, minimize_memory=False, **options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            model.fit(bold_paths[r], events[r],
                      confounds=pd.DataFrame(motion[r], columns=["confound_0", "confound_1"]))
        expect = _masked(model.compute_contrast("M02_HA", output_type="stat"))
        row = acts.X[((acts.metadata.run == r + 1) & (acts.metadata.trial_type == "M02_HA"))
                     .to_numpy()][0]
        np.testing.assert_allclose(row, expect, rtol=1e-6, atol=1e-10)
    prov = acts.provenance
    assert prov["images"] == [str(p) for p in bold_paths]
    assert prov["region"] == "lFFA_mask" and prov["mask"] == str(tmp_path / "lFFA_mask.nii.gz")
    assert (prov["hrf_model"], prov["high_pass"], prov["smoothing_fwhm"]) == ("spm", 0.02, 4.0)
    assert prov["t_r"] == T_R and prov["source"] == "from_runs"


def test_factors_from_a_pattern_or_a_table(two_runs):
    bold, events = two_runs
    mask = nib.Nifti1Image(_mask(), AFFINE)
    acts = from_runs(bold, events, mask=mask, t_r=T_R, factors="{identity}_{expression}")
    assert acts.metadata["identity"].tolist() == ["F01", "F01", "M02", "M02"] * 2
    assert acts.metadata["expression"].tolist() == ["HA", "SA"] * 4
    table = pd.DataFrame({"trial_type": CONDITIONS[::-1] + ["unused"],
                          "gender": ["m", "m", "f", "f", "x"], "valence": [-1, 1, -1, 1, 0]})
    acts2 = from_runs(bold, events, mask=mask, t_r=T_R, factors=table)
    assert acts2.metadata["gender"].tolist() == ["f", "f", "m", "m"] * 2
    assert acts2.metadata["valence"].tolist() == [1, -1, 1, -1] * 2
    np.testing.assert_array_equal(acts.X, acts2.X)
    with pytest.raises(ValueError, match=r"4 trial_type\(s\) do not match the factors pattern "
                                         r"'\{identity\}-\{expression\}': \['F01_HA'"):
        from_runs(bold, events, mask=mask, t_r=T_R, factors="{identity}-{expression}")
    with pytest.raises(ValueError, match=r"no row for trial_type\(s\) \['F01_HA', 'F01_SA'\] "
                                         r"\(2 of 4 missing\)"):
        from_runs(bold, events, mask=mask, t_r=T_R, factors=table.iloc[:2])
    with pytest.raises(ValueError, match=r"lists trial_type\(s\) \['F01_HA'\] more than once"):
        from_runs(bold, events, mask=mask, t_r=T_R,
                  factors=pd.concat([table, table.iloc[[3]]]))
    with pytest.raises(ValueError, match=r"names factor\(s\) \['run'\], which from_runs writes"):
        from_runs(bold, events, mask=mask, t_r=T_R, factors="{identity}_{run}")
    with pytest.raises(ValueError, match=r"uses \{identity\} twice"):
        from_runs(bold, events, mask=mask, t_r=T_R, factors="{identity}_{identity}")
    with pytest.raises(ValueError, match=r"has no \{name\} field"):
        from_runs(bold, events, mask=mask, t_r=T_R, factors="F01_HA")


def test_invalid_voxels_in_a_run(two_runs, caplog):
    bold, events = two_runs
    data = np.asanyarray(bold[1].dataobj).copy()
    data[2, 2, 1, 10] = np.nan
    data[3, 4, 2, :] = 7.0
    bold = [bold[0], nib.Nifti1Image(data, AFFINE)]
    mask = nib.Nifti1Image(_mask(), AFFINE)
    with pytest.raises(ValueError, match=r"In run 2 \(in-memory image\) inside the mask, 1 of "
                                         r"32 voxels hold NaN.*\(2, 2, 1\); 1 of 32 voxels are "
                                         r"constant.*\(3, 4, 2\).*drop_invalid=True"):
        from_runs(bold, events, mask=mask, t_r=T_R)
    with caplog.at_level(logging.INFO, logger="dnnrsa"):
        acts = from_runs(bold, events, mask=mask, t_r=T_R, drop_invalid=True)
    assert "dropping 2 of 32 mask voxels" in caplog.text
    kept = _mask().astype(bool)
    kept[2, 2, 1] = kept[3, 4, 2] = False
    np.testing.assert_array_equal(np.asanyarray(acts.mask.dataobj), kept)
    assert acts.provenance["n_dropped"] == 2 and acts.X.shape[1] == 30
    model = FirstLevelModel(t_r=T_R, mask_img=nib.Nifti1Image(kept.astype(np.uint8), AFFINE),
                            standardize=False, minimize_memory=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model.fit(bold[0], events[0])
    expect = _masked(model.compute_contrast("F01_SA", output_type="effect_size"), kept)
    np.testing.assert_allclose(acts.X[1], expect, rtol=1e-6, atol=1e-10)


def test_planted_patterns_are_decoded_across_runs(rng):
    from dnnrsa.decoding import decode_activations

    patterns = {"A": rng.normal(size=SHAPE) * 10, "B": rng.normal(size=SHAPE) * 10}
    conditions = ["A_1", "A_2", "B_1", "B_2"]
    bold, events = [], []
    for _ in range(4):
        ev = _events(rng, n_trials=8, conditions=conditions)
        planted = {c: patterns[c[0]] for c in conditions}
        bold.append(_run(rng, ev, patterns=planted, noise=2.0))
        events.append(ev)
    acts = from_runs(bold, events, mask=nib.Nifti1Image(_mask(), AFFINE), t_r=T_R,
                     factors="{category}_{rep}")
    result = decode_activations(acts, target="category", cv="run", readout="linear")
    assert len(result.folds) == 4 and result.chance == 0.5
    assert result.accuracy >= 0.9, result
    # "rep" carries nothing (A_1 and A_2 share one pattern): the same readout is at chance
    null = decode_activations(acts, target="rep", cv="run", readout="linear")
    assert null.accuracy <= 0.75, null


def test_errors_come_before_any_fit(two_runs, monkeypatch, tmp_path):
    def no_fit(*args, **kwargs):
        raise AssertionError("FirstLevelModel.fit was called before the error")

    monkeypatch.setattr(FirstLevelModel, "fit", no_fit)
    bold, events = two_runs
    mask = nib.Nifti1Image(_mask(), AFFINE)
    for bad in (None, 0, -2.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"Argument t_r must be a finite number > 0.*the "
                                             r"repetition time in seconds, e.g. t_r=2.0"):
            from_runs(bold, events, mask=mask, t_r=bad)
    with pytest.raises(ValueError, match=r"Unknown value 'beta' for argument statistic\. "
                                         r"Valid values are \{effect_size, z_score"):
        from_runs(bold, events, mask=mask, t_r=T_R, statistic="beta")
    with pytest.raises(ValueError, match="Unknown value 'lsa' for argument estimate"):
        from_runs(bold, events, mask=mask, t_r=T_R, estimate="lsa")
    with pytest.raises(ValueError, match=r"events has 1 table\(s\) but bold has 2 run\(s\)"):
        from_runs(bold, events[:1], mask=mask, t_r=T_R)
    no_type = tmp_path / "run-2_events.tsv"
    events[1].drop(columns="trial_type").to_csv(no_type, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"events of run 2 \(.*run-2_events\.tsv\) lack column"
                                         r"\(s\) \['trial_type'\]; it has columns \['onset', "
                                         r"'duration'\]"):
        from_runs(bold, [events[0], no_type], mask=mask, t_r=T_R)
    with pytest.raises(ValueError, match=r"events of run 1 \(in-memory table\) have no rows"):
        from_runs(bold, [events[0].iloc[:0], events[1]], mask=mask, t_r=T_R)
    late = events[1].copy()
    late.loc[3, "onset"] = N_SCANS * T_R
    with pytest.raises(ValueError, match=r"Trial 3 of run 2 \(in-memory table\) has onset 120 "
                                         r"s, outside the run: the run has 60 scans x t_r 2 s"):
        from_runs(bold, [events[0], late], mask=mask, t_r=T_R)
    early = events[0].assign(onset=events[0]["onset"] - 3.0)
    with pytest.raises(ValueError, match=r"Trial 0 of run 1 .* has onset -1 s"):
        from_runs(bold, [early, events[1]], mask=mask, t_r=T_R)
    shifted = AFFINE.copy()
    shifted[2, 3] = 1.0
    with pytest.raises(ValueError, match=r"(?s)bold\[1\] \(in-memory image\) and mask "
                                         r"\(in-memory image\).*affine.*resample_to_img"):
        from_runs([bold[0], nib.Nifti1Image(bold[1].get_fdata(), shifted)], events,
                  mask=mask, t_r=T_R)
    with pytest.raises(ValueError, match=r"(?s)bold\[0\].*shape \(6, 6, 4\).*shape \(6, 6, 3\)"):
        from_runs(bold, events, mask=nib.Nifti1Image(_mask()[:, :, :3], AFFINE), t_r=T_R)
    with pytest.raises(ValueError, match=r"mask \(in-memory image\) must hold 0 and 1 only"):
        from_runs(bold, events, mask=nib.Nifti1Image(_mask() * 3, AFFINE), t_r=T_R)
    with pytest.raises(ValueError, match="has no voxels set to 1"):
        from_runs(bold, events, mask=nib.Nifti1Image(np.zeros(SHAPE, np.uint8), AFFINE),
                  t_r=T_R)
    with pytest.raises(ValueError, match=r"confounds\[1\] \(run 2\) has 59 rows but the run "
                                         r"has 60 scans"):
        from_runs(bold, events, mask=mask, t_r=T_R,
                  confounds=[np.zeros((60, 1)), np.zeros((59, 1))])
    gaps = pd.DataFrame({"fd": [np.nan] + [0.1] * 59})
    with pytest.raises(ValueError, match=r"confounds\[0\] \(run 1\) must hold finite numbers; "
                                         r"column\(s\) \['fd'\]"):
        from_runs(bold, events, mask=mask, t_r=T_R, confounds=[gaps, gaps])
    numeric = events[0].assign(trial_type=np.arange(len(events[0])))
    with pytest.raises(TypeError, match="'trial_type' of the events of run 1 .* must hold "
                                        "non-empty strings"):
        from_runs(bold, [numeric, events[1]], mask=mask, t_r=T_R)
    with pytest.raises(ValueError, match="Unknown value 'spline' for argument drift_model"):
        from_runs(bold, events, mask=mask, t_r=T_R, drift_model="spline")
    with pytest.raises(ValueError, match="Unknown value 2 for argument signal_scaling"):
        from_runs(bold, events, mask=mask, t_r=T_R, signal_scaling=2)
    with pytest.raises(ValueError, match=r"bold\[0\] \(in-memory image\) must be a 4-D image"):
        from_runs([nib.Nifti1Image(np.ones(SHAPE, np.float32), AFFINE)], events[:1],
                  mask=mask, t_r=T_R)
    nan_run = np.asanyarray(bold[0].dataobj).copy()
    nan_run[1, 1, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"In run 1 .* 1 of 32 voxels hold NaN"):
        from_runs([nib.Nifti1Image(nan_run, AFFINE), bold[1]], events, mask=mask, t_r=T_R)


def test_residuals_with_an_ols_noise_model_equal_nilearns(two_runs):
    """Where nilearn's ``residuals`` is right (no whitening: noise_model="ols"), ours equal
    it; with the default AR(1) model ours stay near the noise level and nilearn's do not."""
    from nilearn.glm.first_level import FirstLevelModel

    from dnnrsa.neural._runs import _residuals

    bold, events = two_runs
    mask = nib.Nifti1Image(_mask(), AFFINE)
    for noise_model in ("ols", "ar1"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nilearn's mask note
            model = FirstLevelModel(t_r=T_R, mask_img=mask, minimize_memory=False,
                                    noise_model=noise_model).fit(bold[0], events[0])
        ours = _residuals(model)
        theirs = _masked(model.residuals_[0]).T
        if noise_model == "ols":
            np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-8)
        else:
            assert ours.std() < theirs.std()
