"""Devices and precision (README "Devices and precision").

CPU tests run everywhere; tests marked `cuda` / `mps` are skipped without that device
(scripts/gpu_check.sh runs the `cuda` ones on a GPU machine)."""

import math

import pytest
import torch
from typer.testing import CliRunner

from conftest import assert_resume_exact, tiny_config
from fewgan import devices
from fewgan.cli import app
from fewgan.data import load_images
from fewgan.sampling import generate, load_for_sampling
from fewgan.training import checkpoint
from fewgan.training.loop import Trainer, seeded, train
from fewgan.variants import Batch, build_variant

runner = CliRunner()
HAS_CUDA = torch.cuda.is_available()
HAS_MPS = devices._mps_available()
SMALL = ["--resolution", "16", "--model.g_width=8", "--model.d_width=8", "--train.batch_size=8",
         "--log.progress=false", "--log.sample_every=0", "--log.ckpt_every=0"]


# ----------------------------------------------------------------------------- resolving a device

@pytest.mark.skipif(HAS_CUDA or HAS_MPS, reason="auto picks the accelerator here")
def test_auto_resolves_to_cpu_here():
    assert devices.resolve_device("auto") == torch.device("cpu")
    assert devices.resolve_device(None) == torch.device("cpu")
    assert tiny_config("x").train.device == "auto"


def test_cpu_and_bad_names():
    assert devices.resolve_device("cpu") == torch.device("cpu")
    assert devices.resolve_device(" CPU ") == torch.device("cpu")
    with pytest.raises(devices.DeviceError, match=r"train.device='tpu': not a device; valid: auto, cpu, cuda"):
        devices.resolve_device("tpu")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_absent_cuda_is_one_clear_line(name):
    with pytest.raises(devices.DeviceError) as e:
        devices.resolve_device(name)
    msg = str(e.value)
    assert msg.startswith(f"train.device={name}: no CUDA device here (torch ")
    assert "\n" not in msg and ("built without CUDA" in msg or "devices" in msg)


@pytest.mark.skipif(HAS_MPS, reason="this machine has MPS")
def test_absent_mps_is_a_clear_error():
    with pytest.raises(devices.DeviceError, match="train.device=mps: no MPS device here"):
        devices.resolve_device("mps")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_cli_train_on_absent_cuda_exits_2_with_one_line(tiny_npz, tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "--data", str(tiny_npz), "--steps", "1", "--out", str(out), "--device", "cuda",
                            *SMALL])
    assert r.exit_code == 2, r.output
    err = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "no CUDA device here" in err[0], r.output
    assert "Traceback" not in r.output
    assert not (out / "checkpoints").exists()  # nothing trained, nothing written
    r = runner.invoke(app, ["train", "--data", str(tiny_npz), "--steps", "1", "--out", str(tmp_path / "b"),
                            "--train.device=cuda:0", *SMALL])
    assert r.exit_code == 2 and "no CUDA device here" in r.output


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_cli_sample_and_teacher_on_absent_cuda_exit_2(tiny_npz, tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, ["train", "--data", str(tiny_npz), "--steps", "1", "--out", str(out),
                               "--device", "cpu", *SMALL]).exit_code == 0
    r = runner.invoke(app, ["sample", str(out), "-n", "2", "-o", str(tmp_path / "s.npz"), "--device", "cuda"])
    assert r.exit_code == 2 and "--device=cuda: no CUDA device here" in r.output, r.output
    r = runner.invoke(app, ["sample", str(out), "-n", "2", "-o", str(tmp_path / "s.npz"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["teacher", "train", "--data", str(tiny_npz), "--resolution", "16", "--steps", "1",
                            "--out", str(tmp_path / "t.safetensors"), "--device", "cuda", "--no-progress"])
    assert r.exit_code == 2 and "no CUDA device here" in r.output, r.output


def test_unknown_amp_is_a_clear_error(tiny_npz, tmp_path):
    with pytest.raises(ValueError, match="train.amp must be one of bf16, fp16, got 'fp8'"):
        Trainer(tiny_config(tiny_npz, **{"train.amp": "fp8"}), tmp_path / "r")


# ----------------------------------------------------------------------------- draws and outputs

def test_generate_returns_cpu_uint8(tiny_npz):
    cfg = tiny_config(tiny_npz)
    torch.manual_seed(0)
    v = build_variant(cfg).to("cpu")
    imgs = generate(v.sampler(), 5, seed=3)
    assert imgs.device.type == "cpu" and imgs.dtype == torch.uint8 and imgs.shape == (5, 3, 16, 16)
    assert torch.equal(imgs, generate(v.sampler(), 5, seed=3))


def test_draws_come_from_cpu_generators(tiny_npz, tmp_path):
    """Noise, batch indices and label noise come from CPU generators seeded per (seed, step): the
    same values whatever device the run asks for (here 'cpu' and 'auto', which is the CPU)."""
    g = seeded(0, 2, 5)
    assert g.device.type == "cpu"
    trainers = [Trainer(tiny_config(tiny_npz, **{"train.device": d}), tmp_path / d) for d in ("cpu", "auto")]
    noise = [t._noise(8, seeded(0, 2, 5)) for t in trainers]
    assert torch.equal(noise[0], noise[1])
    assert torch.equal(noise[0], trainers[0].variant.G.latent.draw(8, seeded(0, 2, 5)))  # a plain CPU draw
    xs = [t._real_batch(3, None)[0] for t in trainers]
    assert torch.equal(xs[0], xs[1])
    for t in trainers:
        assert t._x.dtype == torch.uint8 and t._x.device == t.device  # the training set on the device, as uint8
    # initialisation: built on the CPU under the seed, then moved
    for a, b in zip(trainers[0].variant.G.parameters(), trainers[1].variant.G.parameters()):
        assert torch.equal(a.detach().cpu(), b.detach().cpu())


def test_to_host_equals_item():
    vals = {"a": torch.tensor(0.1234567, dtype=torch.float32), "b": torch.tensor(1.5, dtype=torch.bfloat16),
            "c": 2.0, "d": torch.tensor([3.25])}
    out = devices.to_host(vals)
    assert out == {"a": vals["a"].item(), "b": vals["b"].item(), "c": 2.0, "d": 3.25}
    assert all(type(v) is float for v in out.values())


def test_step_stats_are_floats_after_an_iteration(tiny_npz, tmp_path):
    t = Trainer(tiny_config(tiny_npz, **{"reg.lecam_weight": 0.1, "reg.r1_gamma": 1.0,
                                            "reg.r1_interval": 1}), tmp_path / "r")
    rec = t.iteration()
    for k in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "reg_lecam", "reg_r1"):
        assert type(rec[k]) is float and math.isfinite(rec[k]), (k, rec[k])


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_records_the_device_and_holds_cpu_tensors(tiny_npz, tmp_path):
    res = train(tiny_config(tiny_npz, **{"train.device": "cpu"}), tmp_path / "r")
    tensors, meta = checkpoint.read(checkpoint.latest_checkpoint(res.run_dir))
    assert meta["device"] == "cpu" and meta["scaler_state"] == {}
    assert meta["config"]["train"]["device"] == "cpu"
    assert all(t.device.type == "cpu" for t in tensors.values())
    assert "extra/cuda_rng" not in tensors  # only a CUDA run carries CUDA's RNG
    run = load_for_sampling(res.run_dir, "cpu")
    assert devices.module_device(run.variant.G) == torch.device("cpu")


# ----------------------------------------------------------------------------- precision and determinism

def test_fp16_on_cpu_trains_with_a_scaler_per_optimiser_and_resumes_exactly(tiny_npz, tmp_path):
    """train.amp=fp16 works on the CPU too (torch's CPU autocast has fp16): a GradScaler per
    optimiser, its state in the checkpoint, resume bit-exact."""
    make = lambda steps: tiny_config(tiny_npz, **{"train.fast": True, "train.amp": "fp16", "train.steps": steps,
                                                  "reg.r1_gamma": 1.0})
    a, b = assert_resume_exact(make, tmp_path, steps=4)
    assert set(a.variant.scalers) == {"opt_g", "opt_d"}
    _, meta = checkpoint.read(checkpoint.latest_checkpoint(a.run_dir))
    assert set(meta["scaler_state"]) == {"opt_g", "opt_d"} and meta["scaler_state"]["opt_d"]["scale"] > 0
    assert b.variant.scaler_state() == a.variant.scaler_state()
    # an fp16 step really ran in fp16
    v = build_variant(make(1)).to("cpu")
    with v.autocast():
        assert v.G(v.G.latent.draw(2, torch.Generator().manual_seed(0))).dtype == torch.float16


def test_bf16_and_fp32_have_no_scaler(tiny_npz):
    for opts in ({}, {"train.fast": True}, {"train.amp": "fp16"}):  # fp16 without the fast path is plain fp32
        assert build_variant(tiny_config(tiny_npz, **opts)).to("cpu").scalers == {}


def test_deterministic_is_a_no_op_in_effect_on_cpu_and_restores_the_flag(tiny_npz, tmp_path):
    before = torch.are_deterministic_algorithms_enabled()
    a = train(tiny_config(tiny_npz), tmp_path / "a")
    b = train(tiny_config(tiny_npz, **{"train.deterministic": True}), tmp_path / "b")
    assert torch.are_deterministic_algorithms_enabled() == before
    ta, _ = checkpoint.read(checkpoint.latest_checkpoint(a.run_dir))
    tb, _ = checkpoint.read(checkpoint.latest_checkpoint(b.run_dir))
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


# ----------------------------------------------------------------------------- CUDA (skipped without a GPU)

@pytest.mark.cuda
def test_cuda_training_is_on_the_gpu_and_samples_on_the_cpu(tiny_npz, tmp_path):
    """A GPU-trained checkpoint samples on a CPU; its images match the GPU's within rounding."""
    res = train(tiny_config(tiny_npz, **{"train.device": "cuda"}), tmp_path / "r")
    tensors, meta = checkpoint.read(checkpoint.latest_checkpoint(res.run_dir))
    assert meta["device"].startswith("cuda") and "extra/cuda_rng" in tensors
    on_cpu = load_for_sampling(res.run_dir, "cpu")
    on_gpu = load_for_sampling(res.run_dir, "cuda")
    a, b = generate(on_cpu.variant.sampler(), 16, seed=1), generate(on_gpu.variant.sampler(), 16, seed=1)
    assert a.device.type == b.device.type == "cpu" and a.dtype == torch.uint8
    assert (a.int() - b.int()).abs().max() <= 2  # TF32 off: fp32 on both, a few ulps apart at most


@pytest.mark.cuda
@pytest.mark.parametrize("opts", [{}, {"train.fast": True}, {"train.fast": True, "train.amp": "fp16"}],
                         ids=["fp32", "bf16", "fp16"])
def test_cuda_deterministic_resume_is_bit_exact(tiny_npz, tmp_path, opts):
    make = lambda steps: tiny_config(tiny_npz, **{"train.device": "cuda", "train.deterministic": True,
                                                  "train.steps": steps, "aug.policy": "color,translation,cutout",
                                                  **opts})
    a, _ = assert_resume_exact(make, tmp_path, steps=6)
    assert devices.module_device(a.variant.G).type == "cuda"


@pytest.mark.cuda
def test_cuda_and_cpu_draw_the_same_batches_and_noise(tiny_npz, tmp_path):
    ta = Trainer(tiny_config(tiny_npz, **{"train.device": "cpu"}), tmp_path / "a")
    tb = Trainer(tiny_config(tiny_npz, **{"train.device": "cuda"}), tmp_path / "b")
    assert torch.equal(ta._noise(8, seeded(0, 2, 1)), tb._noise(8, seeded(0, 2, 1)).cpu())
    assert torch.equal(ta._real_batch(2, None)[0], tb._real_batch(2, None)[0].cpu())
    for a, b in zip(ta.variant.D.parameters(), tb.variant.D.parameters()):
        assert torch.equal(a.detach(), b.detach().cpu())


@pytest.mark.cuda
def test_cuda_features_agree_with_the_cpu(tiny_npz):
    """The metric backbone on the GPU (TF32 off) agrees with the CPU: features within 1e-3 relative
    (max abs diff / max abs value), FD between the two feature sets below 1e-3."""
    from fewgan.metrics import BackboneUnavailable
    from fewgan.metrics.evaluate import backbone
    from fewgan.metrics.fd import fd_from_features
    from fewgan.metrics.features import extract

    try:
        bb_cpu, bb_gpu = backbone("effnet-lite0", "cpu"), backbone("effnet-lite0", "cuda")
    except BackboneUnavailable as e:
        pytest.skip(str(e))
    x = load_images(tiny_npz, 32, 3).x
    with devices.backend_flags(torch.device("cuda"), fast=False, deterministic=False):
        fg, pg = extract(bb_gpu, x)
    fc, pc = extract(bb_cpu, x)
    assert fg.device.type == "cpu"
    rel = (fg - fc).abs().max() / fc.abs().max()
    assert rel < 1e-3, float(rel)
    assert (pg - pc).abs().max() < 1e-3
    assert fd_from_features(fc, fg) < 1e-3


@pytest.mark.mps
def test_mps_training_runs(tiny_npz, tmp_path):
    res = train(tiny_config(tiny_npz, **{"train.device": "mps"}), tmp_path / "r")
    assert math.isfinite(res.last_stats["loss_d"])
