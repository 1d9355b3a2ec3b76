"""The top-level verb ``dnnrsa.decode``: resolve a network (a module, a zoo name or a
checkpoint) and the stimuli, extract the layer, then decode the `Activations` with
:func:`dnnrsa.decoding.decode_activations`. It sits above decoding so that decoding never
imports the zoo or the data sets."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from .. import datasets, zoo
from .._metadata import check_factor_column
from .._utils import check_choice, check_positive_int, format_choices, logger
from ..activations import Activations
from ..decoding import DecodingResult, check_readout_options, decode_activations
from ..extract import _check_layers, extract
from ..stimuli import StimulusSet

__all__ = ["check_copies", "decode", "default_stimuli", "resolve_model"]

#: Problems of a copy shown in an error or a report; the rest are counted.
_SHOWN = 10


def check_copies(names, data_root, on_problem: str) -> list[dict]:
    """Check the local copies of the data sets ``names`` before a run reads them.

    Each copy ``DATA_ROOT/NAME`` is checked with :func:`dnnrsa.datasets.check_dataset`
    (``verify=False``: layout, file names and counts; the loaders compare checksums and
    decode the images as they load). A copy that is not there at all is an error whatever
    ``on_problem`` says; problems are one ValueError naming every data set that has some
    (``on_problem="raise"``) or one warning each (``"skip"``).

    Returns
    -------
    list of dict
        One per data set: ``name``, ``path``, ``ok``, ``problems`` and ``notes`` (lists of
        str), as the report's "Data" section lists them.
    """
    root = datasets.data_root(data_root)
    absent = [n for n in names if not (root / n).is_dir()]
    if absent:
        raise FileNotFoundError(
            f"The data root {root} has no {', '.join(f'{n}/' for n in absent)} folder: "
            f"data='paper' reads {', '.join(names)} there. See data_manifests/<name>.json "
            "for how to obtain each; on_problem='skip' skips parts of a copy, not a whole "
            "data set."
        )
    copies = []
    for name in names:
        rep = datasets.check_dataset(name, root / name, verify=False)
        copies.append(dict(name=name, path=rep.path, ok=rep.ok, problems=list(rep.problems),
                           notes=list(rep.notes)))
    bad = [c for c in copies if not c["ok"]]
    if bad and on_problem == "raise":
        raise ValueError(
            "data='paper': these local copies do not match their manifests:\n"
            + "\n".join(_describe(c) for c in bad)
            + "\nFix them (`dnnrsa data check NAME PATH` gives a full report), or pass "
            "on_problem='skip' (--on-problem skip) to run on the usable part; what is skipped "
            "is logged and written into the report."
        )
    for c in bad:
        logger.warning("data='paper', on_problem='skip': %s", _describe(c))
    return copies


def _describe(copy: dict) -> str:
    probs = copy["problems"]
    more = f"; ... and {len(probs) - _SHOWN} more" if len(probs) > _SHOWN else ""
    return (f"{copy['name']} at {copy['path']}: {len(probs)} problem(s): "
            + "; ".join(probs[:_SHOWN]) + more)


def default_stimuli(size: int = 48, *, data_root=None, kind: str | None = None,
                    on_problem: str = "raise") -> StimulusSet:
    """The test faces: the local KDEF copy when one is configured (``data_root`` or
    ``$DNNRSA_DATA`` holding ``kdef/``), else dnnrsa's synthetic faces. Says which in a log
    line.

    Parameters
    ----------
    size : int
        Image height and width.
    data_root : path, optional
        Folder holding ``kdef/`` (default ``$DNNRSA_DATA``).
    kind : {None, "kdef", "synthetic"}
        Force one of the two; ``"kdef"`` without a local copy is an error that says how to
        configure one.
    on_problem : {"raise", "skip"}
        The KDEF loader's option: one error naming every problem of the copy, or one
        warning and the usable images.
    """
    if kind in (None, "kdef"):
        root = data_root if data_root is not None else os.environ.get("DNNRSA_DATA")
        if root is not None and (os.path.isdir(os.path.join(root, "kdef")) or kind == "kdef"):
            logger.info("stimuli: KDEF from %s", os.path.join(root, "kdef"))
            return datasets.kdef(os.path.join(root, "kdef"), size=size, on_problem=on_problem)
        if kind == "kdef":
            raise FileNotFoundError(
                "stimuli='kdef' needs a local KDEF copy: pass data_root= or set DNNRSA_DATA to "
                "a folder holding kdef/. See data_manifests/kdef.json for how to obtain it."
            )
    logger.info("stimuli: synthetic faces (70 identities x 7 expressions x HL/S/HR x 2 "
                "sessions, %d px); no KDEF copy configured", size)
    return datasets.synthetic_faces(size=size)


def resolve_model(model: Any, seed: int = 0, *, data: str = "synthetic", quick: bool = False,
                  home=None, device: Any = "auto", on_problem: str = "raise") -> nn.Module:
    """An ``nn.Module`` from a module (returned as it is), a zoo variant name (loaded with
    :func:`dnnrsa.load_model`: ``seed``, ``data``, ``quick``, ``home``, and with
    ``data="paper"`` ``on_problem``) or a checkpoint path."""
    if isinstance(model, nn.Module):
        return model
    if isinstance(model, str) and model in zoo.VARIANTS:
        return zoo.load_model(model, seed=seed, data=data, quick=quick, home=home, device=device,
                              on_problem=on_problem if data == "paper" else "raise")
    if isinstance(model, (str, os.PathLike)):
        if os.path.exists(str(model)) or str(model).endswith((".safetensors", ".json")):
            return zoo.load(model, device=device)
        raise ValueError(
            f"Unknown value {model!r} for argument model. Valid values are a zoo variant "
            f"{format_choices(zoo.VARIANTS)}, a checkpoint path, a torch.nn.Module or "
            "dnnrsa.Activations."
        )
    raise TypeError(
        f"Argument model must be a torch.nn.Module, a zoo variant name, a checkpoint path or "
        f"dnnrsa.Activations, got {type(model).__name__}."
    )


def _resolve_stimuli(stimuli, model, data_root, on_problem) -> StimulusSet:
    if isinstance(stimuli, StimulusSet):
        return stimuli
    config = getattr(model, "config", None)
    size = config["input_size"] if isinstance(config, dict) and "input_size" in config else 48
    if stimuli is None:
        return default_stimuli(size, data_root=data_root, on_problem=on_problem)
    if isinstance(stimuli, str) and stimuli in ("kdef", "synthetic"):
        return default_stimuli(size, data_root=data_root, kind=stimuli, on_problem=on_problem)
    shown = f"a {type(stimuli).__name__}" if not isinstance(stimuli, str) else repr(stimuli)
    raise ValueError(
        f"Unknown value {shown} for argument stimuli. Valid values are None (KDEF if "
        "configured, else synthetic), {kdef, synthetic} or a dnnrsa.StimulusSet (wrap images "
        "and their factor table with dnnrsa.StimulusSet(images, metadata))."
    )


def _planned_factors(stimuli, data_root):
    """The factor table (no images) of the stimuli :func:`decode` will use, when it can be
    known without rendering or loading them: a StimulusSet's own table, or the synthetic
    faces' (one 16 px face, milliseconds). None for KDEF: its table comes from scanning
    the local copy, which the loader does anyway (and checks the copy while at it)."""
    if isinstance(stimuli, StimulusSet):
        return stimuli.metadata
    root = data_root if data_root is not None else os.environ.get("DNNRSA_DATA")
    kdef = root is not None and os.path.isdir(os.path.join(root, "kdef"))
    if stimuli == "synthetic" or (stimuli is None and not kdef):
        return datasets.synthetic_faces(n_identities=1, expressions=("NE",), viewpoints=("S",),
                                        sessions=("A",), size=16).metadata
    return None


def _check_factors_early(metadata, target, cv) -> None:
    """``target`` and a factor-name ``cv`` against the planned stimuli's factor table,
    with the messages the decoder itself would give after extraction."""
    if metadata is None:
        return
    check_factor_column(metadata, target, "target")
    if isinstance(cv, str):
        check_factor_column(metadata, cv, "cv",
                            hint="cv may also be an int (k-fold) or a scikit-learn splitter.")


def decode(
    model: Any,
    layer: str | None = None,
    *,
    target: str,
    cv: Any = "viewpoint",
    stimuli: Any = None,
    readout: Any = "paper",
    seed: int = 0,
    epochs: int = 100,
    pool: int | None = None,
    batch_size: int = 32,
    lr: float = 0.1,
    n_permutations: int = 0,
    groups: Any = None,
    device: Any = "auto",
    data: str = "synthetic",
    quick: bool = False,
    data_root: Any = None,
    home: Any = None,
    on_problem: str = "raise",
) -> DecodingResult:
    """Read ``target`` out of ``layer`` of ``model``, testing on groups the readout never saw.

    Parameters
    ----------
    model : torch.nn.Module, str, path or Activations
        A network; a zoo variant name (``"expression"``, ``"identity"``, ``"scene"``,
        ``"untrained"``, with ``seed=``, ``data=``, ``quick=``); a checkpoint path; or
        precomputed `Activations` (a layer or a brain region), in which case ``layer`` and
        ``stimuli`` are not needed.
    layer : str
        Layer name (``"conv1"``, ``"dense1"``, ``"dense2"``, ``"dense3"``, any module name)
        or ``"pixels"``, the pixel control (a linear readout on pixel values, same folds).
    target : str
        Factor to read out (``"identity"``, ``"expression"``, ...).
    cv : str, int or scikit-learn splitter
        ``"viewpoint"`` (default, as the paper: train on two viewpoints, test on the third)
        or any factor column, leaving one level out at a time; an int for stratified
        k-fold; or any splitter (with ``groups``).
    stimuli : StimulusSet, {"kdef", "synthetic"} or None
        None uses the configured KDEF copy if there is one, else the synthetic faces.
    readout : {"paper", "linear"} or scikit-learn classifier
        ``"paper"``: the study's head (BatchNorm2d -> ReLU -> avg_pool2d(8) -> Linear,
        SGD, batch 32, ``epochs`` epochs); ``"linear"``: multinomial logistic regression on
        standardised flattened (or ``pool``-ed) features; or any classifier instance.
    seed : int
        Network seed for zoo names, and seed of the readout and permutations.
    epochs, pool, batch_size, lr
        Options of the paper readout (``pool`` also pools features for other readouts).
    n_permutations : int
        Refit this many times with each fold's training labels permuted for a null
        distribution and a p-value.
    groups : array-like, optional
        Groups for a splitter object ``cv``.
    device : {"auto", "cpu", "cuda", ...}
        Where extraction and the paper readout run.
    data, quick, home
        Which zoo network a variant name means (see :func:`dnnrsa.load_model`).
    data_root : path, optional
        Folder of the real data sets, for the KDEF test faces.
    on_problem : {"raise", "skip"}
        For the KDEF test faces: one error naming every problem of the local copy
        (default), or one warning and the usable images. With ``data="paper"`` and a zoo
        name, "skip" also means the network trained on the usable part of incomplete
        copies (``reproduce(..., on_problem="skip")``). Needs ``stimuli="kdef"`` or None,
        or ``data="paper"``.

    Returns
    -------
    DecodingResult

    Examples
    --------
    >>> res = dnnrsa.decode("expression", "dense3", target="identity", seed=3)  # doctest: +SKIP
    >>> res.accuracy, res.chance  # doctest: +SKIP
    """
    # Everything that can be checked without the network or the images is checked first,
    # so a typo fails in milliseconds, not after rendering and extraction.
    device = check_readout_options(epochs=epochs, batch_size=batch_size, lr=lr, pool=pool,
                                   seed=seed, device=device)["device"]
    n_permutations = check_positive_int("n_permutations", n_permutations, 0)
    check_choice("on_problem", on_problem, ("raise", "skip"))
    if on_problem == "skip" and data != "paper" and not (
            stimuli is None or (isinstance(stimuli, str) and stimuli == "kdef")):
        shown = stimuli if isinstance(stimuli, str) else type(stimuli).__name__
        raise ValueError(
            f"Argument on_problem='skip' applies to the KDEF test faces (stimuli='kdef' or "
            f"None) or to networks of data='paper', not to stimuli={shown!r} with "
            f"data={data!r}. Leave on_problem='raise'."
        )
    options = dict(target=target, cv=cv, readout=readout, seed=seed, epochs=epochs, pool=pool,
                   batch_size=batch_size, lr=lr, n_permutations=n_permutations, groups=groups,
                   device=device)
    if isinstance(model, Activations):
        if layer is not None and model.layer is not None and layer != model.layer:
            raise ValueError(
                f"Argument layer={layer!r} but the Activations hold layer {model.layer!r}; "
                "omit layer when passing Activations."
            )
        return decode_activations(model, **options)
    if layer is None:
        raise ValueError(
            "Argument layer is required when model is a network: e.g. 'dense3', or "
            "'pixels' for the pixel control."
        )
    if isinstance(stimuli, (StimulusSet, str)) or stimuli is None:
        # Before the network is loaded and the faces rendered (10-20 s for the default set).
        _check_factors_early(_planned_factors(stimuli, data_root), target, cv)
    net = resolve_model(model, seed, data=data, quick=quick, home=home, device=device,
                        on_problem=on_problem)
    _check_layers(net, [layer])  # the layer name, before rendering or loading the faces
    stim = _resolve_stimuli(stimuli, net, data_root, on_problem)
    acts = extract(net, stim, [layer], device=device)[layer]
    info = getattr(net, "dnnrsa_info", None) or {}
    network = "pixels" if layer == "pixels" else (
        info.get("variant") or (model if isinstance(model, str) else type(net).__name__))
    net_seed = info.get("seed", seed if isinstance(model, str) else None)
    return decode_activations(acts, network=network, network_seed=net_seed, **options)
