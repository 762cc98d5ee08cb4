"""Augmentations (DiffAugment, ADA's pipeline), ADA's / APA's controller, LeCam and lazy R1."""

import json
import math

import pytest
import torch
from conftest import assert_resume_exact, tiny_config

from fewgan import augment as A
from fewgan.regularizers import LeCamEMA, lazy_adam, lecam_loss, r1_penalty


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def ramp(n=2, c=3, h=8, w=8):
    """x[.., i, j] = i * w + j, scaled into [-1, 1): every pixel distinct."""
    base = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w) / (h * w) * 2 - 1
    return base.repeat(n, c, 1, 1)


# ----------------------------------------------------------------------------- closed forms


def test_brightness_saturation_contrast_closed_forms():
    x = torch.full((3, 3, 4, 4), 0.25)
    assert torch.allclose(A.brightness(x, torch.tensor([0.1, -0.2, 0.0])),
                          x + torch.tensor([0.1, -0.2, 0.0]).view(-1, 1, 1, 1))
    # a constant image is unchanged by saturation and contrast (it equals its own means)
    assert torch.allclose(A.saturation(x, torch.tensor([0.0, 1.7, 2.0])), x)
    assert torch.allclose(A.contrast(x, torch.tensor([0.5, 1.5, 1.0])), x)
    # saturation 0 gives the per-pixel channel mean; contrast 0 the image mean
    rgb = torch.stack([torch.full((4, 4), v) for v in (-0.5, 0.1, 0.7)]).unsqueeze(0)
    assert torch.allclose(A.saturation(rgb, torch.tensor([0.0])), torch.full_like(rgb, 0.1))
    r = ramp(1)
    assert torch.allclose(A.contrast(r, torch.tensor([0.0])), torch.full_like(r, r.mean()), atol=1e-6)
    assert torch.allclose(A.contrast(r, torch.tensor([2.0])), 2 * r - r.mean(), atol=1e-6)


def test_translation_shifts_a_ramp_and_zero_fills():
    r = ramp(1, 1)
    out = A.translate_int(r, torch.tensor([2]), torch.tensor([-1]))
    # out[i, j] = r[i - 2, j + 1] where that exists, else 0
    expect = torch.zeros_like(r)
    expect[..., 2:, :-1] = r[..., :-2, 1:]
    assert torch.equal(out, expect)
    assert torch.equal(A.translate_int(r, torch.tensor([0]), torch.tensor([0])), r)


def test_cutout_zeroes_a_clipped_square():
    m = A.cutout_mask(2, 8, 8, torch.tensor([4, 0]), torch.tensor([4, 7]), 4, torch.tensor([True, True]))
    assert m[0].sum() == 64 - 16 and torch.all(m[0, 0, 2:6, 2:6] == 0)
    assert m[1].sum() == 64 - 2 * 3  # centred at a corner: rows 0..1, columns 5..7
    off = A.cutout_mask(1, 8, 8, torch.tensor([4]), torch.tensor([4]), 4, torch.tensor([False]))
    assert torch.all(off == 1)


def test_diffaugment_ops_follow_the_reference_sizes():
    # translation up to round(0.125 H) px; cutout side round(0.5 H): at 32 px 4 and 16
    x = torch.ones(64, 3, 32, 32)
    out = A.op_cutout(x, 1.0, gen())
    zeros = (out[:, 0] == 0).flatten(1).sum(1)
    assert zeros.max() == 256 and zeros.min() >= 64  # clipped squares still keep a quarter at least
    out = A.op_translation(x, 1.0, gen())
    rows = (out[:, 0] == 0).all(dim=2).sum(1)  # fully zero rows: the vertical shift
    assert rows.max() == 4


def test_ada_geometry_ops_equal_flips_rotations_and_shifts():
    r = ramp(1, 3, 8, 8)
    eye = torch.eye(3).unsqueeze(0)
    flip = eye.clone(); flip[0, 0, 0] = -1
    assert torch.allclose(A.apply_geometry(r, flip), torch.flip(r, dims=[3]), atol=1e-5)
    rot = A._rotate2(torch.tensor([math.pi / 2]))
    assert any(torch.allclose(A.apply_geometry(r, rot), torch.rot90(r, k, dims=[2, 3]), atol=1e-4) for k in (1, 3))
    shift = A._translate2(torch.tensor([2 * 2 / 8]), torch.tensor([0.0]))  # 2 px in normalised units
    out = A.apply_geometry(r, shift)
    assert torch.allclose(out[..., :, :6], r[..., :, 2:], atol=1e-5)  # sampled 2 px to the right
    # constant images stay constant under any geometry (reflection padding, no zero fill)
    c = torch.full((16, 3, 8, 8), 0.3)
    assert torch.allclose(A.apply_geometry(c, A.ada_geometry(16, 8, 1.0, gen())), c, atol=1e-5)


def test_ada_colour_ops_closed_forms():
    n = 64
    C = A.ada_color(n, 1.0, gen())
    grey = torch.full((n, 3, 4, 4), 0.2)
    out = A.apply_color(grey, C)
    # hue and saturation leave a grey pixel grey; brightness, contrast and luma flip keep it grey too
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5) and torch.allclose(out[:, 1], out[:, 2], atol=1e-5)
    # hue rotation about the luma axis keeps the luma (channel mean) and the saturation distance
    rgb = torch.tensor([0.5, -0.2, 0.1]).view(1, 3, 1, 1).repeat(8, 1, 2, 2)
    th = torch.linspace(-3, 3, 8)
    hue = A._rotate_axis(A._LUMA, th)
    h = A.apply_color(rgb, hue)
    assert torch.allclose(h.mean(1), rgb.mean(1), atol=1e-6)
    assert torch.allclose((h - h.mean(1, keepdim=True)).norm(dim=1), (rgb - rgb.mean(1, keepdim=True)).norm(dim=1),
                          atol=1e-6)
    # p = 0: the identity, for every op and policy
    x = torch.rand(8, 3, 8, 8) * 2 - 1
    for ops in (("ada",), ("color", "translation", "cutout")):
        assert torch.equal(A.augment(x, ops, 0.0, gen()), x)


def test_grey_images_get_brightness_and_contrast():
    x = torch.rand(16, 1, 8, 8) * 2 - 1
    out = A.op_ada(x, 1.0, gen())
    assert out.shape == x.shape and torch.isfinite(out).all()


# ----------------------------------------------------------------------------- gradients and seeds


@pytest.mark.parametrize("op", list(A.OPS))
def test_gradients_reach_the_generator_through_every_op(op):
    w = torch.nn.Parameter(torch.randn(4, 3 * 8 * 8) * 0.1)
    x = torch.tanh(torch.randn(8, 4) @ w).view(8, 3, 8, 8)  # a one-layer "G"
    A.augment(x, (op,), 1.0, gen()).square().sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


@pytest.mark.parametrize("ops", [("ada",), ("color", "translation", "cutout")])
def test_same_seed_same_augmentation(ops):
    x = torch.rand(16, 3, 16, 16) * 2 - 1
    a, b = A.augment(x, ops, 0.7, gen(5)), A.augment(x, ops, 0.7, gen(5))
    assert torch.equal(a, b)
    assert not torch.equal(a, A.augment(x, ops, 0.7, gen(6)))


def test_draws_do_not_depend_on_p():
    # every op draws the same numbers whatever p is, so an adaptive p never shifts the stream
    x = torch.rand(8, 3, 8, 8)
    for p in (0.0, 0.3, 1.0):
        g = gen(1)
        A.augment(x, ("ada", "color", "translation", "cutout"), p, g)
        nxt = torch.rand(1, generator=g)
        if p == 0.0:
            ref = nxt
        assert torch.equal(nxt, ref)


def test_brightness_gate_fraction():
    x = torch.ones(4000, 1, 2, 2)
    out = A.op_color(x, 0.25, gen())
    moved = ((out - x).abs().flatten(1).amax(1) > 1e-6).float().mean().item()
    assert abs(moved - 0.25) < 0.03


def test_unknown_op_is_a_clear_error():
    with pytest.raises(ValueError, match="aug.policy: unknown op 'blur'"):
        A.parse_policy("color,blur")
    assert A.parse_policy("none") == ()


# ----------------------------------------------------------------------------- the controller


def test_controller_raises_p_while_d_overfits_and_lowers_it_after():
    c = A.AdaptiveP(p=0.0, target=0.6, interval=4, speed_img=64)
    ps = []
    for step in range(400):
        c.observe(torch.ones(8) if step < 200 else -torch.ones(8))  # r_t = +1, then -1
        c.end_iteration(step)
        ps.append(c.p)
        assert 0.0 <= c.p <= 1.0
    assert ps[3] == 0.5 and ps[199] == 1.0  # +32 images / 64 per update, then clipped at 1
    assert ps[203] == 0.5 and ps[399] == 0.0
    # r_t exactly at the target moves nothing
    c = A.AdaptiveP(p=0.3, target=0.0, interval=1, speed_img=10)
    c.observe(torch.tensor([1.0, -1.0]))
    c.end_iteration(0)
    assert c.p == 0.3 and c.r_t == 0.0


def test_controller_state_round_trips_exactly():
    c = A.AdaptiveP(p=0.1, interval=3, speed_img=1000)
    c.observe(torch.tensor([0.3, -2.0, 5.0]))
    d = A.AdaptiveP(p=0.9, interval=3, speed_img=1000)
    d.load_state_dict(json.loads(json.dumps(c.state_dict())))
    for step in range(1, 9):
        for m in (c, d):
            m.observe(torch.tensor([1.0, 1.0, -1.0]))
            m.end_iteration(step)
    assert c.state_dict() == d.state_dict()


def test_controller_counts_images_not_patch_logits():
    # a D with 4 logits per image (patch maps) moves p as fast as one logit per image
    a, b = A.AdaptiveP(p=0.0, interval=1, speed_img=16), A.AdaptiveP(p=0.0, interval=1, speed_img=16)
    a.observe(torch.ones(8))
    b.observe(torch.ones(32), n_images=8)
    a.end_iteration(0), b.end_iteration(0)
    assert a.p == b.p == 0.5 and a.r_t == b.r_t == 1.0


def test_apa_mix_replaces_reals_with_detached_fakes():
    real, fake = torch.zeros(1000, 1, 2, 2), torch.ones(1000, 1, 2, 2, requires_grad=True)
    out = A.apa_mix(real, fake, 0.3, gen())
    frac = out.flatten(1)[:, 0].mean().item()
    assert abs(frac - 0.3) < 0.05 and not out.requires_grad
    assert torch.equal(A.apa_mix(real, fake, 0.0, gen()), real)


# ----------------------------------------------------------------------------- LeCam and R1


def test_lecam_equals_its_formula():
    r, f = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 1.0])
    a_r, a_f = 0.7, -0.4
    expect = ((torch.clamp(r - a_f, min=0) ** 2).mean() + (torch.clamp(a_r - f, min=0) ** 2).mean())
    assert torch.allclose(lecam_loss(r, f, a_r, a_f), expect)
    # by hand: relu(2.4, -0.6, 0.9)^2 mean = (5.76 + 0.81) / 3; relu(3.7, -0.3)^2 mean = 13.69 / 2
    assert math.isclose(lecam_loss(r, f, a_r, a_f).item(), (5.76 + 0.81) / 3 + 13.69 / 2, rel_tol=1e-6)


def test_lecam_ema_updates_before_use_and_waits_for_start():
    e = LeCamEMA(decay=0.9, start=2)
    e.update(1.0, -1.0, 0)
    assert (e.real, e.fake) == (1.0, -1.0)
    e.update(3.0, -3.0, 1)  # before start: decay 0, the EMA is the batch mean
    assert (e.real, e.fake) == (3.0, -3.0)
    e.update(13.0, 7.0, 2)
    assert math.isclose(e.real, 0.9 * 3 + 0.1 * 13) and math.isclose(e.fake, 0.9 * -3 + 0.1 * 7)


def test_r1_on_a_linear_d_is_the_squared_weight_norm():
    w = torch.randn(3 * 4 * 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = x.flatten(1) @ w + 0.3  # D(x) = w.x + b: grad_x D = w for every sample
    assert torch.allclose(r1_penalty(x, logits), w.square().sum())
    # and quadratic D(x) = sum x^2: grad = 2x, penalty = mean 4 ||x||^2
    x2 = torch.randn(4, 1, 2, 2, requires_grad=True)
    assert torch.allclose(r1_penalty(x2, x2.square().flatten(1).sum(1)), (4 * x2.square().flatten(1).sum(1)).mean())


def test_r1_penalty_reaches_d_weights():
    d = torch.nn.Linear(12, 1)
    x = torch.randn(4, 12, requires_grad=True)
    r1_penalty(x, d(x).flatten()).backward()
    assert d.weight.grad is not None and d.weight.grad.abs().sum() > 0


def test_lazy_adam_correction():
    lr, (b1, b2) = lazy_adam(2e-4, (0.5, 0.999), 16)
    c = 16 / 17
    assert math.isclose(lr, 2e-4 * c) and math.isclose(b1, 0.5 ** c) and math.isclose(b2, 0.999 ** c)


# ----------------------------------------------------------------------------- in training

AUG_ON = {"aug.policy": "ada", "aug.adaptive": True, "aug.p": 0.2, "aug.interval": 1, "aug.speed_img": 64}


@pytest.mark.parametrize("opts", [
    {"aug.policy": "color,translation,cutout"},
    AUG_ON,
    {"aug.apa": True, "aug.apa_p": 0.5},
    {"reg.lecam_weight": 0.3},
    {"reg.r1_gamma": 1.0, "reg.r1_interval": 2},
    {"loss.kind": "hinge", "reg.lecam_weight": 0.3, "reg.r1_gamma": 0.1, "reg.r1_interval": 1},
    {"loss.kind": "lsgan", "reg.r1_gamma": 0.1, "reg.r1_interval": 1, "train.fast": True},
    {"loss.kind": "minimax", "reg.lecam_weight": 0.1, **AUG_ON},
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_resume_mid_adaptation_equals_uninterrupted(tiny_npz, tmp_path, opts):
    a, b = assert_resume_exact(lambda n: tiny_config(tiny_npz, **{"train.steps": n, **opts}), tmp_path)
    la = (tmp_path / "a" / "stats.jsonl").read_text()
    lb = (tmp_path / "b" / "stats.jsonl").read_text()
    strip = lambda t: [{k: v for k, v in json.loads(l).items() if k not in ("time", "img_per_s")} for l in t.splitlines()]
    assert strip(la) == strip(lb)
    assert a.variant.reg_state() == b.variant.reg_state()


def test_adaptive_p_moves_and_is_logged(tiny_npz, tmp_path):
    from fewgan.training.loop import train

    train(tiny_config(tiny_npz, **{"train.steps": 6, **AUG_ON}), tmp_path / "r")
    rows = [json.loads(l) for l in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    ps = [r["aug_p"] for r in rows]
    assert all(0 <= p <= 1 for p in ps) and len(set(ps)) > 1 and all("r_t" in r for r in rows)
    for r, prev in zip(rows, [0.2] + ps[:-1]):  # each update moves p by 8 images / 64 towards the sign
        step = 8 / 64
        assert math.isclose(r["aug_p"], min(1, max(0, prev + math.copysign(step, r["r_t"] - 0.6))))


def test_augmentation_off_changes_nothing(tiny_npz, tmp_path):
    """aug.p = 0 with a policy gives bit for bit the run without augmentation: own RNG stream."""
    from fewgan.training.loop import Trainer

    a = Trainer(tiny_config(tiny_npz), tmp_path / "a"); a.run()
    b = Trainer(tiny_config(tiny_npz, **{"aug.policy": "ada", "aug.p": 0.0}), tmp_path / "b"); b.run()
    for k, v in a.variant.G.state_dict().items():
        assert torch.equal(v, b.variant.G.state_dict()[k]), k


def _teacher(tmp_path):
    from fewgan.data import ImageData
    from fewgan.teacher import train_teacher

    data = ImageData(torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8), source="rand")
    path = tmp_path / "teacher.safetensors"
    train_teacher("rand", path, steps=1, batch_size=8, hidden=6, layers=1, heldout_frac=0.25, data=data)
    return path


VARIANTS = {
    "dcgan": {},
    "mlp": {"model.arch": "mlp"},
    "sngan": {"model.spectral_norm": True, "loss.kind": "hinge"},
    "cft-mr": {"latent.kind": "cft", "latent.mean_rescale": True},
    "edge": {"reg.edge_weight": 1.0, "reg.edge_d_input": True},
    "deligan": {"latent.kind": "deligan", "latent.components": 4},
    "conditional": {"model.conditional": True},
    "conditional-concat": {"model.conditional": True, "model.cond_mode": "concat"},
    "transitional": {"model.conditional": True, "train.variant": "transitional", "model.spectral_norm": True,
                     "model.transition_start": 0, "model.transition_end": 2},
    "began": {"model.arch": "began", "train.variant": "began", "began.hidden": 8, "began.h": 8},
    "hgan": {"train.variant": "hgan", "hgan.dt_width": 8},
}


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("aug", [{"aug.policy": "color,translation,cutout", "aug.apa": True, "aug.apa_p": 0.5},
                                 {**AUG_ON, "aug.p": 0.5}], ids=["diffaug+apa", "ada"])
def test_every_variant_trains_with_augmentation(tiny_npz, tmp_path, name, aug):
    from fewgan.training.loop import Trainer

    opts = {**VARIANTS[name], **aug, "train.steps": 2}
    if name == "hgan":
        opts["hgan.teacher"] = str(_teacher(tmp_path))
    if name not in ("began",):
        opts.update({"reg.lecam_weight": 0.1, "reg.r1_gamma": 0.1, "reg.r1_interval": 1})
    tr = Trainer(tiny_config(tiny_npz, **opts), tmp_path / "r")
    before = {k: v.clone() for k, v in tr.variant.G.state_dict().items()}
    calls = []
    orig = tr.variant.augment
    tr.variant.augment = lambda x, batch: calls.append(x.shape) or orig(x, batch)
    res = tr.run()
    rec = res.last_stats
    assert math.isfinite(rec["loss_d"]) and math.isfinite(rec["loss_g"])
    assert calls, "D never saw an augmented batch"
    assert "aug_p" in rec
    assert any(not torch.equal(v, tr.variant.G.state_dict()[k]) for k, v in before.items() if v.is_floating_point())


def test_began_rejects_logit_regularizers(tiny_npz):
    from fewgan.variants import build_variant

    cfg = tiny_config(tiny_npz, **{**VARIANTS["began"], "reg.r1_gamma": 1.0})
    with pytest.raises(ValueError, match="logit discriminator"):
        build_variant(cfg)


def test_bad_aug_settings_are_clear_errors(tiny_npz):
    from fewgan.variants import build_variant

    for opts, msg in [({"aug.p": 1.5}, "aug.p must lie in"), ({"aug.adaptive": True}, "needs an aug.policy"),
                      ({"aug.policy": "warp"}, "unknown op"), ({"reg.r1_interval": 0}, "r1_interval")]:
        with pytest.raises(ValueError, match=msg):
            build_variant(tiny_config(tiny_npz, **opts))
