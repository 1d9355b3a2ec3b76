"""
Checking a real data set before using it (shown on a fabricated KDEF)
=====================================================================

dnnrsa never downloads the study's data sets: you obtain them under their own terms and
point dnnrsa at your copy. Before a long run it pays to check that copy against the data
set's manifest (``data_manifests/kdef.json``: where to get it, its licence, its layout,
its counts). This example builds a small fake copy of KDEF in a temporary folder, checks
it with :func:`dnnrsa.datasets.check_dataset`, reads what the report says, loads the
usable part with ``on_problem="skip"`` and decodes identity from it.
"""

# %%
# What the manifest says
# ----------------------
# Every real data set has a manifest: how to obtain it, under which terms, what a complete
# copy holds. :func:`dnnrsa.datasets.list_datasets` gives all of them in a table.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

import dnnrsa

manifest = dnnrsa.datasets.load_manifest("kdef")
for key in ("title", "homepage", "obtain", "licence", "citation"):
    print(f"{key:>9}: {manifest[key]}")
print(f"   counts: {manifest['counts']}")
print(f"   layout: {manifest['layout']['summary']}")

# %%
# A fabricated copy in KDEF's layout
# ----------------------------------
# KDEF names every photograph by its factors: ``KDEF/AF01/AF01ANHL.JPG`` is session A,
# female person 01, angry, half left, in a folder per session and person. We write 4
# persons (F01, F02, M01, M02) of session A only, with all 7 expressions and all 5 views,
# as 562 x 762 JPEGs like the real ones. So that there is something to decode, the HL, S
# and HR views carry a synthetic face of that identity, expression and view (dnnrsa's
# renderer already names its images the KDEF way); the full profiles FL and FR are plain
# gray. Two faults of the kind users meet in real copies are added: a misnamed file and a
# truncated (undecodable) image.
root = Path(tempfile.mkdtemp(prefix="fake_kdef_"))
faces = dnnrsa.datasets.synthetic_faces(n_identities=4, sessions=("A",), size=388)
for image, image_id in zip(faces.images, faces.metadata["image_id"], strict=True):
    folder = root / "KDEF" / image_id[:4]
    folder.mkdir(parents=True, exist_ok=True)
    canvas = np.full((762, 562), 128, np.uint8)  # the loader keeps the central 388 x 388
    canvas[187:575, 87:475] = np.round(255 * image[0]).astype(np.uint8)
    Image.fromarray(canvas).convert("RGB").save(folder / f"{image_id}.JPG", quality=90)
    for profile in ("FL", "FR"):
        gray = Image.new("RGB", (562, 762), (128, 128, 128))
        gray.save(folder / f"{image_id[:6]}{profile}.JPG", quality=90)

(root / "KDEF/AF01/AF01SUHL.JPG").rename(root / "KDEF/AF01/AF01SUH.JPG")  # misnamed
broken = root / "KDEF/AM02/AM02HAS.JPG"
broken.write_bytes(broken.read_bytes()[:300])  # cut short: the JPEG no longer decodes
n_files = sum(1 for _ in root.rglob("*.JPG"))
print(f"{n_files} files in {len(list((root / 'KDEF').iterdir()))} person folders under {root}")

# %%
# The check
# ---------
# :func:`dnnrsa.datasets.check_dataset` never raises: it returns a report whose ``ok`` says
# whether the copy can be used as it is, and whose ``problems`` name every file. (On the
# command line, ``dnnrsa data check kdef PATH`` prints the same report and exits with 2.)
# Its table counts the images found per expression x view (4 persons: 4 per cell where
# nothing is wrong). Its problems are what we built: the misnamed file is a stray, the
# image it should have been is missing, 136 of KDEF's 140 person folders are missing (the
# other 66 persons, and session B), and the truncated JPEG does not decode.
report = dnnrsa.datasets.check_dataset("kdef", root)
print(report)
print(f"usable as it is: {report.ok}; {len(report.problems)} problem(s)")

# %%
# Loading the usable part
# -----------------------
# By default a loader refuses such a copy with one error listing every problem, so that
# no analysis runs silently on part of the data. In this run that error names the three
# problems of the layout, found before any image is read; the undecodable JPEG is only met
# when the images are decoded, which is why :func:`~dnnrsa.datasets.check_dataset`, which
# decodes every image, is the step to run first. ``on_problem="skip"`` logs the problems
# as a warning and returns the images that are fine: here the study's three views (HL, S,
# HR) of session A, less the two faulty files.
try:
    dnnrsa.datasets.kdef(root, sessions=("A",), size=32)
except ValueError as err:
    lines = str(err).splitlines()
    print("on_problem='raise':", lines[0])
    for line in lines[1:]:
        print(line if len(line) < 100 else line[:96] + " ...")
kdef = dnnrsa.datasets.kdef(root, sessions=("A",), size=32, on_problem="skip")
print(kdef)
counts = kdef.metadata.groupby("viewpoint", observed=True).size()
print("images per viewpoint:", {view: int(n) for view, n in counts.items()})

# %%
# Decoding from the loaded copy
# -----------------------------
# The loaded set is an ordinary :class:`dnnrsa.StimulusSet`, so the study's readout runs
# on it unchanged: identity on a held-out viewpoint, from pixels and from the layers of a
# small untrained network (4 identities: chance is 25%).
torch.manual_seed(0)
net = dnnrsa.zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)
acts = dnnrsa.extract(net, kdef, layers=["pixels", "dense2", "dense3"], device="cpu")
results = {layer: dnnrsa.decode(a, target="identity", cv="viewpoint", readout="linear",
                                device="cpu")
           for layer, a in acts.items()}
for layer, res in results.items():
    folds = ", ".join(f"{h} {100 * s:.0f}" for h, s in zip(res.held_out, res.folds))
    print(f"{layer:>7}: {100 * res.accuracy:5.1f}% (held out: {folds}; "
          f"chance {100 * res.chance:.0f}%)")

# %%
# The figure: a few of the loaded faces (as the loader made them: grayscale, central crop,
# 32 px) and the accuracies.
fig, axes = plt.subplots(1, 4, figsize=(11, 3), gridspec_kw={"width_ratios": [1, 1, 1, 2.5]})
for ax, view in zip(axes[:3], ("HL", "S", "HR"), strict=True):
    i = np.flatnonzero((kdef.metadata["viewpoint"] == view).to_numpy())[0]
    ax.imshow(kdef.images[i, 0], cmap="gray", vmin=0, vmax=1)
    ax.set_title(kdef.metadata["image_id"][i])
    ax.axis("off")
axes[3].bar(list(results), [100 * r.accuracy for r in results.values()], color="#d95f02")
axes[3].axhline(100 * results["pixels"].chance, ls="--", color="grey", label="chance")
axes[3].set_ylabel("identity accuracy (%)")
axes[3].set_title("held-out viewpoint, fabricated copy")
axes[3].legend()
fig.tight_layout()

# %%
# Pointing it at the real data
# ----------------------------
# Request KDEF at https://www.kdef.se, unzip it under one folder for all data sets and
# check it; exit status 0 means usable, 2 not (the report says which files and why):
#
# .. code-block:: bash
#
#     export DNNRSA_DATA=/data                    # holds kdef/, fer2013/, celeba/, uc_merced/
#     dnnrsa data list                            # every data set, where to get it, licence
#     dnnrsa data check kdef /data/kdef           # layout, counts, decodable images
#     dnnrsa data check fer2013 /data/fer2013     # FER2013 and UC Merced also have checksums
#
# Then the loaders find the copies without a path, and the study runs on them (a GPU
# for the paper's networks):
#
# .. code-block:: python
#
#     kdef = dnnrsa.datasets.kdef()               # $DNNRSA_DATA/kdef; raises on any problem
#     net = dnnrsa.load_model("expression", seed=0, data="paper")
#     dnnrsa.decode(net, "dense3", target="identity", cv="viewpoint", stimuli=kdef)
#     table = dnnrsa.reproduce(data="paper", seeds=10, device="auto", out="out/paper")
#
# A copy with a few known faults (KDEF's manifest lists some) can still be used with
# ``on_problem="skip"`` (``--on-problem skip`` on the command line); the networks trained
# then are a recipe of their own, and the report lists what was skipped.
plt.show()
