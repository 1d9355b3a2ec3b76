"""Several seeds trained together (zoo.train with a list of models, train_variant with
seeds) against the same seeds trained one by one."""

import json
import logging

import numpy as np
import pytest
import torch

from dnnrsa import zoo
from dnnrsa._utils import torch_seed
from dnnrsa.zoo._ensemble import EnsembleDenseNet

SEEDS = [3, 8]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(params=["threads", "grouped"])
def cpu_together(request, monkeypatch):
    """Both ways models trained together run on a CPU (zoo._train.CPU_TOGETHER): each
    member on its own thread, and one grouped network (the GPU's way)."""
    monkeypatch.setattr(zoo._train, "CPU_TOGETHER", request.param)
    return request.param


def _task(rng, n=64, size=16, n_classes=3):
    """Classes told apart by which vertical band of the image is bright."""
    y = rng.integers(0, n_classes, n)
    x = rng.normal(0, 0.3, (n, 1, size, size)).astype(np.float32)
    band = size // n_classes
    for c in range(n_classes):
        x[y == c, :, :, c * band : (c + 1) * band] += 1.0
    return torch.from_numpy(x), torch.from_numpy(y)


def _net(seed, *, dropout=0.0, dtype=torch.float32, n_classes=3):
    with torch_seed(seed):
        net = zoo.build("ccn2022", n_classes=n_classes, growth=4, input_size=16,
                        dropout=dropout)
    return net.to(dtype)


def _alone_and_together(rng, *, dtype, dropout, n=64, **options):
    x, y = _task(rng, n=n)
    test = _task(rng, n=24)
    common = dict(test=test, epochs=2, batch_size=20, device="cpu", progress=False)
    common.update(options)
    alone = [_net(s, dropout=dropout, dtype=dtype) for s in SEEDS]
    h_alone = [zoo.train(m, (x, y), seed=s, **common) for m, s in zip(alone, SEEDS)]
    together = [_net(s, dropout=dropout, dtype=dtype) for s in SEEDS]
    params = [list(m.parameters()) for m in together]
    h_together = zoo.train(together, (x, y), seeds=SEEDS, **common)
    # trained in place: the very parameter objects the caller holds
    assert all(a is b for m, ps in zip(together, params) for a, b in zip(m.parameters(), ps))
    return alone, h_alone, together, h_together


def _assert_same_state(a, b, *, atol, loose=(), loose_atol=None):
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        if not va.is_floating_point():  # num_batches_tracked
            assert torch.equal(va, vb), key
        else:
            tol = loose_atol if key in loose else atol
            torch.testing.assert_close(vb, va, atol=tol, rtol=0,
                                       msg=lambda m, key=key: f"{key}: {m}")


def _assert_same_run(alone, h_alone, together, h_together, *, atol, n_epochs=2, **loose):
    assert len(h_together) == len(SEEDS)
    for a, b, ha, hb in zip(alone, together, h_alone, h_together):
        _assert_same_state(a, b, atol=atol, **loose)
        np.testing.assert_allclose(hb.loss, ha.loss, atol=max(atol, 1e-12), rtol=0)
        assert hb.lr == ha.lr and hb.epochs == ha.epochs == list(range(1, n_epochs + 1))
        assert hb.train_accuracy == ha.train_accuracy
        assert hb.test_accuracy == ha.test_accuracy
        assert b.dnnrsa_info == a.dnnrsa_info  # incl. seed, protocol, data checksum
        assert not b.training


@pytest.mark.filterwarnings("ignore:TF32 acceleration:UserWarning")
def test_together_equals_alone_float32_sgd_bitwise_without_onednn(rng, cpu_together):
    """float32, SGD, 2 epochs of 4 steps (64 images, batch 20, ragged last batch). With
    PyTorch's own convolution kernels a grouped convolution computes each group as the
    ungrouped one does, so members equal lone runs bit for bit."""
    with torch.backends.mkldnn.flags(enabled=False):
        runs = _alone_and_together(rng, dtype=torch.float32, dropout=0.0, lr=0.02,
                                   channels_last=False)
    _assert_same_run(*runs, atol=0.0)


def test_together_equals_alone_float32_onednn(rng, cpu_together):
    """With oneDNN's kernels a grouped convolution rounds differently from a lone one
    (1e-7 contiguous, 1e-6 channels-last). The loss has kinks (ReLU, max-pool) that
    close: perturbing the weights by 1e-6 moves a float64 gradient by ~1e-3 (measured),
    so two runs part once rounding meets one, as runs on two machines would. Two steps in
    the contiguous layout agree to 1e-5; the float64 tests check long runs."""
    runs = _alone_and_together(rng, dtype=torch.float32, dropout=0.0, lr=0.02, n=20,
                               channels_last=False)
    _assert_same_run(*runs, atol=1e-5)


def test_together_equals_alone_float64_sgd_dropout_hflip(rng, cpu_together):
    """In float64 rounding (1e-16) stays far from the kinks (the smallest pre-activations
    are ~1e-6), so the runs agree to 1e-10: each member's batch order, flips and Dropout2d
    masks are its own seed's."""
    runs = _alone_and_together(rng, dtype=torch.float64, dropout=0.2, augment="hflip",
                               weight_decay=1e-3, channels_last=False)
    _assert_same_run(*runs, atol=1e-10)
    assert runs[1][0].loss != runs[1][1].loss  # the seeds' runs differ


# conv1's bias feeds only BatchNorms, so its gradient is rounding noise that Adam scales
# to steps of ~lr: it (and the running means it shifts) follow rounding, alone as together.
_ADAM_NOISE = ("conv1.bias", *(f"dense1.{i}.norm.running_mean" for i in range(3)),
               "trans1.norm.running_mean")


def test_together_equals_alone_float64_adam_channels_last(rng, cpu_together):
    runs = _alone_and_together(rng, dtype=torch.float64, dropout=0.0, augment="hflip",
                               optimizer="adam", lr=2e-3, channels_last=True)
    _assert_same_run(*runs, atol=1e-10, loose=_ADAM_NOISE, loose_atol=1e-4)


def test_seeds_differ(rng):
    x, y = _task(rng, n=32)
    nets = [_net(s) for s in SEEDS]
    hists = zoo.train(nets, (x, y), seeds=SEEDS, epochs=1, batch_size=16, device="cpu",
                      progress=False)
    a, b = (dict(m.named_parameters()) for m in nets)
    assert all(not torch.allclose(a[k], b[k]) for k in a if k != "conv1.bias")
    assert hists[0].loss != hists[1].loss
    assert [m.dnnrsa_info["seed"] for m in nets] == SEEDS


def test_batch_order_is_the_seed_not_the_initialisation(rng, cpu_together):
    """Same initial weights, different seeds: the members still differ (own data order),
    and swapping the seeds swaps the results."""
    x, y = _task(rng, n=32)
    opts = dict(epochs=1, batch_size=8, device="cpu", progress=False)
    nets = [_net(0), _net(0)]
    zoo.train(nets, (x, y), seeds=[1, 2], **opts)
    swapped = [_net(0), _net(0)]
    zoo.train(swapped, (x, y), seeds=[2, 1], **opts)
    assert not torch.allclose(nets[0].fc.weight, nets[1].fc.weight)
    torch.testing.assert_close(swapped[1].fc.weight, nets[0].fc.weight, atol=1e-6, rtol=0)


def test_threads_give_each_member_the_same_bits_on_any_number_of_cores(rng, monkeypatch):
    """On a CPU each member trains on a thread of its own with one torch thread, so its
    weights do not depend on how many members run at once: 3 members on 2 threads (two at
    once, then one) equal the same members one at a time, bit for bit, dropout included."""
    monkeypatch.setattr(zoo._train, "CPU_TOGETHER", "threads")
    x, y = _task(rng, n=40)
    opts = dict(epochs=2, batch_size=16, device="cpu", progress=False, augment="hflip")
    seeds = [5, 6, 7]
    runs = []
    for n_threads in (2, 1):
        torch.set_num_threads(n_threads)
        nets = [_net(s, dropout=0.2) for s in seeds]
        hists = zoo.train(nets, (x, y), seeds=seeds, **opts)
        runs.append((nets, hists))
    (a, ha), (b, hb) = runs
    for m, n in zip(a, b):
        assert all(torch.equal(u, v) for u, v in zip(m.state_dict().values(),
                                                     n.state_dict().values()))
    assert [h.loss for h in ha] == [h.loss for h in hb]
    assert ha[0].seconds == ha[2].seconds  # one call: shared wall time, as grouped


def test_a_failing_member_fails_the_call(rng, monkeypatch):
    """An error on a worker thread reaches the caller (not a silent None history)."""
    monkeypatch.setattr(zoo._train, "CPU_TOGETHER", "threads")
    x, y = _task(rng, n=16)
    nets = [_net(s) for s in SEEDS]

    def broken(*args, **kwargs):
        raise RuntimeError("member failed")

    monkeypatch.setattr(zoo._train, "_train_together", broken)
    with pytest.raises(RuntimeError, match="member failed"):
        zoo.train(nets, (x, y), seeds=SEEDS, epochs=1, device="cpu", progress=False)


def test_ensemble_module_stacks_and_unstacks_members(rng):
    """Forward in train mode equals each member's forward; weights go back unchanged."""
    nets = [_net(s, dropout=0.0) for s in (0, 1, 2)]
    ens = EnsembleDenseNet(nets[0], 3)
    ens.load_members(nets)
    xs = [torch.from_numpy(rng.normal(size=(5, 1, 16, 16)).astype(np.float32))
          for _ in nets]
    for layout in (torch.contiguous_format, torch.channels_last):
        ens = ens.to(memory_format=layout).train()
        x = torch.cat(xs, 1).contiguous(memory_format=layout)
        with torch.no_grad():
            out = ens(x)
            ref = torch.stack([m.train()(xi) for m, xi in zip(nets, xs)])
        assert out.shape == (3, 5, 3)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    copies = [_net(9) for _ in nets]
    ens.store_members(copies)
    for m, c in zip(nets, copies):
        _assert_same_state(m, c, atol=1e-5)  # BN counts: the forward passes above, 2 each


def test_not_densenets_train_one_after_another(rng, caplog):
    x, y = _task(rng, n=32)

    def mlp(seed):
        with torch_seed(seed):
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 16),
                                       torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                       torch.nn.Linear(16, 3))

    opts = dict(epochs=2, batch_size=8, device="cpu", progress=False, augment="hflip")
    alone = [mlp(s) for s in SEEDS]
    h_alone = [zoo.train(m, (x, y), seed=s, **opts) for m, s in zip(alone, SEEDS)]
    together = [mlp(s) for s in SEEDS]
    with caplog.at_level(logging.INFO, logger="dnnrsa"):
        h_together = zoo.train(together, (x, y), seeds=SEEDS, **opts)
    assert "training them one after another" in caplog.text
    for a, b, ha, hb in zip(alone, together, h_alone, h_together):
        assert all(torch.equal(u, v) for u, v in zip(a.state_dict().values(),
                                                     b.state_dict().values()))
        assert ha.loss == hb.loss and a.dnnrsa_info == b.dnnrsa_info


def test_together_leaves_the_global_generator_alone(rng, cpu_together):
    x, y = _task(rng, n=32)
    nets = [_net(s, dropout=0.3) for s in SEEDS]
    torch.manual_seed(11)
    before = torch.random.get_rng_state()
    zoo.train(nets, (x, y), seeds=SEEDS, epochs=1, batch_size=16, device="cpu",
              progress=False)
    assert torch.equal(before, torch.random.get_rng_state())


def test_bf16_on_cpu_is_recorded_and_learns(rng):
    x, y = _task(rng, n=96)
    nets = [_net(s) for s in SEEDS]
    hists = zoo.train(nets, (x, y), seeds=SEEDS, epochs=4, batch_size=16, lr=0.05,
                      precision="bf16", device="cpu", progress=False)
    for net, hist in zip(nets, hists):
        assert net.dnnrsa_info["protocol"]["precision"] == "bf16"
        assert hist.loss[-1] < hist.loss[0]
        assert next(net.parameters()).dtype == torch.float32
    fp32 = _net(0)
    zoo.train(fp32, (x, y), epochs=1, device="cpu", progress=False)
    assert "precision" not in fp32.dnnrsa_info["protocol"]  # old sidecars stay identical


# --- train_variant(seeds=...) ---------------------------------------------------------


def _sidecar(path):
    """The sidecar without the file's own checksum: the bytes differ by rounding (and by
    the embedded description's timing fields); the weights are compared separately."""
    info = json.loads(path.with_suffix(".json").read_text())
    return {k: v for k, v in info.items() if k not in ("weights_sha256", "weights_bytes")}


@pytest.mark.filterwarnings("ignore:TF32 acceleration:UserWarning")
def test_train_variant_with_seeds_saves_each_seed_as_alone(tmp_path, tiny_training_data):
    """Without oneDNN (see test_together_equals_alone_float32_sgd_bitwise_without_onednn)
    and in the layout of a lone CPU run (the option reaches zoo.train), seeds trained
    together give the checkpoints of seeds trained one by one, up to rounding that Adam's
    first step (g / |g|) enlarges where a gradient is near 0."""
    opts = dict(quick=True, epochs=1, device="cpu", progress=False, channels_last=False)
    with torch.backends.mkldnn.flags(enabled=False):
        together = zoo.train_variant("expression", seeds=[1, 0], home=tmp_path / "a", **opts)
        alone = [zoo.train_variant("expression", s, home=tmp_path / "b", **opts)
                 for s in (1, 0)]
    assert [p.name for p in together] == ["seed01.safetensors", "seed00.safetensors"]
    for s, p, q in zip((1, 0), together, alone):
        assert _sidecar(p) == _sidecar(q)
        net = zoo.load_model("expression", seed=s, quick=True, epochs=1, home=tmp_path / "a",
                             device="cpu")
        ref = zoo.load(q, device="cpu")
        assert type(net) is zoo.CCNDenseNet and net.dnnrsa_info["seed"] == s
        # one Adam step moves each weight by up to lr = 2e-3
        _assert_same_state(net, ref, atol=1e-4, loose=_ADAM_NOISE, loose_atol=1e-2)
    assert not torch.equal(zoo.load(together[0]).fc.weight, zoo.load(together[1]).fc.weight)


def test_train_variant_with_seeds_trains_only_the_missing(tmp_path, tiny_training_data, caplog):
    opts = dict(quick=True, epochs=1, device="cpu", progress=False, home=tmp_path)
    first = zoo.train_variant("expression", 2, **opts)
    stamp = first.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="dnnrsa"):
        paths = zoo.train_variant("expression", seeds=[2, 5], **opts)
    assert paths[0] == first and first.stat().st_mtime_ns == stamp
    assert "seed 2 already trained" in caplog.text and paths[1].exists()
    again = zoo.train_variant("expression", seeds=[2, 5], overwrite=True, **opts)
    assert again == paths and first.stat().st_mtime_ns != stamp


def test_untrained_variant_with_seeds_builds_each_seed(tmp_path):
    paths = zoo.train_variant("untrained", seeds=[0, 4], quick=True, home=tmp_path)
    single = zoo.train_variant("untrained", 4, quick=True, home=tmp_path / "other")
    a = zoo.load_model("untrained", seed=4, quick=True, home=tmp_path, device="cpu")
    b = zoo.load(single, device="cpu")
    _assert_same_state(a, b, atol=0)
    assert _sidecar(paths[1]) == _sidecar(single)


# --- bad input, refused before any work ----------------------------------------------


def _refused(call, match, error=ValueError):
    nets = [_net(s) for s in (0, 1, 2)]
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in nets]
    with pytest.raises(error, match=match):
        call(nets)
    for m, state in zip(nets, before):
        assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())


@pytest.mark.parametrize("make, match, error", [
    (lambda n: dict(model=n[0], seeds=[0, 1]), r"seeds=\[0, 1\] is for a list of models.*"
     r"single CCNDenseNet", ValueError),
    (lambda n: dict(model=n[:2], seed=0, seeds=[0, 1]), r"seed=0 and seeds were both given",
     ValueError),
    (lambda n: dict(model=n[:2]), r"seeds is needed with a list of 2 models.*seeds=\[0, 1\]",
     ValueError),
    (lambda n: dict(model=n, seeds=[0, 1]), r"2 seeds for 3 models", ValueError),
    (lambda n: dict(model=n[:2], seeds=[4, 4]), r"seeds lists a seed twice: \[4, 4\]",
     ValueError),
    (lambda n: dict(model=n[:2], seeds=3), r"seeds must be a sequence of network seeds",
     TypeError),
    (lambda n: dict(model=[n[0], n[0]], seeds=[0, 1]),
     r"same network object twice \(model\[0\] and model\[1\]\)", ValueError),
    (lambda n: dict(model=[], seeds=[]), r"model is an empty list", ValueError),
    (lambda n: dict(model=[n[0], "net"], seeds=[0, 1]), r"model\[1\] must be a torch.nn.Module",
     TypeError),
    (lambda n: dict(model=n[0].state_dict()), r"model must be a torch.nn.Module or a list",
     TypeError),
    (lambda n: dict(model=[n[0], _net(1, dropout=0.2)], seeds=[0, 1]),
     r"model\[1\] differs from model\[0\] in dropout \(0.2 vs 0.0\)", ValueError),
    (lambda n: dict(model=[n[0], torch.nn.Linear(2, 2)], seeds=[0, 1]),
     r"model\[1\] \(Linear\) differs from model\[0\] \(CCNDenseNet\)", ValueError),
    (lambda n: dict(model=n[:2], seeds=[0, 1], precision="fp16"),
     r"Unknown value 'fp16' for argument precision. Valid values are \{auto, fp32, bf16\}",
     ValueError),
    (lambda n: dict(model=n[:2], seeds=[0, 1], channels_last="yes"),
     r"channels_last must be True, False or None", TypeError),
    (lambda n: dict(model=n[:2], seeds=[0, 1], compile=1), r"compile must be True or False",
     TypeError),
    (lambda n: dict(model=n[:2], seeds=[0, 1], lr=-1.0), r"lr must be a finite number > 0",
     ValueError),
])
def test_train_refuses_bad_ensembles(rng, make, match, error):
    x, y = _task(rng, n=8)

    def call(nets):
        kwargs = make(nets)
        model = kwargs.pop("model")
        zoo.train(model, (x, y), epochs=1, device="cpu", progress=False, **kwargs)

    _refused(call, match, error)


@pytest.mark.parametrize("kwargs, match", [
    (dict(seed=1, seeds=[0, 1]), r"seed=1 and seeds=\[0, 1\] were both given"),
    (dict(seeds=[0, 0]), r"seeds lists a seed twice"),
    (dict(seeds=[0, 1], precision="half"), r"Unknown value 'half' for argument precision"),
])
def test_train_variant_refuses_bad_seeds_before_any_work(tmp_path, monkeypatch, kwargs, match):
    def no_data(*a, **k):
        raise AssertionError("training data was loaded before the arguments were checked")

    monkeypatch.setattr(zoo._registry, "training_data", no_data)
    with pytest.raises(ValueError, match=match):
        zoo.train_variant("expression", quick=True, home=tmp_path, **kwargs)
    assert not (tmp_path / "models").exists()


# --- slow and GPU ---------------------------------------------------------------------


@pytest.mark.slow
def test_compiled_ensemble_matches_eager(rng):
    x, y = _task(rng, n=32)
    opts = dict(epochs=1, batch_size=16, lr=0.01, device="cpu", progress=False)
    eager = [_net(s, dropout=0.2) for s in SEEDS]
    zoo.train(eager, (x, y), seeds=SEEDS, **opts)
    compiled = [_net(s, dropout=0.2) for s in SEEDS]
    zoo.train(compiled, (x, y), seeds=SEEDS, compile=True, **opts)
    for a, b in zip(eager, compiled):
        _assert_same_state(a, b, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_ensemble_bf16_learns_and_fp32_matches_alone(rng):
    x, y = _task(rng, n=192)
    opts = dict(epochs=4, batch_size=32, lr=0.05, device="cuda", progress=False)
    nets = [_net(s) for s in SEEDS]
    hists = zoo.train(nets, (x, y), seeds=SEEDS, **opts)  # auto: bf16, channels-last
    for net, hist in zip(nets, hists):
        assert hist.loss[-1] < 0.7 * hist.loss[0]
        assert net.dnnrsa_info["protocol"]["precision"] == "bf16"
        assert next(net.parameters()).device.type == "cpu"
    fp32 = dict(opts, epochs=2, precision="fp32", lr=0.01)
    alone = [_net(s, dropout=0.1) for s in SEEDS]
    for m, s in zip(alone, SEEDS):
        zoo.train(m, (x, y), seed=s, **fp32)
    together = [_net(s, dropout=0.1) for s in SEEDS]
    zoo.train(together, (x, y), seeds=SEEDS, **fp32)
    for a, b in zip(alone, together):
        _assert_same_state(a, b, atol=1e-2, loose=("conv1.bias",), loose_atol=1e-1)
