"""
Does a readout of identity carry across expressions?
====================================================

A readout of identity trained on happy faces: does it still recognise the same people
when they look surprised? ``dnnrsa.generalize`` trains one readout per level of a factor
(here the expression) and tests it on every level, giving a train x test matrix. Its
diagonal is identity within an expression; its off-diagonal, identity carried to another
expression. You learn to read such a matrix and to keep a viewpoint out of training while
doing it.
"""

# %%
# Faces and features
# ------------------
# 12 people x 7 expressions x viewpoints HL, S, HR, one session (252 pictures, 32 px).
# Two feature sets: the pixels, and ``dense3`` of an untrained quick network (seed 0),
# average-pooled by 8 in the readout (46 features).
import matplotlib.pyplot as plt
import numpy as np
import torch

import dnnrsa

faces = dnnrsa.datasets.synthetic_faces(n_identities=12, sessions=("A",), size=32)
torch.manual_seed(0)
net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)  # untrained
acts = dnnrsa.extract(net, faces, layers=["pixels", "dense3"], progress=False)

# %%
# Train on one expression, test on each
# -------------------------------------
# ``cv="viewpoint"``: for each viewpoint, the readout is trained on the other two
# viewpoints of expression *a* (24 pictures, 2 per person) and tested on that viewpoint
# of every expression *b*; a cell is the mean over the 3 held-out viewpoints. No picture
# (and no viewpoint) of a test set is ever in its training set, on or off the diagonal.
gens = {name: dnnrsa.generalize(a, target="identity", across="expression", cv="viewpoint",
                                readout="linear", pool=None if name == "pixels" else 8)
        for name, a in acts.items()}
chance = gens["pixels"].chance
for name, gen in gens.items():
    m = gen.matrix.to_numpy()
    diagonal = np.diag(m).mean()
    off = m[~np.eye(len(m), dtype=bool)].mean()
    print(f"{name}: train (rows) x test (columns) accuracy")
    print(gen.matrix.mul(100).round(0).to_string())
    print(f"  diagonal (same expression) {100 * diagonal:.1f}%, off-diagonal (another "
          f"expression) {100 * off:.1f}%, chance {100 * chance:.1f}%\n")

# %%
# The figure
# ----------
# One matrix per feature set (``GeneralizationResult.plot``; colour scale 0-1, chance
# marked on the colour bar). Rows: the expression the readout was trained on; columns:
# the expression it was tested on.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
for ax, (name, gen) in zip(axes, gens.items()):
    gen.plot(ax=ax)
    ax.set_title(f"identity from {name}, held-out viewpoint", fontsize=10)
fig.tight_layout()

# %%
# Pointing it at the real data
# ----------------------------
# The same call works on any layer of a trained network and on a brain region, since both
# are ``Activations``. On KDEF with a network of the paper's protocol:
#
# .. code-block:: python
#
#    faces = dnnrsa.datasets.kdef("/data/kdef", size=48)   # dnnrsa data check kdef /data/kdef
#    net = dnnrsa.load_model("expression", seed=0, data="paper")
#    acts = dnnrsa.extract(net, faces, layers=["dense3"], device="cuda")
#    dnnrsa.generalize(acts["dense3"], target="identity", across="expression",
#                      cv="viewpoint").plot()
#
# On fMRI, ``roi = dnnrsa.neural.from_runs(bold, events, mask=..., t_r=2.0,
# factors="{identity}_{expression}")`` gives a region to pass instead, with ``cv="run"``.
plt.show()
