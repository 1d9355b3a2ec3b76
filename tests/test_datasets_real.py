"""Real-data loaders (FER2013, CelebA identities, KDEF, UC Merced), manifests and the
data-set check, on small fake copies in the real layouts and file formats."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

import _fake_datasets as fake
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import dnnrsa.datasets
from dnnrsa import StimulusSet
from dnnrsa.datasets import _checksums, _manifest, _registry
from dnnrsa.datasets._celeba import (
    CELEBA_TRAIN_AUGMENT,
    celeba_file_list,
    celeba_identities,
    save_file_list,
)
from dnnrsa.datasets._fer2013 import fer2013
from dnnrsa.datasets._kdef import kdef, parse_kdef_name
from dnnrsa.datasets._manifest import list_datasets, load_manifest, manifest_dir
from dnnrsa.datasets._paths import data_root
from dnnrsa.datasets._registry import check_dataset
from dnnrsa.datasets._report import DatasetReport
from dnnrsa.datasets._uc_merced import uc_merced

NAMES = ("celeba", "fer2013", "kdef", "uc_merced")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Keep the checksum cache out of the user's home and $DNNRSA_DATA out of the tests."""
    monkeypatch.setenv("DNNRSA_HOME", str(tmp_path / "dnnrsa_home"))
    monkeypatch.delenv("DNNRSA_DATA", raising=False)


def _pil_reference(path, crop=None, size=48):
    """Grayscale -> center crop -> bilinear resize, done by hand with PIL."""
    with Image.open(path) as img:
        img = img.convert("L")
        if crop:
            w, h = img.size
            left, top = int(round((w - crop) / 2.0)), int(round((h - crop) / 2.0))
            img = img.crop((left, top, left + crop, top + crop))
        img = img.resize((size, size), Image.BILINEAR)
        return np.asarray(img, np.float32)[None] / 255.0


# ---------------------------------------------------------------------------------------
# Manifests, data root, listing
# ---------------------------------------------------------------------------------------
def test_manifest_dir_holds_every_manifest():
    folder = manifest_dir()
    assert {e.name for e in folder.iterdir()} >= {f"{n}.json" for n in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_shipped_manifests_are_consistent(name):
    m = load_manifest(name)
    assert m["name"] == name
    for key in ("homepage", "obtain", "licence", "citation", "description"):
        assert m[key]
    for rel, spec in m["checksums"].items():
        algo, value = _checksums.parse_checksum(spec, rel)
        assert len(value) == {"md5": 32, "sha256": 64}[algo]
    if name == "fer2013":
        totals = {u: sum(c.values()) for u, c in m["counts"].items()}
        assert totals == {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}
        assert m["classes"] == ["angry", "disgust", "fear", "happy", "sad", "surprise",
                                "neutral"]
    elif name == "celeba":
        assert sum(m["counts"]["partition"].values()) == m["counts"]["images"] == 202599
        assert (m["subset"]["n_identities"], m["subset"]["n_images"]) == (1503, 28709)
        assert m["preprocessing"]["center_crop"] == 178
    elif name == "kdef":
        f = m["factors"]
        n = len(f["session"]) * len(f["sex"]) * f["persons_per_sex"] * len(
            f["expression"]) * len(f["viewpoint"])
        assert n == m["counts"]["images"] == 4900
        assert list(f["expression"]) == ["AF", "AN", "DI", "HA", "NE", "SA", "SU"]
        assert list(f["viewpoint"]) == ["FL", "HL", "S", "HR", "FR"]
        assert m["preprocessing"]["center_crop"] == 388
    else:
        assert len(m["classes"]) == 21 and m["images_per_class"] == 100


def test_list_datasets():
    table = list_datasets()
    assert sorted(table["name"]) == sorted(NAMES)
    assert {"name", "description", "licence", "obtain", "expected_files"} <= set(table.columns)
    assert table["licence"].str.len().min() > 20


def test_load_manifest_override_path_and_errors(tmp_path):
    m = fake.real_manifest("kdef")
    m["factors"]["persons_per_sex"] = 3
    path = tmp_path / "kdef.json"
    path.write_text(json.dumps(m))
    assert load_manifest("kdef", path)["factors"]["persons_per_sex"] == 3
    with pytest.raises(ValueError, match="describes data set 'kdef', not 'fer2013'"):
        load_manifest("fer2013", m)
    with pytest.raises(FileNotFoundError, match="Argument manifest: no manifest file"):
        load_manifest("kdef", tmp_path / "nope.json")
    with pytest.raises(ValueError, match="Unknown value 'mnist' for argument name"):
        load_manifest("mnist")


def test_data_root(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="set the environment variable DNNRSA_DATA"):
        data_root()
    monkeypatch.setenv("DNNRSA_DATA", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="DNNRSA_DATA is .* does not exist"):
        data_root()
    monkeypatch.setenv("DNNRSA_DATA", str(tmp_path))
    assert data_root() == tmp_path
    (tmp_path / "other").mkdir()
    assert data_root(tmp_path / "other") == tmp_path / "other"  # the argument wins
    with pytest.raises(FileNotFoundError, match="Argument root"):
        data_root(tmp_path / "missing")


def test_loader_root_none_uses_data_root(tmp_path, monkeypatch):
    _, m = fake.make_uc_merced(tmp_path / "uc_merced")
    monkeypatch.setenv("DNNRSA_DATA", str(tmp_path))
    assert len(uc_merced(split="test", manifest=m)) == 3 * 2
    monkeypatch.setenv("DNNRSA_DATA", str(tmp_path / "elsewhere"))
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(FileNotFoundError, match="uc_merced folder .* does not exist"):
        uc_merced(manifest=m)


def test_check_dataset_unknown_name_and_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="Unknown value 'mnist' for argument name"):
        check_dataset("mnist", tmp_path)
    report = check_dataset("kdef", tmp_path / "nowhere")
    assert not report.ok and "does not exist" in report.problems[0]
    assert "NOT usable" in str(report)


def test_check_dataset_on_a_file(tmp_path):
    path = tmp_path / "kdef.zip"
    path.write_bytes(b"PK")
    report = check_dataset("kdef", path)
    assert report.problems == [
        f"{path} is a file, not a folder: pass the folder that holds the data set (see "
        "data_manifests/kdef.json for the layout expected)"]
    with pytest.raises(FileNotFoundError, match=r"Argument root: the kdef folder .*kdef\.zip "
                                                "is a file, not a folder"):
        kdef(path)


def test_registry_and_manifests_name_the_same_data_sets():
    assert sorted(_registry.REGISTRY) == _manifest.dataset_names() == sorted(NAMES)
    for name, entry in _registry.REGISTRY.items():
        # each manifest's "loader" is the public function registered for it
        module, _, func = load_manifest(name)["loader"].rpartition(".")
        assert module == "dnnrsa.datasets"
        assert getattr(dnnrsa.datasets, func) is entry.load


def test_registry_mismatch_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delitem(_registry.REGISTRY, "kdef")
    with pytest.raises(ValueError, match=r"Data set 'kdef' has a manifest \(.*kdef\.json\) "
                                         "but no loader is registered for it in "
                                         r"dnnrsa/datasets/_registry\.py"):
        check_dataset("kdef", tmp_path)
    entry = _registry.REGISTRY["uc_merced"]
    monkeypatch.setitem(_registry.REGISTRY, "mnist", entry)
    with pytest.raises(FileNotFoundError, match="Data set 'mnist' has a loader registered in "
                                                r"dnnrsa/datasets/_registry\.py but no "
                                                r"manifest: .*mnist\.json is missing"):
        check_dataset("mnist", tmp_path)


# ---------------------------------------------------------------------------------------
# Checksums and their cache
# ---------------------------------------------------------------------------------------
def test_checksum_is_remembered_until_the_file_changes(tmp_path, monkeypatch):
    root, m = fake.make_fer2013(tmp_path / "fer")
    fer2013(root, manifest=m)
    cache = json.loads((tmp_path / "dnnrsa_home" / _checksums.CHECKSUM_CACHE).read_text())
    key = str((root / "fer2013.csv").resolve())
    assert cache[key]["md5"] == m["checksums"]["fer2013.csv"].split(":")[1]

    def no_hashing(*args, **kwargs):
        raise AssertionError("hashed again")

    monkeypatch.setattr(_checksums, "hash_file", no_hashing)
    fer2013(root, split="public_test", manifest=m)  # remembered: no hashing
    st = (root / "fer2013.csv").stat()
    os.utime(root / "fer2013.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="hashed again"):
        fer2013(root, manifest=m)


def test_unwritable_cache_only_warns(tmp_path, monkeypatch, caplog):
    root, m = fake.make_fer2013(tmp_path / "fer")
    (tmp_path / "blocker").write_text("a file where the cache folder should be")
    monkeypatch.setenv("DNNRSA_HOME", str(tmp_path / "blocker"))
    with caplog.at_level(logging.WARNING, logger="dnnrsa"):
        assert len(fer2013(root, manifest=m)) == 14
    assert "Could not remember checksums" in caplog.text


# ---------------------------------------------------------------------------------------
# FER2013
# ---------------------------------------------------------------------------------------
def _reference_fer(path):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows


def test_fer2013_splits_labels_and_pixels(tmp_path):
    root, m = fake.make_fer2013(tmp_path / "fer")
    ref = _reference_fer(root / "fer2013.csv")
    for split, usage in m["splits"].items():
        stim = fer2013(root, split=split, manifest=m)
        want = [(i, r) for i, r in enumerate(ref) if r["Usage"] == usage]
        assert len(stim) == len(want) == sum(m["counts"][usage].values())
        assert stim.images.shape[1:] == (1, 48, 48) and stim.images.dtype == np.float32
        md = stim.metadata
        assert list(md.columns) == ["expression", "label", "usage", "row"]
        assert md["row"].tolist() == [i for i, _ in want]
        assert md["label"].tolist() == [int(r["emotion"]) for _, r in want]
        assert list(md["expression"].cat.categories) == m["classes"]
        assert (md["expression"].cat.codes.to_numpy() == md["label"].to_numpy()).all()
        assert set(md["usage"]) == {usage}
        pixels = np.array([[int(v) for v in r["pixels"].split()] for _, r in want])
        np.testing.assert_array_equal(stim.images.reshape(len(want), -1) * 255,
                                      pixels.astype(np.float32))
    assert fer2013(root, manifest=m).metadata["expression"].iloc[0] == "happy"


def test_fer2013_matches_torchvision(tmp_path, monkeypatch):
    """Our parser and torchvision's FER2013 read the same images and labels."""
    from torchvision import transforms
    from torchvision.datasets import fer2013 as tv_fer

    root, m = fake.make_fer2013(tmp_path / "tv", layout="torchvision")
    monkeypatch.setattr(tv_fer, "check_integrity", lambda *a, **k: True)  # fake md5s
    tv = tv_fer.FER2013(str(root), split="train", transform=transforms.ToTensor())
    ours = fer2013(root, split="train", manifest=m)
    assert len(tv) == len(ours)
    for i in range(len(tv)):
        img, label = tv[i]
        np.testing.assert_array_equal(ours.images[i], img.numpy())
        assert ours.metadata["label"][i] == label
    tv_test = tv_fer.FER2013(str(root), split="test")
    ours_test = [fer2013(root, split=s, manifest=m) for s in ("public_test", "private_test")]
    assert len(tv_test) == sum(len(s) for s in ours_test)


def test_fer2013_other_layouts(tmp_path):
    root, m = fake.make_fer2013(tmp_path / "icml", layout="icml")
    ref, mref = fake.make_fer2013(tmp_path / "canon")
    a = fer2013(root, split="private_test", manifest=m)
    b = fer2013(ref, split="private_test", manifest=mref)
    np.testing.assert_array_equal(a.images, b.images)
    pd.testing.assert_frame_equal(a.metadata, b.metadata)

    root, m = fake.make_fer2013(tmp_path / "split", layout="split")
    c = fer2013(root, split="train", manifest=m)
    np.testing.assert_array_equal(c.images, fer2013(ref, manifest=mref).images)
    with pytest.raises(ValueError, match="split='public_test'.*train.csv.*fer2013.csv or "
                                         "icml_face_data.csv"):
        fer2013(root, split="public_test", manifest=m)
    report = check_dataset("fer2013", root, manifest=m)
    assert report.ok, report.problems
    assert report.summary["test.csv (unlabelled)"] == {"rows": 14}


def test_fer2013_size_option(tmp_path):
    root, m = fake.make_fer2013(tmp_path / "fer")
    stim = fer2013(root, size=24, manifest=m)
    assert stim.images.shape == (14, 1, 24, 24)
    ref = np.asarray(Image.fromarray(fake.fer_pixels(0)).resize((24, 24), Image.BILINEAR),
                     np.float32) / 255
    np.testing.assert_allclose(stim.images[0, 0], ref, atol=1e-6)


def test_fer2013_shipped_and_override_manifests(tmp_path):
    root, m = fake.make_fer2013(tmp_path / "fer")
    with pytest.raises(ValueError) as err:  # the shipped manifest describes the real file
        fer2013(root)
    assert "wrong checksum for fer2013.csv" in str(err.value)
    assert "has 2 Training rows of class 0 (angry), expected 3995" in str(err.value)
    path = tmp_path / "fer2013.json"
    path.write_text(json.dumps(m))
    assert len(fer2013(root, manifest=path)) == 14
    assert check_dataset("fer2013", root, manifest=path).ok
    assert not check_dataset("fer2013", root).ok


def test_fer2013_wrong_checksum(tmp_path):
    root, m = fake.make_fer2013(tmp_path / "fer")
    m["checksums"]["fer2013.csv"] = "md5:" + "0" * 32
    with pytest.raises(ValueError, match=r"wrong checksum for fer2013\.csv: its md5 is "
                                         r"[0-9a-f]{32}, expected 0{32}"):
        fer2013(root, manifest=m)
    assert len(fer2013(root, manifest=m, verify=False)) == 14
    report = check_dataset("fer2013", root, manifest=m)
    assert any(p.startswith("wrong checksum for fer2013.csv") for p in report.problems)
    assert check_dataset("fer2013", root, verify=False, manifest=m).ok


def test_fer2013_missing_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"fer2013\.csv not found in .*empty.* See "
                                                r"data_manifests/fer2013\.json"):
        fer2013(tmp_path / "empty")
    report = check_dataset("fer2013", tmp_path / "empty")
    assert not report.ok and "fer2013.csv not found" in report.problems[0]


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.__setitem__(1, " ".join(r[1].split()[:-1])),
     "fer2013.csv line 5: expected 2304 pixel values, got 2303"),
    (lambda r: r.__setitem__(0, "x"),
     "fer2013.csv line 5: emotion 'x' is not an integer label 0-6"),
    (lambda r: r.__setitem__(0, "7"), "fer2013.csv line 5: emotion 7 is not a label 0-6"),
    (lambda r: r.__setitem__(2, "Validation"),
     "fer2013.csv line 5: unknown Usage 'Validation'; valid values are "
     "{Training, PublicTest, PrivateTest}"),
    (lambda r: r.__setitem__(1, r[1].replace(" ", " 1.5 ", 1).rsplit(" ", 1)[0]),
     "fer2013.csv line 5: pixel value '1.5' is not an integer 0-255"),
    (lambda r: r.__setitem__(1, "300 " + r[1].split(" ", 1)[1]),
     "fer2013.csv line 5: pixel value 300 is outside 0-255"),
    (lambda r: r.append("extra"), "fer2013.csv line 5: expected 3 fields, got 4"),
])
def test_fer2013_bad_row(tmp_path, edit, message):
    root, m = fake.make_fer2013(tmp_path / "fer")
    path = root / "fer2013.csv"
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    edit(rows[4])  # file line 5
    with open(path, "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("{", r"\{")
                       .replace("}", r"\}")):
        fer2013(root, verify=False, manifest=m)
    report = check_dataset("fer2013", root, verify=False, manifest=m)
    assert any(p.startswith(message) for p in report.problems), report.problems
    # the bad row is not counted, so a count problem follows
    assert any(p.startswith("wrong count") for p in report.problems)


def _rewrite_fer_rows(path, edits):
    """Apply ``edits`` ({file line: edit of the row's fields}) to a FER CSV."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    for line, edit in edits.items():
        edit(rows[line - 1])
    with open(path, "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def test_fer2013_on_problem_skip_leaves_out_malformed_rows(tmp_path, caplog):
    root, m = fake.make_fer2013(tmp_path / "fer")
    _rewrite_fer_rows(root / "fer2013.csv", {
        5: lambda r: r.__setitem__(1, " ".join(r[1].split()[:-1])),  # data row 3, Training
        18: lambda r: r.__setitem__(0, "x"),  # data row 16, PublicTest
    })
    problems = [
        "fer2013.csv line 5: expected 2304 pixel values, got 2303",
        "fer2013.csv line 18: emotion 'x' is not an integer label 0-6",
        "wrong count: fer2013.csv has 1 Training rows of class 1 (disgust), expected 2",
        "wrong count: fer2013.csv has 0 PublicTest rows of class 6 (neutral), expected 1",
    ]
    with pytest.raises(ValueError) as err:
        fer2013(root, manifest=m)
    assert "5 problem(s)" in str(err.value) and "on_problem='skip'" in str(err.value)
    assert all(p in str(err.value) for p in problems)
    with caplog.at_level(logging.WARNING, logger="dnnrsa"):
        train = fer2013(root, on_problem="skip", manifest=m)
    assert train.metadata["row"].tolist() == [0, 1, 2] + list(range(4, 14))
    np.testing.assert_array_equal(train.images[3, 0] * 255, fake.fer_pixels(4))
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    lines = record.getMessage().splitlines()
    assert lines[0] == f"fer2013: skipping 5 problem(s) in {root} (on_problem='skip'):"
    assert lines[1].startswith("  - wrong checksum for fer2013.csv")
    assert lines[2:] == [f"  - {p}" for p in problems]
    public = fer2013(root, split="public_test", on_problem="skip", manifest=m)
    assert public.metadata["row"].tolist() == [14, 15, 17, 18, 19, 20]
    assert public.metadata["label"].tolist() == [3, 0, 1, 5, 2, 4]
    with pytest.raises(ValueError, match="Unknown value 'ignore' for argument on_problem"):
        fer2013(root, on_problem="ignore", manifest=m)


def test_fer2013_argument_errors(tmp_path):
    root, m = fake.make_fer2013(tmp_path / "fer")
    with pytest.raises(ValueError, match="Unknown value 'test' for argument split. Valid "
                                         "values are {train, public_test, private_test}"):
        fer2013(root, split="test", manifest=m)
    with pytest.raises(ValueError, match="Argument size must be an integer >= 1, got 0"):
        fer2013(root, size=0, manifest=m)


# ---------------------------------------------------------------------------------------
# CelebA identities
# ---------------------------------------------------------------------------------------
def test_celeba_subset_rule(tmp_path):
    root, m = fake.make_celeba(tmp_path / "celeba")
    table = celeba_file_list(root, manifest=m)
    # rank by count, ties to the smaller id: 101 (9), 3 (8), 7 (8), 42 (6)
    ranked = table.drop_duplicates("identity").sort_values("identity")
    assert ranked["celeba_id"].tolist() == [101, 3, 7, 42]
    train, test = table[table.split == "train"], table[table.split == "test"]
    assert len(train) == m["subset"]["n_images"] == 14
    assert train.groupby("identity").size().tolist() == [4, 4, 3, 3]  # 14 = 4+4+3+3
    assert test.groupby("identity").size().tolist() == [1, 1, 1, 1]
    assert not set(train.file) & set(test.file)
    ident = pd.read_csv(root / "identity_CelebA.txt", sep=" ", header=None,
                        names=["file", "cid"])
    truth = dict(zip(ident.file, ident.cid, strict=True))
    assert all(truth[f] == c for f, c in zip(table.file, table.celeba_id, strict=True))
    # deterministic; a different seed picks other files of the same identities
    pd.testing.assert_frame_equal(table, celeba_file_list(root, manifest=m))
    other = celeba_file_list(root, seed=1, manifest=m)
    assert other["celeba_id"].tolist() == table["celeba_id"].tolist()
    assert other["file"].tolist() != table["file"].tolist()
    # choices are per identity: with the same quotas (q = 4, h = 1) identity 101 keeps
    # its picks when more identities are asked for
    bigger = celeba_file_list(root, n_identities=5, n_images=20, manifest=m)
    assert len(bigger[bigger.split == "train"]) == 20
    pd.testing.assert_frame_equal(bigger[bigger.celeba_id == 101].reset_index(drop=True),
                                  table[table.celeba_id == 101].reset_index(drop=True))
    with pytest.raises(ValueError, match="fewer images than n_images=60"):
        celeba_file_list(root, n_identities=4, n_images=60, manifest=m)
    with pytest.raises(ValueError, match="n_identities=8 is more than the 7 identities"):
        celeba_file_list(root, n_identities=8, manifest=m)


def test_celeba_load_labels_and_metadata(tmp_path):
    root, m = fake.make_celeba(tmp_path / "celeba")
    stim = celeba_identities(root, manifest=m)
    assert stim.images.shape == (14, 1, 48, 48)
    md = stim.metadata
    assert {"path", "file", "celeba_id", "identity", "split", "partition"} <= set(md.columns)
    assert set(md["split"]) == {"train"}
    assert md["identity"].tolist() == sorted(md["identity"].tolist())
    assert all(Path(p).is_file() and Path(p).is_absolute() for p in md["path"])
    both = celeba_identities(root, split=None, manifest=m)
    assert len(both) == 18 and set(both.metadata["split"]) == {"train", "test"}
    test = celeba_identities(root, split="test", manifest=m)
    assert len(test) == 4
    # images of one identity look alike, of different identities differ (gray level)
    means = both.images.mean(axis=(1, 2, 3))
    by_id = pd.Series(means).groupby(both.metadata["celeba_id"]).agg(["min", "max"])
    assert (by_id["max"] - by_id["min"]).max() < 0.01
    assert np.diff(by_id["min"].sort_values().to_numpy()).min() > 0.02


def test_celeba_preprocessing_matches_pil(tmp_path):
    from torchvision import transforms

    root, m = fake.make_celeba(tmp_path / "celeba")
    stim = celeba_identities(root, manifest=m)
    path = stim.metadata["path"][0]
    np.testing.assert_allclose(stim.images[0], _pil_reference(path, crop=178), atol=1e-6)
    tv = transforms.Compose([transforms.Grayscale(), transforms.CenterCrop(178),
                             transforms.Resize((48, 48)), transforms.ToTensor()])
    with Image.open(path) as img:
        np.testing.assert_allclose(stim.images[0], tv(img).numpy(), atol=1e-6)
    assert CELEBA_TRAIN_AUGMENT == load_manifest("celeba")["preprocessing"]["train_augment"]
    assert celeba_identities(root, size=32, manifest=m).images.shape == (14, 1, 32, 32)


def test_celeba_file_list_round_trip(tmp_path):
    root, m = fake.make_celeba(tmp_path / "celeba")
    stim = celeba_identities(root, split=None, manifest=m)
    path = save_file_list(stim, tmp_path / "lists" / "celeba_subset.csv")
    again = celeba_identities(root, split=None, file_list=path, manifest=m)
    np.testing.assert_array_equal(stim.images, again.images)
    pd.testing.assert_frame_equal(stim.metadata, again.metadata)
    train = celeba_identities(root, file_list=path, manifest=m)
    assert len(train) == 14
    # a recorded list is used exactly, whatever the rule would choose now
    table = pd.read_csv(path).iloc[[0, 5, 9]]
    table.loc[:, "split"] = "train"
    picked = celeba_identities(root, file_list=table, manifest=m)
    assert picked.metadata["file"].tolist() == table["file"].tolist()
    with pytest.raises(ValueError, match="file_list and n_identities/n_images exclude"):
        celeba_identities(root, n_images=10, file_list=path, manifest=m)
    with pytest.raises(ValueError, match="split='test': the file list has no rows"):
        celeba_identities(root, split="test", file_list=table, manifest=m)
    wrong = table.copy()
    wrong.loc[:, "celeba_id"] = 12345
    with pytest.raises(ValueError, match="file list says .* is CelebA identity 12345 but"):
        celeba_identities(root, file_list=wrong, manifest=m)
    save_file_list(celeba_file_list(root, manifest=m), tmp_path / "from_table.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "from_table.csv", dtype={"file": str}),
                                  pd.read_csv(path, dtype={"file": str}))


def test_celeba_torchvision_layout(tmp_path):
    root, m = fake.make_celeba(tmp_path / "tv", layout="torchvision")
    assert (root / "celeba" / "img_align_celeba").is_dir()
    assert len(celeba_identities(root, manifest=m)) == 14
    report = check_dataset("celeba", root, manifest=m)
    assert report.ok, report.problems
    assert report.summary["train"]["images"] + report.summary["valid"]["images"] + \
        report.summary["test"]["images"] == 43


def test_celeba_problems(tmp_path):
    root, m = fake.make_celeba(tmp_path / "celeba")
    chosen = celeba_file_list(root, manifest=m)
    train_files = chosen[chosen.split == "train"].file.tolist()
    img = root / "img_align_celeba"
    # a missing chosen image
    (img / train_files[0]).rename(tmp_path / "moved.jpg")
    with pytest.raises(FileNotFoundError, match=f"missing image img_align_celeba/"
                                                f"{train_files[0]}"):
        celeba_identities(root, manifest=m)
    assert f"missing image img_align_celeba/{train_files[0]}" in check_dataset(
        "celeba", root, manifest=m).problems
    (tmp_path / "moved.jpg").rename(img / train_files[0])
    # a stray file in the image folder (OS junk is ignored)
    (img / "notes.txt").write_text("hello")
    (img / ".DS_Store").write_bytes(b"\0")
    with pytest.raises(ValueError, match=r"unexpected file img_align_celeba/notes\.txt"):
        celeba_identities(root, manifest=m)
    report = check_dataset("celeba", root, verify=False, manifest=m)
    assert [p for p in report.problems if "unexpected" in p] == [
        "unexpected file img_align_celeba/notes.txt in the image folder (not listed in "
        "identity_CelebA.txt; remove or move it)"]
    (img / "notes.txt").unlink()
    # a truncated image
    fake.truncate(img / train_files[1])
    with pytest.raises(ValueError, match=f"cannot decode image img_align_celeba/"
                                         f"{train_files[1]} \\(OSError"):
        celeba_identities(root, manifest=m)
    assert any(p.startswith(f"cannot decode image img_align_celeba/{train_files[1]}")
               for p in check_dataset("celeba", root, manifest=m).problems)
    assert check_dataset("celeba", root, verify=False, manifest=m).ok  # no decoding


def test_celeba_bad_annotation_and_checksum(tmp_path):
    root, m = fake.make_celeba(tmp_path / "celeba")
    ident = root / "identity_CelebA.txt"
    lines = ident.read_text().splitlines(keepends=True)
    lines[2] = lines[2].split()[0] + " seven\n"
    ident.write_text("".join(lines))
    with pytest.raises(ValueError) as err:
        celeba_identities(root, manifest=m)
    assert "identity_CelebA.txt line 3: 'seven' is not an integer" in str(err.value)
    assert "wrong checksum for identity_CelebA.txt" in str(err.value)
    with pytest.raises(ValueError, match="identity_CelebA.txt line 3"):
        celeba_identities(root, verify=False, manifest=m)
    report = check_dataset("celeba", root, manifest=m)
    assert any(p.startswith("wrong checksum for identity_CelebA.txt") for p in report.problems)
    assert "wrong count: identity_CelebA.txt lists 42 images, expected 43" in report.problems


def test_celeba_on_problem_skip_leaves_out_missing_and_broken_images(tmp_path, caplog):
    root, m = fake.make_celeba(tmp_path / "celeba")
    chosen = celeba_file_list(root, manifest=m)
    train = chosen[chosen.split == "train"].reset_index(drop=True)
    img = root / "img_align_celeba"
    (img / train.file[0]).unlink()
    fake.truncate(img / train.file[1])
    with pytest.raises(FileNotFoundError, match=f"missing image img_align_celeba/"
                                                f"{train.file[0]}"):
        celeba_identities(root, manifest=m)
    with pytest.raises(FileNotFoundError, match="1 problem"):  # the loader's choice, checked
        celeba_file_list(root, manifest=m)
    with caplog.at_level(logging.WARNING, logger="dnnrsa"):
        stim = celeba_identities(root, on_problem="skip", manifest=m)
    assert stim.metadata["file"].tolist() == train.file[2:].tolist()
    assert stim.metadata["identity"].tolist() == train.identity[2:].tolist()
    assert len(stim.images) == 12
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    lines = record.getMessage().splitlines()
    assert lines[0] == f"celeba: skipping 2 problem(s) in {root} (on_problem='skip'):"
    assert lines[1] == f"  - missing image img_align_celeba/{train.file[0]}"
    assert lines[2].startswith(f"  - cannot decode image img_align_celeba/{train.file[1]} "
                               "(OSError")
    listed = celeba_file_list(root, on_problem="skip", manifest=m)  # no image is decoded
    assert listed.file.tolist() == chosen.file.drop(chosen.index[chosen.file == train.file[0]]
                                                    ).tolist()


def test_celeba_on_problem_skip_applies_the_rule_to_the_sound_lines(tmp_path, caplog):
    root, m = fake.make_celeba(tmp_path / "celeba")
    ident = root / "identity_CelebA.txt"
    lines = ident.read_text().splitlines(keepends=True)
    k = next(i for i, ln in enumerate(lines) if ln.split()[1] == "101")
    bad_file = lines[k].split()[0]
    lines[k] = f"{bad_file} seven\n"
    ident.write_text("".join(lines))
    with pytest.raises(ValueError, match=f"identity_CelebA.txt line {k + 1}: 'seven' is not "
                                         "an integer"):
        celeba_identities(root, manifest=m)
    with caplog.at_level(logging.WARNING, logger="dnnrsa"):
        stim = celeba_identities(root, split=None, on_problem="skip", manifest=m)
    md = stim.metadata
    assert bad_file not in set(md["file"])
    # 101 now has 8 sound lines, tied with 3 and 7, so it ranks third (ties to smaller ids)
    assert md.drop_duplicates("identity")["celeba_id"].tolist() == [3, 7, 101, 42]
    assert md.groupby("identity").size().tolist() == [5, 5, 4, 4]
    listed = celeba_file_list(root, on_problem="skip", manifest=m)
    assert md["file"].tolist() == listed["file"].tolist()
    text = caplog.text
    assert "wrong count: identity_CelebA.txt lists 42 images, expected 43" in text
    assert f"unexpected file img_align_celeba/{bad_file} in the image folder" in text
    assert "wrong checksum for identity_CelebA.txt" in text


def test_celeba_missing_annotation(tmp_path):
    root, m = fake.make_celeba(tmp_path / "celeba")
    (root / "identity_CelebA.txt").unlink()
    with pytest.raises(FileNotFoundError, match="identity_CelebA.txt not found in"):
        celeba_identities(root, manifest=m)
    (root / "list_eval_partition.txt").unlink()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="identity_CelebA.txt and img_align_celeba/ "
                                                "not found in"):
        celeba_identities(tmp_path / "empty", manifest=m)


# ---------------------------------------------------------------------------------------
# KDEF
# ---------------------------------------------------------------------------------------
def test_parse_kdef_name():
    info = parse_kdef_name("AF01ANHL.JPG")
    assert (info["session"], info["sex"], info["person"], info["expression"],
            info["viewpoint"], info["image_id"]) == ("A", "F", 1, "AN", "HL", "AF01ANHL")
    assert parse_kdef_name("bm35sus.jpeg")["image_id"] == "BM35SUS"
    assert parse_kdef_name("AM10NEFR.jpg")["viewpoint"] == "FR"
    with pytest.raises(ValueError, match="'AF31V.JPG' is not a KDEF image name"):
        parse_kdef_name("AF31V.JPG")


def test_kdef_factors_and_labels(tmp_path):
    root, m = fake.make_kdef(tmp_path / "kdef", lower_case=("AM02", "BF01"))
    stim = kdef(root, manifest=m)
    assert len(stim) == 2 * 2 * 2 * 7 * 3
    assert stim.images.shape[1:] == (1, 48, 48)
    md = stim.metadata
    assert list(md.columns) == ["identity", "sex", "expression", "viewpoint", "session", "yaw",
                                "image_id", "path"]
    assert list(md["expression"].cat.categories) == ["AF", "AN", "DI", "HA", "NE", "SA", "SU"]
    assert list(md["viewpoint"].cat.categories) == ["FL", "HL", "S", "HR", "FR"]
    assert list(md["session"].cat.categories) == ["A", "B"]
    assert list(md["sex"].cat.categories) == ["female", "male"]
    assert stim.classes("identity") == ["F01", "F02", "M01", "M02"]
    assert stim.classes("viewpoint") == ["HL", "S", "HR"]
    assert dict(zip(md["viewpoint"], md["yaw"], strict=True)) == {"HL": -45, "S": 0, "HR": 45}
    assert (md.groupby("identity", observed=True)["sex"].first()
            .astype(str).to_dict() == {"F01": "female", "F02": "female", "M01": "male",
                                       "M02": "male"})
    first = md.iloc[0]
    assert (first["identity"], first["session"], first["expression"], first["viewpoint"],
            first["image_id"]) == ("F01", "A", "AF", "HL", "AF01AFHL")
    assert any(p.endswith("AM02ANS.jpg") for p in md["path"])
    for i, row in md.iterrows():
        assert row["image_id"] == f"{row['session']}{row['identity']}{row['expression']}" \
                                  f"{row['viewpoint']}"
        gray = fake.kdef_gray(row["expression"], row["viewpoint"], m) / 255
        assert abs(stim.images[i].mean() - gray) < 0.02, row["image_id"]
    only = kdef(root, viewpoints=["S"], sessions="B", manifest=m)
    assert len(only) == 4 * 7 and set(only.metadata["session"]) == {"B"}
    # the synthetic faces stand in for KDEF: their factors have the very same dtypes
    syn = dnnrsa.datasets.synthetic_faces(n_identities=4, viewpoints=["S"], sessions="B",
                                          size=16).metadata
    for column in ("identity", "sex", "expression", "viewpoint", "session"):
        assert only.metadata[column].dtype == syn[column].dtype, column
        assert not only.metadata[column].dtype.ordered


def test_kdef_preprocessing_on_a_real_size_image(tmp_path):
    from torchvision import transforms

    root, m = fake.make_kdef(tmp_path / "kdef", persons_per_sex=1, sessions=("A",),
                             size=(562, 762), pattern=True)
    assert m["preprocessing"]["center_crop"] == 388
    stim = kdef(root, viewpoints=("S",), sessions=("A",), manifest=m)
    assert len(stim) == 14
    path = stim.metadata["path"][3]
    ref = _pil_reference(path, crop=388)
    np.testing.assert_allclose(stim.images[3], ref, atol=1e-6)
    with Image.open(path) as img:
        assert img.size == (562, 762)
        box = img.convert("L").crop((87, 187, 475, 575)).resize((48, 48), Image.BILINEAR)
        tv = transforms.Compose([transforms.Grayscale(), transforms.CenterCrop(388),
                                 transforms.Resize((48, 48)), transforms.ToTensor()])(img)
    np.testing.assert_allclose(stim.images[3, 0], np.asarray(box, np.float32) / 255, atol=1e-6)
    np.testing.assert_allclose(stim.images[3], tv.numpy(), atol=1e-6)
    assert stim.images.std() > 0.05  # the pattern survived


def test_kdef_missing_images_are_all_named(tmp_path):
    root, m = fake.make_kdef(tmp_path / "kdef")
    (root / "KDEF" / "AF01" / "AF01ANHL.JPG").unlink()
    (root / "KDEF" / "BM02" / "BM02SUS.JPG").unlink()
    (root / "KDEF" / "AM01" / "AM01HAFL.JPG").unlink()  # not a study viewpoint
    with pytest.raises(FileNotFoundError) as err:
        kdef(root, manifest=m)
    text = str(err.value)
    assert "2 problem(s)" in text and "on_problem='skip'" in text
    assert "missing image AF01/AF01ANHL.JPG" in text and "missing image BM02/BM02SUS.JPG" in text
    assert "AM01HAFL" not in text
    report = check_dataset("kdef", root, manifest=m)
    assert {"missing image AF01/AF01ANHL.JPG", "missing image BM02/BM02SUS.JPG",
            "missing image AM01/AM01HAFL.JPG"} <= set(report.problems)
    assert report.summary["HL"]["AN"] == 7 and report.summary["FL"]["HA"] == 7
    import shutil

    shutil.rmtree(root / "KDEF" / "BF02")
    with pytest.raises(FileNotFoundError, match=r"missing folder BF02/ \(21 images\)"):
        kdef(root, manifest=m)


def test_kdef_irregular_files(tmp_path, caplog):
    root, m = fake.make_kdef(tmp_path / "kdef")
    folder = root / "KDEF" / "AF01"
    (folder / "AF01ANS.JPG").rename(folder / "AF01V.JPG")  # like the real AF31V.JPG
    (folder / "notes.txt").write_text("x")
    (folder / "Thumbs.db").write_bytes(b"\0")  # OS junk: ignored
    (root / "KDEF" / "AF02" / "AF02HAS.JPG").rename(folder / "AF02HAS.JPG")
    with pytest.raises(ValueError) as err:
        kdef(root, manifest=m)
    text = str(err.value)
    assert "unexpected file AF01/AF01V.JPG: not a KDEF image name" in text
    assert "unexpected file AF01/notes.txt" in text
    assert "image AF01/AF02HAS.JPG belongs in folder AF02/, not AF01/" in text
    assert "missing image AF01/AF01ANS.JPG" in text and "missing image AF02/AF02HAS.JPG" in text
    assert "Thumbs.db" not in text
    report = check_dataset("kdef", root, manifest=m)
    assert "unexpected file AF01/notes.txt: not a KDEF image name (<session><sex><person>" \
           "<expression><viewpoint>.JPG, e.g. AF01ANHL.JPG); rename, move or remove it" \
           in report.problems
    with caplog.at_level(logging.WARNING, logger="dnnrsa"):
        stim = kdef(root, on_problem="skip", manifest=m)
    assert len(stim) == 168 - 2
    assert "AF01/AF01V.JPG" in caplog.text
    with pytest.raises(ValueError, match="Unknown value 'ignore' for argument on_problem"):
        kdef(root, on_problem="ignore", manifest=m)


def test_kdef_truncated_image(tmp_path):
    root, m = fake.make_kdef(tmp_path / "kdef")
    fake.truncate(root / "KDEF" / "BF01" / "BF01DIS.JPG", keep=0.4)
    with pytest.raises(ValueError, match=r"cannot decode image BF01/BF01DIS\.JPG \(OSError"):
        kdef(root, manifest=m)
    assert any(p.startswith("cannot decode image BF01/BF01DIS.JPG")
               for p in check_dataset("kdef", root, manifest=m).problems)
    assert len(kdef(root, on_problem="skip", manifest=m)) == 167


def test_kdef_checksums_from_an_override(tmp_path):
    root, m = fake.make_kdef(tmp_path / "kdef")
    m["checksums"] = {"AF01/AF01ANS.JPG": fake.md5(root / "KDEF" / "AF01" / "AF01ANS.JPG"),
                      "AF01/AF01HAS.JPG": "md5:" + "f" * 32}
    with pytest.raises(ValueError, match="wrong checksum for AF01/AF01HAS.JPG"):
        kdef(root, manifest=m)
    assert len(kdef(root, verify=False, manifest=m)) == 168
    assert len(kdef(root, viewpoints=("HL",), manifest=m)) == 56  # that file is not read
    report = check_dataset("kdef", root, manifest=m)
    assert [p for p in report.problems if "checksum" in p][0].startswith(
        "wrong checksum for AF01/AF01HAS.JPG")


def test_kdef_layout_variants_and_errors(tmp_path):
    root, m = fake.make_kdef(tmp_path / "flat", persons_per_sex=1, inner="")
    assert len(kdef(root, manifest=m)) == 2 * 2 * 21
    report = check_dataset("kdef", root, manifest=m)
    assert report.ok, report.problems
    assert "usable" in str(report) and "HL" in str(report)
    (tmp_path / "none").mkdir()
    with pytest.raises(FileNotFoundError, match="No KDEF person folders"):
        kdef(tmp_path / "none", manifest=m)
    with pytest.raises(ValueError, match="Unknown value 'XX' for argument viewpoints. Valid "
                                         "values are {FL, HL, S, HR, FR}"):
        kdef(root, viewpoints=("S", "XX"), manifest=m)
    with pytest.raises(ValueError, match="Argument sessions is empty"):
        kdef(root, sessions=(), manifest=m)
    with pytest.raises(FileNotFoundError) as err:  # the shipped manifest wants 70 persons
        kdef(root)
    assert "missing folders (136 of 140, 21 images each): AF02/, AF03/" in str(err.value)
    assert "BM35/" in str(err.value)


# ---------------------------------------------------------------------------------------
# UC Merced
# ---------------------------------------------------------------------------------------
def test_uc_merced_splits_and_labels(tmp_path):
    root, m = fake.make_uc_merced(tmp_path / "ucm")
    train = uc_merced(root, manifest=m)
    test = uc_merced(root, split="test", manifest=m)
    both = uc_merced(root, split=None, manifest=m)
    assert (len(train), len(test), len(both)) == (54, 6, 60)
    assert (test.metadata["index"] % 10 == 9).all()
    assert not (train.metadata["index"] % 10 == 9).any()
    md = both.metadata
    assert list(md.columns) == ["scene", "label", "index", "split", "path"]
    assert list(md["scene"].cat.categories) == list(fake.UCM_CLASSES)
    assert (md["label"].to_numpy() == md["scene"].cat.codes.to_numpy()).all()
    for i, row in md.iterrows():  # labels agree with the pixels of the class folder
        assert Path(row["path"]).parent.name == row["scene"]
        assert abs(both.images[i].mean() - fake.ucm_gray(row["scene"]) / 255) < 0.01
    # every 100th image is labelled by its folder (the original int(index/100) bug)
    assert md.groupby("scene", observed=True).size().tolist() == [20, 20, 20]
    np.testing.assert_allclose(both.images[0], _pil_reference(md["path"][0]), atol=1e-6)
    report = check_dataset("uc_merced", root, manifest=m)
    assert report.ok, report.problems
    assert report.summary["test"] == {"agricultural": 2, "beach": 2, "tenniscourt": 2}


def test_uc_merced_layout_variants(tmp_path):
    root, m = fake.make_uc_merced(tmp_path / "ucm")
    assert len(uc_merced(root / "UCMerced_LandUse" / "Images", manifest=m)) == 54
    assert len(uc_merced(root / "UCMerced_LandUse", manifest=m)) == 54


def test_uc_merced_problems(tmp_path):
    root, m = fake.make_uc_merced(tmp_path / "ucm")
    images = root / "UCMerced_LandUse" / "Images"
    (images / "beach" / "beach05.tif").rename(images / "agricultural" / "beach05.tif")
    (images / "agricultural" / "readme.txt").write_text("x")
    fake.truncate(images / "tenniscourt" / "tenniscourt12.tif", keep=0.3)
    (images / "forest").mkdir()
    with pytest.raises(ValueError) as err:
        uc_merced(root, manifest=m)
    text = str(err.value)
    assert "image agricultural/beach05.tif is named for class 'beach' but sits in folder " \
           "agricultural/" in text
    assert "unexpected file agricultural/readme.txt" in text
    assert "unexpected folder forest/" in text
    assert "missing image beach/beach05.tif" in text
    report = check_dataset("uc_merced", root, manifest=m)
    assert any(p.startswith("cannot decode image tenniscourt/tenniscourt12.tif")
               for p in report.problems)
    (images / "forest").rmdir()
    (images / "agricultural" / "readme.txt").unlink()
    (images / "agricultural" / "beach05.tif").rename(images / "beach" / "beach05.tif")
    with pytest.raises(ValueError, match=r"cannot decode image tenniscourt/tenniscourt12\.tif"):
        uc_merced(root, manifest=m)
    assert len(uc_merced(root, split="test", manifest=m)) == 6  # a train file is broken
    (images / "tenniscourt" / "tenniscourt12.tif").unlink()
    with pytest.raises(FileNotFoundError, match="missing image tenniscourt/tenniscourt12.tif"):
        uc_merced(root, manifest=m)


def test_uc_merced_wrong_checksum_override(tmp_path):
    root, m = fake.make_uc_merced(tmp_path / "ucm")
    m["checksums"] = {"beach/beach03.tif": "md5:" + "0" * 32}
    with pytest.raises(ValueError, match="wrong checksum for beach/beach03.tif"):
        uc_merced(root, manifest=m)
    assert len(uc_merced(root, verify=False, manifest=m)) == 54


# ---------------------------------------------------------------------------------------
# Options passed positionally (deprecated)
# ---------------------------------------------------------------------------------------
def _same(a, b):
    if isinstance(a, StimulusSet):
        np.testing.assert_array_equal(a.images, b.images)
        pd.testing.assert_frame_equal(a.metadata, b.metadata)
        assert a.name == b.name
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("case", ["kdef", "uc_merced", "fer2013", "celeba_identities",
                                  "celeba_file_list", "check_dataset"])
def test_positional_options_warn_and_still_work(tmp_path, case):
    if case == "kdef":
        root, m = fake.make_kdef(tmp_path / "kdef", persons_per_sex=1)
        func, old, new = kdef, (["S"], "B"), {"viewpoints": ["S"], "sessions": "B"}
    elif case == "uc_merced":
        root, m = fake.make_uc_merced(tmp_path / "ucm")
        func, old, new = uc_merced, ("test",), {"split": "test"}
    elif case == "fer2013":
        root, m = fake.make_fer2013(tmp_path / "fer")
        func, old, new = fer2013, ("public_test",), {"split": "public_test"}
    elif case == "check_dataset":
        root, m = fake.make_uc_merced(tmp_path / "ucm")
        func = lambda *a, **k: check_dataset("uc_merced", *a, **k)  # noqa: E731
        old, new = (False,), {"verify": False}
    else:
        root, m = fake.make_celeba(tmp_path / "celeba")
        func = celeba_identities if case == "celeba_identities" else celeba_file_list
        old = (3, 9, 1) + (("test",) if case == "celeba_identities" else ())
        new = dict(zip(["n_identities", "n_images", "seed", "split"], old))
    names = ", ".join(new)
    with pytest.warns(FutureWarning, match=f"Passing {names} positionally to "
                                           f"{case}\\(\\) is deprecated"):
        got = func(root, *old, manifest=m)
    _same(got, func(root, **new, manifest=m))
    if case == "kdef":
        assert len(got) == 2 * 7 and set(got.metadata["session"]) == {"B"}
    with pytest.raises(TypeError, match="multiple values"):
        func(root, *old, **new, manifest=m)


# ---------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------
def test_report_object(tmp_path):
    root, m = fake.make_fer2013(tmp_path / "fer")
    report = check_dataset("fer2013", root, manifest=m)
    assert isinstance(report, DatasetReport) and report.ok and report.problems == []
    assert report.summary["Training"]["happy"] == 2
    table = report.summary_table()
    assert table.loc["angry", "PublicTest"] == 1
    text = str(report)
    assert text.startswith("fer2013 at ") and ": usable" in text
    assert "Training" in text and "problems" not in text
    assert "ok=True" in repr(report)
    assert isinstance(fer2013(root, manifest=m), StimulusSet)
