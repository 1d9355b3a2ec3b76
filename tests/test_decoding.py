import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import dnnrsa
from dnnrsa import Activations
from dnnrsa.decoding import PaperReadout, make_splits


def _factorial(rng, n_id=6, n_expr=3, views=("HL", "S", "HR"), n_feat=40, signal=1.0):
    """Brain-like patterns: identity and expression codes plus a viewpoint offset."""
    rows = [dict(identity=f"P{i}", expression=f"E{e}", viewpoint=v)
            for i in range(n_id) for e in range(n_expr) for v in views]
    meta = pd.DataFrame(rows)
    id_code = rng.normal(size=(n_id, n_feat))
    ex_code = rng.normal(size=(n_expr, n_feat))
    view_code = {v: rng.normal(size=n_feat) for v in views}
    X = np.stack([
        signal * id_code[int(r.identity[1:])] + signal * ex_code[int(r.expression[1:])]
        + view_code[r.viewpoint] + rng.normal(size=n_feat)
        for r in meta.itertuples()
    ])
    return Activations.from_arrays(X, meta, region="ROI")


def test_viewpoint_folds_equal_leave_one_group_out_and_never_leak(rng):
    acts = _factorial(rng)
    y = acts.to_arrays("identity")[1]
    splits, name = make_splits("viewpoint", acts.metadata, y)
    views = acts.metadata.viewpoint.to_numpy()
    ref = list(LeaveOneGroupOut().split(acts.X, y, views))
    assert name == "viewpoint" and len(splits) == len(ref) == 3
    for (tr, te, held), (rtr, rte) in zip(splits, ref):
        np.testing.assert_array_equal(tr, rtr)
        np.testing.assert_array_equal(te, rte)
        assert set(views[tr]).isdisjoint(views[te])
        assert set(views[te]) == {held}


def test_linear_readout_equals_scikit_learn_cross_validation(rng):
    acts = _factorial(rng)
    res = dnnrsa.decode(acts, target="identity", cv="viewpoint", readout="linear")
    X, y, g = acts.to_arrays("identity", groups="viewpoint")
    ref = cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), X, y,
        groups=g, cv=LeaveOneGroupOut())
    # folds come in the order of the viewpoint levels in both
    np.testing.assert_allclose(np.sort(res.folds), np.sort(ref))
    assert res.accuracy == pytest.approx(ref.mean())
    assert res.chance == pytest.approx(1 / 6)
    assert res.confusion.sum() == len(acts)
    assert np.trace(res.confusion) / len(acts) == pytest.approx(res.accuracy)
    frame = res.to_frame()
    assert list(frame.columns[:8]) == ["network", "seed", "layer", "target", "cv", "fold",
                                       "held_out", "accuracy"]
    assert frame.network.iloc[0] == "ROI" and set(frame.held_out) == {"HL", "S", "HR"}


def test_shuffled_training_labels_give_chance(rng):
    acts = _factorial(rng, n_id=6, n_expr=4, signal=1.5)
    res = dnnrsa.decode(acts, target="identity", readout="linear", n_permutations=8, seed=1)
    n_test = len(acts)  # every observation is tested once over the folds
    p = res.chance
    bound = 3.5 * np.sqrt(p * (1 - p) / n_test)
    assert res.accuracy > 0.8  # the real labels carry identity
    assert np.all(np.abs(res.null - p) < bound), (res.null, p, bound)
    assert abs(res.null.mean() - p) < bound
    assert res.p_value == pytest.approx(1 / 9)


class _Log(list):
    """A list that scikit-learn's clone() shares instead of copying."""

    def __deepcopy__(self, memo):
        return self


class _Recorder(ClassifierMixin, BaseEstimator):
    """Predicts the majority class and records, in a log shared by its clones, the rows and
    labels of every fit."""

    def __init__(self, log=None):
        self.log = log

    def fit(self, X, y):
        self.log.append((np.asarray(X).copy(), np.asarray(y).copy()))
        self.classes_, counts = np.unique(y, return_counts=True)
        self.majority_ = self.classes_[counts.argmax()]
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


def test_every_fold_of_every_permutation_trains_on_a_permutation_of_its_own_labels(rng):
    """The review's defect: one label vector was overwritten fold after fold, and since
    leave-one-viewpoint-out training sets overlap, only the last fold's labels were a true
    permutation. Each fold must see its own training rows with a permutation of their true
    labels (same class counts), and the test labels are never touched."""
    acts = _factorial(rng, n_id=5, n_expr=3)
    # unbalanced classes make a wrong permutation show up as wrong class counts
    keep = ~((acts.metadata.identity == "P0") & (acts.metadata.expression != "E0")).to_numpy()
    acts = acts[keep]
    log = _Log()
    n_perm = 6
    res = dnnrsa.decode(acts, target="identity", readout=_Recorder(log), n_permutations=n_perm,
                        seed=3)
    y = acts.to_arrays("identity")[1]
    splits, _ = make_splits("viewpoint", acts.metadata, y)
    assert len(log) == len(splits) * (1 + n_perm)
    X = acts.X
    for k in range(1 + n_perm):
        for f, (tr, _, _) in enumerate(splits):
            Xfit, yfit = log[k * len(splits) + f]
            np.testing.assert_allclose(Xfit, X[tr], rtol=1e-6)  # the fold's own training rows
            np.testing.assert_array_equal(np.bincount(yfit, minlength=5),
                                          np.bincount(y[tr], minlength=5))
            if k == 0:
                np.testing.assert_array_equal(yfit, y[tr])  # the real fit: true labels
    shuffled = [log[k * len(splits) + f][1] for k in range(1, 1 + n_perm)
                for f in range(len(splits))]
    assert sum(not np.array_equal(lab, y[tr]) for lab, (tr, _, _) in
               zip(shuffled, [s for _ in range(n_perm) for s in splits], strict=True)) >= \
        len(shuffled) - 1  # they are shuffled (a draw equal to the truth is vanishingly rare)
    assert res.null.shape == (n_perm,)


def test_permutation_p_value_is_reproducible_and_counts_ties(rng):
    acts = _factorial(rng, n_id=4, n_expr=2)
    a = dnnrsa.decode(acts, target="identity", readout="linear", n_permutations=5, seed=2)
    b = dnnrsa.decode(acts, target="identity", readout="linear", n_permutations=5, seed=2)
    np.testing.assert_array_equal(a.null, b.null)
    assert a.p_value == (1 + np.sum(a.null >= a.accuracy)) / 6


@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs=0), "epochs"),
    (dict(epochs=-3), "epochs"),
    (dict(lr=float("nan")), "lr"),
    (dict(lr=0.0), "lr"),
    (dict(batch_size=0), "batch_size"),
    (dict(pool=0), "pool"),
    (dict(n_permutations=-5), "n_permutations"),
    (dict(seed=-1), "seed"),
])
def test_bad_readout_options_are_refused_before_any_work(rng, kwargs, match):
    """Negative epochs used to return a chance-level "result"; a NaN lr a NaN loss."""
    acts = _factorial(rng, n_id=3, n_expr=2)
    with pytest.raises((ValueError, TypeError), match=match):
        dnnrsa.decode(acts, target="identity", **kwargs)
    # a network argument that would take a while is never reached
    with pytest.raises((ValueError, TypeError), match=match):
        dnnrsa.decode("expression", "dense3", target="identity", **kwargs)


def test_moved_names_say_where_they_went():
    with pytest.raises(AttributeError, match="moved to dnnrsa.decode"):
        dnnrsa.decoding.decode  # noqa: B018
    with pytest.raises(AttributeError, match="dnnrsa.study.default_stimuli"):
        dnnrsa.decoding.default_stimuli  # noqa: B018


def test_same_seed_same_numbers_with_the_paper_readout(rng):
    acts = _factorial(rng, n_id=4)
    a = dnnrsa.decode(acts, target="identity", readout="paper", epochs=3, seed=5)
    b = dnnrsa.decode(acts, target="identity", readout="paper", epochs=3, seed=5)
    np.testing.assert_array_equal(a.folds, b.folds)
    np.testing.assert_array_equal(a.confusion, b.confusion)


def test_any_classifier_and_int_or_splitter_cv(rng):
    acts = _factorial(rng)
    knn = dnnrsa.decode(acts, target="expression", cv=3, readout=KNeighborsClassifier(3))
    assert len(knn.folds) == 3 and knn.provenance["cv"] == "3-fold"
    logo = dnnrsa.decode(acts, target="expression", cv=LeaveOneGroupOut(), readout="linear",
                         groups=acts.metadata.identity.to_numpy())
    assert len(logo.folds) == 6
    assert logo.provenance["readout"] == "linear"


def test_paper_readout_matches_the_papers_head():
    X = np.random.default_rng(0).normal(size=(8, 64, 48, 48)).astype(np.float32)
    est = PaperReadout(epochs=1).fit(X, np.arange(8) % 2)
    assert est.module_.fc.in_features == 2304  # 6 * 6 * 64 for conv1, as in PAPER.md
    assert isinstance(est.module_.norm, torch.nn.BatchNorm2d)
    # dense3 at 12 x 12: floor pooling keeps one 8 x 8 window
    est = PaperReadout(epochs=1).fit(X[:, :4, :12, :12], np.arange(8) % 2)
    assert est.module_.fc.in_features == 4
    with pytest.raises(NotFittedError):
        PaperReadout().predict(X)


def test_pixel_control_uses_a_linear_layer(toy_stimuli):
    net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=4, input_size=32)
    res = dnnrsa.decode(net, "pixels", target="identity", stimuli=toy_stimuli, epochs=2,
                        device="cpu")
    assert res.provenance["readout"] == "paper-linear"
    assert res.provenance["network"] == "pixels"
    assert res.provenance["n_features"] == 32 * 32


def test_network_decode_path(toy_stimuli):
    torch.manual_seed(0)
    net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=4, input_size=32)
    res = dnnrsa.decode(net, "dense3", target="expression", stimuli=toy_stimuli, epochs=2,
                        device="cpu")
    assert res.provenance["layer"] == "dense3" and res.provenance["n_features"] == 23 * 8 * 8
    assert len(res.folds) == 3 and res.n_test == [8, 8, 8]


def test_bad_input(rng, toy_stimuli):
    acts = _factorial(rng)
    with pytest.raises(ValueError, match=r"Unknown value 'face' for argument target.*identity"):
        dnnrsa.decode(acts, target="face")
    with pytest.raises(ValueError, match=r"Unknown value 'viewpont' for argument cv.*viewpoint"):
        dnnrsa.decode(acts, target="identity", cv="viewpont")
    with pytest.raises(ValueError, match=r"Unknown value 'svm' for argument readout.*paper, linear"):
        dnnrsa.decode(acts, target="identity", readout="svm")
    one_view = acts[acts.metadata.viewpoint.to_numpy() == "S"]
    with pytest.raises(ValueError, match="fewer than 2 unique groups"):
        dnnrsa.decode(one_view, target="identity")
    one_class = acts[acts.metadata.identity.to_numpy() == "P0"]
    with pytest.raises(ValueError, match="fewer than 2 classes"):
        dnnrsa.decode(one_class, target="identity")
    bad = Activations(acts.X.copy(), acts.metadata, {"layer": "dense3"})
    bad.data[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf values in 1 of"):
        dnnrsa.decode(bad, target="identity")
    # identity P0 only ever seen from HL: the fold holding out HL cannot learn it
    drop = (acts.metadata.identity == "P0") & (acts.metadata.viewpoint != "HL")
    with pytest.raises(ValueError, match="no training observation"):
        dnnrsa.decode(acts[~drop.to_numpy()], target="identity")
    with pytest.raises(ValueError, match="layer is required"):
        dnnrsa.decode(torch.nn.Identity(), target="identity")
    with pytest.raises(ValueError, match="model"):
        dnnrsa.decode("expresion", "dense3", target="identity")
    with pytest.raises(ValueError, match="metadata has 3 rows"):
        Activations(np.zeros((4, 2)), acts.metadata.iloc[:3])


def test_decode_reads_the_configured_kdef_copy(tmp_path, monkeypatch):
    """stimuli='kdef' (and stimuli=None with DNNRSA_DATA set) load DNNRSA_DATA/kdef."""
    import functools

    import _fake_datasets as fake

    root, manifest = fake.make_kdef(tmp_path / "kdef", persons_per_sex=2)
    assert root == tmp_path / "kdef"
    monkeypatch.setattr(dnnrsa.datasets, "kdef",
                        functools.partial(dnnrsa.datasets.kdef, manifest=manifest))
    monkeypatch.setenv("DNNRSA_DATA", str(tmp_path))
    net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=4, input_size=48)
    for stimuli in ("kdef", None):
        res = dnnrsa.decode(net, "pixels", target="expression", stimuli=stimuli,
                            readout="linear", device="cpu")
        assert res.provenance["n_obs"] == 4 * 7 * 3 * 2  # people x expressions x views x sessions
        assert res.provenance["stimuli"].startswith("kdef")
    monkeypatch.delenv("DNNRSA_DATA")
    with pytest.raises(FileNotFoundError, match="DNNRSA_DATA"):
        dnnrsa.decode(net, "pixels", target="expression", stimuli="kdef")


def test_a_readout_that_predicts_one_class_is_reported(rng, caplog):
    """A fold whose predictions are all one class scores chance by construction; decode
    says so (a too-short readout reads as 'no information' otherwise), for decode and for
    decode_grid, and stays quiet for a readout that learnt."""
    import logging

    import pandas as pd
    from sklearn.dummy import DummyClassifier

    import dnnrsa

    meta = pd.DataFrame({"identity": np.repeat(list("abcd"), 6),
                         "viewpoint": np.tile(list("xyz"), 8)})
    X = rng.normal(size=(24, 8)) + 3 * np.eye(4)[np.repeat(np.arange(4), 6)] @ rng.normal(
        size=(4, 8))
    acts = dnnrsa.Activations.from_arrays(X, meta)
    with caplog.at_level(logging.WARNING, logger="dnnrsa"):
        dnnrsa.decode(acts, target="identity", cv="viewpoint",
                      readout=DummyClassifier(strategy="most_frequent"))
    assert "predicted one class for every test item of fold(s) x, y, z" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dnnrsa"):
        dnnrsa.decode(dnnrsa.Activations.from_arrays(X, meta, model="net", seed=3,
                                                     layer="dense3"),
                      target="identity", cv="viewpoint",
                      readout=DummyClassifier(strategy="most_frequent"))
    assert "'identity' from net seed 3 dense3 predicted one class" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dnnrsa"):
        dnnrsa.decoding.decode_grid([acts], targets=["identity"], cv="viewpoint",
                                    readout=DummyClassifier(strategy="most_frequent"))
    assert "predicted one class" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dnnrsa"):
        res = dnnrsa.decode(acts, target="identity", cv="viewpoint", readout="linear")
    assert res.accuracy > 0.5 and "predicted one class" not in caplog.text
