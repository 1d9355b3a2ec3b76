"""
Identity while a network learns expression
==========================================

When does identity appear in a network trained on expression: from the first epoch, or
only once it has learnt its task? ``dnnrsa.reproduce(at_epochs=[...])`` reads out the
networks as they were after chosen epochs (snapshots kept while training) as well as
the final ones, with 95% intervals over seeds and a test against the untrained networks
at every epoch. Settings are small: 3 seeds of the quick preset (10 epochs), a linear
readout instead of the paper's, 252 test faces, identity only.
"""

# %%
# Run the sweep with kept epochs
# ------------------------------
# ``at_epochs=[1, 3, 5]`` keeps the networks after epochs 1, 3 and 5 (besides the final
# epoch 10). ``02_decoding/plot_identity_from_expression_net.py`` trains the same seeds
# with those snapshots, so after it nothing is trained again here; on an empty
# ``$DNNRSA_HOME`` the three seeds are trained first.
import tempfile
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pandas as pd

import dnnrsa

out = Path(tempfile.mkdtemp(prefix="dnnrsa-epochs-"))
faces = dnnrsa.datasets.synthetic_faces(n_identities=12, sessions=("A",), size=32)
results = dnnrsa.reproduce(networks=("expression", "untrained"), seeds=3, quick=True,
                           readout="linear", targets=("identity",),
                           stimuli=faces, at_epochs=[1, 3, 5], out=out, n_jobs=1,
                           progress=False)
print(results.groupby(["network", "epoch"], dropna=False).size().rename("rows").to_string())

# %%
# The trajectory, per layer
# -------------------------
# ``epochs.csv``: per network x epoch x layer, the mean over the 3 seeds, its 95% t
# interval and Welch's test against the untrained networks (epoch 0) at that layer.
# With 3 seeds per group the test can decide; with fewer it says so.
epochs = pd.read_csv(out / "epochs.csv")
print(epochs.columns.tolist())
print(epochs.to_string(index=False, float_format=lambda v: f"{v:.3g}"))

# %%
# The figure ``reproduce`` drew
# -----------------------------
# ``fig_epochs.png``: identity accuracy (held-out viewpoint) against training epoch,
# one line per layer, with 95% intervals over seeds; the untrained networks at epoch 0.
fig, ax = plt.subplots(figsize=(9, 4.5))
ax.imshow(mpimg.imread(out / "fig_epochs.png"))
ax.set_axis_off()
fig.tight_layout()

# %%
# Pointing it at the real data
# ----------------------------
# On the paper's data the networks train for 200 epochs; keep a handful of snapshots
# and read them out on KDEF, with 10 seeds and a GPU:
#
# .. code-block:: bash
#
#    export DNNRSA_DATA=/data                # after dnnrsa data check fer2013 / kdef
#    dnnrsa train expression --data paper --seed 0 1 2 3 4 5 6 7 8 9 --keep-epochs 1 5 20 50
#    dnnrsa reproduce --data paper --seeds 10 --at-epochs 1 5 20 50 --out out/epochs
#
# .. code-block:: python
#
#    dnnrsa.reproduce(data="paper", networks=("expression", "untrained"), seeds=10,
#                     at_epochs=[1, 5, 20, 50], device="cuda", out="out/epochs")
plt.show()
