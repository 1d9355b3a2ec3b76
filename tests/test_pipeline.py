import numpy as np
import pandas as pd
import pytest
from scipy import stats

import dnnrsa
from dnnrsa.stats import difference_from, summarise


def test_reproduce_writes_consistent_tables_figures_and_report(home, tmp_path):
    faces = dnnrsa.datasets.synthetic_faces(n_identities=6, expressions=("HA", "NE", "SU"),
                                            sessions=("A",), size=32)
    out = tmp_path / "study"
    results = dnnrsa.reproduce(networks=("untrained",), seeds=2, layers=("conv1", "dense3"),
                               quick=True, readout="linear", stimuli=faces, out=out,
                               device="cpu", progress=False)
    # 1 network x 2 seeds x 2 layers x 2 targets x 3 folds, plus pixels x 2 targets x 3 folds
    assert len(results) == 24 + 6
    assert set(results.held_out) == {"HL", "S", "HR"}
    for name in ("results.csv", "summary.csv", "fig2a.png", "fig2b.png", "report.md"):
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
    assert "not tested in this run" in report  # no expression-trained net in this sweep


def test_difference_from_untrained_combines_sems():
    res = pd.DataFrame({
        "network": ["expression"] * 4 + ["untrained"] * 4,
        "seed": [0, 0, 1, 1] * 2,
        "layer": "dense3", "target": "identity",
        "fold": [0, 1] * 4,
        "accuracy": [0.5, 0.7, 0.6, 0.8, 0.2, 0.2, 0.1, 0.1],
        "chance": 0.1,
    })
    summ = summarise(res)
    diff = difference_from(summ).iloc[0]
    assert diff["difference"] == pytest.approx(0.65 - 0.15)
    expect = np.sqrt(stats.sem([0.6, 0.7]) ** 2 + stats.sem([0.2, 0.1]) ** 2)
    assert diff["sem"] == pytest.approx(expect)


@pytest.mark.slow
def test_expression_network_reads_out_expression_on_new_people_and_views(home):
    """The quick expression net (trained on synthetic_expressions, disjoint identities) carries
    expression on the test faces from a viewpoint the readout never saw."""
    dnnrsa.zoo.train_variant("expression", 0, quick=True, device="cpu", progress=False)
    net = dnnrsa.load_model("expression", seed=0)
    assert net.dnnrsa_info["test_accuracy"] > 1 / 7 + 0.1  # held-out training identities
    faces = dnnrsa.datasets.synthetic_faces(n_identities=20, sessions=("A",), size=32)
    res = dnnrsa.decode(net, "dense3", target="expression", stimuli=faces, readout="linear",
                        device="cpu")
    n = len(faces)
    bound = 4 * np.sqrt(res.chance * (1 - res.chance) / n)
    assert res.accuracy > res.chance + bound, (res.accuracy, res.chance, bound)
