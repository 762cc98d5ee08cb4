import pytest
import torch

from fewgan import config as config_mod
from fewgan.nets import build_networks
from fewgan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from fewgan.nets.mlp import MLPDiscriminator, MLPGenerator


@pytest.mark.parametrize("res", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(res, channels):
    g = DCGANGenerator(nz=100, channels=channels, resolution=res, width=8)
    d = DCGANDiscriminator(channels=channels, resolution=res, width=8)
    x = g(torch.randn(3, 100))
    assert x.shape == (3, channels, res, res)
    assert x.abs().max() <= 1  # tanh output
    assert d(x).shape == (3,)


@pytest.mark.parametrize("res", [32, 64, 128])
def test_dcgan_channel_plan(res):
    # docs/methods.md §1: 64 px G starts at 8g, 32 px at 4g; D ends at 8d / 4d on a 4x4 map
    g = DCGANGenerator(nz=100, resolution=res, width=64)
    first = g.net[0]
    assert first.out_channels == 64 * res // 8
    d = DCGANDiscriminator(resolution=res, width=64)
    assert d.feature_channels == 64 * res // 8
    assert d.features(torch.zeros(1, 3, res, res)).shape[-2:] == (4, 4)


@pytest.mark.parametrize("res", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_mlp_shapes(res, channels):
    g = MLPGenerator(nz=100, channels=channels, resolution=res, width=8, batchnorm=True)
    d = MLPDiscriminator(channels=channels, resolution=res, width=8)
    x = g(torch.randn(4, 100))
    assert x.shape == (4, channels, res, res)
    assert d(x).shape == (4,)


def test_mlp_default_sizes():
    g = MLPGenerator(width=64)
    sizes = [m.out_features for m in g.net if isinstance(m, torch.nn.Linear)]
    assert sizes == [256, 512, 1024, 3 * 32 * 32]
    d = MLPDiscriminator(width=64)
    sizes = [m.out_features for m in d.modules() if isinstance(m, torch.nn.Linear)]
    assert sizes == [1024, 512, 256, 1]


def test_dcgan_init_statistics():
    g = DCGANGenerator(width=64)
    w = g.net[3].weight
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002


def test_bad_resolution_is_clear():
    with pytest.raises(ValueError, match="power of two"):
        DCGANGenerator(resolution=48)


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_spectral_norm_top_singular_value(arch):
    cfg = config_mod.from_dict({"model": {"arch": arch, "spectral_norm": True, "d_width": 8}})
    _, d = build_networks(cfg)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())  # §11: no BN with SN
    d.train()
    x = torch.randn(4, 3, 32, 32)
    for _ in range(30):  # power iterations converge over training forwards
        d(x)
    d.eval()
    checked = 0
    for m in d.modules():
        if hasattr(m, "parametrizations"):
            w = m.weight.detach().reshape(m.weight.shape[0], -1)
            top = torch.linalg.svdvals(w)[0].item()
            assert 0.9 <= top <= 1.1, top
            checked += 1
    assert checked >= 4


def test_unknown_arch_lists_known():
    cfg = config_mod.from_dict({"model": {"arch": "resnet"}})
    with pytest.raises(KeyError, match="dcgan, fastgan, mlp"):
        build_networks(cfg)
