"""Draws docs/images/synthetic_faces_v2.png: five identities of the default synthetic faces
across both sessions and the three test viewpoints (run from the repository root)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import dnnrsa  # noqa: E402

faces = dnnrsa.datasets.synthetic_faces(n_identities=5, size=48)
ids = faces.classes("identity")[:5]
expressions = faces.classes("expression")
cols = [(s, v) for s in ("A", "B") for v in ("HL", "S", "HR")]
fig, axes = plt.subplots(len(ids), len(cols), figsize=(1.25 * len(cols), 1.3 * len(ids)))
for i, who in enumerate(ids):
    for j, (session, view) in enumerate(cols):
        img, _ = faces.subset(identity=who, expression=expressions[i % len(expressions)],
                              viewpoint=view, session=session)[0]
        ax = axes[i, j]
        ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if i == 0:
            ax.set_title(f"session {session}\n{view}", fontsize=8)
    axes[i, 0].set_ylabel(str(who), fontsize=8)
fig.suptitle("dnnrsa synthetic faces v2 (48 px): 5 identities x sessions x viewpoints",
             fontsize=9)
fig.tight_layout()
fig.savefig("docs/images/synthetic_faces_v2.png", dpi=110)
