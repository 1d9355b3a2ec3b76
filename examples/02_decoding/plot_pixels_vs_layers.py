"""
Why the viewpoint is held out: the pixel control
================================================

A readout that tests on pictures much like its training pictures measures how similar
the pictures are, not what a layer knows. Here the same linear readout of identity is
scored two ways on raw pixels and on an untrained network's layers: with random folds
(``cv=3``, stratified 3-fold, every viewpoint on both sides of each split) and with one
viewpoint held out (``cv="viewpoint"``, the study's scheme). You learn to choose the
cross-validation with ``cv=`` and why the pixel control belongs beside every layer.
"""

# %%
# Faces and features
# ------------------
# 12 people x 7 expressions x viewpoints HL, S, HR, one session (252 pictures, 32 px),
# and an untrained quick network (seed 0). ``extract`` reads every layer once; the
# ``"pixels"`` layer is the images themselves.
import matplotlib.pyplot as plt
import numpy as np
import torch

import dnnrsa

faces = dnnrsa.datasets.synthetic_faces(n_identities=12, sessions=("A",), size=32)
torch.manual_seed(0)
net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)  # untrained
acts = dnnrsa.extract(net, faces, layers=["pixels", "conv1", "dense3"], progress=False)
for name, a in acts.items():
    print(f"{name:>7}: {a.shape}")

# %%
# Two ways to cross-validate
# --------------------------
# ``cv=3`` shuffles the pictures into 3 folds stratified by identity (seeded, so the
# same folds every run): the test faces of a person have training pictures of the same
# person at the same viewpoint. ``cv="viewpoint"`` leaves one viewpoint out per fold:
# the readout must recognise a person from a side it never saw. Linear readout on every
# feature, average-pooled by 8 for the network layers (as the paper readout pools).
schemes = {"random 3-fold": 3, "held-out viewpoint": "viewpoint"}
results = {}
for scheme, cv in schemes.items():
    for name, a in acts.items():
        results[scheme, name] = dnnrsa.decode(a, target="identity", cv=cv, readout="linear",
                                              pool=None if name == "pixels" else 8)
chance = results["held-out viewpoint", "pixels"].chance
for (scheme, name), res in results.items():
    folds = ", ".join(f"{f}={100 * v:.0f}%" for f, v in zip(res.held_out, res.folds))
    print(f"{scheme:>18} {name:>7}: {100 * res.accuracy:5.1f}%  ({folds})")
print(f"chance: {100 * chance:.1f}%")
pix_random = results["random 3-fold", "pixels"].accuracy
pix_view = results["held-out viewpoint", "pixels"].accuracy
print(f"\nIn this run pixels drop from {100 * pix_random:.1f}% (random folds) to "
      f"{100 * pix_view:.1f}% (held-out viewpoint), {pix_random / chance:.1f}x and "
      f"{pix_view / chance:.1f}x chance.")

# %%
# The figure
# ----------
# One bar per feature set and scheme (the mean over the 3 folds; dots: single folds).
# Under random folds pixels look like an excellent face recogniser; across viewpoint
# they stand for how far identity survives a change of pose with no learning at all,
# the baseline a trained layer has to beat.
fig, ax = plt.subplots(figsize=(6, 4))
names = list(acts)
x = np.arange(len(names))
for shift, (scheme, color) in zip((-0.2, 0.2), zip(schemes, ("#a6cee3", "#1f78b4"))):
    ax.bar(x + shift, [100 * results[scheme, n].accuracy for n in names], width=0.4,
           color=color, label=scheme)
    for xi, n in zip(x, names):
        ax.scatter(np.full(len(results[scheme, n].folds), xi + shift),
                   100 * results[scheme, n].folds, color="k", s=8, zorder=3)
ax.axhline(100 * chance, ls="--", color="grey", label="chance")
ax.set_xticks(x, ["pixels", "untrained conv1", "untrained dense3"])
ax.set_ylabel("identity accuracy (%)")
ax.set_title("Same readout, two cross-validations (3 folds each)", fontsize=10)
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Pointing it at the real data
# ----------------------------
# On KDEF the same comparison needs only the faces; ``dnnrsa.decode`` accepts a zoo
# name, so a trained network of the paper's protocol is one argument away:
#
# .. code-block:: python
#
#    faces = dnnrsa.datasets.kdef("/data/kdef", size=48)   # dnnrsa data check kdef /data/kdef
#    for cv in (5, "viewpoint"):
#        print(cv, dnnrsa.decode(net, "pixels", target="identity", cv=cv,
#                                stimuli=faces, readout="linear").accuracy)
#    dnnrsa.decode("expression", "dense3", target="identity", cv="viewpoint",
#                  stimuli=faces, data="paper", device="cuda")  # the paper's readout
#
# ``cv="session"`` holds out KDEF's second photo session instead, and ``reproduce`` adds
# the pixel control (held-out viewpoint) to every run.
plt.show()
