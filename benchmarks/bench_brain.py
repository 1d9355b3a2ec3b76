"""The brain path at a realistic size, each call beside its plain baseline.

One simulated subject: 6 runs of about 190 volumes (t_r 2 s), 72 faces seen once per run,
2,000 brain voxels of which 1,000 respond as a random mix of a network layer. Each row
times one dnnrsa call and, where one exists, the plain way of getting the same numbers
with nilearn / rsatoolbox / scikit-learn, and prints the ratio (baseline / dnnrsa: above 1
means dnnrsa is faster). Numbers are checked equal before they are timed.

    python benchmarks/bench_brain.py
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import dnnrsa
from dnnrsa import neural, zoo
from dnnrsa.datasets import simulated_fmri, synthetic_faces


def timed(fn, repeat: int = 1):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    print(f"  ... {getattr(fn, '__name__', 'call')}: {best:.2f} s", file=sys.stderr, flush=True)
    return best, out


def nilearn_betas(sim, mask):
    """The plain nilearn way: one FirstLevelModel per run, one contrast per condition."""
    from nilearn.glm.first_level import FirstLevelModel
    from nilearn.maskers import NiftiMasker

    masker = NiftiMasker(mask, standardize=None).fit()
    rows = []
    for bold, events in zip(sim.bold, sim.events, strict=True):
        glm = FirstLevelModel(t_r=sim.t_r, mask_img=mask, minimize_memory=False)
        glm.fit(bold, events)
        names = list(glm.design_matrices_[0].columns)
        for trial_type in sorted(events["trial_type"].unique()):
            con = np.zeros(len(names))
            con[names.index(trial_type)] = 1.0
            img = glm.compute_contrast(con, output_type="effect_size")
            rows.append(masker.transform(img).ravel())
    return np.vstack(rows)


def rsatoolbox_crossnobis(acts):
    from rsatoolbox.data import Dataset, prec_from_residuals
    from rsatoolbox.rdm import calc_rdm

    ds = Dataset(acts.X.astype(np.float64),
                 obs_descriptors={"image_id": acts.metadata["image_id"].astype(str).to_numpy(),
                                  "run": acts.metadata["run"].to_numpy()})
    prec = prec_from_residuals(acts.residuals.data, dof=acts.residuals.dof)
    return calc_rdm(ds, method="crossnobis", descriptor="image_id", cv_descriptor="run",
                    noise=prec)


def sklearn_decode(acts):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, g = acts.to_arrays("identity", "run")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return cross_val_score(clf, X, y, groups=g, cv=LeaveOneGroupOut()).mean()


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    faces = synthetic_faces(n_identities=4, expressions=("AF", "AN", "DI", "HA", "NE", "SA"),
                            sessions=("A",), size=32)
    net = zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)
    layers = dnnrsa.extract(net, faces, ["dense1", "dense2", "dense3"], device="cpu")
    rows = []

    t, sim = timed(lambda: simulated_fmri(faces, source=layers["dense2"], n_runs=6,
                                          n_voxels=2000, snr=1.0, seed=0))
    n_scans = [img.shape[-1] for img in sim.bold]
    rows.append(("simulated_fmri", t, None, ""))

    t, roi = timed(lambda: neural.from_runs(sim.bold, sim.events, mask=sim.mask, t_r=sim.t_r,
                                            factors=sim.conditions))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tb, ref = timed(lambda: nilearn_betas(sim, sim.mask))
        with threadpool_limits(limits=1, user_api="blas"):
            tb1, _ = timed(lambda: nilearn_betas(sim, sim.mask))
    order = np.lexsort((roi.metadata["trial_type"].astype(str), roi.metadata["run"]))
    same = np.allclose(roi.X[order], ref, rtol=1e-6, atol=1e-8)
    rows.append(("neural.from_runs (betas + residuals)", t, tb,
                 f"nilearn FirstLevelModel + compute_contrast per condition, default BLAS "
                 f"threads; equal: {same}"))
    rows.append(("  same, baseline with 1 BLAS thread", t, tb1,
                 "the whole gain is from_runs' BLAS thread limit"))

    region = neural.from_runs(sim.bold, sim.events, mask=sim.region_mask, t_r=sim.t_r,
                              factors=sim.conditions)
    t, ours = timed(lambda: dnnrsa.rdm(region, method="crossnobis", conditions="image_id",
                                       cv="run", noise="residuals"), repeat=3)
    tb, ref = timed(lambda: rsatoolbox_crossnobis(region))
    same = np.allclose(ours.dissimilarities, ref.dissimilarities, rtol=1e-6)
    rows.append(("rdm crossnobis noise='residuals' (1000 vox)", t, tb,
                 f"rsatoolbox calc_rdm + prec_from_residuals; equal: {same}"))

    t, res = timed(lambda: dnnrsa.decode(roi, target="identity", cv="run", readout="linear"))
    tb, ref = timed(lambda: sklearn_decode(roi))
    rows.append(("decode identity, cv='run' (2000 vox)", t, tb,
                 f"sklearn cross_val_score LOGO; acc {res.accuracy:.3f} vs {ref:.3f}"))

    t, gen = timed(lambda: dnnrsa.generalize(region, target="identity", across="viewpoint",
                                             cv="run"))
    rows.append(("generalize identity across viewpoint, cv='run'", t, None,
                 f"diagonal {gen.diagonal:.2f}, off-diagonal {gen.off_diagonal:.2f}"))

    subjects = [region] + [
        neural.from_runs(s.bold, s.events, mask=s.region_mask, t_r=s.t_r,
                         factors=s.conditions)
        for s in (simulated_fmri(faces, source=layers["dense2"], n_runs=6, n_voxels=2000,
                                 snr=1.0, seed=k) for k in (1, 2))
    ]
    t, table = timed(lambda: dnnrsa.compare_to_brain(layers, {"region": subjects},
                                                     conditions="image_id", n_boot=1000))
    best = table.loc[table["value"].idxmax()]
    rows.append(("compare_to_brain 3 layers x 3 subjects, 1000 boot", t, None,
                 f"best {best['layer']} {best['value']:.3f}, ceiling "
                 f"[{best['ceiling_low']:.3f}, {best['ceiling_high']:.3f}]"))

    for backend in ("sklearn", "himalaya"):
        t, enc = timed(lambda b=backend: dnnrsa.encode(layers, {"region": region},
                                                       conditions="image_id", backend=b))
        top = enc.table.loc[enc.table["mean_r"].idxmax()]
        rows.append((f"encode 3 layers -> 1000 vox, {backend}", t, None,
                     f"best {top['layer']} r={top['mean_r']:.3f}"))

    print(f"subject: {len(sim.bold)} runs x {n_scans} volumes, {roi.n_features} voxels, "
          f"{len(faces)} conditions; layers {({k: v.n_features for k, v in layers.items()})}")
    print(f"{'call':50s} {'dnnrsa s':>9s} {'baseline s':>10s} {'ratio':>6s}  note")
    for name, t, tb, note in rows:
        base = f"{tb:10.2f}" if tb is not None else f"{'':>10s}"
        ratio = f"{tb / t:6.1f}" if tb is not None else f"{'':>6s}"
        print(f"{name:50s} {t:9.2f} {base} {ratio}  {note}")


if __name__ == "__main__":
    main()
