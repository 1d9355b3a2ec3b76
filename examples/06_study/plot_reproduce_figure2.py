"""
Figure 2 of the study, in a minute
==================================

``dnnrsa.reproduce`` is the whole study as one call: it trains (or loads) each network x
seed, extracts every layer for the test faces, reads identity and expression out of each
layer on a held-out viewpoint, adds the pixel control, tests the paper's findings across
seeds and draws Figure 2. Here it runs shrunk to two networks (expression-trained and
untrained), 3 seeds of the quick preset, a linear readout (not the paper's 100-epoch
head) and 252 test faces, so you can see every output it writes and how to read its
verdicts.
"""

# %%
# Run the sweep
# -------------
# The quick expression networks are the ones ``02_decoding`` trains (same recipe, same
# seeds), so after that example they are only loaded. Everything is written to a
# temporary folder with ``out=``; finished units are cached under
# ``$DNNRSA_HOME/cache/units``, so a rerun reads them back.
import tempfile
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pandas as pd

import dnnrsa

out = Path(tempfile.mkdtemp(prefix="dnnrsa-fig2-"))
faces = dnnrsa.datasets.synthetic_faces(n_identities=12, sessions=("A",), size=32)
results = dnnrsa.reproduce(networks=("expression", "untrained"), seeds=3, quick=True,
                           readout="linear", stimuli=faces, out=out, n_jobs=1,
                           progress=False)
print(sorted(p.name for p in out.iterdir()))
print(results.head().to_string())
print(f"{len(results)} rows: network x seed x layer x target x held-out viewpoint")

# %%
# Seeds summarised
# ----------------
# ``dnnrsa.study.summarise`` averages the folds within each seed, then gives the mean, SD
# and 95% t interval over seeds per network x layer x target (the pixel control is one
# run, so its interval is undefined, shown as NaN).
summary = dnnrsa.study.summarise(results)
cols = ["network", "layer", "target", "mean", "ci_low", "ci_high", "n_seeds", "chance"]
print(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))

# %%
# The findings, each with its test
# --------------------------------
# ``findings.csv`` holds one row per claim of the paper: trained vs untrained by Welch's
# t across seeds, the top vs the first layer of one network by a paired t, Holm-adjusted
# over the claims. A claim is "holds" or "reversed" only with adjusted p < 0.05 and at
# least 3 seeds per group; "inconclusive" otherwise; "not tested" when its network is
# not in the run (here: the identity- and scene-trained networks).
table = pd.read_csv(out / "findings.csv")
print(table[["claim", "verdict", "difference", "ci_low", "ci_high", "p", "p_holm"]]
      .to_string(index=False, float_format=lambda v: f"{v:.3g}"))
print()
for _, row in dnnrsa.study.findings(results).iterrows():
    print("-", dnnrsa.study.format_finding(row))

# %%
# Figure 2A as ``reproduce`` drew it
# ----------------------------------
# Mean accuracy per layer with 95% intervals over the 3 seeds, one panel per target;
# dashed: chance; dotted: the pixel control. ``fig2b.png`` (differences from the
# untrained networks) and ``report.md`` sit beside it in ``out``.
fig, ax = plt.subplots(figsize=(9, 4.5))
ax.imshow(mpimg.imread(out / "fig2a.png"))
ax.set_axis_off()
fig.tight_layout()

# %%
# Pointing it at the real data
# ----------------------------
# Without ``quick``, ``reproduce`` is the paper's protocol: the four networks (expression
# on FER2013, identity on CelebA, scene on UC Merced, untrained), the full network at
# 48 px for 200 epochs, 10 seeds, the paper's readout for 100 epochs, tested on KDEF.
# It wants a GPU and local copies of the data sets:
#
# .. code-block:: bash
#
#    dnnrsa data list                        # where to obtain each set
#    dnnrsa data check kdef /data/kdef       # and fer2013, celeba, uc_merced
#    export DNNRSA_DATA=/data
#    dnnrsa reproduce --data paper --seeds 10 --out out/full
#
# .. code-block:: python
#
#    table = dnnrsa.reproduce(data="paper", seeds=10, device="cuda", out="out/full")
#
# A cluster runs the same units with ``scheduler=`` (a Dask scheduler), and the
# synthetic version of the full study is ``dnnrsa reproduce --seeds 10``.
plt.show()
