"""
Your own network: a torchvision ResNet-18 through the same calls
================================================================

Nothing in dnnrsa is tied to the study's DenseNet. Any ``torch.nn.Module`` can be read
out: you pick layers by their module names (:func:`dnnrsa.layer_names` lists them),
:func:`dnnrsa.extract` hooks them, and :func:`dnnrsa.decode` and :func:`dnnrsa.rdm` work
on the result exactly as on a zoo network. Here the network is an untrained ResNet-18
(no weights are downloaded) and the stimuli are dnnrsa's synthetic faces.
"""

# %%
# The network and its layer names
# --------------------------------
# ``weights=None`` gives a randomly initialised ResNet-18; seeding torch first makes that
# initialisation, and so every number below, the same on every run. The names
# :func:`dnnrsa.layer_names` returns are those of ``model.named_modules()``, plus
# ``"pixels"`` for the images themselves. We keep the outputs of the four residual
# stages and of the global average pool.
import matplotlib.pyplot as plt
import numpy as np
import torch
import torchvision

import dnnrsa

torch.manual_seed(0)
resnet = torchvision.models.resnet18(weights=None)
names = dnnrsa.layer_names(resnet)
print(f"{len(names)} names, e.g. {names[:6]} ... {names[-3:]}")
layers = ["pixels", "layer1", "layer2", "layer3", "layer4", "avgpool"]
print("chosen:", layers)

# %%
# Preprocessing belongs to the stimuli
# ------------------------------------
# :func:`dnnrsa.extract` feeds the images of a :class:`dnnrsa.StimulusSet` to the network
# as they are, so the set must already have the shape the network takes. The synthetic
# faces (like KDEF through :func:`dnnrsa.datasets.kdef`) are grayscale, shape
# ``(n, 1, H, W)``; ResNet-18's first convolution wants three channels. Repeating the gray
# channel three times gives a set it accepts, with the same factor table. (For image files,
# :meth:`dnnrsa.StimulusSet.from_table` takes a ``transform`` that does this per image.)
faces = dnnrsa.datasets.synthetic_faces(n_identities=6, sessions=("A",), size=32)
rgb = dnnrsa.StimulusSet(np.repeat(faces.images, 3, axis=1), faces.metadata,
                         name="synthetic_faces_rgb")
print(rgb)

acts = dnnrsa.extract(resnet, rgb, layers=layers, device="cpu")
for name, a in acts.items():
    print(f"{name:>8}: shape {a.shape}, {a.X.shape[1]} features")

# %%
# Decoding identity on a held-out viewpoint
# -----------------------------------------
# The same call as for a zoo network: a linear readout of each layer, trained on two
# viewpoints and tested on the third (3 folds, one per viewpoint). Chance is one over the
# number of identities. On 32 px images ``layer4`` is already a 1 x 1 map, so global
# average pooling changes nothing and the two rows agree.
results = {name: dnnrsa.decode(a, target="identity", cv="viewpoint", readout="linear",
                               device="cpu")
           for name, a in acts.items()}
for name, res in results.items():
    folds = ", ".join(f"{h} {100 * s:.0f}" for h, s in zip(res.held_out, res.folds))
    print(f"{name:>8}: {100 * res.accuracy:5.1f}% (held out: {folds}; "
          f"chance {100 * res.chance:.1f}%)")
best = max(results, key=lambda n: results[n].accuracy)
print(f"in this run the best readout is {best!r}")

# %%
# An RDM of the pooled features
# -----------------------------
# :func:`dnnrsa.rdm` averages the patterns of each identity and gives back an
# ``rsatoolbox.rdm.RDMs``; :func:`dnnrsa.rsa.factor_rdms` gives the model RDM "same
# identity = 0, different = 1" for a comparison. With one pattern per identity every
# off-diagonal cell is "different", so we compare at the level of single faces
# (``conditions="image_id"``) with the identity model instead.
rdm = dnnrsa.rdm(acts["avgpool"], method="correlation", conditions="image_id")
model = dnnrsa.rsa.factor_rdms(rgb, conditions="image_id", factors=["identity"])
rho = dnnrsa.compare(model, rdm, method="spearman")[0, 0]
print(f"avgpool RDM vs the identity model RDM (126 x 126 faces): Spearman rho = {rho:.3f}")

# %%
# The figure: accuracy per layer and the avgpool RDM (faces sorted by identity,
# expression, viewpoint, as the factor table is).
fig, axes = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [1.3, 1]})
axes[0].bar(list(results), [100 * r.accuracy for r in results.values()], color="#7570b3")
axes[0].axhline(100 * results["pixels"].chance, ls="--", color="grey", label="chance")
axes[0].set_ylabel("held-out-viewpoint identity accuracy (%)")
axes[0].set_title("Untrained ResNet-18, 6 synthetic identities")
axes[0].legend()
dnnrsa.rsa.plot_rdm(rdm, ax=axes[1], title=f"avgpool, correlation distance (rho {rho:.2f})")
fig.tight_layout()

# %%
# Pointing it at the real data
# ----------------------------
# The network can be anything you can build in PyTorch, trained weights included (on a
# machine that has them: ``torchvision.models.resnet18(weights="IMAGENET1K_V1")`` downloads
# them once into torch's cache; dnnrsa itself never downloads). Networks trained on
# ImageNet expect its normalisation; since a :class:`~dnnrsa.StimulusSet` holds pixel values
# in [0, 1], put the normalisation in front of the network as a module, and the layer names
# gain its prefix (``net.layer4``). The faces of the study are KDEF, loaded from your copy
# at 224 px:
#
# .. code-block:: python
#
#     import torch, torchvision, numpy as np, dnnrsa
#
#     class ImageNetNorm(torch.nn.Module):
#         def forward(self, x):
#             mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
#             std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
#             return (x - mean) / std
#
#     resnet = torchvision.models.resnet18(weights="IMAGENET1K_V1")
#     net = torch.nn.Sequential()
#     net.add_module("norm", ImageNetNorm())
#     net.add_module("net", resnet)
#     kdef = dnnrsa.datasets.kdef("/data/kdef", size=224)    # `dnnrsa data check kdef` first
#     rgb = dnnrsa.StimulusSet(np.repeat(kdef.images, 3, axis=1), kdef.metadata)
#     acts = dnnrsa.extract(net, rgb, layers=["net.layer3", "net.layer4", "net.avgpool"],
#                           device="auto", cache_dir="~/.cache/dnnrsa/acts")
#     dnnrsa.decode(acts["net.avgpool"], target="identity", cv="viewpoint")
#
# With 980 KDEF faces at 224 px the early layers are large (``layer1``: 200,704 features);
# ``cache_dir=`` keeps them on disk, and a GPU (``device="auto"``) makes the forward
# passes and the paper readout fast.
plt.show()
