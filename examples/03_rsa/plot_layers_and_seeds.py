"""
Second-order RSA: layers x layers, and network seeds as subjects
================================================================

Every layer of four network seeds gets an RDM; comparing those RDMs with each other says
which layers represent the faces alike, and how much two seeds of one network agree at
each layer. Treating the seeds as the subjects of an experiment then gives a noise
ceiling per layer and bootstrap intervals that generalise to new seeds.
"""

# %%
# Four seeds, four layers
# -----------------------
# Untrained CCN-2022 DenseNets that differ only in their random initialisation (the seed),
# and 72 synthetic faces (6 identities x 4 expressions x 3 viewpoints).
import matplotlib.pyplot as plt
import numpy as np
import torch

import dnnrsa

faces = dnnrsa.datasets.synthetic_faces(n_identities=6, expressions=("AN", "HA", "NE", "SA"),
                                        sessions=("A",), size=32)
LAYERS = ["conv1", "dense1", "dense2", "dense3"]
SEEDS = [0, 1, 2, 3]
rdms = {layer: [] for layer in LAYERS}  # layer -> one RDM per seed
for seed in SEEDS:
    torch.manual_seed(seed)
    net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)  # untrained
    acts = dnnrsa.extract(net, faces, layers=LAYERS)
    for layer in LAYERS:
        # Euclidean distances between identity x expression means (24 conditions).
        r = dnnrsa.rdm(acts[layer], method="euclidean", conditions=("identity", "expression"))
        r.rdm_descriptors["seed"] = [seed]
        rdms[layer].append(r)

# %%
# Layer x layer similarity
# ------------------------
# ``layer_similarity`` compares every RDM of one layer with every RDM of another
# (Spearman) and averages; on the diagonal it averages over pairs of *different* seeds,
# so the diagonal is the seed-to-seed consistency of a layer.
sim = dnnrsa.rsa.layer_similarity(rdms, method="spearman")
print(sim.round(3))

# %%
# Seeds as subjects
# -----------------
# Per layer: the noise ceiling across seeds (how well one seed's RDM is predicted by the
# others, lower bound, or by all, upper bound), and the identity and expression models
# evaluated against the seeds, with a 95% bootstrap interval over seeds and conditions.
models = dnnrsa.rsa.factor_rdms(rdms["conv1"][0], factors=["identity", "expression"])
rows = []
for layer in LAYERS:
    tables = dnnrsa.rsa.seeds_as_subjects(rdms[layer], models, method="tau-a", over="both",
                                          n_boot=300, seed=0)
    ceiling = tables["noise_ceiling"].iloc[0]
    for _, b in tables["bootstrap"].iterrows():
        rows.append((layer, b.model, b.estimate, b.ci_low, b.ci_high, ceiling.lower,
                     ceiling.upper))
    print(f"{layer:>7}: ceiling across {len(SEEDS)} seeds [{ceiling.lower:.3f}, "
          f"{ceiling.upper:.3f}] (tau-a); " + ", ".join(
              f"{b.model} {b.estimate:+.3f} [{b.ci_low:+.3f}, {b.ci_high:+.3f}]"
              for _, b in tables["bootstrap"].iterrows()) + "  (chance: 0)")

# %%
# The figure
# ----------
# Left: the layer x layer matrix. Right: each factor model per layer (mean over the four
# seeds, 95% bootstrap interval over seeds and conditions), with the seeds' noise ceiling
# as a grey band: a model can explain at most what the seeds share. Part of the gap is
# the measure itself: a 0/1 model has many ties, so its tau-a with a continuous RDM
# cannot reach 1. In this untrained network the identity model's tau-a barely changes
# from layer to layer, as the numbers above show.
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10.5, 4.2))
im = ax0.imshow(sim.to_numpy(), vmin=float(sim.to_numpy().min()) - 0.05, vmax=1, cmap="cividis")
ax0.set_xticks(range(len(LAYERS)), LAYERS)
ax0.set_yticks(range(len(LAYERS)), LAYERS)
for i in range(len(LAYERS)):
    for j in range(len(LAYERS)):
        ax0.text(j, i, f"{sim.iat[i, j]:.2f}", ha="center", va="center", color="k", fontsize=8)
ax0.set_title(f"RDM similarity (Spearman), {len(SEEDS)} seeds")
fig.colorbar(im, ax=ax0, shrink=0.8)
x = np.arange(len(LAYERS))
lower = [r[5] for r in rows[::2]]
upper = [r[6] for r in rows[::2]]
ax1.fill_between(x, lower, upper, color="0.85", label="noise ceiling (seeds)")
for k, (name, color) in enumerate(zip(models.rdm_descriptors["name"], ("#1b9e77", "#d95f02"),
                                      strict=True)):
    est = np.array([r[2] for r in rows[k::2]])
    lo = np.array([r[3] for r in rows[k::2]])
    hi = np.array([r[4] for r in rows[k::2]])
    ax1.errorbar(x + 0.06 * (k - 0.5), est, yerr=[est - lo, hi - est], marker="o",
                 capsize=3, color=color, label=f"{name} model")
ax1.axhline(0, ls="--", color="grey", lw=0.8)
ax1.set_xticks(x, LAYERS)
ax1.set_ylabel("tau-a with the layer's RDM")
ax1.set_title(f"factor models, mean of {len(SEEDS)} seeds, 95% CI")
ax1.legend(fontsize=8)
fig.tight_layout()

# %%
# Pointing it at the real data
# ----------------------------
# With trained networks, seeds are the unit of replication: train ten seeds of a variant
# (one ensemble; the paper's protocol wants a GPU) and load each one:
#
# .. code-block:: python
#
#     # shell: dnnrsa data check kdef /data/kdef ; dnnrsa train expression --seed 0 1 2 3 4 5 6 7 8 9
#     faces = dnnrsa.datasets.kdef("/data/kdef")
#     nets = [dnnrsa.load_model("expression", seed=s) for s in range(10)]
#     rdms = {layer: [dnnrsa.rdm(dnnrsa.extract(n, faces, layers=[layer])[layer],
#                                method="euclidean", conditions=("identity", "expression"))
#                     for n in nets] for layer in ["conv1", "dense1", "dense2", "dense3"]}
#     dnnrsa.rsa.layer_similarity(rdms)
#
# ``dnnrsa reproduce --seeds 10`` runs the study's readouts on the same seeds.
plt.show()
