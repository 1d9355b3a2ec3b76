"""dnnrsa: what does layer L of a deep net know, and does it look like the brain?

The verbs most scripts need are here; everything else lives in its subpackage
(`dnnrsa.datasets`, `dnnrsa.zoo`, `dnnrsa.decoding`, `dnnrsa.rsa`, `dnnrsa.study`).
Stages import only the stages below them: data -> zoo -> extract -> decoding / rsa ->
study -> cli.
"""

from . import datasets, decoding, rsa, study, zoo
from ._version import __version__
from .activations import Activations, Residuals
from .decoding import DecodingResult
from .extract import extract, layer_names
from .rsa import compare, rdm
from .stimuli import StimulusSet
from .study import decode, reproduce
from .zoo import load_model

__all__ = [
    "Activations",
    "DecodingResult",
    "Residuals",
    "StimulusSet",
    "__version__",
    "compare",
    "datasets",
    "decode",
    "decoding",
    "extract",
    "layer_names",
    "load_model",
    "rdm",
    "reproduce",
    "rsa",
    "study",
    "zoo",
]
