import numpy as np
import pytest
import torch
import torchvision

import dnnrsa
from dnnrsa import zoo


@pytest.fixture
def net():
    torch.manual_seed(0)
    return zoo.build("ccn2022", n_classes=7, growth=8, input_size=32)


def test_shapes_and_values_match_a_direct_forward_pass(net, toy_stimuli):
    acts = dnnrsa.extract(net, toy_stimuli, ["pixels", "conv1", "dense1", "dense2", "dense3"],
                          batch_size=5, device="cpu")
    assert list(acts) == ["pixels", "conv1", "dense1", "dense2", "dense3"]
    assert acts["conv1"].shape == (16, 32, 32)
    assert acts["dense1"].shape == (40, 32, 32)
    assert acts["dense2"].shape == (44, 16, 16)
    assert acts["dense3"].shape == (46, 8, 8)
    x = toy_stimuli.tensor()
    with torch.no_grad():
        net.eval()
        c1 = net.conv1(x)
        d1 = net.dense1(c1)
        d2 = net.dense2(net.trans1(d1))
        d3 = net.dense3(net.trans2(d2))
    for name, ref in [("conv1", c1), ("dense1", d1), ("dense2", d2), ("dense3", d3)]:
        np.testing.assert_allclose(acts[name].data, ref.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(acts["pixels"].data, toy_stimuli.images)
    # the dense block output includes its input (concatenation)
    np.testing.assert_allclose(acts["dense1"].data[:, :16], acts["conv1"].data, atol=1e-6)
    a = acts["dense3"]
    assert a.X.shape == (24, 46 * 8 * 8)
    assert a.metadata.equals(toy_stimuli.metadata)
    assert a.provenance["layer"] == "dense3" and a.provenance["stimuli"] == "toy"
    assert len(a.provenance["weights_sha256"]) == 16


def test_mode_is_restored_and_dropout_is_off(net, toy_stimuli):
    net.train()
    a = dnnrsa.extract(net, toy_stimuli, "dense2", device="cpu")
    b = dnnrsa.extract(net, toy_stimuli, "dense2", batch_size=7, device="cpu")
    assert net.training
    np.testing.assert_allclose(a["dense2"].data, b["dense2"].data, rtol=1e-5, atol=1e-6)


def test_layers_after_the_last_requested_are_not_run(net, toy_stimuli):
    calls = []
    net.dense2.register_forward_hook(lambda *args: calls.append(1))
    dnnrsa.extract(net, toy_stimuli, ["conv1", "dense1"], device="cpu")
    assert calls == []


def test_memmap_output(net, toy_stimuli, tmp_path):
    ref = dnnrsa.extract(net, toy_stimuli, ["dense3"], device="cpu")["dense3"]
    mm = dnnrsa.extract(net, toy_stimuli, ["dense3"], device="cpu", memmap_dir=tmp_path)["dense3"]
    assert isinstance(mm.data, np.memmap)
    np.testing.assert_array_equal(mm.data, ref.data)
    np.testing.assert_array_equal(np.load(mm.provenance["cache"]), ref.data)


def test_any_module_of_any_network(toy_stimuli):
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None, num_classes=4)
    rgb = dnnrsa.StimulusSet(np.repeat(toy_stimuli.images, 3, axis=1), toy_stimuli.metadata)
    acts = dnnrsa.extract(resnet, rgb, ["layer1.0.conv1", "avgpool"], device="cpu")
    assert acts["layer1.0.conv1"].shape == (64, 8, 8)
    assert acts["avgpool"].shape == (512, 1, 1)
    with torch.no_grad():
        resnet.eval()
        x = rgb.tensor()
        ref = resnet.layer1[0].conv1(resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(x)))))
    np.testing.assert_allclose(acts["layer1.0.conv1"].data, ref.numpy(), rtol=1e-5, atol=1e-5)
    assert "layer4.1.bn2" in dnnrsa.layer_names(resnet)


def test_bad_layers_and_stimuli(net, toy_stimuli):
    with pytest.raises(ValueError, match=r"Unknown value 'dense4' for argument layers.*dense3"):
        dnnrsa.extract(net, toy_stimuli, ["dense4"])
    with pytest.raises(ValueError, match="empty"):
        dnnrsa.extract(net, toy_stimuli, [])
    big = dnnrsa.StimulusSet(np.zeros((2, 1, 48, 48)), toy_stimuli.metadata.iloc[:2])
    with pytest.raises(ValueError, match=r"shape \(1, 48, 48\).*\(1, 32, 32\)"):
        dnnrsa.extract(net, big, ["conv1"])
    resnet = torchvision.models.resnet18(weights=None)
    with pytest.raises(ValueError, match="1-channel images.*3 channels"):
        dnnrsa.extract(resnet, toy_stimuli, ["layer1"])
    with pytest.raises(TypeError, match="StimulusSet"):
        dnnrsa.extract(net, toy_stimuli.images, ["conv1"])
    with pytest.raises(ValueError, match="cuda"):
        if torch.cuda.is_available():
            raise ValueError("cuda present; nothing to check")
        dnnrsa.extract(net, toy_stimuli, ["conv1"], device="cuda")


@pytest.mark.gpu
def test_gpu_extraction_matches_cpu(net, toy_stimuli):
    cpu = dnnrsa.extract(net, toy_stimuli, ["dense3"], device="cpu")["dense3"]
    gpu = dnnrsa.extract(net, toy_stimuli, ["dense3"], device="cuda")["dense3"]
    np.testing.assert_allclose(cpu.data, gpu.data, rtol=1e-3, atol=1e-4)
    assert next(net.parameters()).device.type == "cpu"
