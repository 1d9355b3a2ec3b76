"""Resumable training (zoo.train(state=..., resume=...), train_variant(resume=...)) and
checkpoints kept at chosen epochs (keep_epochs, load_model(epoch=...))."""

import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from dnnrsa import zoo
from dnnrsa._utils import torch_seed
from dnnrsa.zoo import _resume

SEEDS = [3, 8]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _task(rng, n=40, size=16, n_classes=3):
    y = rng.integers(0, n_classes, n)
    x = rng.normal(0, 0.3, (n, 1, size, size)).astype(np.float32)
    for c in range(n_classes):
        x[y == c, :, :, c * 4 : (c + 1) * 4] += 1.0
    return torch.from_numpy(x), torch.from_numpy(y)


def _net(seed, dropout=0.2):
    with torch_seed(seed):
        return zoo.build("ccn2022", n_classes=3, growth=4, input_size=16, dropout=dropout)


class _Stop(Exception):
    """Stands for a kill right after the state of epoch 2 is on disk."""


@pytest.fixture
def stop_after_epoch_2(monkeypatch):
    write = _resume.StateKeeper.write

    def write_then_stop(self, done, *args, **kwargs):
        write(self, done, *args, **kwargs)
        if done == 2:
            raise _Stop

    def arm():
        monkeypatch.setattr(_resume.StateKeeper, "write", write_then_stop)

    def disarm():
        monkeypatch.setattr(_resume.StateKeeper, "write", write)

    return arm, disarm


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def _same_history(ha, hb):
    for field in ("epochs", "lr", "loss", "train_accuracy", "test_accuracy"):
        assert getattr(ha, field) == getattr(hb, field), field


def _opts(rng):
    return dict(epochs=4, batch_size=16, device="cpu", progress=False, augment="hflip",
                test=_task(rng, n=12), lr=0.05)


def test_lone_model_with_dropout_resumes_bitwise(rng, tmp_path, stop_after_epoch_2):
    """A lone network's dropout draws from the global generator: its state goes in the
    file and comes back, so the resumed run equals the straight one bit for bit."""
    x, y = _task(rng)
    opts = _opts(rng)
    straight = _net(1)
    h_straight = zoo.train(straight, (x, y), seed=1, **opts)
    arm, disarm = stop_after_epoch_2
    arm()
    with pytest.raises(_Stop):
        zoo.train(_net(1), (x, y), seed=1, state=tmp_path / "s.pt", **opts)
    disarm()
    assert torch.load(tmp_path / "s.pt", weights_only=True)["epochs_done"] == 2
    torch.manual_seed(123)  # the caller's generator does not matter, and is given back
    before = torch.random.get_rng_state()
    resumed = _net(1)
    h_resumed = zoo.train(resumed, (x, y), seed=1, state=tmp_path / "s.pt", resume=True,
                          **opts)
    assert torch.equal(before, torch.random.get_rng_state())
    _same_weights(straight, resumed)
    _same_history(h_straight, h_resumed)
    assert resumed.dnnrsa_info == straight.dnnrsa_info
    # the final state stays (train_variant removes it once the checkpoint is saved) and
    # resuming a finished run trains nothing more
    again = _net(1)
    zoo.train(again, (x, y), seed=1, state=tmp_path / "s.pt", resume=True, **opts)
    _same_weights(straight, again)


@pytest.mark.parametrize("mode", ["threads", "grouped"])
def test_models_trained_together_resume_bitwise(rng, tmp_path, monkeypatch, mode,
                                                stop_after_epoch_2):
    monkeypatch.setattr(zoo._train, "CPU_TOGETHER", mode)
    x, y = _task(rng)
    opts = _opts(rng)
    states = [tmp_path / f"seed{s}.pt" for s in SEEDS]
    straight = [_net(s) for s in SEEDS]
    h_straight = zoo.train(straight, (x, y), seeds=SEEDS, **opts)
    arm, disarm = stop_after_epoch_2
    arm()
    with pytest.raises(_Stop):
        zoo.train([_net(s) for s in SEEDS], (x, y), seeds=SEEDS, state=states, **opts)
    disarm()
    done = [torch.load(p, weights_only=True)["epochs_done"] if p.exists() else 0
            for p in states]
    # threads on one torch thread: the first member stops, the second never started
    assert done == ([2, 0] if mode == "threads" else [2, 2])
    resumed = [_net(s) for s in SEEDS]
    h_resumed = zoo.train(resumed, (x, y), seeds=SEEDS, state=states, resume=True, **opts)
    for a, b, ha, hb in zip(straight, resumed, h_straight, h_resumed):
        _same_weights(a, b)
        _same_history(ha, hb)
        assert a.dnnrsa_info == b.dnnrsa_info


def test_a_state_of_another_run_is_refused(rng, tmp_path):
    x, y = _task(rng, n=16)
    opts = dict(epochs=2, batch_size=8, device="cpu", progress=False)
    path = tmp_path / "s.pt"
    zoo.train(_net(1), (x, y), seed=1, state=path, **opts)
    stamp = path.stat().st_mtime_ns
    for change, what in [(dict(seed=2), r"seed \(state: 1, this run: 2\)"),
                         (dict(lr=0.5), r"protocol.lr"),
                         (dict(epochs=3), r"epochs \(state: 2, this run: 3\)"),
                         (dict(data=(x.flip(-1), y)), r"data.sha256")]:
        net = _net(change.get("seed", 1))
        before = {k: v.clone() for k, v in net.state_dict().items()}
        kwargs = dict(opts, seed=1, state=path, resume=True)
        kwargs.update(change)
        data = kwargs.pop("data", (x, y))
        with pytest.raises(ValueError, match=f"state {path} belongs to another run.*{what}"
                                             r".*delete the file to start over"):
            zoo.train(net, data, **kwargs)
        assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match="belongs to another run.*parameters"):
        other = zoo.build("ccn2022", n_classes=3, growth=8, input_size=16)
        zoo.train(other, (x, y), seed=1, state=path, resume=True, **opts)
    assert path.stat().st_mtime_ns == stamp  # refused, not overwritten


def test_a_corrupt_state_is_refused_not_restarted(rng, tmp_path):
    x, y = _task(rng, n=16)
    opts = dict(epochs=2, batch_size=8, device="cpu", progress=False)
    path = tmp_path / "s.pt"
    zoo.train(_net(1), (x, y), seed=1, state=path, **opts)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"s.pt cannot be read .*truncated, corrupt"):
        zoo.train(_net(1), (x, y), seed=1, state=path, resume=True, **opts)
    torch.save({"format": "something else"}, path)
    with pytest.raises(ValueError, match="is not a dnnrsa.train-state/1 file"):
        zoo.train(_net(1), (x, y), seed=1, state=path, resume=True, **opts)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(resume=True), ValueError, r"resume=True needs state=PATH"),
    (dict(state="s.pt", state_every=0), ValueError, r"state_every must be an integer >= 1"),
    (dict(state=["a.pt"]), TypeError, r"state must be a path for a single model"),
    (dict(keep_epochs=[3]), ValueError, r"keep_epochs=\[3\] has epoch\(s\) \[3\] outside 1..2"),
    (dict(keep_epochs=[1], on_keep=None), TypeError, r"on_keep must be a callable"),
    (dict(on_keep=print), ValueError, r"on_keep was given without keep_epochs"),
])
def test_train_refuses_bad_state_options(rng, tmp_path, kwargs, error, match):
    x, y = _task(rng, n=8)
    if "state" in kwargs and isinstance(kwargs["state"], str):
        kwargs["state"] = tmp_path / kwargs["state"]
    with pytest.raises(error, match=match):
        zoo.train(_net(0), (x, y), seed=0, epochs=2, device="cpu", progress=False, **kwargs)
    assert not list(tmp_path.iterdir())


# --- train_variant --------------------------------------------------------------------


def test_keep_epochs_equal_a_shorter_run_and_load_by_epoch(tmp_path, tiny_training_data):
    opts = dict(quick=True, device="cpu", progress=False, home=tmp_path)
    final = zoo.train_variant("expression", 3, epochs=3, keep_epochs=[2, 1], **opts)
    short = zoo.train_variant("expression", 3, epochs=2, **opts)
    kept = zoo.load_model("expression", 3, quick=True, epochs=3, home=tmp_path, epoch=2,
                          device="cpu")
    ref = zoo.load(short, device="cpu")
    _same_weights(kept, ref)
    assert kept.dnnrsa_info["epoch"] == 2
    for key in ("train_accuracy", "test_accuracy", "data", "protocol", "classes"):
        assert kept.dnnrsa_info[key] == ref.dnnrsa_info[key], key
    last = zoo.load_model("expression", 3, quick=True, epochs=3, home=tmp_path, epoch=3,
                          device="cpu")
    _same_weights(last, zoo.load(final, device="cpu"))
    assert sorted(p.name for p in final.parent.iterdir()) == [
        "seed03-epoch0001.json", "seed03-epoch0001.safetensors", "seed03-epoch0002.json",
        "seed03-epoch0002.safetensors", "seed03.json", "seed03.safetensors"]  # no state
    table = zoo.list_models(tmp_path)  # kept epochs and states are not trained seeds
    (final.parent / "seed03.state.pt").write_bytes(b"left over")
    assert zoo.list_models(tmp_path).equals(table)
    assert sorted(table.epochs) == [2, 3] and list(table.seed) == [3, 3]
    zoo.train_variant("expression", 4, epochs=3, keep_epochs=[1], **opts)
    with pytest.raises(FileNotFoundError, match=r"Epoch 2 of 'expression' seed 4 .* not kept: "
                                                r"the kept epochs are \[1\], plus the final "
                                                r"epoch 3.*--keep-epochs 2"):
        zoo.load_model("expression", 4, quick=True, epochs=3, home=tmp_path, epoch=2)
    with pytest.raises(ValueError, match=r"epoch must be an epoch number in 1..3 .*got 4"):
        zoo.load_model("expression", 3, quick=True, epochs=3, home=tmp_path, epoch=4)


def test_train_variant_resume_logs_and_cleans_up(tmp_path, tiny_training_data, caplog,
                                                 stop_after_epoch_2):
    opts = dict(quick=True, epochs=3, device="cpu", progress=False, home=tmp_path)
    straight = zoo.train_variant("expression", 5, home=tmp_path / "straight",
                                 **{k: v for k, v in opts.items() if k != "home"})
    arm, disarm = stop_after_epoch_2
    arm()
    with pytest.raises(_Stop):
        zoo.train_variant("expression", 5, **opts)
    disarm()
    path = zoo.checkpoint_path("expression", 5, quick=True, epochs=3, home=tmp_path)
    state = path.with_name("seed05.state.pt")
    assert state.exists() and not path.exists()
    with caplog.at_level(logging.INFO, logger="dnnrsa"):
        zoo.train_variant("expression", 5, resume=True, **opts)
    assert "resuming seed 5" in caplog.text and "2 of 3 epochs done" in caplog.text
    assert not state.exists()
    _same_weights(zoo.load(path, device="cpu"), zoo.load(straight, device="cpu"))
    with caplog.at_level(logging.INFO, logger="dnnrsa"):
        zoo.train_variant("expression", seeds=[5, 6], resume=True, **opts)
    assert "seed 5 already trained" in caplog.text
    assert "no training state" in caplog.text and "seed 6 trains from scratch" in caplog.text
    caplog.clear()
    arm()
    with pytest.raises(_Stop):
        zoo.train_variant("expression", 7, **opts)
    disarm()
    with caplog.at_level(logging.INFO, logger="dnnrsa"):
        zoo.train_variant("expression", 7, **opts)  # no resume: starts over
    assert "ignoring the training state" in caplog.text


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(keep_epochs=[0]), ValueError, r"outside 1..10"),
    (dict(keep_epochs=[11]), ValueError, r"outside 1..10"),
    (dict(keep_epochs=[2, 2]), ValueError, r"lists epoch\(s\) \[2\] twice"),
    (dict(keep_epochs="2"), TypeError, r"keep_epochs must be a list of epoch numbers"),
    (dict(keep_epochs=[1.5]), TypeError, r"keep_epochs must hold integers"),
    (dict(resume="yes"), TypeError, r"resume must be True or False"),
    (dict(resume=True, state_every=None), ValueError, r"resume=True needs training states"),
    (dict(state_every=0), ValueError, r"state_every must be an integer >= 1 or None"),
])
def test_train_variant_refuses_bad_options_before_any_work(tmp_path, monkeypatch, kwargs,
                                                           error, match):
    def no_data(*a, **k):
        raise AssertionError("training data was loaded before the arguments were checked")

    monkeypatch.setattr(zoo._registry, "training_data", no_data)
    with pytest.raises(error, match=match):
        zoo.train_variant("expression", quick=True, home=tmp_path, **kwargs)
    assert not (tmp_path / "models").exists()


# --- a real kill ----------------------------------------------------------------------

_SCRIPT = """
import sys
import numpy as np, pandas as pd, torch
torch.set_num_threads(1)
import dnnrsa
from dnnrsa import zoo
rng = np.random.default_rng(0)
y = rng.integers(0, 7, 600)
x = rng.uniform(0, 0.5, (600, 1, 32, 32)).astype(np.float32)
for c in range(7):
    x[y == c, :, :, c * 4:(c + 1) * 4] += 0.5
tiny = dnnrsa.StimulusSet(x, pd.DataFrame({"expression": np.array(list("abcdefg"))[y]}),
                          name="tiny")
zoo._registry.training_data = lambda *a, **k: (tiny, tiny)
zoo.train_variant("expression", 3, quick=True, epochs=6, home=sys.argv[1], device="cpu",
                  progress=False, resume=True, state_every=1)
"""


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_checkpoint(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def run(home):
        subprocess.run([sys.executable, str(script), str(home)], check=True, env=env,
                       timeout=300)

    run(tmp_path / "straight")
    path = zoo.checkpoint_path("expression", 3, quick=True, epochs=6, home=tmp_path / "killed")
    state = path.with_name("seed03.state.pt")
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "killed")], env=env)
    killed_at = None
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if state.exists():
                done = torch.load(state, weights_only=True)["epochs_done"]
                if done >= 2:
                    proc.send_signal(signal.SIGKILL)
                    killed_at = done
                    break
            time.sleep(0.01)
    finally:
        proc.wait(timeout=60)
    assert killed_at is not None and killed_at < 6, "the run ended before it could be killed"
    assert proc.returncode == -signal.SIGKILL and not path.exists()
    run(tmp_path / "killed")
    assert not state.exists()
    straight = zoo.checkpoint_path("expression", 3, quick=True, epochs=6,
                                   home=tmp_path / "straight")
    _same_weights(zoo.load(path, device="cpu"), zoo.load(straight, device="cpu"))
