"""CelebA identities: a deterministic, recordable subset of identities for training an
identity classifier.

Why torchvision's ``CelebA`` class is not instantiated: it refuses to open unless
``list_attr_celeba.txt``, ``list_bbox_celeba.txt`` and ``list_landmarks_align_celeba.txt``
are present and match their md5s, files an identity subset never reads, and it re-hashes
them on every call. The loader reads the same layout (``img_align_celeba/``,
``identity_CelebA.txt``, ``list_eval_partition.txt``) directly, so a folder prepared for
torchvision works here unchanged.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .._metadata import categorical
from .._utils import check_choice, check_positive_int, check_seed, keyword_only
from ..stimuli import StimulusSet
from ._checksums import verify_checksums
from ._loader import absolute_paths, check_copy, load_stimuli
from ._manifest import load_manifest
from ._paths import dataset_root, find_base, is_os_junk, searched
from ._report import ON_PROBLEM, DatasetReport, Findings

__all__ = ["CELEBA_TRAIN_AUGMENT", "celeba_file_list", "celeba_identities", "check",
           "save_file_list"]

_NAME = "celeba"

#: The augmentation the study applies to CelebA training images, for the training loop
#: to apply (the loader returns unflipped images): ``"hflip"`` = flip each image left-right
#: with probability 0.5, drawn anew every epoch. On a batch ``x`` of shape (n, C, H, W):
#: ``x = torch.where(torch.rand(n, 1, 1, 1, generator=g) < 0.5, x.flip(-1), x)``.
CELEBA_TRAIN_AUGMENT = "hflip"

_LIST_COLUMNS = ["file", "celeba_id", "identity", "split"]
_SPLITS = ("train", "test")


# ---------------------------------------------------------------------------------------
# Reading the annotation files
# ---------------------------------------------------------------------------------------
def _locate(root: Path, manifest: Mapping) -> Path:
    layout = manifest["layout"]
    base = find_base(root, manifest, lambda b: (b / layout["identity_file"]).is_file()
                     or (b / layout["image_dir"]).is_dir())
    if base is None:
        raise FileNotFoundError(
            f"{layout['identity_file']} and {layout['image_dir']}/ not found in "
            f"{searched(root, manifest)}. "
            f"See data_manifests/{_NAME}.json for how to obtain CelebA."
        )
    return base


def _read_pairs(path: Path, findings: Findings, valid: set[int] | None = None) -> pd.DataFrame:
    """Lines ``<file> <integer>`` of a CelebA annotation file; bad lines are problems."""
    files, values, seen = [], [], set()
    fname = path.name
    bad = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                bad.append(f"{fname} line {line_no}: expected '<file> <number>', got {line.strip()!r}")
                continue
            try:
                value = int(fields[1])
            except ValueError:
                bad.append(f"{fname} line {line_no}: {fields[1]!r} is not an integer")
                continue
            if valid is not None and value not in valid:
                bad.append(f"{fname} line {line_no}: value {value} is not one of {sorted(valid)}")
                continue
            if fields[0] in seen:
                bad.append(f"{fname} line {line_no}: {fields[0]} is listed twice")
                continue
            seen.add(fields[0])
            files.append(fields[0])
            values.append(value)
    findings.add_bad_lines(fname, bad)
    return pd.DataFrame({"file": files, "value": np.asarray(values, np.int64)})


def _read_annotations(base: Path, manifest: Mapping, verify: bool, findings: Findings):
    """Identity table (file, celeba_id), partition Series (file -> name) or None, and the
    set of image files on disk (None when the image folder is missing)."""
    layout, counts = manifest["layout"], manifest["counts"]
    if verify:
        verify_checksums(base, manifest, findings,
                         only=[layout["identity_file"], layout["partition_file"]])
    ident_path = base / layout["identity_file"]
    if not ident_path.is_file():
        findings.add("missing", f"{layout['identity_file']} not found in {base}")
        ident = pd.DataFrame({"file": [], "celeba_id": []})
    else:
        ident = _read_pairs(ident_path, findings).rename(columns={"value": "celeba_id"})
        if len(ident) != counts["images"]:
            findings.add("count", f"wrong count: {layout['identity_file']} lists {len(ident)} "
                                  f"images, expected {counts['images']}")
        n_ids = ident["celeba_id"].nunique()
        if n_ids != counts["identities"]:
            findings.add("count", f"wrong count: {layout['identity_file']} has {n_ids} "
                                  f"identities, expected {counts['identities']}")

    partition = None
    part_path = base / layout["partition_file"]
    codes = {int(k): v for k, v in manifest["partition_codes"].items()}
    if part_path.is_file():
        part = _read_pairs(part_path, findings, valid=set(codes))
        partition = pd.Series([codes[v] for v in part["value"]], index=part["file"], dtype=object)
        for name, want in counts.get("partition", {}).items():
            got = int((partition == name).sum())
            if got != want:
                findings.add("count", f"wrong count: {layout['partition_file']} puts {got} "
                                      f"images in {name}, expected {want}")
        if len(ident):
            only_part = set(partition.index) - set(ident["file"])
            if only_part:
                findings.add("layout", f"{layout['partition_file']} lists {len(only_part)} "
                                       f"file(s) absent from {layout['identity_file']}, e.g. "
                                       f"{sorted(only_part)[0]}")
    elif not layout.get("partition_optional", False):
        findings.add("missing", f"{layout['partition_file']} not found in {base}")
    else:
        findings.note(f"{layout['partition_file']} is absent: the official partition is "
                      "not recorded")

    image_dir = base / layout["image_dir"]
    on_disk = None
    if not image_dir.is_dir():
        findings.add("missing", f"image folder {layout['image_dir']}/ not found in {base}")
    else:
        on_disk = set()
        subdirs = []
        with os.scandir(image_dir) as it:
            for entry in it:
                if is_os_junk(entry.name):
                    continue
                if entry.is_dir():
                    subdirs.append(entry.name)
                else:
                    on_disk.add(entry.name)
        if subdirs:
            findings.note(f"{layout['image_dir']}/ holds folder(s) that are ignored: "
                          f"{', '.join(sorted(subdirs)[:10])}")
        if len(ident):
            for name in sorted(on_disk - set(ident["file"])):
                findings.add("stray", f"unexpected file {layout['image_dir']}/{name} in the "
                                      f"image folder (not listed in {layout['identity_file']}; "
                                      "remove or move it)")
    return ident, partition, on_disk


def _scan(folder: Path, manifest: Mapping, findings: Findings, verify: bool,
          choose: Callable | None = None) -> tuple[Path, pd.DataFrame]:
    """Locate a copy, read and check its annotation files and find the images chosen by
    ``choose(ident, findings, base)`` (a table with a column ``file``; None: every image
    the identity file lists, as a check wants).

    Returns ``(base, table)``: the chosen images that are on disk, with the columns
    ``path``, ``rel`` and, when the partition file is present, ``partition`` added. Each
    chosen image that is absent is a problem.
    """
    base = _locate(folder, manifest)
    ident, partition, on_disk = _read_annotations(base, manifest, verify, findings)
    if choose is None:
        table = ident
    else:
        if any(kind == "missing" for kind, _ in findings.problems):
            # without the identity file or the image folder there is nothing to choose
            # from or to load, whatever on_problem says
            findings.raise_if_any(base)
        table = choose(ident, findings, base)
    image_dir = manifest["layout"]["image_dir"]
    if on_disk is None:  # already a problem of its own; no image is named missing
        table = table.iloc[:0]
    else:
        there = table["file"].isin(on_disk).to_numpy()
        for f in table.loc[~there, "file"]:
            findings.add("missing", f"missing image {image_dir}/{f}")
        table = table[there]
    files = table["file"].tolist()
    table = table.reset_index(drop=True).assign(
        path=[base / image_dir / f for f in files], rel=[f"{image_dir}/{f}" for f in files])
    if partition is not None:
        table["partition"] = table["file"].map(partition)
    return base, table


# ---------------------------------------------------------------------------------------
# The subset rule
# ---------------------------------------------------------------------------------------
def _select(ident: pd.DataFrame, n_identities: int, n_images: int, seed: int,
            test_fraction: float) -> pd.DataFrame:
    """The subset rule of the manifest's ``subset.rule``: a table of file, celeba_id,
    identity (rank) and split for both splits."""
    counts = ident.groupby("celeba_id").size()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if n_identities > len(ranked):
        raise ValueError(
            f"Argument n_identities={n_identities} is more than the {len(ranked)} identities "
            "identity_CelebA.txt lists; ask for at most that many."
        )
    if n_images < n_identities:
        raise ValueError(
            f"Argument n_images={n_images} is smaller than n_identities={n_identities}; give "
            "at least one training image per identity."
        )
    base_q, extra = divmod(n_images, n_identities)
    files_of = {cid: sorted(g) for cid, g in ident.groupby("celeba_id")["file"]}
    rows, short = [], []
    for rank, (cid, count) in enumerate(ranked[:n_identities]):
        q = base_q + (1 if rank < extra else 0)
        h = 0 if test_fraction <= 0 else max(1, math.floor(test_fraction * q + 0.5))
        if count < q + h:
            short.append(f"{cid} ({count} < {q + h})")
            continue
        files = files_of[cid]
        perm = np.random.default_rng([seed, int(cid)]).permutation(len(files))
        picked = [files[j] for j in perm[: q + h]]
        rows += [(f, int(cid), rank, "test") for f in sorted(picked[:h])]
        rows += [(f, int(cid), rank, "train") for f in sorted(picked[h:])]
    if short:
        raise ValueError(
            f"{len(short)} of the chosen identities have fewer images than n_images="
            f"{n_images} and the held-out share need (celeba_id (images < needed)): "
            f"{', '.join(short[:10])}{' ...' if len(short) > 10 else ''}. Ask for fewer "
            "images (n_images) or fewer identities (n_identities)."
        )
    table = pd.DataFrame(rows, columns=_LIST_COLUMNS)
    return table.sort_values(["identity", "split", "file"], ascending=[True, False, True],
                             ignore_index=True)


def _read_file_list(file_list) -> pd.DataFrame:
    if isinstance(file_list, pd.DataFrame):
        table = file_list.copy()
        source = "the DataFrame given"
    else:
        path = Path(file_list).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"Argument file_list: no file at {path}. Give a CSV written by "
                "save_file_list(), or a DataFrame with columns file, celeba_id, identity."
            )
        table = pd.read_csv(path, dtype={"file": str})
        source = str(path)
    missing = [c for c in _LIST_COLUMNS[:3] if c not in table.columns]
    if missing:
        raise ValueError(
            f"Argument file_list: {source} lacks column(s) {missing}; it has "
            f"{list(table.columns)}. Give a list written by save_file_list()."
        )
    for col in ("celeba_id", "identity"):
        if not pd.api.types.is_integer_dtype(table[col]):
            raise ValueError(
                f"Argument file_list: column {col} of {source} must hold integers, got "
                f"dtype {table[col].dtype}."
            )
    if "split" in table.columns:
        bad = sorted(set(table["split"].astype(str)) - set(_SPLITS))
        if bad:
            raise ValueError(
                f"Argument file_list: column split of {source} has value(s) {bad}; valid "
                f"values are {{{', '.join(_SPLITS)}}}."
            )
    if table["file"].duplicated().any():
        dup = table.loc[table["file"].duplicated(), "file"].iloc[0]
        raise ValueError(f"Argument file_list: {source} lists {dup} more than once.")
    cols = [c for c in _LIST_COLUMNS if c in table.columns]
    return table[cols].reset_index(drop=True)


def save_file_list(stim, path: str | os.PathLike) -> Path:
    """Record the files a CelebA subset is made of, for re-use with
    ``celeba_identities(file_list=path)``.

    Parameters
    ----------
    stim : StimulusSet or pandas.DataFrame
        The output of :func:`celeba_identities` or :func:`celeba_file_list`: it needs the
        columns ``file``, ``celeba_id``, ``identity`` (and ``split``, kept when present).
    path : path
        The CSV file to write.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    table = stim.metadata if isinstance(stim, StimulusSet) else stim
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            "Argument stim must be a StimulusSet from celeba_identities() or a DataFrame from "
            f"celeba_file_list(), got {type(stim).__name__}."
        )
    missing = [c for c in _LIST_COLUMNS[:3] if c not in table.columns]
    if missing:
        raise ValueError(
            f"Argument stim lacks the column(s) {missing} a CelebA file list needs; give the "
            "output of celeba_identities() or celeba_file_list()."
        )
    cols = [c for c in _LIST_COLUMNS if c in table.columns]
    out = pd.DataFrame({c: np.asarray(table[c]) for c in cols})
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return path


def _subset(manifest: Mapping, n_identities, n_images, seed, file_list,
            split: str | None) -> Callable:
    """Check the subset options and return the ``choose`` of :func:`_scan`: the recorded
    ``file_list``, else the subset rule; only the rows of ``split`` (None: both)."""
    if file_list is not None:
        if n_identities is not None or n_images is not None:
            raise ValueError(
                "Arguments file_list and n_identities/n_images exclude each other: a file list "
                "fixes the subset. Pass only file_list, or leave it None."
            )
        listed = _read_file_list(file_list)
    else:
        sub = manifest["subset"]
        n_identities = check_positive_int(
            "n_identities", sub["n_identities"] if n_identities is None else n_identities)
        n_images = check_positive_int("n_images", sub["n_images"] if n_images is None
                                      else n_images)
        seed = check_seed("seed", seed)
    identity_file = manifest["layout"]["identity_file"]

    def choose(ident: pd.DataFrame, findings: Findings, base: Path) -> pd.DataFrame:
        if file_list is not None:
            table = listed
            lookup = dict(zip(ident["file"], ident["celeba_id"], strict=True))
            for f, cid in zip(table["file"], table["celeba_id"], strict=True):
                if f not in lookup:
                    findings.add("layout", f"file list names {f}, which {identity_file} does "
                                           "not list")
                elif lookup[f] != cid:
                    findings.add("layout", f"file list says {f} is CelebA identity {cid} but "
                                           f"{identity_file} says {lookup[f]}")
        else:
            findings.checkpoint(base)  # the rule needs a sound identity file
            table = _select(ident, n_identities, n_images, seed,
                            float(manifest["subset"]["test_fraction"]))
        if split is not None and "split" in table.columns:
            present = sorted(set(table["split"]))
            table = table[table["split"] == split]
            if table.empty:
                raise ValueError(
                    f"Argument split={split!r}: the file list has no rows of that split (it "
                    f"holds {present}). Pass split={present[0]!r} or split=None."
                )
        return table

    return choose


@keyword_only("n_identities", "n_images", "seed")
def celeba_file_list(
    root: str | os.PathLike | None = None,
    *,
    n_identities: int | None = None,
    n_images: int | None = None,
    seed: int = 0,
    verify: bool = True,
    on_problem: str = "raise",
    manifest: Mapping | str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The files :func:`celeba_identities` would load, for both splits, without loading
    any image.

    Parameters
    ----------
    root : path, optional
        The CelebA folder (default: ``data_root() / "celeba"``).
    n_identities, n_images : int, optional
        Subset size (default: the manifest's 1,503 identities and 28,709 training images).
    seed : int
        Seed of the per-identity image choice (>= 0).
    verify : bool
        Compare the annotation files' md5s with the manifest's.
    on_problem : {"raise", "skip"}
        As for :func:`celeba_identities`: "skip" logs the problems and leaves out the
        chosen images that are missing.
    manifest : dict or path, optional
        A manifest to use instead of ``data_manifests/celeba.json``.

    Returns
    -------
    pandas.DataFrame
        Columns ``file``, ``celeba_id``, ``identity`` (class label: rank 0..n-1) and
        ``split`` (``"train"`` / ``"test"``); pass it to :func:`save_file_list`.
    """
    m = load_manifest(_NAME, manifest)
    check_choice("on_problem", on_problem, ON_PROBLEM)
    choose = _subset(m, n_identities, n_images, seed, None, None)
    findings = Findings(_NAME, on_problem)
    base, table = _scan(dataset_root(_NAME, root), m, findings, verify, choose)
    findings.settle(base)
    return table[_LIST_COLUMNS]


@keyword_only("n_identities", "n_images", "seed", "split")
def celeba_identities(
    root: str | os.PathLike | None = None,
    *,
    n_identities: int | None = None,
    n_images: int | None = None,
    seed: int = 0,
    split: str | None = "train",
    size: int = 48,
    file_list: str | os.PathLike | pd.DataFrame | None = None,
    verify: bool = True,
    on_problem: str = "raise",
    manifest: Mapping | str | os.PathLike | None = None,
) -> StimulusSet:
    """A subset of CelebA identities, for training an identity classifier.

    The subset rule (also in ``data_manifests/celeba.json``, ``subset.rule``):

    1. Count the images of every identity in ``identity_CelebA.txt`` (files on disk do
       not enter the rule).
    2. Rank identities by image count, most first, ties to the smaller CelebA identity
       number; keep the first ``n_identities``. The rank is the class label ``identity``.
    3. Training quota ``q = n_images // n_identities`` per identity, one more for the
       first ``n_images % n_identities`` in rank order: the quotas sum to ``n_images``.
    4. Held-out quota ``h = max(1, floor(test_fraction * q + 0.5))`` (manifest
       ``test_fraction`` = 0.1, i.e. 2 for q = 19 or 20).
    5. Sort an identity's files by name and permute them with
       ``numpy.random.default_rng([seed, celeba_id]).permutation``: the first ``h`` are
       split ``"test"``, the next ``q`` split ``"train"``. Each identity's choice depends
       only on its own files and the seed.

    The choice is deterministic for a given ``identity_CelebA.txt``, seed and numpy
    random stream; to be immune to any change record it with :func:`save_file_list` and
    reload it with ``file_list=``. The official ``list_eval_partition.txt`` is recorded
    (column ``partition``) but not used: its partitions are identity-disjoint.

    Preprocessing: grayscale, center crop 178 x 178, resize to ``size``. The study also
    flips training images left-right at random; that augmentation is for the training
    loop to apply (:data:`CELEBA_TRAIN_AUGMENT`), the returned images are unflipped.

    Parameters
    ----------
    root : path, optional
        Folder holding ``img_align_celeba/``, ``identity_CelebA.txt`` and (optionally)
        ``list_eval_partition.txt``, directly or in a ``celeba/`` subfolder (torchvision's
        layout). Default: ``data_root() / "celeba"``.
    n_identities : int, optional
        Number of identities (default: the manifest's, 1,503).
    n_images : int, optional
        Number of training images (default: the manifest's, 28,709, the size of FER2013's
        Training usage); the test split adds ``h`` per identity.
    seed : int
        Seed of the per-identity image choice (>= 0).
    split : {"train", "test", None}
        Which split to return; None returns both (column ``split`` tells them apart).
    size : int
        Output height and width (default 48).
    file_list : path or pandas.DataFrame, optional
        Re-use a recorded subset exactly (a CSV from :func:`save_file_list`); excludes
        ``n_identities`` and ``n_images``. Rows of other splits are skipped when the list
        has a ``split`` column.
    verify : bool
        Compare the annotation files' md5s with the manifest's (once, then remembered under
        ``$DNNRSA_HOME``). Counts, file names and the decoding of every loaded image are
        checked in any case; no per-image checksums exist.
    on_problem : {"raise", "skip"}
        "raise" (default): one error naming every problem. "skip": log the problems as
        one warning and load what is fine: chosen images that are missing or do not
        decode are left out, and the subset rule is applied to the annotation lines that
        are sound (a malformed line's image is not chosen). A missing annotation file or
        image folder is an error in any case.
    manifest : dict or path, optional
        A manifest to use instead of ``data_manifests/celeba.json``.

    Returns
    -------
    StimulusSet
        ``images`` (n, 1, size, size) float32 in [0, 1]; ``metadata`` with ``path``
        (absolute), ``file``, ``celeba_id``, ``identity`` (label 0..n_identities-1, in rank
        order), ``split`` and, when ``list_eval_partition.txt`` is present, ``partition``.

    Raises
    ------
    FileNotFoundError
        Missing annotation files or image folder; (on_problem="raise") missing chosen
        images (all named).
    ValueError
        A subset that cannot be drawn; (on_problem="raise") bad annotation lines, wrong
        counts or checksums, stray files in the image folder, undecodable images (all
        named).
    """
    m = load_manifest(_NAME, manifest)
    check_choice("split", split, list(_SPLITS) + [None])
    choose = _subset(m, n_identities, n_images, seed, file_list, split)
    partitions = list(m["partition_codes"].values())

    def metadata(table: pd.DataFrame) -> pd.DataFrame:
        meta = pd.DataFrame({
            "path": absolute_paths(table),
            "file": table["file"].to_numpy(),
            "celeba_id": table["celeba_id"].to_numpy(np.int64),
            "identity": table["identity"].to_numpy(np.int64),
        })
        if "split" in table.columns:
            meta["split"] = categorical(table["split"], _SPLITS)
        if "partition" in table.columns:
            meta["partition"] = categorical(table["partition"], partitions)
        return meta

    return load_stimuli(
        _NAME, m, root, lambda folder, findings, verify: _scan(folder, m, findings, verify,
                                                               choose),
        metadata, what=f"CelebA image of split {split!r}",
        stimulus_name="celeba_identities" + (f"_{split}" if split else ""),
        size=size, verify=verify, on_problem=on_problem,
    )


def check(root: Path, manifest: Mapping, verify: bool) -> DatasetReport:
    """Check every image the identity file of a CelebA copy lists (see
    :func:`check_copy`)."""

    def summary(table: pd.DataFrame) -> dict:
        if "partition" in table.columns:
            groups = table["partition"].fillna("unlisted")
            order = list(manifest["partition_codes"].values()) + ["unlisted"]
        else:
            groups, order = pd.Series("all", index=table.index), ["all"]
        out = {}
        for g in order:
            sel = table[groups == g]
            if len(sel):
                out[g] = {"images": int(len(sel)), "identities": int(sel["celeba_id"].nunique())}
        return out

    return check_copy(_NAME, manifest, root, verify,
                      lambda folder, findings, verify: _scan(folder, manifest, findings, verify),
                      summary)
