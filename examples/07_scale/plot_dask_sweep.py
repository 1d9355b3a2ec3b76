"""
A sweep on a Dask cluster, with the same numbers as on one machine
==================================================================

:func:`dnnrsa.reproduce` splits the study into units of work (one network with a group of
its seeds; the pixel control) and runs them here or, given a ``scheduler``, as tasks on a
Dask cluster. This example starts a small local cluster, runs a tiny sweep on it and the
same sweep without it, checks that the two tables are equal to the last bit, and plots
the result with 95% intervals over seeds. Needs ``pip install "dnnrsa[distributed]"``.
"""

# %%
# A local cluster
# ---------------
# Two workers with one thread each, as the workers of a real cluster should be started
# (``dask worker ... --nthreads 1``: a unit uses the threads its worker has).
#
# ``processes=False`` keeps the workers as threads of this process. A cluster of worker
# processes starts them with the "spawn" method, which imports the main script again in
# each of them; a script run that way needs an ``if __name__ == "__main__":`` guard, which
# a gallery page does not have (sphinx-gallery runs its cells at top level, one after
# another). Threads need neither, on Linux, macOS and Windows alike. The workers of a
# real cluster are processes of their own, started by ``dask worker`` or dask-jobqueue,
# so none of this applies there.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from distributed import Client, LocalCluster
from scipy import stats

import dnnrsa

cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                       dashboard_address=None)
client = Client(cluster)
print(client)

# %%
# The sweep, on the cluster
# -------------------------
# Small on purpose: 3 seeds of the untrained quick network, read out at ``dense3`` for
# identity with a linear readout on a held-out viewpoint (3 folds), plus the pixel
# control, on 84 synthetic faces (4 identities: chance 25%). ``cache=False`` makes both
# runs below compute everything: with the cache on, the second run would read the units
# the first one filed in ``$DNNRSA_HOME/cache/units`` instead of recomputing them.
faces = dnnrsa.datasets.synthetic_faces(n_identities=4, sessions=("A",), size=32)
sweep = dict(networks=("untrained",), seeds=[0, 1, 2], layers=("dense3",),
             targets=("identity",), quick=True, readout="linear", stimuli=faces,
             device="cpu", cache=False)
on_dask = dnnrsa.reproduce(scheduler=client, **sweep)
print(on_dask[["network", "seed", "layer", "target", "held_out", "accuracy", "chance"]])

# %%
# The same sweep here, and the check
# ----------------------------------
# ``n_jobs=1`` runs the units one after another in this process. Every unit draws its
# random numbers from its own seeds, so where it ran changes nothing: the tables are
# equal, every accuracy bit for bit.
here = dnnrsa.reproduce(n_jobs=1, **sweep)
pd.testing.assert_frame_equal(on_dask, here, check_exact=True)
print(f"equal: {len(here)} rows, the same on the cluster and here")
client.close()
cluster.close()

# %%
# The figure from the table
# -------------------------
# One accuracy per seed (the mean over the 3 held-out viewpoints), then the mean over the
# 3 seeds with a 95% t interval. The pixel control has no seeds: one value, no interval.
per_seed = (here.groupby(["network", "layer", "seed"], dropna=False, observed=True)
            ["accuracy"].mean().reset_index())
rows = []
for (network, layer), g in per_seed.groupby(["network", "layer"], observed=True):
    acc = 100 * g["accuracy"].to_numpy()
    half = (stats.t.ppf(0.975, len(acc) - 1) * acc.std(ddof=1) / np.sqrt(len(acc))
            if len(acc) > 1 else 0.0)
    rows.append(dict(label=f"{network}\n{layer}", mean=acc.mean(), half=half, n=len(acc),
                     values=acc))
    spread = (f"+/- {half:4.1f} (95% CI, n = {len(acc)} seeds; per seed "
              f"{np.round(acc, 1).tolist()})" if len(acc) > 1 else "(no seeds: no interval)")
    print(f"{network:>9} {layer:>6}: {acc.mean():5.1f}% {spread}")
chance = 100 * here["chance"].iloc[0]
print(f"chance {chance:.0f}%")

fig, ax = plt.subplots(figsize=(5, 3.5))
x = np.arange(len(rows))
ax.bar(x, [r["mean"] for r in rows], yerr=[r["half"] for r in rows], capsize=6,
       color="#66a61e", alpha=0.8)
for xi, r in zip(x, rows, strict=True):
    ax.plot(np.full(r["n"], xi), r["values"], "o", color="black", ms=4)
ax.axhline(chance, ls="--", color="grey", label="chance")
ax.set_xticks(x, [r["label"] for r in rows])
ax.set_ylabel("held-out-viewpoint identity accuracy (%)")
ax.set_title("Same table on Dask and here (dots: seeds)")
ax.legend()
fig.tight_layout()

# %%
# Pointing it at the real data
# ----------------------------
# On a real cluster the call is the same; only the scheduler changes. Every worker must
# see the same ``$DNNRSA_HOME`` (trained networks, the cache of finished units) and
# ``$DNNRSA_DATA`` (the data sets): a shared file system. A unit whose worker dies runs
# again elsewhere and counts once; with the cache on (the default), rerunning a killed
# study does only what is missing.
#
# On a workstation, a scheduler and a few single-threaded workers:
#
# .. code-block:: bash
#
#     dask scheduler --scheduler-file sched.json &
#     dask worker --scheduler-file sched.json --nthreads 1 --nworkers 4 &
#     dnnrsa reproduce --seeds 10 --scheduler sched.json --out out/full
#
# Under SLURM, dask-jobqueue submits the workers as jobs (a GPU each here):
#
# .. code-block:: python
#
#     from dask_jobqueue import SLURMCluster
#     from distributed import Client
#     import dnnrsa
#
#     cluster = SLURMCluster(cores=1, processes=1, memory="8GB", walltime="04:00:00",
#                            job_extra_directives=["--gres=gpu:1"])
#     cluster.scale(jobs=8)
#     table = dnnrsa.reproduce(data="paper", seeds=10, scheduler=Client(cluster),
#                              device="auto", out="out/full")
#
# ``device="auto"`` is resolved on each worker, so the machine that submits needs no GPU.
# :func:`dnnrsa.compare_to_brain` takes the same ``scheduler=`` for layers x regions x
# subjects.
plt.show()
