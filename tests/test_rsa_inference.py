"""dnnrsa.rsa inference tables and figures: noise ceilings against rsatoolbox, bootstrap and
permutation distributions against hand-computed references, seeds as subjects, layer x
layer similarity, and the content of the plots."""

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from rsatoolbox.inference import boot_noise_ceiling
from rsatoolbox.rdm import RDMs
from scipy.spatial.distance import squareform

from dnnrsa import Activations
from dnnrsa.rsa import (
    bootstrap,
    compare,
    evaluate,
    factor_rdms,
    layer_similarity,
    noise_ceiling,
    permutation_test,
    plot_mds,
    plot_model_comparison,
    plot_rdm,
    rdm,
    seeds_as_subjects,
)
from dnnrsa.rsa._inference import _resample_pairs

METHODS = ["cosine", "corr", "spearman", "tau-a", "rho-a", "corr_cov", "cosine_cov"]


def _subjects(rng, n_subj=6, n_cond=10, noise=0.6):
    """Data RDMs that share a structure, plus subject noise."""
    n_pairs = n_cond * (n_cond - 1) // 2
    base = rng.random(n_pairs)
    return RDMs(base + noise * rng.random((n_subj, n_pairs)),
                rdm_descriptors={"subject": [f"s{i}" for i in range(n_subj)]}), base


def _true_and_random(rng, base):
    """A model with the data's structure and one without."""
    return RDMs(np.vstack([base, rng.random(base.shape)]),
                rdm_descriptors={"name": ["true", "random"]})


@pytest.mark.parametrize("method", METHODS)
def test_noise_ceiling_equals_rsatoolbox(rng, method):
    data, _ = _subjects(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rsatoolbox warns about tau on averaged ranks
        lower, upper = boot_noise_ceiling(data, method=method)
    table = noise_ceiling(data, method=method)
    assert list(table.columns) == ["method", "lower", "upper", "n_rdms"]
    assert table.loc[0, "lower"] == pytest.approx(lower, abs=1e-12)
    assert table.loc[0, "upper"] == pytest.approx(upper, abs=1e-12)
    assert table.loc[0, "lower"] <= table.loc[0, "upper"]


def test_noise_ceiling_needs_two_rdms(rng):
    data, _ = _subjects(rng, n_subj=1)
    with pytest.raises(ValueError, match="at least 2 data RDMs"):
        noise_ceiling(data)


def test_evaluate_is_the_compare_table_in_long_form(rng):
    data, base = _subjects(rng)
    models = _true_and_random(rng, base)
    table = evaluate(models, data, method="corr")
    assert list(table.columns) == ["model", "rdm", "method", "value"]
    np.testing.assert_allclose(table["value"].to_numpy().reshape(2, 6),
                               compare(models, data, method="corr"))
    assert list(table["rdm"][:6]) == [f"s{i}" for i in range(6)]
    assert set(table["model"]) == {"true", "random"}


def test_condition_resampling_matches_rsatoolbox_subsample_pattern(rng):
    V = rng.random((2, 45))
    idx = rng.integers(0, 10, size=10)
    k, same = _resample_pairs(idx, 10)
    ours = V[:, k]
    ours[:, same] = np.nan
    ref = RDMs(V).subsample_pattern("index", idx).get_vectors()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_array_equal(ours[~np.isnan(ours)], ref[~np.isnan(ref)])


def test_bootstrap_over_subjects_gives_the_standard_error_of_the_mean(rng):
    data, base = _subjects(rng, n_subj=12)
    models = _true_and_random(rng, base)
    table = bootstrap(models, data, method="spearman", over="subjects", n_boot=4000, seed=3)
    values = compare(models, data, method="spearman")
    np.testing.assert_allclose(table["estimate"], values.mean(axis=1), rtol=1e-12)
    # the bootstrap SE of a mean of n values is their SD (ddof=0) / sqrt(n), up to
    # Monte-Carlo error of about 1 / sqrt(2 n_boot) (1%) of itself
    expected = values.std(axis=1) / np.sqrt(values.shape[1])
    np.testing.assert_allclose(table["se"], expected, rtol=0.06)
    assert (table["ci_low"] <= table["estimate"]).all()
    assert (table["estimate"] <= table["ci_high"]).all()
    assert list(table["model"]) == ["true", "random"] and (table["n_boot"] == 4000).all()


@pytest.mark.parametrize("over", ["conditions", "both"])
def test_bootstrap_over_conditions_is_seeded_and_exact_for_a_perfect_model(rng, over):
    data, base = _subjects(rng, n_subj=4, n_cond=9)
    perfect = RDMs(data.get_vectors()[:1])
    one = RDMs(data.get_vectors()[:1])
    table = bootstrap(perfect, one, method="spearman", over="conditions", n_boot=50, seed=1)
    assert table.loc[0, "se"] == pytest.approx(0, abs=1e-12)  # 1 in every resample
    assert table.loc[0, "ci_low"] == pytest.approx(1) and table.loc[0, "estimate"] == 1
    models = RDMs(np.vstack([base, rng.random(base.shape)]))
    a = bootstrap(models, data, over=over, n_boot=60, seed=7)
    b = bootstrap(models, data, over=over, n_boot=60, seed=np.random.default_rng(7))
    c = bootstrap(models, data, over=over, n_boot=60, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["se"], c["se"])
    assert (a["se"] > 0).all()
    assert a.loc[0, "estimate"] > a.loc[1, "ci_high"]  # the true structure beats random


def test_bootstrap_bad_input(rng):
    data, base = _subjects(rng)
    with pytest.raises(ValueError, match=r"Unknown value 'items' for argument over\. Valid "
                       r"values are \{both, conditions, subjects\}"):
        bootstrap(RDMs(base), data, over="items")
    with pytest.raises(ValueError, match="resamples the data RDMs, but data holds 1"):
        bootstrap(RDMs(base), data[0], over="subjects")
    with pytest.raises(ValueError, match="models and data must be RDMs of the same size"):
        bootstrap(RDMs(base[:36]), data)


@pytest.mark.parametrize("method", METHODS)
def test_permutation_null_is_made_of_relabelled_models(rng, method):
    """With 4 conditions there are only 24 relabellings: every null value must be the
    comparison of one of them with the data, and the p-value follows its definition."""
    n_cond = 4
    model = rng.random(6)
    data = rng.random((2, 6))
    table = permutation_test(model, data, method=method, n_permutations=300, seed=0)
    null = table["null"].iloc[0]
    assert null.shape == (300,) and table.loc[0, "n_permutations"] == 300
    M = squareform(model)
    exact = []
    for perm in itertools.permutations(range(n_cond)):
        P = M[np.ix_(perm, perm)]
        exact.append(compare(squareform(P, checks=False), data, method=method).mean())
    exact = np.array(exact)
    assert np.abs(null[:, None] - exact[None, :]).min(axis=1).max() < 1e-10
    observed = compare(model, data, method=method).mean()
    assert table.loc[0, "statistic"] == pytest.approx(observed)
    assert table.loc[0, "p_value"] == pytest.approx(
        (1 + np.sum(null >= observed - 1e-12)) / 301)


def test_permutation_test_of_the_true_model_has_the_smallest_p(rng):
    data, base = _subjects(rng, n_subj=3, n_cond=12, noise=0.2)
    table = permutation_test(RDMs(base, rdm_descriptors={"name": ["truth"]}), data,
                             n_permutations=199, seed=2)
    assert table.loc[0, "model"] == "truth"
    assert table.loc[0, "p_value"] == pytest.approx(1 / 200)  # +1 correction: never 0
    with pytest.raises(ValueError, match="single RDM"):
        permutation_test(data, data)


def test_permutation_null_column_gives_the_p_value_of_the_table(rng):
    data, base = _subjects(rng, n_subj=3, n_cond=8)
    unrelated = RDMs(rng.random(base.shape))
    table = permutation_test(unrelated, data, method="corr", n_permutations=500, seed=4)
    assert list(table.columns) == ["model", "method", "statistic", "p_value",
                                   "n_permutations", "null_mean", "null_sd", "null"]
    null = table["null"].iloc[0]
    assert isinstance(null, np.ndarray) and null.shape == (500,)
    observed = table.loc[0, "statistic"]
    assert 0.002 < table.loc[0, "p_value"] < 1  # not at the floor: the recount means something
    assert table.loc[0, "p_value"] == (1 + np.sum(null >= observed - 1e-12)) / (1 + 500)
    assert table.loc[0, "null_mean"] == pytest.approx(null.mean())
    assert table.loc[0, "null_sd"] == pytest.approx(null.std(ddof=1))
    # tables of several models stack, each row keeping its own null
    other = permutation_test(base, data, method="corr", n_permutations=500, seed=4)
    both = pd.concat([table, other], ignore_index=True)
    np.testing.assert_array_equal(both["null"].iloc[0], null)
    np.testing.assert_array_equal(both["null"].iloc[1], other["null"].iloc[0])


def test_permutation_test_old_spellings_warn_and_give_the_same_numbers(rng):
    data, base = _subjects(rng, n_subj=2, n_cond=7)
    new = permutation_test(base, data, n_permutations=50, seed=3)
    with pytest.warns(FutureWarning, match="n_perm of permutation_test was renamed to "
                      "n_permutations"):
        old = permutation_test(base, data, n_perm=50, seed=3)
    pd.testing.assert_frame_equal(old, new)
    np.testing.assert_array_equal(old["null"].iloc[0], new["null"].iloc[0])
    with pytest.warns(FutureWarning, match=r'return_null .* "null" column'):
        table, null = permutation_test(base, data, n_permutations=50, seed=3,
                                       return_null=True)
    pd.testing.assert_frame_equal(table, new)
    np.testing.assert_array_equal(null, new["null"].iloc[0])
    with pytest.warns(FutureWarning, match="return_null"):
        only = permutation_test(base, data, n_permutations=50, seed=3, return_null=False)
    pd.testing.assert_frame_equal(only, new)
    with pytest.raises(TypeError, match="both n_permutations and n_perm"):
        permutation_test(base, data, n_permutations=50, n_perm=50)


def test_default_seed_gives_the_same_numbers_on_every_call(rng, data_rdm):
    data, base = _subjects(rng, n_subj=4, n_cond=8)
    models = _true_and_random(rng, base)
    pd.testing.assert_frame_equal(bootstrap(models, data, n_boot=30),
                                  bootstrap(models, data, n_boot=30))
    pd.testing.assert_frame_equal(bootstrap(models, data, n_boot=30),
                                  bootstrap(models, data, n_boot=30, seed=0))
    a = permutation_test(base, data, n_permutations=40)
    b = permutation_test(base, data, n_permutations=40)
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(a["null"].iloc[0], b["null"].iloc[0])
    s1, s2 = seeds_as_subjects(data, models, n_boot=30), seeds_as_subjects(data, models, n_boot=30)
    for key in s1:
        pd.testing.assert_frame_equal(s1[key], s2[key])
    offsets = [np.vstack([c.get_offsets() for c in plot_mds(data_rdm).axes[0].collections])
               for _ in range(2)]
    np.testing.assert_array_equal(*offsets)
    # None asks for fresh randomness: two calls differ
    fresh = [permutation_test(base, data, n_permutations=40, seed=None)["null"].iloc[0]
             for _ in range(2)]
    assert not np.array_equal(*fresh)


def test_seed_bad_input_messages(rng, data_rdm):
    data, base = _subjects(rng, n_subj=2, n_cond=6)
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        bootstrap(RDMs(base), data, n_boot=5, seed=-1)
    with pytest.raises(TypeError, match="seed must be an int >= 0, None or a numpy"):
        permutation_test(base, data, seed="zero")
    with pytest.raises(TypeError, match="seed must be an int >= 0, None or a numpy"):
        plot_mds(data_rdm, seed=1.5)
    fig = plot_mds(data_rdm, seed=np.random.default_rng(1))  # a Generator is accepted
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 12


def test_seeds_as_subjects_gives_the_subject_tables(rng):
    meta = pd.DataFrame([dict(identity=f"F{i}", expression=f"E{e}", viewpoint=v)
                         for i in range(4) for e in range(3) for v in "LR"])
    signal = rng.normal(size=(12, 20))
    cond = np.arange(len(meta)) // 2
    seeds = [rdm(Activations.from_arrays(signal[cond] + rng.normal(size=(len(meta), 20)),
                                         meta, seed=s), conditions=("identity", "expression"))
             for s in range(4)]
    models = factor_rdms(meta, conditions=("identity", "expression"))
    tables = seeds_as_subjects(seeds, models, n_boot=40, seed=5)
    assert set(tables) == {"noise_ceiling", "evaluations", "bootstrap"}
    stacked = RDMs(np.vstack([s.get_vectors() for s in seeds]))
    pd.testing.assert_frame_equal(tables["noise_ceiling"], noise_ceiling(stacked))
    pd.testing.assert_frame_equal(tables["bootstrap"],
                                  bootstrap(models, stacked, n_boot=40, seed=5))
    assert list(tables["evaluations"]["rdm"][:4]) == [0, 1, 2, 3]  # the seeds


def test_layer_similarity_is_a_symmetric_table_of_mean_comparisons(rng):
    a, _ = _subjects(rng, n_subj=3)
    b, _ = _subjects(rng, n_subj=2)
    c = RDMs(rng.random(45))
    table = layer_similarity({("net", "conv1"): a, ("net", "conv2"): b,
                              ("other", "conv1"): c}, method="spearman")
    assert isinstance(table.index, pd.MultiIndex) and table.shape == (3, 3)
    np.testing.assert_allclose(table.to_numpy(), table.to_numpy().T, rtol=1e-12)
    full = compare(a, b, method="spearman")
    assert table.loc[("net", "conv1"), ("net", "conv2")] == pytest.approx(full.mean())
    within = compare(a, a, method="spearman")
    assert table.loc[("net", "conv1"), ("net", "conv1")] == pytest.approx(
        within[~np.eye(3, dtype=bool)].mean())  # seed-to-seed, without self-comparisons
    assert table.loc[("other", "conv1"), ("other", "conv1")] == pytest.approx(1.0)
    with pytest.raises(TypeError, match="mapping"):
        layer_similarity([a, b])


# -- figures ---------------------------------------------------------------------------------
@pytest.fixture
def data_rdm(rng):
    meta = pd.DataFrame([dict(identity=f"F{i}", expression=e, viewpoint=v, sex="mf"[i % 2])
                         for i in range(4) for e in ("AN", "HA", "SA") for v in "LR"])
    return rdm(Activations.from_arrays(rng.normal(size=(len(meta), 30)), meta, layer="conv2"),
               conditions=("identity", "expression"))


def test_plot_rdm_draws_the_matrix_and_one_band_per_factor(data_rdm):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = plot_rdm(data_rdm)
    assert plt.get_fignums() == before  # not registered with pyplot, never shown
    main = fig.axes[0]
    np.testing.assert_allclose(main.images[0].get_array(), data_rdm.get_matrices()[0])
    bands = [ax for ax in main.child_axes]
    assert len(bands) == 2 * 3  # identity, expression, sex; top and left
    top = bands[0].images[0].get_array()
    assert len(np.unique(top)) == 4  # four identities
    assert "correlation" in main.get_title() and "conv2" in main.get_title()
    assert len(plot_rdm(data_rdm, factors=[]).axes[0].child_axes) == 0
    with pytest.raises(ValueError, match="Unknown value 'colour' for argument factors"):
        plot_rdm(data_rdm, factors=["colour"])


def test_plot_mds_places_every_condition_coloured_by_a_factor(data_rdm):
    fig = plot_mds(data_rdm, color_by="expression", seed=0)
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 12
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["AN", "HA", "SA"]
    a = np.vstack([c.get_offsets() for c in ax.collections])
    b = np.vstack([c.get_offsets() for c in plot_mds(data_rdm, color_by="expression",
                                                     seed=0).axes[0].collections])
    np.testing.assert_allclose(a, b)  # seeded


def test_plot_model_comparison_shows_means_sem_and_the_noise_ceiling(rng):
    data, base = _subjects(rng)
    models = _true_and_random(rng, base)
    ev = evaluate(models, data)
    nc = noise_ceiling(data)
    fig = plot_model_comparison(ev, nc)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches if p.get_width() < 1 and p.get_height() != 0]
    means = ev.groupby("model", sort=False)["value"].mean()
    np.testing.assert_allclose(sorted(heights), sorted(means))
    band = [p for p in ax.patches if p.get_label() == "noise ceiling"][0]
    if hasattr(band, "get_height"):  # a Rectangle (matplotlib >= 3.9)
        low, high = band.get_y(), band.get_y() + band.get_height()
    else:
        ys = np.asarray(band.get_xy())[:, 1]
        low, high = ys.min(), ys.max()
    assert low == pytest.approx(nc.loc[0, "lower"]) and high == pytest.approx(nc.loc[0, "upper"])
    segments = ax.collections[0].get_segments()  # the error bars
    sem = ev.groupby("model", sort=False)["value"].sem()
    np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in segments], 2 * sem.to_numpy())
    fig2 = plot_model_comparison(bootstrap(models, data, over="subjects", n_boot=50, seed=0),
                                 (0.5, 0.6))
    assert [t.get_text() for t in fig2.axes[0].get_xticklabels()] == ["true", "random"]
    with pytest.raises(ValueError, match="needs columns"):
        plot_model_comparison(pd.DataFrame({"x": [1]}))
