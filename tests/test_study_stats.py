"""Seed statistics and the study's verdicts, checked against scipy, hand computation and
simulated studies with known truth."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dnnrsa.study import (
    FINDINGS_COLUMNS,
    SeedTest,
    difference_from,
    findings,
    format_finding,
    holm,
    paired_test,
    per_seed,
    summarise,
    welch_differences,
    welch_test,
)

NETWORKS = ("expression", "identity", "scene", "untrained")
LAYERS = ("conv1", "dense1", "dense2", "dense3")
TARGETS = ("identity", "expression")
CHANCE = {"identity": 1 / 70, "expression": 1 / 7}


def make_results(rng, *, seeds=10, networks=NETWORKS, layers=LAYERS, targets=TARGETS,
                 mean=0.30, sd=0.02, effects=None, n_folds=3, fold_sd=0.01, pixels=True):
    """A sweep's per-fold table: networks x seeds x layers x targets x folds.

    Each seed's fold-averaged accuracy is ``mean + effect + N(0, sd)``; the fold noise is
    centred within a seed, so the per-seed means are exactly those draws (returned too,
    keyed by network, layer, target, as arrays over seeds). ``effects`` maps
    (network, layer, target) to a shift. ``seeds`` is a count or a dict network -> list.
    """
    effects = effects or {}
    seed_lists = seeds if isinstance(seeds, dict) else {n: list(range(seeds)) for n in networks}
    frames, truth = [], {}
    for net in networks:
        s = np.asarray(seed_lists[net])
        for layer in layers:
            for target in targets:
                level = mean + effects.get((net, layer, target), 0.0)
                per = level + sd * rng.standard_normal(s.size)
                noise = fold_sd * rng.standard_normal((s.size, n_folds))
                folds = per[:, None] + noise - noise.mean(axis=1, keepdims=True)
                truth[(net, layer, target)] = per
                frames.append(pd.DataFrame({
                    "network": net, "seed": np.repeat(s, n_folds).astype(object),
                    "layer": layer, "target": target, "cv": "viewpoint",
                    "fold": np.tile(np.arange(n_folds), s.size),
                    "held_out": np.tile(np.array(["HL", "S", "HR"])[:n_folds], s.size),
                    "accuracy": folds.ravel(), "chance": CHANCE[target], "readout": "paper",
                    "n_train": 280, "n_test": 140,
                }))
    if pixels:
        # the pipeline's pixel control: one run, no seed
        for target in targets:
            frames.append(pd.DataFrame({
                "network": "pixels", "seed": [None] * n_folds, "layer": "pixels",
                "target": target, "cv": "viewpoint", "fold": np.arange(n_folds),
                "held_out": ["HL", "S", "HR"][:n_folds],
                "accuracy": 0.1 + 0.01 * rng.standard_normal(n_folds),
                "chance": CHANCE[target], "readout": "paper", "n_train": 280, "n_test": 140,
            }))
    return pd.concat(frames, ignore_index=True), truth


def claim(table, k):
    """Row k (1-based, the paper's order) of a findings table."""
    return table.iloc[k - 1]


# --------------------------------------------------------------------------- aggregation


def test_per_seed_averages_folds_and_keeps_the_pixel_control(rng):
    results, truth = make_results(rng, seeds=3)
    seeds = per_seed(results)
    assert list(seeds.columns) == ["network", "layer", "target", "seed", "accuracy",
                                   "chance", "n_folds"]
    cell = seeds[(seeds.network == "scene") & (seeds.layer == "dense2")
                 & (seeds.target == "identity")]
    np.testing.assert_allclose(cell["accuracy"], truth[("scene", "dense2", "identity")])
    assert (seeds["n_folds"] == 3).all()
    pix = seeds[seeds.network == "pixels"]
    assert len(pix) == 2 and pix["seed"].isna().all()
    raw = results[(results.network == "pixels") & (results.target == "identity")]["accuracy"]
    assert pix[pix.target == "identity"]["accuracy"].iloc[0] == pytest.approx(raw.mean())


def test_summarise_matches_scipy_and_hand_computation(rng):
    results, truth = make_results(rng, seeds=7)
    summary = summarise(results)
    assert list(summary.columns) == ["network", "layer", "target", "mean", "sd", "sem",
                                     "n_seeds", "ci_low", "ci_high", "chance"]
    row = summary[(summary.network == "identity") & (summary.layer == "dense3")
                  & (summary.target == "expression")].iloc[0]
    x = truth[("identity", "dense3", "expression")]
    assert row["mean"] == pytest.approx(x.mean())
    assert row["sd"] == pytest.approx(np.sqrt(((x - x.mean()) ** 2).sum() / 6))
    assert row["sem"] == pytest.approx(stats.sem(x))
    assert row["n_seeds"] == 7
    lo, hi = stats.t.interval(0.95, 6, loc=x.mean(), scale=stats.sem(x))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
    assert row["chance"] == pytest.approx(1 / 7)
    # the pixel control is kept: one run, so its spread is undefined
    pix = summary[summary.network == "pixels"]
    assert len(pix) == 2 and (pix["n_seeds"] == 1).all()
    assert pix[["sd", "sem", "ci_low", "ci_high"]].isna().all().all()


def test_one_seed_leaves_sem_and_difference_sem_undefined(rng):
    # review defect (a): np.nansum turned the undefined SEM of a one-seed network into 0,
    # so the difference's SEM came out as the baseline's SEM alone
    results, _ = make_results(rng, seeds={"expression": [0], "untrained": [0, 1, 2, 3]},
                              networks=("expression", "untrained"))
    summary = summarise(results)
    one = summary[summary.network == "expression"]
    assert one[["sd", "sem", "ci_low", "ci_high"]].isna().all().all()
    assert (one["n_seeds"] == 1).all()
    assert summary[summary.network == "untrained"]["sem"].notna().all()
    diff = difference_from(summary)
    assert len(diff) == len(LAYERS) * len(TARGETS)
    assert diff["sem"].isna().all()
    assert diff["difference"].notna().all()


def test_difference_from_by_hand(rng):
    results, truth = make_results(rng, seeds=5)
    diff = difference_from(summarise(results))
    assert list(diff.columns) == ["network", "layer", "target", "difference", "sem"]
    # the baseline and the pixel control are not compared
    assert set(diff.network) == {"expression", "identity", "scene"}
    assert len(diff) == 3 * len(LAYERS) * len(TARGETS)
    a, b = truth[("scene", "conv1", "identity")], truth[("untrained", "conv1", "identity")]
    row = diff[(diff.network == "scene") & (diff.layer == "conv1")
               & (diff.target == "identity")].iloc[0]
    assert row["difference"] == pytest.approx(a.mean() - b.mean())
    assert row["sem"] == pytest.approx(math.hypot(stats.sem(a), stats.sem(b)))
    # another baseline; none at all gives an empty table
    other = difference_from(summarise(results), baseline="scene")
    assert set(other.network) == {"expression", "identity", "untrained"}
    assert difference_from(summarise(results), baseline="imagenet").empty


def test_welch_differences_match_scipy(rng):
    results, truth = make_results(rng, seeds={"expression": [0, 1, 2, 3, 4],
                                              "identity": [0, 1, 2], "scene": [7],
                                              "untrained": [0, 1, 2, 3, 4, 5]})
    tested = welch_differences(results)
    assert set(tested.network) == {"expression", "identity", "scene"}
    assert len(tested) == 3 * len(LAYERS) * len(TARGETS)
    for net in ("expression", "identity"):
        a, b = truth[(net, "dense2", "identity")], truth[("untrained", "dense2", "identity")]
        row = tested[(tested.network == net) & (tested.layer == "dense2")
                     & (tested.target == "identity")].iloc[0]
        ref = stats.ttest_ind(a, b, equal_var=False)
        assert row["p"] == pytest.approx(ref.pvalue, rel=1e-10)
        ci = ref.confidence_interval(0.95)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)
        assert (row["n_seeds"], row["n_seeds_baseline"]) == (len(a), len(b))
        assert row["difference"] == pytest.approx(a.mean() - b.mean())
    # one seed: the difference is kept, its interval and p are undefined, never 0
    one = tested[tested.network == "scene"]
    assert one["difference"].notna().all()
    assert one[["se", "ci_low", "ci_high", "p"]].isna().all().all()
    # the SE is the one difference_from propagates from the SEMs
    diff = difference_from(summarise(results))
    both = tested.merge(diff, on=["network", "layer", "target"])
    ok = both["se"].notna()
    assert np.allclose(both.loc[ok, "se"], both.loc[ok, "sem"])


def test_figure_2b_draws_the_welch_interval(rng):
    import matplotlib

    matplotlib.use("Agg")
    from dnnrsa.study import plot_fig2b

    results, _ = make_results(rng, seeds=5, networks=("expression", "untrained"))
    tested = welch_differences(results)
    fig = plot_fig2b(tested, list(LAYERS), ["identity"], pixels=summarise(results))
    ax = fig.axes[0]
    errs = [c for c in ax.collections if hasattr(c, "get_segments")]
    seg = np.array(errs[0].get_segments())  # one vertical segment per layer
    want = tested[tested.target == "identity"].set_index("layer").reindex(LAYERS)
    assert np.allclose(seg[:, 0, 1], 100 * want["ci_low"])
    assert np.allclose(seg[:, 1, 1], 100 * want["ci_high"])
    text = " ".join(" ".join(t.get_text().split()) for t in fig.texts)
    assert "95% Welch interval" in text and "n = 5" in text
    assert "pixel control - untrained" in [t.get_text() for t in fig.legends[0].get_texts()]


# --------------------------------------------------------------------------- t tests


@pytest.mark.parametrize("n_a, n_b, sd_a, sd_b, shift", [
    (10, 10, 0.02, 0.02, 0.01), (4, 9, 0.05, 0.01, -0.03), (3, 3, 0.01, 0.03, 0.0),
])
def test_welch_matches_scipy(rng, n_a, n_b, sd_a, sd_b, shift):
    a = 0.3 + shift + sd_a * rng.standard_normal(n_a)
    b = 0.3 + sd_b * rng.standard_normal(n_b)
    res = welch_test(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert isinstance(res, SeedTest) and res.test == "Welch's t"
    assert (res.n_a, res.n_b) == (n_a, n_b)
    assert res.difference == pytest.approx(a.mean() - b.mean())
    assert res.se == pytest.approx(np.sqrt(a.var(ddof=1) / n_a + b.var(ddof=1) / n_b))
    assert res.t == pytest.approx(ref.statistic)
    assert res.df == pytest.approx(ref.df)
    assert res.p == pytest.approx(ref.pvalue)
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high))
    assert res.note == ""
    assert set(res.as_dict()) >= {"test", "n_a", "n_b", "mean_a", "mean_b", "difference",
                                  "se", "df", "t", "ci_low", "ci_high", "p"}


# scipy warns about its own moment calculation on the tied reference group
@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
def test_welch_degenerate_input_is_undefined_not_an_error():
    one = welch_test([0.3], [0.2, 0.25, 0.22])
    assert one.n_a == 1 and one.difference == pytest.approx(0.3 - np.mean([0.2, 0.25, 0.22]))
    assert all(math.isnan(v) for v in (one.se, one.df, one.t, one.ci_low, one.ci_high, one.p))
    assert "fewer than 2" in one.note
    # every seed tied within each group (quantised accuracies): no variance, no p
    tied = welch_test([0.1] * 5, [0.3] * 4)
    assert tied.se == 0 and math.isnan(tied.p) and math.isnan(tied.t)
    assert "no variance" in tied.note
    # a tie in one group only is fine, and scipy agrees
    ref = stats.ttest_ind([0.1] * 5, [0.3, 0.31, 0.29, 0.33], equal_var=False)
    half = welch_test([0.1] * 5, [0.3, 0.31, 0.29, 0.33])
    assert half.p == pytest.approx(ref.pvalue) and half.df == pytest.approx(ref.df)
    # NaN marks a missing seed
    assert welch_test([0.3, np.nan, 0.32, 0.31], [0.2, 0.21, 0.19]).n_a == 3
    assert math.isnan(welch_test([], [0.1, 0.2]).mean_a)


def test_paired_matches_ttest_rel_and_drops_unmatched_seeds(rng):
    seeds_a = [4, 0, 1, 2, 3, 7, 9]
    seeds_b = [0, 1, 2, 3, 4, 5, 6, 9]
    a = 0.3 + 0.02 * rng.standard_normal(len(seeds_a))
    b = 0.25 + 0.02 * rng.standard_normal(len(seeds_b))
    res = paired_test(a, b, seeds_a, seeds_b)
    common = [0, 1, 2, 3, 4, 9]
    xa = np.array([a[seeds_a.index(s)] for s in common])
    xb = np.array([b[seeds_b.index(s)] for s in common])
    ref = stats.ttest_rel(xa, xb)
    ci = ref.confidence_interval(0.95)
    assert res.test == "paired t" and res.n_a == res.n_b == 6
    assert res.mean_a == pytest.approx(xa.mean()) and res.mean_b == pytest.approx(xb.mean())
    assert res.difference == pytest.approx((xa - xb).mean())
    assert res.se == pytest.approx((xa - xb).std(ddof=1) / np.sqrt(6))
    assert res.df == 5
    assert res.t == pytest.approx(ref.statistic)
    assert res.p == pytest.approx(ref.pvalue)
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high))
    # seeds given as floats (as a NaN-bearing pandas column holds them) pair with ints
    assert paired_test(a, b, np.array(seeds_a, float), seeds_b).p == pytest.approx(ref.pvalue)


def test_paired_se_is_not_the_combined_se_on_correlated_data(rng):
    # a strong seed effect shared by both layers: pairing removes it
    seed_effect = 0.05 * rng.standard_normal(10)
    a = 0.30 + seed_effect + 0.005 * rng.standard_normal(10)
    b = 0.28 + seed_effect + 0.005 * rng.standard_normal(10)
    paired = paired_test(a, b, range(10), range(10))
    combined = math.hypot(stats.sem(a), stats.sem(b))
    assert welch_test(a, b).se == pytest.approx(combined)
    assert paired.se == pytest.approx(stats.sem(a - b))
    assert paired.se < combined / 5
    assert paired.p < 1e-4 < welch_test(a, b).p


def test_paired_degenerate_input():
    same = paired_test([0.3, 0.4, 0.5], [0.2, 0.3, 0.4], [0, 1, 2], [0, 1, 2])
    assert same.n_a == 3 and same.difference == pytest.approx(0.1)
    assert same.se == 0 and math.isnan(same.p) and "do not vary" in same.note
    # the same difference up to float rounding (these differ in the last bits) is a tie
    x = np.array([0.7, 0.9, 0.35, 0.61, 0.123])
    assert np.ptp(x - (x - 0.1)) > 0
    assert math.isnan(paired_test(x, x - 0.1, range(5), range(5)).p)
    one = paired_test([0.3, 0.4], [0.2, 0.3], [0, 1], [1, 5])
    assert one.n_a == one.n_b == 1 and math.isnan(one.p) and math.isnan(one.se)
    none = paired_test([0.3], [0.2], [0], [1])
    assert none.n_a == 0 and math.isnan(none.difference)


def test_bad_input_names_the_argument(rng):
    with pytest.raises(ValueError, match="Argument a must be 1-D"):
        welch_test([[0.1, 0.2]], [0.1, 0.2])
    with pytest.raises(TypeError, match="Argument b"):
        welch_test([0.1, 0.2], ["x", "y"])
    with pytest.raises(ValueError, match="Argument a contains infinite"):
        welch_test([0.1, np.inf], [0.1, 0.2])
    with pytest.raises(ValueError, match="Argument seeds_b must give one seed per value"):
        paired_test([0.1, 0.2], [0.1, 0.2], [0, 1], [0])
    with pytest.raises(ValueError, match="Argument seeds_a repeats"):
        paired_test([0.1, 0.2], [0.1, 0.2], [0, 0], [0, 1])
    with pytest.raises(ValueError, match=r"Argument p must hold p values in \[0, 1\]"):
        holm([0.5, 1.2])
    with pytest.raises(TypeError, match="Argument results must be a pandas DataFrame"):
        summarise({"accuracy": [0.1]})
    with pytest.raises(ValueError, match="Argument results lacks the column"):
        per_seed(pd.DataFrame({"network": ["x"], "accuracy": [0.1]}))
    results, _ = make_results(rng, seeds=3)
    with pytest.raises(ValueError, match="Argument alpha"):
        findings(results, alpha=1.5)
    with pytest.raises(ValueError, match="Argument min_seeds"):
        findings(results, min_seeds=1)
    with pytest.raises(TypeError, match="Argument layers"):
        findings(results, layers="dense3")
    with pytest.raises(TypeError, match="Argument baseline"):
        difference_from(summarise(results), baseline=None)
    with pytest.raises(TypeError, match="Argument row"):
        format_finding("holds")


# --------------------------------------------------------------------------- Holm


def test_holm_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06
    # (the running maximum keeps it monotone); NaN is outside the family (m = 4)
    adjusted = holm([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02, np.nan])
    # capped at 1: 0.3 x 3 = 0.9, 0.8 x 2 = 1.6 -> 1, 0.9 x 1 -> max(1, 0.9) = 1
    np.testing.assert_allclose(holm([0.8, 0.3, 0.9]), [1.0, 0.9, 1.0])
    np.testing.assert_allclose(holm([0.02]), [0.02])
    assert np.isnan(holm([np.nan, np.nan])).all()


# --------------------------------------------------------------------------- findings


def test_findings_rows_columns_and_numbers(rng):
    results, truth = make_results(rng, seeds=10)
    table = findings(results)
    assert list(table.columns) == FINDINGS_COLUMNS
    expected = [
        ("expression", "dense3", "untrained", "dense3", "identity", "Welch's t"),
        ("identity", "dense3", "untrained", "dense3", "expression", "Welch's t"),
        ("scene", "dense3", "untrained", "dense3", "identity", "Welch's t"),
        ("scene", "dense3", "untrained", "dense3", "expression", "Welch's t"),
        ("expression", "dense3", "untrained", "dense3", "expression", "Welch's t"),
        ("identity", "dense3", "untrained", "dense3", "identity", "Welch's t"),
        ("expression", "dense3", "expression", "conv1", "identity", "paired t"),
    ]
    got = list(table[["network_a", "layer_a", "network_b", "layer_b", "target",
                      "test"]].itertuples(index=False, name=None))
    assert got == expected
    assert claim(table, 1)["claim"] == ("Expression-trained dense3 carries identity better "
                                        "than untrained")
    assert claim(table, 5)["claim"].endswith("(own task)")
    ref = stats.ttest_ind(truth[("scene", "dense3", "expression")],
                          truth[("untrained", "dense3", "expression")], equal_var=False)
    assert claim(table, 4)["p"] == pytest.approx(ref.pvalue)
    ref = stats.ttest_rel(truth[("expression", "dense3", "identity")],
                          truth[("expression", "conv1", "identity")])
    assert claim(table, 7)["p"] == pytest.approx(ref.pvalue)
    np.testing.assert_allclose(table["p_holm"], holm(table["p"]))
    # another top layer
    other = findings(results, layers=("dense1", "dense2"))
    assert (other["layer_a"] == "dense2").all() and claim(other, 7)["layer_b"] == "dense1"


def test_planted_effects_hold_or_reverse(rng):
    up = {("expression", "dense3", "identity"): 0.10}
    results, _ = make_results(rng, seeds=10, effects=up)
    table = findings(results)
    assert claim(table, 1)["verdict"] == "holds"
    assert claim(table, 1)["difference"] == pytest.approx(0.10, abs=0.03)
    assert claim(table, 1)["ci_low"] > 0.05
    # dense3 vs conv1 of the same net, paired by seed
    assert claim(table, 7)["verdict"] == "holds"
    down = {("expression", "dense3", "identity"): -0.10}
    results, _ = make_results(rng, seeds=10, effects=down)
    table = findings(results)
    assert claim(table, 1)["verdict"] == "reversed"
    assert "opposite" in claim(table, 1)["reason"]
    assert claim(table, 7)["verdict"] == "reversed"


def _null_sweeps(rng, n_sweeps, n_seeds):
    """Verdicts on claim 1 for sweeps without any true effect: expression-trained and
    untrained dense3 identity accuracies from one normal distribution."""
    seeds = np.repeat(np.arange(n_seeds), 3)
    verdicts = []
    for _ in range(n_sweeps):
        acc = 0.3 + 0.02 * rng.standard_normal((2, n_seeds * 3))
        results = pd.DataFrame({
            "network": np.repeat(["expression", "untrained"], n_seeds * 3),
            "seed": np.tile(seeds, 2), "layer": "dense3", "target": "identity",
            "fold": np.tile([0, 1, 2], 2 * n_seeds), "accuracy": acc.ravel(),
            "chance": 1 / 70,
        })
        verdicts.append(findings(results)["verdict"].iloc[0])
    return np.array(verdicts)


def test_false_positive_rate_without_a_true_effect(rng):
    # only claim 1 is testable here, so Holm gives it no protection: the worst case.
    # "holds" needs p < alpha and a positive difference, so its rate is about alpha / 2;
    # "holds" or "reversed" is the test's two-sided size, about alpha
    n = 2000
    verdicts = _null_sweeps(rng, n, 10)
    se = math.sqrt(0.05 * 0.95 / n)
    holds = np.mean(verdicts == "holds")
    decided = np.mean(np.isin(verdicts, ["holds", "reversed"]))
    assert holds <= 0.05 + 3 * se
    assert abs(decided - 0.05) <= 3 * se
    assert set(verdicts) <= {"holds", "reversed", "inconclusive"}


def test_two_seeds_are_always_inconclusive(rng):
    # review defect (b): with 2 seeds the old 1-SEM rule said HOLDS about 21% of the time
    verdicts = _null_sweeps(rng, 200, 2)
    assert (verdicts == "inconclusive").all()
    results, _ = make_results(rng, seeds=2, effects={("expression", "dense3", "identity"): 0.1})
    table = findings(results)
    assert (table["verdict"] == "inconclusive").all()
    assert claim(table, 1)["reason"] == "fewer than 3 seeds per group"
    assert claim(table, 7)["reason"] == "fewer than 3 pairs"
    assert np.isfinite(claim(table, 1)["p"])


def test_absent_network_is_not_tested(rng):
    results, _ = make_results(rng, seeds=5, networks=("expression", "identity", "untrained"))
    table = findings(results)
    for k in (3, 4):
        row = claim(table, k)
        assert row["verdict"] == "not tested"
        assert "scene-trained dense3" in row["reason"]
        assert row["n_a"] == 0 and row["n_b"] == 5
        assert all(math.isnan(row[c]) for c in ("mean_a", "difference", "se", "ci_low",
                                                 "ci_high", "t", "df", "p", "p_holm"))
        assert row["mean_b"] == pytest.approx(claim(table, 1 if k == 3 else 2)["mean_b"])
    tested = table["verdict"] != "not tested"
    assert tested.sum() == 5
    # the family for Holm is the five tested claims
    np.testing.assert_allclose(table.loc[tested, "p_holm"], holm(table.loc[tested, "p"]))
    no_conv1 = findings(results[results.layer != "conv1"])
    assert claim(no_conv1, 7)["verdict"] == "not tested"
    assert claim(findings(results, layers=("dense3",)), 7)["verdict"] == "not tested"


def test_findings_ignore_the_pixel_control(rng):
    with_pixels, _ = make_results(np.random.default_rng(3), seeds=4)
    without, _ = make_results(np.random.default_rng(3), seeds=4, pixels=False)
    assert (with_pixels.network == "pixels").any()
    pd.testing.assert_frame_equal(findings(with_pixels), findings(without))
    # a float seed column with NaN for the control reads the same
    floats = with_pixels.assign(seed=with_pixels["seed"].astype(float))
    pd.testing.assert_frame_equal(findings(floats), findings(without))
    assert summarise(floats)["network"].eq("pixels").sum() == 2


def test_zero_variance_is_inconclusive_with_a_reason(rng):
    results, _ = make_results(rng, seeds=4, networks=("expression", "untrained"),
                              targets=("identity",), pixels=False)
    top = results.layer == "dense3"
    results.loc[top & (results.network == "expression"), "accuracy"] = 0.2
    results.loc[top & (results.network == "untrained"), "accuracy"] = 1 / 70
    row = claim(findings(results), 1)
    assert row["verdict"] == "inconclusive" and "no variance" in row["reason"]
    assert math.isnan(row["p"]) and math.isnan(row["p_holm"]) and row["se"] == 0


def test_format_finding(rng):
    results, _ = make_results(rng, seeds=10, effects={("expression", "dense3", "identity"): 0.1})
    table = findings(results)
    line = format_finding(claim(table, 1))
    r = claim(table, 1)
    assert line.startswith("Expression-trained dense3 carries identity better than untrained: "
                           "**holds** (")
    assert f"difference {100 * r['difference']:+.1f} points" in line
    assert f"95% CI [{100 * r['ci_low']:+.1f}, {100 * r['ci_high']:+.1f}]" in line
    assert f"Welch's t({r['df']:.1f}) = {r['t']:.2f}" in line
    assert line.endswith("; 10 vs 10 seeds)")
    assert "paired t(9) = " in format_finding(claim(table, 7))
    assert format_finding(claim(table, 7)).endswith("; 10 pairs)")

    one, _ = make_results(rng, seeds={"expression": [0], "untrained": [0, 1, 2]},
                          networks=("expression", "untrained"))
    lines = [format_finding(row) for _, row in findings(one).iterrows()]
    first = lines[0]
    assert "**inconclusive**: fewer than 3 seeds per group" in first
    assert "SE n/a" in first and "95% CI [n/a, n/a]" in first and "p = n/a" in first
    assert "Holm p = n/a" in first and "1 vs 3 seeds" in first
    assert "difference " in first and "difference n/a" not in first
    assert "**not tested**: no expression results for identity-trained dense3" in lines[1]
    for text in lines:
        assert "nan" not in text.lower()
        assert "SE 0.0" not in text
    # a plain dict works too
    assert format_finding(dict(claim(table, 2))) == format_finding(claim(table, 2))
