"""Checkpoints: weights as safetensors plus a JSON sidecar that vouches for them.

A checkpoint is two files, ``PATH.safetensors`` (the weights) and ``PATH.json`` (the
sidecar: architecture, classes, seed, epoch, data identity, test accuracy, version). The
sidecar carries the sha256 and size of the exact weights file, and the weights carry a copy
of the sidecar (without those two fields) in their safetensors metadata, so each file says
what the other must be. :func:`load` and :func:`read_info` check that before trusting either.

Write order of :func:`save`: both files are written and fsynced under temporary names in the
target folder, then the sidecar is renamed into place, then the weights. A kill before the
first rename leaves the old pair; between the renames, a new sidecar beside the old weights
(or beside no weights), which the checksum refuses; after, the new pair. Never a pair that
loads and lies.

Checkpoints written before the checksum (format ``dnnrsa.checkpoint/1``) still load, with a
logged warning that their weights cannot be verified. Pickle files are never unpickled unless
asked (``allow_pickle=True``), and then only through ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import struct
from pathlib import Path
from typing import Any

from torch import nn

from .._utils import format_choices, logger, resolve_device
from .._version import __version__
from ._densenet import ARCHITECTURES

FORMAT = "dnnrsa.checkpoint/2"
#: Sidecar formats that :func:`read_info` accepts (``/1``: no checksum, loads with a warning).
FORMATS = ("dnnrsa.checkpoint/1", FORMAT)
#: Sidecar fields that describe the weights file rather than the network.
_FILE_FIELDS = ("weights_sha256", "weights_bytes")
_PICKLE_SUFFIXES = (".pt", ".pth")
_TMP_SUFFIX = ".partial"
_CHUNK = 1 << 20
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header
_FIX = ("retrain it with `dnnrsa train VARIANT --seed SEED --overwrite` (with the options it "
        "was trained with) or restore both files from a backup")


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, sidecar) of a checkpoint named with or without its suffix. Only a known
    suffix is replaced, so a dotted name keeps its dots (``run.v2`` ->
    ``run.v2.safetensors``, not ``run.safetensors``)."""
    path = Path(path)
    if path.suffix in _PICKLE_SUFFIXES:
        return path, path.with_name(path.name[: -len(path.suffix)] + ".json")
    name = path.name
    if path.suffix in (".safetensors", ".json"):
        name = name[: -len(path.suffix)]
    return path.with_name(name + ".safetensors"), path.with_name(name + ".json")


def build(architecture: str = "ccn2022", **options) -> nn.Module:
    """Build a network of the zoo.

    Parameters
    ----------
    architecture : {"ccn2022"}
        ``"ccn2022"`` is the DenseNet of the CCN-2022 study (see
        :class:`dnnrsa.zoo.CCNDenseNet` for its options: ``n_classes``, ``growth``,
        ``depth``, ``input_size``, ...).

    Examples
    --------
    >>> net = build("ccn2022", n_classes=7)
    >>> net.widths
    {'conv1': 64, 'dense1': 160, 'dense2': 176, 'dense3': 184}
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"Unknown value {architecture!r} for argument architecture. "
            f"Valid values are {format_choices(ARCHITECTURES)}."
        )
    return ARCHITECTURES[architecture](**options)


# --- temporaries -------------------------------------------------------------------------

def _tmp_name(final: Path) -> Path:
    """``NAME~HOST~PID~TOKEN.partial`` beside ``final``: who made it, so orphans can be told
    from another live process's file (hostnames never hold ``~``)."""
    host = socket.gethostname().replace("~", "-")
    return final.with_name(f"{final.name}~{host}~{os.getpid()}~{secrets.token_hex(4)}"
                           f"{_TMP_SUFFIX}")


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would terminate it on Windows: keep the file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _remove_orphans(folder: Path) -> None:
    """Delete temporaries of earlier saves in ``folder`` whose process is dead (same host
    only: a pid says nothing about another machine sharing the folder)."""
    host = socket.gethostname().replace("~", "-")
    for tmp in folder.glob(f"*~*~*~*{_TMP_SUFFIX}"):
        parts = tmp.name[: -len(_TMP_SUFFIX)].rsplit("~", 3)
        if len(parts) != 4 or parts[1] != host or not parts[2].isdigit():
            continue
        pid = int(parts[2])
        if pid != os.getpid() and not _pid_alive(pid):
            logger.info("Removing %s, left by an interrupted save (process %d)", tmp, pid)
            tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    """Streamed, so a large file is never held in memory for hashing."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# --- save --------------------------------------------------------------------------------

def save(model: nn.Module, path: str | os.PathLike, **info: Any) -> Path:
    """Write ``model``'s weights to ``PATH.safetensors`` and what is needed to rebuild and
    trust them to ``PATH.json``: architecture config, classes, seed, epoch, data identity,
    test accuracy, the dnnrsa version and the sha256 and size of the weights file. Keyword
    arguments add to (or override) the ``model.dnnrsa_info`` that :func:`train` records.

    Both files are written and fsynced under temporary names in the target folder, then
    renamed sidecar first: a save killed at any point leaves the old checkpoint, the new
    one, or a pair that :func:`load` refuses (never new weights that load with an old
    sidecar). Temporaries left by dead processes on this host are removed by the next save
    into the folder. Both files get mode ``0o666`` less the umask.

    Parameters
    ----------
    model : torch.nn.Module
        A network of the zoo (built by :func:`build`).
    path : path
        ``PATH``, ``PATH.safetensors`` or ``PATH.json``.
    **info
        Extra JSON-serialisable sidecar fields.

    Returns
    -------
    pathlib.Path
        The ``.safetensors`` path.
    """
    from safetensors.torch import save_file

    config = getattr(model, "config", None)
    if not isinstance(config, dict) or config.get("architecture") not in ARCHITECTURES:
        raise TypeError(
            f"Argument model must be a zoo network (one of {format_choices(ARCHITECTURES)}) "
            f"to be saved as a dnnrsa checkpoint, got {type(model).__name__}. For other "
            "networks save the state_dict with safetensors yourself."
        )
    weights, sidecar = _paths(path)
    if weights.suffix != ".safetensors":
        raise ValueError(f"Argument path must name a .safetensors checkpoint, got {path!s} "
                         "(dnnrsa never writes pickle). Drop the suffix or use .safetensors.")
    meta = dict(getattr(model, "dnnrsa_info", {}) or {})
    meta.update(info)
    meta.update(format=FORMAT, config=config, dnnrsa_version=__version__)
    for field in _FILE_FIELDS:
        meta.pop(field, None)
    # Through JSON once, so the embedded copy and the sidecar are the same plain data.
    described = json.dumps(meta, indent=2, sort_keys=True, default=str)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(weights.parent)
    tmp_w, tmp_j = _tmp_name(weights), _tmp_name(sidecar)
    try:
        # The sidecar temporary is created first with the usual 0o666-less-umask; the weights
        # copy its mode (safetensors itself creates files 0o600).
        fd = os.open(tmp_j, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(fd)
        save_file(state, str(tmp_w), metadata={"format": FORMAT, "dnnrsa_info": described})
        os.chmod(tmp_w, os.stat(tmp_j).st_mode & 0o777)
        _fsync(tmp_w)
        full = json.loads(described)
        full.update(weights_sha256=_sha256(tmp_w), weights_bytes=tmp_w.stat().st_size)
        with open(tmp_j, "w", encoding="utf-8") as f:
            f.write(json.dumps(full, indent=2, sort_keys=True))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_j, sidecar)
        os.replace(tmp_w, weights)
        if os.name == "posix":  # make the renames themselves durable
            _fsync(weights.parent)
    finally:
        for t in (tmp_w, tmp_j):
            t.unlink(missing_ok=True)
    return weights


# --- read and verify ---------------------------------------------------------------------

def _refuse(weights: Path, problem: str, fix: str) -> ValueError:
    return ValueError(f"Checkpoint {weights} {problem}; {fix}.")


def _read_sidecar(weights: Path, sidecar: Path, fix: str) -> dict:
    if not sidecar.exists() and not weights.exists():
        raise FileNotFoundError(
            f"No checkpoint at {weights} (and no sidecar {sidecar.name} beside it): check the "
            "path; `dnnrsa models` lists the trained networks and their files.")
    if not sidecar.is_file():
        alone = (f" {weights} is there alone: a save was interrupted or the .json was deleted, "
                 "and weights without their sidecar are not trusted") if weights.is_file() else ""
        raise FileNotFoundError(
            f"No checkpoint sidecar at {sidecar}: a dnnrsa checkpoint is a .safetensors file "
            f"with a .json file of the same name beside it (written by dnnrsa.zoo.save).{alone}"
            f" To fix it, {fix}."
        )
    try:
        meta = json.loads(sidecar.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"Checkpoint sidecar {sidecar} is not valid JSON ({exc}); "
                         f"{fix}.") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"Checkpoint sidecar {sidecar} holds a JSON {type(meta).__name__}, "
                         f"not an object with the checkpoint's fields; {fix}.")
    if meta.get("format") not in FORMATS or not isinstance(meta.get("config"), dict):
        raise ValueError(
            f"{sidecar} is not a dnnrsa checkpoint sidecar (format {meta.get('format')!r}, "
            f"expected one of {list(FORMATS)}, and a 'config' object); {fix}."
        )
    sha, size = meta.get("weights_sha256"), meta.get("weights_bytes")
    if (sha is not None or size is not None) and not (
            isinstance(sha, str) and len(sha) == 64 and isinstance(size, int)):
        raise ValueError(f"Checkpoint sidecar {sidecar} has a malformed weights_sha256 "
                         f"({sha!r}) or weights_bytes ({size!r}): it was edited; {fix}.")
    return meta


def _is_pickle(head: bytes, size: int) -> bool:
    """``head``: the first 9 bytes. torch.save writes a zip archive (before torch 1.6, a raw
    pickle: protocol byte 0x80). A safetensors header length can also start with 0x80, so
    only bytes that are not a plausible safetensors start (length that fits, then ``{``)
    count as pickle."""
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        return False
    return not (len(head) == 9 and struct.unpack("<Q", head[:8])[0] <= size - 8
                and head[8:9] == b"{")


def _check_weights(weights: Path, sidecar: Path, meta: dict, *, allow_pickle: bool,
                   fix: str) -> bool:
    """Refuse weights that are missing, pickled (unless allowed) or not the ones the sidecar
    vouches for. Returns whether they are pickle data."""
    if not weights.is_file():
        raise FileNotFoundError(
            f"Checkpoint weights {weights} are missing (its sidecar {sidecar} is there): a "
            f"save was interrupted or the file was deleted. To fix it, {fix}."
        )
    with open(weights, "rb") as f:
        head = f.read(9)
    pickled = weights.suffix in _PICKLE_SUFFIXES or _is_pickle(head, weights.stat().st_size)
    if pickled and not allow_pickle:
        raise _refuse(weights, "holds pickle data (torch.save), not safetensors: unpickling "
                      "can run arbitrary code, so dnnrsa refuses it. If you trust the file, "
                      "load it with dnnrsa.zoo.load(path, allow_pickle=True) (read with "
                      "torch.load(weights_only=True)); better", fix)
    if "weights_sha256" not in meta:
        logger.warning("Checkpoint %s cannot be verified: its sidecar has no weights_sha256 "
                       "(format %s, written before dnnrsa checked checksums). Re-save it "
                       "with dnnrsa.zoo.save to protect it.", weights, meta.get("format"))
        return pickled
    size = weights.stat().st_size
    mismatch = ("does not match its sidecar (interrupted save or edited file): it is "
                f"{{}}, {sidecar} says {{}}")
    if size != meta["weights_bytes"]:
        raise _refuse(weights, mismatch.format(f"{size} bytes", meta["weights_bytes"]), fix)
    digest = _sha256(weights)
    if digest != meta["weights_sha256"]:
        raise _refuse(weights, mismatch.format(f"sha256 {digest[:16]}...",
                                               meta["weights_sha256"][:16] + "..."), fix)
    return pickled


def _read_header(weights: Path, fix: str) -> dict:
    """The safetensors header, checked against the file's size (a truncated or corrupted
    file is named here rather than failing inside safetensors)."""
    size = weights.stat().st_size
    with open(weights, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _refuse(weights, f"is {size} bytes, too short to be a safetensors file "
                          "(truncated)", fix)
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, _MAX_HEADER):
            raise _refuse(weights, f"has a corrupted or truncated header: it claims {n} "
                          f"bytes of header in a {size}-byte file", fix)
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(weights, f"has a corrupted header (not JSON: {exc})", fix) from exc
    if not isinstance(header, dict):
        raise _refuse(weights, "has a corrupted header (not a JSON object)", fix)
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) for o in offsets)):
            raise _refuse(weights, f"has a corrupted header (tensor {name!r} has no valid "
                          "data_offsets)", fix)
        end = max(end, offsets[1])
    if end != size - 8 - n:
        raise _refuse(weights, f"has {size - 8 - n} bytes of tensor data where its header "
                      f"describes {end} (truncated or corrupted)", fix)
    extra = header.get("__metadata__") or {}
    return extra if isinstance(extra, dict) else {}


def _read_info(path: str | os.PathLike, *, verify: bool, fix: str = _FIX) -> dict:
    weights, sidecar = _paths(path)
    meta = _read_sidecar(weights, sidecar, fix)
    if verify:
        pickled = _check_weights(weights, sidecar, meta, allow_pickle=True, fix=fix)
        if not pickled:
            _check_embedded(weights, meta, _read_header(weights, fix), fix)
    return meta


def _check_embedded(weights: Path, meta: dict, extra: dict, fix: str) -> None:
    """Weights that carry their description need a sidecar with a checksum: a sidecar
    without one beside them is not theirs (an older checkpoint's, or edited)."""
    if "dnnrsa_info" in extra and "weights_sha256" not in meta:
        raise _refuse(weights, "does not match its sidecar (interrupted save or edited "
                      "file): the weights were written with a checksum the sidecar lacks", fix)


def read_info(path: str | os.PathLike, *, verify: bool = True) -> dict:
    """The JSON sidecar of a checkpoint, after checking that it vouches for the weights.

    Parameters
    ----------
    path : path
        ``PATH``, ``PATH.safetensors`` or ``PATH.json``.
    verify : bool
        Check the weights file against the sidecar's sha256 and size (streamed) and its
        safetensors header. ``False`` reads the sidecar alone.

    Returns
    -------
    dict
        The sidecar, ``weights_sha256`` and ``weights_bytes`` included (absent in
        checkpoints of format ``dnnrsa.checkpoint/1``, which are read with a logged warning).

    Raises
    ------
    FileNotFoundError
        The sidecar or (with ``verify``) the weights are missing.
    ValueError
        The sidecar is not a dnnrsa sidecar, or the weights are truncated, corrupted, or
        not the file the sidecar describes. The message names the file and the fix.
    """
    return _read_info(path, verify=verify)


def load(path: str | os.PathLike, *, device: Any = "auto",
         allow_pickle: bool = False) -> nn.Module:
    """Rebuild a zoo network from a checkpoint written by :func:`save`.

    The weights are checked against the sidecar (sha256 and size, streamed) before they are
    read. The network is returned in eval mode with ``model.dnnrsa_info`` holding the
    sidecar. Weights that do not fit the architecture the sidecar describes raise a
    ``ValueError`` that lists the mismatching tensors.

    Parameters
    ----------
    path : path
        ``PATH``, ``PATH.safetensors``, ``PATH.json``, or (with ``allow_pickle``) a
        ``.pt``/``.pth`` state dict with a ``PATH.json`` sidecar beside it.
    device : {"auto", "cpu", "cuda", ...}
        Where to put the network.
    allow_pickle : bool
        Accept weights saved by ``torch.save`` (a state dict). They are read with
        ``torch.load(weights_only=True)``, which unpickles tensors and plain containers only.

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    FileNotFoundError
        The sidecar or the weights are missing.
    ValueError
        Pickle data without ``allow_pickle``; a truncated, corrupted or substituted weights
        file; a sidecar that is not a dnnrsa sidecar. The message names the file and the fix.
    """
    if not isinstance(allow_pickle, bool):
        raise TypeError(f"Argument allow_pickle must be True or False, got {allow_pickle!r}.")
    return _load(path, device=device, allow_pickle=allow_pickle)


def _load(path: str | os.PathLike, *, device: Any, allow_pickle: bool = False,
          fix: str = _FIX) -> nn.Module:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    device = resolve_device(device)  # a device that is not there fails before any reading
    weights, sidecar = _paths(path)
    meta = _read_sidecar(weights, sidecar, fix)
    pickled = _check_weights(weights, sidecar, meta, allow_pickle=allow_pickle, fix=fix)
    config = dict(meta["config"])
    model = build(config.pop("architecture"), **config)
    if pickled:
        state = _load_pickle(weights, fix)
    else:
        _check_embedded(weights, meta, _read_header(weights, fix), fix)
        try:
            state = load_file(str(weights))
        except SafetensorError as exc:
            raise _refuse(weights, f"could not be read by safetensors ({exc})", fix) from exc
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append("shape mismatches " + "; ".join(wrong[:5]))
        if missing:
            parts.append(f"missing tensors {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected tensors {unexpected[:5]}")
        raise ValueError(
            f"Checkpoint {weights} does not match the architecture in its sidecar "
            f"({meta['config']}): " + ", ".join(parts) + ". The weights were saved from a "
            "different network; retrain or restore the matching .json file."
        )
    model.load_state_dict(state)
    model.to(device)
    model.eval()
    model.dnnrsa_info = {k: v for k, v in meta.items()
                         if k not in ("format", "config", *_FILE_FIELDS)}
    return model


def _load_pickle(weights: Path, fix: str) -> dict:
    import pickle

    import torch

    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise _refuse(weights, f"could not be read by torch.load(weights_only=True) ({exc})",
                      fix) from exc
    if not (isinstance(state, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                            for k, v in state.items())):
        raise _refuse(weights, f"holds a {type(state).__name__}, not a state dict (a dict of "
                      "tensors, as torch.save(model.state_dict(), path) writes)", fix)
    return state
