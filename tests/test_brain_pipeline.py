"""The brain path end to end on a simulated subject with a known answer: runs -> GLM ->
Activations -> the same decoding, RSA and encoding as network layers."""

import numpy as np
import pandas as pd
import pytest
import torch

import dnnrsa
from dnnrsa import neural, zoo
from dnnrsa.datasets import simulated_fmri, synthetic_faces
from dnnrsa.rsa import compare, compare_to_brain, rdm

LAYERS = ["conv1", "dense1", "dense2", "dense3"]


@pytest.fixture(scope="module")
def faces():
    """4 identities x 2 expressions x 3 viewpoints, one session: 24 faces with image_id."""
    return synthetic_faces(n_identities=4, expressions=("HA", "SA"), sessions=("A",), size=32)


@pytest.fixture(scope="module")
def layers(faces):
    torch.manual_seed(0)
    net = zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)
    return dnnrsa.extract(net, faces, LAYERS, device="cpu")


@pytest.fixture(scope="module")
def faces48():
    """4 identities x 4 expressions x 3 viewpoints: 48 faces, for RSA's finer comparisons."""
    return synthetic_faces(n_identities=4, expressions=("AN", "HA", "NE", "SA"),
                           sessions=("A",), size=32)


@pytest.fixture(scope="module")
def layers48(faces48):
    torch.manual_seed(0)
    net = zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)
    return dnnrsa.extract(net, faces48, LAYERS, device="cpu")


def _regions(sim, **kw):
    """The responsive region and the noise region of a simulated subject."""
    out = {}
    for name, mask in (("region", sim.region_mask), ("noise", sim.noise_mask)):
        out[name] = neural.from_runs(sim.bold, sim.events, mask=mask, t_r=sim.t_r,
                                     factors=sim.conditions, region=name, **kw)
    return out


def test_glm_betas_recover_the_planted_amplitudes(faces):
    sim = simulated_fmri(faces, source="identity", n_runs=3, n_voxels=200, snr=2.0, seed=1)
    roi = neural.from_runs(sim.bold, sim.events, mask=sim.mask, t_r=sim.t_r,
                           factors=sim.conditions, signal_scaling=False)
    assert len(roi) == 3 * len(faces) and roi.n_features == 200
    order = {t: i for i, t in enumerate(sim.conditions["trial_type"])}
    truth = sim.amplitudes[[order[t] for t in roi.metadata["trial_type"]]]
    n_region = int(np.asarray(sim.region_mask.dataobj).sum())
    # NiftiMasker order of the brain mask puts the low-x slab (the region) first
    r = np.corrcoef(roi.X[:, :n_region].ravel(), truth[:, :n_region].ravel())[0, 1]
    assert r > 0.85
    # noise voxels: the betas scatter around 0 (their true amplitude)
    noise = roi.X[:, n_region:]
    assert abs(noise.mean()) < 0.1 * noise.std()
    # the stimulus factors came through the factor table
    assert (roi.metadata["identity"].astype(str).to_numpy()
            == sim.conditions.set_index("trial_type").loc[roi.metadata["trial_type"],
                                                          "identity"].to_numpy()).all()


def test_decoding_beats_chance_inside_the_region_and_not_outside(faces):
    sim = simulated_fmri(faces, source="identity", n_runs=4, n_voxels=200, snr=0.7, seed=2)
    regions = _regions(sim)
    inside = dnnrsa.decode(regions["region"], target="identity", cv="run", readout="linear",
                           n_permutations=19)
    outside = dnnrsa.decode(regions["noise"], target="identity", cv="run", readout="linear",
                            n_permutations=19)
    assert inside.accuracy > 0.8 and inside.p_value == pytest.approx(1 / 20)
    assert abs(outside.accuracy - 0.25) < 0.15 and outside.p_value > 0.05
    assert inside.provenance["region"] == "region" and inside.held_out == ["1", "2", "3", "4"]


def test_crossnobis_rdm_of_the_region_matches_the_planted_rdm(faces, layers):
    sim = simulated_fmri(faces, source=layers["dense2"], n_runs=4, n_voxels=300, snr=1.0,
                         seed=3)
    regions = _regions(sim)
    planted = rdm(layers["dense2"], method="euclidean", conditions="image_id")
    scores = {}
    for name, acts in regions.items():
        brain = rdm(acts, method="crossnobis", conditions="image_id", cv="run",
                    noise="residuals")
        scores[name] = compare(planted, brain, method="spearman")[0, 0]
    assert scores["region"] > 0.7 and abs(scores["noise"]) < 0.25


def test_compare_to_brain_recovers_the_generating_layer(faces48, layers48):
    layers = layers48
    subjects = [_regions(simulated_fmri(faces48, source=layers["dense2"], n_runs=4,
                                        n_voxels=300, snr=4.0, seed=s))
                for s in range(3)]
    brain = {roi: [s[roi] for s in subjects] for roi in ("region", "noise")}
    table = compare_to_brain(layers, brain, conditions="image_id", n_boot=400)
    region = table[table["roi"] == "region"].set_index("layer")
    assert region["value"].idxmax() == "dense2"
    # and every other layer is worse by a bootstrap test over subjects and faces (Holm)
    others = region.drop("dense2")
    assert (others["vs_best_ci_high"] < 0).all() and (others["p_vs_best_holm"] < 0.05).all()
    # the ceiling is the brain data's own: every layer of one ROI shares it
    assert region["ceiling_low"].nunique() == 1 and region["ceiling_low"].iloc[0] > 0.9
    noise = table[table["roi"] == "noise"]
    assert (noise["ci_low"] < 0).all() and (noise["ci_high"] > 0).all()


def test_encode_recovers_the_generating_layer(faces, layers):
    """The generating layer predicts best among candidates of different geometry: the same
    features given to the wrong stimuli, and one-hot factor codes. (The other layers of
    this untrained net predict a dense2 region as well as dense2 does, r within 0.02:
    ridge reweights features, and random layers of one net share their kernel over 24
    faces; compare_to_brain tells them apart, see above.)"""
    sim = simulated_fmri(faces, source=layers["dense2"], n_runs=4, n_voxels=200, snr=2.0,
                         seed=4)
    dense2 = layers["dense2"]
    rows = np.random.default_rng(0).permutation(len(dense2))
    codes = pd.get_dummies(faces.metadata[["identity", "expression", "viewpoint"]]
                           .astype(str)).to_numpy(float)
    candidates = {
        "dense2": dense2,
        "dense2-shuffled": dnnrsa.Activations(dense2.X[rows], dense2.metadata),
        "factor-codes": dnnrsa.Activations(codes, faces.metadata),
    }
    res = dnnrsa.encode(candidates, _regions(sim), conditions="image_id")
    table = res.table.set_index(["roi", "layer"])["mean_r"]
    region = table.loc["region"]
    assert region.idxmax() == "dense2" and region["dense2"] > 0.45
    assert region["dense2"] - region.drop("dense2").max() > 0.1
    assert abs(region["dense2-shuffled"]) < 0.1
    assert (table.loc["noise"].abs() < 0.1).all()


def test_to_nifti_from_images_round_trip_is_exact(faces, layers, tmp_path):
    sim = simulated_fmri(faces, source="identity", n_runs=2, n_voxels=120, seed=5)
    roi = _regions(sim)["region"]
    # a layer's dead units are constant columns, which from_images refuses (as it refuses
    # constant voxels) unless asked to drop them; the round trip is checked on live units
    dense3 = layers["dense3"]
    live = dnnrsa.Activations(dense3.X[:, np.ptp(dense3.X, axis=0) > 0], dense3.metadata,
                              dense3.provenance)
    for acts, folder in ((roi, tmp_path / "roi"), (live, tmp_path / "layer")):
        paths = acts.to_nifti(folder)
        back = neural.from_images(paths["responses"], paths["events"], mask=paths["mask"])
        assert back.X.dtype == acts.X.dtype
        np.testing.assert_array_equal(back.X, acts.X)
        table = pd.read_csv(paths["events"], sep="\t")
        assert list(table.columns) == list(acts.metadata.columns)
