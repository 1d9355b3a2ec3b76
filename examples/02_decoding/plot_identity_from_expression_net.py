"""
Identity in a network trained on expression
===========================================

The study's central question: a network trained only to tell expressions apart, does it
also come to know *who* it is looking at? We train three seeds of the quick expression
network together, read identity out of each of its four layers on a viewpoint the readout
never saw, and compare with untrained networks of the same seeds. You learn how to train
an ensemble of seeds, decode a layer, and state a result with its interval over seeds and
a test that says "inconclusive" when the seeds cannot decide.
"""

# %%
# Train (or load) the networks
# ----------------------------
# ``train_variant`` trains the seeds together, each exactly as it would alone, and saves
# them under ``$DNNRSA_HOME``; a second run of this script only loads them. The
# snapshots after epochs 1, 3 and 5 are kept as well: the example
# ``06_study/plot_identity_during_training.py`` reads them. The untrained variant is
# only initialised.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

import dnnrsa

seeds = [0, 1, 2]
layers = ["conv1", "dense1", "dense2", "dense3"]
dnnrsa.zoo.train_variant("expression", seeds=seeds, quick=True, keep_epochs=[1, 3, 5],
                         progress=False)
dnnrsa.zoo.train_variant("untrained", seeds=seeds, quick=True, progress=False)
for seed in seeds:
    info = dnnrsa.load_model("expression", seed=seed, quick=True).dnnrsa_info
    print(f"expression seed {seed}: own-task test accuracy {100 * info['test_accuracy']:.1f}% "
          f"(chance {100 / 7:.1f}%)")

# %%
# Decode identity, one viewpoint held out
# ---------------------------------------
# Test faces: 12 people none of the networks saw in training, 7 expressions, viewpoints
# HL, S, HR, one session. ``cv="viewpoint"`` trains the readout on two viewpoints and
# tests it on the third, three folds. The readout is linear (logistic regression on
# standardised features, average-pooled by 8 as the paper's readout does: 46 to 640
# features per layer).
faces = dnnrsa.datasets.synthetic_faces(n_identities=12, sessions=("A",), size=32)
rows = []
for network in ("expression", "untrained"):
    for seed in seeds:
        model = dnnrsa.load_model(network, seed=seed, quick=True)
        for layer in layers:
            res = dnnrsa.decode(model, layer, target="identity", cv="viewpoint",
                                stimuli=faces, readout="linear", pool=8)
            rows.append(dict(network=network, seed=seed, layer=layer,
                             accuracy=res.accuracy, chance=res.chance))
table = pd.DataFrame(rows)
chance = table["chance"].iloc[0]
print(table.pivot_table(index=["network", "seed"], columns="layer", values="accuracy")
      [layers].round(3).to_string())

# %%
# Mean and 95% interval over seeds
# --------------------------------
# A seed is one initialisation and data order; the interval is Student's t over the
# n = 3 seeds (each seed's accuracy is already the mean of its 3 folds).


def mean_ci(values):
    values = np.asarray(values, dtype=float)
    half = stats.t.ppf(0.975, len(values) - 1) * stats.sem(values)
    return values.mean(), half


summary = (table.groupby(["network", "layer"], sort=False)["accuracy"]
           .apply(lambda v: pd.Series(mean_ci(v), index=["mean", "ci95"])).unstack())
print(summary.mul(100).round(1).to_string())
print(f"chance: {100 * chance:.1f}% (1 / {len(faces.classes('identity'))} identities)")

# %%
# The verdict, with a test
# ------------------------
# Trained and untrained seeds are independent initialisations, so each layer gets
# Welch's t test (``dnnrsa.study.welch_test``), Holm-adjusted over the four layers. With
# fewer than 3 seeds per group no verdict is given.
tests = {layer: dnnrsa.study.welch_test(
    table.query("network == 'expression' and layer == @layer")["accuracy"],
    table.query("network == 'untrained' and layer == @layer")["accuracy"])
    for layer in layers}
p_holm = dnnrsa.study.holm([t.p for t in tests.values()])
for (layer, t), p_adj in zip(tests.items(), p_holm):
    if min(t.n_a, t.n_b) < 3 or not np.isfinite(p_adj):
        verdict = "inconclusive (too few seeds or no variance)"
    elif p_adj < 0.05:
        verdict = "trained above untrained" if t.difference > 0 else "trained below untrained"
    else:
        verdict = "inconclusive (Holm p >= 0.05)"
    print(f"{layer:>7}: difference {100 * t.difference:+5.1f} points, 95% CI "
          f"[{100 * t.ci_low:+.1f}, {100 * t.ci_high:+.1f}], p = {t.p:.3g}, "
          f"Holm p = {p_adj:.3g} -> {verdict}")

# %%
# The figure
# ----------
# Mean over the 3 seeds per layer with its 95% t interval; dots: single seeds.
fig, ax = plt.subplots(figsize=(6, 4))
x = np.arange(len(layers))
for shift, (network, color) in zip((-0.1, 0.1), (("expression", "#d95f02"),
                                                 ("untrained", "#7570b3"))):
    s = summary.loc[network].loc[layers]
    ax.errorbar(x + shift, 100 * s["mean"], yerr=100 * s["ci95"], fmt="o-", color=color,
                capsize=4, label=f"{network} (n = {len(seeds)} seeds)")
    dots = table[table.network == network]
    ax.scatter(x[[layers.index(v) for v in dots.layer]] + shift, 100 * dots.accuracy,
               color=color, s=10, alpha=0.5)
ax.axhline(100 * chance, ls="--", color="grey", label="chance")
ax.set_xticks(x, layers)
ax.set_ylabel("identity accuracy, held-out viewpoint (%)")
ax.set_title("Identity from a quick expression network (linear readout)", fontsize=10)
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Pointing it at the real data
# ----------------------------
# The paper trains its expression networks on FER2013 and tests on KDEF, with 10 seeds,
# the full network (48 px, 200 epochs) and its own readout (100 epochs). With local
# copies of the data and a GPU:
#
# .. code-block:: bash
#
#    dnnrsa data check fer2013 /data/fer2013 && dnnrsa data check kdef /data/kdef
#    export DNNRSA_DATA=/data
#    dnnrsa train expression --data paper --seed 0 1 2 3 4 5 6 7 8 9
#
# .. code-block:: python
#
#    faces = dnnrsa.datasets.kdef(size=48)
#    model = dnnrsa.load_model("expression", seed=0, data="paper")
#    res = dnnrsa.decode(model, "dense3", target="identity", cv="viewpoint",
#                        stimuli=faces, readout="paper", device="cuda")
#
# ``dnnrsa reproduce --data paper --seeds 10`` runs this comparison for every network and
# layer, with the same tests.
plt.show()
