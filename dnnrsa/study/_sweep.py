"""`reproduce()`: the CCN-2022 study as one sweep over networks x seeds x layers x targets."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import datasets, zoo
from .._executor import check_scheduler, dask_client, run_units
from .._utils import (
    check_choice,
    check_output_path,
    check_positive_int,
    check_seed_list,
    dnnrsa_home,
    hide_progress,
    keyword_only,
    logger,
    resolve_device,
)
from ..decoding import check_readout_options, decode_grid
from ..extract import extract
from ..stimuli import StimulusSet
from ..zoo import check_on_problem
from ._calibration import test_set_calibration
from ._paper import PAPER_LAYERS, PAPER_SEEDS, QUICK_STUDY
from ._report import write_outputs
from ._resolve import check_copies, default_stimuli
from ._unit_cache import UnitCache, as_json, unit_config

__all__ = ["reproduce"]

TARGETS = ("identity", "expression")


def _seed_list(seeds) -> list[int]:
    return check_seed_list("seeds", seeds, count_ok=True)


def _check_out(out) -> Path | None:
    """The output folder, refused before any work when it cannot be one (a file, under a
    file, or not writable); nothing is created yet."""
    if out is None:
        return None
    return check_output_path("out", out, kind="folder")


@keyword_only("networks", "seeds", "layers", "targets")
def reproduce(
    data: str = "synthetic",
    *,
    networks: Sequence[str] = ("expression", "identity", "scene", "untrained"),
    seeds: Any = None,
    layers: Sequence[str] = PAPER_LAYERS,
    targets: Sequence[str] = TARGETS,
    quick: bool = False,
    readout: str = "paper",
    readout_epochs: int | None = None,
    device: Any = "auto",
    out: str | os.PathLike | None = None,
    home: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    stimuli: StimulusSet | None = None,
    pixel_control: bool = True,
    n_jobs: int | None = None,
    progress: bool | None = None,
    on_problem: str = "raise",
    scheduler: Any = None,
    cache: bool = True,
    at_epochs: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Run the study: train or load each network x seed, extract every layer for the test
    faces, read out every target on a held-out viewpoint, add the pixel control.

    Parameters
    ----------
    data : {"synthetic", "paper"}
        ``"synthetic"``: networks trained on dnnrsa's rendered sets and tested on the
        synthetic faces. ``"paper"``: FER2013, CelebA, UC Merced and KDEF from local copies
        (``data_root`` or ``$DNNRSA_DATA``).
    networks : sequence of {"expression", "identity", "scene", "untrained"}
    seeds : int or sequence of int, optional
        Number of network seeds (0..seeds-1) or the seeds themselves. Default: the
        paper's 10, or 5 with ``quick``. The seeds of a network are trained together (one
        ensemble, :func:`dnnrsa.zoo.train_variant` with ``seeds``) and read out together
        (:func:`dnnrsa.decoding.decode_grid`); each is still its own initialisation,
        data order and readout. Whatever is given is honoured.
    layers : sequence of str
    targets : sequence of {"identity", "expression"}
    quick : bool
        Narrow networks on 32 px images, few epochs, a small face set and short readouts:
        the whole sweep in minutes on a CPU (see ``dnnrsa.zoo.QUICK`` and ``QUICK_STUDY``).
    readout : {"paper", "linear"}
    readout_epochs : int, optional
        Epochs of the paper readout (default 100, or 15 when quick); at least 1.
    device : {"auto", "cpu", "cuda", ...}
        Where training, extraction and readouts run. With a ``scheduler`` it is resolved
        on each worker (``"auto"``: a worker's GPU if it has one), so it need not exist
        on this machine.
    out : path, optional
        Folder to write ``results.csv``, ``summary.csv``, ``findings.csv``, ``fig2a.png``,
        ``fig2b.png`` and ``report.md`` into. Nothing is written without it.
    home : path, optional
        Models folder (default ``$DNNRSA_HOME``); also holds the cache of finished units
        (``HOME/cache/units``). With a ``scheduler`` it must be the same folder on every
        worker (a shared file system), as must ``data_root``.
    data_root : path, optional
        Folder of the real data sets (default ``$DNNRSA_DATA``).
    stimuli : StimulusSet, optional
        Test faces to use instead of the default (KDEF for ``"paper"``, synthetic faces else).
    pixel_control : bool
        Add the pixel control (a linear readout on pixel values, same folds).
    n_jobs : int, optional
        How many units of work (one network with a group of its seeds: all of them unless
        there are more workers than networks) to plan for. Locally these are worker
        processes; default one per CPU core when running on the CPU, 1 on a GPU. With a
        ``scheduler``, the default is the cluster's number of worker threads when the run
        starts.
    progress : bool, optional
        Show a progress bar (default: only in a terminal).
    on_problem : {"raise", "skip"}
        With ``data="paper"``, what to do with a local copy that does not match its
        manifest (files missing, wrong counts or checksums, undecodable images).
        ``"raise"`` (default): every copy the run reads is checked first
        (:func:`dnnrsa.datasets.check_dataset` without checksums, then the loaders verify
        checksums as they load) and any problem is one error before any network is
        trained. ``"skip"``: run on the usable part; the problems are logged as warnings
        and listed in the report's "Data" section, and the networks trained are a recipe
        of their own (``on_problem="skip"`` in :func:`dnnrsa.zoo.recipe`), never loaded
        as networks trained on a sound copy. Only for ``data="paper"``.
    scheduler : None, str, os.PathLike or distributed.Client, optional
        None (default) runs here (``n_jobs``). Else the units run on a Dask cluster: a
        scheduler address ``"tcp://HOST:PORT"`` (also ``tls://``, ``inproc://``), the
        path of a scheduler file ``*.json`` (``dask scheduler --scheduler-file F``,
        dask-jobqueue) or a ``distributed.Client`` (left open). A scheduler that does not
        answer within 10 s is an error before any work. A unit whose worker dies is run
        again elsewhere; each unit counts once. Start workers with one thread each
        (``dask worker ADDRESS --nthreads 1 --nworkers N``): a unit uses the threads the
        worker process has. The pixel control is a unit of its own there. Needs
        ``pip install "dnnrsa[distributed]"``.
    cache : bool
        Keep each finished unit in ``HOME/cache/units`` and reuse it: a rerun of a
        finished (or interrupted) study trains, extracts and decodes only what is not
        there yet. A unit is keyed by its settings (network, seeds of its group, data,
        quick, layers, targets, readout, readout epochs, cv, on_problem), the test faces'
        checksum and the dnnrsa version, and reused only while its checkpoints still have
        the ``weights_sha256`` it was computed from. ``False`` neither reads nor writes
        the cache.
    at_epochs : sequence of int, optional
        Also read out every trained network as it was after these epochs (in 1..the
        recipe's epochs; its checkpoints kept by :func:`dnnrsa.zoo.train_variant` with
        ``keep_epochs``, retraining a seed whose kept checkpoints are missing), to trace
        how identity and expression emerge while a network learns its task. The table
        gains an ``epoch`` column (the recipe's last epoch for the final networks, 0 for
        the untrained ones, empty for the pixel control); Figure 2, the summary and the
        findings use the final networks only, and ``out`` also gets ``epochs.csv`` (mean,
        95% t interval over seeds and Welch's test against the untrained networks at every
        kept epoch) and ``fig_epochs.png``.

    Returns
    -------
    pandas.DataFrame
        Tidy results, one row per network x seed x layer x target x fold (x epoch with
        ``at_epochs``: select ``results.epoch == results.epoch.max()`` or the untrained
        rows for the final networks).
    """
    # Every argument is checked before the first network is touched.
    check_choice("data", data, ("synthetic", "paper"))
    networks = list(networks)
    if not networks:
        raise ValueError("Argument networks is empty; name at least one of "
                         "{expression, identity, scene, untrained}.")
    for n in networks:
        check_choice("networks", n, zoo.VARIANTS)
    for t in targets:
        check_choice("targets", t, TARGETS, hint="Other factors can be decoded with dnnrsa.decode.")
    check_choice("readout", readout, ("paper", "linear"))
    check_on_problem(on_problem, data)
    if not isinstance(cache, bool):
        raise TypeError(f"Argument cache must be True or False, got {cache!r}.")
    scheduler = check_scheduler(scheduler)
    seed_list = _seed_list((QUICK_STUDY["seeds"] if quick else PAPER_SEEDS) if seeds is None
                           else seeds)
    if readout_epochs is None:
        readout_epochs = QUICK_STUDY["readout_epochs"] if quick else 100
    if scheduler is None:
        device = check_readout_options(epochs=readout_epochs, device=device)["device"]
    else:  # resolved on each worker: only the spelling is checked here
        check_readout_options(epochs=readout_epochs, device="cpu")
        _check_device_name(device)
    if n_jobs is not None:
        n_jobs = check_positive_int("n_jobs", n_jobs, 1)
    at_epochs = _check_at_epochs(at_epochs, networks, data, quick, on_problem)
    out = _check_out(out)
    size = zoo.QUICK["arch"]["input_size"] if quick else 48
    copies = None
    if data == "paper":
        # Before any image is decoded or any network trained: every copy the run reads.
        needed = [zoo.VARIANTS[n].paper_data for n in networks if zoo.VARIANTS[n].paper_data]
        copies = check_copies([*dict.fromkeys(needed), *(["kdef"] if stimuli is None else [])],
                              data_root, on_problem)
    if stimuli is not None and not isinstance(stimuli, StimulusSet):
        raise TypeError(f"Argument stimuli must be a dnnrsa.StimulusSet or None, got "
                        f"{type(stimuli).__name__}.")
    with ExitStack() as stack:
        # Connected (or refused within seconds) before the faces are rendered.
        client = stack.enter_context(dask_client(scheduler)) if scheduler is not None else None
        seen: list[str] = []
        if stimuli is None:
            if data == "paper":
                with _warnings_logged(seen):
                    stimuli = default_stimuli(size, data_root=data_root, kind="kdef",
                                              on_problem=on_problem)
            elif quick:
                stimuli = datasets.synthetic_faces(n_identities=QUICK_STUDY["n_identities"],
                                                   sessions=QUICK_STUDY["sessions"], size=size)
            else:
                stimuli = datasets.synthetic_faces(size=size)
        for t in targets:
            stimuli.check_factor(t)
        stimuli.check_factor("viewpoint", "cv")
        start = time.perf_counter()
        logger.info("reproduce: %d networks x %d seeds x %d layers x %d targets on %s "
                    "(%d images)", len(networks), len(seed_list), len(layers), len(targets),
                    stimuli.name, len(stimuli))

        # Worker processes outlive a call (joblib reuses them, Dask workers run elsewhere)
        # and keep the environment they started with: resolve the folders that come from
        # environment variables here.
        home = dnnrsa_home(home)
        if data == "paper":
            data_root = datasets.data_root(data_root)
        if client is None:
            n_jobs = _n_jobs(n_jobs, device, len(networks))
        elif n_jobs is None:
            n_jobs = max(1, sum(client.nthreads().values()))
        jobs = _jobs(networks, seed_list, n_jobs)
        n_jobs = min(n_jobs, len(jobs))
        # Locally each process gets its share of the cores; a Dask worker keeps its own.
        threads = (max(1, (os.cpu_count() or 1) // n_jobs)
                   if client is None and n_jobs > 1 else None)
        task = dict(data=data, quick=quick, home=home, device=device, data_root=data_root,
                    on_problem=on_problem, stimuli=stimuli, layers=list(layers),
                    targets=list(targets), readout=readout,
                    epochs=readout_epochs, threads=threads, at_epochs=at_epochs)
        units = [("network", n, group) for n, group in jobs]
        if pixel_control:
            units.append(("pixels", "pixels", []))
        frames = _run_units(units, task, client=client, n_jobs=n_jobs, seen=seen,
                            cache=UnitCache(home, stimuli) if cache else None,
                            progress=progress, n_networks=len(networks) * len(seed_list))
        results = _sorted(pd.concat(frames, ignore_index=True), networks, layers)
        results.insert(0, "data", data)
    final = results
    if at_epochs:
        last = {n: _final_epoch(n, data, quick, on_problem) for n in networks}
        final = results[results.epoch.isna()
                        | (results.epoch == results.network.map(last).fillna(0))]
    calibration = _calibration_of(stimuli, final) if "identity" in targets else None
    elapsed = time.perf_counter() - start
    if out is not None:
        write_outputs(final, out, layers=list(layers), targets=list(targets),
                      context=dict(data=data, quick=quick, seeds=seed_list, readout=readout,
                                   readout_epochs=readout_epochs, stimuli=stimuli.name,
                                   n_stimuli=len(stimuli), seconds=elapsed,
                                   device=str(device), on_problem=on_problem,
                                   copies=copies, loader_warnings=seen,
                                   calibration=calibration,
                                   trajectories=results if at_epochs else None))
    return results


def _final_epoch(network: str, data: str, quick: bool, on_problem: str) -> int:
    """The last epoch of a variant's recipe (0 for the untrained networks)."""
    training = zoo.recipe(network, data=data, quick=quick, on_problem=on_problem)["training"]
    return int(training["epochs"]) if training else 0


def _check_at_epochs(at_epochs, networks, data, quick, on_problem) -> tuple[int, ...] | None:
    """``at_epochs`` as sorted distinct epochs every trained network of the run has, or
    None; refused before any work."""
    if at_epochs is None:
        return None
    if isinstance(at_epochs, (str, bytes)) or not hasattr(at_epochs, "__iter__"):
        raise TypeError(f"Argument at_epochs must be a list of epoch numbers, e.g. [1, 5], "
                        f"got {at_epochs!r}.")
    epochs = list(at_epochs)
    last = {n: _final_epoch(n, data, quick, on_problem) for n in networks}
    trained = {n: e for n, e in last.items() if e}
    if not trained:
        raise ValueError(f"Argument at_epochs={epochs!r} needs a trained network, but the run "
                         f"has only {list(networks)}; add expression, identity or scene.")
    limit = min(trained.values())
    for e in epochs:
        if isinstance(e, bool) or not isinstance(e, (int, np.integer)) or not 1 <= e <= limit:
            raise ValueError(f"Argument at_epochs must hold epoch numbers in 1..{limit} (the "
                             f"networks of this run train {limit} epochs), got {e!r}.")
    if len(set(epochs)) != len(epochs) or not epochs:
        raise ValueError(f"Argument at_epochs must list distinct epochs, at least one, got "
                         f"{epochs!r}.")
    return tuple(sorted(int(e) for e in epochs))


def _check_device_name(device: Any) -> None:
    """``device`` is a device name a worker can resolve (no check that it is present)."""
    if device is None or isinstance(device, torch.device) or device == "auto":
        return
    if not isinstance(device, str):
        raise TypeError(f"Argument device must be a string or torch.device, got "
                        f"{type(device).__name__}.")
    try:
        torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"Unknown value {device!r} for argument device. Valid values are "
                         "{auto, cpu, cuda, cuda:N, mps}.") from exc


def _config(unit: tuple, task: dict) -> dict:
    kind, net_name, group = unit
    common = dict(targets=task["targets"], readout=task["readout"],
                  readout_epochs=task["epochs"], cv="viewpoint")
    if kind == "pixels":
        return unit_config("pixels", **common)
    return unit_config("network", network=net_name, seeds=group, data=task["data"],
                       quick=task["quick"], layers=task["layers"],
                       on_problem=task["on_problem"], at_epochs=task["at_epochs"], **common)


def _run_units(units, task, *, client, n_jobs, seen, cache, progress, n_networks):
    """Every unit's frames: from the cache where it holds the unit, else computed (here,
    in local processes or on the cluster) and then filed in the cache."""
    bar = tqdm(total=n_networks, desc="networks", unit="net", disable=hide_progress(progress))
    frames: list[pd.DataFrame] = []

    def take(unit, output, cached):
        kind, net_name, group = unit
        seen.extend(m for m in output["seen"] if m not in seen)
        for seed, info in zip(group, output["infos"]):
            acc = info.get("test_accuracy")
            logger.info("%s seed %d: %s%d layers x %d targets decoded%s", net_name, seed,
                        "" if acc is None else f"own-task held-out accuracy {acc:.3f}; ",
                        len(task["layers"]), len(task["targets"]),
                        " (from the unit cache)" if cached else "")
        frames.extend(output["frames"])
        bar.update(len(group))

    todo = []
    for unit in units:
        hit = cache.read(_config(unit, task)) if cache is not None else None
        if hit is not None:
            take(unit, hit, True)
        else:
            todo.append(unit)
    labels = [f"reproduce-{kind}" if kind == "pixels"
              else f"reproduce-{name}-s{'-'.join(str(s) for s in group)}"
              for kind, name, group in todo]
    if client is None:
        # The pixel control after the networks, in this process with its threads, as
        # it always ran.
        batches = [([u for u in todo if u[0] == "network"], n_jobs, task),
                   ([u for u in todo if u[0] == "pixels"], 1, {**task, "threads": None})]
    else:  # everything on the cluster: the client may be a login node without a GPU
        batches = [(todo, 1, task)]
    for batch, jobs, shared in batches:
        names = [labels[todo.index(u)] for u in batch]
        for i, output in run_units(_unit, batch, shared=shared, labels=names,
                                   scheduler=client, n_jobs=jobs, name="dnnrsa"):
            if cache is not None:
                cache.write(_config(batch[i], task), frames=output["frames"],
                            infos=as_json(output["infos"]), seen=output["seen"],
                            weights_sha256=output["weights_sha256"])
            take(batch[i], output, False)
    bar.close()
    return frames


def _unit(kind, net_name, group, **task) -> dict:
    """One unit of work, wherever it runs: a network's seeds, or the pixel control."""
    if kind == "pixels":
        return _run_pixels(**task)
    _, _, infos, frames, seen, checksums = _run_networks(net_name, group, **task)
    return dict(frames=frames, infos=infos, seen=seen, weights_sha256=checksums)


def _run_pixels(*, stimuli, targets, readout, epochs, device, threads, at_epochs=None,
                **_):
    """The pixel control: a linear readout of the pixel values, same folds."""
    _limit_threads(threads)
    device = resolve_device(device)
    pix = extract(nn.Identity(), stimuli, ["pixels"], device="cpu")["pixels"]
    frames = [res.to_frame() for res in decode_grid(
        pix, targets=list(targets), cv="viewpoint", readout=readout, seeds=0,
        epochs=epochs, device=device, network="pixels")]
    if at_epochs:
        frames = [f.assign(epoch=np.nan) for f in frames]
    return dict(frames=frames, infos=[], seen=[], weights_sha256={})


def _limit_threads(threads) -> None:
    if threads is not None:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(threads)
        threadpool_limits(threads)


def _calibration_of(stimuli: StimulusSet, results: pd.DataFrame) -> pd.DataFrame:
    """How hard the run's test faces are, measured without training: brightness and pixel
    readouts of identity, and the untrained networks' conv1 (from the sweep itself)."""
    conv1 = results[(results.network == "untrained") & (results.layer == "conv1")
                    & (results.target == "identity")]
    untrained = None
    if len(conv1):
        per_seed = conv1.groupby("seed")["accuracy"].mean()
        untrained = (float(per_seed.mean()), float(conv1["chance"].iloc[0]), len(per_seed))
    return test_set_calibration(stimuli, untrained)


def _sorted(results: pd.DataFrame, networks, layers) -> pd.DataFrame:
    """Workers finish in any order: sort so that a table reads the same however it was run
    (networks and layers in the order asked for, the pixel control last)."""
    rank = {"network": {n: i for i, n in enumerate([*networks, "pixels"])},
            "layer": {name: i for i, name in enumerate(["pixels", *layers])}}
    keys = ["network", "seed", *(["epoch"] if "epoch" in results else []), "layer",
            "target", "fold"]
    return results.sort_values(
        keys,
        key=lambda c: c.map(rank[c.name]) if c.name in rank else c, kind="stable",
    ).reset_index(drop=True)


def _n_jobs(n_jobs, device, n_networks: int) -> int:
    """Worker processes: given, else one per core on a CPU (each with its own BLAS thread;
    small convolutions and readouts run faster that way than one process with two threads)
    and one on a GPU."""
    if n_jobs is None:
        n_jobs = 1 if device.type != "cpu" else (os.cpu_count() or 1)
    return max(1, n_jobs)


def _jobs(networks, seeds, n_jobs: int) -> list[tuple[str, list[int]]]:
    """The units of work: one network with a group of its seeds, trained together (one
    ensemble) and read out together (one batched readout per layer). A group is as large
    as the workers allow: all seeds of a network, unless there are more workers than
    networks, when each network's seeds are split to keep every worker busy."""
    per_network = max(1, min(len(seeds), -(-n_jobs // len(networks))))
    size = -(-len(seeds) // per_network)
    return [(n, list(seeds[i : i + size])) for n in networks
            for i in range(0, len(seeds), size)]


#: Bytes of activations a worker holds for a group of seeds: all layers of every seed
#: when they fit (one forward pass per seed), else one layer at a time, read out in parts
#: if need be (same numbers either way: every head is trained on its own).
_ACTIVATION_BYTES = 2 * 2**30


def _run_networks(net_name, seeds, *, data, quick, home, device, data_root, on_problem,
                  stimuli, layers, targets, readout, epochs, threads, at_epochs=None):
    """Train (or load) the seeds of one network together, then extract every seed and
    decode every target of every seed of a layer together; with ``at_epochs``, also the
    networks kept after those epochs."""
    _limit_threads(threads)
    device = resolve_device(device)  # on a Dask worker: "auto" finds the worker's GPU
    last = _final_epoch(net_name, data, quick, on_problem)
    kept = [e for e in (at_epochs or ()) if e < last]
    where = dict(data=data, quick=quick, home=home, on_problem=on_problem)
    seen: list[str] = []
    with _warnings_logged(seen):
        zoo.train_variant(net_name, seeds=list(seeds), device=device, data_root=data_root,
                          progress=False, keep_epochs=kept or None, **where)
        at = {s: _load_kept(net_name, s, kept, device, where) for s in seeds}
        missing = [s for s in seeds if at[s] is None]
        if missing:  # trained before, without these epochs kept: train them again
            logger.info("%s seeds %s: retraining to keep epochs %s", net_name, missing, kept)
            zoo.train_variant(net_name, seeds=missing, device=device, data_root=data_root,
                              progress=False, keep_epochs=kept, overwrite=True, **where)
            at.update({s: _load_kept(net_name, s, kept, device, where) for s in missing})
    models = [zoo.load_model(net_name, seed=s, device=device, **where) for s in seeds]
    infos = [m.dnnrsa_info for m in models]
    frames = _decode_models(models, seeds, net_name, stimuli=stimuli, layers=layers,
                            targets=targets, readout=readout, epochs=epochs, device=device)
    if at_epochs:
        frames = [f.assign(epoch=last) for f in frames]
        for e in kept:
            frames += [f.assign(epoch=e) for f in _decode_models(
                [at[s][e] for s in seeds], seeds, net_name, stimuli=stimuli, layers=layers,
                targets=targets, readout=readout, epochs=epochs, device=device)]
    return (net_name, list(seeds), infos, frames, seen,
            _checksums(net_name, seeds, data, quick, home, on_problem))


def _load_kept(net_name, seed, kept, device, where) -> dict | None:
    """The seed's networks kept after each epoch of ``kept`` (epoch -> network), or None
    when one of them was not kept; each is loaded (and its checksum verified) once."""
    try:
        return {e: zoo.load_model(net_name, seed=seed, epoch=e, device=device, **where)
                for e in kept}
    except FileNotFoundError:
        return None


def _decode_models(models, seeds, net_name, *, stimuli, layers, targets, readout, epochs,
                   device) -> list[pd.DataFrame]:
    """Every layer of every seed, each layer's seeds x targets x folds read out together."""

    def acts_of(model, names):
        return extract(model, stimuli, names, device=device, progress=False)

    def decode(acts, group_seeds):
        return [res.to_frame() for res in decode_grid(
            acts, targets=targets, cv="viewpoint", readout=readout, seeds=group_seeds,
            epochs=epochs, device=device, network=net_name)]

    # What each layer of one seed weighs, from one image (no full pass spent on sizing).
    one = extract(models[0], stimuli[:1], layers, device=device, progress=False)
    layer_bytes = {name: a.X.nbytes * len(stimuli) for name, a in one.items()}
    frames = []
    if sum(layer_bytes.values()) * len(models) <= _ACTIVATION_BYTES:
        per_seed = [acts_of(m, layers) for m in models]
        for layer in layers:
            frames += decode([a[layer] for a in per_seed], list(seeds))
        return frames
    for layer in layers:
        step = max(1, _ACTIVATION_BYTES // max(layer_bytes[layer], 1))
        for lo in range(0, len(models), step):
            group = models[lo : lo + step]
            frames += decode([acts_of(m, [layer])[layer] for m in group],
                             list(seeds[lo : lo + len(group)]))
    return frames


def _checksums(net_name, seeds, data, quick, home, on_problem) -> dict[str, str | None]:
    """Each seed's ``weights_sha256``, from the sidecar of the checkpoint just loaded."""
    return {str(s): zoo.read_info(zoo.checkpoint_path(
        net_name, s, data=data, quick=quick, home=home, on_problem=on_problem),
        verify=False).get("weights_sha256") for s in seeds}


class _Collect(logging.Handler):
    def __init__(self, into: list[str]):
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in self.into:
            self.into.append(message)


@contextmanager
def _warnings_logged(into: list[str]):
    """Also keep the warnings dnnrsa logs meanwhile (the loaders' on_problem="skip"
    findings: checksums, undecodable images, what was left out) for the report; they
    are logged as usual. Worker processes hand theirs back with their results."""
    handler = _Collect(into)
    logger.addHandler(handler)
    try:
        yield into
    finally:
        logger.removeHandler(handler)
