"""
Layers against a brain region: GLM, RSA with ceilings, cross-decoding
=====================================================================

Three simulated subjects watch 48 faces in 4 runs each; the voxels of one region respond
as a random mix of ``dense2`` of a small untrained network, the rest of the brain is
noise. The same calls work on your own BOLD runs and BIDS events: replace
``simulated_fmri`` with your files.
"""

# %%
import matplotlib.pyplot as plt
import torch

import dnnrsa

faces = dnnrsa.datasets.synthetic_faces(n_identities=4, expressions=("AN", "HA", "NE", "SA"),
                                        sessions=("A",), size=32)
torch.manual_seed(0)
net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)  # untrained
layers = dnnrsa.extract(net, faces, layers=["conv1", "dense1", "dense2", "dense3"])

# %%
# Each subject: BOLD runs -> one first-level GLM per run -> one row per run x face, for
# the responsive region and for the noise region. The factor table of the simulation
# (``sim.conditions``) gives every trial type its identity, expression and viewpoint.
brain = {"region": [], "noise": []}
for subject in range(3):
    sim = dnnrsa.datasets.simulated_fmri(faces, source=layers["dense2"], n_runs=4,
                                         n_voxels=400, snr=1.0, seed=subject)
    for name, mask in (("region", sim.region_mask), ("noise", sim.noise_mask)):
        brain[name].append(dnnrsa.neural.from_runs(
            sim.bold, sim.events, mask=mask, t_r=sim.t_r, factors=sim.conditions,
            region=name))
print(brain["region"][0])

# %%
# Model vs brain: every layer against every subject's crossnobis RDM (cross-validated
# over runs, noise normalised with the GLM residuals: unbiased distances), with a
# bootstrap CI over subjects and faces, a test of each layer against the best one, and
# the region's noise ceiling.
table = dnnrsa.compare_to_brain(layers, brain, conditions="image_id", rdm_method="crossnobis",
                                cv="run", noise="residuals", n_boot=500)
print(table[["layer", "roi", "value", "ci_low", "ci_high", "p_vs_best_holm", "ceiling_low",
             "ceiling_high"]])
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
dnnrsa.rsa.plot_brain_comparison(table, ax=axes)
fig.tight_layout()

# %%
# Cross-decoding in the region: a readout of identity trained on one expression, tested
# on every expression, holding out runs.
gen = dnnrsa.generalize(brain["region"][0], target="identity", across="expression",
                        cv="run")
print(f"same expression {gen.diagonal:.2f}, other expressions {gen.off_diagonal:.2f}, "
      f"chance {gen.chance:.2f}")
fig, ax = plt.subplots(figsize=(4.5, 4))
gen.plot(ax=ax)
plt.show()
