"""dnnrsa: what does layer L of a deep net know, and does it look like the brain?

The verbs most scripts need are here; everything else lives in its subpackage
(`dnnrsa.datasets`, `dnnrsa.zoo`, `dnnrsa.decoding`, `dnnrsa.rsa`, `dnnrsa.neural`,
`dnnrsa.encoding`, `dnnrsa.study`). Stages import only the stages below them:
data -> zoo -> extract -> decoding / rsa / neural / encoding -> study -> cli.
"""

from . import datasets, decoding, encoding, neural, rsa, study, zoo
from ._version import __version__
from .activations import Activations, Residuals
from .decoding import DecodingResult, generalize
from .encoding import encode
from .extract import extract, layer_names
from .rsa import compare, compare_to_brain, rdm
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
    "compare_to_brain",
    "datasets",
    "decode",
    "decoding",
    "encode",
    "encoding",
    "extract",
    "generalize",
    "layer_names",
    "load_model",
    "neural",
    "rdm",
    "reproduce",
    "rsa",
    "study",
    "zoo",
]
