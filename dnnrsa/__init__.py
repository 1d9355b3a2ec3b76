"""dnnrsa: what does layer L of a deep net know, and does it look like the brain?

The verbs most scripts need are here; everything else lives in its subpackage
(`dnnrsa.datasets`, `dnnrsa.zoo`, ...).
"""

from . import datasets, decoding, rsa, zoo
from ._version import __version__
from .activations import Activations
from .decoding import DecodingResult, decode
from .extract import extract, layer_names
from .pipeline import reproduce
from .rsa import compare, rdm
from .stimuli import StimulusSet
from .zoo import load_model

__all__ = [
    "Activations",
    "DecodingResult",
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
    "zoo",
]
