"""Units of work on a real Dask cluster (dnnrsa._executor) and reproduce(scheduler=...)."""

import os
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dnnrsa
from dnnrsa import zoo
from dnnrsa._executor import UnitError, check_scheduler, dask_client, run_units
from dnnrsa._utils import torch_seed

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")
# Worker processes cannot import this file by name: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster, set_as_default=False) as c:
            yield c


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _power(x, *, exponent):
    return x**exponent, os.getpid()


def _die_once(x, *, marker_dir):
    """Unit 2 kills its own worker process the first time it runs."""
    marker = Path(marker_dir) / f"unit{x}.started"
    if x == 2 and not marker.exists():
        marker.write_text("about to die")
        os.kill(os.getpid(), signal.SIGKILL)
    return x * 10


def _fail_on_three(x):
    if x == 3:
        raise ArithmeticError(f"unit {x} cannot")
    return x


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _n_clients(client) -> int:
    return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.clients))


def test_executor_gives_the_same_results_serially_in_processes_and_on_dask(client):
    units = [(x,) for x in range(6)]
    shared = dict(exponent=3)
    serial = dict(run_units(_power, units, shared=shared))
    assert sorted(serial) == list(range(6))
    assert {v for v, _ in serial.values()} == {x**3 for x in range(6)}
    assert {pid for _, pid in serial.values()} == {os.getpid()}
    procs = dict(run_units(_power, units, shared=shared, n_jobs=2))
    dask = dict(run_units(_power, units, shared=shared, scheduler=client))
    for got in (procs, dask):
        assert sorted(got) == list(range(6))  # every unit once
        assert {i: v for i, (v, _) in got.items()} == {i: v for i, (v, _) in serial.items()}
        assert os.getpid() not in {pid for _, pid in got.values()}
    assert client.status == "running"  # a Client passed in is left open
    # A Client opened from the address is closed at the end.
    before = _n_clients(client)
    by_address = dict(run_units(_power, units, shared=shared,
                                scheduler=client.scheduler.address))
    assert {i: v for i, (v, _) in by_address.items()} == {i: v for i, (v, _) in serial.items()}
    deadline = time.monotonic() + 5
    while _n_clients(client) > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _n_clients(client) == before


def test_a_unit_whose_worker_dies_is_rerun_and_counted_once(client, tmp_path):
    pairs = list(run_units(_die_once, [(x,) for x in range(5)],
                           shared=dict(marker_dir=str(tmp_path)), scheduler=client))
    assert sorted(i for i, _ in pairs) == [0, 1, 2, 3, 4]  # none lost, none twice
    assert dict(pairs) == {x: 10 * x for x in range(5)}
    assert (tmp_path / "unit2.started").exists()  # it did die once
    client.wait_for_workers(2, timeout=30)  # the nanny restarts the killed worker


def test_a_unit_that_fails_is_an_error_naming_it(client):
    labels = [f"unit-{x}" for x in range(5)]
    with pytest.raises(UnitError, match=r"Unit unit-3 \(Dask key dnnrsa-unit-3-[0-9a-f]{16}\) "
                                        r"failed for good on the cluster: ArithmeticError: "
                                        "unit 3 cannot") as info:
        list(run_units(_fail_on_three, [(x,) for x in range(5)], labels=labels,
                       scheduler=client))
    assert info.value.label == "unit-3" and info.value.index == 3
    # Locally the unit's own exception comes through unchanged.
    with pytest.raises(ArithmeticError, match="unit 3 cannot"):
        list(run_units(_fail_on_three, [(x,) for x in range(5)]))


def test_bad_schedulers_are_refused_before_any_work(tmp_path, monkeypatch):
    home = tmp_path / "home"
    bad = [(42, TypeError, "Argument scheduler must be None .* got int"),
           ("localhost:8786", ValueError, "Unknown value 'localhost:8786' for argument "
                                          "scheduler. Valid values are None"),
           (str(tmp_path / "sched.json"), FileNotFoundError, "no scheduler file there"),
           (b"tcp://x:1", TypeError, "got bytes")]
    for value, kind, match in bad:
        with pytest.raises(kind, match=match):
            check_scheduler(value)
        with pytest.raises(kind, match=match):
            dnnrsa.reproduce(networks=("untrained",), seeds=1, quick=True, home=home,
                             scheduler=value, progress=False)
        with pytest.raises(kind, match=match):
            list(run_units(_power, [(1,)], shared=dict(exponent=2), scheduler=value))
    assert not home.exists()
    with pytest.raises(ValueError, match="Unknown value 'gpu' for argument device"):
        dnnrsa.reproduce(networks=("untrained",), seeds=1, quick=True, home=home,
                         scheduler="tcp://127.0.0.1:1", device="gpu", progress=False)
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "dnnrsa\[distributed\]"'):
        check_scheduler("tcp://127.0.0.1:8786")
    assert check_scheduler(None) is None  # the local path never imports distributed


def test_an_unreachable_scheduler_fails_fast_with_how_to_start_one(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    home = tmp_path / "home"
    start = time.monotonic()
    with pytest.raises(ValueError, match=rf"no Dask scheduler answered at {address}.*start one "
                                         r"with `dask scheduler` and workers with `dask worker "
                                         r"ADDRESS`, or pass scheduler=None"):
        dnnrsa.reproduce(networks=("untrained",), seeds=1, quick=True, home=home,
                         scheduler=address, progress=False)
    assert time.monotonic() - start < 20
    assert not home.exists()  # nothing trained, nothing written
    start = time.monotonic()
    with pytest.raises(ValueError, match="no Dask scheduler answered"):
        with dask_client(address, timeout=1):
            pass
    assert time.monotonic() - start < 8


def _fake_expression_networks(home, seeds):
    """Checkpoints the quick expression recipe would load, without training (a worker
    process does not see monkeypatches): initialised networks filed under that recipe."""
    spec = zoo.recipe("expression", quick=True)
    arch = {k: v for k, v in spec["architecture"].items() if k != "architecture"}
    for s in seeds:
        with torch_seed(100 + s):
            net = zoo.build("ccn2022", n_classes=7, **arch)
        net.dnnrsa_info = dict(seed=s, epoch=0, target="expression", classes=None, data=None,
                               test_accuracy=0.5)
        zoo.save(net, zoo.checkpoint_path("expression", s, quick=True, home=home),
                 variant="expression", recipe=spec, recipe_key=zoo.recipe_key(spec))


def test_reproduce_on_a_dask_cluster_equals_the_local_run(client, tmp_path, monkeypatch):
    home = tmp_path / "home"
    _fake_expression_networks(home, [0, 1])
    faces = dnnrsa.datasets.synthetic_faces(n_identities=6, expressions=("HA", "NE", "SU"),
                                            sessions=("A",), size=32)
    kw = dict(networks=("untrained", "expression"), seeds=2, layers=("conv1", "dense3"),
              quick=True, readout="paper", readout_epochs=1, stimuli=faces, home=home,
              progress=False)
    local = dnnrsa.reproduce(**kw, device="cpu", n_jobs=1, cache=False)
    assert not (home / "cache").exists()  # cache=False writes nothing
    # 2 networks x 2 seeds x 2 layers x 2 targets x 3 folds, plus pixels x 2 targets x 3
    assert len(local) == 48 + 6
    on_dask = dnnrsa.reproduce(**kw, device="auto", scheduler=client)
    pd.testing.assert_frame_equal(local, on_dask)
    # The cluster's units were filed in the cache: a local rerun computes nothing.
    assert len(list((home / "cache" / "units").glob("*.json"))) == 3
    monkeypatch.setattr(zoo, "train_variant", _refuse)
    monkeypatch.setattr(dnnrsa.study._sweep, "decode_grid", _refuse)
    again = dnnrsa.reproduce(**kw, device="cpu", n_jobs=1)
    pd.testing.assert_frame_equal(local, again)


def _refuse(*args, **kwargs):
    raise AssertionError("a cached unit was computed again")


def test_compare_to_brain_on_a_dask_cluster_equals_the_local_run(client):
    """One task per region; the table (values, bootstrap intervals, ceilings, tests
    against the best layer) equals the local one to the bit."""
    from dnnrsa import Activations, compare_to_brain

    rng = np.random.default_rng(3)
    meta = pd.DataFrame({"stim": [f"s{i}" for i in range(10)]})
    layers = {k: Activations(rng.normal(size=(10, 30)), meta, {"layer": k, "model": "net"})
              for k in ("a", "b")}

    def subject(sd):
        mix = rng.normal(size=(30, 20))
        return Activations(layers["b"].X @ mix + sd * rng.normal(size=(10, 20)), meta)

    brain = {"V1": [subject(1.0) for _ in range(4)], "FFA": [subject(3.0) for _ in range(4)]}
    opts = dict(conditions="stim", n_boot=50, seed=0)
    here = compare_to_brain(layers, brain, **opts)
    there = compare_to_brain(layers, brain, scheduler=client, **opts)
    pd.testing.assert_frame_equal(here, there)
    with pytest.raises(ValueError, match="seed is a numpy Generator"):
        compare_to_brain(layers, brain, conditions="stim", seed=np.random.default_rng(0),
                         scheduler=client)
