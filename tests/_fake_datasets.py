"""Small fake copies of the real data sets, in their exact layouts and file formats, plus
manifests that describe them (the shipped manifests describe the real, much larger copies).

Every builder returns ``(folder, manifest)``: the folder to pass as ``root`` and a manifest
dict whose counts and checksums match the fake.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
USAGES = ("Training", "PublicTest", "PrivateTest")


def real_manifest(name: str) -> dict:
    """The shipped manifest, read straight from the repository's data_manifests/."""
    return json.loads((REPO / "data_manifests" / f"{name}.json").read_text(encoding="utf-8"))


def md5(path: Path) -> str:
    return "md5:" + hashlib.md5(Path(path).read_bytes()).hexdigest()


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut a file to a fraction of its size (a truncated download)."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])


# ---------------------------------------------------------------------------------------
# FER2013
# ---------------------------------------------------------------------------------------
def fer_pixels(row: int) -> np.ndarray:
    """The 48x48 uint8 image of data row ``row``: a gradient plus row-specific noise."""
    rng = np.random.default_rng(row)
    grad = np.add.outer(np.arange(48), np.arange(48)) * 2
    return ((grad + rng.integers(0, 40, (48, 48))) % 256).astype(np.uint8)


def fer_rows(per_usage: dict[str, int] | None = None) -> list[tuple[int, str, np.ndarray]]:
    """(emotion, usage, pixels) rows: ``per_usage[u]`` rows of each class per usage,
    Training first as in the real file, classes interleaved."""
    per_usage = per_usage or {"Training": 2, "PublicTest": 1, "PrivateTest": 1}
    rows = []
    for usage in USAGES:
        for _rep in range(per_usage[usage]):
            for k in (3, 0, 6, 1, 5, 2, 4):  # not sorted, so the order matters
                rows.append((k, usage, fer_pixels(len(rows))))
    return rows


def fer_counts(rows, classes) -> dict:
    counts = {u: {c: 0 for c in classes} for u in USAGES}
    for k, usage, _ in rows:
        counts[usage][classes[k]] += 1
    return counts


def make_fer2013(root: Path, layout: str = "canonical", rows=None) -> tuple[Path, dict]:
    """A fake FER2013.

    layout: ``"canonical"`` (root/fer2013.csv), ``"torchvision"``
    (root/fer2013/fer2013.csv), ``"icml"`` (root/icml_face_data.csv, spaced header) or
    ``"split"`` (root/train.csv + root/test.csv, torchvision's label-less test file).
    """
    rows = fer_rows() if rows is None else rows
    m = real_manifest("fer2013")
    m["counts"] = fer_counts(rows, m["classes"])
    folder = Path(root)
    base = folder / "fer2013" if layout == "torchvision" else folder
    base.mkdir(parents=True, exist_ok=True)
    pix = lambda p: " ".join(map(str, p.ravel().tolist()))  # noqa: E731
    if layout in ("canonical", "torchvision"):
        path = base / "fer2013.csv"
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["emotion", "pixels", "Usage"])
            for k, usage, p in rows:
                w.writerow([k, pix(p), usage])
        files = ["fer2013.csv"]
    elif layout == "icml":
        path = base / "icml_face_data.csv"
        with open(path, "w", newline="") as fh:
            fh.write("emotion, Usage, pixels\n")
            for k, usage, p in rows:
                fh.write(f"{k}, {usage}, {pix(p)}\n")
        files = ["icml_face_data.csv"]
    elif layout == "split":
        with open(base / "train.csv", "w", newline="") as fh:
            fh.write("emotion,pixels\n")
            for k, usage, p in rows:
                if usage == "Training":
                    fh.write(f'{k},"{pix(p)}"\n')
        with open(base / "test.csv", "w", newline="") as fh:
            fh.write("pixels\n")
            for _k, usage, p in rows:
                if usage != "Training":
                    fh.write(f'"{pix(p)}"\n')
        files = ["train.csv", "test.csv"]
    else:
        raise ValueError(layout)
    m["checksums"] = {f: md5(base / f) for f in files}
    return folder, m


# ---------------------------------------------------------------------------------------
# CelebA
# ---------------------------------------------------------------------------------------
# celeba_id -> number of images: ties in count (101/7, 3/7; 9/5, 4/5) test the tie rule.
CELEBA_COUNTS = {101: 9, 7: 8, 3: 8, 42: 6, 9: 5, 4: 5, 55: 2}


def celeba_gray(celeba_id: int) -> int:
    """The gray level of every image of an identity, so tests can tell identities apart."""
    return 20 + 30 * (sorted(CELEBA_COUNTS).index(celeba_id))


def make_celeba(root: Path, layout: str = "canonical", size=(178, 218),
                n_identities: int = 4, n_images: int = 14) -> tuple[Path, dict]:
    """A fake CelebA: JPEGs ``img_align_celeba/000001.jpg ...`` of ``size`` (width,
    height), ``identity_CelebA.txt`` and ``list_eval_partition.txt``; files of different
    identities interleaved. ``layout="torchvision"`` puts it all in ``root/celeba/``."""
    folder = Path(root)
    base = folder / "celeba" if layout == "torchvision" else folder
    img_dir = base / "img_align_celeba"
    img_dir.mkdir(parents=True, exist_ok=True)
    order = [cid for cid, n in CELEBA_COUNTS.items() for _ in range(n)]
    order = [order[i] for i in np.random.default_rng(0).permutation(len(order))]
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    ident_lines, part_lines = [], []
    partition = {"train": 0, "valid": 0, "test": 0}
    for i, cid in enumerate(order, start=1):
        name = f"{i:06d}.jpg"
        g = celeba_gray(cid)
        arr = np.stack([np.full((h, w), g), (xx * 255 // w), (yy * 255 // h)], -1)
        arr[..., 0] = g  # red carries the identity, green/blue a pattern for crop checks
        Image.fromarray(arr.astype(np.uint8), "RGB").save(img_dir / name, quality=95)
        ident_lines.append(f"{name} {cid}\n")
        code = 0 if i % 10 < 8 else (1 if i % 10 == 8 else 2)
        partition[("train", "valid", "test")[code]] += 1
        part_lines.append(f"{name} {code}\n")
    (base / "identity_CelebA.txt").write_text("".join(ident_lines))
    (base / "list_eval_partition.txt").write_text("".join(part_lines))
    m = real_manifest("celeba")
    m["counts"] = {"images": len(order), "identities": len(CELEBA_COUNTS),
                   "partition": partition}
    m["subset"]["n_identities"] = n_identities
    m["subset"]["n_images"] = n_images
    m["checksums"] = {f: md5(base / f) for f in ("identity_CelebA.txt",
                                                 "list_eval_partition.txt")}
    return folder, m


# ---------------------------------------------------------------------------------------
# KDEF
# ---------------------------------------------------------------------------------------
def kdef_gray(expression: str, viewpoint: str, manifest: dict) -> int:
    """The gray level of a fake KDEF image: tells expression and viewpoint apart."""
    f = manifest["factors"]
    return 20 + 25 * list(f["expression"]).index(expression) + 8 * list(f["viewpoint"]).index(viewpoint)


def make_kdef(root: Path, persons_per_sex: int = 2, sessions=("A", "B"), size=(56, 76),
              lower_case=(), inner: str = "KDEF", pattern: bool = False) -> tuple[Path, dict]:
    """A fake KDEF: ``root/KDEF/AF01/AF01ANHL.JPG ...`` for every sex, person, session,
    expression and viewpoint. Images are ``size`` (width, height) JPEGs of uniform gray
    (:func:`kdef_gray`), or a gradient-and-checker pattern when ``pattern``. Folders in
    ``lower_case`` get ``.jpg`` extensions. The manifest's crop is scaled to ``size``."""
    m = real_manifest("kdef")
    m["factors"]["persons_per_sex"] = persons_per_sex
    n_views = len(m["factors"]["viewpoint"])
    n_expr = len(m["factors"]["expression"])
    m["counts"] = {"images": 2 * persons_per_sex * len(sessions) * n_expr * n_views,
                   "identities": 2 * persons_per_sex, "images_per_folder": n_expr * n_views}
    w, h = size
    if (w, h) != (m["image"]["width"], m["image"]["height"]):
        m["preprocessing"]["center_crop"] = int(m["preprocessing"]["center_crop"] * w / 562)
        m["image"] = {**m["image"], "width": w, "height": h}
    base = Path(root) / inner if inner else Path(root)
    yy, xx = np.mgrid[0:h, 0:w]
    checker = ((xx // 16 + yy // 16) % 2) * 60
    for s in sessions:
        for sex in m["factors"]["sex"]:
            for p in range(1, persons_per_sex + 1):
                folder = f"{s}{sex}{p:02d}"
                (base / folder).mkdir(parents=True, exist_ok=True)
                ext = ".jpg" if folder in lower_case else ".JPG"
                for e in m["factors"]["expression"]:
                    for v in m["factors"]["viewpoint"]:
                        if pattern:
                            arr = (xx * 150 // w + checker + 3 * p) % 256
                            arr = np.stack([arr, (yy * 255) // h, np.full_like(arr, 90)], -1)
                        else:
                            arr = np.full((h, w, 3), kdef_gray(e, v, m))
                        Image.fromarray(arr.astype(np.uint8), "RGB").save(
                            base / folder / f"{folder}{e}{v}{ext}", format="JPEG", quality=95)
    return Path(root), m


# ---------------------------------------------------------------------------------------
# UC Merced
# ---------------------------------------------------------------------------------------
UCM_CLASSES = ("agricultural", "beach", "tenniscourt")


def ucm_gray(scene: str) -> int:
    return 40 + 80 * UCM_CLASSES.index(scene)


def make_uc_merced(root: Path, classes=UCM_CLASSES, n_per_class: int = 20,
                   size=(32, 32)) -> tuple[Path, dict]:
    """A fake UC Merced: ``root/UCMerced_LandUse/Images/<class>/<class>NN.tif``, RGB
    TIFFs of uniform gray per class (:func:`ucm_gray`)."""
    m = real_manifest("uc_merced")
    m["classes"] = list(classes)
    m["images_per_class"] = n_per_class
    m["image"] = {**m["image"], "width": size[0], "height": size[1]}
    base = Path(root) / "UCMerced_LandUse" / "Images"
    for scene in classes:
        (base / scene).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            arr = np.full((size[1], size[0], 3), ucm_gray(scene), np.uint8)
            arr[0, 0] = i  # make every file distinct
            Image.fromarray(arr, "RGB").save(base / scene / f"{scene}{i:02d}.tif",
                                             format="TIFF")
    return Path(root), m


# ---------------------------------------------------------------------------------------
# All four, as an incomplete copy of the real sets under one data root
# ---------------------------------------------------------------------------------------
def make_celeba_annotations_only(root: Path, n_present: int = 4, n_identities: int = 1503,
                                 per_identity: int = 22) -> Path:
    """A CelebA whose ``identity_CelebA.txt`` lists enough identities and images for the
    paper's subset (1,503 identities, 28,709 training images) but whose
    ``img_align_celeba/`` holds the files of only the first ``n_present`` identities
    (CelebA ids 1..n_present, which the subset rule ranks first): an interrupted download.
    Images are 178 x 218 JPEGs whose gray level follows the identity."""
    base = Path(root)
    img_dir = base / "img_align_celeba"
    img_dir.mkdir(parents=True, exist_ok=True)
    w, h = 178, 218
    ident_lines, part_lines = [], []
    for cid in range(1, n_identities + 1):
        for j in range(per_identity):
            name = f"{(cid - 1) * per_identity + j + 1:06d}.jpg"
            ident_lines.append(f"{name} {cid}\n")
            part_lines.append(f"{name} {0 if cid % 10 < 8 else (1 if cid % 10 == 8 else 2)}\n")
            if cid <= n_present:
                arr = np.full((h, w, 3), 30 + 50 * (cid - 1) + 3 * j, np.uint8)
                Image.fromarray(arr, "RGB").save(img_dir / name, quality=95)
    (base / "identity_CelebA.txt").write_text("".join(ident_lines))
    (base / "list_eval_partition.txt").write_text("".join(part_lines))
    return base


def make_paper_copies(root: Path) -> Path:
    """Small, incomplete copies of FER2013, CelebA, KDEF and UC Merced in the real layouts
    under ``root`` (a data root: ``root/{fer2013,celeba,kdef,uc_merced}``). They do not
    match the shipped manifests (checksums, counts, missing files and folders), so the
    loaders accept them only with ``on_problem="skip"``. KDEF images have the real size
    (562 x 762) so the manifest's crop applies as it does to the real set."""
    root = Path(root)
    make_fer2013(root / "fer2013")
    make_celeba_annotations_only(root / "celeba")
    make_kdef(root / "kdef", persons_per_sex=2, sessions=("A", "B"), size=(562, 762),
              pattern=True)
    make_uc_merced(root / "uc_merced", n_per_class=10, size=(256, 256))
    return root
