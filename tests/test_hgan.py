"""HGAN (teacher, distillation step), Mixture Normalisation and the digit-coverage metric."""

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import tiny_config
from fewgan import config as config_mod
from fewgan.cli import app
from fewgan.data import ImageData, load_images, to_float
from fewgan.metrics.digits import coverage_from_labels
from fewgan.nets.mixnorm import MixtureNorm2d
from fewgan.nets.pixelcnn import GatedPixelCNN, nll_discrete, nll_soft, sample
from fewgan.teacher import evaluate_bpd, load_teacher, split_indices, train_teacher
from fewgan.training import checkpoint
from fewgan.variants import Batch, build_variant


def _raster(c, h, w):
    """Sub-pixels (row, column, channel) in the teacher's autoregressive order."""
    return [(i, j, ch) for i in range(h) for j in range(w) for ch in range(c)]


# ----------------------------------------------------------------------------- masked convolutions


@pytest.mark.parametrize("channels,hidden", [(1, 8), (3, 12)])
def test_changing_a_subpixel_leaves_outputs_up_to_it_unchanged(channels, hidden):
    torch.manual_seed(0)
    net = GatedPixelCNN(channels, hidden=hidden, layers=2, kernel=3, first_kernel=5).eval()
    x = torch.rand(1, channels, 5, 5) * 2 - 1
    base = net(x)
    order = _raster(channels, 5, 5)
    for s, (i, j, c) in enumerate(order):
        x2 = x.clone()
        x2[0, c, i, j] += 0.7
        out = net(x2)
        # the logits of sub-pixel t may change only if t comes after the changed sub-pixel s
        for t, (i2, j2, c2) in enumerate(order[:s + 1]):
            assert torch.equal(out[0, c2, :, i2, j2], base[0, c2, :, i2, j2]), (order[s], order[t])
        # and the change does reach later sub-pixels at all (the network is not trivially constant)
        if s + 1 < len(order):
            assert not torch.equal(out, base)


@pytest.mark.parametrize("channels,hidden", [(1, 8), (3, 12)])
def test_dependencies_are_exactly_the_previous_subpixels(channels, hidden):
    """Gradients: the hidden map of sub-pixel (i, j, c) depends on every earlier sub-pixel
    (no blind spot, receptive field covering the 5x5 image) and on no later one."""
    torch.manual_seed(0)
    net = GatedPixelCNN(channels, hidden=hidden, layers=3, kernel=3, first_kernel=5)
    x = (torch.rand(1, channels, 5, 5) * 2 - 1).requires_grad_(True)
    group = torch.arange(hidden) * channels // hidden
    order = _raster(channels, 5, 5)
    for s, (i, j, c) in enumerate(order):
        x.grad = None
        # the hidden map is gated (tanh * sigmoid, no ReLU), so true dependencies give non-zero gradients
        net.hidden(x)[0, group == c, i, j].sum().backward()
        g = x.grad[0]
        for t, (i2, j2, c2) in enumerate(order):
            if t < s:
                assert g[c2, i2, j2] != 0, f"blind spot: {order[s]} does not see {order[t]}"
            else:
                assert g[c2, i2, j2] == 0, f"{order[s]} sees the current or a future sub-pixel {order[t]}"


def test_cropped_rows_give_the_same_logits_as_the_full_image():
    # sampling runs the net on rows <= i only; that must not change row i's logits
    torch.manual_seed(0)
    net = GatedPixelCNN(3, hidden=6, layers=2).eval()
    x = torch.rand(2, 3, 6, 6) * 2 - 1
    full = net(x)
    for i in range(6):
        torch.testing.assert_close(net(x[:, :, :i + 1])[:, :, :, i], full[:, :, :, i], rtol=0, atol=1e-6)


def test_sampling_is_seeded_and_uint8():
    torch.manual_seed(0)
    net = GatedPixelCNN(3, hidden=6, layers=1)
    a = sample(net, 2, 4, torch.Generator().manual_seed(1))
    b = sample(net, 2, 4, torch.Generator().manual_seed(1))
    assert a.dtype == torch.uint8 and a.shape == (2, 3, 4, 4)
    assert torch.equal(a, b)


def test_soft_nll_equals_discrete_nll_on_integer_images_and_is_differentiable():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 256, 4, 4)
    x_uint8 = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    torch.testing.assert_close(nll_soft(logits, to_float(x_uint8)), nll_discrete(logits, x_uint8), rtol=0, atol=1e-5)
    x = (to_float(x_uint8) + 0.003).clamp(-1, 1).requires_grad_(True)
    nll_soft(logits, x).backward()
    assert x.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- the teacher


def _structured(n=48, size=8, channels=1, seed=0):
    """Images far from uniform noise: dark background with one bright bar (easy to learn)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, channels, size, size), dtype=np.uint8)
    for k in range(n):
        r = rng.integers(0, size)
        x[k, :, r, :] = 255
    return ImageData(x=torch.from_numpy(x), source="bars")


def test_split_is_seeded_disjoint_and_complete():
    tr, he = split_indices(100, 0.2, 3)
    tr2, he2 = split_indices(100, 0.2, 3)
    assert torch.equal(tr, tr2) and torch.equal(he, he2)
    assert len(he) == 20 and len(tr) == 80
    assert sorted(torch.cat([tr, he]).tolist()) == list(range(100))
    assert not torch.equal(split_indices(100, 0.2, 4)[1], he)


def test_teacher_likelihood_improves_with_training(tmp_path):
    data = _structured()
    res = train_teacher("bars", tmp_path / "t.safetensors", steps=30, batch_size=8, lr=3e-3, hidden=8, layers=1,
                        heldout_frac=0.25, seed=0, eval_every=1, ckpt_every=0, data=data)
    held = [h["heldout_bpd"] for h in res.history]
    assert len(held) == 30 and all(math.isfinite(v) for v in held)
    assert held[-1] < held[0] - 1.0, held  # at least one bit/dim better on images it never trained on
    assert res.meta["heldout_bpd"] == pytest.approx(held[-1])
    assert res.meta["split"] == {"heldout_frac": 0.25, "seed": 0, "n_train": 36, "n_heldout": 12}


def test_teacher_checkpoint_round_trip(tmp_path):
    data = _structured(channels=3)
    path = tmp_path / "teacher.safetensors"
    res = train_teacher("bars", path, steps=2, batch_size=8, hidden=6, layers=1, heldout_frac=0.25, data=data)
    net, meta = load_teacher(path)
    assert meta["kind"] == "pixelcnn-teacher" and meta["arch"] == res.net.arch
    assert meta["data"]["channels"] == 3 and meta["data"]["resolution"] == 8
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    x = to_float(data.x[:4])
    res.net.eval()
    torch.testing.assert_close(net(x), res.net(x), rtol=0, atol=0)
    held = data.x[split_indices(len(data), 0.25, 0)[1]]
    assert evaluate_bpd(net, held) == pytest.approx(meta["heldout_bpd"], rel=1e-6)
    # a GAN checkpoint is not a teacher
    other = tmp_path / "other.safetensors"
    checkpoint.save(other, {"G": torch.nn.Linear(2, 2)}, {}, {"step": 0})
    with pytest.raises(checkpoint.CheckpointError, match="not a teacher"):
        load_teacher(other)


def test_teacher_resume_equals_uninterrupted(tmp_path):
    """Training 3 steps, then rerunning for 7, gives the same teacher as 7 steps at once (crosses an epoch)."""
    data = _structured()
    kw = dict(batch_size=8, lr=3e-3, hidden=6, layers=1, heldout_frac=0.25, seed=0, eval_every=3, ckpt_every=0,
              data=data)
    whole = train_teacher("bars", tmp_path / "whole.safetensors", steps=7, **kw)
    part = tmp_path / "part.safetensors"
    train_teacher("bars", part, steps=3, **kw)
    resumed = train_teacher("bars", part, steps=7, **kw)
    for (name, a), b in zip(whole.net.state_dict().items(), resumed.net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    strip = lambda h: [{k: v for k, v in r.items() if k != "time_s"} for r in h]  # noqa: E731
    assert strip(resumed.meta["history"]) == strip(whole.meta["history"])
    assert [r["step"] for r in resumed.meta["history"]] == [3, 6, 7]
    assert resumed.meta["train"]["step"] == 7


def test_teacher_never_replaces_a_file_silently(tmp_path):
    data = _structured()
    kw = dict(batch_size=8, hidden=6, layers=1, heldout_frac=0.25, ckpt_every=0, data=data)
    path = tmp_path / "t.safetensors"
    train_teacher("bars", path, steps=2, **kw)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="already trained for 2 steps"):
        train_teacher("bars", path, steps=2, **kw)
    with pytest.raises(ValueError, match="learning rate"):
        train_teacher("bars", path, steps=4, lr=5e-4, **kw)
    with pytest.raises(ValueError, match="architecture"):
        train_teacher("bars", path, steps=4, **dict(kw, hidden=8))
    assert path.read_bytes() == before  # refused runs leave the file as it was
    other = tmp_path / "gan.safetensors"
    checkpoint.save(other, {"G": torch.nn.Linear(2, 2)}, {}, {"step": 0})
    with pytest.raises(ValueError, match="not a teacher"):
        train_teacher("bars", other, steps=2, **kw)
    res = train_teacher("bars", path, steps=1, overwrite=True, **kw)  # --force: from scratch
    assert res.meta["train"]["step"] == 1 and [r["step"] for r in res.meta["history"]] == [1]


def test_teacher_cli_train_and_sample(tmp_path):
    rng = np.random.default_rng(0)
    x = np.zeros((20, 8, 8, 1), dtype=np.uint8)
    x[:, 2:5, :, 0] = rng.integers(100, 256, size=(20, 3, 8), dtype=np.uint8)
    src = tmp_path / "bars.npz"
    np.savez(src, x=x)
    out = tmp_path / "teachers" / "bars.safetensors"
    r = CliRunner().invoke(app, ["teacher", "train", "--data", str(src), "--steps", "2", "--resolution", "8",
                                 "--hidden", "4", "--layers", "1", "--batch-size", "4", "--heldout", "0.2",
                                 "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert out.is_file() and "held-out bits/dim" in r.output
    r = CliRunner().invoke(app, ["teacher", "train", "--data", str(src), "--steps", "2", "--resolution", "8",
                                 "--hidden", "4", "--layers", "1", "--batch-size", "4", "--heldout", "0.2",
                                 "--out", str(out), "--no-progress"])
    assert r.exit_code == 2 and "already trained for 2 steps" in r.output and "--force" in r.output
    grid = tmp_path / "s.png"
    r = CliRunner().invoke(app, ["teacher", "sample", str(out), "-n", "2", "-o", str(grid)])
    assert r.exit_code == 0, r.output
    assert grid.is_file()
    bank = tmp_path / "bank.npz"
    r = CliRunner().invoke(app, ["teacher", "sample", str(out), "-n", "2", "-o", str(bank)])
    assert r.exit_code == 0, r.output
    assert np.load(bank)["x"].shape == (2, 8, 8, 1)


# ----------------------------------------------------------------------------- the HGAN step


def _tiny_teacher(tmp_path, channels=3, size=16):
    torch.manual_seed(0)
    path = tmp_path / "teacher.safetensors"
    data = ImageData(x=torch.randint(0, 256, (16, channels, size, size), dtype=torch.uint8), source="rand")
    train_teacher("rand", path, steps=1, batch_size=8, hidden=6, layers=1, heldout_frac=0.25, data=data)
    return path


def _params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}


def _changed(before, module):
    after = _params(module)
    return [k for k in before if not torch.equal(before[k], after[k])]


def _hgan_config(tiny_npz, teacher, **extra):
    return tiny_config(tiny_npz, **{"train.variant": "hgan", "hgan.teacher": str(teacher), "hgan.dt_width": 8,
                                    **extra})


def test_hgan_step_updates_g_d_and_dt_and_keeps_the_teacher_frozen(tiny_npz, tmp_path):
    cfg = _hgan_config(tiny_npz, _tiny_teacher(tmp_path), **{"hgan.lambda_nll": 0.1})
    data = load_images(tiny_npz, 16, 3)
    torch.manual_seed(0)
    v = build_variant(cfg, data.num_classes)
    before = {name: _params(m) for name, m in [("G", v.G), ("D", v.D), ("D_T", v.D_T), ("T", v.teacher)]}
    x = to_float(data.x[:8])
    rng = torch.Generator().manual_seed(0)
    noise = v.G.latent.draw(8, rng)
    stats = {**v.d_step(Batch(x, None, noise, None, rng)), **v.g_step(Batch(x, None, noise, None, rng))}
    for k in ("loss_d", "loss_dt", "dt_real", "dt_fake", "grad_norm_dt", "loss_g", "reg_distill",
              "reg_teacher_nll", "grad_norm_g"):
        assert math.isfinite(stats[k]), (k, stats)
    assert _changed(before["G"], v.G) and _changed(before["D"], v.D) and _changed(before["D_T"], v.D_T)
    assert _changed(before["T"], v.teacher) == []
    assert not any(p.requires_grad for p in v.teacher.parameters())
    assert all(p.grad is None for p in v.teacher.parameters())
    # the teacher is read from hgan.teacher, not saved with the run; D_T and its optimiser are
    assert "D_T" in v.modules() and "T" not in v.modules() and "opt_dt" in v.optimizers()


def test_distillation_gradient_reaches_g_through_the_frozen_teacher(tiny_npz, tmp_path):
    cfg = _hgan_config(tiny_npz, _tiny_teacher(tmp_path), **{"hgan.lambda_t": 1.0})
    torch.manual_seed(0)
    v = build_variant(cfg)
    fake = v.G(v.G.latent.draw(4, torch.Generator().manual_seed(0)))
    v._distill_g_loss(fake, None).backward()
    assert sum(p.grad.abs().sum() for p in v.G.parameters() if p.grad is not None) > 0
    assert all(p.grad is None for p in v.D_T.parameters())  # D_T frozen in G's loss


def test_joint_teacher_step_trains_and_checkpoints_the_teacher(tiny_npz, tmp_path):
    cfg = _hgan_config(tiny_npz, _tiny_teacher(tmp_path), **{"hgan.joint_teacher_steps": 1})
    data = load_images(tiny_npz, 16, 3)
    torch.manual_seed(0)
    v = build_variant(cfg)
    before = _params(v.teacher)
    rng = torch.Generator().manual_seed(0)
    x = to_float(data.x[:8])
    v.d_step(Batch(x, None, v.G.latent.draw(8, rng), None, rng))
    out = v.end_iteration(0, {})
    assert math.isfinite(out["teacher_bpd"]) and _changed(before, v.teacher)
    assert "T" in v.modules() and "opt_t" in v.optimizers()


def test_hgan_run_checkpoint_round_trip(tiny_npz, tmp_path):
    from fewgan.sampling import load_for_sampling
    from fewgan.training.loop import Trainer

    cfg = _hgan_config(tiny_npz, _tiny_teacher(tmp_path), **{"train.steps": 2})
    tr = Trainer(cfg, tmp_path / "run")
    assert tr.run().step == 2
    run = load_for_sampling(tmp_path / "run")
    tensors, _ = checkpoint.read(run.path)
    assert any(k.startswith("opt_dt/") for k in tensors)
    assert not any(k.startswith("T/") for k in tensors)  # the frozen teacher stays in its own file
    trained, loaded = _params(tr.variant.D_T), _params(run.variant.D_T)
    assert trained.keys() == loaded.keys()
    for k in trained:
        assert torch.equal(trained[k], loaded[k]), k


def test_hgan_errors_name_the_problem(tiny_npz, tmp_path):
    missing = _hgan_config(tiny_npz, tmp_path / "nope.safetensors")
    with pytest.raises(ValueError, match="fewgan teacher train"):
        build_variant(missing)
    grey = _hgan_config(tiny_npz, _tiny_teacher(tmp_path, channels=1))
    with pytest.raises(ValueError, match="1-channel 16px"):
        build_variant(grey)
    bad = _hgan_config(tiny_npz, tmp_path / "t", **{"hgan.dt_input": "pixels"})
    with pytest.raises(ValueError, match="hidden, samples"):
        build_variant(bad)


def test_presets_load():
    h = config_mod.load_preset("hgan")
    assert h.train.variant == "hgan" and h.hgan.lambda_t == 1.0 and h.hgan.lambda_nll == 0.0
    assert h.hgan.dt_input == "hidden" and h.model.arch == "dcgan"
    m = config_mod.load_preset("dcgan-mixnorm")
    assert m.model.g_norm == "mixture" and m.model.mixnorm_k == 3 and m.train.variant == "standard"


# ----------------------------------------------------------------------------- mixture normalisation


def test_mixture_norm_with_one_component_equals_batchnorm():
    torch.manual_seed(0)
    x = (torch.randn(8, 16, 4, 4) * 3 + 1).requires_grad_(True)
    bn, mn = torch.nn.BatchNorm2d(16), MixtureNorm2d(16, k=1)
    with torch.no_grad():
        w, b = torch.randn(16), torch.randn(16)
        bn.weight.copy_(w), bn.bias.copy_(b), mn.weight.copy_(w), mn.bias.copy_(b)
    y_bn = bn(x)
    g_bn = torch.autograd.grad((y_bn * y_bn.detach().sin()).sum(), x)[0]
    y_mn = mn(x)
    g_mn = torch.autograd.grad((y_mn * y_mn.detach().sin()).sum(), x)[0]
    torch.testing.assert_close(y_mn, y_bn, rtol=0, atol=1e-5)
    torch.testing.assert_close(g_mn, g_bn, rtol=0, atol=1e-5)
    for _ in range(2):  # the eval-mode statistics follow BN's running averages too
        x2 = torch.randn(8, 16, 4, 4) * 2
        bn(x2), mn(x2)
    torch.testing.assert_close(mn.running_mean[0], bn.running_mean, rtol=0, atol=1e-5)
    torch.testing.assert_close(mn.running_var[0], bn.running_var, rtol=0, atol=1e-5)
    bn.eval(), mn.eval()
    torch.testing.assert_close(mn(x), bn(x), rtol=0, atol=1e-5)


def test_mixture_norm_normalises_each_mode_separately():
    # two well separated sub-populations: each is normalised with its own statistics
    torch.manual_seed(0)
    a = torch.randn(64, 4, 4, 4) * 0.5 + 5.0
    b = torch.randn(64, 4, 4, 4) * 2.0 - 5.0
    x = torch.cat([a, b])
    mn = MixtureNorm2d(4, k=2, prior_scale=False)
    with torch.no_grad():
        y = mn(x)
    for part in (y[:64], y[64:]):
        assert part.mean().abs() < 0.05 and (part.std() - 1).abs() < 0.05
    assert sorted(mn.gmm_prior.tolist()) == pytest.approx([0.5, 0.5], abs=1e-3)
    # BN would have put both modes at about +-1 with a tiny spread
    bn_part = torch.nn.functional.batch_norm(x, None, None, training=True)[:64]
    assert bn_part.std() < 0.2


def test_mixture_norm_k3_trains_and_evaluates():
    torch.manual_seed(0)
    mn = MixtureNorm2d(8, k=3)
    x = (torch.randn(16, 8, 8, 8).relu() * 2).requires_grad_(True)
    y = mn(x)
    (y ** 2).sum().backward()
    assert torch.isfinite(y).all() and x.grad.abs().sum() > 0 and mn.weight.grad is not None
    assert bool(mn.fitted)
    mn.eval()
    assert torch.isfinite(mn(x.detach())).all()


def test_dcgan_mixnorm_generator_uses_mixture_norm_at_4_and_8_px(tiny_npz):
    cfg = tiny_config(tiny_npz, **{"model.g_norm": "mixture", "model.mixnorm_k": 2})
    data = load_images(tiny_npz, 16, 3)
    torch.manual_seed(0)
    v = build_variant(cfg)
    norms = [type(m).__name__ for m in v.G.net.modules() if "Norm" in type(m).__name__]
    assert norms == ["MixtureNorm2d", "MixtureNorm2d"]  # 16 px: the 4x4 and 8x8 maps are G's only hidden maps
    x = to_float(data.x[:8])
    rng = torch.Generator().manual_seed(0)
    noise = v.G.latent.draw(8, rng)
    stats = {**v.d_step(Batch(x, None, noise, None, rng)), **v.g_step(Batch(x, None, noise, None, rng))}
    assert all(math.isfinite(stats[k]) for k in ("loss_d", "loss_g"))
    with pytest.raises(ValueError, match="g_norm"):
        build_variant(tiny_config(tiny_npz, **{"model.g_norm": "mixture", "model.arch": "mlp"}))
    with pytest.raises(ValueError, match="batch, mixture"):
        build_variant(tiny_config(tiny_npz, **{"model.g_norm": "group"}))


# ----------------------------------------------------------------------------- digit coverage


def test_coverage_of_uniform_and_collapsed_histograms():
    uni = coverage_from_labels(torch.arange(100) % 10)
    assert uni["classes_present"] == 10 and uni["tv_uniform"] == pytest.approx(0)
    assert uni["kl_uniform"] == pytest.approx(0, abs=1e-12)
    one = coverage_from_labels(torch.full((50,), 3))
    assert one["classes_present"] == 1 and one["counts"][3] == 50
    assert one["tv_uniform"] == pytest.approx(0.9) and one["kl_uniform"] == pytest.approx(math.log(10))
    few = coverage_from_labels(torch.tensor([0] * 97 + [1] * 3), threshold=0.05)
    assert few["classes_present"] == 1  # 3 % is below the 5 % threshold


def test_digit_classifier_trains_saves_and_loads(tmp_path):
    from fewgan.metrics.digits import coverage, load_digit_classifier, predict, train_digit_classifier

    # two easy "digits": a bright left half or a bright right half
    x = np.zeros((40, 12, 12), dtype=np.uint8)
    y = np.arange(40) % 2
    x[y == 0, :, :6] = 255
    x[y == 1, :, 6:] = 255
    src = tmp_path / "halves.npz"
    np.savez(src, x=x, y=y)
    path = tmp_path / "digits.safetensors"
    net, meta = train_digit_classifier(src, path, steps=40, batch_size=16, heldout_frac=0.25, resolution=12,
                                       max_shift=0)
    assert meta["heldout_acc"] == 1.0 and meta["split"]["n_heldout"] == 10
    loaded, meta2 = load_digit_classifier(path)
    imgs = torch.from_numpy(x[:, None]).repeat(1, 3, 1, 1)  # RGB input is converted to grey
    assert torch.equal(predict(loaded, imgs), predict(net, imgs))
    cov = coverage(loaded, imgs)
    assert cov["counts"][:2] == [20, 20] and cov["classes_present"] == 2 and meta2["heldout_acc"] == 1.0
