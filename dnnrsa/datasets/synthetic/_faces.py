"""The three face sets: the KDEF-like studio set and the FER2013-like and CelebA-like
training sets. One private builder renders the faces of all three and wraps them with
their metadata; the public functions only say which people, expressions and nuisance
each set has."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..._metadata import categorical
from ..._utils import check_positive_int, logger
from ...stimuli import StimulusSet
from ._actions import _ACTIONS
from ._renderer import _chunk_for, _image_params, _render
from ._sampling import (
    _check_codes,
    _check_seed,
    _check_size,
    _check_wild,
    _free_nuisance,
    _kdef_people,
    _labels,
    _random_people,
    _stream_rng,
    _studio_nuisance,
)
from ._vocabulary import _SEXES, _STREAMS, _VIEW_ORDER, EXPRESSIONS, SESSIONS


def _face_set(
    name: str,
    people: pd.DataFrame,
    labels: Sequence[str],
    id_index: np.ndarray,
    expr_index: np.ndarray,
    nuisance: dict[str, np.ndarray],
    size: int,
    *,
    columns: Sequence[str],
    action_jitter: np.ndarray | None = None,
    extra: dict[str, object] | None = None,
) -> StimulusSet:
    """Render a face set and give it its metadata.

    Parameters
    ----------
    name : str
        Name of the set (and of the generator, in the log).
    people : DataFrame
        Identity parameters, one row per person (from :func:`_identity_tables`).
    labels : sequence of str
        Identity label of every row of ``people``; also the identity levels.
    id_index, expr_index : ndarray (N,) int
        Row of ``people`` and index into :data:`EXPRESSIONS` of every image.
    nuisance : dict of str -> ndarray (N,)
        The ``_NUISANCE`` columns of every image.
    size : int
        Image side in pixels.
    columns : sequence of str
        Metadata columns in their order, from ``identity``, ``sex``, ``expression``,
        ``yaw`` (which every face set can have) and the keys of ``extra``.
    action_jitter : ndarray (N, n_actions), optional
        Per-image factors on the action intensities.
    extra : dict, optional
        Further metadata columns of the set.

    Returns
    -------
    StimulusSet
    """
    params = _image_params(people, id_index, expr_index, nuisance, action_jitter)
    logger.debug("%s: rendering %d images of %dx%d", name, len(id_index), size, size)
    images = _render(params, size, _chunk_for(size))
    sex = np.asarray(_SEXES)[people["sex_code"].to_numpy()[id_index]]
    table = {
        "identity": categorical(np.asarray(labels)[id_index], labels),
        "sex": categorical(sex, _SEXES),
        "expression": categorical(np.asarray(EXPRESSIONS)[expr_index], EXPRESSIONS),
        "yaw": np.asarray(nuisance["yaw"]).astype(np.float64),
        **(extra or {}),
    }
    meta = pd.DataFrame({column: table[column] for column in columns})
    return StimulusSet(images, meta, name=name)


def _wild_set(
    name: str,
    people: pd.DataFrame,
    labels: Sequence[str],
    id_index: np.ndarray,
    expr_index: np.ndarray,
    rng: np.random.Generator,
    size: int,
    yaw_jitter: float,
    turned: float,
    columns: Sequence[str],
) -> StimulusSet:
    """A training set of pictures from the wild: after the caller's draws of who shows
    which expression, ``rng`` gives each image its own nuisance and action intensities."""
    n = len(id_index)
    nuisance = _free_nuisance(rng, n, yaw_jitter, turned)
    jitter = rng.uniform(0.8, 1.2, (n, len(_ACTIONS)))
    return _face_set(name, people, labels, id_index, expr_index, nuisance, size,
                     action_jitter=jitter, columns=columns)


def synthetic_faces(
    *,
    n_identities: int = 70,
    expressions: Sequence[str] = EXPRESSIONS,
    viewpoints: Sequence[str] = ("HL", "S", "HR"),
    sessions: Sequence[str] = SESSIONS,
    size: int = 48,
    seed: int = 0,
) -> StimulusSet:
    """The KDEF-like test set: one rendered face per identity x expression x viewpoint x
    session.

    Parameters
    ----------
    n_identities : int, default 70
        Number of people; half female (``"F01"``...), half male (``"M01"``...), one more
        woman when odd.
    expressions : sequence of str, default all of :data:`EXPRESSIONS`
        Expression codes (``"AF"``, ``"AN"``, ``"DI"``, ``"HA"``, ``"NE"``, ``"SA"``,
        ``"SU"``).
    viewpoints : sequence of str, default ``("HL", "S", "HR")``
        Viewpoint codes, keys of :data:`VIEWPOINTS` (``"FL"`` -90, ``"HL"`` -45,
        ``"S"`` 0, ``"HR"`` +45, ``"FR"`` +90 degrees of yaw).
    sessions : sequence of str, default ``("A", "B")``
        Photo sessions. A session is one studio set-up shared by everyone in it (light
        direction and intensity, ambient, background, noise level); position, scale and
        exposure change with every picture.
    size : int, default 48
        Image height and width in pixels (at least 16).
    seed : int, default 0
        Seed of the random streams. These people are drawn from the ``faces`` stream and
        are never the people of :func:`synthetic_expressions` or
        :func:`synthetic_identities` for any seed.

    Returns
    -------
    StimulusSet
        ``images`` of shape (n_identities * n_expressions * n_viewpoints * n_sessions,
        1, size, size), float32 in [0, 1]; rows ordered by identity (women first), then
        expression, viewpoint and session, each in its canonical order (whatever order
        the arguments list them in). ``metadata`` columns: ``identity``, ``sex``
        (``"female"``/``"male"``), ``expression``, ``viewpoint``, ``yaw`` (degrees),
        ``session`` and ``image_id`` (KDEF-style ``"AF01ANHL"``: session, sex, person,
        expression, viewpoint). Factor columns are unordered Categoricals that keep
        every level, whether asked for or not, as :func:`~dnnrsa.datasets.kdef` gives
        them: all of :data:`EXPRESSIONS`, the five viewpoints by yaw, both sessions,
        both sexes and the people of the set.

    Notes
    -----
    A person's face, sessions and every single picture have their own random stream,
    so a smaller request (fewer identities, expressions, viewpoints or sessions) returns
    exactly the matching images of a bigger one.

    Examples
    --------
    >>> stim = synthetic_faces(n_identities=2, expressions=("HA", "NE"), size=32)
    >>> stim.images.shape
    (24, 1, 32, 32)
    >>> stim.metadata.image_id.iloc[0]
    'AF01HAHL'
    """
    n_identities = check_positive_int("n_identities", n_identities)
    expressions = _check_codes("expressions", expressions, EXPRESSIONS)
    viewpoints = _check_codes("viewpoints", viewpoints, _VIEW_ORDER)
    sessions = _check_codes("sessions", sessions, SESSIONS)
    size = _check_size(size)
    seed = _check_seed(seed)

    people, ids = _kdef_people(seed, n_identities)
    cells = [
        (i, e, v, letter)
        for i in range(len(people))
        for e in expressions
        for v in viewpoints
        for letter in sessions
    ]
    names = [f"{'FM'[sex]}{k:02d}" for sex, k in people]
    extra = {
        "viewpoint": categorical([v for _, _, v, _ in cells], _VIEW_ORDER),
        "session": categorical([s for _, _, _, s in cells], SESSIONS),
        "image_id": [f"{s}{names[i]}{e}{v}" for i, e, v, s in cells],
    }
    return _face_set(
        "synthetic_faces",
        ids,
        names,
        np.array([i for i, _, _, _ in cells], dtype=np.int64),
        np.array([EXPRESSIONS.index(e) for _, e, _, _ in cells], dtype=np.int64),
        _studio_nuisance(seed, people, cells),
        size,
        columns=("identity", "sex", "expression", "viewpoint", "yaw", "session", "image_id"),
        extra=extra,
    )


def synthetic_expressions(
    *,
    n_images: int = 2800,
    n_identities: int = 400,
    split: str = "train",
    size: int = 48,
    seed: int = 0,
    yaw_jitter: float = 30.0,
    turned: float = 0.2,
) -> StimulusSet:
    """A FER2013-like training set: expression labels over many people and random views.

    Parameters
    ----------
    n_images : int, default 2800
        Number of images; the seven expressions are balanced (counts differ by at most
        one) and so are the people.
    n_identities : int, default 400
        Number of people the images are spread over.
    split : {"train", "test"}, default "train"
        The two splits draw their people from different random streams, so no person
        is in both (nor in :func:`synthetic_faces` or :func:`synthetic_identities`).
    size : int, default 48
        Image height and width in pixels (at least 16).
    seed : int, default 0
        Seed of the random streams.
    yaw_jitter : float, default 30.0
        Most faces are near-frontal, as in FER2013 and CelebA: their yaw is uniform in
        [-yaw_jitter, yaw_jitter] degrees (0 to 90).
    turned : float, default 0.2
        Fraction of the faces (0 to 1) that are turned further, as the minority of
        non-frontal faces in those sets: their yaw is uniform in [-60, 60] degrees (or in
        +-yaw_jitter where that is wider). 0 keeps every face within +-yaw_jitter.

    Returns
    -------
    StimulusSet
        ``images`` (n_images, 1, size, size) float32 in [0, 1]. ``metadata`` columns:
        ``expression`` (Categorical of all :data:`EXPRESSIONS`, in that order),
        ``identity`` (``"E0001"``... for the train split, ``"T0001"``... for the test
        split), ``sex`` and ``yaw`` (degrees); factors are unordered Categoricals that
        keep every level. Each image also has its own position (about +-1.5 pixels at
        48 x 48), scale (+-6 %), light direction and intensity, background grey, pixel
        noise and expression intensity (+-20 % per action).

    Examples
    --------
    >>> stim = synthetic_expressions(n_images=14, n_identities=5, size=32)
    >>> stim.metadata.expression.value_counts().tolist()
    [2, 2, 2, 2, 2, 2, 2]
    """
    n_images = check_positive_int("n_images", n_images)
    n_identities = check_positive_int("n_identities", n_identities)
    split, size, seed, yaw_jitter, turned = _check_wild(split, size, seed, yaw_jitter, turned)
    stream = _STREAMS["expressions_" + split]
    rng = _stream_rng(seed, stream, 1)
    expr_index = rng.permutation(np.arange(n_images) % len(EXPRESSIONS))
    id_index = rng.permutation(np.arange(n_images) % n_identities)
    return _wild_set(
        "synthetic_expressions",
        _random_people(seed, stream, n_identities),
        _labels("E" if split == "train" else "T", n_identities),
        id_index,
        expr_index,
        rng,
        size,
        yaw_jitter,
        turned,
        columns=("expression", "identity", "sex", "yaw"),
    )


def synthetic_identities(
    *,
    n_identities: int = 100,
    n_images_per_identity: int = 20,
    split: str = "train",
    size: int = 48,
    seed: int = 0,
    yaw_jitter: float = 30.0,
    turned: float = 0.2,
) -> StimulusSet:
    """A CelebA-like training set: identity labels, many pictures of each person.

    Parameters
    ----------
    n_identities : int, default 100
        Number of people (``"C0001"``...). They are the same people in both splits and
        never people of :func:`synthetic_faces` or :func:`synthetic_expressions`.
    n_images_per_identity : int, default 20
        Pictures of each person.
    split : {"train", "test"}, default "train"
        Selects an independent set of pictures of the same people (different random
        expression, yaw, position, scale, lighting, background and noise), for
        identity classification.
    size : int, default 48
        Image height and width in pixels (at least 16).
    seed : int, default 0
        Seed of the random streams.
    yaw_jitter : float, default 30.0
        Most faces are near-frontal, as in FER2013 and CelebA: their yaw is uniform in
        [-yaw_jitter, yaw_jitter] degrees (0 to 90).
    turned : float, default 0.2
        Fraction of the faces (0 to 1) that are turned further, as the minority of
        non-frontal faces in those sets: their yaw is uniform in [-60, 60] degrees (or in
        +-yaw_jitter where that is wider). 0 keeps every face within +-yaw_jitter.

    Returns
    -------
    StimulusSet
        ``images`` (n_identities * n_images_per_identity, 1, size, size) float32 in
        [0, 1], rows grouped by person. ``metadata`` columns: ``identity``, ``sex``,
        ``expression`` (uniformly random; all of :data:`EXPRESSIONS` are levels, in that
        order) and ``yaw`` (degrees); factors are unordered Categoricals that keep
        every level.

    Examples
    --------
    >>> stim = synthetic_identities(n_identities=3, n_images_per_identity=2, size=32)
    >>> stim.metadata.identity.tolist()
    ['C0001', 'C0001', 'C0002', 'C0002', 'C0003', 'C0003']
    """
    n_identities = check_positive_int("n_identities", n_identities)
    n_per = check_positive_int("n_images_per_identity", n_images_per_identity)
    split, size, seed, yaw_jitter, turned = _check_wild(split, size, seed, yaw_jitter, turned)
    stream = _STREAMS["identities"]
    rng = _stream_rng(seed, stream, 1, ("train", "test").index(split))
    id_index = np.repeat(np.arange(n_identities), n_per)
    expr_index = rng.integers(0, len(EXPRESSIONS), n_identities * n_per)
    return _wild_set(
        "synthetic_identities",
        _random_people(seed, stream, n_identities),
        _labels("C", n_identities),
        id_index,
        expr_index,
        rng,
        size,
        yaw_jitter,
        turned,
        columns=("identity", "sex", "expression", "yaw"),
    )
