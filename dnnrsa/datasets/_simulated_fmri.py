"""A simulated fMRI subject with a known answer: a rapid event-related experiment in which
one region of a small box-shaped brain responds to the stimuli with patterns that a factor
or a network layer dictates, and the rest of the brain holds only baseline, drift and noise.

The responses are built with nilearn's own design matrix (Glover HRF), so that a
``FirstLevelModel`` with ``hrf_model="glover"`` and a cosine drift model with
``high_pass=0.01`` is the true model of the data, and its betas estimate
:attr:`SimulatedFMRI.amplitudes` without bias.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._metadata import check_factor_column, factor_codes
from .._nifti import box_mask, save_image, unmask
from .._utils import check_positive_float, check_positive_int, check_seed, logger
from ..activations import Activations
from ..stimuli import StimulusSet

__all__ = ["SimulatedFMRI", "simulated_fmri"]

VOXEL_MM = 3.0
#: Mean BOLD level; each voxel's baseline is drawn around it.
BASELINE = 100.0
BASELINE_SD = 2.0
#: Standard deviation (BOLD units) of the amplitude of each drift cosine in each voxel.
DRIFT_SD = 1.0
#: At most this many of the lowest cosines below ``HIGH_PASS`` make up the drift.
N_DRIFTS = 3
HIGH_PASS = 0.01
#: Seconds of scanning after the last onset, for the last response to come back down.
TAIL_S = 20.0
LABELS = {1: "region", 2: "noise"}


@dataclass(frozen=True, eq=False)
class SimulatedFMRI:
    """A simulated subject: BOLD runs, their events, the masks and the true amplitudes.

    Attributes
    ----------
    bold : list of nibabel.Nifti1Image
        One 4-D float32 image per run, shape (nx, ny, nz, n_scans).
    events : list of pandas.DataFrame
        One BIDS events table per run: ``onset``, ``duration`` (s) and ``trial_type``.
    mask : nibabel.Nifti1Image
        The brain: 3-D uint8, ``n_voxels`` set voxels.
    region_mask, noise_mask : nibabel.Nifti1Image
        3-D uint8: the responsive region and the rest of the brain (no signal).
    atlas : nibabel.Nifti1Image
        3-D int16: 1 in the region, 2 in the noise region, 0 outside the brain.
    labels : dict
        ``{1: "region", 2: "noise"}``, the names of the atlas values.
    t_r : float
        Repetition time in seconds.
    conditions : pandas.DataFrame of n_stimuli rows
        ``trial_type`` plus every factor column of the stimuli, in stimulus order.
    amplitudes : ndarray of shape (n_stimuli, n_voxels)
        The true response amplitude of every stimulus in every brain voxel (BOLD units),
        columns in C order of :attr:`mask` (what ``NiftiMasker(mask).transform`` gives);
        0 in the noise region.
    source : str
        What the region encodes.
    snr : float
        The requested signal-to-noise ratio.
    seed : int
    noise_sd : float
        Standard deviation of the white Gaussian noise (BOLD units) that gives ``snr``.
    """

    bold: list
    events: list
    mask: Any
    region_mask: Any
    noise_mask: Any
    atlas: Any
    labels: dict
    t_r: float
    conditions: pd.DataFrame
    amplitudes: np.ndarray
    source: str
    snr: float
    seed: int
    noise_sd: float

    def __repr__(self) -> str:
        n_scans = [img.shape[-1] for img in self.bold]
        return (
            f"SimulatedFMRI({len(self.conditions)} stimuli, {len(self.bold)} runs of "
            f"{n_scans} scans, {self.amplitudes.shape[1]} voxels, source: {self.source}, "
            f"snr={self.snr:g}, seed={self.seed})"
        )

    def save(self, folder: str | os.PathLike) -> dict[str, Any]:
        """Write the subject as BIDS-like files in ``folder`` (created if needed).

        Files: ``sub-01_task-faces_run-{k}_bold.nii.gz`` and
        ``sub-01_task-faces_run-{k}_events.tsv`` for k = 1..n_runs, ``mask.nii.gz``,
        ``atlas.nii.gz`` (values as :attr:`labels`) and ``conditions.tsv``. Each file is
        written under a temporary name first.

        Returns
        -------
        dict
            ``{"bold": [paths], "events": [paths], "mask": path, "atlas": path,
            "conditions": path}``.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Any] = {"bold": [], "events": []}
        for k, (img, events) in enumerate(zip(self.bold, self.events, strict=True), start=1):
            stem = f"sub-01_task-faces_run-{k}"
            paths["bold"].append(save_image(img, folder / f"{stem}_bold.nii.gz"))
            paths["events"].append(_write_tsv(events, folder / f"{stem}_events.tsv"))
        paths["mask"] = save_image(self.mask, folder / "mask.nii.gz")
        paths["atlas"] = save_image(self.atlas, folder / "atlas.nii.gz")
        paths["conditions"] = _write_tsv(self.conditions, folder / "conditions.tsv")
        return paths


def simulated_fmri(stimuli: StimulusSet | pd.DataFrame, *, source: str | Activations,
                   n_runs: int = 6, n_voxels: int = 2000, region_fraction: float = 0.5,
                   snr: float = 1.0, t_r: float = 2.0, soa: float = 4.0,
                   duration: float = 1.0, seed: int = 0) -> SimulatedFMRI:
    """Simulate one subject seeing ``stimuli`` in a rapid event-related fMRI experiment.

    The brain is a near-cubic box of 3 mm voxels (diagonal affine) whose first
    ``n_voxels`` voxels in C order form :attr:`~SimulatedFMRI.mask`. Its first
    ``round(region_fraction * n_voxels)`` voxels, a contiguous slab at the low end of the
    x axis, are the responsive region; the rest is the noise region (amplitude 0).

    Design: in every run each stimulus (one condition, named by its ``trial_type``)
    appears once, in a random order, for ``duration`` s. The first onset is at
    ``2 * t_r``; consecutive onsets are ``soa`` s plus a uniform jitter in ``[0, soa/2)``
    apart; a run has ``ceil((last_onset + 20) / t_r)`` scans, the first at time 0.

    BOLD of voxel v at scan t::

        baseline[v] + sum_i amplitudes[i, v] * x_i(t) + drift[t, v] + noise_sd * e[t, v]

    with ``x_i`` the regressor of stimulus i that nilearn's
    ``make_first_level_design_matrix(..., hrf_model="glover")`` gives (its events
    convolved with the Glover HRF), ``baseline[v] ~ N(100, 2**2)``, ``drift`` a random
    mix (amplitudes ~ N(0, 1) BOLD units) of the lowest three or fewer DCT-II cosines
    whose frequency is below 0.01 Hz (so nilearn's ``drift_model="cosine"`` with
    ``high_pass=0.01`` removes it exactly) and ``e`` white Gaussian noise, independent
    over scans and voxels.

    Region amplitudes come from ``source``, centred and scaled so that over stimuli x
    region voxels they have mean 0 and standard deviation 1 (BOLD units):

    - a factor name: every level of that factor gets its own random Gaussian voxel
      pattern, and a stimulus responds with the pattern of its level;
    - an `Activations` (a network layer, one row per stimulus): its features are
      centred per column (constant columns dropped), giving Z of shape
      (n_stimuli, n_features), and mixed into the region as ``Z @ W / sqrt(n_features)``
      with W an i.i.d. standard Gaussian (n_features, n_region) matrix. The columns of
      that product are Gaussian with covariance ``Z @ Z.T / n_features``; they are drawn
      from that covariance directly, which has the same distribution but never builds W,
      so a large layer costs no (n_features, n_region) matrix. The features are not
      scaled one by one: a random mix then keeps the layer's own geometry (the
      distances between stimuli, up to one overall scale), so the region's RDM is the
      layer's Euclidean RDM plus noise, and no other layer matches it better.

    Signal-to-noise ratio: ``snr = S / noise_sd``, where S is the mean over region voxels
    of each voxel's standard deviation over time (all scans of all runs together) of its
    noise-free, drift-free, baseline-free signal ``sum_i amplitudes[i, v] * x_i(t)``.
    ``noise_sd`` is set from S after the design is drawn.

    Parameters
    ----------
    stimuli : StimulusSet or pandas.DataFrame of n_stimuli rows
        The stimuli, or a table of their factors (one row per stimulus). Each is one
        condition; its ``trial_type`` is its ``image_id`` when that column is present,
        complete and unique, else ``f"stim{i:03d}"``.
    source : str or Activations
        What the region encodes: a factor (column) of the stimuli, or responses with one
        row per stimulus, in stimulus order (factor columns it shares with the stimuli
        must be equal).
    n_runs : int, default=6
    n_voxels : int, default=2000
        Voxels in the brain mask, at least 2.
    region_fraction : float in (0, 1), default=0.5
        Share of the brain voxels in the responsive region.
    snr : float, default=1.0
        Signal-to-noise ratio as defined above, finite and > 0.
    t_r : float, default=2.0
        Repetition time in seconds.
    soa : float, default=4.0
        Shortest stimulus-onset asynchrony in seconds.
    duration : float, default=1.0
        Event duration in seconds, at most ``soa``.
    seed : int, default=0
        Same seed, same data. Amplitudes, design, baselines and drift, and noise are
        drawn from separate streams of it.

    Returns
    -------
    SimulatedFMRI

    Examples
    --------
    >>> import pandas as pd
    >>> stim = pd.DataFrame({"identity": list("aabbcc"), "expression": list("xyxyxy")})
    >>> sub = simulated_fmri(stim, source="identity", n_runs=2, n_voxels=60)
    >>> len(sub.bold), sub.bold[0].shape[:3], sub.amplitudes.shape
    (2, (4, 4, 4), (6, 60))
    """
    n_runs = check_positive_int("n_runs", n_runs)
    n_voxels = check_positive_int("n_voxels", n_voxels, minimum=2)
    region_fraction = _check_fraction(region_fraction)
    snr = check_positive_float("snr", snr)
    t_r = check_positive_float("t_r", t_r)
    soa = check_positive_float("soa", soa)
    duration = check_positive_float("duration", duration)
    seed = check_seed("seed", seed)
    if duration > soa:
        raise ValueError(
            f"Argument duration ({duration:g} s) is longer than soa ({soa:g} s): events "
            "would overlap. Give duration <= soa."
        )
    n_region = round(region_fraction * n_voxels)
    if not 1 <= n_region <= n_voxels - 1:
        raise ValueError(
            f"Arguments region_fraction={region_fraction:g} and n_voxels={n_voxels} give "
            f"{n_region} region voxels; both the region and the noise region need at least "
            "one voxel. Raise n_voxels or move region_fraction away from 0 and 1."
        )
    meta = _stimulus_table(stimuli)
    factors = [c for c in meta.columns if c != "path"]
    trial_types = _trial_types(meta)
    features, description = _check_source(source, meta)

    amp_rng, design_rng, brain_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    region = _region_amplitudes(meta, source, features, n_region, amp_rng)
    amplitudes = np.zeros((len(meta), n_voxels))
    amplitudes[:, :n_region] = region

    events, regressors = [], []
    for _ in range(n_runs):
        run_events = _run_events(trial_types, design_rng, t_r=t_r, soa=soa, duration=duration)
        n_scans = math.ceil((run_events["onset"].iloc[-1] + TAIL_S) / t_r)
        events.append(run_events)
        regressors.append(_regressors(run_events, trial_types, n_scans, t_r))
    signal_sd = (np.concatenate(regressors) @ region).std(axis=0).mean()
    noise_sd = float(signal_sd / snr)

    mask, region_mask, noise_mask, atlas = _volume(n_voxels, n_region)
    baseline = BASELINE + BASELINE_SD * brain_rng.standard_normal(n_voxels)
    bold = []
    for design in regressors:
        drifts = _cosine_drifts(design.shape[0], t_r)
        data = design @ amplitudes + baseline
        data += drifts @ (DRIFT_SD * brain_rng.standard_normal((drifts.shape[1], n_voxels)))
        data += noise_sd * noise_rng.standard_normal(data.shape)
        bold.append(_bold_image(data.astype(np.float32), mask, t_r))

    conditions = pd.concat(
        [pd.DataFrame({"trial_type": trial_types}), meta[factors].reset_index(drop=True)],
        axis=1,
    )
    logger.info("simulated_fmri: %d stimuli x %d runs, %d voxels (%d in the region), "
                "source %s, snr %g, noise sd %.3g", len(meta), n_runs, n_voxels, n_region,
                description, snr, noise_sd)
    return SimulatedFMRI(
        bold=bold, events=events, mask=mask, region_mask=region_mask, noise_mask=noise_mask,
        atlas=atlas, labels=dict(LABELS), t_r=t_r, conditions=conditions,
        amplitudes=amplitudes, source=description, snr=snr, seed=seed, noise_sd=noise_sd,
    )


# -- checks ---------------------------------------------------------------------------------
def _check_fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Argument region_fraction must be a number between 0 and 1 (exclusive), got "
            f"{value!r}."
        )
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(
            f"Argument region_fraction must lie strictly between 0 and 1, got {value:g}; "
            "it is the share of brain voxels that respond, the rest being noise."
        )
    return value


def _stimulus_table(stimuli: Any) -> pd.DataFrame:
    if isinstance(stimuli, StimulusSet):
        meta = stimuli.metadata
    elif isinstance(stimuli, pd.DataFrame):
        meta = stimuli
    else:
        raise TypeError(
            "Argument stimuli must be a dnnrsa.StimulusSet or a pandas DataFrame of "
            f"stimulus factors (one row per stimulus), got {type(stimuli).__name__}."
        )
    if len(meta) == 0:
        raise ValueError("Argument stimuli is empty: there are no stimuli to present.")
    if "trial_type" in meta.columns:
        raise ValueError(
            "Argument stimuli already has a 'trial_type' column; simulated_fmri names the "
            "conditions itself (from 'image_id' when present). Rename or drop that column."
        )
    return meta.reset_index(drop=True)


def _trial_types(meta: pd.DataFrame) -> list[str]:
    if "image_id" in meta.columns:
        ids = meta["image_id"]
        names = ids.astype(str).tolist()
        if not ids.isna().any() and len(set(names)) == len(names):
            return names
        logger.info("simulated_fmri: column image_id is incomplete or repeats a value; "
                    "the conditions are named stim000, stim001, ... instead.")
    return [f"stim{i:03d}" for i in range(len(meta))]


def _check_source(source: Any, meta: pd.DataFrame) -> tuple[np.ndarray | None, str]:
    """The column-centred features of an Activations source (None for a factor) and a
    description of the source; every error before any work."""
    if isinstance(source, str):
        factors = meta[[c for c in meta.columns if c != "path"]]
        check_factor_column(factors, source, "source",
                            hint="Or give an Activations with one row per stimulus.")
        codes = factor_codes(meta[source], argument="source")  # a missing level is an error
        n_levels = int(codes.max()) + 1
        return None, f"factor {source!r} ({n_levels} levels)"
    if not isinstance(source, Activations):
        raise TypeError(
            "Argument source must be a factor name (str) or a dnnrsa.Activations with one "
            f"row per stimulus, got {type(source).__name__}."
        )
    if len(source) != len(meta):
        raise ValueError(
            f"Argument source has {len(source)} rows but there are {len(meta)} stimuli; give "
            "the responses to exactly these stimuli, one row per stimulus, in their order."
        )
    shared = [c for c in meta.columns if c != "path" and c in source.metadata.columns]
    for col in shared:
        ours = meta[col].astype(object).reset_index(drop=True)
        theirs = source.metadata[col].astype(object).reset_index(drop=True)
        if not ours.equals(theirs):
            same = (ours == theirs) | (ours.isna() & theirs.isna())
            first = int(np.flatnonzero(~same.to_numpy())[0]) if not same.all() else 0
            raise ValueError(
                f"Argument source does not match the stimuli: column {col!r} differs (first "
                f"at row {first}: {theirs.iloc[first]!r} in source, {ours.iloc[first]!r} in "
                "stimuli). Give the responses to these stimuli in the same order."
            )
    X = np.asarray(source.X, dtype=np.float64)
    bad = int((~np.isfinite(X)).sum())
    if bad:
        raise ValueError(
            f"Argument source contains {bad} NaN or Inf value(s) among its features; clean "
            "or drop those features first."
        )
    keep = np.ptp(X, axis=0) > 0
    if not keep.any():
        raise ValueError(
            f"Argument source has no feature that varies over the {len(meta)} stimuli; "
            "constant features carry no stimulus information."
        )
    X = X[:, keep]
    # Centred, not z-scored: scaling each feature to unit variance would hand the small
    # features of a layer as much weight as its large ones and change its geometry.
    Z = X - X.mean(axis=0)
    what = source.layer or source.provenance.get("region") or "features"
    model = source.provenance.get("model")
    where = f"{what} of {model}" if model else str(what)
    dropped = int((~keep).sum())
    return Z, (f"activations {where} ({Z.shape[1]} features"
               + (f", {dropped} constant dropped)" if dropped else ")"))


# -- pieces ---------------------------------------------------------------------------------
def _region_amplitudes(meta: pd.DataFrame, source: Any, features: np.ndarray | None,
                       n_region: int, rng: np.random.Generator) -> np.ndarray:
    """(n_stimuli, n_region) amplitudes, mean 0 and standard deviation 1 over all entries."""
    if features is None:
        codes = factor_codes(meta[source], argument="source")
        patterns = rng.standard_normal((int(codes.max()) + 1, n_region))
        amps = patterns[codes]
    else:
        gram = features @ features.T / features.shape[1]
        eigval, eigvec = np.linalg.eigh(gram)
        # rounding noise of a rank-deficient gram is no direction of the features
        eigval[eigval < 1e-12 * eigval.max()] = 0.0
        # the symmetric square root is unique and smooth in the features (eigenvectors
        # alone have arbitrary signs): the same layer, to rounding, gives the same region
        root = (eigvec * np.sqrt(eigval)) @ eigvec.T
        amps = root @ rng.standard_normal((len(meta), n_region))
    amps = amps - amps.mean()
    sd = amps.std()
    if not sd > 0:
        raise ValueError(
            f"The source {source if isinstance(source, str) else 'activations'} gives every "
            f"stimulus the same amplitude in all {n_region} region voxels, so there is no "
            "signal; use more region voxels or a source that varies over the stimuli."
        )
    return amps / sd


def _run_events(trial_types: list[str], rng: np.random.Generator, *, t_r: float, soa: float,
                duration: float) -> pd.DataFrame:
    """One run: every condition once, in a random order, jittered SOAs."""
    order = rng.permutation(len(trial_types))
    gaps = soa + rng.uniform(0.0, soa / 2, size=len(trial_types) - 1)
    onsets = 2 * t_r + np.concatenate([[0.0], np.cumsum(gaps)])
    return pd.DataFrame({
        "onset": onsets,
        "duration": np.full(len(onsets), duration),
        "trial_type": [trial_types[i] for i in order],
    })


def _frame_times(n_scans: int, t_r: float) -> np.ndarray:
    # exactly the frame times FirstLevelModel uses (slice_time_ref=0)
    return np.linspace(0.0, (n_scans - 1) * t_r, n_scans)


def _regressors(events: pd.DataFrame, trial_types: list[str], n_scans: int,
                t_r: float) -> np.ndarray:
    """(n_scans, n_stimuli) Glover-HRF regressors, columns in stimulus order: the columns
    ``make_first_level_design_matrix(..., hrf_model="glover")`` builds (nilearn's
    ``compute_regressor`` with its defaults), without its rank check of the whole design,
    which costs more than the regressors."""
    from nilearn.glm.first_level import compute_regressor

    frame_times = _frame_times(n_scans, t_r)
    rows = {name: i for i, name in enumerate(events["trial_type"])}
    onset, length = events["onset"].to_numpy(), events["duration"].to_numpy()
    out = np.empty((n_scans, len(trial_types)))
    for j, name in enumerate(trial_types):
        i = rows[name]
        condition = np.array([[onset[i]], [length[i]], [1.0]])
        column, _ = compute_regressor(condition, "glover", frame_times, con_id=name)
        out[:, j] = column[:, 0]
    return out


def _cosine_drifts(n_scans: int, t_r: float, high_pass: float = HIGH_PASS) -> np.ndarray:
    """(n_scans, k) DCT-II cosines, unit amplitude, k <= N_DRIFTS lowest frequencies
    strictly below ``high_pass``: the basis nilearn's cosine drift model spans."""
    order = np.arange(1, N_DRIFTS + 1)
    order = order[order / (2 * n_scans * t_r) < high_pass]
    scans = np.arange(n_scans)[:, None]
    return np.cos(np.pi / n_scans * (scans + 0.5) * order[None, :])


def _volume(n_voxels: int, n_region: int):
    """Brain, region and noise masks (uint8) and the atlas (int16) on a 3 mm box."""
    import nibabel as nib

    brain = np.asanyarray(box_mask(n_voxels).dataobj).astype(bool)
    affine = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    affine[:3, 3] = -VOXEL_MM * (np.array(brain.shape) - 1) / 2  # box centred on 0
    flat = np.flatnonzero(brain.ravel())
    region = np.zeros(brain.size, dtype=bool)
    region[flat[:n_region]] = True
    region = region.reshape(brain.shape)
    noise = brain & ~region
    atlas = np.zeros(brain.shape, dtype=np.int16)
    atlas[region] = 1
    atlas[noise] = 2

    def image(data):
        img = nib.Nifti1Image(data, affine)
        img.header.set_data_dtype(data.dtype)
        img.header.set_xyzt_units("mm")
        return img

    u8 = np.uint8
    return (image(brain.astype(u8)), image(region.astype(u8)), image(noise.astype(u8)),
            image(atlas))


def _bold_image(data: np.ndarray, mask, t_r: float):
    """(n_scans, n_voxels) back into a 4-D image with the repetition time in its header."""
    img = unmask(data, mask)
    img.header.set_zooms((VOXEL_MM, VOXEL_MM, VOXEL_MM, t_r))
    img.header.set_xyzt_units("mm", "sec")
    return img


def _write_tsv(frame: pd.DataFrame, path: Path) -> Path:
    tmp = path.with_name(path.name[: -len(".tsv")] + ".partial.tsv")
    try:
        frame.to_csv(tmp, sep="\t", index=False, na_rep="n/a")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
