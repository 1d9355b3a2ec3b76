"""Decoding with neuroscience cross-validation: readouts trained on frozen features and
tested on groups (viewpoints, sessions, runs) they never saw.

This stage works on `dnnrsa.Activations` only (network layers and brain regions alike); it
imports nothing from the zoo, the data sets or the study. ``dnnrsa.decode``, which also
accepts a network or a zoo name, resolves and extracts above it. `decode_grid` decodes
many layers x targets at once, training the paper readout's heads as one batched model.
"""

from ._cv import make_splits
from ._decode import DecodingResult, decode_activations, decode_grid
from ._generalize import GeneralizationResult, generalize
from ._readouts import READOUTS, PaperReadout, check_readout_options, linear_readout, make_readout

__all__ = [
    "READOUTS",
    "DecodingResult",
    "GeneralizationResult",
    "PaperReadout",
    "check_readout_options",
    "decode_activations",
    "decode_grid",
    "generalize",
    "linear_readout",
    "make_readout",
    "make_splits",
]

_MOVED = {
    "decode": "dnnrsa.decode",
    "default_stimuli": "dnnrsa.study.default_stimuli",
    "resolve_model": "dnnrsa.study.resolve_model",
}


def __getattr__(name):
    # These lived here in dnnrsa 0.1; they resolve zoo names and data sets, which this
    # stage no longer imports, so they moved up to dnnrsa.study (no import from here).
    if name in _MOVED:
        raise AttributeError(
            f"dnnrsa.decoding.{name} moved to {_MOVED[name]} (decoding works on Activations "
            "only; dnnrsa.decoding.decode_activations is its entry point)."
        )
    raise AttributeError(f"module 'dnnrsa.decoding' has no attribute {name!r}")
