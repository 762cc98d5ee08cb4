"""Projected GAN (docs/methods.md §20): frozen Lite0 trunk + frozen CCM/CSM + trainable SN heads; FastGAN-lite G."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fewgan import config as config_mod
from fewgan.nets.fastgan import FastGANGenerator
from fewgan.nets.projected import TAP_CHANNELS, EffNetLiteTrunk, ProjectedDiscriminator
from fewgan.variants import build_variant

from conftest import assert_resume_exact, tiny_config


def tiny_d(input_size=32, channels=3):
    return ProjectedDiscriminator(channels, input_size, proj_ch=8, width=8)


def images(n, res, seed=0, channels=3):
    return torch.rand(n, channels, res, res, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def projected_cfg(source, **over):
    base = {"train.variant": "projected", "model.proj_input": 32, "model.proj_ch": 8, "train.batch_size": 4,
            "loss.kind": "hinge", "aug.policy": "color,translation,cutout", "train.beta1_d": 0.0,
            "train.beta2_d": 0.99, "train.beta1_g": 0.0, "train.beta2_g": 0.99}
    base.update(over)
    return tiny_config(source, **base)


def test_trunk_taps_are_the_papers():
    trunk = EffNetLiteTrunk()
    taps = trunk(torch.zeros(1, 3, 64, 64))
    assert tuple(t.shape[1] for t in taps) == TAP_CHANNELS == (24, 40, 112, 320)
    assert [t.shape[-1] for t in taps] == [16, 8, 4, 2]  # /4, /8, /16, /32


def test_normalisation_matches_the_metric_backbone():
    # x = u / 127.5 - 1 must reach the trunk as the metric backbone's (u - 127) / 128
    u = torch.randint(0, 256, (2, 3, 32, 32)).float()
    d = tiny_d(32)
    assert torch.allclose(d.preprocess(u / 127.5 - 1), (u - 127) / 128, atol=1e-6)


def test_backbone_frozen_no_grad_and_eval_after_train():
    d = tiny_d(32)
    d.train()
    assert d.training and all(h.training for h in d.heads.modules())
    assert not any(m.training for m in d.trunk.modules())
    assert not any(m.training for m in d.projector.modules())
    frozen = list(d.trunk.parameters()) + list(d.projector.parameters())
    assert frozen and not any(p.requires_grad for p in frozen)
    # the optimiser's share: the heads, exactly
    assert {id(p) for p in d.trainable_parameters()} == {id(p) for p in d.heads.parameters()}
    assert {id(p) for p in d.parameters() if p.requires_grad} == {id(p) for p in d.heads.parameters()}
    # the trunk is not in the module tree: no parameters(), no state_dict()
    assert not any(k.startswith("trunk") for k in d.state_dict())
    assert not {id(p) for p in d.trunk.parameters()} & {id(p) for p in d.parameters()}
    x = images(4, 16).requires_grad_(True)
    d(x).sum().backward()
    assert all(p.grad is None for p in frozen)
    assert all(p.grad is not None for p in d.heads.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradients reach G through the frozen parts
    d.eval()
    d.train(True)
    assert not d.trunk.training and not any(m.training for m in d.trunk.modules())


def test_features_deterministic_and_batch_independent():
    d = tiny_d(64)
    x = images(4, 32, seed=1)
    with torch.no_grad():
        batch = d.features(x)
        again = d.features(x)
        alone = [d.features(x[i:i + 1]) for i in range(4)]
        taps = d.trunk(d.preprocess(x))
        taps_alone = [d.trunk(d.preprocess(x[i:i + 1])) for i in range(4)]
    for a, b in zip(batch, again):
        assert torch.equal(a, b)
    for i in range(4):
        for a, b in zip(batch, alone[i]):
            assert torch.allclose(a[i:i + 1], b, atol=1e-5, rtol=0)
        for a, b in zip(taps, taps_alone[i]):
            assert torch.allclose(a[i:i + 1], b, atol=1e-5, rtol=0)
    # a second D (a fresh copy of the trunk) sees the same trunk features
    with torch.no_grad():
        other = tiny_d(64).trunk(d.preprocess(x))
    for a, b in zip(taps, other):
        assert torch.equal(a, b)


# side of each head's logit map per backbone input size (the authors' 224: 4x4 everywhere)
LOGIT_SIDES = {32: [5, 5, 1, 1], 64: [5, 5, 5, 1], 96: [3, 3, 3, 3], 128: [5, 5, 5, 5], 224: [4, 4, 4, 4]}


@pytest.mark.parametrize("data_res", [32, 64, 128])
@pytest.mark.parametrize("input_size", [32, 64, 128, 224])
def test_head_shapes(data_res, input_size):
    d = tiny_d(input_size)
    x = images(2, data_res)
    with torch.no_grad():
        feats = d.features(x)
        logits = d.head_logits(x)
        out = d(x)
    assert [tuple(f.shape[1:]) for f in feats] == [
        (c, input_size // 2 ** (i + 1), input_size // 2 ** (i + 1)) for i, c in enumerate((8, 8, 16, 32))]
    sides = LOGIT_SIDES[input_size]
    assert [tuple(lg.shape) for lg in logits] == [(2, 1, s, s) for s in sides]
    assert out.shape == (2, sum(s * s for s in sides))


def test_grey_input_and_bad_input_size():
    d = tiny_d(32, channels=1)
    assert d(images(2, 16, channels=1)).shape == (2, 5 * 5 * 2 + 2)
    with pytest.raises(ValueError, match="multiple of 32"):
        ProjectedDiscriminator(3, 48)


@pytest.mark.parametrize("res,gates", [(32, 1), (64, 2), (128, 3)])
def test_fastgan_generator_shapes_and_sle(res, gates):
    g = FastGANGenerator(nz=16, channels=3, resolution=res, width=8)
    x = g(torch.randn(2, 16))
    assert x.shape == (2, 3, res, res) and x.abs().max() <= 1
    assert len(g.sle) == gates
    assert len(FastGANGenerator(nz=16, resolution=res, width=8, sle=False).sle) == 0
    # the gates are live: changing the gate from the 4x4 map changes the image
    before = g.eval()(torch.ones(1, 16))
    with torch.no_grad():
        w = g.sle[str(4 * 8)].main[1].parametrizations.weight.original
        w.add_(torch.randn(w.shape, generator=torch.Generator().manual_seed(0)))  # (a scale alone SN undoes)
    assert not torch.equal(before, g(torch.ones(1, 16)))


@pytest.mark.parametrize("arch", ["dcgan", "fastgan"])
def test_one_step_changes_only_g_and_heads(tiny_npz, tmp_path, arch):
    from fewgan.training.loop import Trainer

    tr = Trainer(projected_cfg(tiny_npz, **{"model.arch": arch, "train.steps": 1}), tmp_path / "run")
    v = tr.variant
    assert {id(p) for g in v.opt_d.param_groups for p in g["params"]} == {id(p) for p in v.D.heads.parameters()}

    def snap(m):
        return {k: t.detach().clone() for k, t in m.state_dict().items()}

    g0, heads0, proj0, trunk0 = snap(v.G), snap(v.D.heads), snap(v.D.projector), snap(v.D.trunk)
    tr.iteration()
    g1, heads1, proj1, trunk1 = snap(v.G), snap(v.D.heads), snap(v.D.projector), snap(v.D.trunk)
    assert all(torch.equal(proj0[k], proj1[k]) for k in proj0)
    assert all(torch.equal(trunk0[k], trunk1[k]) for k in trunk0)
    params = [k for k, _ in v.D.heads.named_parameters()]  # SN's raw weights, conv biases, BN affines
    assert params and all(not torch.equal(heads0[k], heads1[k]) for k in params)
    assert any(not torch.equal(g0[k], g1[k]) for k in g0)
    changed = [k for k in g0 if g0[k].dtype.is_floating_point and not torch.equal(g0[k], g1[k])]
    assert len(changed) > len(g0) // 2
    assert not any(p.grad is not None for p in v.D.trunk.parameters())
    assert not v.D.trunk.training and v.D.training


def test_resume_exact_and_checkpoint_without_trunk(tiny_npz, tmp_path):
    def make(steps):
        return projected_cfg(tiny_npz, **{"model.arch": "fastgan", "train.steps": steps, "train.ema": 0.9,
                                          "log.ckpt_every": 2})

    a, b = assert_resume_exact(make, tmp_path, steps=4)
    ck = sorted((tmp_path / "b" / "checkpoints").glob("*.safetensors"))[-1]
    keys = load_file(str(ck)).keys()
    assert any(k.startswith("D/heads.") for k in keys) and any(k.startswith("D/projector.") for k in keys)
    assert not any(k.startswith("D/trunk") for k in keys)
    # the trunks (reloaded, never saved) are the same weights
    ta, tb = a.variant.D.trunk.state_dict(), b.variant.D.trunk.state_dict()
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


@pytest.mark.parametrize("name", ["projected-dcgan", "projected-fastgan"])
def test_presets_build(name):
    cfg = config_mod.load_preset(name)
    assert cfg.train.variant == "projected" and cfg.loss.kind == "hinge"
    assert (cfg.train.beta1_d, cfg.train.beta2_d, cfg.train.lr_d) == (0.0, 0.99, 2e-4)
    assert cfg.aug.policy == "color,translation,cutout" and cfg.train.ema > 0
    v = build_variant(cfg)
    assert v.G_ema is not None and isinstance(v.D, ProjectedDiscriminator)
    assert v.D.input_size == cfg.model.proj_input
    n_opt = sum(p.numel() for g in v.opt_d.param_groups for p in g["params"])
    assert n_opt == sum(p.numel() for p in v.D.heads.parameters())
    with torch.no_grad():
        x = v.G.eval()(torch.randn(2, cfg.model.nz))
    assert x.shape == (2, 3, 32, 32)
