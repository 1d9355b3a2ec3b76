import os

import numpy as np
import pandas as pd
import pytest
import torch

# Two pytest-xdist workers share two cores: one torch thread and one BLAS thread each
# avoids oversubscription, which made nilearn's GLM fits 10-50 times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty models folder, so no test sees the user's ~/.cache/dnnrsa."""
    path = tmp_path / "dnnrsa_home"
    monkeypatch.setenv("DNNRSA_HOME", str(path))
    return path


@pytest.fixture
def toy_stimuli(rng):
    """4 identities x 2 expressions x 3 viewpoints of random 32 x 32 images."""
    from dnnrsa import StimulusSet

    rows = [
        dict(identity=f"F0{i}", expression=e, viewpoint=v)
        for i in range(1, 5)
        for e in ("HA", "SA")
        for v in ("HL", "S", "HR")
    ]
    meta = pd.DataFrame(rows)
    meta["viewpoint"] = pd.Categorical(meta["viewpoint"], categories=["HL", "S", "HR"])
    return StimulusSet(rng.random((len(meta), 1, 32, 32)), meta, name="toy")


@pytest.fixture
def one_torch_thread():
    """One torch and BLAS thread: tiny networks and readouts run many small parallel
    regions, which a second thread slows up to tenfold when another process holds a core
    (measured on this 2-core machine: 1.5 s vs 24 s). Modules that train use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_training_data(monkeypatch, rng):
    """14 training images for every variant of the zoo (train_variant's data), so that a
    quick recipe's epochs take a fraction of a second."""
    import pandas as pd

    import dnnrsa
    from dnnrsa import zoo

    x = rng.random((14, 1, 32, 32)).astype(np.float32)
    tiny = dnnrsa.StimulusSet(x, pd.DataFrame({"expression": list("abcdefg") * 2}),
                              name="tiny")
    monkeypatch.setattr(zoo._registry, "training_data", lambda *a, **k: (tiny, tiny))
    return tiny
