"""The batched paper readout: the engine against a brute-force loop of PaperReadout fits
(weights, running statistics, loss curves, predictions), decode_grid against
decode_activations item by item, permutation refits against a loop, chance on shuffled
labels, the memory budget, and the bad inputs it refuses before any fit."""

import numpy as np
import pandas as pd
import pytest
import torch

from dnnrsa import Activations
from dnnrsa.decoding import (
    PaperReadout,
    _batched,
    _decode,
    _generalize,
    decode_activations,
    decode_grid,
    generalize,
)
from dnnrsa.decoding._batched import ReadoutJob, fit_predict_readouts, fit_readouts


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models gain nothing from threads; on a shared machine two BLAS threads made the
    # logistic regressions of the linear readout ten times slower.
    from threadpoolctl import threadpool_limits

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)


def _loop(jobs, **options):
    """The reference: one PaperReadout per job, fitted on its own rows."""
    return [PaperReadout(seed=j.seed, device="cpu", **options).fit(j.source[j.train], j.labels)
            for j in jobs]


def _assert_same_heads(got, ref, jobs, atol=1e-5):
    for g, r, job in zip(got, ref, jobs, strict=True):
        np.testing.assert_array_equal(g.classes_, r.classes_)
        assert g.map_shape_ == r.map_shape_ and g.n_features_in_ == r.n_features_in_
        assert g.seed == r.seed and not g.module_.training
        sg, sr = g.module_.state_dict(), r.module_.state_dict()
        assert sg.keys() == sr.keys()
        for key in sr:
            if sr[key].dtype.is_floating_point:
                torch.testing.assert_close(sg[key], sr[key], rtol=0, atol=atol, msg=key)
            else:  # num_batches_tracked: the same steps were taken (and skipped)
                assert torch.equal(sg[key], sr[key]), key
        np.testing.assert_allclose(g.loss_curve_, r.loss_curve_, rtol=0, atol=atol)
        np.testing.assert_array_equal(g.predict(job.source), r.predict(job.source))



def _jobs(rng, shape, n=40):
    """Different seeds, two sources, different class counts (3, 5, 2, 4), one shared n,
    training rows in any order; one constant channel (a dead unit: BatchNorm gives exactly
    beta there, and ReLU's gradient at 0 is 0)."""
    a = rng.normal(size=(50, *shape)).astype(np.float32)
    b = (rng.normal(size=(60, *shape)) + 0.5).astype(np.float32)
    b[:, 1] = 0.25
    return [
        ReadoutJob(a, np.arange(n), np.arange(n) % 3, 0),
        ReadoutJob(a, rng.permutation(50)[:n], rng.integers(0, 5, n) + 10, 1),
        ReadoutJob(b, rng.permutation(60)[:n], np.array(["x", "y"])[np.arange(n) % 2], 7),
        ReadoutJob(b, np.arange(n)[::-1].copy(), np.arange(n) % 4, 3),
    ]


# --- the engine against a brute-force loop ---------------------------------------------


@pytest.mark.parametrize("shape, pool", [
    ((3, 12, 12), 5),  # 2 x 2 windows and a trailing row and column avg_pool2d leaves out
    ((4, 8, 8), 8),  # one window per map
    ((3, 6, 4), 2),  # non-square, 3 x 2 windows
    ((6,), 8),  # flat features: 1 x 1 maps
])
@pytest.mark.parametrize("head", ["paper", "linear"])
def test_engine_equals_a_loop_of_single_fits(rng, shape, pool, head):
    jobs = _jobs(rng, shape)
    options = dict(epochs=3, batch_size=16, pool=pool, head=head)
    got = fit_readouts(jobs, device="cpu", **options)
    ref = _loop(jobs, **options)
    _assert_same_heads(got, ref, jobs)
    # the predictions decode_grid uses, made on the device of the training
    tests = [rng.permutation(len(j.source))[:7] for j in jobs]
    with_tests = [ReadoutJob(j.source, j.train, j.labels, j.seed, test=t)
                  for j, t in zip(jobs, tests, strict=True)]
    fitted, preds = fit_predict_readouts(with_tests, device="cpu", **options)
    for r, job, t, p in zip(ref, jobs, tests, preds, strict=True):
        np.testing.assert_array_equal(p, r.predict(job.source[t]))
    assert fit_predict_readouts(jobs[:1], device="cpu", **options)[1] == [None]


def test_one_sample_batches_of_flat_features_are_skipped_per_head(rng):
    """33 rows in batches of 32 leave one sample, which BatchNorm cannot normalise on 1 x 1
    maps: PaperReadout skips it, and so must every head of a batched group."""
    x = rng.normal(size=(40, 5)).astype(np.float32)
    jobs = [ReadoutJob(x, np.arange(33), np.arange(33) % 3, s) for s in (0, 4)]
    got = fit_readouts(jobs, epochs=2, device="cpu")
    _assert_same_heads(got, _loop(jobs, epochs=2), jobs)
    assert int(got[0].module_.norm.num_batches_tracked) == 2  # one step per epoch


def test_groups_of_different_sizes_and_shapes_in_one_call(rng):
    maps = rng.normal(size=(50, 3, 8, 8)).astype(np.float32)
    flat = rng.normal(size=(50, 7)).astype(np.float32)
    jobs = [ReadoutJob(maps, np.arange(40), np.arange(40) % 3, 0),
            ReadoutJob(flat, np.arange(30), np.arange(30) % 2, 1),
            ReadoutJob(maps, np.arange(25), np.arange(25) % 4, 2),
            ReadoutJob(flat, np.arange(10, 50), np.arange(40) % 5, 3)]
    got = fit_readouts(jobs, epochs=2, device="cpu")
    ref = _loop(jobs, epochs=2)
    _assert_same_heads(got, ref, jobs)
    assert [g.map_shape_ for g in got] == [(3, 8, 8), (7, 1, 1), (3, 8, 8), (7, 1, 1)]


def test_a_tiny_memory_budget_splits_groups_and_changes_nothing(rng, monkeypatch):
    jobs = _jobs(rng, (3, 8, 8))
    whole = fit_readouts(jobs, epochs=2, device="cpu")
    split = fit_readouts(jobs, epochs=2, device="cpu", max_step_bytes=1)  # a head a chunk
    for a, b in zip(whole, split, strict=True):
        for key, value in a.module_.state_dict().items():
            torch.testing.assert_close(value, b.module_.state_dict()[key], rtol=0, atol=1e-6)
    items, _ = _items(rng)
    ref = decode_grid(items, targets=["identity", "expression"], epochs=4, device="cpu")
    monkeypatch.setattr(_batched, "_CPU_STEP_BYTES", 1)
    got = decode_grid(items, targets=["identity", "expression"], epochs=4, device="cpu")
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_array_equal(g.folds, r.folds)
        np.testing.assert_array_equal(g.confusion, r.confusion)


def test_engine_is_reproducible_and_leaves_the_global_generator_alone(rng):
    jobs = _jobs(rng, (3, 8, 8))
    torch.manual_seed(99)
    before = torch.random.get_rng_state()
    a = fit_readouts(jobs, epochs=2, device="cpu")
    assert torch.equal(torch.random.get_rng_state(), before)
    b = fit_readouts(jobs, epochs=2, device="cpu")
    for x, y in zip(a, b, strict=True):
        assert all(torch.equal(v, y.module_.state_dict()[k])
                   for k, v in x.module_.state_dict().items())
        assert x.loss_curve_ == y.loss_curve_


# --- decode_grid against decode_activations ---------------------------------------------


def _items(rng, signal=0.8):
    """Two 'network seeds' of a conv layer (maps) and a flat layer with other features,
    on one factorial stimulus set: identity and expression codes per channel."""
    meta = pd.DataFrame([dict(identity=f"P{i}", expression=f"E{e}", viewpoint=v)
                         for i in range(4) for e in range(3) for v in ("HL", "S", "HR")
                         for _ in range(2)])
    ident = meta.identity.str[1:].astype(int).to_numpy()
    expr = meta.expression.str[1:].astype(int).to_numpy()

    def layer(shape, seed, name):
        c = shape[0]
        codes = rng.normal(size=(4, c)), rng.normal(size=(3, c))
        mean = signal * (codes[0][ident] + codes[1][expr])
        x = rng.normal(size=(len(meta), *shape)) + mean.reshape(len(meta), c,
                                                              *([1] * (len(shape) - 1)))
        return Activations(x.astype(np.float32), meta,
                           {"layer": name, "seed": seed, "model": "toy"})

    return [layer((6, 8, 8), 0, "conv"), layer((6, 8, 8), 1, "conv"),
            layer((10,), 0, "fc")], meta


@pytest.mark.parametrize("readout", ["paper", "linear"])
def test_decode_grid_equals_decode_activations_item_by_item(rng, readout):
    items, _ = _items(rng)
    targets = ["identity", "expression"]
    seeds = [3, 1, 0]
    opts = dict(epochs=6, n_permutations=2, device="cpu", readout=readout)
    results = decode_grid(items, targets=targets, seeds=seeds, **opts)
    assert len(results) == len(items) * len(targets)
    for i, item in enumerate(items):
        for j, target in enumerate(targets):
            got, ref = results[i * len(targets) + j], decode_activations(
                item, target=target, seed=seeds[i], **opts)
            np.testing.assert_array_equal(got.folds, ref.folds)
            np.testing.assert_array_equal(got.confusion, ref.confusion)
            np.testing.assert_array_equal(got.null, ref.null)
            assert got.p_value == ref.p_value
            assert got.provenance == ref.provenance and got.held_out == ref.held_out
    # the planted codes are read out: the comparison is not between two chance levels
    assert np.mean([r.accuracy / r.chance for r in results]) > 1.5


def test_decode_grid_trains_the_pixel_control_with_the_linear_head(rng):
    items, meta = _items(rng)
    pixels = Activations(rng.random((len(meta), 1, 6, 6)).astype(np.float32)
                         + items[0].data[:, :1, :6, :6], meta, {"layer": "pixels"})
    results = decode_grid([pixels, items[0]], targets="identity", epochs=4, device="cpu")
    for item, got in zip([pixels, items[0]], results, strict=True):
        ref = decode_activations(item, target="identity", epochs=4, device="cpu",
                                 seed=item.provenance.get("seed") or 0)
        np.testing.assert_array_equal(got.folds, ref.folds)
        np.testing.assert_array_equal(got.confusion, ref.confusion)
    assert [r.provenance["readout"] for r in results] == ["paper-linear", "paper"]


def test_decode_grid_seeds_default_to_the_network_seed(rng):
    items, _ = _items(rng)
    results = decode_grid(items[:2], targets="identity", epochs=3, device="cpu")
    for item, got in zip(items[:2], results, strict=True):
        ref = decode_activations(item, target="identity", epochs=3, device="cpu",
                                 seed=item.provenance["seed"])
        np.testing.assert_array_equal(got.folds, ref.folds)
        assert got.provenance["seed"] == item.provenance["seed"]
    nameless = Activations(items[0].data, items[0].metadata, {"layer": "conv"})
    got = decode_grid(nameless, targets="identity", epochs=3, device="cpu",
                      network="net")[0]
    ref = decode_activations(nameless, target="identity", epochs=3, device="cpu", seed=0)
    np.testing.assert_array_equal(got.folds, ref.folds)
    assert got.provenance["network"] == "net"


def _brute_force_engine(jobs, **options):
    assert options.pop("check_finite") is False  # the callers have checked the features
    fitted = _loop(jobs, **{k: v for k, v in options.items() if k != "device"})
    return fitted, [est.predict(j.source[j.test]) for est, j in zip(fitted, jobs, strict=True)]


def test_permutation_refits_equal_a_loop_of_paper_readout_fits(rng, monkeypatch):
    """decode_activations' and generalize's refits go through the engine: replacing the
    engine by a loop of PaperReadout fits must give the same null."""
    items, meta = _items(rng)
    opts = dict(epochs=4, n_permutations=3, seed=2, device="cpu")
    batched = decode_activations(items[0], target="identity", **opts)
    across = dict(target="identity", across="expression", readout="paper", cv="viewpoint",
                  **opts)
    batched_gen = generalize(items[0], **across)
    monkeypatch.setattr(_decode, "fit_predict_readouts", _brute_force_engine)
    monkeypatch.setattr(_generalize, "fit_predict_readouts", _brute_force_engine)
    looped = decode_activations(items[0], target="identity", **opts)
    np.testing.assert_array_equal(batched.null, looped.null)
    assert batched.p_value == looped.p_value
    np.testing.assert_array_equal(batched_gen.null, generalize(items[0], **across).null)


def test_decode_grid_reads_a_planted_signal_and_sits_at_chance_on_shuffled_labels(rng):
    items, meta = _items(rng, signal=1.5)
    real = decode_grid(items[:2], targets="identity", epochs=15, device="cpu")
    assert min(r.accuracy for r in real) > 0.8
    shuffled = meta.copy()
    shuffled["identity"] = rng.permutation(shuffled["identity"].to_numpy())
    fake = [Activations(a.data, shuffled, a.provenance) for a in items[:2]]
    null = decode_grid(fake, targets="identity", epochs=15, device="cpu")
    chance, n = null[0].chance, len(meta)
    bound = 3.5 * np.sqrt(chance * (1 - chance) / n)
    assert all(abs(r.accuracy - chance) < bound for r in null), [r.accuracy for r in null]


# --- bad input ----------------------------------------------------------------------------


def test_decode_grid_refuses_bad_input_before_any_fit(rng, monkeypatch):
    items, _ = _items(rng)

    def no_fit(*args, **kwargs):
        raise AssertionError("a fit started before the input was checked")

    monkeypatch.setattr(_decode, "fit_predict_readouts", no_fit)
    call = dict(targets="identity", device="cpu")
    with pytest.raises(ValueError, match="Argument acts is empty"):
        decode_grid([], **call)
    with pytest.raises(TypeError, match=r"acts\[1\] must be dnnrsa.Activations, got ndarray"):
        decode_grid([items[0], items[0].X], **call)
    with pytest.raises(ValueError, match="seeds has 2 entries but acts has 3 items"):
        decode_grid(items, seeds=[0, 1], **call)
    with pytest.raises(ValueError, match=r"seeds\[1\] must be an integer >= 0, got -1"):
        decode_grid(items, seeds=[0, -1, 2], **call)
    with pytest.raises(ValueError, match="network has 1 entries but acts has 3 items"):
        decode_grid(items, network=["a"], **call)
    bad = Activations(items[1].data, items[1].metadata.rename(columns={"identity": "who"}),
                      items[1].provenance)
    with pytest.raises(ValueError, match=r"acts\[1\] \(layer 'conv'\), target 'identity': "
                                         r"Unknown value 'identity' for argument target"):
        decode_grid([items[0], bad], **call)
    with pytest.raises(ValueError, match="Argument targets is empty"):
        decode_grid(items, targets=[], device="cpu")
    with pytest.raises(ValueError, match="names a factor twice"):
        decode_grid(items, targets=["identity", "identity"], device="cpu")
    with pytest.raises(TypeError, match="targets must hold factor names"):
        decode_grid(items, targets=["identity", 3], device="cpu")
    from sklearn.model_selection import LeaveOneGroupOut
    with pytest.raises(TypeError, match="splitter object; decode_grid takes no groups"):
        decode_grid(items, cv=LeaveOneGroupOut(), **call)
    with pytest.raises(ValueError, match="n_permutations must be an integer >= 0"):
        decode_grid(items, n_permutations=-1, **call)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        decode_grid(items, epochs=0, **call)
    with pytest.raises(ValueError, match="Unknown value 'svm' for argument readout"):
        decode_grid(items, readout="svm", **call)
    nan = Activations(items[2].data.copy(), items[2].metadata, items[2].provenance)
    nan.data[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"acts\[1\] \(layer 'fc'\).*NaN or Inf values"):
        decode_grid([items[0], nan], **call)


def test_engine_refuses_bad_jobs(rng):
    x = rng.normal(size=(20, 3, 4, 4)).astype(np.float32)
    good = ReadoutJob(x, np.arange(10), np.arange(10) % 2, 0)
    cases = [
        (ReadoutJob(x, np.arange(10), np.zeros(10), 0), ValueError, "y has 1 class"),
        (ReadoutJob(x, np.arange(10), np.arange(9) % 2, 0), ValueError,
         "10 train rows but labels of shape"),
        (ReadoutJob(x, np.arange(15, 25), np.arange(10) % 2, 0), ValueError,
         r"must lie in \[0, 20\)"),
        (ReadoutJob(x, np.arange(10.0), np.arange(10) % 2, 0), ValueError,
         "non-empty 1-D integer array"),
        (ReadoutJob(x, np.arange(10), np.linspace(0, 1, 10), 0), ValueError, "Unknown label"),
        (ReadoutJob(x[:, 0], np.arange(10), np.arange(10) % 2, 0), ValueError,
         r"\(n_samples, C, H, W\), got shape \(20, 4, 4\)"),
        (ReadoutJob(x, np.arange(10), np.arange(10) % 2, -1), ValueError,
         "seed of job 1 must be an integer >= 0"),
        ((x, np.arange(10)), TypeError, "Job 1 must be a ReadoutJob"),
    ]
    for job, error, match in cases:
        with pytest.raises(error, match=match):
            fit_readouts([good, job], epochs=1, device="cpu")
    nan = x.copy()
    nan[3, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        fit_readouts([ReadoutJob(nan, np.arange(10), np.arange(10) % 2, 0)], device="cpu")
    flat = ReadoutJob(x.reshape(20, -1), np.arange(10), np.arange(10) % 2, 0)
    with pytest.raises(ValueError, match="batch_size=1 with head='paper' on flat"):
        fit_readouts([ReadoutJob(x[:, :, 0, 0], np.arange(10), np.arange(10) % 2, 0)],
                     batch_size=1, device="cpu")
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        fit_readouts([flat], lr=0.0, device="cpu")
    with pytest.raises(ValueError, match="max_step_bytes must be an integer >= 1"):
        fit_readouts([flat], max_step_bytes=0, device="cpu")
    assert fit_readouts([], device="cpu") == []


# --- on a GPU ----------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batched_on_cuda_matches_the_cpu(rng):
    jobs = _jobs(rng, (3, 12, 12))
    cpu = fit_readouts(jobs, epochs=3, pool=5, device="cpu")
    gpu = fit_readouts(jobs, epochs=3, pool=5, device="cuda")
    for a, b in zip(cpu, gpu, strict=True):
        assert b.device == "cuda" and next(b.module_.parameters()).device.type == "cpu"
        for key, value in a.module_.state_dict().items():
            torch.testing.assert_close(b.module_.state_dict()[key], value, rtol=1e-3,
                                       atol=1e-3)
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-3, atol=1e-4)
    items, _ = _items(rng)
    on_gpu = decode_grid(items, targets="identity", epochs=4, device="cuda")
    on_cpu = decode_grid(items, targets="identity", epochs=4, device="cpu")
    for g, c in zip(on_gpu, on_cpu, strict=True):
        assert abs(g.accuracy - c.accuracy) <= 2 / len(items[0])
