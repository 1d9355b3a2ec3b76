"""A content-addressed cache of the finished units of :func:`dnnrsa.reproduce`.

A unit (one network with a group of its seeds, or the pixel control) is filed under
``HOME/cache/units/<sha256>.json``, the sha256 of its configuration (network, seeds of the
group, data, quick, layers, targets, readout, readout epochs, cv, on_problem), the test
faces' checksum (:func:`dnnrsa._cache.stimuli_key`) and the dnnrsa version. The file holds
the unit's result frames (column by column, with their dtypes and categories, so they come
back equal value for value), the networks' sidecar records, the warnings the unit logged
and the ``weights_sha256`` of every seed's checkpoint.

Nothing in it is trusted blindly: a file is written whole or not at all (temporary file in
the same folder, fsync, rename: two processes writing the same key each rename a complete
file into place), carries the sha256 of its own payload and its key, and on a hit every
checkpoint it was computed from must still have the recorded checksum (a network retrained
since means the unit is computed again). An unreadable, truncated or altered file is a
logged warning and a miss. JSON only, never pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from .. import zoo
from .._cache import stimuli_key
from .._utils import dnnrsa_home, logger
from .._version import __version__
from ..activations import _frame_from_json, _frame_to_json

__all__ = ["UnitCache", "unit_config"]

FORMAT = "dnnrsa.unit-cache/1"


def unit_config(kind: str, *, network: str | None = None, seeds=(), data: str | None = None,
                quick: bool | None = None, layers=(), targets=(), readout: str,
                readout_epochs: int, cv: str = "viewpoint",
                on_problem: str | None = None, at_epochs=None) -> dict:
    """What decides a unit's numbers besides its test faces, as a JSON-ready dict. The
    pixel control (``kind="pixels"``) depends on no network, data or layers."""
    if kind == "pixels":
        return dict(kind=kind, targets=list(targets), readout=readout,
                    readout_epochs=int(readout_epochs), cv=cv)
    config = dict(kind=kind, network=network, seeds=[int(s) for s in seeds], data=data,
                  quick=bool(quick), layers=list(layers), targets=list(targets),
                  readout=readout, readout_epochs=int(readout_epochs), cv=cv,
                  on_problem=on_problem)
    if at_epochs:  # only then: the keys of runs without kept epochs stay as they were
        config["at_epochs"] = [int(e) for e in at_epochs]
    return config


class UnitCache:
    """The unit cache of a models folder (``dnnrsa_home(home) / "cache" / "units"``).

    Parameters
    ----------
    home : path, optional
        Models folder (default ``$DNNRSA_HOME``); the checkpoints a hit is checked
        against are looked up there.
    stimuli : StimulusSet
        The test faces of the run (their checksum is part of every key).
    """

    def __init__(self, home, stimuli):
        self.home = dnnrsa_home(home)
        self.folder = self.home / "cache" / "units"
        self.stimuli = stimuli_key(stimuli)

    def key(self, config: dict) -> str:
        text = json.dumps(dict(format=FORMAT, config=config, stimuli=self.stimuli,
                               version=__version__), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, config: dict) -> Path:
        return self.folder / f"{self.key(config)}.json"

    def checksums(self, config: dict) -> dict[str, str | None]:
        """The current ``weights_sha256`` of each seed's checkpoint (None: none readable)."""
        if config["kind"] != "network":
            return {}
        found = {}
        for seed in config["seeds"]:
            try:
                path = zoo.checkpoint_path(config["network"], seed, data=config["data"],
                                           quick=config["quick"], home=self.home,
                                           on_problem=config["on_problem"])
                found[str(seed)] = zoo.read_info(path, verify=False).get("weights_sha256")
            except (OSError, ValueError):
                found[str(seed)] = None
        return found

    def read(self, config: dict) -> dict | None:
        """The cached result of the unit (``frames``, ``infos``, ``seen``), or None when
        there is none that can be trusted (a warning says why when a file was there)."""
        path = self.path(config)
        if not path.is_file():
            return None
        try:
            record = _parse(path.read_bytes(), self.key(config))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("Ignoring the unit cache file %s (%s); computing the unit again.",
                           path, exc)
            return None
        recorded = record["weights_sha256"]
        current = self.checksums(config)
        if current != recorded:
            changed = sorted(s for s in recorded if current.get(s) != recorded[s])
            logger.info("Unit cache %s is stale: the checkpoints of seed(s) %s changed since "
                        "(retrained?); computing the unit again.", path.name,
                        ", ".join(changed))
            return None
        try:
            frames = [_frame_from_json(text) for text in record["frames"]]
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("Ignoring the unit cache file %s (its tables do not load: %s); "
                           "computing the unit again.", path, exc)
            return None
        return dict(frames=frames, infos=record["infos"], seen=record["seen"])

    def write(self, config: dict, *, frames: list[pd.DataFrame], infos: list[dict],
              seen: list[str], weights_sha256: dict[str, str | None]) -> Path | None:
        """File a finished unit. None (and a warning) when its tables would not come back
        exactly as they are, or the file cannot be written: the run goes on uncached."""
        texts = [_frame_to_json(f) for f in frames]
        for frame, text in zip(frames, texts):
            if not _same(frame, _frame_from_json(text)):
                logger.warning("Not caching unit %s: its table does not survive JSON exactly.",
                               config)
                return None
        payload = json.dumps(dict(format=FORMAT, key=self.key(config), config=config,
                                  stimuli=self.stimuli, version=__version__,
                                  weights_sha256=weights_sha256, infos=infos, seen=seen,
                                  frames=texts), sort_keys=True)
        body = json.dumps(dict(sha256=hashlib.sha256(payload.encode()).hexdigest(),
                               payload=payload)).encode()
        path = self.path(config)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomic(path, body)
        except OSError as exc:  # a full or read-only disk costs the cache, not the run
            logger.warning("Could not write the unit cache file %s (%s); the unit's results "
                           "are used but will be computed again next time.", path, exc)
            return None
        return path


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b, check_exact=True)
    except AssertionError:
        return False
    return True


def _parse(data: bytes, key: str) -> dict:
    outer = json.loads(data.decode("utf-8"))
    if not isinstance(outer, dict) or not isinstance(outer.get("payload"), str):
        raise ValueError("not a unit cache file")
    payload = outer["payload"]
    if hashlib.sha256(payload.encode()).hexdigest() != outer.get("sha256"):
        raise ValueError("its checksum does not match its content: altered or damaged")
    record = json.loads(payload)
    if record.get("format") != FORMAT or record.get("key") != key:
        raise ValueError(f"format {record.get('format')!r} / key {record.get('key')!r} is "
                         "not what this file name promises")
    return record


def _write_atomic(path: Path, data: bytes) -> None:
    """Write through a uniquely named temporary file beside ``path`` (fsynced), then
    rename it into place: readers see the old file or the new one, never a part, and
    concurrent writers of one key do not share a temporary."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def as_json(value: Any) -> Any:
    """``value`` through JSON, as the cache will give it back (sidecar records)."""
    return json.loads(json.dumps(value, default=str))
