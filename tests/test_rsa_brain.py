"""dnnrsa.rsa.compare_to_brain and plot_brain_comparison: layers x regions x seeds, checked
against rsatoolbox 0.3.2 (compare, boot_noise_ceiling, calc_rdm) and a planted layer."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from rsatoolbox.data import Dataset  # noqa: E402
from rsatoolbox.data.noise import prec_from_residuals  # noqa: E402
from rsatoolbox.inference import boot_noise_ceiling  # noqa: E402
from rsatoolbox.rdm import calc_rdm, concat  # noqa: E402
from rsatoolbox.rdm import compare as rsa_compare  # noqa: E402

from dnnrsa import Activations, Residuals  # noqa: E402
from dnnrsa.rsa import _brain, compare_to_brain, plot_brain_comparison, rdm  # noqa: E402

N_COND = 14
STIMS = [f"s{i:02d}" for i in range(N_COND)]


def _layers(rng, names=("a", "b", "c"), n_feat=40, **provenance):
    meta = pd.DataFrame({"stim": STIMS, "sex": ["mf"[i % 2] for i in range(N_COND)]})
    return {k: Activations(rng.normal(size=(N_COND, n_feat)), meta, {"layer": k, **provenance})
            for k in names}


def _subject(rng, patterns, noise_sd, n_vox=40, n_runs=3, residuals=False, region=None):
    """Repeated measurements (runs) of the condition patterns seen through a random
    voxel mixing, plus noise."""
    meta = pd.DataFrame([dict(stim=s, run=f"r{r}") for r in range(n_runs) for s in STIMS])
    codes = np.tile(np.arange(N_COND), n_runs)
    mix = rng.normal(size=(patterns.shape[1], n_vox)) / np.sqrt(patterns.shape[1])
    X = patterns[codes] @ mix + noise_sd * rng.normal(size=(len(meta), n_vox))
    res = Residuals(rng.normal(size=(60, n_vox)), 55) if residuals else None
    return Activations(X, meta, {"region": region} if region else {}, residuals=res)


def _dataset(acts):
    meta = acts.metadata
    return Dataset(acts.X, obs_descriptors={c: meta[c].astype(str).to_numpy() for c in meta})


def _brain_rdms(subjects):
    """Reference brain RDMs from rsatoolbox, one per subject."""
    return concat([calc_rdm(_dataset(s), method="correlation", descriptor="stim")
                   for s in subjects])


# -- values against references ---------------------------------------------------------------
def test_planted_layer_ranks_first_and_a_noise_region_sits_at_zero(rng):
    layers = _layers(rng, model="net")
    b = layers["b"].X
    brain = {
        "V1": [_subject(rng, b, 1.0) for _ in range(5)],
        "FFA": [_subject(rng, b, 2.0) for _ in range(5)],
        "noise": [_subject(rng, np.zeros_like(b), 1.0) for _ in range(5)],
    }
    table = compare_to_brain(layers, brain, conditions="stim", n_boot=200)
    assert len(table) == 3 * 3
    for roi in ("V1", "FFA"):
        rows = table[table.roi == roi].set_index("layer")
        assert rows["value"].idxmax() == "b"
        assert rows.loc["b", "value"] > rows.drop("b")["value"].max() + 0.15
        assert rows.loc["b", "ci_low"] > 0  # clearly above zero
        assert rows.loc["b", "value"] < rows.loc["b", "ceiling_high"]
    noise = table[table.roi == "noise"]
    assert (noise["value"].abs() < 0.2).all()
    assert ((noise["ci_low"] < 0) & (noise["ci_high"] > 0)).all()


#: The references below compute correlation RDMs on both sides (the defaults are Euclidean).
CORRELATION = dict(rdm_method="correlation", model_rdm_method="correlation")


@pytest.mark.parametrize("method", ["spearman", "corr"])
def test_values_and_ceilings_equal_rsatoolbox(rng, method):
    layers = _layers(rng)
    subjects = [_subject(rng, layers["b"].X, 1.5) for _ in range(4)]
    ref_brain = _brain_rdms(subjects)
    for brain in (subjects, ref_brain):  # responses, or RDMs computed elsewhere
        table = compare_to_brain(layers, {"IT": brain}, conditions="stim", method=method,
                                 n_boot=50, **CORRELATION)
        low, high = boot_noise_ceiling(ref_brain, method=method)
        assert np.isclose(table["ceiling_low"], low).all()
        assert np.isclose(table["ceiling_high"], high).all()
        for _, row in table.iterrows():
            ref_model = calc_rdm(_dataset(layers[row.layer]), method="correlation",
                                 descriptor="stim")
            expected = rsa_compare(ref_model, ref_brain, method=method).mean()
            assert row.value == pytest.approx(expected, rel=1e-9)
        assert (table["n_subjects"] == 4).all() and (table["n_conditions"] == N_COND).all()
        assert (table["rdm_method"] == "correlation").all() and (table["note"] == "").all()


def test_brain_crossnobis_with_glm_residuals_equals_rsatoolbox(rng):
    layers = _layers(rng, names=("b",))
    subjects = [_subject(rng, layers["b"].X, 1.0, residuals=True) for _ in range(3)]
    table = compare_to_brain(layers, subjects, conditions="stim", rdm_method="crossnobis",
                             cv="run", noise="residuals", n_boot=20,
                             model_rdm_method="correlation")
    refs = []
    for s in subjects:
        prec = prec_from_residuals(s.residuals.data, dof=s.residuals.dof)
        refs.append(calc_rdm(_dataset(s), method="crossnobis", descriptor="stim",
                             cv_descriptor="run", noise=prec))
    ref_model = calc_rdm(_dataset(layers["b"]), method="correlation", descriptor="stim")
    expected = rsa_compare(ref_model, concat(refs), method="spearman").mean()
    assert table.loc[0, "value"] == pytest.approx(expected, rel=1e-9)
    assert table.loc[0, "rdm_method"] == "crossnobis" and table.loc[0, "roi"] == "brain"


def test_nan_dissimilarities_are_left_out_like_rsatoolbox(rng):
    layers = _layers(rng, names=("b",))
    ref_brain = _brain_rdms([_subject(rng, layers["b"].X, 1.0) for _ in range(3)])
    ref_brain.dissimilarities[1, [3, 17]] = np.nan
    table = compare_to_brain(layers, ref_brain, conditions="stim", n_boot=20,
                             model_rdm_method="correlation")
    ref_model = calc_rdm(_dataset(layers["b"]), method="correlation", descriptor="stim")
    ref_model.dissimilarities[:, [3, 17]] = np.nan  # rsatoolbox wants them on both sides
    expected = rsa_compare(ref_model, ref_brain, method="spearman").mean()
    assert table.loc[0, "value"] == pytest.approx(expected, rel=1e-9)
    assert np.isfinite(table.loc[0, ["ci_low", "ci_high", "ceiling_low"]].astype(float)).all()


# -- condition matching ----------------------------------------------------------------------
def test_shuffled_brain_conditions_give_the_same_table(rng):
    layers = _layers(rng)
    subjects = [_subject(rng, layers["a"].X, 1.0) for _ in range(4)]
    kw = dict(conditions="stim", n_boot=100, seed=3, **CORRELATION)
    base = compare_to_brain(layers, {"V1": _brain_rdms(subjects)}, **kw)
    perm = rng.permutation(N_COND)
    shuffled = _brain_rdms(subjects)
    shuffled.reorder(perm)
    assert list(shuffled.pattern_descriptors["stim"]) != STIMS
    pd.testing.assert_frame_equal(compare_to_brain(layers, {"V1": shuffled}, **kw), base)
    # brain responses whose condition levels come in another (categorical) order
    reordered = []
    for s in subjects:
        meta = s.metadata.assign(stim=pd.Categorical(s.metadata["stim"],
                                                     categories=[STIMS[i] for i in perm]))
        reordered.append(Activations(s.X, meta))
    assert list(rdm(reordered[0], conditions="stim").pattern_descriptors["stim"]) != STIMS
    pd.testing.assert_frame_equal(compare_to_brain(layers, {"V1": reordered}, **kw), base)


def test_mismatched_conditions_are_listed_per_side(rng):
    layers = _layers(rng)
    brain = _brain_rdms([_subject(rng, layers["a"].X, 1.0) for _ in range(2)])
    brain.pattern_descriptors["stim"] = ["x9"] + list(brain.pattern_descriptors["stim"][1:])
    with pytest.raises(ValueError, match=r"'stim' conditions of the model and brain region "
                       r"'brain', subject 0 differ; only in the model: 's00'; only in brain "
                       r"region 'brain', subject 0: 'x9'\."):
        compare_to_brain(layers, brain, conditions="stim")
    many = _brain_rdms([_subject(rng, layers["a"].X, 1.0) for _ in range(2)])
    many.pattern_descriptors["stim"] = [f"y{i}" for i in range(N_COND)]
    with pytest.raises(ValueError, match=r"only in the model: 's00', .*'s09' and 4 more; "
                       r"only in .*'y0', .*'y9' and 4 more"):
        compare_to_brain(layers, {"FFA": many}, conditions="stim")
    dup = _brain_rdms([_subject(rng, layers["a"].X, 1.0) for _ in range(2)])
    dup.pattern_descriptors["stim"] = ["s01"] + list(dup.pattern_descriptors["stim"][1:])
    with pytest.raises(ValueError, match=r"conditions of brain region 'brain', subject 0 are "
                       r"not unique: 'stim' labels 's01' appear more than once"):
        compare_to_brain(layers, dup, conditions="stim")


def test_errors_come_before_any_rdm_is_computed(rng, monkeypatch):
    layers = _layers(rng)
    subjects = [_subject(rng, layers["a"].X, 1.0) for _ in range(2)]
    short = subjects[1][subjects[1].metadata.stim.to_numpy() != "s05"]

    def no_rdm(*args, **kwargs):
        raise AssertionError("an RDM was computed before the inputs were checked")

    monkeypatch.setattr(_brain, "rdm", no_rdm)
    with pytest.raises(ValueError, match=r"only in the model: 's05'"):
        compare_to_brain(layers, [subjects[0], short], conditions="stim")
    with pytest.raises(ValueError, match="needs the GLM residuals"):
        compare_to_brain(layers, subjects, conditions="stim", rdm_method="crossnobis",
                         cv="run", noise="residuals")


# -- seeds, seeding, single subjects ----------------------------------------------------------
def test_list_of_dicts_gives_rows_per_seed_and_rows_do_not_depend_on_each_other(rng):
    seeds = [_layers(rng, names=("a", "b"), model="resnet", seed=s) for s in (10, 11, 12)]
    brain = {r: [_subject(rng, seeds[0]["b"].X, 1.0) for _ in range(3)] for r in ("V1", "IT")}
    table = compare_to_brain(seeds, brain, conditions="stim", n_boot=60)
    assert len(table) == 3 * 2 * 2
    assert list(table["seed"].unique()) == [10, 11, 12]
    assert (table["network"] == "resnet").all()
    assert list(table.layer[:4]) == ["a", "a", "b", "b"]
    alone = compare_to_brain(seeds[1], {"IT": brain["IT"]}, conditions="stim", n_boot=60)
    got = table[(table.seed == 11) & (table.roi == "IT")].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, alone)  # same int seed: same samples, same interval
    # no provenance: network "model", seed = position in the list
    bare = [{k: Activations(v.X, v.metadata) for k, v in d.items()} for d in seeds[:2]]
    table = compare_to_brain(bare, brain["V1"], conditions="stim", n_boot=20)
    assert list(table["seed"]) == [0, 0, 1, 1] and (table["network"] == "model").all()


def test_same_seed_same_interval_other_seed_other_interval(rng):
    layers = _layers(rng)
    subjects = [_subject(rng, layers["b"].X, 1.5) for _ in range(4)]
    kw = dict(conditions="stim", n_boot=80)
    a = compare_to_brain(layers, subjects, seed=5, **kw)
    b = compare_to_brain(layers, subjects, seed=5, **kw)
    c = compare_to_brain(layers, subjects, seed=6, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["ci_low"], c["ci_low"])
    np.testing.assert_array_equal(a["value"], c["value"])
    gen = compare_to_brain(layers, subjects, seed=np.random.default_rng(5), **kw)
    np.testing.assert_allclose(gen["ci_low"], a["ci_low"])  # a Generator seeded alike


def test_one_subject_gives_the_value_and_a_note(rng):
    layers = _layers(rng)
    one = _subject(rng, layers["b"].X, 1.0, region="PPA")
    table = compare_to_brain(layers, [one], conditions="stim")
    ref = compare_to_brain(layers, {"PPA": [one, one]}, conditions="stim", n_boot=20)
    np.testing.assert_allclose(table["value"], ref["value"])
    assert table[["ci_low", "ci_high", "ceiling_low", "ceiling_high"]].isna().all().all()
    assert (table["roi"] == "PPA").all() and (table["n_subjects"] == 1).all()
    assert table["note"].str.contains("1 subject: no bootstrap interval, no test and no "
                                      "noise ceiling").all()
    assert table[["vs_best", "p_vs_best", "p_vs_best_holm"]].isna().all().all()


def test_layer_vs_best_tests_reuse_the_bootstrap_and_find_the_planted_layer(rng):
    """The difference of each layer from its seed's best layer: the same resamples as the
    CIs (rsatoolbox-style subject and condition bootstrap), a two-sided bootstrap p and
    Holm over the other layers; a brute-force recomputation gives the same numbers."""
    from dnnrsa._pvalues import holm
    from dnnrsa.rsa._inference import _bootstrap_samples

    layers = _layers(rng)
    subjects = [_subject(rng, layers["b"].X, 0.5) for _ in range(5)]
    table = compare_to_brain(layers, {"IT": subjects}, conditions="stim", n_boot=300,
                             seed=7, **CORRELATION).set_index("layer")
    assert table["vs_best"].idxmax() == "b" and table.loc["b", "vs_best"] == 0
    assert np.isnan(table.loc["b", "p_vs_best"])
    M = np.vstack([rdm(layers[k], conditions="stim").dissimilarities for k in table.index])
    D = np.vstack([rdm(s, method="correlation", conditions="stim").dissimilarities
                   for s in subjects])
    kept = _bootstrap_samples(M, D, "spearman", "both", 300, np.random.default_rng(7))
    kept = kept[np.isfinite(kept).all(axis=1)]
    best = list(table.index).index("b")
    ps = []
    for k, layer in enumerate(table.index):
        if layer == "b":
            continue
        d = kept[:, k] - kept[:, best]
        assert table.loc[layer, "vs_best_ci_low"] == pytest.approx(np.quantile(d, 0.025))
        assert table.loc[layer, "vs_best_ci_high"] == pytest.approx(np.quantile(d, 0.975))
        p = min(1.0, 2 * (1 + min((d >= 0).sum(), (d <= 0).sum())) / 301)
        assert table.loc[layer, "p_vs_best"] == pytest.approx(p)
        ps.append(p)
        # the planted layer wins clearly: every other layer is significantly worse
        assert table.loc[layer, "vs_best_ci_high"] < 0 and p < 0.05
    others = [layer for layer in table.index if layer != "b"]
    np.testing.assert_allclose(table.loc[others, "p_vs_best_holm"], holm(ps))
    # the CIs are the same resamples' percentiles
    assert table.loc["b", "ci_low"] == pytest.approx(np.quantile(kept[:, best], 0.025))


# -- bad input -------------------------------------------------------------------------------
def test_bad_arguments_are_errors_naming_the_argument(rng):
    layers = _layers(rng, model="net")
    subjects = [_subject(rng, layers["b"].X, 1.0) for _ in range(2)]
    rdms = _brain_rdms(subjects)
    cases = [
        (dict(method="pearson"), ValueError, r"Unknown value 'pearson' for argument method"),
        (dict(rdm_method="cosine"), ValueError, r"Unknown value 'cosine' for argument "
         r"rdm_method"),
        (dict(model_rdm_method="crossnobis"), ValueError, r"argument model_rdm_method\. "
         r"Valid values are \{euclidean, correlation, mahalanobis, poisson\}"),
        (dict(conditions=("stim", "sex")), TypeError, "one factor column"),
        (dict(conditions="colour"), ValueError, r"Unknown value 'colour' for argument "
         r"conditions"),
        (dict(n_boot=1), ValueError, r"n_boot must be an integer >= 2, got 1"),
        (dict(n_boot=2.5), TypeError, "n_boot must be an integer"),
        (dict(ci=1.0), ValueError, r"ci must be a number in \(0, 1\)"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(rdm_method="crossnobis"), ValueError, "needs argument cv"),
        (dict(cv="run"), ValueError, "cv applies to rdm_method='crossnobis' only"),
        (dict(noise="shrinkage"), ValueError, "noise applies to rdm_method"),
        (dict(rdm_method="mahalanobis", noise="ledoit"), ValueError, r"Unknown value 'ledoit' "
         r"for argument noise"),
        (dict(rdm_method="mahalanobis", noise=np.eye(3)), ValueError, r"shape \(40, 40\)"),
        (dict(rdm_method="crossnobis", cv="session"), ValueError, r"Unknown value 'session' "
         r"for argument cv"),
    ]
    for kw, error, match in cases:
        kw = {"conditions": "stim", **kw}
        with pytest.raises(error, match=match):
            compare_to_brain(layers, subjects, **kw)
    coloured = layers["b"].metadata.assign(colour=[f"k{i}" for i in range(N_COND)])
    with pytest.raises(ValueError, match=r"'colour' for argument conditions: brain region "
                       r"'brain', subject 0 is given as RDMs without that pattern descriptor"):
        compare_to_brain({"b": Activations(layers["b"].X, coloured)}, rdms,
                         conditions="colour")
    cross = _brain_rdms(subjects)
    cross.dissimilarity_measure = "crossnobis"
    with pytest.raises(ValueError, match="cv and noise apply to brain Activations"):
        compare_to_brain(layers, cross, conditions="stim", rdm_method="crossnobis", cv="run")
    with pytest.raises(ValueError, match=r"rdm_method='euclidean' applies to brain "
                       r"Activations, but .* RDMs of dissimilarity 'correlation'"):
        compare_to_brain(layers, rdms, conditions="stim", rdm_method="euclidean")
    with pytest.raises(TypeError, match=r"Argument model must be an Activations"):
        compare_to_brain(layers["a"].X, rdms, conditions="stim")
    with pytest.raises(TypeError, match=r"Argument model\[1\] must be a dict"):
        compare_to_brain([layers, layers["a"]], rdms, conditions="stim")
    with pytest.raises(ValueError, match=r"model\[0\] and model\[1\] are both network 'net' "
                       r"with seed 0"):
        compare_to_brain([_layers(rng, model="net", seed=0), _layers(rng, model="net", seed=0)],
                         rdms, conditions="stim")
    mixed = {"a": layers["a"], "x": _layers(rng, names=("x",), model="vgg")["x"]}
    with pytest.raises(ValueError, match=r"layers of argument model come from different "
                       r"networks \(\['net', 'vgg'\]"):
        compare_to_brain(mixed, rdms, conditions="stim")
    with pytest.raises(TypeError, match=r"Argument brain\['V1'\]\[1\] must be a "
                       r"dnnrsa.Activations"):
        compare_to_brain(layers, {"V1": [subjects[0], subjects[1].X]}, conditions="stim")
    with pytest.raises(ValueError, match="different regions"):
        compare_to_brain(layers, [_subject(rng, layers["b"].X, 1, region=r) for r in "AB"],
                         conditions="stim")
    few = {"b": layers["b"][layers["b"].metadata.stim.isin(["s00", "s01"]).to_numpy()]}
    with pytest.raises(ValueError, match="at least 3 conditions"):
        compare_to_brain(few, rdms, conditions="stim")


# -- plot ------------------------------------------------------------------------------------
def test_plot_draws_one_panel_per_region_with_the_ceiling_band(rng):
    seeds = [_layers(rng, model="net", seed=s) for s in (0, 1)]
    other = [_layers(rng, model="other", seed=0)]
    brain = {r: [_subject(rng, seeds[0]["b"].X, 1.0) for _ in range(3)] for r in ("V1", "IT")}
    table = compare_to_brain(seeds + other, brain, conditions="stim", n_boot=30)
    fig = plot_brain_comparison(table)
    assert len(fig.axes) == 2
    for ax, roi in zip(fig.axes, ("V1", "IT"), strict=True):
        assert ax.get_title() == roi
        assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
        rows = table[table.roi == roi]
        band = [c for c in ax.collections if c.get_gid() == "ceiling"][0]
        ys = band.get_paths()[0].vertices[:, 1]
        assert ys.min() == pytest.approx(rows["ceiling_low"].iloc[0])
        assert ys.max() == pytest.approx(rows["ceiling_high"].iloc[0])
        mean = [ln for ln in ax.lines if ln.get_gid() == "mean:net"][0]
        expected = rows[rows.network == "net"].groupby("layer", sort=False)["value"].mean()
        np.testing.assert_allclose(mean.get_ydata(), expected.to_numpy())
        assert len([ln for ln in ax.lines if str(ln.get_gid()).startswith("seed:net")]) == 2
        assert not [ln for ln in ax.lines if str(ln.get_gid()).startswith("seed:other")]
        ci = [c for c in ax.collections if c.get_gid() == "ci:other"][0]
        ys = ci.get_paths()[0].vertices[:, 1]
        sub = rows[rows.network == "other"]
        assert ys.min() == pytest.approx(sub["ci_low"].min())
        assert ys.max() == pytest.approx(sub["ci_high"].max())
    assert "spearman" in fig.axes[0].get_ylabel()
    from matplotlib.figure import Figure

    own = Figure()
    axes = own.subplots(1, 2)
    assert plot_brain_comparison(table, ax=list(axes)) is own
    assert axes[1].get_title() == "IT"
    with pytest.raises(ValueError, match="holds 1 Axes, but the table has 2 region"):
        plot_brain_comparison(table, ax=fig.axes[0])
    with pytest.raises(ValueError, match=r"lacks columns \['ceiling_low'"):
        plot_brain_comparison(table.drop(columns="ceiling_low"))
    with pytest.raises(ValueError, match="mixes comparison methods"):
        plot_brain_comparison(pd.concat([table, table.assign(method="corr")]))
    one = compare_to_brain(seeds[0], brain["V1"][:1], conditions="stim")
    fig = plot_brain_comparison(one)  # one subject: no ceiling band, no interval
    assert not [c for c in fig.axes[0].collections if c.get_gid() == "ceiling"]
