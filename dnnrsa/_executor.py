"""Run independent units of work here or on a Dask cluster, yielding each result as it
finishes.

A *unit* is one call ``fn(*args, **shared)``: ``fn`` a picklable module-level function,
``args`` a tuple of plain picklable values, ``shared`` keyword arguments common to every
unit. :func:`run_units` runs them

- serially in this process (``n_jobs=1``),
- in ``n_jobs`` joblib worker processes (results in the order they finish), or
- on a Dask cluster (``scheduler``: an address, a scheduler file or a
  ``distributed.Client``), each unit one task under a deterministic key.

Whatever runs them, the caller gets every unit's result exactly once, as
``(index, result)`` pairs. On Dask, a unit whose worker dies is re-run elsewhere by the
scheduler (up to ``distributed.scheduler.allowed-failures`` times); a unit that fails for
good is an error naming it. ``distributed`` is imported only when a scheduler is given.

Start a cluster for a sweep with one thread per worker process (the units use their own
BLAS and torch threads, and a unit holds a network and its activations)::

    dask scheduler --scheduler-file sched.json
    dask worker --scheduler-file sched.json --nthreads 1 --nworkers 4
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._utils import check_positive_int, logger

__all__ = ["UnitError", "check_scheduler", "dask_client", "run_units", "unit_keys"]

#: Seconds to wait for a scheduler before calling it unreachable.
CONNECT_TIMEOUT = 10.0
_PROTOCOLS = ("tcp://", "tls://", "inproc://")
_INSTALL = 'pip install "dnnrsa[distributed]"'


class UnitError(RuntimeError):
    """A unit of work failed for good on a Dask cluster (its function raised, or it took
    down more workers than the scheduler allows). ``label`` names the unit, ``index``
    is its position in the list given to :func:`run_units`."""

    def __init__(self, message: str, *, label: str, index: int):
        super().__init__(message)
        self.label = label
        self.index = index


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"Running on a Dask cluster (argument scheduler) needs the distributed package: "
            f"{_INSTALL} (or pip install 'dask[distributed]'), or pass scheduler=None to "
            "run locally."
        ) from exc
    return distributed


def _accepted() -> str:
    return ("None (run locally), a scheduler address 'tcp://HOST:PORT' (also tls:// or "
            "inproc://), the path of a scheduler file '*.json' (as `dask scheduler "
            "--scheduler-file` and dask-jobqueue write) or a distributed.Client")


def check_scheduler(scheduler: Any) -> Any:
    """Check the ``scheduler`` argument without connecting to anything.

    Parameters
    ----------
    scheduler : None, str, os.PathLike or distributed.Client
        None runs locally; ``"tcp://HOST:PORT"`` (also ``tls://``, ``inproc://``) is a
        scheduler's address; a path ending in ``.json`` is a scheduler file (it must
        exist); a ``distributed.Client`` is used as it is (and never closed).

    Returns
    -------
    None, str or distributed.Client
        The scheduler, a scheduler file as a str path.

    Raises
    ------
    TypeError
        ``scheduler`` is of another type.
    ValueError
        A string that is neither an address nor a ``.json`` path, or a closed Client.
    FileNotFoundError
        A scheduler file that does not exist.
    ImportError
        A scheduler was given but ``distributed`` is not installed.
    """
    if scheduler is None:
        return None
    if isinstance(scheduler, (str, os.PathLike)) and not isinstance(scheduler, bytes):
        text = os.fspath(scheduler)
        if isinstance(scheduler, str) and text.startswith(_PROTOCOLS):
            if not re.fullmatch(r"[a-z]+://\S+", text):
                raise ValueError(f"Argument scheduler={text!r} is not a scheduler address; "
                                 f"valid values are {_accepted()}.")
            _import_distributed()
            return text
        if text.endswith(".json"):
            path = Path(text).expanduser()
            if not path.is_file():
                raise FileNotFoundError(
                    f"Argument scheduler={text!r}: no scheduler file there. Start a scheduler "
                    f"with `dask scheduler --scheduler-file {text}` (or pass the address "
                    "'tcp://HOST:PORT' it prints), or pass scheduler=None to run locally."
                )
            _import_distributed()
            return str(path)
        raise ValueError(f"Unknown value {text!r} for argument scheduler. Valid values are "
                         f"{_accepted()}.")
    module = type(scheduler).__module__ or ""
    if module.split(".")[0] == "distributed":
        distributed = _import_distributed()
        if isinstance(scheduler, distributed.Client):
            if scheduler.status in ("closing", "closed"):
                raise ValueError("Argument scheduler is a distributed.Client that is closed; "
                                 "pass a running Client, an address, or None.")
            return scheduler
    raise TypeError(f"Argument scheduler must be {_accepted()}; got "
                    f"{type(scheduler).__name__}.")


def _unreachable(where: str, exc: BaseException | None = None) -> ValueError:
    why = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return ValueError(
        f"Argument scheduler: no Dask scheduler answered at {where}{why}; start one with "
        "`dask scheduler` and workers with `dask worker ADDRESS`, or pass scheduler=None to "
        "run locally."
    )


@contextmanager
def dask_client(scheduler: Any, *, timeout: float = CONNECT_TIMEOUT) -> Iterator[Any]:
    """A connected ``distributed.Client`` for ``scheduler`` (None for None).

    A Client passed in is yielded as it is and left open; one opened here from an address
    or a scheduler file is closed on leaving the block. A scheduler that does not answer
    within ``timeout`` seconds is a ValueError that says how to start one.
    """
    scheduler = check_scheduler(scheduler)
    if scheduler is None or not isinstance(scheduler, str):
        yield scheduler
        return
    distributed = _import_distributed()
    by_file = scheduler.endswith(".json")
    where = f"the address in {scheduler}" if by_file else scheduler
    try:
        if by_file:
            client = distributed.Client(scheduler_file=scheduler, timeout=timeout,
                                        set_as_default=False)
        else:
            client = distributed.Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise _unreachable(where, exc) from exc
    try:
        yield client
    finally:
        client.close()


def _digest(value: Any) -> str:
    """sha256 of a value's pickle (cloudpickle for what plain pickle refuses)."""
    try:
        data = pickle.dumps(value, protocol=4)
    except (pickle.PicklingError, AttributeError, TypeError):
        import cloudpickle

        data = cloudpickle.dumps(value, protocol=4)
    return hashlib.sha256(data).hexdigest()


def unit_keys(fn: Callable, units: Sequence[tuple], shared: dict | None = None,
              labels: Sequence[str] | None = None, *, name: str = "dnnrsa") -> list[str]:
    """Deterministic Dask keys, ``NAME-LABEL-HASH``: the same function on the same
    arguments gets the same key, so a cluster computes a unit once however many times
    it is submitted at once (two clients running the same sweep share the work); any
    change of an argument gives another key."""
    labels = [str(i) for i in range(len(units))] if labels is None else list(labels)
    base = _digest((getattr(fn, "__module__", None), getattr(fn, "__qualname__", None),
                    _digest(shared or {})))
    return [f"{name}-{re.sub(r'[^A-Za-z0-9_.-]', '_', label)}-"
            f"{_digest((base, tuple(args)))[:16]}" for label, args in zip(labels, units)]


def _call(fn: Callable, args: tuple, shared: dict) -> Any:
    return fn(*args, **shared)


def _indexed(index: int, fn: Callable, args: tuple, shared: dict) -> tuple[int, Any]:
    return index, fn(*args, **shared)


def run_units(fn: Callable, units: Sequence[tuple], *, shared: dict | None = None,
              labels: Sequence[str] | None = None, scheduler: Any = None,
              n_jobs: int = 1, name: str = "dnnrsa") -> Iterator[tuple[int, Any]]:
    """Run ``fn(*units[i], **shared)`` for every ``i`` and yield ``(i, result)`` as each
    finishes.

    Parameters
    ----------
    fn : callable
        A picklable (module-level) function.
    units : sequence of tuple
        The positional arguments of each unit (plain picklable values).
    shared : dict, optional
        Keyword arguments given to every unit.
    labels : sequence of str, optional
        A name per unit (default its index), used in Dask keys and error messages.
    scheduler : None, str, os.PathLike or distributed.Client
        None runs here (``n_jobs``); else the Dask cluster to run on (see
        :func:`check_scheduler`). A Client opened here from an address is closed at the
        end; a Client passed in is left open.
    n_jobs : int
        Without a scheduler: 1 runs the units one after the other in this process, more
        runs them in that many joblib worker processes (results in the order they
        finish). Ignored with a scheduler (the cluster's workers decide).
    name : str
        First part of the Dask keys.

    Returns
    -------
    iterator of (int, object)
        Each unit's index and result, exactly once each, in the order they finish. The
        arguments are checked when this is called; the units start when it is iterated.

    Raises
    ------
    UnitError
        On Dask, a unit that raised or killed more workers than the scheduler allows;
        the message names it and the remaining units are cancelled. Locally, a unit's
        exception propagates unchanged.
    """
    if not callable(fn):
        raise TypeError(f"Argument fn must be a callable, got {type(fn).__name__}.")
    units = [tuple(u) for u in units]
    shared = dict(shared or {})
    labels = [str(i) for i in range(len(units))] if labels is None else [str(x) for x in labels]
    if len(labels) != len(units):
        raise ValueError(f"Argument labels has {len(labels)} names for {len(units)} units; "
                         "give one per unit or None.")
    n_jobs = check_positive_int("n_jobs", n_jobs, 1)
    scheduler = check_scheduler(scheduler)  # refused now, not at the first result
    return _iterate(fn, units, shared, labels, scheduler, n_jobs, name)


def _iterate(fn, units, shared, labels, scheduler, n_jobs, name) -> Iterator[tuple[int, Any]]:
    if not units:
        return
    if scheduler is None:
        yield from _run_local(fn, units, shared, n_jobs)
        return
    with dask_client(scheduler) as client:
        yield from _run_dask(client, fn, units, shared, labels, name)


def _run_local(fn, units, shared, n_jobs) -> Iterator[tuple[int, Any]]:
    if n_jobs == 1 or len(units) == 1:
        for i, args in enumerate(units):
            yield i, fn(*args, **shared)
        return
    from joblib import Parallel, delayed

    outputs = Parallel(n_jobs=min(n_jobs, len(units)), return_as="generator_unordered")(
        delayed(_indexed)(i, fn, args, shared) for i, args in enumerate(units))
    yield from _exactly_once(outputs, len(units), labels=None)


def _exactly_once(pairs, n: int, labels) -> Iterator[tuple[int, Any]]:
    """Pass ``(index, result)`` pairs on, dropping a repeated index, and check at the end
    that every index came."""
    done: set[int] = set()
    for i, result in pairs:
        if i in done:
            logger.info("unit %s finished twice (its worker was replaced); result kept once",
                        i if labels is None else labels[i])
            continue
        done.add(i)
        yield i, result
    missing = sorted(set(range(n)) - done)
    if missing:
        names = [str(i) if labels is None else labels[i] for i in missing]
        raise RuntimeError(f"Units {', '.join(names)} never returned a result; rerun (the "
                           "finished units are not lost if the caller caches them).")


def _run_dask(client, fn, units, shared, labels, name) -> Iterator[tuple[int, Any]]:
    distributed = _import_distributed()
    keys = unit_keys(fn, units, shared, labels, name=name)
    if not client.scheduler_info().get("workers"):
        logger.warning("The Dask scheduler has no workers yet: the units wait until `dask "
                       "worker %s` joins.", client.scheduler.address)
    futures = [client.submit(_call, fn, args, shared, key=key, pure=True)
               for key, args in zip(keys, units)]
    index = {f.key: i for i, f in enumerate(futures)}
    logger.info("submitted %d units to the Dask scheduler at %s", len(futures),
                client.scheduler.address)

    def pairs():
        taken: set[int] = set()
        for future in distributed.as_completed(futures, loop=client.loop):
            i = index[future.key]
            if i in taken:  # as_completed may report a future again after a worker loss
                continue
            taken.add(i)
            if future.status != "finished":
                try:
                    future.result()
                except Exception as exc:  # the unit's own error, or KilledWorker
                    killed = type(exc).__name__ == "KilledWorker"
                    why = ("it took down a worker each time it ran, more times than "
                           "distributed.scheduler.allowed-failures allows (out of memory? "
                           "a crash in native code?)") if killed else (
                        f"{type(exc).__name__}: {exc}")
                    raise UnitError(f"Unit {labels[i]} (Dask key {future.key}) failed for "
                                    f"good on the cluster: {why}", label=labels[i],
                                    index=i) from exc
            yield i, future.result()
            future.release()

    try:
        yield from _exactly_once(pairs(), len(units), labels)
    finally:
        client.cancel([f for f in futures if not f.done()])
