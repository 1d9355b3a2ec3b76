"""Decoding with neuroscience cross-validation: readouts trained on frozen features and
tested on groups (viewpoints, sessions, runs) they never saw."""

from ._cv import make_splits
from ._decode import DecodingResult, decode, decode_activations, default_stimuli, resolve_model
from ._readouts import READOUTS, PaperReadout, linear_readout, make_readout

__all__ = [
    "READOUTS",
    "DecodingResult",
    "PaperReadout",
    "decode",
    "decode_activations",
    "default_stimuli",
    "linear_readout",
    "make_readout",
    "make_splits",
    "resolve_model",
]
