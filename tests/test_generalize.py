import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dnnrsa import Activations
from dnnrsa.decoding import GeneralizationResult, generalize

matplotlib.use("Agg")  # no display; the plots draw on their own Figure, not pyplot

LEVELS = ["A", "B", "C"]


def _planted(rng, *, n_class=4, n_run=4, n_rep=3, n_feat=30, signal=4.0, shuffle=False):
    """Levels A and B of ``context`` share the class patterns of ``category``; level C has
    its own, orthogonal to them. ``shuffle`` breaks the link between labels and patterns."""
    rows = [dict(category=f"c{k}", context=c, run=f"r{r}")
            for c in LEVELS for r in range(n_run) for k in range(n_class) for _ in range(n_rep)]
    meta = pd.DataFrame(rows)
    q, _ = np.linalg.qr(rng.normal(size=(n_feat, 2 * n_class)))
    shared, own = signal * q[:, :n_class].T, signal * q[:, n_class:].T
    patterns = np.stack([(own if r.context == "C" else shared)[int(r.category[1:])]
                         for r in meta.itertuples()])
    X = (patterns + rng.normal(size=patterns.shape)).astype(np.float32)
    if shuffle:
        meta["category"] = rng.permutation(meta["category"].to_numpy())
    return Activations.from_arrays(X, meta, region="ROI")


def _reference(acts, cv, seed=0):
    """Brute-force loop: scikit-learn's logistic regression on standardised features over
    the documented splits, cell by cell."""
    X, meta = acts.X, acts.metadata
    y = pd.factorize(meta.category, sort=True)[0]
    ctx = meta.context.to_numpy()
    out = np.zeros((3, 3))

    def acc(tr, te):
        est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        return np.mean(est.fit(X[tr], y[tr]).predict(X[te]) == y[te])

    for i, a in enumerate(LEVELS):
        for j, b in enumerate(LEVELS):
            if cv is not None:
                runs = meta[cv].to_numpy()
                out[i, j] = np.mean([acc((ctx == a) & (runs != g), (ctx == b) & (runs == g))
                                     for g in sorted(set(runs))])
            elif a != b:
                out[i, j] = acc(ctx == a, ctx == b)
            else:
                rows = np.flatnonzero(ctx == a)
                k = min(5, np.bincount(y[rows]).min())
                skf = StratifiedKFold(k, shuffle=True, random_state=seed)
                out[i, j] = np.mean([acc(rows[tr], rows[te])
                                     for tr, te in skf.split(rows[:, None], y[rows])])
    return out


def test_planted_shared_and_private_codes_are_recovered(rng):
    res = generalize(_planted(rng), target="category", across="context", cv="run")
    m = res.matrix
    assert isinstance(res, GeneralizationResult)
    assert m.index.name == "train" and m.columns.name == "test"
    assert list(m.index) == list(m.columns) == LEVELS
    assert np.all(np.diag(m) > 0.9)
    assert m.loc["A", "B"] > 0.9 and m.loc["B", "A"] > 0.9
    private = [m.loc["A", "C"], m.loc["B", "C"], m.loc["C", "A"], m.loc["C", "B"]]
    assert np.all(np.abs(np.array(private) - 0.25) < 0.2), private
    assert abs(np.mean(private) - 0.25) < 0.1
    assert res.chance == 0.25
    assert res.diagonal == pytest.approx(np.mean(np.diag(m)))
    off = m.to_numpy()[~np.eye(3, dtype=bool)]
    assert res.off_diagonal == pytest.approx(off.mean())


@pytest.mark.parametrize("cv", ["run", None])
def test_matrix_equals_a_brute_force_scikit_learn_loop(rng, cv):
    acts = _planted(rng, signal=1.0)  # weak signal: accuracies well inside (0, 1)
    res = generalize(acts, target="category", across="context", cv=cv, seed=3)
    np.testing.assert_allclose(res.matrix.to_numpy(), _reference(acts, cv, seed=3))
    # the table holds the cells' parts: their means are the matrix
    means = res.to_frame().groupby(["train", "test"]).accuracy.mean().unstack()
    np.testing.assert_allclose(means.loc[LEVELS, LEVELS].to_numpy(), res.matrix.to_numpy())


def test_table_rows_and_provenance(rng):
    acts = _planted(rng, signal=1.0)
    acts.provenance.update(model="net", seed=7, layer="fc1")
    res = generalize(acts, target="category", across="context", cv="run")
    t = res.table
    assert res.to_frame() is t
    assert len(t) == 3 * 3 * 4  # train x test x held-out run
    assert {"train", "test", "held_out", "accuracy", "n_train", "n_test", "chance", "network",
            "seed", "layer", "region", "target", "across", "cv", "readout"} <= set(t.columns)
    row = t[(t.train == "A") & (t.test == "C") & (t.held_out == "r1")].iloc[0]
    assert (row.n_train, row.n_test) == (36, 12)
    assert (row.network, row.seed, row.layer, row.target, row.across, row.cv, row.readout) == \
        ("net", 7, "fc1", "category", "context", "run", "linear")
    none = generalize(acts, target="category", across="context")
    t0 = none.table
    # off-diagonal cells: one fit on all of A, tested on all of C; diagonal: 5 folds
    assert t0[(t0.train == "A") & (t0.test == "C")][["n_train", "n_test"]].values.tolist() == \
        [[48, 48]]
    diag = t0[(t0.train == "A") & (t0.test == "A")]
    assert list(diag.held_out) == [f"fold{i}" for i in range(5)] and diag.n_test.sum() == 48
    assert none.provenance["diagonal_folds"] == {"A": 5, "B": 5, "C": 5}
    assert "category across context" in repr(res)


class _Log(list):
    """A list that scikit-learn's clone() shares instead of copying."""

    def __deepcopy__(self, memo):
        return self


class _Recorder(ClassifierMixin, BaseEstimator):
    """Predicts the majority class; logs the row ids (column 0) and labels of every fit and
    the row ids of every prediction, tagged with the fitted clone."""

    def __init__(self, log=None):
        self.log = log

    def fit(self, X, y):
        self.log.append(("fit", id(self), np.asarray(X)[:, 0].astype(int), np.asarray(y)))
        self.classes_, counts = np.unique(y, return_counts=True)
        self.majority_ = self.classes_[counts.argmax()]
        return self

    def predict(self, X):
        self.log.append(("predict", id(self), np.asarray(X)[:, 0].astype(int), None))
        return np.full(len(X), self.majority_)


def _with_ids(acts):
    X = acts.X.copy()
    X[:, 0] = np.arange(len(acts))
    return Activations(X, acts.metadata, acts.provenance)


def _fits(log):
    """(training ids, labels, [test ids of each prediction]) of every fit, in order."""
    out = []
    for kind, who, ids, y in log:
        if kind == "fit":
            out.append((who, ids, y, []))
        else:
            assert out[-1][0] == who  # a prediction belongs to the last fit
            out[-1][3].append(ids)
    return [(ids, y, tests) for _, ids, y, tests in out]


def test_no_held_out_run_is_ever_in_training(rng):
    acts = _planted(rng)
    # unbalanced classes: a wrong permutation shows up as wrong class counts
    acts = _with_ids(acts[~((acts.metadata.category == "c0") &
                            (acts.metadata.run == "r0")).to_numpy()])
    meta = acts.metadata
    log, n_perm = _Log(), 3
    res = generalize(acts, target="category", across="context", cv="run",
                     readout=_Recorder(log), n_permutations=n_perm, seed=5)
    fits = _fits(log)
    assert len(fits) == 3 * 4 * (1 + n_perm)  # a fit per training level and held-out run
    y = pd.factorize(meta.category, sort=True)[0]
    for k, (tr, labels, tests) in enumerate(fits):
        level, held = LEVELS[(k // 4) % 3], f"r{k % 4}"
        expect = np.flatnonzero((meta.context == level) & (meta.run != held))
        np.testing.assert_array_equal(tr, expect)
        assert len(tests) == 3  # tested on every level
        for te in tests:
            assert set(meta.run[te]) == {held}
            assert np.intersect1d(te, tr).size == 0
        np.testing.assert_array_equal(np.bincount(labels, minlength=4),
                                      np.bincount(y[tr], minlength=4))
        if k < 12:
            np.testing.assert_array_equal(labels, y[tr])  # the real fits: true labels
    assert sum(not np.array_equal(lab, y[tr]) for tr, lab, _ in fits[12:]) >= 35
    # each permutation round draws afresh: no fit sees the same shuffle twice
    for k in range(12):
        rounds = [fits[12 * r + k][1] for r in range(1, 1 + n_perm)]
        assert not any(np.array_equal(rounds[i], rounds[j])
                       for i in range(n_perm) for j in range(i))
    # a majority-class readout is unchanged by permuting its training labels, so with the
    # test labels untouched every null matrix equals the real one
    np.testing.assert_array_equal(res.null, np.repeat(res.matrix.to_numpy()[..., None],
                                                      n_perm, axis=-1))


def test_cv_none_never_tests_a_diagonal_cell_on_its_training_rows(rng):
    acts = _with_ids(_planted(rng))
    meta = acts.metadata
    log = _Log()
    generalize(acts, target="category", across="context", readout=_Recorder(log))
    fits = _fits(log)
    assert len(fits) == 3 * (1 + 5)
    for tr, _, tests in fits:
        (level,) = set(meta.context[tr])
        for te in tests:
            assert np.intersect1d(te, tr).size == 0
            if set(meta.context[te]) == {level}:  # a diagonal fold: the level's other rows
                assert np.union1d(te, tr).size == (meta.context == level).sum()
            else:  # off-diagonal: all of another level
                assert len(te) == (meta.context == meta.context[te[0]]).sum()


def test_shuffled_target_sits_at_chance_and_permutations(rng):
    planted = generalize(_planted(rng), target="category", across="context", cv="run",
                         n_permutations=19, seed=1)
    shuffled = generalize(_planted(rng, shuffle=True), target="category", across="context",
                          cv="run", n_permutations=19, seed=1)
    assert abs(shuffled.matrix.to_numpy().mean() - 0.25) < 0.08
    assert shuffled.null.shape == planted.null.shape == (3, 3, 19)
    assert abs(planted.null.mean() - 0.25) < 0.05
    assert len({planted.null[..., k].tobytes() for k in range(19)}) == 19  # 19 distinct nulls
    p = planted.p_values
    assert list(p.index) == LEVELS and p.index.name == "train" and p.columns.name == "test"
    for a, b in [("A", "A"), ("B", "B"), ("C", "C"), ("A", "B"), ("B", "A")]:
        assert p.loc[a, b] == pytest.approx(1 / 20)  # beats every permutation
    assert shuffled.p_values.to_numpy().mean() > 0.25
    ref = (1 + (planted.null >= planted.matrix.to_numpy()[..., None]).sum(-1)) / 20
    np.testing.assert_allclose(p.to_numpy(), ref)


def test_same_seed_same_numbers(rng):
    acts = _planted(rng, signal=1.0)
    runs = [generalize(acts, target="category", across="context", n_permutations=3, seed=s)
            for s in (4, 4, 5)]
    pd.testing.assert_frame_equal(runs[0].matrix, runs[1].matrix)
    np.testing.assert_array_equal(runs[0].null, runs[1].null)
    pd.testing.assert_frame_equal(runs[0].table, runs[1].table)
    assert not np.array_equal(runs[0].null, runs[2].null)  # the seed is used
    # off-diagonal cells (whole levels) do not depend on the k-fold seed
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_array_equal(runs[0].matrix.to_numpy()[off],
                                  runs[2].matrix.to_numpy()[off])


def test_plot_draws_the_matrix(rng):
    res = generalize(_planted(rng), target="category", across="context", cv="run")
    ax = res.plot()
    img = ax.images[0].get_array()
    assert img.shape == (3, 3)
    np.testing.assert_allclose(np.asarray(img), res.matrix.to_numpy())
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 9 and texts[1] == f"{res.matrix.iloc[0, 1]:.2f}"
    assert [t.get_text() for t in ax.get_xticklabels()] == LEVELS
    assert ax.get_ylabel() == "train context" and ax.get_xlabel() == "test context"
    assert "category" in ax.get_title() and "context" in ax.get_title()
    assert len(ax.figure.axes) == 2  # the colour bar
    from matplotlib.figure import Figure

    ax2 = Figure().add_subplot()
    assert res.plot(ax2, annotate=False, cmap="magma") is ax2 and len(ax2.texts) == 0
    with pytest.raises(TypeError, match="annotate must be True or False"):
        res.plot(annotate="yes")


def test_bad_input_is_refused_before_any_fit(rng):
    acts = _planted(rng)
    log = _Log()

    def call(data=acts, **kw):
        kw = dict(dict(target="category", across="context", readout=_Recorder(log)), **kw)
        return generalize(data, **kw)

    with pytest.raises(TypeError, match="acts must be dnnrsa.Activations"):
        call(data=acts.X)
    with pytest.raises(ValueError, match=r"Unknown value 'face' for argument target.*category"):
        call(target="face")
    with pytest.raises(ValueError, match=r"Unknown value 'ctx' for argument across.*context"):
        call(across="ctx")
    with pytest.raises(ValueError, match=r"Unknown value 'runs' for argument cv.*run"):
        call(cv="runs")
    with pytest.raises(TypeError, match="cv must be None or the name of a factor"):
        call(cv=3)
    with pytest.raises(ValueError, match="target and across are both 'context'"):
        call(target="context")
    with pytest.raises(ValueError, match="cv='category' is the same factor as target"):
        call(cv="category")
    with pytest.raises(ValueError, match="cv='context' is the same factor as across"):
        call(cv="context")
    with pytest.raises(ValueError, match=r"Unknown value 'svm' for argument readout"):
        call(readout="svm")
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        call(epochs=0)
    with pytest.raises(ValueError, match="n_permutations must be an integer >= 0"):
        call(n_permutations=-1)
    with pytest.raises(TypeError, match="n_permutations must be an integer"):
        call(n_permutations=2.5)
    meta = acts.metadata
    with pytest.raises(ValueError, match="across factor 'context' has fewer than 2 levels"):
        call(data=acts[(meta.context == "A").to_numpy()])
    with pytest.raises(ValueError, match="cv factor 'run' has fewer than 2 unique groups"):
        call(data=acts[(meta.run == "r0").to_numpy()], cv="run")
    # level C holds a single class of the target
    one = acts[~((meta.context == "C") & (meta.category != "c0")).to_numpy()]
    with pytest.raises(ValueError, match=r"fewer than 2 classes \(\['c0'\]\) in level 'C'"):
        call(data=one)
    # class c1 once in level B: k-fold on the diagonal cannot keep it in training
    lonely = acts[~((meta.context == "B") & (meta.category == "c1")).to_numpy()
                  | (np.arange(len(acts)) == np.flatnonzero(
                      (meta.context == "B") & (meta.category == "c1"))[0])]
    with pytest.raises(ValueError, match=r"diagonal cell of level 'B'.*\['c1'\] have 1"):
        call(data=lonely)
    # class c3 absent from level A but tested in B and C
    absent = acts[~((meta.context == "A") & (meta.category == "c3")).to_numpy()]
    with pytest.raises(ValueError, match=r"level 'A' has no observation of class\(es\) \['c3'\]"):
        call(data=absent)
    # with cv: level A seen in run r0 only, so holding out r0 leaves nothing to train on
    only_r0 = acts[~((meta.context == "A") & (meta.run != "r0")).to_numpy()]
    with pytest.raises(ValueError, match="level 'A' without run group 'r0' leaves 0 class"):
        call(data=only_r0, cv="run")
    bad = Activations(acts.X.copy(), meta, {"region": "ROI"})
    bad.data[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf values in 1 of 144"):
        call(data=bad)
    assert log == []  # every check came before the first fit
