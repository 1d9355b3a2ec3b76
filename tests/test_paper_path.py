"""The real-data study path end to end on small, incomplete fake copies of FER2013, CelebA,
KDEF and UC Merced in their real layouts (tests/_fake_datasets.py)."""

from __future__ import annotations

import logging

import _fake_datasets as fake
import pytest
from torch import nn

import dnnrsa
from dnnrsa import cli, study, zoo
from dnnrsa.study._paper import PAPER_LAYERS

NETS = ("expression", "untrained")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DNNRSA_HOME", str(tmp_path / "env_home"))
    monkeypatch.delenv("DNNRSA_DATA", raising=False)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    return fake.make_paper_copies(tmp_path_factory.mktemp("data"))


def _checkpoints(home):
    return sorted(p.relative_to(home / "models") for p in (home / "models").rglob("*.safetensors"))


def test_reproduce_paper_on_incomplete_copies(copies, tmp_path, caplog):
    home, out = tmp_path / "home", tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="dnnrsa"):
        res = study.reproduce("paper", networks=NETS, seeds=1, quick=True, readout="linear",
                              data_root=copies, on_problem="skip", out=out, home=home,
                              n_jobs=1)
    # every network x paper layer x target, three held-out viewpoints each
    for net in NETS:
        sub = res[res.network == net]
        assert set(sub.layer) == set(PAPER_LAYERS) and set(sub.target) == {"identity",
                                                                            "expression"}
        assert (sub.groupby(["layer", "target"]).size() == 3).all()
    assert set(res.data) == {"paper"}
    # the test faces are the fabricated KDEF: 2 sessions x 4 persons x 7 expressions x 3 views
    assert res.n_test.iloc[0] + res.n_train.iloc[0] == 168
    # what was skipped is logged, per data set the run read (not celeba/uc_merced: unused)
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "on_problem='skip': fer2013 at" in warned and "on_problem='skip': kdef at" in warned
    assert "celeba" not in warned and "uc_merced" not in warned
    # ... and written into the report's Data section, naming the folders and the problems
    text = (out / "report.md").read_text()
    data = text.split("## Data", 1)[1].split("\n## ", 1)[0]
    assert f"**fer2013** at `{copies / 'fer2013'}`: 21 problem(s), skipped" in data
    assert "wrong count: fer2013.csv has 2 Training rows of class 0 (angry), expected 3995" in data
    assert f"**kdef** at `{copies / 'kdef' / 'KDEF'}`: 1 problem(s)" in data
    assert "missing folders (132 of 140" in data and "note: images not decoded" in data
    assert "not the paper's data" in data
    # the loaders' own findings while loading (checksums are compared only there)
    assert "- fer2013: skipping 22 problem(s)" in data
    assert "wrong checksum for fer2013.csv" in data
    # checkpoints under the paper data source, in the skip recipe, none under synthetic
    found = _checkpoints(home)
    assert [p.parts[:2] for p in found] == [("paper", "expression"), ("paper", "untrained")]
    skip_key = zoo.recipe_key(zoo.recipe("expression", data="paper", quick=True,
                                         on_problem="skip"))
    assert found[0].parts[2] == skip_key
    assert zoo.read_info(home / "models" / found[0])["recipe"]["training_data"] == dict(
        dataset="fer2013", on_problem="skip", size=32)
    # a network of an incomplete copy is never loaded as a sound copy's, nor as synthetic
    with pytest.raises(FileNotFoundError, match=r"No trained 'expression' network .* Trained "
                                                r"recipes .*load with quick=True \(--quick\), "
                                                r"on_problem='skip' \(--on-problem skip\)"):
        dnnrsa.load_model("expression", seed=0, data="paper", quick=True, home=home)
    with pytest.raises(FileNotFoundError, match="No trained 'expression' network"):
        dnnrsa.load_model("expression", seed=0, data="synthetic", quick=True, home=home)
    listed = zoo.list_models(home)
    assert list(zip(listed.variant, listed.on_problem)) == [("expression", "skip"),
                                                            ("untrained", "raise")]
    model = dnnrsa.load_model("expression", seed=0, data="paper", quick=True, home=home,
                              on_problem="skip")
    assert model.dnnrsa_info["data"]["source"] == "paper"
    # the CLI form, in-process, reuses those checkpoints and exits 0
    rc = cli.main(["reproduce", "--data", "paper", "--data-root", str(copies), "--on-problem",
                   "skip", "--quick", "--seeds", "1", "--networks", *NETS, "--readout",
                   "linear", "--jobs", "1", "--out", str(tmp_path / "cli"), "--home",
                   str(home)])
    assert rc == 0 and "## Data" in (tmp_path / "cli" / "report.md").read_text()
    assert _checkpoints(home) == found
    # decode by name finds the same network, on the same faces, with the same numbers
    row = res[(res.network == "expression") & (res.layer == "dense3")
              & (res.target == "identity")]
    one = study.decode("expression", "dense3", target="identity", data="paper", quick=True,
                       home=home, stimuli="kdef", data_root=copies, on_problem="skip",
                       readout="linear", seed=0)
    assert list(one.to_frame().accuracy) == pytest.approx(list(row.accuracy))


def test_paper_and_synthetic_networks_live_apart(tmp_path):
    home = tmp_path / "home"
    syn = zoo.train_variant("untrained", 0, quick=True, home=home)
    pap = zoo.checkpoint_path("untrained", 0, data="paper", quick=True, home=home)
    assert syn.parts[-4] == "synthetic" and pap.parts[-4] == "paper" and syn != pap
    with pytest.raises(FileNotFoundError, match="No trained 'untrained' network .*paper data"):
        dnnrsa.load_model("untrained", seed=0, data="paper", quick=True, home=home)
    keys = {zoo.recipe_key(zoo.recipe("expression", data=d, quick=True, on_problem=o))
            for d, o in (("synthetic", "raise"), ("paper", "raise"), ("paper", "skip"))}
    assert len(keys) == 3


def test_incomplete_copy_without_skip_fails_before_training(copies, tmp_path):
    home = tmp_path / "home"
    with pytest.raises(ValueError, match=r"(?s)data='paper': these local copies do not match "
                                         r"their manifests:\nfer2013 at .*21 problem\(s\).*"
                                         r"kdef at .*on_problem='skip'"):
        study.reproduce("paper", networks=NETS, seeds=1, quick=True, readout="linear",
                        data_root=copies, out=tmp_path / "out", home=home, n_jobs=1)
    assert not home.exists() and not (tmp_path / "out").exists()
    rc = cli.main(["reproduce", "--data", "paper", "--data-root", str(copies), "--quick",
                   "--networks", "expression", "--out", str(tmp_path / "o"), "--home",
                   str(home)])
    assert rc == 2 and not home.exists()


def test_reproduce_on_problem_errors(copies, tmp_path):
    with pytest.raises(ValueError, match="on_problem='skip' applies to data='paper'"):
        study.reproduce("synthetic", quick=True, on_problem="skip", home=tmp_path)
    with pytest.raises(ValueError, match="Unknown value 'ignore' for argument on_problem"):
        study.reproduce("paper", quick=True, on_problem="ignore", data_root=copies,
                        home=tmp_path)
    empty = tmp_path / "root"
    (empty / "kdef").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"has no fer2013/ folder: .*not a whole data "
                                                "set"):
        study.reproduce("paper", networks=NETS, quick=True, on_problem="skip",
                        data_root=empty, home=tmp_path / "home")
    assert not (tmp_path / "home").exists()
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["reproduce", "--out", "x", "--on-problem", "maybe"])


def test_decode_kdef_by_name(copies):
    net = zoo.build("ccn2022", n_classes=7, **zoo.QUICK["arch"])
    res = study.decode(net, "pixels", target="expression", stimuli="kdef", data_root=copies,
                       on_problem="skip", readout="linear")
    assert sum(res.to_frame().n_test) == 168  # every fabricated KDEF image tested once
    with pytest.raises(FileNotFoundError, match=r"(?s)The kdef data set at .* is not usable.*"
                                         "on_problem='skip'"):
        study.decode(net, "pixels", target="expression", stimuli="kdef", data_root=copies)
    with pytest.raises(ValueError, match=r"Unknown value 'fer' for argument stimuli\. Valid "
                                         r"values are .*\{kdef, synthetic\}"):
        study.decode(net, "pixels", target="expression", stimuli="fer", data_root=copies)
    with pytest.raises(ValueError, match="on_problem='skip' applies to the KDEF test faces"):
        study.decode(net, "pixels", target="expression", stimuli="synthetic",
                     on_problem="skip")
    with pytest.raises(ValueError, match="Unknown value 'drop' for argument on_problem"):
        study.decode(nn.Identity(), "pixels", target="expression", on_problem="drop")


def test_cli_decode_and_train_take_on_problem(copies, tmp_path, capsys):
    home = str(tmp_path / "home")
    zoo.train_variant("untrained", 0, data="paper", quick=True, home=home)
    rc = cli.main(["decode", "untrained", "pixels", "--target", "expression", "--quick",
                   "--data", "paper", "--stimuli", "kdef", "--data-root", str(copies),
                   "--on-problem", "skip", "--readout", "linear", "--home", home])
    out = capsys.readouterr().out
    assert rc == 0 and "held_out" in out
    rc = cli.main(["decode", "untrained", "pixels", "--target", "expression", "--quick",
                   "--data", "paper", "--stimuli", "kdef", "--data-root", str(copies),
                   "--readout", "linear", "--home", home])
    assert rc == 2 and "Pass on_problem='skip'" in capsys.readouterr().err
    rc = cli.main(["train", "expression", "--quick", "--on-problem", "skip", "--home", home])
    assert rc == 2 and "on_problem='skip' applies to data='paper'" in capsys.readouterr().err
