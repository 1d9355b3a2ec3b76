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
