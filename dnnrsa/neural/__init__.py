"""Brain data into `Activations`, through nilearn: one image per observation
(:func:`from_images`), or BOLD runs and their events estimated by a first-level GLM
(:func:`from_runs`). The result goes to the same verbs as a network layer::

    betas = from_images("betas.nii.gz", "events.tsv", mask="ffa.nii.gz")
    roi = from_runs(bolds, events, mask="ffa.nii.gz", t_r=2.0, factors="{identity}_{expression}")
    dnnrsa.decoding.decode_activations(roi, target="identity", cv="run", readout="linear")

Nothing is resampled and no data are cast: a mask on another grid, NaN or constant voxels
are errors that say how to fix them (``drop_invalid=True`` drops such voxels).
"""

from ._images import from_images
from ._runs import from_runs

__all__ = ["from_images", "from_runs"]
