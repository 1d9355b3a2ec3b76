"""`dnnrsa.neural.from_images`: images into Activations, checked against nilearn's
NiftiMasker and plain numpy indexing, round trips through `Activations.to_nifti`, and the
errors it promises."""

import logging
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.maskers import NiftiMasker
from scipy.stats import zscore

from dnnrsa import Activations
from dnnrsa.neural import from_images

SHAPE = (5, 6, 4)
AFFINE = np.array([[2.0, 0, 0, -10], [0, 2, 0, -12], [0, 0, 2.5, 3], [0, 0, 0, 1]])


@pytest.fixture
def volumes(rng):
    """12 observations on a 5 x 6 x 4 grid, float32, all voxels varying."""
    return (rng.normal(size=SHAPE + (12,)) * 3 + 50).astype(np.float32)


@pytest.fixture
def table():
    df = pd.DataFrame({"identity": list("abcd") * 3, "expression": ["HA", "SA"] * 6,
                       "run": np.repeat([1, 2, 3], 4)})
    df.index = np.arange(100, 112)  # a caller's index is not kept
    return df


@pytest.fixture
def mask():
    m = np.zeros(SHAPE, np.uint8)
    m[1:4, 1:5, 1:3] = 1
    m[0, 0, 0] = 1
    return m


def _img(data, affine=AFFINE):
    return nib.Nifti1Image(data, affine)


def _atlas():
    a = np.zeros(SHAPE, np.int16)
    a[:2, :, :2] = 3
    a[2:, :3, :] = 7
    a[2:, 3:, 1:] = 12
    return a


def test_columns_are_niftimasker_columns(volumes, table, mask):
    img, mimg = _img(volumes), _img(mask)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FutureWarning about boolean standardize
        acts = from_images(img, table, mask=mimg)
    reference = NiftiMasker(mask_img=mimg, standardize=None).fit_transform(img)
    np.testing.assert_array_equal(acts.X, reference)
    np.testing.assert_array_equal(acts.X, volumes[mask.astype(bool)].T)
    assert acts.X.dtype == np.float32
    pd.testing.assert_frame_equal(acts.metadata, table.reset_index(drop=True))
    np.testing.assert_array_equal(np.asanyarray(acts.mask.dataobj), mask)
    assert acts.mask.get_data_dtype() == np.uint8 and np.allclose(acts.mask.affine, AFFINE)
    assert acts.provenance == {
        "region": "mask", "mask": "in-memory image", "atlas": None,
        "images": "in-memory images", "standardize": False, "n_voxels": int(mask.sum()),
        "n_dropped": 0, "source": "from_images",
    }


def test_list_of_3d_files_and_tsv_table(volumes, table, mask, tmp_path):
    paths = []
    for i in range(volumes.shape[3]):
        paths.append(tmp_path / f"beta_{i:02d}.nii.gz")
        nib.save(_img(volumes[..., i]), paths[-1])
    nib.save(_img(mask), tmp_path / "lh_FFA.nii.gz")
    tsv = table.assign(note=["NA", "n/a"] * 6)
    (tmp_path / "events.tsv").write_text(tsv.to_csv(sep="\t", index=False))
    acts = from_images(paths, tmp_path / "events.tsv", mask=tmp_path / "lh_FFA.nii.gz")
    np.testing.assert_array_equal(acts.X, volumes[mask.astype(bool)].T)
    assert acts.X.dtype == np.float32
    # BIDS: only "n/a" is missing; "NA" is text
    assert acts.metadata["note"].iloc[0] == "NA" and acts.metadata["note"].isna().sum() == 6
    assert acts.metadata["run"].tolist() == table["run"].tolist()
    assert acts.provenance["images"] == [str(p) for p in paths]
    assert acts.provenance["region"] == "lh_FFA"
    assert acts.provenance["mask"] == str(tmp_path / "lh_FFA.nii.gz")
    assert from_images(paths, table, mask=_img(mask), region="FFA").provenance["region"] == "FFA"


def test_standardize_is_nilearn_zscore_sample(volumes, table, mask):
    img, mimg = _img(volumes.astype(np.float64)), _img(mask)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acts = from_images(img, table, mask=mimg, standardize=True)
    raw = volumes.astype(np.float64)[mask.astype(bool)].T
    np.testing.assert_allclose(acts.X, zscore(raw, axis=0, ddof=1), rtol=1e-10, atol=1e-12)
    reference = NiftiMasker(mask_img=mimg, standardize="zscore_sample").fit_transform(img)
    np.testing.assert_allclose(acts.X, reference, rtol=1e-12)
    assert acts.provenance["standardize"] is True


def test_integer_images_keep_their_dtype(rng, table, mask):
    data = rng.integers(-30000, 30000, size=SHAPE + (12,)).astype(np.int32) * 1000
    acts = from_images(_img(data), table, mask=_img(mask))
    assert acts.X.dtype == np.int32
    np.testing.assert_array_equal(acts.X, data[mask.astype(bool)].T)  # exact beyond 2**24


def test_round_trip_of_a_layer_without_mask(rng, tmp_path):
    meta = pd.DataFrame({"identity": list("aabbccdd"), "viewpoint": list("LRLRLRLR")})
    layer = Activations(rng.normal(size=(8, 3, 4, 5)).astype(np.float32), meta,
                        {"layer": "conv2"})
    paths = layer.to_nifti(tmp_path)
    back = from_images(paths["responses"], paths["events"], mask=paths["mask"])
    assert back.X.dtype == np.float32
    np.testing.assert_array_equal(back.X, layer.X)
    pd.testing.assert_frame_equal(back.metadata, meta)


def test_round_trip_of_brain_data_with_mask(volumes, table, mask, tmp_path):
    brain = from_images(_img(volumes.astype(np.float64)), table, mask=_img(mask),
                        standardize=True)
    paths = brain.to_nifti(tmp_path)
    back = from_images(paths["responses"], paths["events"], mask=paths["mask"])
    assert back.X.dtype == np.float64
    np.testing.assert_array_equal(back.X, brain.X)
    np.testing.assert_array_equal(np.asanyarray(back.mask.dataobj), mask)
    assert np.allclose(back.mask.affine, AFFINE)


def test_atlas_regions_are_their_own_voxels(volumes, table, mask, tmp_path):
    atlas = _atlas()
    nib.save(_img(atlas), tmp_path / "atlas.nii.gz")
    out = from_images(_img(volumes), table, atlas=tmp_path / "atlas.nii.gz")
    assert list(out) == ["3", "7", "12"]
    for name, value in (("3", 3), ("7", 7), ("12", 12)):
        np.testing.assert_array_equal(out[name].X, volumes[atlas == value].T)
        np.testing.assert_array_equal(np.asanyarray(out[name].mask.dataobj), atlas == value)
        assert out[name].provenance["region"] == name
        assert out[name].provenance["atlas"] == str(tmp_path / "atlas.nii.gz")
        assert out[name].provenance["atlas_value"] == value
    named = {3: "V1", 7: "FFA", 12: "OFA"}
    ffa = from_images(_img(volumes), table, atlas=_img(atlas), labels=named, region="FFA")
    assert isinstance(ffa, Activations)
    np.testing.assert_array_equal(ffa.X, volumes[atlas == 7].T)
    two = from_images(_img(volumes), table, atlas=_img(atlas), labels=["V1", "FFA", "OFA"],
                      region=["OFA", "V1"])
    assert list(two) == ["OFA", "V1"]
    np.testing.assert_array_equal(two["OFA"].X, volumes[atlas == 12].T)
    # with a mask: each region intersected with it
    both = from_images(_img(volumes), table, atlas=_img(atlas), labels=named,
                       mask=_img(mask))
    for value, name in named.items():
        inside = (atlas == value) & mask.astype(bool)
        np.testing.assert_array_equal(both[name].X, volumes[inside].T)
        np.testing.assert_array_equal(np.asanyarray(both[name].mask.dataobj), inside)
    with pytest.raises(ValueError, match=r"\['PPA'\].*not in the atlas.*\['V1', 'FFA', 'OFA'\]"):
        from_images(_img(volumes), table, atlas=_img(atlas), labels=named, region="PPA")
    with pytest.raises(ValueError, match=r"labels has 2 names but the atlas has 3 non-zero "
                                         r"values \(\[3, 7, 12\]\)"):
        from_images(_img(volumes), table, atlas=_img(atlas), labels=["V1", "FFA"])
    with pytest.raises(ValueError, match=r"does not name atlas value\(s\) \[12\]"):
        from_images(_img(volumes), table, atlas=_img(atlas), labels={3: "V1", 7: "FFA"})
    with pytest.raises(ValueError, match="integer label image"):
        from_images(_img(volumes), table, atlas=_img(atlas + 0.5))
    small = np.zeros(SHAPE, np.uint8)
    small[0, 0, 3] = 1
    with pytest.raises(ValueError, match=r"\['3', '7'\] of the atlas have no voxel inside"):
        from_images(_img(volumes), table, atlas=_img(atlas), mask=_img(small), region=["3", "7"])


def test_grid_mismatch_names_both_images(volumes, table, mask, tmp_path):
    nib.save(_img(volumes), tmp_path / "betas.nii.gz")
    shifted = AFFINE.copy()
    shifted[0, 3] += 1.0
    with pytest.raises(ValueError, match=r"(?s)mask \(in-memory image\) and imgs \(.*betas"
                                         r"\.nii\.gz\).*resample_to_img"):
        from_images(tmp_path / "betas.nii.gz", table, mask=_img(mask, shifted))
    with pytest.raises(ValueError, match=r"(?s)shape \(5, 6, 3\).*shape \(5, 6, 4\)"):
        from_images(_img(volumes), table, mask=_img(mask[:, :, :3]))
    with pytest.raises(ValueError, match=r"atlas \(in-memory image\) and imgs"):
        from_images(_img(volumes), table, atlas=_img(_atlas(), shifted))
    other = [_img(volumes[..., i]) for i in range(12)]
    other[5] = _img(volumes[..., 5], shifted)
    with pytest.raises(ValueError, match=r"imgs\[5\] \(in-memory image\) and imgs\[0\]"):
        from_images(other, table, mask=_img(mask))


def test_invalid_voxels_are_an_error_or_dropped(volumes, table, mask, caplog):
    bad = volumes.copy()
    bad[1, 1, 1, 3] = np.nan
    bad[2, 3, 2, :] = 4.0
    bad[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 of 25 voxels hold NaN or Inf values, first "
                                         r"\(i, j, k\): \(0, 0, 0\), \(1, 1, 1\); 1 of 25 "
                                         r"voxels are constant.*\(2, 3, 2\).*drop_invalid=True"):
        from_images(_img(bad), table, mask=_img(mask))
    with caplog.at_level(logging.INFO, logger="dnnrsa"):
        acts = from_images(_img(bad), table, mask=_img(mask), drop_invalid=True)
    assert "dropping 3 of 25 voxels" in caplog.text
    kept = mask.astype(bool)
    kept[1, 1, 1] = kept[2, 3, 2] = kept[0, 0, 0] = False
    np.testing.assert_array_equal(acts.X, volumes[kept].T)
    np.testing.assert_array_equal(np.asanyarray(acts.mask.dataobj), kept)
    assert acts.provenance["n_dropped"] == 3 and acts.provenance["n_voxels"] == 22
    # per region: each region counts its own dropped voxels
    atlas = np.where(mask.astype(bool), 1, 0).astype(np.int16)
    atlas[2:, :, :] *= 2
    out = from_images(_img(bad), table, atlas=_img(atlas), drop_invalid=True)
    assert out["1"].provenance["n_dropped"] == 2 and out["2"].provenance["n_dropped"] == 1
    np.testing.assert_array_equal(out["2"].X, volumes[kept & (atlas == 2)].T)


def test_without_mask_every_voxel_and_background_needs_a_mask(volumes, table, mask):
    acts = from_images(_img(volumes), table)
    np.testing.assert_array_equal(acts.X, volumes.reshape(-1, 12).T)  # C order of the grid
    assert acts.provenance["region"] == "all voxels" and acts.provenance["mask"] is None
    brain = volumes * mask[..., None]  # zero background
    with pytest.raises(ValueError, match=r"(?s)95 of 120 voxels are constant.*give a mask"):
        from_images(_img(brain), table)


def test_bad_arguments(volumes, table, mask, tmp_path):
    img = _img(volumes)
    with pytest.raises(ValueError, match="imgs hold 12 images but table has 11 rows"):
        from_images(img, table.iloc[:11], mask=_img(mask))
    with pytest.raises(ValueError, match="imgs hold 3 images but table has 12 rows"):
        from_images([_img(volumes[..., i]) for i in range(3)], table)
    with pytest.raises(ValueError, match=r"has shape \(5, 6, 4\); give one 4-D image"):
        from_images(_img(volumes[..., 0]), table.iloc[:1])
    with pytest.raises(ValueError, match=r"imgs\[1\] \(in-memory image\) must be a 3-D image"):
        from_images([_img(volumes[..., 0]), img], table.iloc[:2])
    with pytest.raises(ValueError, match="no voxels set to 1"):
        from_images(img, table, mask=_img(np.zeros(SHAPE, np.uint8)))
    with pytest.raises(ValueError, match=r"must hold 0 and 1 only, got values \[0, 1, 2\]"):
        from_images(img, table, mask=_img(mask * np.arange(4, dtype=np.uint8)[None, None, :]
                                              % 3))
    with pytest.raises(TypeError, match="Argument standardize must be True or False"):
        from_images(img, table, mask=_img(mask), standardize="zscore")
    with pytest.raises(TypeError, match="Argument drop_invalid must be True or False"):
        from_images(img, table, mask=_img(mask), drop_invalid=1)
    with pytest.raises(FileNotFoundError, match="Argument imgs: no image file at"):
        from_images(tmp_path / "nope.nii.gz", table)
    with pytest.raises(FileNotFoundError, match="Argument table: no table file at"):
        from_images(img, tmp_path / "nope.tsv")
    with pytest.raises(TypeError, match="Argument table must be a pandas DataFrame"):
        from_images(img, {"identity": [1]})
    with pytest.raises(TypeError, match="Argument imgs must be a path to a NIfTI file"):
        from_images(volumes, table)
    with pytest.raises(ValueError, match="labels names the regions of an atlas"):
        from_images(img, table, labels=["a"])
    with pytest.raises(TypeError, match="Argument region must be a str"):
        from_images(img, table, region=3)
    with pytest.raises(ValueError, match="standardize=True needs at least 2 images"):
        from_images([_img(volumes[..., 0])], table.iloc[:1], standardize=True)
    mixed = [_img(volumes[..., 0]), _img(volumes[..., 1].astype(np.float64))]
    with pytest.raises(ValueError, match="differ in dtype: imgs\\[0\\].*float32.*float64"):
        from_images(mixed, table.iloc[:2], mask=_img(mask))
