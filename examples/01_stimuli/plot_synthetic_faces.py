"""
The synthetic faces and how hard they are
=========================================

dnnrsa's offline test set is rendered, not downloaded: every identity is a 3-D head
with its own shape and skin, seen with several expressions, from several viewpoints and
in two photo sessions (two studio set-ups). Here you see the factors of the set, a grid
of its pictures, and its *calibration*: how hard identity across viewpoint is for raw
pixels, for mean brightness and for an untrained network's first layer, next to the
paper's KDEF figure. No network is trained.
"""

# %%
# A small set: 8 people x 7 expressions x 3 viewpoints x 2 sessions, 32 x 32 pixels
# (the size the quick networks take). The factor table is what every analysis of
# dnnrsa splits and groups by.
import matplotlib.pyplot as plt
import numpy as np

import dnnrsa

faces = dnnrsa.datasets.synthetic_faces(n_identities=8, size=32)
print(faces)
print(faces.metadata.head())
for factor in ("identity", "expression", "viewpoint", "session"):
    levels = faces.classes(factor)
    print(f"{factor:>10}: {len(levels):2d} levels {levels[:7]}")

# %%
# Calibration
# -----------
# :func:`dnnrsa.study.calibration` measures the set the same way every time, with a
# linear readout of identity (multinomial logistic regression); each measure holds out
# something the readout never saw in training:
#
# * ``brightness``: one feature per image, its mean pixel value. It should stay near
#   chance, or a readout could tell people apart by how light their picture is.
# * ``pixels_across_views``: all pixels, a viewpoint never seen in training.
# * ``pixels_across_sessions``: all pixels, same viewpoint, the other session; meant
#   to be much easier (target: at least twice ``pixels_across_views``), since a
#   picture of the same pose matches nearly pixel for pixel.
# * ``pixels_across_views_and_sessions``: a new viewpoint of the other session.
# * ``untrained_conv1``: the first layer of three untrained quick networks (seeds 0-2).
#   KDEF's figure from the paper is 7.9% with 70 identities (5.5x chance).
#
# Chance here is 1 / 8 identities, not 1 / 70 as in KDEF, so compare the
# ``x_chance`` column (accuracy / chance), not raw accuracies. The targets were set
# for the default 70-identity set; ``passes`` says whether this small set meets them.
calib = dnnrsa.study.calibration(faces, seeds=(0, 1, 2), quick_expression=False)
show = calib[["measure", "value", "chance", "x_chance", "target", "passes", "n"]]
print(show.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

row = calib.set_index("measure")
kdef_x_chance = row.loc["untrained_conv1", "kdef"] / (1 / 70)  # KDEF has 70 identities
views = row.loc["pixels_across_views", "x_chance"]
sessions = row.loc["pixels_across_sessions", "x_chance"]
print(f"\nIn this run, pixels reach {views:.1f}x chance across viewpoints and "
      f"{sessions:.1f}x across sessions at a fixed viewpoint; untrained conv1 reaches "
      f"{row.loc['untrained_conv1', 'x_chance']:.1f}x (KDEF, paper: {kdef_x_chance:.1f}x).")

# %%
# The pictures
# ------------
# First person, session A: one row per expression, one column per viewpoint; then the
# same person in session B, and the calibration in multiples of chance (grey dashed
# line: chance; orange diamond: the paper's KDEF figure for untrained conv1).
person = faces.classes("identity")[0]
expressions = faces.classes("expression")
viewpoints = faces.classes("viewpoint")
fig = plt.figure(figsize=(10, 6.5))
grid = fig.add_gridspec(len(expressions), 2 * len(viewpoints) + 6)
for col, (session, view) in enumerate(
        [(s, v) for s in faces.classes("session") for v in viewpoints]):
    for i, expr in enumerate(expressions):
        ax = fig.add_subplot(grid[i, col])
        img, _ = faces.subset(identity=person, expression=expr, viewpoint=view,
                              session=session)[0]
        ax.imshow(np.asarray(img)[0], cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if i == 0:
            ax.set_title(f"{view}\n{session}", fontsize=8)
        if col == 0:
            ax.set_ylabel(expr, fontsize=8)

ax = fig.add_subplot(grid[1:-1, 2 * len(viewpoints) + 2:])
drawn = calib[np.isfinite(calib["x_chance"].astype(float))]
y = np.arange(len(drawn))[::-1]
ax.barh(y, drawn["x_chance"], color="#1b9e77", height=0.6)
short = {"untrained_conv1": "untrained conv1", "brightness": "brightness",
         "pixels_across_views": "pixels, new view", "pixels_across_sessions":
         "pixels, new session", "pixels_across_views_and_sessions": "pixels, new both"}
ax.set_yticks(y, [short[m] for m in drawn["measure"]], fontsize=8)
ax.axvline(1.0, ls="--", color="grey", lw=1)
conv1_y = y[list(drawn["measure"]).index("untrained_conv1")]
ax.plot(kdef_x_chance, conv1_y, "D", color="#d95f02", label="KDEF (paper)")
ax.set_xlabel("identity accuracy / chance")
ax.legend(fontsize=8, loc="lower right")
ax.set_title(f"Calibration ({len(faces.classes('identity'))} identities)", fontsize=9)
fig.suptitle(f"Synthetic faces: {person}, two sessions", fontsize=10)
fig.subplots_adjust(left=0.05, right=0.98, top=0.88, bottom=0.08, wspace=0.05, hspace=0.1)

# %%
# Pointing it at the real data
# ----------------------------
# The study's test set is KDEF (70 people x 7 expressions x 5 viewpoints x 2 sessions;
# the paper uses the three central viewpoints). dnnrsa never downloads it: obtain a copy
# under its licence, check it, and pass it where the synthetic faces went. The full
# preset's networks take 48 px faces:
#
# .. code-block:: bash
#
#    dnnrsa data list                       # where to obtain each data set
#    dnnrsa data check kdef /data/kdef      # exit 0: usable
#    export DNNRSA_DATA=/data               # then dnnrsa finds /data/kdef by itself
#
# .. code-block:: python
#
#    faces = dnnrsa.datasets.kdef("/data/kdef", size=48)
#    calib = dnnrsa.study.calibration(faces)   # the full preset's untrained networks
#
# ``calibration()`` without arguments measures the default synthetic set (70 identities,
# 48 px), the one ``dnnrsa reproduce`` uses; every ``reproduce`` run also writes these
# measures into its ``report.md`` and ``fig_calibration.png``.
plt.show()
