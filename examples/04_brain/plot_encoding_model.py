"""
An encoding model of a region: which layer predicts its voxels?
===============================================================

Cross-validated ridge regression from each layer of a small untrained network to every
voxel of a simulated region that responds as a random mix of ``dense2``. You learn how
:func:`dnnrsa.encode` scores each voxel on faces it never saw during fitting (held-out
R^2 and r per voxel, per layer), and why encoding alone is weak evidence for one layer:
it asks whether a layer can be *reweighted* into the region, which several layers, and
even another random network, may manage (compare the RSA of the model-vs-brain example).
"""

# %%
# Layers and a simulated region
# -----------------------------
# 48 faces (4 identities x 4 expressions x 3 viewpoints), 4 runs, 200 region voxels.
import matplotlib.pyplot as plt
import torch

import dnnrsa

faces = dnnrsa.datasets.synthetic_faces(n_identities=4, expressions=("AN", "HA", "NE", "SA"),
                                        sessions=("A",), size=32)
torch.manual_seed(0)
net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)  # untrained
LAYERS = ["conv1", "dense1", "dense2", "dense3"]
layers = dnnrsa.extract(net, faces, layers=LAYERS)
sim = dnnrsa.datasets.simulated_fmri(faces, source=layers["dense2"], n_runs=4, n_voxels=400,
                                     snr=1.0, seed=0)
roi = dnnrsa.neural.from_runs(sim.bold, sim.events, mask=sim.region_mask, t_r=sim.t_r,
                              factors=sim.conditions, region="region")
# The control: dense2 of a second random network, which the region never saw.
torch.manual_seed(1)
other = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)
layers["dense2, other net"] = dnnrsa.extract(other, faces, layers=["dense2"])["dense2"]
LAYERS.append("dense2, other net")
print(roi)

# %%
# Encoding, holding out faces
# ---------------------------
# ``conditions="image_id"`` gives every brain row the features of its face; the default
# ``cv="conditions"`` holds out groups of faces in every run at once (5 folds), so a
# layer is scored on faces it was never fitted to. Ridge penalties are chosen per voxel
# by inner cross-validation. (``n_permutations=`` adds a null, but refits every layer
# once per permutation: about 3 s per layer and permutation here, so it is left out.)
enc = dnnrsa.encode(layers, roi, conditions="image_id", seed=0)
print(enc.table[["layer", "mean_r", "median_r", "mean_r2", "n_voxels", "n_folds"]]
      .round(3).to_string(index=False))
print("chance: r = 0 and R^2 <= 0 for features unrelated to the region")
by_layer = enc.table.set_index("layer")
best = by_layer["mean_r2"].idxmax()
print(f"In this run {best!r} has the highest mean held-out R^2 (the simulation used 'dense2'); "
      f"the other network's dense2 reaches {by_layer.loc['dense2, other net', 'mean_r2']:.3f} "
      f"against {by_layer.loc['dense2', 'mean_r2']:.3f} for the true layer.")

# %%
# Per-voxel held-out R^2
# ----------------------
# Left: each layer's distribution of per-voxel R^2 on held-out faces (mean over the 5
# folds); right: the mean r per layer, as :meth:`EncodingResult.plot` draws it.
r2 = [enc.voxels[next(k for k in enc.voxels if k[2] == layer)]["r2"].dropna().to_numpy()
      for layer in LAYERS]
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8))
ax0.boxplot(r2, showfliers=False)
ax0.set_xticks(range(1, len(LAYERS) + 1), [name.replace(", ", "\n") for name in LAYERS])
ax0.axhline(0, ls="--", color="grey", lw=0.8)
ax0.set_ylabel("held-out R^2 per voxel")
ax0.set_title(f"{r2[0].size} voxels, 5 folds of held-out faces")
enc.plot(ax=ax1)
ax1.set_title("mean r over voxels")
fig.tight_layout()

# %%
# Pointing it at the real data
# ----------------------------
# A region from fMRIPrep outputs (see the decoding example for the BIDS paths and an
# atlas ROI through nilearn), KDEF faces and a trained network; per-voxel maps go back to
# NIfTI on the region's grid, to view with nilearn:
#
# .. code-block:: python
#
#     roi = dnnrsa.neural.from_runs(bold, events, mask=ffa, t_r=2.0,
#                                   factors="{identity}_{expression}", region="FFA")
#     faces = dnnrsa.datasets.kdef("/data/kdef")       # dnnrsa data check kdef /data/kdef
#     net = dnnrsa.load_model("expression", seed=0)    # dnnrsa train expression (GPU)
#     layers = dnnrsa.extract(net, faces, layers=["conv1", "dense1", "dense2", "dense3"])
#     enc = dnnrsa.encode(layers, roi, conditions=("identity", "expression"),
#                         n_permutations=1000, device="auto")   # himalaya on the GPU
#     enc.to_nifti("dense3_r2.nii.gz", layer="dense3", score="r2")
#
# ``conditions`` must be columns of both tables: here the identity x expression of a
# trial type, whose features are the mean over the faces of that condition.
plt.show()
