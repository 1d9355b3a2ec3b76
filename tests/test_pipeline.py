import numpy as np
import pandas as pd
import pytest
from scipy import stats

import dnnrsa
from dnnrsa import zoo


def _faces():
    return dnnrsa.datasets.synthetic_faces(n_identities=6, expressions=("HA", "NE", "SU"),
                                           sessions=("A",), size=32)


def test_reproduce_writes_consistent_tables_figures_and_report(home, tmp_path):
    faces = _faces()
    out = tmp_path / "study"
    results = dnnrsa.reproduce(networks=("untrained",), seeds=3, layers=("conv1", "dense3"),
                               quick=True, readout="linear", stimuli=faces, out=out,
                               device="cpu", progress=False)
    # 1 network x 3 seeds x 2 layers x 2 targets x 3 folds, plus pixels x 2 targets x 3 folds
    assert len(results) == 36 + 6
    assert sorted(results.seed.dropna().unique()) == [0, 1, 2]
    assert set(results.held_out) == {"HL", "S", "HR"}
    for name in ("results.csv", "summary.csv", "findings.csv", "fig2a.png", "fig2b.png",
                 "report.md"):
        assert (out / name).stat().st_size > 0
    assert (out / "fig2a.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob("*.partial*"))
    summary = pd.read_csv(out / "summary.csv")
    row = summary[(summary.network == "untrained") & (summary.layer == "dense3")
                  & (summary.target == "identity")].iloc[0]
    sub = results[(results.network == "untrained") & (results.layer == "dense3")
                  & (results.target == "identity")]
    per_seed = sub.groupby("seed").accuracy.mean()
    assert row["mean"] == pytest.approx(per_seed.mean())
    assert row["sem"] == pytest.approx(stats.sem(per_seed))
    assert row["chance"] == pytest.approx(1 / 6)
    report = (out / "report.md").read_text()
    line = next(ln for ln in report.splitlines() if ln.startswith("| untrained | identity |"))
    assert "| 7.9 |" in line and "| 6.1 |" in line  # the paper's conv1 and dense3 beside ours
    assert f"{100 * row['mean']:.1f} +- {100 * row['sem']:.1f}" in line
    table = pd.read_csv(out / "findings.csv")
    assert len(table) == 7 and set(table.verdict) == {"not tested"}  # no trained net here
    assert "**not tested**" in report and "nan" not in report.lower()
    # the calibration block: the untrained conv1 figure is the sweep's own, brightness is a
    # one-feature readout, both beside KDEF's
    calib = pd.read_csv(out / "calibration.csv").set_index("measure")
    conv1 = results[(results.network == "untrained") & (results.layer == "conv1")
                    & (results.target == "identity")].groupby("seed").accuracy.mean().mean()
    assert calib.loc["untrained_conv1", "value"] == pytest.approx(conv1)
    assert calib.loc["untrained_conv1", "kdef"] == pytest.approx(0.079)
    mean = faces.images.reshape(len(faces), -1).mean(axis=1, dtype=np.float64)
    bright = dnnrsa.decoding.decode_activations(
        dnnrsa.Activations.from_arrays(mean[:, None], faces.metadata), target="identity",
        cv="viewpoint", readout="linear", device="cpu")
    assert calib.loc["brightness", "value"] == pytest.approx(bright.accuracy)
    assert "## How hard is this test set?" in report
    assert (out / "fig_calibration.png").read_bytes()[:4] == b"\x89PNG"
    assert "| untrained_conv1 |" in report and "7.9 (5.5x)" in report


def test_one_seed_has_no_sem_no_error_bar_and_no_verdict(home, tmp_path):
    """The review's defect: a one-seed SEM was shown as 0."""
    import matplotlib.pyplot as plt

    out = tmp_path / "one"
    results = dnnrsa.reproduce(networks=("untrained",), seeds=[4], layers=("conv1",),
                               targets=("expression",), quick=True, readout="linear",
                               stimuli=_faces(), out=out, device="cpu", progress=False,
                               pixel_control=False)
    assert set(results.seed) == {4}
    summary = pd.read_csv(out / "summary.csv")
    assert summary["sem"].isna().all() and summary["n_seeds"].eq(1).all()
    report = (out / "report.md").read_text()
    assert "+- n/a" in report and "+- 0.0" not in report
    fig = dnnrsa.study.plot_fig2a(dnnrsa.study.summarise(results), ["conv1"], ["expression"])
    bars = [c for c in fig.axes[0].collections if hasattr(c, "get_segments")]
    assert bars and all(seg.size == 0 or not np.isfinite(seg).all()
                        for c in bars for seg in c.get_segments())
    plt.close(fig)


def test_reproduce_honours_the_seeds_asked_for_and_refuses_bad_options_first(home, tmp_path):
    """quick=True with seeds=10 used to run 2 seeds; readout_epochs=0 meant "unset"."""
    faces = _faces()
    res = dnnrsa.reproduce(networks=("untrained",), seeds=4, layers=("conv1",),
                           targets=("identity",), quick=True, readout="linear",
                           stimuli=faces, device="cpu", progress=False, pixel_control=False)
    assert sorted(res.seed.unique()) == [0, 1, 2, 3]
    bad = [
        (dict(readout_epochs=0), "epochs must be an integer >= 1, got 0"),
        (dict(readout_epochs=-3), "epochs must be an integer >= 1, got -3"),
        (dict(seeds=[]), "seeds is empty"),
        (dict(seeds=[1, 1]), "lists a seed twice"),
        (dict(networks=()), "networks is empty"),
        (dict(out=tmp_path / "a_file"), "is a file"),
    ]
    (tmp_path / "a_file").write_text("not a folder")
    for kwargs, match in bad:
        with pytest.raises((ValueError, TypeError), match=match):
            dnnrsa.reproduce(**{**dict(networks=("untrained",), quick=True, stimuli=faces,
                                       device="cpu", progress=False), **kwargs})
    assert zoo.list_models().seed.tolist() == [0, 1, 2, 3]  # nothing trained by the bad calls


def test_quick_study_is_five_seeds_on_both_sessions():
    assert dnnrsa.study.QUICK_STUDY["seeds"] == 5
    assert tuple(dnnrsa.study.QUICK_STUDY["sessions"]) == ("A", "B")


def test_seeds_run_together_equal_each_network_alone(home):
    """reproduce trains a network's seeds as one ensemble and reads them out as one batched
    readout per layer: each seed's numbers equal that network decoded on its own, and the
    work split over two processes gives the same table."""
    faces = _faces()
    kw = dict(networks=("untrained",), seeds=[0, 3], layers=("conv1", "dense2"),
              targets=("identity", "expression"), quick=True, readout="paper",
              readout_epochs=2, stimuli=faces, device="cpu", progress=False,
              pixel_control=False)
    one = dnnrsa.reproduce(**kw, n_jobs=1)
    two = dnnrsa.reproduce(**kw, n_jobs=2)  # one seed per worker
    pd.testing.assert_frame_equal(one, two, check_exact=False, atol=1.01 / 18)
    for seed in (0, 3):
        net = dnnrsa.load_model("untrained", seed=seed, quick=True)
        acts = dnnrsa.extract(net, faces, ["conv1", "dense2"], device="cpu")
        for layer in ("conv1", "dense2"):
            for target in ("identity", "expression"):
                alone = dnnrsa.decoding.decode_activations(
                    acts[layer], target=target, cv="viewpoint", readout="paper", epochs=2,
                    seed=seed, device="cpu")
                got = one[(one.seed == seed) & (one.layer == layer)
                          & (one.target == target)].sort_values("fold")
                # float rounding of the batched step may flip a near-tied prediction
                assert np.allclose(got.accuracy, alone.folds, atol=1.01 / 18)  # 18 test faces
                assert abs(got.accuracy.mean() - alone.accuracy) <= 1.01 / 18


def test_positional_options_of_reproduce_still_work_with_a_warning(home):
    faces = _faces()
    kw = dict(quick=True, readout="linear", stimuli=faces, device="cpu", progress=False,
              pixel_control=False)
    with pytest.warns(FutureWarning, match="networks, seeds, layers"):
        old = dnnrsa.reproduce("synthetic", ("untrained",), 1, ("conv1",), **kw)
    new = dnnrsa.reproduce("synthetic", networks=("untrained",), seeds=1, layers=("conv1",),
                           **kw)
    pd.testing.assert_frame_equal(old, new)


@pytest.mark.slow
def test_expression_network_reads_out_expression_on_new_people_and_views(home):
    """The quick expression net (trained on synthetic_expressions, disjoint identities) carries
    expression on the test faces from a viewpoint the readout never saw."""
    dnnrsa.zoo.train_variant("expression", 0, quick=True, device="cpu", progress=False)
    net = dnnrsa.load_model("expression", seed=0, quick=True)
    assert net.dnnrsa_info["test_accuracy"] > 1 / 7 + 0.1  # held-out training identities
    faces = dnnrsa.datasets.synthetic_faces(n_identities=20, sessions=("A",), size=32)
    res = dnnrsa.decode(net, "dense3", target="expression", stimuli=faces, readout="linear",
                        device="cpu")
    n = len(faces)
    bound = 4 * np.sqrt(res.chance * (1 - res.chance) / n)
    assert res.accuracy > res.chance + bound, (res.accuracy, res.chance, bound)
