"""The activation cache of dnnrsa.extract: keyed entries, no forward pass on a hit,
atomic writes, and errors raised before any forward pass."""

import errno
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import dnnrsa
from dnnrsa import _cache, zoo

LAYERS = ["pixels", "conv1", "dense2"]


@pytest.fixture
def net():
    torch.manual_seed(0)
    model = zoo.build("ccn2022", n_classes=7, growth=4, input_size=32)
    model.calls = []  # one entry per forward pass that reached conv1
    model.conv1.register_forward_pre_hook(lambda *args: model.calls.append(1))
    return model


def _extract(net, stim, **kw):
    kw.setdefault("device", "cpu")
    kw.setdefault("batch_size", 5)
    return dnnrsa.extract(net, stim, kw.pop("layers", LAYERS), **kw)


def _entries(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_second_call_reads_the_cache_without_a_forward_pass(net, toy_stimuli, tmp_path,
                                                             caplog):
    ref = _extract(net, toy_stimuli)
    first = _extract(net, toy_stimuli, cache_dir=tmp_path)
    n_batches = len(net.calls)
    assert n_batches == 2 * 5  # 24 images in chunks of 5, for ref and first
    with caplog.at_level("INFO", logger="dnnrsa"):
        second = _extract(net, toy_stimuli, cache_dir=tmp_path, batch_size=7)
    assert len(net.calls) == n_batches  # no forward pass
    assert "read from the cache" in caplog.text
    for name in LAYERS:
        a, b = first[name], second[name]
        assert isinstance(b.data, np.memmap) and not b.data.flags.writeable
        assert b.data.shape == ref[name].data.shape and b.data.dtype == np.float32
        np.testing.assert_array_equal(a.data, ref[name].data)
        np.testing.assert_array_equal(b.data, ref[name].data)
        assert a.provenance["cache"] == b.provenance["cache"]
        assert b.provenance["cache"].endswith(f"{name}.float32.npy")
        assert os.path.isfile(b.provenance["cache"])
        assert b.metadata.equals(toy_stimuli.metadata) and b.provenance["layer"] == name
        assert b.provenance["weights_sha256"] == ref[name].provenance["weights_sha256"]
    # one .npy and one sidecar per layer, nothing else
    assert len(_entries(tmp_path)) == 2 * len(LAYERS)
    side = json.loads(open(b.provenance["cache"][:-4] + ".json").read())
    assert side["shape"] == list(b.data.shape) and side["dtype"] == "float32"


def test_a_new_layer_is_added_and_the_cached_ones_are_kept(net, toy_stimuli, tmp_path):
    a = _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["conv1"])["conv1"]
    stamp = os.stat(a.provenance["cache"]).st_mtime_ns
    both = _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["conv1", "dense1"])
    assert os.stat(a.provenance["cache"]).st_mtime_ns == stamp
    ref = _extract(net, toy_stimuli, layers=["dense1"])["dense1"]
    np.testing.assert_array_equal(both["dense1"].data, ref.data)
    calls = len(net.calls)
    _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["dense1", "conv1"])
    assert len(net.calls) == calls


def test_other_weights_stimuli_or_dtype_get_other_entries(net, toy_stimuli, tmp_path):
    path = lambda acts: acts["conv1"].provenance["cache"]  # noqa: E731
    base = _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["conv1"])
    paths = {path(base)}

    with torch.no_grad():
        net.dense1[0].norm.running_mean[0] += 1.0  # a buffer, not a parameter
    changed = _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["conv1"])
    paths.add(path(changed))
    with torch.no_grad():
        net.conv1.weight[0, 0, 0, 0] += 1.0
    calls = len(net.calls)
    moved = _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["conv1"])
    assert len(net.calls) > calls
    paths.add(path(moved))
    assert not np.array_equal(moved["conv1"].data, base["conv1"].data)
    with torch.no_grad():
        net.conv1.weight[0, 0, 0, 0] -= 1.0
        net.dense1[0].norm.running_mean[0] -= 1.0
    calls = len(net.calls)
    again = _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["conv1"])
    assert len(net.calls) == calls and path(again) == path(base)  # the weights are back

    images = toy_stimuli.images.copy()
    images[0, 0, 0, 0] = 1.0 - images[0, 0, 0, 0]
    other_images = dnnrsa.StimulusSet(images, toy_stimuli.metadata, name="toy")
    paths.add(path(_extract(net, other_images, cache_dir=tmp_path, layers=["conv1"])))
    meta = toy_stimuli.metadata.copy()
    meta["identity"] = meta["identity"].replace({"F01": "F05"})
    other_table = dnnrsa.StimulusSet(toy_stimuli.images, meta, name="toy")
    paths.add(path(_extract(net, other_table, cache_dir=tmp_path, layers=["conv1"])))
    half = _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["conv1"], dtype="float16")
    paths.add(path(half))
    assert len(paths) == 6


def test_float16_is_close_to_float32(net, toy_stimuli, tmp_path):
    full = _extract(net, toy_stimuli)
    cached = _extract(net, toy_stimuli, cache_dir=tmp_path, dtype="float16")
    memory = _extract(net, toy_stimuli, dtype=np.float16)
    for name in LAYERS:
        assert cached[name].data.dtype == np.float16 and memory[name].data.dtype == np.float16
        assert cached[name].provenance["dtype"] == "float16"
        np.testing.assert_array_equal(cached[name].data, memory[name].data)
        ref = full[name].data
        np.testing.assert_allclose(cached[name].data.astype(np.float32), ref,
                                   rtol=1e-3, atol=1e-3 * np.abs(ref).max())
        np.testing.assert_array_equal(cached[name].data, ref.astype(np.float16))


def test_float16_overflow_is_an_error_and_leaves_no_entry(toy_stimuli, tmp_path):
    big = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 3))
    with torch.no_grad():
        big[1].weight.fill_(1e3)
    with pytest.raises(ValueError, match=r"Layer '1' has values up to .*float16.*float32"):
        dnnrsa.extract(big, toy_stimuli, ["1"], device="cpu", dtype="float16",
                       cache_dir=tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_half_written_entry_is_not_reused(net, toy_stimuli, tmp_path):
    ref = _extract(net, toy_stimuli, layers=["dense2"])["dense2"]
    path = _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["dense2"])["dense2"]
    npy = path.provenance["cache"]
    sidecar = npy[:-4] + ".json"

    def rerun():
        calls = len(net.calls)
        out = _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["dense2"])["dense2"]
        np.testing.assert_array_equal(out.data, ref.data)
        return len(net.calls) - calls

    os.remove(sidecar)  # killed before the sidecar: the .npy alone is no entry
    assert rerun() == 5 and os.path.isfile(sidecar)
    assert rerun() == 0
    with open(npy, "r+b") as fh:  # a truncated file under a complete-looking sidecar
        fh.truncate(os.path.getsize(npy) // 2)
    assert rerun() == 5 and rerun() == 0
    with open(sidecar, "w") as fh:  # a sidecar cut short
        fh.write('{"format": "dnnrsa.ext')
    assert rerun() == 5 and rerun() == 0
    side = json.loads(open(sidecar).read())
    side["shape"][0] += 1  # a sidecar that disagrees with the file
    with open(sidecar, "w") as fh:
        json.dump(side, fh)
    assert rerun() == 5 and rerun() == 0


def test_an_interrupted_run_leaves_nothing_that_looks_complete(net, toy_stimuli, tmp_path):
    def fail_on_third_chunk(module, inputs):
        if len(net.calls) == 3:
            raise KeyboardInterrupt

    handle = net.conv1.register_forward_pre_hook(fail_on_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["conv1", "dense2"])
    handle.remove()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    # a temporary file of a killed process (no abort ran) is removed on the next write,
    # one of a live process is left alone
    out = _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["conv1"])["conv1"]
    npy = out.provenance["cache"]
    os.remove(npy[:-4] + ".json")
    host = _cache._HOST
    dead = f"{npy}.{host}.{2**22 + 12345}.deadbeef.partial"
    alive = f"{npy}.{host}.{os.getpid()}.cafecafe.partial"
    elsewhere = f"{npy}.{socket.gethostname()}x.{2**22 + 12345}.beefbeef.partial"
    for p in (dead, alive, elsewhere):
        open(p, "wb").close()
    _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["conv1"])
    assert not os.path.exists(dead)
    assert os.path.exists(alive) and os.path.exists(elsewhere)


def test_memmap_dir_is_the_old_name_of_cache_dir(net, toy_stimuli, tmp_path):
    new = _extract(net, toy_stimuli, cache_dir=tmp_path, layers=["conv1"])["conv1"]
    calls = len(net.calls)
    old = _extract(net, toy_stimuli, memmap_dir=tmp_path, layers=["conv1"])["conv1"]
    assert len(net.calls) == calls
    assert old.provenance["cache"] == new.provenance["cache"]
    assert isinstance(old.data, np.memmap)
    with pytest.raises(ValueError, match="cache_dir and memmap_dir were both given"):
        _extract(net, toy_stimuli, cache_dir=tmp_path, memmap_dir=tmp_path)


def test_bad_cache_dir_and_dtype_fail_before_any_forward_pass(net, toy_stimuli, tmp_path,
                                                              monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ValueError, match=r"cache_dir='.*afile' is a file, not a folder"):
        _extract(net, toy_stimuli, cache_dir=afile)
    with pytest.raises(ValueError, match=r"memmap_dir='.*afile' is a file"):
        _extract(net, toy_stimuli, memmap_dir=afile)
    with pytest.raises(ValueError, match="cannot write the activation cache"):
        _extract(net, toy_stimuli, cache_dir=afile / "below")
    with pytest.raises(TypeError, match="cache_dir must be a path"):
        _extract(net, toy_stimuli, cache_dir=3)
    with pytest.raises(ValueError, match=r"Unknown value 'float64' for argument dtype"):
        _extract(net, toy_stimuli, dtype="float64")
    with pytest.raises(ValueError, match=r"Unknown value 'bfloat16' for argument dtype"):
        _extract(net, toy_stimuli, dtype="bfloat16")
    assert net.calls == []

    # a folder that cannot be written (simulated: the tests may run as root)
    cache = tmp_path / "cache"
    _extract(net, toy_stimuli, cache_dir=cache, layers=["conv1"])
    calls = len(net.calls)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_cache.tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(ValueError, match=r"cannot write .*Permission denied.*folder you can"):
        _extract(net, toy_stimuli, cache_dir=cache, layers=["conv1", "dense1"])
    assert len(net.calls) == calls
    # a read-only cache that holds every layer asked for is read as it is
    got = _extract(net, toy_stimuli, cache_dir=cache, layers=["conv1"])
    assert len(net.calls) == calls and got["conv1"].data.shape == (24, 8, 32, 32)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root can write to read-only folders")
def test_read_only_cache_dir(net, toy_stimuli, tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="cannot write the activation cache"):
            _extract(net, toy_stimuli, cache_dir=tmp_path)
    finally:
        tmp_path.chmod(0o700)
    assert net.calls == []


def test_keys_follow_their_definition(net, toy_stimuli):
    k = _cache.model_key(net, "abc")
    assert k == _cache.model_key(net, "abc") and k != _cache.model_key(net, "abd")
    # same weights, another architecture (no weights of its own differ): another key
    torch.manual_seed(0)
    other = zoo.build("ccn2022", n_classes=7, growth=4, input_size=32, dropout=0.2)
    other.load_state_dict(net.state_dict())
    assert _cache.model_key(other, "abc") != k
    assert _cache.stimuli_key(toy_stimuli) == _cache.stimuli_key(toy_stimuli[np.arange(24)])
    assert _cache.stimuli_key(toy_stimuli) != _cache.stimuli_key(toy_stimuli[::-1])
    assert _cache._safe_name("layer1.0.conv1") == "layer1.0.conv1"
    assert "/" not in _cache._safe_name("a/b") and _cache._safe_name("a/b") != "a_b"


@pytest.mark.parametrize("how", ["direct", "buffered", "refused"])
def test_every_write_path_gives_the_same_file(net, toy_stimuli, tmp_path, monkeypatch, how):
    """Direct I/O (aligned blocks from a staging buffer, the last one padded and the file
    truncated), buffered writes, and a file system that refuses direct writes at the
    first block all give the bytes np.save writes."""
    # many blocks, a ragged end
    monkeypatch.setattr(_cache, "_STAGE", 4 * _cache._ALIGN)
    monkeypatch.setattr(_cache, "_POOL_BYTES", 8 * _cache._ALIGN)
    calls = []
    if how == "buffered":
        monkeypatch.setattr(_cache, "DIRECT_IO", False)
    elif how == "refused":
        def refuse(fd, data):
            calls.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")

        monkeypatch.setattr(_cache, "_os_write", refuse)
    ref = _extract(net, toy_stimuli, layers=["conv1", "dense3"])
    got = _extract(net, toy_stimuli, layers=["conv1", "dense3"], cache_dir=tmp_path)
    for name in ("conv1", "dense3"):
        expected = tmp_path / f"{name}.ref.npy"
        np.save(expected, ref[name].data)
        assert open(got[name].provenance["cache"], "rb").read() == expected.read_bytes()
    if how == "refused":
        assert calls == [4 * _cache._ALIGN] * 2  # one refused block per layer, then buffered
    assert not list(tmp_path.rglob("*.partial"))


def test_empty_stimuli_are_an_error(net, toy_stimuli, tmp_path):
    with pytest.raises(ValueError, match="Argument stimuli is empty"):
        _extract(net, toy_stimuli[np.zeros(len(toy_stimuli), bool)], cache_dir=tmp_path)


_RSS_SCRIPT = r"""
import json, sys
import numpy as np, pandas as pd, torch
from torch import nn
import dnnrsa

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

torch.set_num_threads(1)
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(1, 64, 3, padding=1))  # 256 KiB of responses per image
images = np.random.default_rng(0).random((1000, 1, 32, 32), dtype=np.float32)
stim = dnnrsa.StimulusSet(images, pd.DataFrame({"identity": np.arange(1000) % 10}))
cache = sys.argv[1] if sys.argv[1] != "-" else None
dnnrsa.extract(net, stim[:50], ["0"], batch_size=50, device="cpu")  # warm up
before = status("VmRSS")
acts = dnnrsa.extract(net, stim, ["0"], batch_size=50, device="cpu", cache_dir=cache)
print(json.dumps({"before": before, "peak": status("VmHWM"), "mb": acts["0"].data.nbytes / 2**20}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_cached_extraction_keeps_one_chunk_in_memory(tmp_path):
    """A 250 MB layer extracted into the cache in chunks of 12.5 MB: the process's
    high-water mark grows by the writer's staging blocks and a few chunks, not by the
    layer (which it does in memory)."""
    out = {}
    for where in (str(tmp_path), "-"):
        done = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, where], capture_output=True,
                              text=True, check=True)
        out[where] = json.loads(done.stdout.strip().splitlines()[-1])
    cached, memory = out[str(tmp_path)], out["-"]
    assert cached["mb"] == memory["mb"] == 250
    staging = _cache._POOL_BYTES / 2**20  # 96 MB, whatever the layer
    assert cached["peak"] - cached["before"] < staging + 40, out
    assert memory["peak"] - memory["before"] > 240, out


def test_more_layers_than_staging_blocks(net, toy_stimuli, tmp_path):
    """Every file holds a staging block while it fills it: with more layers than the
    pool's minimum of blocks, the pool grows (smaller blocks) instead of deadlocking."""
    names = [n for n in dnnrsa.layer_names(net) if n != "pixels"][:2 * _cache._POOL_BLOCKS]
    assert len(names) > _cache._POOL_BLOCKS
    ref = _extract(net, toy_stimuli, layers=names)
    got = _extract(net, toy_stimuli, layers=names, cache_dir=tmp_path)
    for name in names:
        np.testing.assert_array_equal(got[name].data, ref[name].data)
    pool = _cache.WritePool(len(names))
    assert pool.block_size % _cache._ALIGN == 0 and pool.block_size >= 1 << 20
    pool.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_extraction_into_the_cache_matches_cpu(net, toy_stimuli, tmp_path):
    cpu = _extract(net, toy_stimuli, layers=["dense2"])["dense2"]
    gpu = _extract(net, toy_stimuli, layers=["dense2"], device="cuda", cache_dir=tmp_path,
                   dtype="float16")["dense2"]
    np.testing.assert_allclose(gpu.data.astype(np.float32), cpu.data, rtol=2e-3,
                               atol=2e-3 * np.abs(cpu.data).max())
    assert next(net.parameters()).device.type == "cpu"
