"""KDEF (Karolinska Directed Emotional Faces): the read-out stimuli.

File names encode every factor: ``AF01ANHL.JPG`` is session A, female, person 01, angry,
half left; each session+person has its own folder (``KDEF/AF01/``). Codes, identities,
angles and counts come from ``data_manifests/kdef.json``.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._metadata import categorical
from .._utils import check_choice, keyword_only
from ..stimuli import StimulusSet
from ._loader import absolute_paths, check_copy, load_stimuli
from ._manifest import load_manifest
from ._paths import find_base, list_dirs, list_files, searched
from ._report import DatasetReport, Findings, counts_summary

__all__ = ["check", "kdef", "parse_kdef_name"]

_NAME = "kdef"


class _Grammar:
    """KDEF's naming rules, built from the manifest's factor codes."""

    def __init__(self, manifest: Mapping):
        f = manifest["factors"]
        self.sessions = list(f["session"])
        self.sexes = list(f["sex"])
        self.sex_names = dict(f["sex"])
        self.n_persons = int(f["persons_per_sex"])
        self.expressions = list(f["expression"])
        self.viewpoints = list(f["viewpoint"])
        self.yaw = {k: float(v) for k, v in f["viewpoint"].items()}
        self.extensions = [e.lower() for e in manifest["layout"]["extensions"]]
        flags = 0 if manifest["layout"].get("case_sensitive", False) else re.IGNORECASE
        alt = lambda codes: "|".join(sorted(map(re.escape, codes), key=len, reverse=True))  # noqa: E731
        folder = rf"(?P<session>{alt(self.sessions)})(?P<sex>{alt(self.sexes)})(?P<person>\d{{2}})"
        self.folder_re = re.compile(rf"^{folder}$", flags)
        self.file_re = re.compile(
            rf"^{folder}(?P<expression>{alt(self.expressions)})"
            rf"(?P<viewpoint>{alt(self.viewpoints)})(?P<ext>\.[A-Za-z]+)$", flags)
        self.identities = [f"{s}{p:02d}" for s in self.sexes for p in range(1, self.n_persons + 1)]

    def canonical(self, code: str, valid: Sequence[str]) -> str:
        """The manifest's spelling of a code matched case-insensitively."""
        for v in valid:
            if v.lower() == code.lower():
                return v
        return code

    def parse(self, name: str) -> dict | None:
        m = self.file_re.match(name)
        if m is None or m["ext"].lower() not in self.extensions:
            return None
        out = {
            "session": self.canonical(m["session"], self.sessions),
            "sex": self.canonical(m["sex"], self.sexes),
            "person": int(m["person"]),
            "expression": self.canonical(m["expression"], self.expressions),
            "viewpoint": self.canonical(m["viewpoint"], self.viewpoints),
        }
        out["folder"] = f"{out['session']}{out['sex']}{out['person']:02d}"
        out["image_id"] = f"{out['folder']}{out['expression']}{out['viewpoint']}"
        return out

    def expected_name(self, folder: str, expression: str, viewpoint: str) -> str:
        return f"{folder}{expression}{viewpoint}.JPG"


def parse_kdef_name(name: str, manifest: Mapping | str | os.PathLike | None = None) -> dict:
    """The factors a KDEF file name encodes.

    Parameters
    ----------
    name : str
        A file name such as ``"AF01ANHL.JPG"`` (any case, ``.jpg``/``.jpeg`` too).
    manifest : dict or path, optional
        A manifest to use instead of ``data_manifests/kdef.json``.

    Returns
    -------
    dict
        ``session``, ``sex`` (code), ``person`` (int), ``expression``, ``viewpoint``,
        ``folder`` and ``image_id`` (e.g. ``"AF01ANHL"``).

    Examples
    --------
    >>> parse_kdef_name("AF01ANHL.JPG")["viewpoint"]
    'HL'
    """
    g = _Grammar(load_manifest(_NAME, manifest))
    out = g.parse(name)
    if out is None:
        raise ValueError(
            f"Argument name: {name!r} is not a KDEF image name. Expected "
            "<session><sex><person><expression><viewpoint>.JPG, e.g. 'AF01ANHL.JPG', with "
            f"session in {g.sessions}, sex in {g.sexes}, expression in {g.expressions}, "
            f"viewpoint in {g.viewpoints}."
        )
    return out


def _has_person_folders(g: _Grammar):
    return lambda b: any(g.folder_re.match(d) for d in list_dirs(b))


def _scan(root: Path, manifest: Mapping, g: _Grammar, sessions: Sequence[str],
          viewpoints: Sequence[str], findings: Findings) -> tuple[Path, pd.DataFrame]:
    """Find the images of the given sessions and viewpoints: ``(base, table)`` with one
    row per expected image found (``path``, parsed factors). Missing, stray, misplaced and
    duplicated files become problems."""
    base = find_base(root, manifest, _has_person_folders(g))
    if base is None:
        raise FileNotFoundError(
            "No KDEF person folders (AF01, AM01, ..., BM35) found in "
            f"{searched(root, manifest)}. "
            f"See data_manifests/{_NAME}.json for how to obtain KDEF."
        )
    folders = {}
    for d in list_dirs(base):
        m = g.folder_re.match(d)
        if m is None:
            findings.note(f"folder {d}/ in {base} is not a KDEF person folder; ignored")
            continue
        folders.setdefault(
            f"{g.canonical(m['session'], g.sessions)}{g.canonical(m['sex'], g.sexes)}"
            f"{m['person']}", []).append(d)
    top_files = list_files(base)
    if top_files:
        findings.note(f"{len(top_files)} file(s) next to the person folders are ignored: "
                      f"{', '.join(top_files[:5])}")

    wanted_folders = [f"{s}{x}{p:02d}" for s in sessions for x in g.sexes
                      for p in range(1, g.n_persons + 1)]
    wanted_views = set(viewpoints)
    n_per_folder = len(g.expressions) * len(viewpoints)
    rows, seen = [], {}
    for key, dirs in sorted(folders.items()):
        if key not in wanted_folders:
            if key[0] in sessions:  # e.g. AF36: a person number outside the manifest's range
                for d in dirs:
                    findings.add("stray", f"unexpected folder {d}/ (KDEF has persons 01-"
                                          f"{g.n_persons:02d} per sex)")
            continue
        if len(dirs) > 1:
            findings.add("layout", f"folders {' and '.join(dirs)} are the same person folder "
                                   "in different case; merge them")
        for d in dirs:
            for fname in list_files(base / d):
                info = g.parse(fname)
                rel = f"{d}/{fname}"
                if info is None:
                    findings.add("stray", f"unexpected file {rel}: not a KDEF image name "
                                          "(<session><sex><person><expression><viewpoint>"
                                          ".JPG, e.g. AF01ANHL.JPG); rename, move or "
                                          "remove it")
                    continue
                if info["folder"] != key:
                    findings.add("misplaced", f"image {rel} belongs in folder "
                                              f"{info['folder']}/, not {d}/")
                    continue
                if info["viewpoint"] not in wanted_views:
                    continue
                if info["image_id"] in seen:
                    findings.add("layout", f"image {info['image_id']} is present twice: "
                                           f"{seen[info['image_id']]} and {rel}")
                    continue
                seen[info["image_id"]] = rel
                rows.append({**info, "path": base / d / fname, "rel": rel})

    absent = [f for f in wanted_folders if f not in folders]
    if len(absent) > 10:  # one line rather than a hundred
        findings.add("missing", f"missing folders ({len(absent)} of {len(wanted_folders)}, "
                                f"{n_per_folder} images each): "
                                + ", ".join(f"{f}/" for f in absent))
    else:
        for f in absent:
            findings.add("missing", f"missing folder {f}/ ({n_per_folder} images)")
    for folder in wanted_folders:
        if folder not in folders:
            continue
        for e, v in itertools.product(g.expressions, viewpoints):
            if f"{folder}{e}{v}" not in seen:
                findings.add("missing", f"missing image {folder}/"
                                        f"{g.expected_name(folder, e, v)}")
    table = pd.DataFrame(rows, columns=["session", "sex", "person", "expression", "viewpoint",
                                        "folder", "image_id", "path", "rel"])
    # identity, session, expression, viewpoint, in the manifest's orders
    identity = [f"{x}{p:02d}" for x, p in zip(table["sex"], table["person"], strict=True)]
    order = np.lexsort([
        pd.Categorical(table["viewpoint"], g.viewpoints).codes,
        pd.Categorical(table["expression"], g.expressions).codes,
        pd.Categorical(table["session"], g.sessions).codes,
        pd.Categorical(identity, g.identities).codes,
    ])
    return base, table.iloc[order].reset_index(drop=True)


def _metadata(table: pd.DataFrame, g: _Grammar) -> pd.DataFrame:
    identity = [f"{x}{p:02d}" for x, p in zip(table["sex"], table["person"], strict=True)]
    meta = pd.DataFrame({
        "identity": categorical(identity, g.identities),
        "sex": categorical([g.sex_names[x] for x in table["sex"]],
                           [g.sex_names[x] for x in g.sexes]),
        "expression": categorical(table["expression"], g.expressions),
        "viewpoint": categorical(table["viewpoint"], g.viewpoints),
        "session": categorical(table["session"], g.sessions),
        "yaw": np.asarray([g.yaw[v] for v in table["viewpoint"]], np.float64),
        "image_id": table["image_id"].to_numpy(object),
        "path": absolute_paths(table),
    })
    return meta


@keyword_only("viewpoints", "sessions")
def kdef(
    root: str | os.PathLike | None = None,
    *,
    viewpoints: Sequence[str] = ("HL", "S", "HR"),
    sessions: Sequence[str] = ("A", "B"),
    size: int = 48,
    verify: bool = True,
    on_problem: str = "raise",
    manifest: Mapping | str | os.PathLike | None = None,
) -> StimulusSet:
    """KDEF face photographs with their factors.

    Parameters
    ----------
    root : path, optional
        The folder holding ``KDEF/`` (or the person folders ``AF01/``, ..., ``BM35/``
        themselves). Default: ``data_root() / "kdef"``.
    viewpoints : sequence of {"FL", "HL", "S", "HR", "FR"}
        Views to load (default: the study's half-left, straight and half-right).
    sessions : sequence of {"A", "B"}
        Photo sessions to load (default both).
    size : int
        Output height and width (default 48).
    verify : bool
        KDEF publishes no checksums, so there is nothing to hash unless a manifest
        override gives some (they are then compared). With True or False the loader
        checks what is knowable: every expected name is present, no stray, misplaced or
        duplicated file in the person folders it reads, and every loaded image decodes.
    on_problem : {"raise", "skip"}
        "raise" (default): one error naming every missing, stray, misplaced or
        undecodable file. "skip": log those problems as a warning and load the images
        that are fine (the counts are then smaller than 70 x 7 x sessions x viewpoints).
    manifest : dict or path, optional
        A manifest to use instead of ``data_manifests/kdef.json``.

    Returns
    -------
    StimulusSet
        ``images`` (n, 1, size, size) float32 in [0, 1], made by grayscale, center crop
        388 x 388 of the 562 x 762 photograph, resize to ``size``. ``metadata``:
        ``identity`` (``F01`` to ``F35``, ``M01`` to ``M35``), ``sex`` (female, male),
        ``expression`` (AF, AN, DI, HA, NE, SA, SU), ``viewpoint`` (FL, HL, S, HR, FR),
        ``session`` (A, B), all Categorical in that order; ``yaw`` (degrees, FL = -90 ..
        FR = 90), ``image_id`` (``AF01ANHL``) and ``path`` (absolute). Rows are sorted by
        identity, session, expression, viewpoint.

    Raises
    ------
    FileNotFoundError
        No person folders, or (on_problem="raise") only missing images.
    ValueError
        Any other problem (on_problem="raise"), each file named.
    """
    m = load_manifest(_NAME, manifest)
    g = _Grammar(m)
    viewpoints = _codes("viewpoints", viewpoints, g.viewpoints)
    sessions = _codes("sessions", sessions, g.sessions)
    return load_stimuli(
        _NAME, m, root,
        lambda folder, findings, _verify: _scan(folder, m, g, sessions, viewpoints, findings),
        lambda table: _metadata(table, g),
        what=f"KDEF image of sessions {sessions} and viewpoints {viewpoints}",
        stimulus_name="kdef", size=size, verify=verify, on_problem=on_problem,
    )


def _codes(argument: str, values, valid: Sequence[str]) -> list[str]:
    if isinstance(values, str):
        values = (values,)
    values = list(values)
    if not values:
        raise ValueError(f"Argument {argument} is empty; give at least one of "
                         f"{{{', '.join(valid)}}}.")
    for v in values:
        check_choice(argument, v, valid)
    return [v for v in valid if v in values]


def check(root: Path, manifest: Mapping, verify: bool) -> DatasetReport:
    """Check every session and viewpoint of a KDEF copy (see :func:`check_copy`)."""
    g = _Grammar(manifest)

    def scan(folder: Path, findings: Findings, _verify: bool):
        base, table = _scan(folder, manifest, g, g.sessions, g.viewpoints, findings)
        want = manifest["counts"]["images"]
        if not findings and len(table) != want:
            findings.add("count", f"wrong count: {len(table)} images found, expected {want}")
        return base, table

    return check_copy(_NAME, manifest, root, verify, scan,
                      lambda table: counts_summary(table["viewpoint"], table["expression"],
                                                   g.expressions, g.viewpoints))
