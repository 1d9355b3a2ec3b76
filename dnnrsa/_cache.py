"""The activation cache of :func:`dnnrsa.extract`: where an entry lives, what keys it, and
how it is written so that an interrupted run never leaves an entry that looks complete.

An entry is one layer of one network for one stimulus set in one dtype::

    CACHE_DIR/<model key>/<stimuli key>/<layer>.<dtype>.npy    the responses (n, *shape)
    CACHE_DIR/<model key>/<stimuli key>/<layer>.<dtype>.json   the sidecar, written last

The model key hashes the weights and buffers (every ``state_dict`` tensor's name, dtype,
shape and bytes, in sorted order) and the architecture (the class and ``repr`` of the
module tree, which shows what has no weights: activations, pooling, dropout rates). The
stimuli key hashes the images (shape, dtype, bytes: the image size is part of it) and the
factor table. The batch size and the device are not part of the key: they change the
numbers by rounding only.

The ``.npy`` file is written sequentially under a temporary name in the same folder
(``<layer>.<dtype>.npy.<host>.<pid>.<token>.partial``; with direct I/O where the file
system allows it, so that the written pages never fill the page cache), flushed to disk
(fsync), renamed, and only then is the sidecar (shape, dtype and key) written, also
through a temporary name. An
entry is read only if its sidecar is there, carries the same key, and agrees with the
``.npy`` header and file size; anything else is ignored and written anew.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import mmap
import os
import queue
import re
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ._utils import logger
from ._version import __version__

__all__ = ["DTYPES", "CacheEntry", "WritePool", "check_cache_dir", "check_dtype",
           "model_key", "stimuli_key"]

FORMAT = "dnnrsa.extract-cache/1"
DTYPES = ("float32", "float16")
_HASH_BLOCK = 1 << 24  # bytes hashed per update: no copy of a large image array


def check_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a numpy dtype of :data:`DTYPES`; a TypeError/ValueError naming it
    otherwise."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(
            f"Unknown value {dtype!r} for argument dtype. Valid values are "
            "{float32, float16} (float16 halves the memory and disk of the responses)."
        )
    return np.dtype(name)


def check_cache_dir(cache_dir: Any, argument: str = "cache_dir") -> Path:
    """The cache folder as a Path; it need not exist yet, but must not be a file."""
    if not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(
            f"Argument {argument} must be a path (str or os.PathLike), got "
            f"{type(cache_dir).__name__}."
        )
    path = Path(cache_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"Argument {argument}={str(path)!r} is a file, not a folder. Give a folder "
            "(it is created if missing)."
        )
    return path


def check_writable(folder: Path, argument: str = "cache_dir") -> None:
    """Create ``folder`` and make sure a file can be written in it, else a ValueError that
    names ``argument``; called before any forward pass."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-", delete=True):
            pass
    except OSError as exc:
        raise ValueError(
            f"Argument {argument}: cannot write the activation cache in {str(folder)!r} "
            f"({exc.strerror or exc}). Give a folder you can write to."
        ) from exc


def _hash_array(h, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr)
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    flat = arr.reshape(-1).view(np.uint8)
    for start in range(0, flat.size, _HASH_BLOCK):
        h.update(flat[start:start + _HASH_BLOCK])


def model_key(model, weights_sha256: str) -> str:
    """Key of a network: its weights checksum (``weights_sha256`` of the provenance, over
    the names and bytes of every state_dict tensor) plus every tensor's dtype and shape,
    the module's class and its ``repr``."""
    h = hashlib.sha256(FORMAT.encode())
    h.update(weights_sha256.encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
    cls = type(model)
    h.update(f"{cls.__module__}.{cls.__qualname__}\n{model!r}".encode())
    return h.hexdigest()[:16]


def stimuli_key(stimuli) -> str:
    """Key of a stimulus set: its images (shape, dtype, bytes) and its factor table."""
    from .activations import _frame_to_json

    h = hashlib.sha256(FORMAT.encode())
    _hash_array(h, stimuli.images)
    h.update(_frame_to_json(stimuli.metadata).encode())
    return h.hexdigest()[:16]


def _safe_name(layer: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", layer)
    if safe != layer or safe.startswith("."):
        safe = f"{safe.lstrip('.')}-{hashlib.sha256(layer.encode()).hexdigest()[:8]}"
    return safe


class CacheEntry:
    """One layer of one network for one stimulus set in one dtype.

    Parameters
    ----------
    folder : Path
        ``CACHE_DIR/<model key>/<stimuli key>``.
    layer : str
    dtype : numpy dtype
    key : dict
        What identifies the entry (model and stimuli keys, layer, dtype, n_stimuli); the
        sidecar must carry the same.
    """

    def __init__(self, folder: Path, layer: str, dtype: np.dtype, key: dict):
        stem = f"{_safe_name(layer)}.{dtype.name}"
        self.path = folder / f"{stem}.npy"
        self.sidecar = folder / f"{stem}.json"
        self.layer, self.dtype, self.key = layer, dtype, dict(key)

    def read(self) -> np.memmap | None:
        """The cached responses as a read-only memmap, or None when the entry is missing,
        incomplete (no sidecar, a truncated file) or of another key."""
        if not self.sidecar.is_file():
            if self.path.exists():
                logger.info("cache entry %s has no sidecar (an interrupted run?); "
                            "it is written anew", self.path)
            return None
        try:
            meta = json.loads(self.sidecar.read_text())
            data = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:  # no file, a truncated file, bad JSON
            logger.info("cache entry %s is unreadable (%s); it is written anew", self.path, exc)
            return None
        if (meta.get("format") != FORMAT or meta.get("key") != self.key
                or tuple(meta.get("shape", ())) != data.shape
                or meta.get("dtype") != data.dtype.name or data.dtype != self.dtype
                or not isinstance(data, np.memmap)):
            logger.info("cache entry %s does not match its sidecar; it is written anew",
                        self.path)
            return None
        return data

    def writer(self, shape: tuple[int, ...], provenance: dict,
               pool: WritePool | None = None) -> _EntryWriter:
        """A writer of the entry's rows, in order; see :class:`_EntryWriter`. With a
        :class:`WritePool` the file is written with direct I/O behind the caller."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.sidecar.exists():  # a stale or mismatching entry: it stops looking complete
            self.sidecar.unlink()
        _remove_stale_partials(self.path)
        return _EntryWriter(self, shape, provenance, pool)


_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _remove_stale_partials(path: Path) -> None:
    """Delete temporary files of this entry left by killed runs on this machine (their
    process is gone); those of live processes, or of other machines, are left alone."""
    for tmp in path.parent.glob(f"{path.name}.*.partial"):
        parts = tmp.name[len(path.name) + 1:].split(".")
        if len(parts) != 4 or parts[0] != _HOST or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            logger.info("removing %s, left by an interrupted extraction", tmp)
            tmp.unlink(missing_ok=True)
        except PermissionError:  # a live process of another user
            continue


class _EntryWriter:
    """Writes the rows of one entry sequentially into a temporary ``.npy`` file, then
    :meth:`commit` makes it an entry. No memory map: written pages never count towards
    the process's resident memory (see :class:`_DirectFile` for the page cache)."""

    def __init__(self, entry: CacheEntry, shape: tuple[int, ...], provenance: dict,
                 pool: WritePool | None = None):
        self.entry = entry
        self.shape = tuple(int(s) for s in shape)
        self.provenance = provenance
        token = uuid.uuid4().hex[:8]
        self.tmp = entry.path.with_name(
            f"{entry.path.name}.{_HOST}.{os.getpid()}.{token}.partial")
        self.rows = 0
        self._file = _open_sequential(self.tmp, pool)
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {
            "descr": np.lib.format.dtype_to_descr(entry.dtype), "fortran_order": False,
            "shape": self.shape})
        self._file.write(memoryview(header.getvalue()))

    def write(self, block: np.ndarray) -> None:
        """Append rows ``block`` of shape (n_rows, *shape[1:]) in the entry's dtype."""
        if block.dtype != self.entry.dtype or block.shape[1:] != self.shape[1:]:
            raise RuntimeError(  # an internal error: extract converts every chunk
                f"cache writer of {self.entry.layer!r}: got a block of {block.dtype} "
                f"{block.shape}, expected {self.entry.dtype} (n, {self.shape[1:]})."
            )
        self._file.write(memoryview(np.ascontiguousarray(block).reshape(-1).view(np.uint8)))
        self.rows += block.shape[0]

    def commit(self) -> np.memmap:
        """Flush to disk, rename into place, write the sidecar last; the entry as a
        read-only memmap."""
        if self.rows != self.shape[0]:
            raise RuntimeError(
                f"cache writer of {self.entry.layer!r}: {self.rows} rows written of "
                f"{self.shape[0]}."
            )
        self._file.finish()
        os.replace(self.tmp, self.entry.path)
        meta = {
            "format": FORMAT,
            "key": self.entry.key,
            "shape": list(self.shape),
            "dtype": self.entry.dtype.name,
            "layer": self.entry.layer,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "dnnrsa_version": __version__,
            "provenance": {k: v for k, v in self.provenance.items()
                           if isinstance(v, (str, int, float, bool)) or v is None},
        }
        sidecar = self.entry.sidecar
        tmp = sidecar.with_name(f"{sidecar.name}.{_HOST}.{os.getpid()}.json.partial")
        try:
            with open(tmp, "w") as fh:
                json.dump(meta, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, sidecar)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(sidecar.parent)
        return np.load(self.entry.path, mmap_mode="r", allow_pickle=False)

    def abort(self) -> None:
        """Remove the temporary file (after an error or an interruption)."""
        self._file.close()
        self.tmp.unlink(missing_ok=True)


#: Use O_DIRECT writes where the file system takes them (a switch for tests).
DIRECT_IO = True
_ALIGN = 4096  # offsets and lengths of direct writes: a multiple of any logical block size
_STAGE = 8 << 20  # bytes per direct write, at most
_POOL_BLOCKS = 12  # staging blocks shared by the files of one extraction, at least
_POOL_BYTES = _POOL_BLOCKS * _STAGE  # their memory (96 MiB) unless blocks reach 1 MiB

_os_write = os.write  # the system call of direct writes (replaced in tests)


class WritePool:
    """The staging blocks and the writer thread that the cache files of one extraction
    share (:meth:`close` it when they are closed). A hook copies its chunk into free blocks and hands
    the full ones over; the thread writes them to disk, in the order they were handed
    over, while the forward pass goes on; a hook waits only when every block is in
    flight. Every file holds at most one block while it fills it, so there are at least
    two blocks per file (no file waits for a block that another one holds); their size
    keeps the pool within 96 MiB (blocks of 1 to 8 MiB)."""

    def __init__(self, n_files: int = 1):
        n_blocks = max(_POOL_BLOCKS, 2 * int(n_files) + 2)
        size = min(_STAGE, max(1 << 20, _POOL_BYTES // n_blocks))
        self.block_size = max(_ALIGN, size - size % _ALIGN)
        self._free: queue.Queue = queue.Queue()
        for _ in range(n_blocks):
            buf = mmap.mmap(-1, self.block_size)  # anonymous maps are page-aligned
            self._free.put((buf, memoryview(buf)))
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="dnnrsa-cache-writer",
                                        daemon=True)
        self._thread.start()

    def take(self):
        """A free staging block (waits while all are in flight)."""
        return self._free.get()

    def give_back(self, block) -> None:
        self._free.put(block)

    def submit(self, file: _DirectFile, block, length: int) -> None:
        self._jobs.put((file, block, length))

    def sync(self, file: _DirectFile) -> None:
        """Wait until every block handed over before now is written."""
        done = threading.Event()
        self._jobs.put((file, None, done))
        done.wait()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            file, block, length = job
            if block is None:  # a sync marker
                length.set()
                continue
            try:
                if file.error is None:
                    file._write_block(block[1], length)
            except BaseException as exc:  # noqa: BLE001 - handed to the file's owner
                file.error = exc
            finally:
                self._free.put(block)

    def close(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        while True:  # every file is closed by now, so every block is back
            try:
                buf, view = self._free.get_nowait()
            except queue.Empty:
                break
            view.release()
            buf.close()


def _open_sequential(path: Path, pool: WritePool | None):
    if DIRECT_IO and hasattr(os, "O_DIRECT") and pool is not None:
        try:
            return _DirectFile(path, pool)
        except OSError as exc:  # e.g. tmpfs, which has no direct I/O
            logger.debug("no direct I/O for %s (%s); buffered writes", path, exc)
    return _BufferedFile(path)


class _BufferedFile:
    """Plain writes through the page cache."""

    def __init__(self, path: Path):
        self._fh = open(path, "wb")

    def write(self, data: memoryview) -> None:
        self._fh.write(data)

    def finish(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


class _DirectFile:
    """Writes that bypass the page cache (``O_DIRECT``), behind the computation: the data
    are copied into staging blocks of a :class:`WritePool`, whose thread writes them to
    disk in order while the forward pass goes on. The last block is padded to the
    alignment and the file truncated to its size.

    Buffered writes of a layer put every byte into newly allocated page-cache pages; on
    virtual machines whose fresh pages are expensive this kernel time cost as much as a
    third of the forward pass of the paper's network. Direct writes cost a copy. The
    first block is written synchronously: a file system that refuses direct writes
    there gets the same bytes through buffered writes instead."""

    def __init__(self, path: Path, pool: WritePool):
        self.path, self.pool = path, pool
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
        self._block = None  # the staging block being filled
        self._pos = self._size = self._flushed = 0
        self._fallback: _BufferedFile | None = None
        self.error: BaseException | None = None  # set by the writer thread

    def write(self, data: memoryview) -> None:
        i, n = 0, len(data)
        self._size += n
        while i < n:
            if self._fallback is not None:
                self._fallback.write(data[i:])
                return
            if self.error is not None:
                raise self.error
            if self._block is None:
                self._block = self.pool.take()
            take = min(self.pool.block_size - self._pos, n - i)
            self._block[1][self._pos:self._pos + take] = data[i:i + take]
            self._pos += take
            i += take
            if self._pos == self.pool.block_size:
                self._flush(self._pos)

    def _write_block(self, view: memoryview, length: int) -> None:
        block = view[:length]
        try:
            written = _os_write(self._fd, block)
        finally:
            block.release()  # no view may outlive the staging block
        if written != length:
            raise OSError(errno.EIO, f"short write to {self.path}: {written} of {length}")

    def _flush(self, length: int) -> None:
        block, self._block = self._block, None
        if self._flushed == 0:  # the first block: synchronously, to see a refusal
            try:
                self._write_block(block[1], length)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    self.pool.give_back(block)
                    raise
                logger.debug("direct I/O refused for %s (%s); buffered writes", self.path,
                             exc)
                self._switch_to_buffered(block)
                return
            self.pool.give_back(block)
        else:
            self.pool.submit(self, block, length)
        self._flushed += length
        self._pos = 0

    def _switch_to_buffered(self, block) -> None:
        pending = bytes(block[1][:self._pos])
        self.pool.give_back(block)
        os.close(self._fd)
        self._fd = -1
        self._fallback = _BufferedFile(self.path)
        self._fallback.write(memoryview(pending))

    def finish(self) -> None:
        if self._fallback is None and self._pos:
            pad = -self._pos % _ALIGN
            self._block[1][self._pos:self._pos + pad] = bytes(pad)
            self._flush(self._pos + pad)
        if self._fallback is not None:
            self._fallback.finish()
            return
        self.pool.sync(self)
        if self.error is not None:
            raise self.error
        os.ftruncate(self._fd, self._size)
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1

    def close(self) -> None:
        """Release the file (after :meth:`finish`, or instead of it on an error)."""
        if self._fallback is not None:
            self._fallback.close()
        if self._block is not None:
            self.pool.give_back(self._block)
            self._block = None
        if self._fd >= 0:
            if self.error is None:
                self.error = OSError(errno.ECANCELED, "cache file closed")  # skip the rest
            self.pool.sync(self)  # no write of this file is in flight any more
            os.close(self._fd)
            self._fd = -1


def _fsync_dir(folder: Path) -> None:
    """Make the renames in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
