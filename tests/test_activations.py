import numpy as np
import pandas as pd
import pytest
from rsatoolbox.rdm import calc_rdm

from dnnrsa import Activations


@pytest.fixture
def acts(rng):
    meta = pd.DataFrame({
        "identity": ["F01", "F01", "M02", "M02", "F03", "F03"],
        "viewpoint": pd.Categorical(["S", "HL", "S", "HL", "S", "HL"], categories=["HL", "S", "HR"]),
        "run": [1, 2, 1, 2, 1, 2],
    })
    return Activations(rng.normal(size=(6, 3, 2, 2)).astype(np.float32), meta,
                       {"model": "expression", "seed": 3, "layer": "dense3"})


def test_flat_view_and_arrays(acts):
    assert acts.shape == (3, 2, 2) and acts.n_features == 12
    assert np.shares_memory(acts.X, acts.data)
    X, y, g = acts.to_arrays("identity", groups="viewpoint")
    assert X.shape == (6, 12)
    assert y.tolist() == [0, 0, 2, 2, 1, 1]  # sorted levels F01, F03, M02
    assert g.tolist() == [1, 0, 1, 0, 1, 0]  # categorical order HL, S
    with pytest.raises(ValueError, match=r"Unknown value 'expression' for argument target.*identity"):
        acts.to_arrays("expression")


def test_rsatoolbox_round_trip_gives_the_same_rdm(acts):
    ds = acts.to_rsatoolbox()
    np.testing.assert_array_equal(ds.measurements, acts.X.astype(np.float64))
    assert list(ds.obs_descriptors["identity"]) == acts.metadata["identity"].tolist()
    assert ds.descriptors["layer"] == "dense3" and ds.descriptors["seed"] == 3
    rdm = calc_rdm(ds, method="euclidean", descriptor="identity")
    # brute force: mean squared difference per feature between identity means
    means = {k: acts.X[acts.metadata.identity == k].mean(0) for k in ["F01", "F03", "M02"]}
    expect = np.mean((means["F01"] - means["M02"]) ** 2)
    labels = list(rdm.pattern_descriptors["identity"])
    i, j = labels.index("F01"), labels.index("M02")
    assert rdm.get_matrices()[0][i, j] == pytest.approx(expect, rel=1e-6)


def test_save_load_keeps_everything(acts, tmp_path):
    path = acts.save(tmp_path / "dense3.safetensors")
    for mmap in (False, True):
        back = Activations.load(path, mmap=mmap)
        np.testing.assert_array_equal(back.data, acts.data)
        assert back.data.dtype == np.float32
        assert isinstance(back.data, np.memmap) == mmap
        pd.testing.assert_frame_equal(back.metadata, acts.metadata)
        assert list(back.metadata.viewpoint.cat.categories) == ["HL", "S", "HR"]
        assert back.provenance == acts.provenance
    assert not list(tmp_path.glob("*.partial"))


def test_failed_save_leaves_nothing(acts, tmp_path):
    with pytest.raises(TypeError, match="provenance must hold JSON-serialisable"):
        Activations(acts.data, acts.metadata, {"layer": object()})
    bad = Activations(acts.data, acts.metadata, {})
    bad.provenance["layer"] = object()  # set after construction: save still refuses it
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        bad.save(tmp_path / "sub" / "x.safetensors")
    assert list((tmp_path / "sub").iterdir()) == []


def test_load_rejects_other_files(tmp_path):
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, dtype=np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not an activations file"):
        Activations.load(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError, match="no activations file"):
        Activations.load(tmp_path / "missing.safetensors")


def test_brain_data_enter_through_from_arrays(rng):
    meta = pd.DataFrame({"identity": list("abab"), "run": [1, 1, 2, 2]})
    roi = Activations.from_arrays(rng.normal(size=(4, 50)), meta, region="FFA", subject="s01")
    assert roi.shape == (50,) and roi.provenance == {"region": "FFA", "subject": "s01"}
    sub = roi[roi.metadata.run.to_numpy() == 2]
    assert len(sub) == 2 and sub.metadata.index.tolist() == [0, 1]
    np.testing.assert_array_equal(sub.X, roi.X[2:])
    with pytest.raises(ValueError, match=r"shape \(n_obs, n_channels\)"):
        Activations.from_arrays(rng.normal(size=(4, 5, 2)), meta)
    with pytest.raises(ValueError, match="4 rows"):
        Activations.from_arrays(rng.normal(size=(3, 5)), meta)
