"""RDMs of memory-mapped activations, accumulated chunk by chunk: the same numbers as the
in-memory path (itself checked against rsatoolbox in test_rsa.py), with a memory budget
forced so small that many blocks of columns and chunks of rows run."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from rsatoolbox.data import Dataset
from rsatoolbox.rdm import calc_rdm

import dnnrsa
from dnnrsa import Activations, Residuals, zoo
from dnnrsa.rsa import _rdm as rdm_module
from dnnrsa.rsa import _stream, rdm
from dnnrsa.rsa._backend import TorchOps

COND = ("identity", "expression")
TINY = 3000  # bytes: blocks of a few columns, chunks of a few dozen rows


def _design(n_id=4, n_expr=3, views=("HL", "S", "HR")):
    rows = [dict(identity=f"F{i:02d}", expression=f"E{e}", viewpoint=v)
            for i in range(n_id) for e in range(n_expr) for v in views]
    return pd.DataFrame(rows)


def _mapped(tmp_path, X, meta, name="x", **kw):
    """The same data in memory and as a read-only memmap of a .npy file."""
    path = tmp_path / f"{name}.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    return Activations(np.array(mm), meta, **kw), Activations(mm, meta, **kw)


@pytest.fixture
def reads(monkeypatch):
    """Force the tiny budget and record every (rows, columns) chunk the stream reads."""
    monkeypatch.setattr(_stream, "CHUNK_BYTES", TINY)
    log = []
    original = _stream._read

    def spy(X, r0, r1, c0, c1, ops, mm):
        log.append((r0, r1, c0, c1))
        return original(X, r0, r1, c0, c1, ops, mm)

    monkeypatch.setattr(_stream, "_read", spy)
    return log


def _same(a, b, rtol=1e-10, skip=()):
    va, vb = a.get_vectors(), b.get_vectors()
    assert va.shape == vb.shape
    np.testing.assert_allclose(vb, va, rtol=rtol, atol=rtol * np.abs(va).max())
    assert {k: v for k, v in a.descriptors.items() if k not in skip} == {
        k: v for k, v in b.descriptors.items() if k not in skip}
    for k, v in a.pattern_descriptors.items():
        np.testing.assert_array_equal(np.asarray(b.pattern_descriptors[k]), np.asarray(v))


def _data(rng, meta, n_feat, offset=5.0, repeats=True):
    """Correlated responses with a large common offset; with ``repeats`` some observations
    are measured again (with noise), so conditions average unequal counts."""
    X = rng.normal(size=(len(meta), n_feat)) @ (np.eye(n_feat) + 0.3 * rng.normal(
        size=(n_feat, n_feat))) + offset + rng.normal(size=(1, n_feat))
    if repeats:
        idx = np.concatenate([np.arange(len(meta)), [0, 0, 4, 13, 30]])
        meta = meta.iloc[idx].reset_index(drop=True)
        X = X[idx] + 0.1 * rng.normal(size=(len(idx), n_feat))
    return meta, X.astype(np.float32)


CASES = [
    ("euclidean", {}),
    ("correlation", {}),
    ("poisson", {}),
    ("mahalanobis", {}),
    ("mahalanobis", {"noise": "diag"}),
    ("mahalanobis", {"noise": "diagonal"}),
    ("mahalanobis", {"noise": "matrix"}),
    ("crossnobis", {"cv": "viewpoint"}),
    ("crossnobis", {"cv": "viewpoint", "noise": "diag"}),
    ("crossnobis", {"cv": "viewpoint", "noise": "diagonal"}),
    ("crossnobis", {"cv": "viewpoint", "noise": "matrix"}),
]


def _noise(kw, rng, n_feat):
    kw = dict(kw)
    if kw.get("noise") == "diagonal":
        kw["noise"] = rng.uniform(0.5, 2.0, n_feat)
    elif kw.get("noise") == "matrix":
        A = rng.normal(size=(n_feat, n_feat))
        kw["noise"] = A @ A.T / n_feat + np.eye(n_feat)
    return kw


@pytest.mark.parametrize("repeats", [False, True])
@pytest.mark.parametrize("method,kw", CASES)
def test_streamed_rdm_equals_the_in_memory_rdm(rng, tmp_path, reads, method, kw, repeats):
    meta, X = _data(rng, _design(), 30, repeats=repeats)
    if method == "poisson":
        X = np.abs(X)
    kw = _noise(kw, rng, X.shape[1])
    mem, mm = _mapped(tmp_path, X, meta, provenance={"layer": "L", "seed": 3})
    ref = rdm(mem, method=method, conditions=COND, **kw)
    assert reads == []  # in memory: nothing streamed
    ours = rdm(mm, method=method, conditions=COND, **kw)
    _same(ref, ours)
    assert ours.rdm_descriptors["layer"] == ["L"]
    blocks = {(c0, c1) for _, _, c0, c1 in reads}
    chunks = {(r0, r1) for r0, r1, _, _ in reads}
    noise = kw.get("noise")
    if noise is not None and not isinstance(noise, str) and np.ndim(noise) == 2:
        assert blocks == {(0, 30)}  # a full precision couples all features: full width
    else:
        assert len(blocks) >= 3
    assert len(reads) >= 3 and (len(blocks) > 1 or len(chunks) > 1)
    itemsize = 8 + X.itemsize
    assert max((r1 - r0) * (c1 - c0) * itemsize for r0, r1, c0, c1 in reads) <= max(
        TINY // 2, 30 * itemsize)


@pytest.mark.parametrize("method", ["euclidean", "correlation"])
def test_every_observation_its_own_condition(rng, tmp_path, reads, method):
    meta, X = _data(rng, _design(2, 2), 20, repeats=False)
    mem, mm = _mapped(tmp_path, X, meta)
    _same(rdm(mem, method=method, conditions=None), rdm(mm, method=method, conditions=None))
    assert len({(c0, c1) for *_, c0, c1 in reads}) >= 3


def test_streamed_rdm_equals_rsatoolbox(rng, tmp_path, reads):
    meta, X = _data(rng, _design(), 25)
    _, mm = _mapped(tmp_path, X, meta)
    cond = (meta["identity"] + "|" + meta["expression"]).to_numpy()
    ds = Dataset(X.astype(np.float64), obs_descriptors={"cond": cond,
                                                        "viewpoint": meta["viewpoint"].to_numpy()})
    for method, kw, rkw in [("euclidean", {}, {}), ("correlation", {}, {}),
                            ("crossnobis", {"cv": "viewpoint"}, {"cv_descriptor": "viewpoint"})]:
        ref = calc_rdm(ds, method=method, descriptor="cond", **rkw).get_vectors()
        ours = rdm(mm, method=method, conditions=COND, **kw).get_vectors()
        np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())


def test_glm_residuals_noise_is_streamed(rng, tmp_path, reads):
    meta, X = _data(rng, _design(3, 2), 16, repeats=False)
    res = Residuals(rng.normal(size=(40, 16)) @ (np.eye(16) + 0.4 * rng.normal(size=(16, 16))),
                    35)
    path = tmp_path / "x.npy"
    np.save(path, X)
    mem = Activations(X, meta, residuals=res)
    mm = Activations(np.load(path, mmap_mode="r"), meta, residuals=res)
    for method, kw in [("mahalanobis", {}), ("crossnobis", {"cv": "viewpoint"})]:
        _same(rdm(mem, method=method, conditions=COND, noise="residuals", **kw),
              rdm(mm, method=method, conditions=COND, noise="residuals", **kw))


def test_a_list_of_mapped_layers_and_the_saved_format(rng, tmp_path, reads):
    meta, X = _data(rng, _design(), 12)
    mem, mm = _mapped(tmp_path, X, meta, provenance={"seed": 0})
    saved = Activations(X, meta, {"seed": 1}).save(tmp_path / "acts.safetensors")
    loaded = Activations.load(saved, mmap=True)
    assert _stream.is_mapped(loaded.X)
    ours = rdm([mm, loaded], method="correlation", conditions=COND)
    ref = rdm([mem, Activations(X, meta, {"seed": 1})], method="correlation", conditions=COND)
    _same(ref, ours)
    assert ours.rdm_descriptors["seed"] == [0, 1]
    assert not _stream.is_mapped(mm[:3].X)  # a row subset is an in-memory copy
    # a copy-on-write map is streamed, but its pages are never released (that could drop
    # the user's edits)
    cow = np.load(tmp_path / "x.npy", mmap_mode="c")
    assert _stream._mapping(cow) == (True, None)
    assert _stream._mapping(np.asarray(mm.X))[0] and not _stream.is_mapped(np.array(mm.X))


def test_a_cached_layer_gives_the_rdm_of_the_in_memory_layer(toy_stimuli, tmp_path, reads):
    torch.manual_seed(0)
    net = zoo.build("ccn2022", n_classes=7, growth=4, input_size=32)
    mem = dnnrsa.extract(net, toy_stimuli, ["dense2"], device="cpu")["dense2"]
    mm = dnnrsa.extract(net, toy_stimuli, ["dense2"], device="cpu",
                        cache_dir=tmp_path)["dense2"]
    for method, kw in [("correlation", {}), ("crossnobis", {"cv": "viewpoint"})]:
        _same(rdm(mem, method=method, conditions=COND, **kw),
              rdm(mm, method=method, conditions=COND, **kw), rtol=1e-9, skip=("cache",))
    assert len({(c0, c1) for *_, c0, c1 in reads}) > 100


@pytest.mark.parametrize("method,kw", [("euclidean", {}), ("correlation", {}),
                                       ("crossnobis", {"cv": "viewpoint", "noise": "diag"}),
                                       ("mahalanobis", {"noise": "diag"})])
def test_torch_backend_streams_the_same_numbers(rng, tmp_path, reads, monkeypatch, method, kw):
    """The torch kernels (those of a CUDA device) run on the CPU here."""
    meta, X = _data(rng, _design(), 20)
    _, mm = _mapped(tmp_path, X, meta)
    a = rdm(mm, method=method, conditions=COND, device="cpu", **kw)
    monkeypatch.setattr(rdm_module, "get_ops", lambda device: TorchOps(torch.device("cpu")))
    _same(a, rdm(mm, method=method, conditions=COND, **kw))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_streamed_rdm_equals_cpu(rng, tmp_path, reads):
    meta, X = _data(rng, _design(), 20)
    _, mm = _mapped(tmp_path, X, meta)
    for method, kw in [("correlation", {}), ("crossnobis", {"cv": "viewpoint"})]:
        _same(rdm(mm, method=method, conditions=COND, device="cpu", **kw),
              rdm(mm, method=method, conditions=COND, device="cuda", **kw), rtol=1e-9)


@pytest.mark.parametrize("noise", ["shrinkage", "shrinkage_eye", "shrinkage_diag"])
@pytest.mark.parametrize("method", ["mahalanobis", "crossnobis"])
def test_estimates_from_all_residuals_are_refused_before_reading(rng, tmp_path, reads,
                                                                 method, noise):
    meta, X = _data(rng, _design(), 10)
    _, mm = _mapped(tmp_path, X, meta)
    cv = "viewpoint" if method == "crossnobis" else None
    with pytest.raises(ValueError, match=rf"noise='{noise}' with method='{method}' .*needs "
                                         r"the data in memory.*noise='diag'.*acts\[:\]"):
        rdm(mm, method=method, conditions=COND, cv=cv, noise=noise)
    assert reads == []
    rdm(mm[:], method=method, conditions=COND, cv=cv, noise=noise)  # the in-memory copy


def test_streamed_errors_name_the_problem(rng, tmp_path, reads):
    meta, X = _data(rng, _design(), 10, repeats=False)
    X[:, 4] = 1.0  # a unit with the same response everywhere: no residual variance
    _, mm = _mapped(tmp_path, X, meta)
    with pytest.raises(ValueError, match=r"noise='diag' .*features 4 have zero residual"):
        rdm(mm, method="mahalanobis", conditions=COND, noise="diag")
    with pytest.raises(ValueError, match="no residual degrees of freedom"):
        rdm(mm, method="mahalanobis", conditions=None, noise="diag")
    with pytest.raises(ValueError, match="Unknown value 'bogus' for argument noise"):
        rdm(mm, method="mahalanobis", conditions=COND, noise="bogus")
    _, negative = _mapped(tmp_path, X - 20, meta, name="negative")
    with pytest.raises(ValueError, match="method='poisson' needs non-negative"):
        rdm(negative, method="poisson", conditions=COND)
    Y = X.copy()
    Y[3, 2] = np.nan
    _, bad = _mapped(tmp_path, Y, meta, name="nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        rdm(bad, method="euclidean", conditions=COND)
    flat = np.ones_like(X)
    _, const = _mapped(tmp_path, flat, meta, name="flat")
    with pytest.raises(ValueError, match="correlation' is undefined"):
        rdm(const, method="correlation", conditions=COND)


_RSS_SCRIPT = r"""
import json, sys
import numpy as np, pandas as pd
from dnnrsa import Activations
from dnnrsa.rsa import _stream, rdm

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

path, release = sys.argv[1], sys.argv[2] == "1"
_stream.CHUNK_BYTES = 8 * 2**20
if not release:
    _stream._release = lambda mm: None
X = np.load(path, mmap_mode="r")
meta = pd.DataFrame({"identity": np.arange(X.shape[0]) % 8})
acts = Activations(X, meta)
small = Activations(np.random.default_rng(0).random((16, 4)), meta.iloc[:16])
rdm(small, method="correlation", conditions="identity", device="cpu")  # imports
before = status("VmRSS")
rdm(acts, method="correlation", conditions="identity", device="cpu")
print(json.dumps({"before": before, "peak": status("VmHWM")}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_pages_read_do_not_pile_up_in_resident_memory(tmp_path):
    """A 128 MB layer streamed with a budget of 8 MB: the high-water mark of the process
    stays far below the file's size (the mapped pages are released as the chunks go);
    without the release it would grow by the size of the file."""
    X = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32,
                                  shape=(1024, 32768))
    for r in range(0, 1024, 128):
        X[r:r + 128] = np.random.default_rng(r).random((128, 32768), dtype=np.float32)
    X.flush()
    del X
    out = {}
    for release in ("1", "0"):
        done = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(tmp_path / "big.npy"),
                               release], capture_output=True, text=True, check=True)
        out[release] = json.loads(done.stdout.strip().splitlines()[-1])
    grown = out["1"]["peak"] - out["1"]["before"]
    assert grown < 48, out  # MB: the budget and the sums, not the 128 MB file
    assert out["0"]["peak"] - out["0"]["before"] > 100, out  # the release is what does it
