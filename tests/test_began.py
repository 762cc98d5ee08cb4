import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import tiny_config
from fewgan import config as config_mod
from fewgan.experiments.spec import load_spec
from fewgan.latents import build_latent
from fewgan.nets.began import BEGANAutoencoder, BEGANDecoder, SkipBlock
from fewgan.training.loop import Trainer, train
from fewgan.variants import build_variant
from fewgan.variants.began import StallDecay, k_update, m_global, scale_lrs

ROOT = Path(__file__).resolve().parents[1]


def began_config(source, **overrides):
    """tiny_config with the began variant and narrow auto-encoder nets (n 4, h 8, batch 4)."""
    base = {"model.arch": "began", "train.variant": "began", "latent.kind": "uniform",
            "began.hidden": 4, "began.h": 8, "train.batch_size": 4}
    return tiny_config(source, **{**base, **overrides})


# ----------------------------------------------------------------------------- k_t and M_global


def test_k_update_known_numbers():
    # k + lambda_k * (gamma * L(x) - L(G(z))) = 0.5 + 0.001 * (0.5 * 0.2 - 0.05)
    assert k_update(0.5, 0.2, 0.05, 0.5, 0.001) == pytest.approx(0.50005, abs=1e-15)
    assert k_update(0.5, 0.2, 0.15, 0.5, 0.001) == pytest.approx(0.49995, abs=1e-15)


@pytest.mark.parametrize("l_real,l_fake", [(1e9, 0.0), (0.0, 1e9), (1e30, 1e-30), (0.0, 0.0), (5.0, 1e12)])
def test_k_stays_in_unit_interval_under_extreme_losses(l_real, l_fake):
    for k0 in (0.0, 0.3, 1.0):
        k = k_update(k0, l_real, l_fake, 0.5, 0.001)
        assert 0.0 <= k <= 1.0
    # pinned exactly at the bounds, not merely near them
    assert k_update(0.9, 1e9, 0.0, 0.5, 0.001) == 1.0
    assert k_update(0.1, 0.0, 1e9, 0.5, 0.001) == 0.0


def test_variant_k_stays_in_unit_interval(tiny_npz):
    v = build_variant(began_config(tiny_npz, **{"began.lambda_k": 1.0}))
    gen = torch.Generator().manual_seed(0)
    seen = []
    for i in range(200):
        # feed the controller what d_step / g_step would have recorded: wildly swinging losses
        scale = 10 ** float(torch.empty(()).uniform_(-6, 6, generator=gen))
        u, w = torch.rand(2, generator=gen).tolist()
        v._l_real, v._l_fake_g = [scale * u], [w / scale]
        rec = v.end_iteration(i, {})
        assert 0.0 <= rec["k_t"] <= 1.0 and rec["k_t"] == v.k
        seen.append(v.k)
    assert 0.0 in seen and 1.0 in seen  # the clip was exercised at both ends


def test_m_global_known_numbers():
    # L(x) + |gamma L(x) - L(G(z))|
    assert m_global(0.2, 0.3, 0.5) == pytest.approx(0.2 + 0.2, abs=1e-15)
    assert m_global(0.4, 0.1, 0.5) == pytest.approx(0.4 + 0.1, abs=1e-15)
    assert m_global(0.4, 0.2, 0.5) == pytest.approx(0.4, abs=1e-15)  # at equilibrium only L(x) remains
    assert m_global(1.0, 0.0, 0.7) == pytest.approx(1.7, abs=1e-15)


def test_end_iteration_logs_controller_stats(tiny_npz):
    v = build_variant(began_config(tiny_npz, **{"began.gamma": 0.5, "began.lambda_k": 0.01, "began.k0": 0.2}))
    v._l_real, v._l_fake_g = [0.3, 0.5], [0.1]  # two D steps are averaged: L(x) = 0.4
    rec = v.end_iteration(0, {})
    assert rec["balance"] == pytest.approx(0.5 * 0.4 - 0.1)
    assert rec["m_global"] == pytest.approx(0.4 + 0.1)
    assert rec["k_t"] == pytest.approx(0.2 + 0.01 * 0.1)
    assert rec["m_global_ema"] == pytest.approx(rec["m_global"])  # the first value starts the EMA
    assert rec["lr_g"] == v.opt_g.param_groups[0]["lr"] and rec["lr_d"] == v.opt_d.param_groups[0]["lr"]


# ----------------------------------------------------------------------------- skip blocks


def _zeroed(block):
    with torch.no_grad():
        for p in block.parameters():
            p.zero_()
    return block


def test_additive_skip_block_with_zeroed_convs_is_identity():
    x = torch.randn(3, 8, 16, 16)
    assert torch.equal(_zeroed(SkipBlock(8, 8, "add"))(x), x)
    # the other modes with the same zeroed convs: concat keeps x beside f(x) = 0, none keeps only f(x)
    assert torch.equal(_zeroed(SkipBlock(8, 8, "concat"))(x), torch.cat([x, torch.zeros_like(x)], 1))
    assert torch.equal(_zeroed(SkipBlock(8, 8, "none"))(x), torch.zeros_like(x))


def test_skip_options_are_checked():
    with pytest.raises(ValueError, match="c_in == c_out"):
        SkipBlock(8, 4, "add")
    with pytest.raises(ValueError, match="began.skip must be one of none, add, concat, began"):
        BEGANDecoder(8, 3, 32, 4, "dense")


def test_skips_live_in_decoder_only():
    ae = BEGANAutoencoder(3, 32, n=4, h=8, skip="add")
    assert all(b.skip == "add" for b in ae.decoder.blocks)
    assert not any(isinstance(m, SkipBlock) for m in ae.encoder.modules())


# ----------------------------------------------------------------------------- learning-rate decay


def _adam(lr):
    return torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def test_lr_halves_exactly_when_the_stall_criterion_fires():
    # alpha = 1 makes the EMA the raw sequence, so the expected firing points are plain arithmetic:
    # 10 -> 9 is progress (>= 1 %); 8.95 is not 1 % below 9 (8.91), so from there the counter runs
    seq = [10.0, 9.0, 8.95, 8.95, 8.95, 8.95, 8.95, 8.95, 8.0, 8.0, 8.0, 8.0]
    decay = StallDecay(patience=3, alpha=1.0, min_rel=0.01)
    opt_g, opt_d = _adam(1e-4), _adam(4e-4)
    fired = []
    for i, m in enumerate(seq):
        if decay.update(m):
            scale_lrs((opt_g, opt_d), 0.5, 1e-6)
            fired.append(i)
        halvings = len(fired)
        assert opt_g.param_groups[0]["lr"] == 1e-4 * 0.5 ** halvings
        assert opt_d.param_groups[0]["lr"] == 4e-4 * 0.5 ** halvings
    # stalls counted at 2, 3, 4 -> fire at 4; reset, 5, 6, 7 -> fire at 7; 8.0 is progress at 8, then 9, 10, 11
    assert fired == [4, 7, 11]
    assert decay.decays == 3


def test_stall_uses_ema_and_patience_exactly():
    decay = StallDecay(patience=2000, alpha=0.01, min_rel=0.01)
    fired = [i for i in range(4500) if decay.update(1.0)]  # a flat M_global: EMA constant, never 1 % better
    assert fired == [2000, 4000]
    improving = StallDecay(patience=50, alpha=0.01, min_rel=0.01)
    assert not any(improving.update(100.0 * 0.98 ** i) for i in range(3000))  # steady 2 %/step descent
    off = StallDecay(patience=0)
    assert not any(off.update(1.0) for _ in range(100))


def test_lr_floor():
    opt = _adam(3e-6)
    scale_lrs([opt], 0.5, 1e-6)
    assert opt.param_groups[0]["lr"] == pytest.approx(1.5e-6)
    scale_lrs([opt], 0.5, 1e-6)
    assert opt.param_groups[0]["lr"] == 1e-6
    scale_lrs([opt], 0.5, 1e-6)
    assert opt.param_groups[0]["lr"] == 1e-6
    low = _adam(1e-7)  # an lr already under the floor is left alone, not raised
    scale_lrs([low], 0.5, 1e-6)
    assert low.param_groups[0]["lr"] == 1e-7


def test_variant_decays_both_lrs_when_m_global_stalls(tiny_npz):
    v = build_variant(began_config(tiny_npz, **{"began.lr_decay_patience": 2, "train.lr_g": 1e-4,
                                                 "train.lr_d": 4e-4}))
    lrs = []
    for i in range(5):
        v._l_real, v._l_fake_g = [0.5], [0.25]  # M_global constant at 0.5: a stall from the 2nd iteration
        lrs.append(v.end_iteration(i, {}))
    assert [r["lr_g"] for r in lrs] == [1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5]
    assert [r["lr_d"] for r in lrs] == [4e-4, 4e-4, 2e-4, 2e-4, 1e-4]


# ----------------------------------------------------------------------------- training through the Trainer


def _params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("resolution,opts", [
    (32, {}), (64, {}), (128, {}),
    (32, {"began.skip": "add"}), (32, {"began.skip": "concat"}), (32, {"began.skip": "began"}),
    (16, {"began.recon": "l2", "data.channels": 1}), (16, {"train.fast": True, "train.ema": 0.9}),
])
def test_every_resolution_builds_and_trains_a_step(tiny_npz, tmp_path, resolution, opts):
    cfg = began_config(tiny_npz, **{"data.resolution": resolution, **opts})
    tr = Trainer(cfg, tmp_path / "run")
    v = tr.variant
    c = cfg.data.channels
    z = v.G.latent.draw(2)
    with torch.no_grad():
        assert v.G(z).shape == (2, c, resolution, resolution)
        assert v.D(torch.zeros(2, c, resolution, resolution)).shape == (2, c, resolution, resolution)
    bg, bd = _params(v.G), _params(v.D)
    rec = tr.iteration()
    for key in ("loss_d", "loss_g", "l_real", "l_fake_d", "k_t", "m_global", "balance", "grad_norm_d", "grad_norm_g"):
        assert math.isfinite(rec[key]), (key, rec)
    ag, ad = _params(v.G), _params(v.D)
    # every weight tensor of both networks moved (D's whole auto-encoder, G's every layer)
    for before, after in ((bg, ag), (bd, ad)):
        weights = [k for k in before if k.endswith("weight")]
        assert weights and all(not torch.equal(before[k], after[k]) for k in weights)


def test_stats_file_has_controller_columns(tiny_npz, tmp_path):
    train(began_config(tiny_npz, **{"train.steps": 2}), tmp_path / "run")
    lines = [json.loads(ln) for ln in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    for key in ("k_t", "m_global", "m_global_ema", "balance", "lr_g", "lr_d", "loss_d", "loss_g"):
        assert all(key in ln for ln in lines), key


def test_resume_equals_uninterrupted(tiny_npz, tmp_path):
    # a fast controller and a decay that fires every 2 iterations, so the resumed state matters
    opts = {"began.lambda_k": 0.5, "began.lr_decay_patience": 2, "began.lr_decay_min_rel": 0.9,
            "began.skip": "add", "train.g_steps": 2}
    from conftest import assert_resume_exact

    a, b = assert_resume_exact(lambda n: began_config(tiny_npz, **{"train.steps": n, **opts}), tmp_path)
    assert a.variant.extra_state() == b.variant.extra_state()

    def series(run, key):
        return [json.loads(ln)[key] for ln in (tmp_path / run / "stats.jsonl").read_text().splitlines()]

    for key in ("loss_d", "k_t", "m_global", "lr_g", "lr_d"):
        assert series("a", key) == series("b", key), key
    assert series("a", "lr_decays")[-1] >= 2  # the decay really fired, before and after the resume point


# ----------------------------------------------------------------------------- latent, config, presets, specs


def test_uniform_latent():
    cfg = config_mod.from_dict({"latent": {"kind": "uniform"}, "model": {"nz": 64}})
    lat = build_latent(cfg)
    z = lat.draw(4000, torch.Generator().manual_seed(0))
    assert z.shape == (4000, 64) and z.min() >= -1 and z.max() < 1
    assert abs(z.mean().item()) < 0.01 and z.var().item() == pytest.approx(1 / 3, abs=0.01)
    assert torch.equal(lat(z), z)


def test_wrong_combinations_are_clear_errors(tiny_npz):
    with pytest.raises(ValueError, match="needs model.arch=began"):
        build_variant(began_config(tiny_npz, **{"model.arch": "dcgan"}))
    with pytest.raises(ValueError, match="only train.variant=began"):
        build_variant(began_config(tiny_npz, **{"train.variant": "standard"}))
    with pytest.raises(ValueError, match="began.recon"):
        build_variant(began_config(tiny_npz, **{"began.recon": "l3"}))


def test_presets_load():
    b = config_mod.load_preset("began")
    assert (b.model.arch, b.train.variant, b.latent.kind, b.model.nz) == ("began", "began", "uniform", 64)
    assert (b.began.skip, b.began.gamma, b.train.batch_size) == ("none", 0.5, 16)
    assert (b.train.lr_g, b.train.lr_d) == (1e-4, 1e-4)
    assert (b.train.beta1_g, b.train.beta2_g, b.train.beta1_d, b.train.beta2_d) == (0.5, 0.999, 0.5, 0.999)
    imp = config_mod.load_preset("began-improved")
    assert (imp.began.skip, imp.train.lr_g, imp.train.lr_d) == ("add", 1e-4, 4e-4)
    lit = config_mod.load_preset("began-improved-literal")
    assert (lit.began.skip, lit.train.lr_g, lit.train.lr_d) == ("add", 1e-3, 4e-3)
    for name in ("began", "began-improved", "began-improved-literal"):
        first = (ROOT / "src" / "fewgan" / "presets" / f"{name}.yaml").read_text().splitlines()[0]
        assert first.startswith("# ")  # the one-line description


def test_experiment_specs_load():
    compare = load_spec(ROOT / "experiments" / "yin2020-compare.yaml")
    jobs = compare.jobs()
    assert {j.variant for j in jobs} == {"began", "began-improved"}
    assert len(jobs) == 3 * 2 * 3 and len({j.cfg.train.steps for j in jobs}) == 1
    grey = [j for j in jobs if "fashion" in j.data]
    assert grey and all(j.cfg.data.channels == 1 and j.cfg.data.resolution == 32 for j in grey)
    # both models share gamma 0.7 and n = 32 (the settings chosen by results/yin2020/probe2)
    assert {(j.cfg.began.gamma, j.cfg.began.hidden) for j in jobs} == {(0.7, 32)}
    gamma = load_spec(ROOT / "experiments" / "yin2020-gamma.yaml")
    assert sorted({j.cfg.began.gamma for j in gamma.jobs()}) == [0.3, 0.5]
    # gamma = 0.7 is the compare's improved-BEGAN cat runs: the same configuration but for gamma
    cat07 = {j.seed: j.cfg for j in jobs if j.variant == "began-improved" and j.data == "afhq_cat"}
    for j in gamma.jobs():
        assert dataclasses.replace(j.cfg, began=dataclasses.replace(j.cfg.began, gamma=0.7)) == cat07[j.seed]
    assert all(j.cfg.train.fast for j in jobs)
    # the fp32 check repeats the first round's (gamma 0.5, n = 64) Fashion-MNIST seed 0, fast path off
    first = load_spec(ROOT / "experiments" / "yin2020-compare-g05-n64.yaml").jobs()
    assert all(j.cfg.train.fast and j.cfg.began.gamma == 0.5 and j.cfg.began.hidden == 64 for j in first)
    fp32 = load_spec(ROOT / "experiments" / "yin2020-fastpath.yaml").jobs()
    fast = {(j.variant, j.seed): j.cfg for j in first if j.data == "fashion_mnist" and j.seed == 0}
    assert len(fp32) == len(fast) == 2
    for j in fp32:
        twin = fast[(j.variant.split("[")[0], j.seed)]
        assert twin.train.fast and not j.cfg.train.fast
        assert dataclasses.replace(j.cfg, train=dataclasses.replace(j.cfg.train, fast=True)) == twin
    # the long-budget runs are the comparison's CIFAR-10 runs but for the budget and its cadence
    long = load_spec(ROOT / "experiments" / "yin2020-long.yaml").jobs()
    short = {(j.variant, j.seed): j.cfg for j in jobs if j.data == "cifar10"}
    assert {(j.variant, j.seed) for j in long} == {(v, s) for v in ("began", "began-improved") for s in (0, 1)}
    for j in long:
        twin = short[(j.variant, j.seed)]
        assert j.cfg.train.steps == 4 * twin.train.steps
        assert j.cfg.began == twin.began and j.cfg.data == twin.data
        assert dataclasses.replace(j.cfg.train, steps=twin.train.steps) == twin.train
