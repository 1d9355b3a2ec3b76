import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

import dnnrsa
from dnnrsa import zoo


def test_paper_architecture_widths_and_shapes():
    net = zoo.build("ccn2022", n_classes=7)
    x = torch.zeros(2, 1, 48, 48)
    with torch.no_grad():
        net.eval()
        c1 = net.conv1(x)
        d1 = net.dense1(c1)
        d2 = net.dense2(net.trans1(d1))
        d3 = net.dense3(net.trans2(d2))
        out = net(x)
    assert c1.shape[1:] == (64, 48, 48)
    assert d1.shape[1:] == (160, 48, 48)
    assert d2.shape[1:] == (176, 24, 24)
    assert d3.shape[1:] == (184, 12, 12)
    assert net.widths == {"conv1": 64, "dense1": 160, "dense2": 176, "dense3": 184}
    assert out.shape == (2, 7)
    assert net.fc.in_features == 184  # avg_pool2d(8) on 12x12 keeps one 8x8 window
    assert net.pool == 8
    # three layers per block, growth 32; dense block output includes its input
    assert len(net.dense1) == len(net.dense2) == len(net.dense3) == 3
    assert net.trans1.conv.out_channels == 80 and net.trans2.conv.out_channels == 88
    # the paper's module order and kinds
    assert isinstance(net.dense1[0].drop, torch.nn.Dropout2d) and net.dense1[0].drop.p == 0.1
    assert net.conv1.bias is not None and net.dense1[0].conv.bias is None


def test_head_pools_only_the_top_left_window_of_dense3():
    """Quirk 2 of PAPER.md: activity outside the top-left 8x8 of dense3 cannot reach fc."""
    net = zoo.build("ccn2022", n_classes=3, growth=8).eval()
    feats = torch.randn(1, net.widths["dense3"], 12, 12)
    changed = feats.clone()
    changed[..., 8:, :] += 5.0
    changed[..., :, 8:] += 5.0
    head = lambda f: net.fc(torch.flatten(torch.nn.functional.avg_pool2d(torch.relu(net.norm(f)), 8), 1))  # noqa: E731
    with torch.no_grad():
        assert torch.equal(head(feats), head(changed))


def test_initialisation_follows_the_paper():
    torch.manual_seed(0)
    net = zoo.build("ccn2022", n_classes=7)
    conv = net.trans1.conv  # 80 * 9 outputs per input: std sqrt(2 / (9 * 80))
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 80)), rel=0.02)
    assert net.conv1.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 64)), rel=0.1)
    assert torch.count_nonzero(net.conv1.bias) == 0 and torch.count_nonzero(net.fc.bias) == 0
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


def test_quick_options_scale_the_widths():
    net = zoo.build("ccn2022", n_classes=5, growth=8, input_size=32)
    assert net.widths == {"conv1": 16, "dense1": 40, "dense2": 44, "dense3": 46}
    assert net(torch.zeros(1, 1, 32, 32)).shape == (1, 5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(input_size=30), "multiple of 4"),
        (dict(n_classes=0), "n_classes"),
        (dict(reduction=1.5), "reduction"),
        (dict(pool=20), "pool"),
    ],
)
def test_build_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        zoo.build("ccn2022", **kwargs)


def test_build_unknown_architecture_lists_valid():
    with pytest.raises(ValueError, match=r"architecture.*\{ccn2022\}"):
        zoo.build("densenet121")


def _toy_task(rng, n=96, size=16):
    """Two classes told apart by which half of the image is bright."""
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 0.3, (n, 1, size, size)).astype(np.float32)
    x[y == 0, :, :, : size // 2] += 1.0
    x[y == 1, :, :, size // 2 :] += 1.0
    return torch.from_numpy(x), torch.from_numpy(y)


def test_train_is_deterministic_and_follows_the_lr_schedule(rng):
    x, y = _toy_task(rng)

    def run(seed):
        torch.manual_seed(123)
        net = zoo.build("ccn2022", n_classes=2, growth=4, input_size=16)
        hist = zoo.train(net, (x[:64], y[:64]), epochs=3, lr_step=1, batch_size=32, seed=seed,
                         device="cpu", progress=False)
        return net, hist

    a, ha = run(0)
    b, hb = run(0)
    c, _ = run(1)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert any(not torch.equal(va, vc) for va, vc in zip(a.state_dict().values(),
                                                          c.state_dict().values()))
    assert ha.lr == pytest.approx([0.1, 0.05, 0.025])
    assert ha.loss == hb.loss
    assert not a.training  # left in eval mode


def test_train_learns_a_separable_task(rng):
    x, y = _toy_task(rng, n=192)
    xt, yt = _toy_task(rng, n=96)
    torch.manual_seed(0)
    net = zoo.build("ccn2022", n_classes=2, growth=4, input_size=16)
    hist = zoo.train(net, (x, y), test=(xt, yt), epochs=6, lr=0.05, batch_size=32,
                     device="cpu", progress=False)
    assert hist.test_accuracy[-1] >= 0.9
    assert net.dnnrsa_info["test_accuracy"] == hist.test_accuracy[-1]


def test_train_rejects_too_many_classes_and_wrong_shapes(rng):
    x, y = _toy_task(rng)
    net = zoo.build("ccn2022", n_classes=2, growth=4, input_size=16)
    with pytest.raises(ValueError, match="n_classes=3"):
        zoo.train(net, (x, torch.where(y == 1, 2, 0)), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"shape \(1, 20, 20\).*input_size=20"):
        zoo.train(net, (torch.zeros(4, 1, 20, 20), torch.zeros(4)), epochs=1, progress=False)


def test_save_load_gives_identical_outputs(tmp_path, rng):
    torch.manual_seed(0)
    net = zoo.build("ccn2022", n_classes=3, growth=4, input_size=16)
    x, y = _toy_task(rng)
    zoo.train(net, (x, y % 3), epochs=1, progress=False, device="cpu")
    path = zoo.save(net, tmp_path / "net", variant="expression")
    assert path.suffix == ".safetensors" and path.with_suffix(".json").exists()
    info = json.loads(path.with_suffix(".json").read_text())
    for key in ("config", "classes", "seed", "epoch", "test_accuracy", "dnnrsa_version", "data"):
        assert key in info
    assert info["config"]["growth"] == 4
    back = zoo.load(path)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), back(x))
    assert back.dnnrsa_info["variant"] == "expression"
    assert not list(tmp_path.glob("*.partial"))


def test_load_rejects_mismatched_architecture(tmp_path):
    net = zoo.build("ccn2022", n_classes=3, growth=4, input_size=16)
    path = zoo.save(net, tmp_path / "net.safetensors")
    sidecar = path.with_suffix(".json")
    info = json.loads(sidecar.read_text())
    info["config"]["growth"] = 8
    sidecar.write_text(json.dumps(info))
    with pytest.raises(ValueError, match="does not match the architecture"):
        zoo.load(path)


def test_save_refuses_non_zoo_models(tmp_path):
    with pytest.raises(TypeError, match="zoo network"):
        zoo.save(torch.nn.Linear(2, 2), tmp_path / "x")


def test_load_model_missing_says_how_to_train(home):
    with pytest.raises(FileNotFoundError, match=r"dnnrsa train expression --seed 3`"):
        dnnrsa.load_model("expression", seed=3)
    with pytest.raises(FileNotFoundError, match=r"dnnrsa train expression --seed 3 --quick`"):
        dnnrsa.load_model("expression", seed=3, quick=True)
    with pytest.raises(ValueError, match=r"variant.*\{expression, identity, scene, untrained\}"):
        dnnrsa.load_model("expresion")


def test_untrained_variant_round_trip_is_seeded(home):
    p0 = zoo.train_variant("untrained", 0, quick=True)
    p1 = zoo.train_variant("untrained", 1, quick=True)
    assert p0 == zoo.checkpoint_path("untrained", 0, quick=True)
    a = dnnrsa.load_model("untrained", seed=0, quick=True)
    b = dnnrsa.load_model(str(p0))
    c = dnnrsa.load_model("untrained", seed=1, quick=True)
    assert torch.equal(a.conv1.weight, b.conv1.weight)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    assert a.config["growth"] == zoo.QUICK["arch"]["growth"]
    assert a.dnnrsa_info["variant"] == "untrained" and p1.exists()


def test_quick_and_full_networks_never_share_a_checkpoint(home):
    """The review's defect: `train expression` after `train expression --quick` said "already
    trained" and kept the quick net. Each recipe now has its own folder, and loading by name
    never hands back another recipe's network."""
    quick = zoo.train_variant("untrained", 0, quick=True)
    full = zoo.checkpoint_path("untrained", 0)
    assert quick != full and quick.parent.name.startswith("quick-init-")
    assert full.parent.name.startswith("full-init-")
    with pytest.raises(FileNotFoundError,
                       match=r"quick-init-\w+ \(seeds 0; load with quick=True \(--quick\)\)"):
        dnnrsa.load_model("untrained", seed=0)  # only the quick one exists
    assert zoo.train_variant("untrained", 0) == full  # trains the full one, not "already trained"
    assert dnnrsa.load_model("untrained", seed=0).config["growth"] == 32
    assert dnnrsa.load_model("untrained", seed=0, quick=True).config["growth"] == zoo.QUICK["arch"]["growth"]
    table = zoo.list_models()
    assert sorted(table.recipe.str.split("-").str[0]) == ["full", "quick"]
    assert list(table.seed) == [0, 0] and set(table.variant) == {"untrained"}


def test_recipe_follows_everything_that_makes_the_weights():
    base = zoo.recipe("expression", quick=True)
    keys = {zoo.recipe_key(base),
            zoo.recipe_key(zoo.recipe("expression", quick=True, epochs=3)),
            zoo.recipe_key(zoo.recipe("expression")),
            zoo.recipe_key(zoo.recipe("expression", data="paper", quick=True)),
            zoo.recipe_key(zoo.recipe("identity", quick=True))}
    assert len(keys) == 5
    assert zoo.recipe_key(base) == zoo.recipe_key(zoo.recipe("expression", quick=True, epochs=10))
    assert zoo.recipe_key(zoo.recipe("expression", quick=True, epochs=3)).startswith("quick-3ep-")
    assert base["training_data"]["version"] == dnnrsa.datasets.DATA_VERSION
    assert base["architecture"] == dict(architecture="ccn2022", **zoo.QUICK["arch"])
    with pytest.raises(ValueError, match="epochs=3 does not apply to the untrained variant"):
        zoo.recipe("untrained", epochs=3)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        zoo.recipe("expression", epochs=0)


def test_epochs_override_is_its_own_checkpoint(home, monkeypatch, rng):
    """--epochs no longer collides with the preset's network."""
    x = rng.random((14, 1, 32, 32)).astype(np.float32)
    meta = pd.DataFrame({"expression": list("abcdefg") * 2})
    tiny = dnnrsa.StimulusSet(x, meta, name="tiny")
    monkeypatch.setattr(zoo._registry, "training_data", lambda *a, **k: (tiny, tiny))
    one = zoo.train_variant("expression", 0, quick=True, epochs=1, device="cpu", progress=False)
    two = zoo.train_variant("expression", 0, quick=True, epochs=2, device="cpu", progress=False)
    assert one != two and one.exists() and two.exists()
    assert dnnrsa.load_model("expression", quick=True, epochs=1).dnnrsa_info["epoch"] == 1
    assert dnnrsa.load_model("expression", quick=True, epochs=2).dnnrsa_info["epoch"] == 2
    with pytest.raises(FileNotFoundError, match=r"load with quick=True \(--quick\), epochs=1 \(--epochs 1\)\)"):
        dnnrsa.load_model("expression", quick=True)  # the preset's 10 epochs were never trained


def test_a_moved_or_edited_checkpoint_is_refused(home):
    path = zoo.train_variant("untrained", 1, quick=True)
    target = zoo.checkpoint_path("untrained", 2, quick=True)
    for suffix in (".safetensors", ".json"):  # seed 1's files put where seed 2 belongs
        target.with_suffix(suffix).write_bytes(path.with_suffix(suffix).read_bytes())
    with pytest.raises(ValueError, match="with seed 1, not .* with seed 2"):
        dnnrsa.load_model("untrained", seed=2, quick=True)
    info = json.loads(path.with_suffix(".json").read_text())
    info["recipe"]["architecture"]["growth"] = 16
    path.with_suffix(".json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="was made by recipe"):
        dnnrsa.load_model("untrained", seed=1, quick=True)


def test_an_unkeyed_checkpoint_of_dnnrsa_0_1_is_not_loaded_by_name(home):
    net = zoo.build("ccn2022", n_classes=7)
    old = home / "models" / "synthetic" / "untrained" / "seed00.safetensors"
    zoo.save(net, old)
    with pytest.raises(FileNotFoundError, match="checkpoint of dnnrsa 0.1"):
        dnnrsa.load_model("untrained", seed=0)
    assert isinstance(dnnrsa.load_model(old), zoo.CCNDenseNet)  # by path it loads


def test_training_leaves_the_global_torch_generator_alone(home, rng):
    x, y = _toy_task(rng, n=32)
    net = zoo.build("ccn2022", n_classes=2, growth=4, input_size=16, dropout=0.2)
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    zoo.train(net, (x, y), epochs=1, device="cpu", progress=False, seed=3)
    zoo.train_variant("untrained", 0, quick=True)
    assert torch.equal(before, torch.random.get_rng_state())


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=float("nan")), "lr must be a finite number > 0, got nan"),
    (dict(lr=-0.1), "lr must be a finite number > 0"),
    (dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
    (dict(momentum=1.0), "momentum must be in"),
    (dict(seed=2**63), "seed must be an integer between 0 and"),
])
def test_train_refuses_bad_protocol_before_any_step(rng, kwargs, match):
    x, y = _toy_task(rng, n=16)
    net = zoo.build("ccn2022", n_classes=2, growth=4, input_size=16)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises((ValueError, TypeError), match=match):
        zoo.train(net, (x, y), epochs=1, device="cpu", progress=False, **kwargs)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


def test_evaluate_is_the_old_name_of_accuracy(rng):
    x, y = _toy_task(rng, n=16)
    net = zoo.build("ccn2022", n_classes=2, growth=4, input_size=16)
    with pytest.warns(FutureWarning, match="renamed dnnrsa.zoo.accuracy"):
        old = zoo.evaluate(net, x, y, device="cpu")
    assert old == zoo.accuracy(net, x, y, device="cpu")


@pytest.mark.gpu
def test_training_on_gpu_matches_cpu_shape_and_learns(rng):
    x, y = _toy_task(rng, n=192)
    torch.manual_seed(0)
    net = zoo.build("ccn2022", n_classes=2, growth=4, input_size=16)
    hist = zoo.train(net, (x, y), test=(x, y), epochs=4, lr=0.05, batch_size=32,
                     device="cuda", progress=False)
    assert hist.test_accuracy[-1] >= 0.9
    assert next(net.parameters()).device.type == "cpu"  # returned where it came from
