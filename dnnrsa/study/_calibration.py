"""`calibration()`: how the synthetic test faces compare with KDEF, measured the same way
every time, so that a change of the face renderer can be judged by numbers (issue 10).

This is an instrument, not a fit: every measure has one fixed definition, every readout
its library default, every seed the caller's; nothing is tuned to meet a target.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from .. import datasets, zoo
from .._utils import check_seed_list, logger, resolve_device
from ..activations import Activations
from ..decoding import decode_activations, generalize, make_splits
from ..extract import extract
from ..stimuli import StimulusSet
from ._paper import PAPER_OWN_TASK, PAPER_RESULTS

__all__ = ["CALIBRATION_COLUMNS", "calibration"]

#: Columns of the table :func:`calibration` returns.
CALIBRATION_COLUMNS = ["measure", "value", "chance", "x_chance", "target", "passes", "n",
                       "kdef", "note"]

#: Readout pooling of the conv1 measure (the paper readout's avg_pool2d(8)).
_POOL = 8

#: Image size of each zoo preset's network: the size of the faces decides the preset.
_PRESET_SIZES = {zoo.FULL["arch"]["input_size"]: False, zoo.QUICK["arch"]["input_size"]: True}

#: Targets, as (text, test); a test takes (value, chance, measures so far) -> bool.
_TARGETS = {
    "untrained_conv1": ("3x-9x chance", lambda v, c, m: 3.0 <= v / c <= 9.0),
    "brightness": ("<= 2.5x chance", lambda v, c, m: v / c <= 2.5),
    "pixels_across_views": ("reference of the session measures", None),
    "pixels_across_sessions": (">= 2x pixels_across_views",
                               lambda v, c, m: v >= 2.0 * m["pixels_across_views"]),
    "pixels_across_views_and_sessions": (">= 0.7x pixels_across_views",
                                         lambda v, c, m: v >= 0.7 * m["pixels_across_views"]),
    "quick_expression_net": (">= 2.5x chance", lambda v, c, m: v / c >= 2.5),
    "quick_expression_net_faces": (">= 2.5x chance", lambda v, c, m: v / c >= 2.5),
}


def _check_seeds(seeds: Any) -> list[int]:
    return check_seed_list("seeds", seeds, count_ok=False)


def _check_stimuli(stimuli: Any) -> tuple[StimulusSet, bool]:
    """The faces and whether the quick preset's network takes them (32 px) or the full
    one (48 px); refused before any work when a measure could not be made on them."""
    if stimuli is None:
        stimuli = datasets.synthetic_faces()
    elif not isinstance(stimuli, StimulusSet):
        raise TypeError(f"Argument stimuli must be a dnnrsa.StimulusSet or None, got "
                        f"{type(stimuli).__name__}.")
    channels, height, width = stimuli.shape
    if channels != 1 or height != width or height not in _PRESET_SIZES:
        sizes = " or ".join(f"1 x {s} x {s}" for s in sorted(_PRESET_SIZES))
        raise ValueError(
            f"Argument stimuli holds images of {channels} x {height} x {width}; the zoo's "
            f"ccn2022 networks take {sizes} (full or quick preset). Render or load the faces "
            "at one of those sizes (e.g. synthetic_faces(size=48))."
        )
    stimuli.check_factor("identity", "stimuli")
    stimuli.check_factor("viewpoint", "stimuli")
    y = stimuli.labels("identity")
    if len(np.unique(y)) < 2:
        raise ValueError("Argument stimuli holds fewer than 2 identities; identity decoding "
                         "needs at least 2.")
    # The leave-one-viewpoint-out folds every measure shares: a person missing from the
    # training views of a fold is refused here, not after the first network.
    make_splits("viewpoint", stimuli.metadata, y)
    return stimuli, _PRESET_SIZES[height]


def _check_home(home: Any) -> Path | None:
    if home is None:
        return None
    if not isinstance(home, (str, os.PathLike)):
        raise TypeError(f"Argument home must be a folder path or None, got "
                        f"{type(home).__name__}.")
    path = Path(home).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"Argument home={str(path)!r} is a file; give a folder for the models "
                         "(or None for a temporary one).")
    return path


def _n_sessions(stimuli: StimulusSet) -> int:
    if "session" not in stimuli.factors:
        return 0
    return len(stimuli.classes("session"))


def calibration(
    stimuli: StimulusSet | None = None,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    device: Any = "auto",
    quick_expression: bool = True,
    home: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Measure how close a face set comes to KDEF on the properties the study leans on.

    Every readout of identity is ``decode_activations(..., readout="linear")`` (multinomial
    logistic regression on standardised features, scikit-learn defaults) or
    ``generalize`` with the same readout; "leave-one-viewpoint-out" is one fold per
    viewpoint, trained on the others and tested on it. The measures:

    ``untrained_conv1``
        For each seed in ``seeds``, the study's untrained network of that seed (made by
        ``dnnrsa.zoo.train_variant("untrained", seed)`` and loaded by name, as
        ``reproduce`` does; the full preset for 48 px faces, the quick one for 32 px),
        layer ``conv1``, linear readout on features average-pooled by 8, identity,
        leave-one-viewpoint-out over all sessions. Value: mean over seeds of the mean
        over folds; ``n`` = number of seeds. KDEF: the paper's 7.9 %.
    ``brightness``
        One feature per image, its mean pixel value; linear readout, identity,
        leave-one-viewpoint-out over all sessions. ``n`` = folds.
    ``pixels_across_views``
        Raw pixels (as ``reproduce``'s pixel control: every pixel, no pooling), linear
        readout, identity, leave-one-viewpoint-out within each session (trained and tested
        on the same session). Value: mean over sessions x held-out viewpoints; ``n`` = that
        number of fits. The reference of the two session measures.
    ``pixels_across_sessions``
        Pixels, identity; at each viewpoint, trained on one session and tested on the
        other at that same viewpoint. Value: mean over viewpoints and both directions
        (ordered session pairs). Needs two sessions or more.
    ``pixels_across_views_and_sessions``
        Pixels, identity; trained on the viewpoints other than v in session s, tested on
        viewpoint v of every other session. Value: mean over s, v and test sessions
        (``generalize(across="session", cv="viewpoint")``, off-diagonal; its diagonal is
        ``pixels_across_views``). Needs two sessions or more.
    ``quick_expression_net`` (with ``quick_expression``)
        The zoo's quick expression network of seed 0
        (``train_variant("expression", 0, quick=True)``), its own classifier scored by
        the zoo on the test split of ``synthetic_expressions``: held-out identities, but
        views drawn from the same yaw range as training (said in ``note``). Chance 1/7.
    ``quick_expression_net_faces`` (with ``quick_expression``)
        The same network's own classifier on the faces themselves, which holds out
        identities (no person of ``synthetic_faces`` is in ``synthetic_expressions``) and
        views (the test set's +-45 degrees, which training sees only in its minority of
        turned faces). Needs 32 px faces with an
        ``expression`` factor; with ``stimuli=None`` the default faces are rendered again
        at 32 px (the same people and pictures). KDEF: the paper's own-task figure of the
        (FER2013-trained, full) expression network, 53.4 %.

    A session measure that cannot be made (fewer than two sessions) has ``value`` NaN and
    ``passes`` missing, with the reason in ``note``; so does a faces row without faces it
    can score.

    Parameters
    ----------
    stimuli : StimulusSet, optional
        Faces of shape (n_images, 1, 48, 48) or (n_images, 1, 32, 32) with factors
        ``identity`` and ``viewpoint`` (every person in at least two viewpoints), and
        ``session`` for the session measures. Default: ``dnnrsa.datasets.synthetic_faces()``
        (70 identities x 7 expressions x viewpoints HL, S, HR x sessions A, B; 48 px).
    seeds : sequence of int, default (0, 1, 2)
        Seeds of the untrained networks; each one is measured, none is picked.
    device : {"auto", "cpu", "cuda", ...}, default "auto"
        Where the networks run (forward passes and the quick expression training).
    quick_expression : bool, default True
        Train (or load) the quick expression network and add its two rows.
    home : path, optional
        Models folder to train into and load from (the zoo's ``home``). Default: a
        temporary folder, removed at the end, so nothing is written or reused.

    Returns
    -------
    pandas.DataFrame
        One row per measure, columns :data:`CALIBRATION_COLUMNS`: ``measure``, ``value``
        (accuracy), ``chance`` (1 / number of classes), ``x_chance`` (value / chance),
        ``target`` (text), ``passes`` (nullable boolean), ``n`` (seeds, folds or fits
        averaged), ``kdef`` (the paper's figure as a fraction where one exists, else NaN)
        and ``note``.

    Examples
    --------
    >>> table = calibration(quick_expression=False)  # doctest: +SKIP
    >>> table.set_index("measure").loc["untrained_conv1", "x_chance"]  # doctest: +SKIP
    """
    seeds = _check_seeds(seeds)
    device = resolve_device(device)
    if not isinstance(quick_expression, (bool, np.bool_)):
        raise TypeError(f"Argument quick_expression must be True or False, got "
                        f"{quick_expression!r}.")
    home = _check_home(home)
    default_faces = stimuli is None
    stimuli, quick_net = _check_stimuli(stimuli)
    # Which faces the expression network is scored on, checked before anything is trained.
    expression_faces = _expression_faces(None if default_faces else stimuli) \
        if quick_expression else None
    logger.info("calibration: %s (%d images), %d untrained seeds, quick expression %s",
                stimuli.name, len(stimuli), len(seeds), quick_expression)

    rows = [_brightness(stimuli), *_pixel_measures(stimuli)]
    with tempfile.TemporaryDirectory(prefix="dnnrsa-calibration-") as tmp:
        models = Path(tmp) if home is None else home
        rows.append(_untrained_conv1(stimuli, seeds, quick=quick_net, home=models,
                                     device=device))
        if quick_expression:
            rows.extend(_quick_expression(expression_faces, home=models, device=device))
    return _table(rows)


def test_set_calibration(stimuli: StimulusSet, untrained_conv1: tuple | None = None
                         ) -> pd.DataFrame:
    """The calibration measures a study run can afford beside its sweep: brightness and the
    three pixel measures on its test faces, plus the untrained networks' conv1 identity
    figure when the run has one (``(accuracy, chance, n_seeds)`` read with the run's own
    readout, the readout of the paper's 7.9%). Same table as :func:`calibration`."""
    rows = [_brightness(stimuli), *_pixel_measures(stimuli)]
    if untrained_conv1 is not None:
        acc, chance, n = untrained_conv1
        rows.append(_row("untrained_conv1", acc, chance, n,
                         "untrained networks of this run, conv1, this run's readout",
                         kdef=_kdef_untrained_conv1()))
    return _table(rows)


def _kdef_untrained_conv1() -> float:
    """The paper's untrained conv1 identity accuracy on KDEF (7.9%), as a fraction."""
    return float(PAPER_RESULTS.set_index(["network", "target"]).loc[("untrained", "identity"),
                                                                     "conv1"]) / 100


def _row(measure, value, chance, n, note="", kdef=math.nan) -> dict:
    return dict(measure=measure, value=float(value), chance=float(chance), n=int(n),
                kdef=float(kdef), note=note)


def _table(rows: list[dict]) -> pd.DataFrame:
    """Rows in a fixed order, with x chance, the target text and whether it is met."""
    order = list(_TARGETS)
    rows = sorted(rows, key=lambda r: order.index(r["measure"]))
    values = {r["measure"]: r["value"] for r in rows}
    for r in rows:
        text, test = _TARGETS[r["measure"]]
        r["x_chance"] = r["value"] / r["chance"]
        r["target"] = text
        needed = [values.get("pixels_across_views", math.nan)] if "pixels_across_views" in text \
            else []
        if test is None or not np.isfinite([r["value"], *needed]).all():
            r["passes"] = pd.NA
        else:
            r["passes"] = bool(test(r["value"], r["chance"], values))
    table = pd.DataFrame(rows, columns=CALIBRATION_COLUMNS)
    table["passes"] = table["passes"].astype("boolean")
    return table


def _brightness(stimuli: StimulusSet) -> dict:
    mean = stimuli.images.reshape(len(stimuli), -1).mean(axis=1, dtype=np.float64)
    acts = Activations.from_arrays(mean[:, None], stimuli.metadata, layer="brightness",
                                   stimuli=stimuli.name)
    res = decode_activations(acts, target="identity", cv="viewpoint", readout="linear",
                             device="cpu")
    return _row("brightness", res.accuracy, res.chance, len(res.folds),
                "mean pixel value of each image, one feature")


def _pixels(stimuli: StimulusSet) -> Activations:
    return extract(nn.Identity(), stimuli, ["pixels"], device="cpu", progress=False)["pixels"]


def _pixel_measures(stimuli: StimulusSet) -> list[dict]:
    pix = _pixels(stimuli)
    n_sessions = _n_sessions(stimuli)
    if n_sessions < 2:
        why = ("no session factor" if n_sessions == 0 else
               f"one session ({stimuli.classes('session')[0]!r})")
        res = decode_activations(pix, target="identity", cv="viewpoint", readout="linear",
                                 device="cpu")
        missing = f"not measurable: the faces have {why}; two sessions are needed"
        return [
            _row("pixels_across_views", res.accuracy, res.chance, len(res.folds),
                 "all pixels, leave-one-viewpoint-out" + (f"; {why}" if n_sessions else "")),
            _row("pixels_across_sessions", math.nan, res.chance, 0, missing),
            _row("pixels_across_views_and_sessions", math.nan, res.chance, 0, missing),
        ]
    gen = generalize(pix, target="identity", across="session", cv="viewpoint",
                     readout="linear", device="cpu")
    t = gen.table
    same = t[t.train == t.test]
    other = t[t.train != t.test]
    views = pix.metadata["viewpoint"].to_numpy()
    across = []
    for view in stimuli.classes("viewpoint"):
        at_view = pix[np.flatnonzero(views == view)]
        res = decode_activations(at_view, target="identity", cv="session", readout="linear",
                                 device="cpu")
        across.extend(res.folds)
    return [
        _row("pixels_across_views", same.accuracy.mean(), gen.chance, len(same),
             "all pixels, leave-one-viewpoint-out within each session"),
        _row("pixels_across_sessions", np.mean(across), gen.chance, len(across),
             "all pixels, train one session, test another at the same viewpoint"),
        _row("pixels_across_views_and_sessions", other.accuracy.mean(), gen.chance, len(other),
             "all pixels, train other viewpoints of one session, test the held-out "
             "viewpoint of another session"),
    ]


def _untrained_conv1(stimuli, seeds, *, quick, home, device) -> dict:
    values, chance = [], None
    for seed in seeds:
        zoo.train_variant("untrained", seed, quick=quick, home=home, device=device,
                          progress=False)
        model = zoo.load_model("untrained", seed=seed, quick=quick, home=home, device=device)
        acts = extract(model, stimuli, ["conv1"], device=device, progress=False)["conv1"]
        res = decode_activations(acts, target="identity", cv="viewpoint", readout="linear",
                                 pool=_POOL, device="cpu", network="untrained",
                                 network_seed=seed)
        logger.info("calibration: untrained seed %d conv1 identity %.4f", seed, res.accuracy)
        values.append(res.accuracy)
        chance = res.chance
    per_seed = ", ".join(f"{v:.3f}" for v in values)
    kdef = _kdef_untrained_conv1()
    preset = "quick" if quick else "full"
    return _row("untrained_conv1", np.mean(values), chance, len(values),
                f"{preset} preset, linear readout pool {_POOL}, leave-one-viewpoint-out; "
                f"per seed {per_seed}", kdef=kdef)


def _expression_faces(stimuli: StimulusSet | None) -> StimulusSet | str:
    """The faces the quick expression network is scored on, or why there are none;
    ``None``: the default faces, rendered again at the quick network's size."""
    size = zoo.QUICK["arch"]["input_size"]
    if stimuli is None:
        return datasets.synthetic_faces(size=size)
    if stimuli.shape[1] != size or "expression" not in stimuli.factors:
        return f"not measurable: needs {size} px faces with an expression factor"
    known = {str(e) for e in datasets.EXPRESSIONS}
    unknown = sorted(set(stimuli.metadata["expression"].dropna().astype(str)) - known)
    if unknown:
        raise ValueError(
            f"Argument stimuli has expressions {unknown} that the expression network does "
            f"not know; it classifies {list(datasets.EXPRESSIONS)}. Drop those images or "
            "pass quick_expression=False."
        )
    return stimuli


def _quick_expression(faces: StimulusSet | str, *, home, device) -> list[dict]:
    """The quick expression network's own task: on the zoo's test split, and on
    ``faces`` (a StimulusSet, or the reason there is none)."""
    zoo.train_variant("expression", 0, quick=True, home=home, device=device, progress=False)
    model = zoo.load_model("expression", seed=0, quick=True, home=home, device=device)
    info = model.dnnrsa_info
    classes = list(info["classes"])
    chance = 1.0 / len(classes)
    test = info.get("test_accuracy")
    jitter = zoo.QUICK["data"]["expression"]["yaw_jitter"]
    rows = [_row("quick_expression_net", math.nan if test is None else test, chance, 1,
                 "zoo test split of synthetic_expressions: held-out identities, but views "
                 f"drawn as in training (mostly within +-{jitter:g} deg, a minority turned "
                 "up to +-60 deg), not held-out views")]
    own = PAPER_OWN_TASK[("expression", "expression")] / 100
    if isinstance(faces, str):
        rows.append(_row("quick_expression_net_faces", math.nan, chance, 0, faces, kdef=own))
        return rows
    y = faces.labels("expression", classes)
    acc = zoo.accuracy(model, faces.tensor(), _as_tensor(y), device=device)
    rows.append(_row("quick_expression_net_faces", acc, chance, 1,
                     "own classifier on the faces: held-out identities and viewpoints",
                     kdef=own))
    return rows


def _as_tensor(y: np.ndarray):
    import torch

    return torch.from_numpy(np.asarray(y, dtype=np.int64))
