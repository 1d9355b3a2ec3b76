"""noise="residuals" of dnnrsa.rsa.rdm: the noise precision of a first-level GLM's residuals,
checked against rsatoolbox 0.3.2's prec_from_residuals + calc_rdm."""

import numpy as np
import pandas as pd
import pytest
import torch
from rsatoolbox.data import Dataset
from rsatoolbox.data.noise import prec_from_residuals, prec_from_unbalanced
from rsatoolbox.rdm import calc_rdm

from dnnrsa import Activations, Residuals
from dnnrsa.rsa import NOISE_ESTIMATES, rdm
from dnnrsa.rsa import _rdm as _rdm_module
from dnnrsa.rsa._backend import TorchOps

RTOL = 1e-8


def _design(n_cond=6, n_runs=3):
    return pd.DataFrame([dict(stim=f"s{c:02d}", run=f"r{r}", sex="mf"[c % 2])
                         for r in range(n_runs) for c in range(n_cond)])


def _residuals(rng, n_res, n_feat, rank=4):
    """Residual time series with strong correlations between features (low-rank shared
    noise plus a little private noise), so that shrinkage_diag shrinks strictly between 0
    and 1 whether there are more scans than features or fewer."""
    shared = rng.normal(size=(n_res, rank)) @ rng.normal(size=(rank, n_feat))
    return shared + 0.5 * rng.normal(size=(n_res, n_feat)) * rng.uniform(0.5, 2, n_feat)


def _pair(rng, n_res, n_feat, dof_lost=6):
    meta = _design()
    X = rng.normal(size=(len(meta), n_feat)) + rng.normal(size=(1, n_feat)) * 3
    res = _residuals(rng, n_res, n_feat)
    dof = n_res - dof_lost
    acts = Activations(X, meta, {"region": "FFA"}, residuals=Residuals(res, dof))
    ds = Dataset(X, obs_descriptors={c: meta[c].to_numpy() for c in meta.columns})
    return acts, ds, res, dof


def _assert_same(ours, ref, rtol=RTOL):
    assert list(ours.pattern_descriptors["stim"]) == list(ref.pattern_descriptors["stim"])
    a, b = ours.get_vectors(), ref.get_vectors()
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


@pytest.mark.parametrize("n_res,n_feat", [(90, 30), (20, 60)])  # more / fewer scans
@pytest.mark.parametrize("method", ["crossnobis", "mahalanobis"])
def test_residuals_noise_equals_rsatoolbox_prec_from_residuals(rng, n_res, n_feat, method):
    acts, ds, res, dof = _pair(rng, n_res, n_feat)
    prec = prec_from_residuals(res, dof=dof, method="shrinkage_diag")
    kw = dict(cv_descriptor="run") if method == "crossnobis" else {}
    ref = calc_rdm(ds, method=method, descriptor="stim", noise=prec, **kw)
    cv = "run" if method == "crossnobis" else None
    ours = rdm(acts, method=method, conditions="stim", cv=cv, noise="residuals")
    _assert_same(ours, ref, rtol=1e-7)  # rsatoolbox inverts the p x p matrix explicitly
    assert ours.descriptors["noise"] == "residuals"
    assert ours.descriptors["noise_dof"] == dof
    assert 0 < ours.descriptors["noise_shrinkage"] < 1  # a real shrinkage, not a clip
    # the same precision given as a matrix (the dense path) gives the same RDM
    _assert_same(rdm(acts, method=method, conditions="stim", cv=cv, noise=prec), ref)


def test_residuals_noise_differs_from_the_condition_mean_estimate(rng):
    """The GLM residuals, not the scatter of the observations, set the precision: a feature
    made 30x noisier in the residuals only is down-weighted."""
    acts, ds, res, dof = _pair(rng, 60, 20)
    loud = res.copy()
    loud[:, 0] *= 30
    loud_acts = Activations(acts.X, acts.metadata, residuals=Residuals(loud, dof))
    a = rdm(acts, method="mahalanobis", conditions="stim", noise="residuals").get_vectors()
    b = rdm(loud_acts, method="mahalanobis", conditions="stim", noise="residuals").get_vectors()
    assert not np.allclose(a, b)
    ref = calc_rdm(ds, method="mahalanobis", descriptor="stim",
                   noise=prec_from_residuals(loud, dof=dof, method="shrinkage_diag"))
    np.testing.assert_allclose(b, ref.get_vectors(), rtol=1e-7)
    # the condition-mean estimate ignores acts.residuals altogether
    ours = rdm(loud_acts, method="mahalanobis", conditions="stim", noise="shrinkage_diag")
    ref = calc_rdm(ds, method="mahalanobis", descriptor="stim",
                   noise=prec_from_unbalanced(ds, "stim", method="shrinkage_diag"))
    _assert_same(ours, ref, rtol=1e-7)


def test_each_item_of_a_list_uses_its_own_residuals(rng):
    a, _, _, _ = _pair(rng, 50, 25)
    b, _, res_b, dof_b = _pair(rng, 15, 25)
    stacked = rdm([a, b], method="crossnobis", conditions="stim", cv="run", noise="residuals")
    one = [rdm(x, method="crossnobis", conditions="stim", cv="run", noise="residuals")
           for x in (a, b)]
    np.testing.assert_allclose(stacked.get_vectors(),
                               np.vstack([r.get_vectors() for r in one]), rtol=1e-12)
    swapped = Activations(a.X, a.metadata, residuals=Residuals(res_b, dof_b))
    other = rdm(swapped, method="crossnobis", conditions="stim", cv="run", noise="residuals")
    assert not np.allclose(other.get_vectors(), one[0].get_vectors())


@pytest.mark.parametrize("n_res", [80, 12])  # the QR-compressed factor and R itself
def test_torch_path_equals_numpy_path(rng, monkeypatch, n_res):
    acts, _, _, _ = _pair(rng, n_res, 30)
    kw = dict(method="crossnobis", conditions="stim", cv="run", noise="residuals")
    a = rdm(acts, device="cpu", **kw).get_vectors()
    monkeypatch.setattr(_rdm_module, "get_ops", lambda device: TorchOps(torch.device("cpu")))
    b = rdm(acts, **kw).get_vectors()
    np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12 * np.abs(a).max())


def test_noise_estimates_lists_residuals():
    assert NOISE_ESTIMATES[-1] == "residuals"
    assert set(NOISE_ESTIMATES) == {"shrinkage", "shrinkage_eye", "shrinkage_diag", "diag",
                                    "residuals"}


def test_residuals_noise_bad_input_messages(rng):
    acts, ds, res, dof = _pair(rng, 30, 10)
    layer = Activations(acts.X, acts.metadata, {"layer": "conv3", "model": "alexnet"})
    fix = r"dnnrsa\.neural\.from_runs.*'shrinkage', 'shrinkage_diag' or 'diag'.*precision matrix"
    with pytest.raises(ValueError, match=r"argument acts \(a network layer \('conv3'\)\) "
                       r"has none\. Brain data from " + fix):
        rdm(layer, method="mahalanobis", conditions="stim", noise="residuals")
    with pytest.raises(ValueError, match=r"argument acts \(Dataset\) has none.*" + fix):
        rdm(ds, method="crossnobis", conditions="stim", cv="run", noise="residuals")
    plain = Activations(acts.X, acts.metadata)
    with pytest.raises(ValueError, match=r"argument acts\[1\] \(Activations\) has none"):
        rdm([acts, plain], method="crossnobis", conditions="stim", cv="run",
            noise="residuals")
    with pytest.raises(ValueError, match="noise applies to method 'mahalanobis' or "
                       "'crossnobis' only"):
        rdm(acts, method="correlation", conditions="stim", noise="residuals")
    with pytest.raises(ValueError, match=r"Unknown value 'residual' for argument noise\..*"
                       r"residuals\}\. 'residuals' needs brain data with GLM residuals"):
        rdm(acts, method="mahalanobis", conditions="stim", noise="residual")
    dead = res.copy()
    dead[:, 4] = 0.0  # a voxel the GLM explains completely
    flat = Activations(acts.X, acts.metadata, residuals=Residuals(dead, dof))
    with pytest.raises(ValueError, match=r"noise='residuals' divides.*1 of 10 features have "
                       r"zero residual variance.*Drop those features"):
        rdm(flat, method="mahalanobis", conditions="stim", noise="residuals")
    bad = res.copy()
    bad[3, 2] = np.nan
    nan = Activations(acts.X, acts.metadata, residuals=Residuals(bad, dof))
    with pytest.raises(ValueError, match="GLM residuals contain NaN or Inf"):
        rdm(nan, method="mahalanobis", conditions="stim", noise="residuals")
