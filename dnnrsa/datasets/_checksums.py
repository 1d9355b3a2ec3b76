"""Checksums of data-set files, remembered between runs.

Hashing FER2013's 300 MB CSV or thousands of images on every call would make the loaders
slow to use, so a checksum once computed is kept in ``$DNNRSA_HOME/verified_checksums.json``
under the file's absolute path, size and modification time: an unchanged file is hashed
once. A read-only home only costs hashing again next time.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .._utils import atomic_write_bytes, dnnrsa_home, logger

if TYPE_CHECKING:
    from ._report import Findings

__all__ = [
    "CHECKSUM_CACHE",
    "file_checksum",
    "hash_file",
    "parse_checksum",
    "verify_checksum",
    "verify_checksums",
]

#: File (under ``dnnrsa_home()``) that remembers the checksums already computed.
CHECKSUM_CACHE = "verified_checksums.json"

_ALGORITHMS = ("md5", "sha1", "sha256")


def _cache_path() -> Path:
    return dnnrsa_home() / CHECKSUM_CACHE


def _read_cache() -> dict:
    path = _cache_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache: dict) -> None:
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(cache, indent=1, sort_keys=True).encode("utf-8"))
    except OSError as exc:  # a read-only home only costs re-hashing next time
        logger.warning("Could not remember checksums in %s (%s); files will be hashed again.",
                       path, exc)


def hash_file(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Hex digest of a file's bytes (no cache)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _same_file(entry, st: os.stat_result) -> bool:
    return (isinstance(entry, dict) and entry.get("size") == st.st_size
            and entry.get("mtime_ns") == st.st_mtime_ns)


def file_checksum(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Hex digest of a file, remembered in ``$DNNRSA_HOME/verified_checksums.json``
    under its absolute path, size and modification time: an unchanged file is hashed once."""
    path = Path(path).resolve()
    st = path.stat()
    key = str(path)
    entry = _read_cache().get(key)
    if _same_file(entry, st) and algorithm in entry:
        return entry[algorithm]
    t0 = time.perf_counter()
    value = hash_file(path, algorithm)
    logger.info("Computed the %s of %s in %.1f s.", algorithm, path, time.perf_counter() - t0)
    if not _same_file(entry, st):
        entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    entry[algorithm] = value
    cache = _read_cache()  # re-read: another process may have added entries meanwhile
    cache[key] = entry
    _write_cache(cache)
    return value


def parse_checksum(spec: str, where: str) -> tuple[str, str]:
    """Split a manifest checksum ``"md5:<hex>"`` / ``"sha256:<hex>"`` into (algorithm, hex)."""
    algorithm, sep, value = str(spec).partition(":")
    if not sep or algorithm not in _ALGORITHMS or not value:
        raise ValueError(
            f"Manifest checksum {spec!r} for {where} is malformed; write it as "
            "'md5:<hex digits>' or 'sha256:<hex digits>'."
        )
    return algorithm, value.lower()


def verify_checksum(path: Path, spec: str, label: str) -> str | None:
    """Compare a file's checksum with the manifest's ``spec``; a problem message on
    mismatch, None when it matches."""
    algorithm, expected = parse_checksum(spec, label)
    actual = file_checksum(path, algorithm)
    if actual == expected:
        return None
    return (
        f"wrong checksum for {label}: its {algorithm} is {actual}, expected {expected} "
        "(the file is corrupted, truncated or a different version; pass verify=False to "
        "skip checksums for a deliberately re-encoded copy)"
    )


def verify_checksums(base: Path, manifest: Mapping, findings: Findings,
                     only: Iterable[str] | None = None) -> None:
    """Check every manifest checksum whose file exists under ``base`` (or only the
    relative paths in ``only``); mismatches become ``checksum`` problems."""
    wanted = None if only is None else set(only)
    for rel, spec in manifest.get("checksums", {}).items():
        if wanted is not None and rel not in wanted:
            continue
        path = base / rel
        if path.is_file():
            msg = verify_checksum(path, spec, rel)
            if msg:
                findings.add("checksum", msg)
