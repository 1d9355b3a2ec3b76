"""The cache of finished units of reproduce(): exact round trip, hits that do no work,
misses on any change, and files that are complete or ignored."""

import json
import logging

import numpy as np
import pandas as pd
import pytest

import dnnrsa
from dnnrsa import zoo
from dnnrsa._utils import torch_seed
from dnnrsa.study import _sweep
from dnnrsa.study._unit_cache import UnitCache, unit_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def faces():
    return dnnrsa.datasets.synthetic_faces(n_identities=6, expressions=("HA", "NE", "SU"),
                                           sessions=("A",), size=32)


def _kw(faces, home, **extra):
    kw = dict(networks=("untrained",), seeds=2, layers=("conv1", "dense3"), quick=True,
              readout="paper", readout_epochs=1, stimuli=faces, device="cpu",
              progress=False, n_jobs=1, home=home)
    return {**kw, **extra}


class _Counter:
    """decode_grid that counts the networks it decodes (and can refuse one)."""

    def __init__(self, refuse=None):
        self.calls, self.refuse = [], refuse
        self.real = _Counter.real_decode_grid

    real_decode_grid = staticmethod(_sweep.decode_grid)

    def __call__(self, acts, **kw):
        self.calls.append(kw["network"])
        if kw["network"] == self.refuse:
            raise RuntimeError(f"{self.refuse} broke midway")
        return self.real(acts, **kw)


def _refuse(*args, **kwargs):
    raise AssertionError("a cached unit was computed again")


def _units(home):
    return sorted((home / "cache" / "units").iterdir())


def test_tables_round_trip_exactly(faces, tmp_path):
    frame = pd.DataFrame({
        "network": ["a", "b", "c"],
        "seed": pd.Series([0, 1, None], dtype=object),
        "fold": np.arange(3, dtype=np.int64),
        "accuracy": [1 / 3, np.nan, 0.1 + 0.2],
        "small": np.array([1.5, -2.25, 1e-30], dtype=np.float32),
        "flag": [True, False, True],
        "held_out": pd.Categorical(["S", "HL", "HR"], categories=["HL", "S", "HR"],
                                   ordered=True),
        "region": [None, None, None],
    })
    cache = UnitCache(tmp_path, faces)
    config = unit_config("pixels", targets=["identity"], readout="linear", readout_epochs=1)
    assert cache.read(config) is None
    path = cache.write(config, frames=[frame, frame.iloc[:1]], infos=[{"seed": 0}],
                       seen=["a warning"], weights_sha256={})
    assert path.parent == tmp_path / "cache" / "units" and path.name == cache.key(config) + ".json"
    hit = cache.read(config)
    pd.testing.assert_frame_equal(hit["frames"][0], frame, check_exact=True)
    pd.testing.assert_frame_equal(hit["frames"][1], frame.iloc[:1], check_exact=True)
    assert hit["infos"] == [{"seed": 0}] and hit["seen"] == ["a warning"]
    # The key covers the configuration and the test faces.
    other = unit_config("pixels", targets=["identity"], readout="linear", readout_epochs=2)
    assert cache.key(other) != cache.key(config)
    assert UnitCache(tmp_path, faces[:-1]).key(config) != cache.key(config)


def test_a_rerun_does_no_work_and_gives_the_same_table(faces, tmp_path, monkeypatch):
    home = tmp_path / "home"
    first = dnnrsa.reproduce(**_kw(faces, home))
    assert len(_units(home)) == 2  # the network's unit and the pixel control
    with monkeypatch.context() as m:
        for name in ("train_variant", "load_model"):
            m.setattr(zoo, name, _refuse)
        m.setattr(_sweep, "decode_grid", _refuse)
        m.setattr(_sweep, "extract", _refuse)
        again = dnnrsa.reproduce(**_kw(faces, home))
        pd.testing.assert_frame_equal(first, again, check_exact=True)
        with pytest.raises(AssertionError, match="computed again"):  # cache=False reads none
            dnnrsa.reproduce(**_kw(faces, home, cache=False))
    fresh = tmp_path / "fresh"
    uncached = dnnrsa.reproduce(**_kw(faces, fresh, cache=False))
    assert not (fresh / "cache").exists()  # ... and writes none
    pd.testing.assert_frame_equal(first, uncached, check_exact=True)


def test_a_changed_setting_or_a_retrained_network_misses(faces, tmp_path, monkeypatch):
    home = tmp_path / "home"
    first = dnnrsa.reproduce(**_kw(faces, home))
    counter = _Counter()
    monkeypatch.setattr(_sweep, "decode_grid", counter)
    fewer = dnnrsa.reproduce(**_kw(faces, home, layers=("conv1",)))
    assert counter.calls == ["untrained"]  # another layer list: the network again (pixels hit)
    pd.testing.assert_frame_equal(
        fewer[fewer.network == "untrained"].reset_index(drop=True),
        first[(first.network == "untrained") & (first.layer == "conv1")].reset_index(drop=True))
    # Seed 1 retrained (other weights under the same recipe): its unit is computed again.
    spec = zoo.recipe("untrained", quick=True)
    arch = {k: v for k, v in spec["architecture"].items() if k != "architecture"}
    with torch_seed(1234):
        net = zoo.build("ccn2022", n_classes=7, **arch)
    net.dnnrsa_info = dict(seed=1, epoch=0, target=None, classes=None, data=None,
                           test_accuracy=None)
    path = zoo.checkpoint_path("untrained", 1, quick=True, home=home)
    old_sha = zoo.read_info(path)["weights_sha256"]
    zoo.save(net, path, variant="untrained", recipe=spec, recipe_key=zoo.recipe_key(spec))
    assert zoo.read_info(path)["weights_sha256"] != old_sha
    counter.calls.clear()
    retrained = dnnrsa.reproduce(**_kw(faces, home))
    assert counter.calls == ["untrained", "untrained"]  # conv1 and dense3, pixels from cache
    same = retrained.seed == 0
    pd.testing.assert_frame_equal(retrained[same], first[same])  # seed 0's weights unchanged
    with monkeypatch.context() as m:  # the numbers are the new network's
        m.setattr(_sweep, "decode_grid", _Counter.real_decode_grid)
        pd.testing.assert_frame_equal(retrained, dnnrsa.reproduce(**_kw(faces, home,
                                                                        cache=False)))
    # ... and the cache now vouches for the new weights: the next run is a hit.
    counter.calls.clear()
    pd.testing.assert_frame_equal(dnnrsa.reproduce(**_kw(faces, home)), retrained)
    assert counter.calls == []


def test_a_corrupt_or_truncated_file_is_ignored_and_recomputed(faces, tmp_path, monkeypatch,
                                                               caplog):
    home = tmp_path / "home"
    first = dnnrsa.reproduce(**_kw(faces, home))
    counter = _Counter()
    monkeypatch.setattr(_sweep, "decode_grid", counter)
    files = _units(home)
    whole = {f: f.read_bytes() for f in files}
    damaged = {
        "truncated": lambda b: b[: len(b) // 2],
        "empty": lambda b: b"",
        "altered": lambda b: b.replace(b"0.", b"9.", 1),  # still JSON; checksum differs
        "not ours": lambda b: json.dumps({"payload": "{}", "sha256": "0"}).encode(),
    }
    for what, damage in damaged.items():
        for f in files:
            f.write_bytes(damage(whole[f]))
        counter.calls.clear()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dnnrsa"):
            again = dnnrsa.reproduce(**_kw(faces, home))
        pd.testing.assert_frame_equal(first, again, check_exact=True)
        assert sorted(counter.calls) == ["pixels", "untrained", "untrained"], what
        warned = [r.getMessage() for r in caplog.records]
        assert sum("Ignoring the unit cache file" in w for w in warned) == 2, (what, warned)
        assert [f.read_bytes() for f in files] == [whole[f] for f in files]  # rewritten whole


def test_a_unit_that_breaks_midway_leaves_only_complete_files(faces, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setattr(_sweep, "decode_grid", _Counter(refuse="pixels"))
    with pytest.raises(RuntimeError, match="pixels broke midway"):
        dnnrsa.reproduce(**_kw(faces, home))
    files = _units(home)
    assert len(files) == 1 and files[0].suffix == ".json"  # the network's unit, whole
    monkeypatch.setattr(_sweep, "decode_grid", _Counter(refuse="untrained"))
    done = dnnrsa.reproduce(**_kw(faces, home))  # the network is not decoded again
    assert set(done.network) == {"untrained", "pixels"}
    assert len(_units(home)) == 2
    # A write that fails midway (disk full) leaves no temporary and the run goes on.
    import dnnrsa.study._unit_cache as unit_cache

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_sweep, "decode_grid", _Counter())
    monkeypatch.setattr(unit_cache.os, "fsync", full_disk)
    res = dnnrsa.reproduce(**_kw(faces, home, layers=("dense3",)))
    assert set(res.layer) == {"dense3", "pixels"}
    assert len(_units(home)) == 2 and all(f.suffix == ".json" for f in _units(home))


def test_concurrent_writers_of_one_key_never_show_a_part(faces, tmp_path, caplog):
    """Each writer renames its own complete temporary into place: a reader meanwhile sees
    no file or a whole one, never a warning."""
    from concurrent.futures import ThreadPoolExecutor

    frame = pd.DataFrame({"network": ["x"] * 200, "accuracy": np.linspace(0, 1, 200)})
    cache = UnitCache(tmp_path, faces)
    config = unit_config("pixels", targets=["identity"], readout="paper", readout_epochs=1)

    def write(_):
        for _ in range(20):
            cache.write(config, frames=[frame], infos=[], seen=[], weights_sha256={})

    def read(_):
        seen = []
        for _ in range(200):
            hit = cache.read(config)
            if hit is not None:
                pd.testing.assert_frame_equal(hit["frames"][0], frame, check_exact=True)
                seen.append(True)
        return seen

    with caplog.at_level(logging.WARNING, logger="dnnrsa"):
        with ThreadPoolExecutor(4) as pool:
            jobs = [pool.submit(write, i) for i in range(3)] + [pool.submit(read, 0)]
            for job in jobs:
                job.result()
    assert not caplog.records
    assert [p.name for p in _units(tmp_path)] == [cache.key(config) + ".json"]
