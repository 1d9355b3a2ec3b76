"""Voxel-wise encoding models: predict every voxel of a brain region from a network layer
with cross-validated ridge regression, and compare layers by how well they predict.

This stage works on `dnnrsa.Activations` only (layers and regions alike) and imports
nothing from the other analysis stages. Two ridge backends choose the penalty per voxel:
scikit-learn's ``RidgeCV`` (efficient leave-one-out) and himalaya's ``RidgeCV`` or, for layers
wider than the training rows, ``KernelRidgeCV`` with a linear kernel (explicit
inner splits, on CPU or GPU).

Examples
--------
Two layers, one region measured in three runs of twelve stimuli; the region's voxels are
a linear read-out of layer ``"b"``:

>>> import numpy as np, pandas as pd
>>> from dnnrsa import Activations
>>> from dnnrsa.encoding import encode
>>> rng = np.random.default_rng(0)
>>> stim = pd.DataFrame({"stimulus": np.arange(12)})
>>> layers = {name: Activations(rng.normal(size=(12, 6)), stim) for name in ("a", "b")}
>>> runs = pd.DataFrame({"run": np.repeat([1, 2, 3], 12), "stimulus": np.tile(range(12), 3)})
>>> Y = layers["b"].X[runs["stimulus"]] @ rng.normal(size=(6, 30))
>>> roi = Activations(Y + rng.normal(size=Y.shape), runs, {"region": "FFA"})
>>> res = encode(layers, roi, conditions="stimulus", cv="run", backend="sklearn")
>>> res.table.set_index("layer")["mean_r"].idxmax()
'b'
"""

from ._encode import encode
from ._result import EncodingResult
from ._ridge import DEFAULT_ALPHAS

__all__ = ["DEFAULT_ALPHAS", "EncodingResult", "encode"]
