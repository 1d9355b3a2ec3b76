"""
Identity across viewpoints: pixels versus network layers
========================================================

The study's question in miniature: train a readout on two viewpoints, test it on the
third. A linear readout of pixels is the control; an untrained network's layers are the
baseline a trained network has to beat.
"""

# %%
import matplotlib.pyplot as plt
import torch

import dnnrsa

faces = dnnrsa.datasets.synthetic_faces(n_identities=12, sessions=("A",), size=32)
torch.manual_seed(0)
net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)  # untrained

# %%
# Extract every layer once, then decode each with the same folds.
acts = dnnrsa.extract(net, faces, layers=["pixels", "conv1", "dense1", "dense2", "dense3"])
results = {
    layer: dnnrsa.decode(a, target="identity", cv="viewpoint", readout="linear")
    for layer, a in acts.items()
}
for layer, res in results.items():
    print(f"{layer:>7}: {100 * res.accuracy:5.1f}% (chance {100 * res.chance:.1f}%)")

# %%
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar(list(results), [100 * r.accuracy for r in results.values()], color="#1b9e77")
ax.axhline(100 * results["pixels"].chance, ls="--", color="grey", label="chance")
ax.set_ylabel("held-out-viewpoint identity accuracy (%)")
ax.set_title("Untrained network, synthetic faces")
ax.legend()
fig.tight_layout()
plt.show()
