"""Resumable training: the state of a run of :func:`dnnrsa.zoo.train`, written every few
epochs, and what a later call needs to continue it to the same bits.

One state file per network (per seed), so that the seeds of a ``train_variant`` call can
be resumed one by one and a member trained on a thread of its own writes only its file. A
state holds everything that decides the rest of the run:

- the network's weights and BatchNorm buffers, the optimiser's buffers (by parameter name,
  so that a member of a grouped ensemble and a lone network read the same file) and the
  learning-rate scheduler;
- every random generator still to be drawn from: the member's batch-order / flip generator
  and its dropout generator (an ensemble member's own, or for a lone network the global
  generator of the training device, plus the global CPU one on CUDA);
- epochs done, the histories so far and the seconds spent;
- ``owner``: what the state belongs to (seed, epochs, protocol, precision, data checksums,
  architecture, parameter shapes and dtypes, device type). A state of another run is
  refused, never silently continued.

Files are written atomically (a temporary in the same folder, fsync, ``os.replace``) with
``torch.save`` and read with ``torch.load(weights_only=True)``: plain tensors, numbers,
strings, lists and dicts, never arbitrary pickled objects.
"""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._utils import logger
from ._checkpoint import _fsync, _remove_orphans, _tmp_name
from ._ensemble import _is_head

STATE_FORMAT = "dnnrsa.train-state/1"
#: Suffix of a state file beside a zoo checkpoint (``seed03.state.pt``).
STATE_SUFFIX = ".state.pt"
_KEYS = ("format", "owner", "epochs_done", "model", "optimizer", "scheduler",
         "order_generator", "dropout_generator", "global_cpu", "history", "seconds")
_HISTORY = ("epochs", "lr", "loss", "train_accuracy", "test_accuracy")
_START_OVER = ("delete the file to start over (train_variant / `dnnrsa train`: run without "
               "resume, which overwrites it)")


# --- options ---------------------------------------------------------------------------

def check_state_options(state: Any, state_every: Any, resume: Any, *, n_models: int,
                        single: bool) -> list[Path] | None:
    """The state paths of :func:`dnnrsa.zoo.train` (one per model), checked with
    ``state_every`` and ``resume``; None without states."""
    if isinstance(state_every, bool) or not isinstance(state_every, numbers.Integral) \
            or state_every < 1:
        raise ValueError(f"Argument state_every must be an integer >= 1 (write the training "
                         f"state every that many epochs), got {state_every!r}.")
    if not isinstance(resume, bool):
        raise TypeError(f"Argument resume must be True or False, got {resume!r}.")
    if state is None:
        if resume:
            raise ValueError("Argument resume=True needs state=PATH (one path per model for "
                             "a list of models): the file to continue from.")
        return None
    if single:
        if not isinstance(state, (str, os.PathLike)):
            raise TypeError(f"Argument state must be a path for a single model, got "
                            f"{type(state).__name__}.")
        paths = [Path(state)]
    else:
        if isinstance(state, (str, os.PathLike)) or not isinstance(state, Sequence) \
                or not all(isinstance(p, (str, os.PathLike)) for p in state):
            raise TypeError(f"Argument state must be a list of paths with a list of models "
                            f"(one file per model, in the order of seeds), got {state!r}.")
        paths = [Path(p) for p in state]
        if len(paths) != n_models:
            raise ValueError(f"Argument state has {len(paths)} paths for {n_models} models; "
                             "give one state file per model.")
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"Argument state names one file twice ({[str(p) for p in paths]}); "
                         "give each model a file of its own.")
    for p in paths:
        if p.is_dir():
            raise ValueError(f"Argument state names a folder ({p}); give a file path, "
                             f"e.g. {p / ('seed00' + STATE_SUFFIX)}.")
    return paths


def check_keep_epochs(keep_epochs: Any, epochs: int) -> tuple[int, ...]:
    """``keep_epochs`` as a sorted tuple of distinct ints in ``1..epochs`` (empty for None),
    else a clear TypeError / ValueError."""
    if keep_epochs is None:
        return ()
    if isinstance(keep_epochs, (str, bytes)) or not isinstance(keep_epochs, Sequence):
        raise TypeError(f"Argument keep_epochs must be a list of epoch numbers, e.g. [1, 5], "
                        f"got {keep_epochs!r}.")
    bad = [e for e in keep_epochs if isinstance(e, bool) or not isinstance(e, numbers.Integral)]
    if bad:
        raise TypeError(f"Argument keep_epochs must hold integers (epoch numbers), got "
                        f"{bad[0]!r} in {list(keep_epochs)!r}.")
    values = [int(e) for e in keep_epochs]
    out = [e for e in values if not 1 <= e <= epochs]
    if out:
        raise ValueError(f"Argument keep_epochs={values!r} has epoch(s) {out} outside 1..{epochs} "
                         f"(the run trains {epochs} epochs); keep epochs it reaches.")
    if len(set(values)) != len(values):
        twice = sorted({e for e in values if values.count(e) > 1})
        raise ValueError(f"Argument keep_epochs={values!r} lists epoch(s) {twice} twice; give "
                         "each epoch once.")
    return tuple(sorted(values))


# --- zoo paths -------------------------------------------------------------------------

def state_path(checkpoint: Path) -> Path:
    """The state file beside a zoo checkpoint: ``seed03.safetensors`` -> ``seed03.state.pt``
    (``.pt``, so no loader or listing takes it for a ``.safetensors`` checkpoint)."""
    return checkpoint.with_name(checkpoint.name.removesuffix(".safetensors") + STATE_SUFFIX)


def kept_path(checkpoint: Path, epoch: int) -> Path:
    """The checkpoint kept at ``epoch`` beside the final one: ``seed03-epoch0005.safetensors``
    (a hyphen, not a dot: ``zoo.save`` takes the part after a last dot for a suffix)."""
    stem = checkpoint.name.removesuffix(".safetensors")
    return checkpoint.with_name(f"{stem}-epoch{int(epoch):04d}.safetensors")


def kept_epochs(checkpoint: Path) -> list[int]:
    """The epochs kept beside ``checkpoint`` (sorted)."""
    stem = checkpoint.name.removesuffix(".safetensors")
    pattern = re.compile(re.escape(stem) + r"-epoch(\d+)\.safetensors")
    folder = checkpoint.parent
    found = [pattern.fullmatch(p.name) for p in folder.iterdir()] if folder.is_dir() else []
    return sorted(int(m.group(1)) for m in found if m)


# --- what a state belongs to -----------------------------------------------------------

def owner(model: nn.Module, seed: int, *, epochs: int, test_every: int, protocol: dict,
          precision: str, classes: list, target: str | None, data_sha: str, n_images: int,
          test_sha: str | None, device: torch.device) -> dict:
    """The identity of one network's run, as plain data (compared field by field)."""
    config = getattr(model, "config", None)
    return dict(
        seed=int(seed), epochs=int(epochs), test_every=int(test_every),
        protocol=dict(protocol, precision=precision),
        classes=[c.item() if hasattr(c, "item") else c for c in classes], target=target,
        data=dict(sha256=data_sha, n_images=int(n_images), test_sha256=test_sha),
        architecture=dict(config) if isinstance(config, dict) else type(model).__name__,
        parameters=[[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
                    for k, v in model.state_dict().items()],
        device=device.type,
    )


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))
        return out
    if a != b:
        if where == "parameters":
            return ["parameters (names, shapes or dtypes of the weights)"]
        return [f"{where} (state: {a!r}, this run: {b!r})"]
    return []


# --- read and write --------------------------------------------------------------------

def read_state(path: Path, expected: dict) -> dict:
    """The state at ``path``, checked to belong to the run described by ``expected``
    (:func:`owner`); a ValueError naming the file otherwise."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle opcodes, refused types, ...
        raise ValueError(
            f"Training state {path} cannot be read ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}): it is truncated, "
            f"corrupt or not a dnnrsa training state. Nothing was trained; {_START_OVER}."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT \
            or any(k not in payload for k in _KEYS):
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"Training state {path} is not a {STATE_FORMAT} file (format "
                         f"{got!r}, or fields missing). Nothing was trained; {_START_OVER}.")
    diff = _differences(payload["owner"], expected)
    if diff:
        raise ValueError(
            f"Training state {path} belongs to another run: it differs in "
            + "; ".join(diff) + ". Resume it with the options, data and network it was made "
            f"with, or {_START_OVER}."
        )
    done = payload["epochs_done"]
    if not isinstance(done, int) or not 0 < done <= expected["epochs"]:
        raise ValueError(f"Training state {path} says {done!r} epochs were done, not a number "
                         f"in 1..{expected['epochs']}. Nothing was trained; {_START_OVER}.")
    return payload


def write_state(path: Path, payload: dict) -> None:
    """``torch.save`` to a temporary beside ``path``, fsync, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path.parent)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        if os.name == "posix":
            _fsync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def open_states(paths: list[Path], owners: list[dict], resume: bool) -> list[dict | None]:
    """Read (``resume``) the states of a call of :func:`train`, all before any training,
    or note that existing ones will be overwritten."""
    out: list[dict | None] = []
    for path, expected in zip(paths, owners):
        if not path.exists():
            if resume:
                logger.info("train: no training state at %s; seed %d trains from scratch",
                            path, expected["seed"])
            out.append(None)
        elif resume:
            payload = read_state(path, expected)
            logger.info("train: resuming seed %d from %s (%d of %d epochs done)",
                        expected["seed"], path, payload["epochs_done"], expected["epochs"])
            out.append(payload)
        else:
            logger.info("train: ignoring the training state at %s (resume=False); it is "
                        "overwritten at the first state written", path)
            out.append(None)
    return out


# --- a run's keeper --------------------------------------------------------------------

def _by_name(opt_state: dict, names: list[str]) -> dict:
    return {names[i]: dict(buffers) for i, buffers in opt_state.items()}


def _member_part(name: str, t: Any, i: int, k: int, ensemble: bool) -> Any:
    """Member ``i``'s part of an optimiser buffer of the loop's network (a lone network's
    buffers are the member's own; an ensemble's head buffers are stacked, the others
    concatenated, as its weights, see :func:`stack_state`)."""
    if not torch.is_tensor(t) or t.dim() == 0 or not ensemble:
        return t.clone() if torch.is_tensor(t) else t
    return (t[i] if _is_head(name) else t.chunk(k, 0)[i]).clone()


def _joined(name: str, values: list, ensemble: bool) -> Any:
    first = values[0]
    if not torch.is_tensor(first) or first.dim() == 0 or not ensemble:
        return first
    return torch.stack(values) if _is_head(name) else torch.cat(values, 0)


class StateKeeper:
    """The states of the K members of one training loop (K = 1 for a lone network): loads
    them into the loop's optimiser, scheduler and generators, and writes them."""

    def __init__(self, paths: list[Path | None], owners: list[dict],
                 payloads: list[dict | None], every: int, *, lone: torch.device | None):
        self.paths, self.owners, self.payloads = paths, owners, payloads
        self.every, self.lone = every, lone
        starts = {p["epochs_done"] if p else 0 for p in payloads}
        if len(starts) != 1:
            raise RuntimeError("members of one loop must resume from one epoch")
        self.start = starts.pop()

    def load_weights(self, models: Sequence[nn.Module]) -> None:
        for model, path, payload in zip(models, self.paths, self.payloads):
            if payload is not None:
                try:
                    model.load_state_dict(payload["model"])
                except RuntimeError as exc:
                    raise ValueError(f"Training state {path} holds weights that do not fit the "
                                     f"network ({exc}); {_START_OVER}.") from exc

    def restore(self, net: nn.Module, opt, sched, gens: list, hists: list,
                dropout: list | None, history_type) -> float:
        """Load optimiser, scheduler, generators and histories; return seconds spent."""
        if self.start == 0:
            return 0.0
        payloads = self.payloads
        names = [n for n, _ in net.named_parameters()]
        first = payloads[0]["optimizer"]
        state = {}
        for i, name in enumerate(names):
            per = [p["optimizer"]["state"].get(name) for p in payloads]
            if any(b is None for b in per):
                continue
            state[i] = {key: _joined(name, [b[key] for b in per], self.lone is None)
                        for key in per[0]}
        try:
            opt.load_state_dict({"state": state, "param_groups": first["param_groups"]})
            sched.load_state_dict(payloads[0]["scheduler"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ValueError(f"Training state {self.paths[0]} holds an optimiser state that "
                             f"does not fit this run ({exc}); {_START_OVER}.") from exc
        for g, p in zip(gens, payloads):
            g.set_state(p["order_generator"])
        if dropout is not None:
            for g, p in zip(dropout, payloads):
                g.set_state(p["dropout_generator"])
        elif self.lone is not None:
            self._set_global(payloads[0])
        for i, p in enumerate(payloads):
            hists[i] = history_type(**{key: list(p["history"][key]) for key in _HISTORY})
        return float(payloads[0]["seconds"])

    def due(self, done: int) -> bool:
        return done % self.every == 0 or done == self.owners[0]["epochs"]

    def write(self, done: int, states: list[dict], net: nn.Module, opt, sched, gens: list,
              hists: list, dropout: list | None, seconds: float) -> None:
        k = len(states)
        names = [n for n, _ in net.named_parameters()]
        opt_state = opt.state_dict()
        groups = opt_state["param_groups"]
        by_name = _by_name(opt_state["state"], names)
        global_cpu = torch.random.get_rng_state() if self.lone is not None else None
        for i, path in enumerate(self.paths):
            if dropout is not None:
                drop = dropout[i].get_state()
            elif self.lone is not None and self.lone.type == "cuda":
                drop = torch.cuda.get_rng_state(self.lone)
            else:
                drop = global_cpu
            hist = hists[i]
            payload = dict(
                format=STATE_FORMAT, owner=self.owners[i], epochs_done=int(done),
                model=states[i],
                optimizer=dict(param_groups=groups, state={
                    name: {key: _member_part(name, t, i, k, self.lone is None)
                           for key, t in buffers.items()}
                    for name, buffers in by_name.items()}),
                scheduler=sched.state_dict(), order_generator=gens[i].get_state(),
                dropout_generator=drop, global_cpu=global_cpu,
                history={key: list(getattr(hist, key)) for key in _HISTORY},
                seconds=float(seconds))
            write_state(path, payload)

    def _set_global(self, payload: dict) -> None:
        if payload["global_cpu"] is not None:
            torch.random.set_rng_state(payload["global_cpu"])
        if self.lone.type == "cuda":
            torch.cuda.set_rng_state(payload["dropout_generator"], self.lone)
        elif payload["global_cpu"] is None:  # written by an ensemble member: its generator
            torch.random.set_rng_state(payload["dropout_generator"])
