"""
A layer's RDM against factor models: identity, expression, sex
==============================================================

One layer, one RDM over identity x expression conditions, and three categorical model
RDMs built from the stimulus factors. You learn how to compute a cross-validated RDM of a
layer, which factor it reflects (Kendall's tau-a with a bootstrap interval over conditions
and a condition-label permutation test), and how to look at its conditions in two
dimensions with MDS.
"""

# %%
# Faces and a network
# -------------------
# Six synthetic identities x four expressions x three viewpoints (72 images) and a small
# untrained CCN-2022 DenseNet. An untrained network is the baseline any trained one has
# to beat; what it shows here comes from the pixels and its random filters alone.
import matplotlib.pyplot as plt
import numpy as np
import torch

import dnnrsa

faces = dnnrsa.datasets.synthetic_faces(n_identities=6, expressions=("AN", "HA", "NE", "SA"),
                                        sessions=("A",), size=32)
torch.manual_seed(0)
net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)  # untrained
acts = dnnrsa.extract(net, faces, layers=["dense3"])["dense3"]
print(acts)

# %%
# The layer's RDM
# ---------------
# Conditions are identity x expression (24 of them), each the mean over its three
# viewpoints. Crossnobis distances are cross-validated over viewpoints: a pair of
# conditions that the layer does not tell apart gets a distance near 0 on average, not a
# positive bias, and the noise is normalised with a Ledoit-Wolf shrinkage estimate from
# the residuals (``"shrinkage_diag"`` is refused: many ReLU units of this layer never
# respond, so their residual variance is 0).
layer_rdm = dnnrsa.rdm(acts, method="crossnobis", conditions=("identity", "expression"),
                       cv="viewpoint", noise="shrinkage")
d = layer_rdm.get_vectors()[0]
print(f"{layer_rdm.n_cond} conditions, {d.size} pairs; distances from {d.min():.3f} "
      f"to {d.max():.3f} (median {np.median(d):.3f})")

# %%
# Factor models
# -------------
# ``factor_rdms`` gives one 0/1 RDM per factor over the same conditions, in the same
# order: 0 for two conditions at the same level, 1 otherwise. Viewpoint cannot be a model
# here, since every condition averages over the viewpoints.
models = dnnrsa.rsa.factor_rdms(acts, conditions=("identity", "expression"))
print("models:", models.rdm_descriptors["name"])

# %%
# Comparing, with inference
# -------------------------
# Kendall's tau-a suits categorical models (many tied distances). There is one data RDM,
# so the bootstrap resamples conditions (a new set of faces), and the permutation test
# relabels the model's conditions. The same seeds give the same numbers on every run.
tau = dnnrsa.compare(models, layer_rdm, method="tau-a")[:, 0]
boot = dnnrsa.rsa.bootstrap(models, layer_rdm, method="tau-a", over="conditions",
                            n_boot=300, seed=0)
perms = {name: dnnrsa.rsa.permutation_test(models.subset("name", name), layer_rdm,
                                           method="tau-a", n_permutations=300, seed=0)
         for name in models.rdm_descriptors["name"]}
for (name, t), (_, row) in zip(zip(models.rdm_descriptors["name"], tau), boot.iterrows(),
                                strict=True):
    p = perms[name]
    print(f"{name:>10}: tau-a {t:+.3f}  95% CI [{row.ci_low:+.3f}, {row.ci_high:+.3f}] "
          f"(bootstrap over conditions, {row.n_boot} samples)  permutation p = "
          f"{p.p_value.iloc[0]:.3f} (null mean {p.null_mean.iloc[0]:+.3f}, "
          f"{p.n_permutations.iloc[0]} permutations)")
order = np.argsort(-tau)
best, second = (models.rdm_descriptors["name"][k] for k in order[:2])
overlap = boot.ci_low.iloc[order[0]] <= boot.ci_high.iloc[order[1]]
print(f"In this run {best!r} has the highest tau-a, then {second!r}; their 95% intervals "
      f"{'overlap, so the data do not separate them' if overlap else 'do not overlap'}.")

# %%
# MDS of the conditions
# ---------------------
# ``plot_mds`` embeds the RDM in two dimensions (metric MDS, seeded), coloured by a
# factor; ``plot_rdm`` draws the matrix with bands for the factor levels, and
# ``plot_model_comparison`` the bootstrap estimates with their standard errors.
fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
dnnrsa.rsa.plot_rdm(layer_rdm, ax=axes[0], factors=["identity", "expression"],
                    title="dense3, crossnobis over viewpoints")
dnnrsa.rsa.plot_mds(layer_rdm, color_by=best, ax=axes[1], title=f"MDS, coloured by {best}")
dnnrsa.rsa.plot_model_comparison(boot, ax=axes[2], title="factor models vs dense3 (tau-a)")
fig.tight_layout()

# %%
# Pointing it at the real data
# ----------------------------
# On KDEF, check the local copy first, then load it instead of the synthetic faces; the
# paper's networks are loaded by name once trained (the full protocol wants a GPU):
#
# .. code-block:: python
#
#     # shell: dnnrsa data check kdef /data/kdef ; dnnrsa train expression --seed 0
#     faces = dnnrsa.datasets.kdef("/data/kdef")      # or set DNNRSA_DATA=/data
#     net = dnnrsa.load_model("expression", seed=0)  # the paper's recipe, 200 epochs
#     acts = dnnrsa.extract(net, faces, layers=["dense3"], device="auto")["dense3"]
#     layer_rdm = dnnrsa.rdm(acts, method="crossnobis", conditions=("identity", "expression"),
#                            cv="viewpoint", noise="shrinkage")
#
# Use ``n_boot=1000`` and ``n_permutations=1000`` or more for a publication.
plt.show()
