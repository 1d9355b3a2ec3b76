"""`from_runs()`: BOLD runs and their events into `Activations` of one region, estimated
by nilearn's first-level GLM (``FirstLevelModel``): one row per run and condition, or per
trial with least squares separate (LSS)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from .._utils import check_choice, logger
from ..activations import Activations, Residuals
from ._events import check_events, check_factors, factor_table, load_events
from ._inputs import (
    check_bool,
    check_real,
    check_same_grid,
    describe,
    invalid_columns,
    invalid_message,
    load_image,
    load_mask,
    mask_image,
    stem,
)

__all__ = ["from_runs"]

STATISTICS = ("effect_size", "z_score", "stat", "p_value", "effect_variance")
ESTIMATES = ("condition", "lss")
HRF_MODELS = ("glover", "spm", "glover + derivative", "glover + derivative + dispersion",
              "spm + derivative", "spm + derivative + dispersion", "fir")
DRIFT_MODELS = ("cosine", "polynomial")


def from_runs(
    bold: Any,
    events: Any,
    *,
    mask: Any,
    t_r: float,
    confounds: Any = None,
    hrf_model: str | Callable | None = "glover",
    drift_model: str | None = "cosine",
    high_pass: float | None = 0.01,
    smoothing_fwhm: float | None = None,
    signal_scaling: Any = 0,
    statistic: str = "effect_size",
    estimate: str = "condition",
    factors: str | pd.DataFrame | None = None,
    region: str | None = None,
    drop_invalid: bool = False,
) -> Activations:
    """Estimate the response of every voxel of a region to every condition (or trial) of
    BOLD runs, with nilearn's ``FirstLevelModel``, as `Activations`.

    Parameters
    ----------
    bold : list of 4-D images, or one 4-D image
        Paths or nibabel images, one per run (a single image is one run), each of shape
        (x, y, z, n_scans) on the grid of ``mask``.
    events : list of DataFrame or path, or one of them
        One events table per run: a DataFrame or a BIDS ``events.tsv`` (tab separated,
        ``n/a`` missing) with columns ``onset`` and ``duration`` (seconds from the first
        scan) and ``trial_type`` (the condition, a string).
    mask : path or nibabel image
        3-D 0/1 image of the region, same shape and affine as every run (nothing is
        resampled). The columns are its voxels in C order.
    t_r : float
        The repetition time in seconds.
    confounds : list of DataFrame or 2-D array, optional
        One table per run, one row per scan (motion parameters, ...); added to each run's
        design. Arrays get columns ``confound_0``, ``confound_1``, ...
    hrf_model, drift_model, high_pass, smoothing_fwhm, signal_scaling
        Passed to ``nilearn.glm.first_level.FirstLevelModel`` under the same names (see
        its documentation); it is built with ``mask_img=mask``, ``standardize=False`` and
        ``minimize_memory=False``, other options at nilearn's defaults (``noise_model``
        ``"ar1"``).
    statistic : {"effect_size", "z_score", "stat", "p_value", "effect_variance"}
        The ``output_type`` of ``FirstLevelModel.compute_contrast`` each row holds.
    estimate : {"condition", "lss"}
        ``"condition"``: one model per run, one row per run and trial_type, the statistic
        of that trial_type's regressor. ``"lss"`` (least squares separate, Mumford et al.
        2012): for every trial a model in which it is a regressor of its own and the other
        trials keep their trial_type regressors; one row per trial (one fit per trial).
    factors : str or DataFrame, optional
        Factor columns read from the trial types: a pattern such as
        ``"{identity}_{expression}"`` (each field a non-empty, shortest part; the whole
        trial_type must match), or a table with a ``trial_type`` column and factor
        columns (one row per trial_type of the events).
    region : str, optional
        The region's name in the provenance (and in the tables of ``compare_to_brain``,
        ``decode`` and ``encode``); default the mask file name without its extension, or
        ``"mask"`` for an in-memory image.
    drop_invalid : bool
        Voxels of the mask with NaN/Inf values, or constant in a run, are an error; with
        True they are dropped (from every run, and from the returned ``mask``), their
        number written to the provenance (``n_dropped``) and logged.

    Returns
    -------
    Activations
        ``X`` of shape (n_rows, n_voxels), float64. Metadata ``run`` (1-based, in the
        order of ``bold``), ``trial_type``, for ``"lss"`` also ``trial`` (0-based row of
        the trial in its run's events) and ``onset``, then the factor columns. ``mask``
        the voxels kept. ``residuals``: every run's residual time series stacked
        (n_scans_total, n_voxels) with ``dof`` = sum over runs of n_scans minus the rank
        of the design, from the condition models (also for ``"lss"``), for
        ``noise="residuals"`` of :func:`dnnrsa.rsa.rdm`. Provenance ``region`` (argument
        ``region``, else the mask file name), ``mask``, ``images``, the GLM options, ``statistic``, ``estimate``,
        ``n_runs``, ``n_voxels``, ``n_dropped``, ``source``.

    Examples
    --------
    >>> roi = from_runs(["run-1_bold.nii.gz", "run-2_bold.nii.gz"],  # doctest: +SKIP
    ...                 ["run-1_events.tsv", "run-2_events.tsv"], mask="ffa.nii.gz",
    ...                 t_r=2.0, factors="{identity}_{expression}")
    """
    import nibabel as nib

    # Everything is checked before the first volume is read or any model fitted.
    check_choice("statistic", statistic, STATISTICS)
    check_choice("estimate", estimate, ESTIMATES)
    t_r = check_real("t_r", t_r, minimum=0, strict=True,
                     hint="t_r is the repetition time in seconds, e.g. t_r=2.0.")
    glm = _check_glm_options(hrf_model, drift_model, high_pass, smoothing_fwhm, signal_scaling)
    drop_invalid = check_bool("drop_invalid", drop_invalid)
    if region is not None and not (isinstance(region, str) and region):
        raise TypeError(f"Argument region must be a non-empty str (the region's name), got "
                        f"{region!r}.")
    factors = check_factors(factors)

    runs = _load_runs(bold)
    mask_img, mask_label, inside = load_mask(mask, "mask")
    for r, (img, label) in enumerate(runs):
        check_same_grid(img, label, f"bold[{r}]", mask_img, mask_label, "mask")
    n_scans = [int(img.shape[3]) for img, _ in runs]
    tables, event_labels = load_events(events, len(runs))
    tables = [check_events(t, r + 1, lb, n, t_r)
              for r, (t, lb, n) in enumerate(zip(tables, event_labels, n_scans, strict=True))]
    confounds = _check_confounds(confounds, n_scans)
    trial_types = sorted({t for table in tables for t in table["trial_type"]})
    factor_rows = factor_table(factors, trial_types)

    inside, n_dropped = _check_voxels(runs, inside, drop_invalid)
    prov_glm = _provenance_of(glm)
    glm = dict(glm, t_r=t_r)
    glm_mask = mask_image(inside, mask_img.affine)
    rows, maps, resid, dof = [], [], [], 0
    # nilearn's AR(1) noise model runs one small SVD per bin of AR coefficients, and BLAS
    # threads cost more than they give on such matrices (6 runs x 190 scans x 2,000
    # voxels on 2 cores, plain nilearn: 6.9 s with 2 threads, 1.8 s with one, 11-62 s when
    # other processes share the cores). One limit around the whole loop, since setting
    # it costs milliseconds (threadpoolctl scans the loaded libraries).
    with threadpool_limits(limits=1, user_api="blas"):
        for r, ((img, _), table, conf) in enumerate(zip(runs, tables, confounds, strict=True)):
            model = _fit(img, table, conf, glm_mask, glm)
            design = model.design_matrices_[0]
            resid.append(_residuals(model))
            dof += design.shape[0] - int(np.linalg.matrix_rank(design.to_numpy()))
            if estimate == "condition":
                for tt in sorted(set(table["trial_type"])):
                    maps.append(_contrast(model, tt, statistic, inside))
                    rows.append({"run": r + 1, "trial_type": tt})
                continue
            single = _free_name("lss_trial", set(table["trial_type"]) | set(design.columns))
            # one fit per trial: read a run file once, not once per trial
            img = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine, img.header)
            for trial in range(len(table)):
                lss_events = table.copy()
                lss_events.loc[trial, "trial_type"] = single
                lss_model = _fit(img, lss_events, conf, glm_mask, glm)
                maps.append(_contrast(lss_model, single, statistic, inside))
                rows.append({"run": r + 1, "trial_type": table["trial_type"][trial],
                             "trial": trial, "onset": float(table["onset"][trial])})

    metadata = pd.DataFrame(rows)
    metadata["run"] = metadata["run"].astype(np.int64)
    if estimate == "lss":
        metadata["trial"] = metadata["trial"].astype(np.int64)
    if factor_rows is not None:
        metadata = metadata.merge(factor_rows, on="trial_type", how="left", sort=False)
    X = np.vstack(maps).astype(np.float64)
    labels = [lb for _, lb in runs]
    prov = dict(
        region=stem(mask_label) if region is None else region, mask=describe(mask_label),
        images="in-memory images" if any(lb is None for lb in labels) else labels,
        t_r=t_r, **prov_glm, statistic=statistic, estimate=estimate,
        n_runs=len(runs), n_voxels=int(inside.sum()), n_dropped=n_dropped,
        source="from_runs",
    )
    return Activations(X, metadata, prov, mask=glm_mask,
                       residuals=Residuals(np.vstack(resid), dof))


def _check_glm_options(hrf_model, drift_model, high_pass, smoothing_fwhm, signal_scaling):
    if not (hrf_model is None or callable(hrf_model)
            or (isinstance(hrf_model, list) and all(callable(h) for h in hrf_model))):
        check_choice("hrf_model", hrf_model, [*HRF_MODELS, None],
                     "A callable (or a list of them) works too, as in nilearn.")
    if drift_model is not None:
        check_choice("drift_model", drift_model, [*DRIFT_MODELS, None])
    high_pass = check_real("high_pass", high_pass, minimum=0, strict=True,
                           none_ok=drift_model != "cosine",
                           hint="It is the cutoff of the cosine drift in Hz, e.g. 0.01.")
    smoothing_fwhm = check_real("smoothing_fwhm", smoothing_fwhm, minimum=0, strict=True,
                                none_ok=True, hint="It is a full width at half maximum in mm.")
    ok = (isinstance(signal_scaling, (int, np.integer)) and signal_scaling in (0, 1)
          and signal_scaling is not True) or (
        isinstance(signal_scaling, (tuple, list)) and list(signal_scaling) == [0, 1])
    if not ok:
        raise ValueError(
            f"Unknown value {signal_scaling!r} for argument signal_scaling. Valid values are "
            "{0, 1, (0, 1), False} (nilearn's: scale by the mean over scans, voxels, both, "
            "or not at all)."
        )
    if isinstance(signal_scaling, list):
        signal_scaling = tuple(signal_scaling)
    return dict(hrf_model=hrf_model, drift_model=drift_model, high_pass=high_pass,
                smoothing_fwhm=smoothing_fwhm, signal_scaling=signal_scaling)


def _provenance_of(glm: dict) -> dict:
    """The GLM options as JSON values (a callable HRF by its name)."""
    out = dict(glm)
    hrf = glm["hrf_model"]
    if callable(hrf):
        out["hrf_model"] = getattr(hrf, "__name__", repr(hrf))
    elif isinstance(hrf, list):
        out["hrf_model"] = [getattr(h, "__name__", repr(h)) for h in hrf]
    if isinstance(glm["signal_scaling"], tuple):
        out["signal_scaling"] = list(glm["signal_scaling"])
    elif glm["signal_scaling"] is not False:
        out["signal_scaling"] = int(glm["signal_scaling"])
    return out


def _load_runs(bold):
    if isinstance(bold, (list, tuple)):
        if not bold:
            raise ValueError("Argument bold is an empty list; give one 4-D image per run.")
        runs = [load_image(b, f"bold[{i}]", ndim=4) for i, b in enumerate(bold)]
    else:
        runs = [load_image(bold, "bold", ndim=4)]
    for i, (img, label) in enumerate(runs):
        if img.shape[3] < 2:
            raise ValueError(f"Run {i + 1} ({describe(label)}) has {img.shape[3]} scan(s); a "
                             "GLM needs a time series.")
    return runs


def _check_confounds(confounds, n_scans: list[int]) -> list:
    n_runs = len(n_scans)
    if confounds is None:
        return [None] * n_runs
    if isinstance(confounds, (pd.DataFrame, np.ndarray)):
        if n_runs != 1:
            raise ValueError(f"Argument confounds is one table but bold has {n_runs} runs; "
                             "give a list with one table per run.")
        confounds = [confounds]
    if not isinstance(confounds, (list, tuple)):
        raise TypeError("Argument confounds must be None or a list with one DataFrame or 2-D "
                        f"array per run, got {type(confounds).__name__}.")
    if len(confounds) != n_runs:
        raise ValueError(f"Argument confounds has {len(confounds)} table(s) but bold has "
                         f"{n_runs} run(s); give one per run (None for no confounds at all).")
    out = []
    for r, (conf, n) in enumerate(zip(confounds, n_scans, strict=True)):
        where = f"confounds[{r}] (run {r + 1})"
        if isinstance(conf, np.ndarray):
            if conf.ndim != 2:
                raise ValueError(f"{where} must be 2-D (n_scans, n_confounds), got shape "
                                 f"{conf.shape}.")
            conf = pd.DataFrame(conf, columns=[f"confound_{j}" for j in range(conf.shape[1])])
        elif not isinstance(conf, pd.DataFrame):
            raise TypeError(f"{where} must be a DataFrame or a 2-D array, got "
                            f"{type(conf).__name__}.")
        if len(conf) != n:
            raise ValueError(f"{where} has {len(conf)} rows but the run has {n} scans; give "
                             "one row per scan.")
        values = conf.to_numpy()
        if values.dtype.kind not in "biuf" or not np.isfinite(values.astype(float)).all():
            bad = [str(c) for c in conf.columns
                   if conf[c].dtype.kind not in "biuf" or not np.isfinite(conf[c]).all()]
            raise ValueError(
                f"{where} must hold finite numbers; column(s) {bad[:5]} do not (n/a in the "
                "first rows of fMRIPrep's derivative columns, say). Fill them (e.g. with 0) "
                "or leave those columns out."
            )
        out.append(conf.reset_index(drop=True))
    return out


def _check_voxels(runs, inside: np.ndarray, drop_invalid: bool):
    """The mask without the voxels that are NaN/Inf or constant in any run (an error
    unless ``drop_invalid``), and how many were dropped."""
    coords = np.argwhere(inside)
    bad = np.zeros(len(coords), dtype=bool)
    for r, (img, label) in enumerate(runs):
        Y = np.asanyarray(img.dataobj)[inside].T  # (n_scans, n_voxels)
        nonfinite, constant = invalid_columns(Y)
        if (nonfinite | constant).any() and not drop_invalid:
            raise ValueError(invalid_message(nonfinite, constant, coords,
                                             f"run {r + 1} ({describe(label)}) inside the mask"))
        bad |= nonfinite | constant
    if not bad.any():
        return inside, 0
    if bad.all():
        raise ValueError("Every voxel of the mask is NaN/Inf or constant in some run; none is "
                         "left.")
    logger.info("from_runs: dropping %d of %d mask voxels (NaN/Inf or constant in a run).",
                int(bad.sum()), len(bad))
    kept = inside.copy()
    kept[tuple(coords[bad].T)] = False
    return kept, int(bad.sum())


def _fit(img, events: pd.DataFrame, confounds, mask_img, glm: dict):
    """One run's FirstLevelModel; ``glm`` holds t_r and the design options."""
    from nilearn.glm.first_level import FirstLevelModel

    model = FirstLevelModel(mask_img=mask_img, standardize=False, minimize_memory=False,
                            **glm)
    with warnings.catch_warnings():
        # nilearn >= 0.13 always says its masker was given a mask while asked to compute
        # one; it uses the given mask, which is what is wanted, so the note is noise.
        warnings.filterwarnings("ignore", message=".*Generation of a mask has been requested",
                                category=RuntimeWarning)
        model.fit(img, events=events, confounds=confounds)
    return model


def _contrast(model, column: str, statistic: str, inside: np.ndarray) -> np.ndarray:
    """``compute_contrast`` of one design column, as a vector over the mask's voxels; a
    vector (not the name) so that any trial_type text works, '-' or spaces included."""
    columns = list(model.design_matrices_[0].columns)
    weights = np.zeros(len(columns))
    weights[columns.index(column)] = 1.0
    return _masked(model.compute_contrast(weights, output_type=statistic), inside)


def _residuals(model) -> np.ndarray:
    """The run's residual time series (n_scans, n_voxels), in the order of the model's mask.

    The data (after nilearn's signal scaling) minus the design times each voxel's
    parameters. Not nilearn's ``residuals``: for the AR(1) noise model (its default) that
    is the data minus the *whitened* design times the parameters (nilearn 0.14
    ``RegressionResults.residuals``), neither the residuals nor the whitened residuals; on
    white noise of SD 0.23 it came out with SD 4.9. For ``noise_model="ols"`` both agree.
    """
    X = model.design_matrices_[0].to_numpy()
    labels = np.asarray(model.labels_[0])
    out = np.empty((X.shape[0], labels.shape[0]), dtype=np.float64)
    for label, result in model.results_[0].items():
        voxels = labels == label
        out[:, voxels] = result.Y - X @ result.theta
    return out


def _masked(img, inside: np.ndarray) -> np.ndarray:
    """The voxels of ``inside`` (C order, as NiftiMasker), last axis kept for 4-D."""
    return np.asanyarray(img.dataobj)[inside]


def _free_name(name: str, taken: set) -> str:
    while name in taken:
        name = "_" + name
    return name
