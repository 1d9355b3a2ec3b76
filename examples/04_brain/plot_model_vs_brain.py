"""
Layers against a brain region: crossnobis RSA with a noise ceiling
==================================================================

Three simulated subjects watch 48 faces in 4 runs each; the voxels of one region respond
as a random mix of ``dense2`` of a small untrained network, the rest of the brain is
noise. You learn how BOLD runs become a region's responses (one GLM per run), how every
layer is compared with every subject's cross-validated RDM, and how to read the result
against the region's noise ceiling. Because the answer is known (``dense2``), the script
checks whether the comparison finds it.
"""

# %%
# Faces, a network, and the layer the simulated region encodes
# ------------------------------------------------------------
import matplotlib.pyplot as plt
import torch

import dnnrsa

faces = dnnrsa.datasets.synthetic_faces(n_identities=4, expressions=("AN", "HA", "NE", "SA"),
                                        sessions=("A",), size=32)
torch.manual_seed(0)
net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)  # untrained
layers = dnnrsa.extract(net, faces, layers=["conv1", "dense1", "dense2", "dense3"])
TRUE_LAYER = "dense2"

# %%
# Three subjects
# --------------
# Each subject: BOLD runs -> one first-level GLM per run -> one row per run x face, for
# the responsive region and for the noise region. The factor table of the simulation
# (``sim.conditions``) gives every trial type its identity, expression and viewpoint.
brain = {"region": [], "noise": []}
for subject in range(3):
    sim = dnnrsa.datasets.simulated_fmri(faces, source=layers[TRUE_LAYER], n_runs=4,
                                         n_voxels=400, snr=1.0, seed=subject)
    for name, mask in (("region", sim.region_mask), ("noise", sim.noise_mask)):
        brain[name].append(dnnrsa.neural.from_runs(
            sim.bold, sim.events, mask=mask, t_r=sim.t_r, factors=sim.conditions,
            region=name))
print(brain["region"][0])

# %%
# Model vs brain
# --------------
# Every layer against every subject's crossnobis RDM (cross-validated over runs, noise
# normalised with the GLM residuals: unbiased distances), compared by Spearman
# correlation; a bootstrap CI over subjects and faces, a test of each layer against the
# best one (Holm-adjusted), and the region's noise ceiling. No model RDM should match the
# noise region: its chance level is a correlation of 0.
table = dnnrsa.compare_to_brain(layers, brain, conditions="image_id", rdm_method="crossnobis",
                                cv="run", noise="residuals", n_boot=500)
for _, row in table.sort_values("roi", ascending=False, kind="stable").iterrows():
    print(f"{row.roi:>6} {row.layer:>6}: rho {row.value:+.3f} [{row.ci_low:+.3f}, "
          f"{row.ci_high:+.3f}]  vs best p(Holm) {row.p_vs_best_holm:.3f}  ceiling "
          f"[{row.ceiling_low:.3f}, {row.ceiling_high:.3f}]  n = {row.n_subjects} subjects")
region = table[table.roi == "region"].set_index("layer")
best = region["value"].idxmax()
print(f"In this run the best layer for the region is {best!r} (the simulation used "
      f"{TRUE_LAYER!r}); {int((region['p_vs_best_holm'] < 0.05).sum())} of "
      f"{len(region) - 1} other layers are worse by the bootstrap test (Holm p < 0.05). "
      f"It reaches {region.loc[best, 'value'] / region.loc[best, 'ceiling_low']:.0%} of the "
      "ceiling's lower bound.")

# %%
# The figure: one panel per region, the layers along x with their 95% bootstrap
# intervals, the noise ceiling in grey. With 3 subjects the noise region's ceiling is
# wide and its lower bound strays from 0 by chance: a crossnobis RDM of pure noise has
# about as many degrees of freedom as conditions (half its variance is each condition's
# own noise, shared by all its pairs), so two subjects' noise RDMs correlate by about
# +-0.1 (lower bounds from -0.05 to 0.125 over 8 simulated triplets). Read a ceiling
# with more subjects, or with its interval, not as a single number.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
dnnrsa.rsa.plot_brain_comparison(table, ax=axes)
fig.tight_layout()

# %%
# Pointing it at the real data
# ----------------------------
# Real subjects come in the same way, from fMRIPrep outputs in a BIDS derivatives folder:
# each run's preprocessed BOLD and its ``events.tsv``, a region mask on the same grid (an
# atlas ROI cut with nilearn), and the motion confounds. KDEF faces replace the synthetic
# ones (``dnnrsa data check kdef /data/kdef``) and a trained network the untrained one:
#
# .. code-block:: python
#
#     from pathlib import Path
#     import pandas as pd
#     from nilearn import datasets, image
#
#     deriv = Path("/data/bids/derivatives/fmriprep/sub-01/func")
#     bold = sorted(deriv.glob("*task-faces*_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"))
#     events = sorted(Path("/data/bids/sub-01/func").glob("*task-faces*_events.tsv"))
#     confounds = [pd.read_csv(str(b).replace("space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz",
#                                             "desc-confounds_timeseries.tsv"), sep="\t")
#                  [["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]] for b in bold]
#     atlas = datasets.fetch_atlas_harvard_oxford("cort-maxprob-thr25-2mm")
#     label = atlas.labels.index("Temporal Occipital Fusiform Cortex")
#     ffa = image.resample_to_img(image.math_img(f"img == {label}", img=atlas.maps), bold[0],
#                                 interpolation="nearest")
#     roi = dnnrsa.neural.from_runs(bold, events, mask=ffa, t_r=2.0, confounds=confounds,
#                                   factors="{identity}_{expression}", region="FFA")
#     net = dnnrsa.load_model("expression", seed=0)   # after `dnnrsa train expression`
#     layers = dnnrsa.extract(net, dnnrsa.datasets.kdef("/data/kdef"),
#                             layers=["conv1", "dense1", "dense2", "dense3"])
#
# then ``compare_to_brain(layers, {"FFA": [roi, ...]}, conditions="identity",
# rdm_method="crossnobis", cv="run", noise="residuals")`` with one region entry per subject
# (``conditions`` must be a factor both sides share), and a list of layer dicts, one per
# network seed (``dnnrsa train expression --seed 0 1 2 ...``), for intervals over seeds.
plt.show()
