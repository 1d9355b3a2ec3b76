"""
The synthetic faces: identity x expression x viewpoint
======================================================

dnnrsa's offline default test set is rendered, not downloaded. Each identity is a 3-D
head shape with its own albedo, so it has to be recognised across rotation; each
expression is a mix of facial actions (brows, lids, mouth corners, jaw, nose wrinkle).
"""

# %%
import matplotlib.pyplot as plt

import dnnrsa

faces = dnnrsa.datasets.synthetic_faces(
    n_identities=2, viewpoints=("FL", "HL", "S", "HR", "FR"), sessions=("A",), size=64
)
print(faces)

# %%
# One row per expression, one column per viewpoint, for the first identity.
first = faces.subset(identity=faces.classes("identity")[0])
expressions = first.classes("expression")
views = first.classes("viewpoint")
fig, axes = plt.subplots(len(expressions), len(views), figsize=(1.3 * len(views), 1.3 * len(expressions)))
for i, e in enumerate(expressions):
    for j, v in enumerate(views):
        img, _ = first.subset(expression=e, viewpoint=v)[0]
        axes[i, j].imshow(img[0], cmap="gray", vmin=0, vmax=1)
        axes[i, j].set_xticks([])
        axes[i, j].set_yticks([])
        if i == 0:
            axes[i, j].set_title(v)
    axes[i, 0].set_ylabel(e)
fig.tight_layout()
plt.show()
