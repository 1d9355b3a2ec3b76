"""Training trajectories (reproduce(at_epochs=...)): the summary over seeds at each kept
epoch against scipy, on a fabricated per-fold table."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dnnrsa.study._epochs import epoch_summary, epochs_section, plot_epochs
from dnnrsa.study._stats import summarise


def _results(rng, n_seeds=4):
    rows = []
    for net, epochs in (("expression", (1, 3, 10)), ("untrained", (0,))):
        for seed in range(n_seeds):
            for epoch in epochs:
                for layer in ("conv1", "dense3"):
                    for target in ("identity", "expression"):
                        for fold in range(3):
                            acc = 0.2 + 0.02 * epoch + rng.normal(0, 0.03)
                            rows.append(dict(network=net, seed=seed, epoch=epoch, layer=layer,
                                             target=target, fold=fold, accuracy=acc,
                                             chance=1 / 7))
    for target in ("identity", "expression"):
        for fold in range(3):
            rows.append(dict(network="pixels", seed=np.nan, epoch=np.nan, layer="pixels",
                             target=target, fold=fold, accuracy=0.3, chance=1 / 7))
    return pd.DataFrame(rows)


def test_epoch_summary_matches_scipy(rng):
    results = _results(rng)
    summary = epoch_summary(results)
    assert set(summary.network) == {"expression"}  # untrained and pixels are references
    assert sorted(summary.epoch.unique()) == [1, 3, 10]
    assert len(summary) == 3 * 2 * 2
    row = summary[(summary.layer == "dense3") & (summary.target == "identity")
                  & (summary.epoch == 3)].iloc[0]
    sel = results[(results.network == "expression") & (results.layer == "dense3")
                  & (results.target == "identity") & (results.epoch == 3)]
    per_seed = sel.groupby("seed").accuracy.mean().to_numpy()
    assert row["mean"] == pytest.approx(per_seed.mean())
    lo, hi = stats.t.interval(0.95, len(per_seed) - 1, loc=per_seed.mean(),
                              scale=stats.sem(per_seed))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
    base = results[(results.network == "untrained") & (results.layer == "dense3")
                   & (results.target == "identity")].groupby("seed").accuracy.mean()
    welch = stats.ttest_ind(per_seed, base.to_numpy(), equal_var=False)
    assert row["minus_untrained"] == pytest.approx(per_seed.mean() - base.mean())
    assert row["minus_untrained_p"] == pytest.approx(welch.pvalue)
    assert int(row["n_seeds"]) == 4


def test_one_seed_gives_no_interval_and_no_test(rng):
    summary = epoch_summary(_results(rng, n_seeds=1))
    assert summary["ci_low"].isna().all() and summary["minus_untrained_p"].isna().all()
    lines = "\n".join(epochs_section(summary))
    assert "n/a" in lines and "nan" not in lines.lower()


def test_without_an_epoch_column_is_refused(rng):
    with pytest.raises(ValueError, match="no 'epoch' column.*at_epochs"):
        epoch_summary(_results(rng).drop(columns="epoch"))


def test_figure_has_one_panel_per_network_and_target(rng):
    results = _results(rng)
    summary = epoch_summary(results)
    untrained = summarise(results[results.network == "untrained"])
    fig = plot_epochs(summary, untrained, ["conv1", "dense3"], ["identity", "expression"])
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert len(axes) == 2
    # one line per layer plus its dotted untrained level and chance
    assert len(axes[0].lines) == 2 + 2 + 1


# --- reproduce(at_epochs=...) ----------------------------------------------------------

import dnnrsa  # noqa: E402
from dnnrsa import zoo  # noqa: E402


def _faces():
    return dnnrsa.datasets.synthetic_faces(n_identities=4, expressions=("HA", "NE", "SU"),
                                           sessions=("A",), size=32)


def _study(**options):
    opts = dict(networks=("expression", "untrained"), seeds=2, layers=("conv1", "dense3"),
                quick=True, readout="linear", stimuli=_faces(), device="cpu", n_jobs=1,
                progress=False)
    opts.update(options)
    return dnnrsa.reproduce(**opts)


def test_reproduce_at_epochs_reads_out_the_kept_networks(home, tiny_training_data, tmp_path, caplog):
    import logging

    plain = _study()  # trained without kept epochs: the next run must retrain to keep them
    with caplog.at_level(logging.INFO, logger="dnnrsa"):
        traced = _study(at_epochs=[5, 2], out=tmp_path / "out")
    assert "retraining to keep epochs [2, 5]" in caplog.text
    expr = traced[traced.network == "expression"]
    assert sorted(expr.epoch.unique()) == [2, 5, 10]
    assert set(traced[traced.network == "untrained"].epoch) == {0}
    assert traced[traced.network == "pixels"].epoch.isna().all()
    # the final networks are the ones a run without kept epochs reads out, to the bit
    final = traced[traced.epoch.isna() | (traced.epoch != 2) & (traced.epoch != 5)]
    pd.testing.assert_frame_equal(final.drop(columns="epoch").reset_index(drop=True),
                                  plain.reset_index(drop=True))
    # epoch 2 is the checkpoint kept after 2 epochs, read out like any network
    net = zoo.load_model("expression", seed=1, quick=True, epoch=2, device="cpu")
    assert net.dnnrsa_info["epoch"] == 2
    acts = dnnrsa.extract(net, _faces(), ["dense3"], device="cpu", progress=False)["dense3"]
    ref = dnnrsa.decoding.decode_grid([acts], targets=["identity"], cv="viewpoint",
                                      readout="linear", seeds=[1], device="cpu",
                                      network="expression")[0].to_frame()
    got = expr[(expr.epoch == 2) & (expr.seed == 1) & (expr.layer == "dense3")
               & (expr.target == "identity")]
    np.testing.assert_array_equal(got.accuracy.to_numpy(), ref.accuracy.to_numpy())
    out = tmp_path / "out"
    during = pd.read_csv(out / "epochs.csv")
    assert sorted(during.epoch.unique()) == [2, 5, 10] and set(during.network) == {"expression"}
    assert (out / "fig_epochs.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "## While the networks learn" in report and "nan" not in report.lower()
    assert len(pd.read_csv(out / "results.csv")) == len(traced)


@pytest.mark.parametrize("at_epochs, networks, match, error", [
    ([0], ("expression",), r"at_epochs must hold epoch numbers in 1..10", ValueError),
    ([11], ("expression",), r"in 1..10 .* got 11", ValueError),
    ([2, 2], ("expression",), r"distinct epochs", ValueError),
    ("5", ("expression",), r"at_epochs must be a list", TypeError),
    ([2], ("untrained",), r"needs a trained network", ValueError),
])
def test_reproduce_refuses_bad_at_epochs_before_any_work(home, at_epochs, networks, match,
                                                         error):
    with pytest.raises(error, match=match):
        dnnrsa.reproduce(networks=networks, seeds=2, quick=True, at_epochs=at_epochs,
                         device="cpu")
    assert not home.exists()
