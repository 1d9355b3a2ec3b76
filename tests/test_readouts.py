"""The readouts as scikit-learn estimators: the estimator checks, output shapes, input and
option validation, seeding that leaves the caller's generators alone, and the paper's
training protocol pinned against a hand-written loop."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from dnnrsa.decoding import PaperReadout, check_readout_options, make_readout


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # Tiny models gain nothing from threads, and on a shared machine torch's spinning
    # workers made the estimator checks ten times slower.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# Every check passes for both heads: nothing is declared as an expected failure.
_CHECKED = [PaperReadout(epochs=3, head="paper", device="cpu"),
            PaperReadout(epochs=3, head="linear", device="cpu")]


@parametrize_with_checks(_CHECKED)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _maps(n=40, c=3, size=16, n_classes=3, seed=0):
    """Small (n, C, H, W) features whose class shifts the mean of every channel."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.normal(size=(n, c, size, size)) + y[:, None, None, None]
    return X.astype(np.float32), y


def _weights(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# --- outputs -------------------------------------------------------------------------


@pytest.mark.parametrize("head", ["paper", "linear"])
def test_binary_decision_function_is_one_column_pointing_at_the_second_class(head):
    X, codes = _maps(n_classes=2)
    y = np.array(["happy", "sad"])[codes]
    # 5 epochs: fewer leave BatchNorm's running statistics too far from the data's
    est = PaperReadout(epochs=5, head=head, device="cpu").fit(X, y)
    d = est.decision_function(X)
    assert d.shape == (len(X),)
    np.testing.assert_array_equal(est.predict(X), est.classes_[(d > 0).astype(int)])
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(proba[:, 1] > 0.5, d > 0)
    np.testing.assert_allclose(np.exp(est.predict_log_proba(X)), proba, rtol=1e-6)
    assert np.mean(est.predict(X) == y) > 0.9


@pytest.mark.parametrize("head", ["paper", "linear"])
def test_multiclass_outputs_have_one_column_per_class(head):
    X, y = _maps(n_classes=3)
    est = PaperReadout(epochs=3, head=head, device="cpu").fit(X, y + 10)
    d = est.decision_function(X)
    assert d.shape == (len(X), 3)
    np.testing.assert_array_equal(est.predict(X), est.classes_[d.argmax(1)])
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(proba.argmax(1), d.argmax(1))
    np.testing.assert_array_equal(est.classes_, [10, 11, 12])


def test_maps_and_their_flattened_columns_predict_alike():
    X, y = _maps()
    est = PaperReadout(epochs=2, device="cpu").fit(X, y)
    assert est.n_features_in_ == 3 * 16 * 16 and est.map_shape_ == (3, 16, 16)
    np.testing.assert_array_equal(est.decision_function(X),
                                  est.decision_function(X.reshape(len(X), -1)))
    with pytest.raises(ValueError, match=r"maps of shape \(12, 8, 8\).*\(3, 16, 16\)"):
        est.predict(X.reshape(len(X), 12, 8, 8))
    with pytest.raises(ValueError, match=r"X has 10 features, but PaperReadout is expecting "
                                         r"768 features"):
        est.predict(X.reshape(len(X), -1)[:, :10])
    with pytest.raises(ValueError, match=r"\(n_samples, C, H, W\), got shape \(40, 3, 256\)"):
        est.predict(X.reshape(len(X), 3, -1))


@pytest.mark.parametrize("method", ["predict", "decision_function", "predict_proba"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_at_prediction_is_refused(method, bad):
    X, y = _maps(n=8, size=4)
    est = PaperReadout(epochs=1, device="cpu").fit(X, y)
    X = X.copy()
    X[2, 1, 0, 3] = bad
    with pytest.raises(ValueError, match=r"Input X contains (NaN|infinity)"):
        getattr(est, method)(X)
    with pytest.raises(ValueError, match=r"Input X contains (NaN|infinity)"):
        getattr(est, method)(X.reshape(len(X), -1))


# --- the caller's random state -------------------------------------------------------


@pytest.mark.parametrize("head", ["paper", "linear"])
def test_fit_leaves_the_global_torch_generator_alone_and_is_reproducible(head):
    X, y = _maps(n=20, size=8)
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    a = PaperReadout(epochs=2, head=head, seed=7, device="cpu").fit(X, y)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = PaperReadout(epochs=2, head=head, seed=7, device="cpu").fit(X, y)
    c = PaperReadout(epochs=2, head=head, seed=8, device="cpu").fit(X, y)
    wa, wb, wc = _weights(a.module_), _weights(b.module_), _weights(c.module_)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.equal(wa["fc.weight"], wc["fc.weight"])


def test_make_readout_seeds_a_classifier_only_when_its_random_state_is_none():
    est = make_readout(SGDClassifier(), seed=5, device="cpu")[-1]
    assert est.random_state == 5
    est = make_readout(SGDClassifier(random_state=11), seed=5, device="cpu")[-1]
    assert est.random_state == 11
    rs = np.random.RandomState(3)
    est = make_readout(SGDClassifier(random_state=rs), seed=5, device="cpu")[-1]
    assert isinstance(est.random_state, np.random.RandomState)
    # a classifier without randomness is passed through untouched
    assert isinstance(make_readout(KNeighborsClassifier(3), device="cpu")[-1],
                      KNeighborsClassifier)
    user = LogisticRegression()
    make_readout(user, seed=5, device="cpu")
    assert user.random_state is None  # the user's object is cloned, never changed


def test_auto_is_the_default_device():
    assert PaperReadout().device == "auto"
    assert make_readout("paper").device == "auto"
    assert check_readout_options()["device"] == torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")


# --- option validation ----------------------------------------------------------------

_BAD_OPTIONS = [
    (dict(epochs=0), ValueError, r"Argument epochs must be an integer >= 1, got 0"),
    (dict(epochs=-3), ValueError, r"Argument epochs must be an integer >= 1, got -3"),
    (dict(epochs=2.5), TypeError, r"Argument epochs must be an integer >= 1, got 2.5"),
    (dict(epochs=True), TypeError, r"Argument epochs must be an integer"),
    (dict(batch_size=0), ValueError, r"Argument batch_size must be an integer >= 1, got 0"),
    (dict(batch_size="32"), TypeError, r"Argument batch_size must be an integer"),
    (dict(lr=0.0), ValueError, r"Argument lr must be a finite number > 0, got 0.0"),
    (dict(lr=-0.1), ValueError, r"Argument lr must be a finite number > 0, got -0.1"),
    (dict(lr=math.nan), ValueError, r"Argument lr must be a finite number > 0, got nan"),
    (dict(lr=math.inf), ValueError, r"Argument lr must be a finite number > 0, got inf"),
    (dict(lr="0.1"), TypeError, r"Argument lr must be a finite number > 0, got '0.1'"),
    (dict(pool=0), ValueError, r"Argument pool must be an integer >= 1, got 0"),
    (dict(seed=-1), ValueError, r"Argument seed must be an integer >= 0, got -1"),
    (dict(seed=1.0), TypeError, r"Argument seed must be an integer"),
    (dict(device="tpu"), ValueError, r"Unknown value 'tpu' for argument device"),
    (dict(device=3), TypeError, r"Argument device must be a string or torch.device"),
]
_BAD_ESTIMATOR_ONLY = [
    (dict(momentum=1.0), ValueError, r"Argument momentum must be a number in \[0, 1\), got 1.0"),
    (dict(momentum=-0.1), ValueError, r"Argument momentum must be a number in \[0, 1\)"),
    (dict(momentum=math.nan), ValueError, r"Argument momentum must be a number in \[0, 1\)"),
    (dict(momentum="0.9"), TypeError, r"Argument momentum must be a number"),
    (dict(head="mlp"), ValueError, r"Unknown value 'mlp' for argument head.*paper, linear"),
    (dict(pool=None), TypeError, r"Argument pool must be an integer >= 1, got None"),
]


@pytest.mark.parametrize("options, error, match", _BAD_OPTIONS + _BAD_ESTIMATOR_ONLY)
def test_fit_refuses_bad_options_before_any_work(options, error, match):
    # NaN features would fail too: the option must be reported first, before any work
    X = np.full((4, 2), np.nan)
    with pytest.raises(error, match=match):
        PaperReadout(**options).fit(X, [0, 1, 0, 1])


@pytest.mark.parametrize("options, error, match", _BAD_OPTIONS)
def test_make_readout_refuses_bad_options_for_every_readout(options, error, match):
    for readout in ("paper", "linear", KNeighborsClassifier()):
        with pytest.raises(error, match=match):
            make_readout(readout, **options)


@pytest.mark.parametrize("options, error, match",
                         [o for o in _BAD_OPTIONS + _BAD_ESTIMATOR_ONLY if "pool" not in o[0]])
def test_check_readout_options_refuses_bad_options(options, error, match):
    with pytest.raises(error, match=match):
        check_readout_options(**options)


def test_check_readout_options_normalises_and_allows_no_pool():
    opts = check_readout_options(epochs=np.int64(3), batch_size=8, lr=1, pool=None, seed=0,
                                 momentum=0, head="linear", device="cpu")
    assert opts == dict(epochs=3, batch_size=8, lr=1.0, pool=None, seed=0, momentum=0.0,
                        head="linear", device=torch.device("cpu"))
    assert type(opts["epochs"]) is int and type(opts["lr"]) is float


def test_a_batch_of_one_on_flat_features_is_refused_for_the_paper_head():
    X, y = np.random.default_rng(0).normal(size=(6, 3)), [0, 1] * 3
    with pytest.raises(ValueError, match=r"batch_size=1 with head='paper' on flat features"):
        PaperReadout(batch_size=1, device="cpu").fit(X, y)
    # maps hold several values per channel, so BatchNorm trains on single samples
    est = PaperReadout(epochs=1, batch_size=1, device="cpu").fit(_maps(n=6, size=4)[0], y)
    assert est.loss_curve_[0] > 0
    PaperReadout(epochs=1, batch_size=1, head="linear", device="cpu").fit(X, y)


# --- the training protocol, pinned ----------------------------------------------------


def _sgd_loop(forward, params, x, t, *, seed, epochs):
    """The paper's optimisation, written out: SGD(lr 0.1, momentum 0.9, no weight decay),
    batches of 32 in the order of a seeded torch.Generator's randperm, mean cross-entropy."""
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), 32):
            batch = order[start : start + 32]
            loss = F.cross_entropy(forward(x[batch]), t[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()


@pytest.mark.parametrize("seed", [0, 3])
def test_paper_head_reproduces_the_papers_training_protocol(seed):
    """Pins the study's protocol: a change to momentum, weight decay, batch size, batch
    order, seeding or the head's layers inside PaperReadout makes this test fail.

    The reference is an independent loop: BatchNorm2d(C) and Linear made in that order
    under torch's generator seeded with ``seed``, BatchNorm -> ReLU -> avg_pool2d(8) ->
    flatten -> Linear, trained by ``_sgd_loop``. 40 samples give batches of 32 and 8.
    """
    X, y = _maps(n=40, c=3, size=16, n_classes=3)
    est = PaperReadout(epochs=2, seed=seed, device="cpu").fit(X, y)

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        norm = nn.BatchNorm2d(3)
        fc = nn.Linear(3 * 2 * 2, 3)  # 16 x 16 maps pooled by 8: 2 x 2 per channel

    def forward(x):
        return fc(torch.flatten(F.avg_pool2d(F.relu(norm(x)), 8), 1))

    _sgd_loop(forward, [*norm.parameters(), *fc.parameters()], torch.from_numpy(X),
              torch.from_numpy(y), seed=seed, epochs=2)
    got = est.module_
    for ours, ref in [(got.norm.weight, norm.weight), (got.norm.bias, norm.bias),
                      (got.norm.running_mean, norm.running_mean),
                      (got.norm.running_var, norm.running_var),
                      (got.fc.weight, fc.weight), (got.fc.bias, fc.bias)]:
        torch.testing.assert_close(ours.detach(), ref.detach(), rtol=1e-5, atol=1e-6)
    assert int(got.norm.num_batches_tracked) == int(norm.num_batches_tracked) == 4
    assert len(est.loss_curve_) == 2


def test_linear_head_reproduces_the_pixel_control_protocol():
    """Pins the pixel control: standardisation with the training set's mean and
    population SD (a constant pixel divided by 1), then one Linear layer trained like the
    paper head."""
    X, y = _maps(n=40, c=1, size=4, n_classes=2, seed=1)
    X[:, 0, 0, 0] = 0.5  # a constant pixel
    seed = 2
    est = PaperReadout(epochs=2, head="linear", seed=seed, device="cpu").fit(X, y)

    flat = torch.from_numpy(X.reshape(40, -1)).double()
    mean, sd = flat.mean(0), flat.std(0, correction=0)
    sd[sd == 0] = 1.0
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        fc = nn.Linear(16, 2)
    x = ((flat - mean) / sd).float()
    _sgd_loop(fc, list(fc.parameters()), x, torch.from_numpy(y), seed=seed, epochs=2)
    torch.testing.assert_close(est.module_.fc.weight.detach(), fc.weight.detach(),
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(est.module_.fc.bias.detach(), fc.bias.detach(),
                               rtol=1e-4, atol=1e-5)


def test_linear_readout_fits_with_one_blas_thread_and_equals_logistic_regression(rng):
    """The linear readout's LogisticRegression is fitted under one BLAS thread (dozens of
    times faster on busy cores) and gives scikit-learn's coefficients to the bit when
    scikit-learn also runs with one thread."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_info, threadpool_limits

    from dnnrsa.decoding._readouts import OneThreadLogisticRegression, linear_readout

    X = rng.normal(size=(60, 30))
    y = rng.integers(0, 3, 60)
    seen = []

    original = LogisticRegression.fit

    def spy_fit(self, *args, **kwargs):
        seen.append([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"])
        return original(self, *args, **kwargs)

    LogisticRegression.fit = spy_fit
    try:
        ours = OneThreadLogisticRegression(max_iter=500).fit(X, y)
    finally:
        LogisticRegression.fit = original
    assert seen and all(n == 1 for n in seen[0])
    with threadpool_limits(limits=1, user_api="blas"):
        ref = LogisticRegression(max_iter=500).fit(X, y)
    np.testing.assert_array_equal(ours.coef_, ref.coef_)
    assert isinstance(linear_readout()[-1], OneThreadLogisticRegression)
