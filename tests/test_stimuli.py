import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dnnrsa import StimulusSet


def test_indexing_masks_and_subset(toy_stimuli):
    img, row = toy_stimuli[0]
    assert img.shape == (1, 32, 32) and row["identity"] == "F01"
    sub = toy_stimuli[toy_stimuli.metadata.expression.to_numpy() == "HA"]
    assert len(sub) == 12 and set(sub.metadata.expression) == {"HA"}
    assert sub.metadata.index.tolist() == list(range(12))
    np.testing.assert_array_equal(toy_stimuli[2:5].images, toy_stimuli.images[2:5])
    both = toy_stimuli.subset(viewpoint=("HL", "HR"), identity="F02")
    assert len(both) == 4 and set(both.metadata.viewpoint) == {"HL", "HR"}
    assert toy_stimuli.classes("viewpoint") == ["HL", "S", "HR"]  # categorical order
    assert toy_stimuli.labels("viewpoint")[:3].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"Unknown value\(s\) \['FL'\] for factor viewpoint"):
        toy_stimuli.subset(viewpoint="FL")
    with pytest.raises(ValueError, match=r"Unknown value 'pose' for argument factor"):
        toy_stimuli.subset(pose="S")


def test_bad_images_are_rejected(rng):
    meta = pd.DataFrame({"identity": ["a", "b"]})
    with pytest.raises(ValueError, match=r"images\[:, None\]"):
        StimulusSet(rng.random((2, 8, 8)), meta)
    with pytest.raises(ValueError, match="metadata has 2 rows"):
        StimulusSet(rng.random((3, 1, 8, 8)), meta)
    bad = rng.random((2, 1, 8, 8))
    bad[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        StimulusSet(bad, meta)


def test_from_table_any_size_rgb_or_gray(tmp_path, rng):
    rgb = (rng.random((70, 50, 3)) * 255).astype(np.uint8)
    gray = (rng.random((30, 90)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(gray).save(tmp_path / "b.jpg", quality=95)
    pd.DataFrame({"path": ["a.png", "b.jpg"], "identity": ["x", "y"]}).to_csv(
        tmp_path / "faces.csv", index=False)
    stim = StimulusSet.from_table(tmp_path / "faces.csv")
    assert stim.shape == (1, 48, 48) and stim.name == "faces"
    assert stim.factors == ["identity"]
    with Image.open(tmp_path / "a.png") as im:
        ref = np.asarray(im.convert("L").resize((48, 48), Image.BILINEAR), dtype=np.float32) / 255
    np.testing.assert_allclose(stim.images[0, 0], ref, atol=1.5 / 255)
    assert 0 <= stim.images.min() and stim.images.max() <= 1


def test_from_table_names_missing_and_broken_files(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    table = pd.DataFrame({"path": ["missing.png"], "identity": ["x"]})
    with pytest.raises(FileNotFoundError, match="missing.png"):
        StimulusSet.from_table(table, tmp_path)
    table = pd.DataFrame({"path": ["broken.png"], "identity": ["x"]})
    with pytest.raises(ValueError, match="broken.png"):
        StimulusSet.from_table(table, tmp_path)
    with pytest.raises(ValueError, match="'path' column"):
        StimulusSet.from_table(pd.DataFrame({"file": ["a.png"]}), tmp_path)


def test_pixel_values_outside_unit_range_are_refused_with_the_fix(rng):
    """The review's defect: 0-255 floats were accepted, and a trained network then read out
    at chance with no warning."""
    meta = pd.DataFrame({"identity": ["a", "b"]})
    raw = rng.integers(0, 256, (2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"from 0 to 25\d.*divide by 255.*uint8"):
        StimulusSet(raw.astype(np.float32), meta)
    with pytest.raises(ValueError, match=r"in \[0, 1\], got values from -0.4\d+ .*Rescale"):
        StimulusSet(rng.random((2, 1, 8, 8)) - 0.5, meta)
    with pytest.raises(TypeError, match="numeric"):
        StimulusSet(np.full((2, 1, 2, 2), "x"), meta)
    as_uint8 = StimulusSet(raw.astype(np.uint8), meta)  # documented: divided by 255
    np.testing.assert_allclose(as_uint8.images, raw / 255.0, rtol=1e-6)
    assert as_uint8.images.dtype == np.float32
    exact = StimulusSet(np.array([0.0, 1.0]).reshape(2, 1, 1, 1), meta)  # the bounds are fine
    assert exact.images.max() == 1.0


def test_shared_factor_codes_refuse_missing_values_everywhere():
    from dnnrsa._metadata import factor_codes, factor_levels

    col = pd.Series(["b", "a", None, "b"], name="identity")
    with pytest.raises(ValueError, match=r"'identity' .*missing for 1 of 4 observations"):
        factor_codes(col)
    with pytest.raises(ValueError, match="missing for 1 of 4"):
        StimulusSet(np.zeros((4, 1, 2, 2)), col.to_frame()).labels("identity")
    cat = pd.Series(pd.Categorical(["S", "HL", "HR"], categories=["HL", "S", "HR", "FR"]))
    assert factor_levels(cat) == ["HL", "S", "HR"]  # the category order, present levels
    np.testing.assert_array_equal(factor_codes(cat), [1, 0, 2])
    np.testing.assert_array_equal(factor_codes(pd.Series([3, 1, 3])), [1, 0, 1])
    with pytest.raises(ValueError, match=r"value\(s\) \['c'\] that are not among"):
        factor_codes(pd.Series(["a", "c"]), ["a", "b"])


def test_stimuli_and_activations_index_alike(toy_stimuli):
    from dnnrsa import Activations

    acts = Activations(toy_stimuli.images.reshape(len(toy_stimuli), -1), toy_stimuli.metadata)
    for key in (slice(1, 5), np.array([3, 0]), toy_stimuli.metadata.expression.eq("HA").to_numpy()):
        np.testing.assert_array_equal(acts[key].X, toy_stimuli[key].images.reshape(-1, 1024))
        pd.testing.assert_frame_equal(acts[key].metadata, toy_stimuli[key].metadata)
    for bad in (np.array([0.5]), np.array([99]), np.ones(3, bool)):
        with pytest.raises(IndexError):
            acts[bad]
        with pytest.raises(IndexError):
            toy_stimuli[bad]
    assert acts.factors == toy_stimuli.factors
