"""Representational similarity analysis of network layers and brain data.

Compute RDMs from activations (with noise precisions estimated from the condition
means or, for brain data, from the residuals of the first-level GLM), build categorical
model RDMs from the stimulus factors, compare RDMs, draw inferences (noise ceilings,
bootstrap, permutation tests, network seeds as subjects, layer-by-layer similarity), and
compare every layer of every network seed with every brain region in one table
(:func:`compare_to_brain`, drawn by :func:`plot_brain_comparison`); all values follow
rsatoolbox 0.3.2, which this package builds on (results are ``rsatoolbox.rdm.RDMs``
objects).

>>> from dnnrsa.rsa import rdm, factor_rdms, compare               # doctest: +SKIP
>>> data = rdm(acts, method="crossnobis", conditions=("identity", "expression"),
...            cv="viewpoint")                                       # doctest: +SKIP
>>> models = factor_rdms(acts, conditions=("identity", "expression"))  # doctest: +SKIP
>>> compare(models, data, method="tau-a")                            # doctest: +SKIP
>>> table = compare_to_brain({"conv1": c1, "conv5": c5}, {"FFA": subjects},
...                          conditions="identity", rdm_method="crossnobis", cv="run",
...                          noise="residuals")                      # doctest: +SKIP
>>> fig = plot_brain_comparison(table)                               # doctest: +SKIP
"""

from ._brain import MODEL_RDM_METHODS, compare_to_brain
from ._brain_plot import plot_brain_comparison
from ._compare import COMPARE_METHODS, compare
from ._factors import DEFAULT_FACTORS, factor_rdms
from ._inference import (
    bootstrap,
    evaluate,
    layer_similarity,
    noise_ceiling,
    permutation_test,
    seeds_as_subjects,
)
from ._noise import NOISE_ESTIMATES
from ._plot import plot_mds, plot_model_comparison, plot_rdm
from ._rdm import METHODS, rdm

__all__ = [
    "rdm",
    "compare",
    "factor_rdms",
    "evaluate",
    "noise_ceiling",
    "bootstrap",
    "permutation_test",
    "seeds_as_subjects",
    "layer_similarity",
    "compare_to_brain",
    "plot_rdm",
    "plot_mds",
    "plot_model_comparison",
    "plot_brain_comparison",
    "METHODS",
    "COMPARE_METHODS",
    "NOISE_ESTIMATES",
    "MODEL_RDM_METHODS",
    "DEFAULT_FACTORS",
]
