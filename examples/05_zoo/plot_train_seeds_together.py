"""
Training the zoo: several seeds at once, kept epochs, loading them back
=======================================================================

The study's claims are about networks, not about one network: every variant is trained
from several seeds. dnnrsa trains the seeds of a network together (on a CPU each on a
thread of its own, on a GPU as one grouped network), each exactly as it would be alone.
This example trains three seeds with :func:`dnnrsa.zoo.train` and plots each seed's
learning curves from its :class:`~dnnrsa.zoo.TrainHistory`, then trains three seeds of the
``expression`` variant into the models folder with :func:`dnnrsa.zoo.train_variant`,
lists them with :func:`dnnrsa.zoo.list_models`, and loads one back, at its last epoch and
at a kept earlier one.
"""

# %%
# Three seeds in one call
# -----------------------
# Each network is built under its own seed (its initialisation); ``seeds=`` gives each
# its batch order. The architecture and the optimiser are those of the quick preset
# (``dnnrsa.zoo.QUICK``: a narrow DenseNet on 32 px faces, Adam). To keep this page fast
# the networks see only 140 of the preset's 1,400 training faces, for 5 epochs, and are
# scored after every epoch on 140 of its test faces (7 expressions: chance 14.3%).
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import dnnrsa

quick = dnnrsa.zoo.QUICK
train_set, test_set = dnnrsa.zoo.training_data("expression", quick=True)
rng = np.random.default_rng(0)
train_small = train_set[rng.permutation(len(train_set))[:140]]
test_small = test_set[rng.permutation(len(test_set))[:140]]

seeds = [0, 1, 2]
nets = []
for seed in seeds:
    torch.manual_seed(seed)
    nets.append(dnnrsa.zoo.build("ccn2022", n_classes=7, **quick["arch"]))
histories = dnnrsa.zoo.train(
    nets, train_small, target="expression", test=test_small, seeds=seeds, epochs=5,
    optimizer=quick["optimizer"], lr=quick["lr"], batch_size=quick["batch_size"],
    lr_step=quick["lr_step"], device="cpu")
for seed, h in zip(seeds, histories, strict=True):
    print(f"seed {seed}:")
    print(h.to_frame()[["epoch", "loss", "train_accuracy", "test_accuracy"]]
          .round(3).to_string(index=False))
last_train = np.mean([h.train_accuracy[-1] for h in histories])
last_test = np.mean([h.test_accuracy[-1] for h in histories])
print(f"after epoch 5, mean over the 3 seeds: train {100 * last_train:.1f}%, "
      f"test {100 * last_test:.1f}% (chance {100 / 7:.1f}%)")

# %%
# Into the models folder
# ----------------------
# :func:`dnnrsa.zoo.train_variant` does the same for a variant of the study and files each
# seed's checkpoint under its recipe in ``$DNNRSA_HOME/models`` (default
# ``~/.cache/dnnrsa``), where :func:`dnnrsa.load_model` and ``dnnrsa reproduce`` find it.
# ``epochs=2`` makes a recipe of its own (never mistaken for the preset's 10-epoch
# networks); ``keep_epochs=[1]`` also keeps each network as it was after epoch 1. Seeds
# already trained are found, not trained again: a second run of this page trains nothing.
start = time.perf_counter()
paths = dnnrsa.zoo.train_variant("expression", seeds=seeds, quick=True, epochs=2,
                                 keep_epochs=[1], device="cpu")
print(f"train_variant: {time.perf_counter() - start:.1f} s")
for p in paths:
    print(p.relative_to(p.parents[3]))

models = dnnrsa.zoo.list_models()
mine = models[models["recipe"] == dnnrsa.zoo.read_info(paths[0])["recipe_key"]]
print(mine[["variant", "recipe", "preset", "epochs", "seed", "test_accuracy"]]
      .to_string(index=False))

# %%
# Loading a seed back, at its last epoch and at a kept one
# --------------------------------------------------------
# :func:`dnnrsa.load_model` takes the variant, the seed and the recipe's options; it checks
# the checkpoint's sha256 and that its sidecar names that recipe and seed. ``epoch=``
# loads a kept epoch instead of the final one. ``model.dnnrsa_info`` is the sidecar.
kept = {}
for seed in seeds:
    final = dnnrsa.load_model("expression", seed=seed, quick=True, epochs=2, device="cpu")
    first = dnnrsa.load_model("expression", seed=seed, quick=True, epochs=2, epoch=1,
                              device="cpu")
    kept[seed] = (first.dnnrsa_info["test_accuracy"], final.dnnrsa_info["test_accuracy"])
    same = all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                 final.state_dict().values(), strict=True))
    print(f"seed {seed}: test accuracy after epoch 1 {100 * kept[seed][0]:.1f}%, "
          f"after epoch 2 {100 * kept[seed][1]:.1f}% (weights identical: {same})")

# %%
# The figure: each seed's training loss and test accuracy per epoch (``zoo.train``, 140
# faces), and the test accuracy the sidecars record for the kept and final epochs of the
# ``train_variant`` networks (1,400 faces). On 140 faces and 5 epochs the loss falls and
# the training faces start to be learnt, while the test accuracy stays close to chance:
# compare the printed numbers, which are this run's. The networks of the quick preset get
# 1,400 faces and 10 epochs for that reason. With 3 seeds, the spread between the lines is
# what any claim about a variant has to beat.
fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
for seed, h in zip(seeds, histories, strict=True):
    axes[0].plot(h.epochs, h.loss, "o-", label=f"seed {seed}")
    axes[1].plot(h.epochs, [100 * a for a in h.test_accuracy], "o-", label=f"seed {seed}")
    axes[2].plot([1, 2], [100 * a for a in kept[seed]], "o-", label=f"seed {seed}")
axes[0].set(xlabel="epoch", ylabel="training loss", title="zoo.train: loss")
axes[1].set(xlabel="epoch", ylabel="test accuracy (%)", title="zoo.train: test")
axes[2].set(xlabel="epoch", ylabel="test accuracy (%)", xticks=[1, 2],
            title="train_variant: kept and final")
for ax in axes[1:]:
    ax.axhline(100 / 7, ls="--", color="grey", label="chance")
axes[2].legend(fontsize="small")
fig.tight_layout()

# %%
# Pointing it at the real data
# ----------------------------
# The command line does the same. A killed training run continues with ``--resume``:
# every epoch (``--state-every N``) each seed writes its training state
# (``seedNN.state.pt``: weights, optimiser, every random generator, the history so far)
# beside its checkpoint, and on a CPU the resumed run ends bit-identical to one never
# interrupted; without ``--resume`` an old state is ignored and overwritten, so a fresh
# run is never continued by accident. The paper's protocol (200 epochs, the full network,
# on FER2013 with ``--data paper``) wants a GPU:
#
# .. code-block:: bash
#
#     dnnrsa train expression --seed 0 1 2 3 4 5 6 7 8 9 --data paper --keep-epochs 1 5 20
#     dnnrsa train expression --seed 0 1 2 3 4 5 6 7 8 9 --data paper --keep-epochs 1 5 20 \
#         --resume                                   # after a kill: continues each seed
#     dnnrsa models                                  # what is trained, by recipe and seed
#
# and in Python, ``dnnrsa.load_model("expression", seed=3, data="paper", epoch=5)`` loads
# seed 3 as it was after epoch 5; ``dnnrsa.reproduce(data="paper", seeds=10,
# at_epochs=[1, 5, 20])`` reads out the kept epochs too.
plt.show()
