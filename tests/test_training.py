import json
import math

import pytest
import torch

from conftest import tiny_config
from fewgan.data import load_images
from fewgan.training import checkpoint
from fewgan.training.loop import RunExistsError, Trainer, batch_indices, train
from fewgan.variants import Batch, build_variant


def _params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _one_step(cfg, data):
    torch.manual_seed(cfg.train.seed)
    v = build_variant(cfg, data.num_classes)
    before_g, before_d = _params(v.G), _params(v.D)
    x = data.x[:8].float() / 127.5 - 1
    rng = torch.Generator().manual_seed(0)
    noise = v.G.latent.draw(8, rng)
    sd = v.d_step(Batch(x, None, noise, None, rng))
    sg = v.g_step(Batch(x, None, noise, None, rng))
    return v, before_g, before_d, {**sd, **sg}


OPTIONS = [
    {"loss.kind": "bce"},
    {"loss.kind": "minimax"},
    {"loss.kind": "lsgan"},
    {"loss.kind": "hinge"},
    {"loss.smooth": "onesided_const"},
    {"loss.smooth": "onesided_uniform", "loss.flip_p": 0.2},
    {"model.spectral_norm": True},
    {"model.arch": "mlp"},
    {"model.arch": "mlp", "model.mlp_batchnorm": True, "model.spectral_norm": True},
    {"train.ema": 0.9},
    {"train.fast": True},
    {"data.channels": 1},
]


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_one_step_changes_parameters_and_is_finite(tiny_npz, opts):
    cfg = tiny_config(tiny_npz, **opts)
    data = load_images(tiny_npz, 16, cfg.data.channels)
    v, bg, bd, stats = _one_step(cfg, data)
    for k in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g"):
        assert math.isfinite(stats[k]), (k, stats)
    ag, ad = _params(v.G), _params(v.D)
    changed_g = [k for k in bg if bg[k].is_floating_point() and not torch.equal(bg[k], ag[k])]
    changed_d = [k for k in bd if bd[k].is_floating_point() and not torch.equal(bd[k], ad[k])]
    weights_g = [k for k in bg if k.endswith("weight") and bg[k].dim() > 1]
    # every weight matrix of both networks moved
    assert set(weights_g) <= set(changed_g)
    assert any("weight" in k for k in changed_d)


@pytest.mark.parametrize("d_steps,g_steps,reuse", [(1, 1, False), (1, 2, False), (1, 4, True), (2, 1, False)])
def test_update_counts(tiny_npz, tmp_path, d_steps, g_steps, reuse):
    cfg = tiny_config(tiny_npz, **{"train.d_steps": d_steps, "train.g_steps": g_steps,
                                   "train.reuse_z": reuse, "train.steps": 3})
    tr = Trainer(cfg, tmp_path / "run")
    calls = {"d": 0, "g": 0, "noise": []}
    d_step, g_step = tr.variant.d_step, tr.variant.g_step

    def count_d(b):
        calls["d"] += 1
        return d_step(b)

    def count_g(b):
        calls["g"] += 1
        calls["noise"].append(b.noise.clone())
        return g_step(b)

    tr.variant.d_step, tr.variant.g_step = count_d, count_g
    tr.run()
    assert calls["d"] == 3 * d_steps and calls["g"] == 3 * g_steps
    # Adam's step counter agrees: one optimiser step per update
    assert int(tr.variant.opt_g.state_dict()["state"][0]["step"]) == 3 * g_steps
    assert int(tr.variant.opt_d.state_dict()["state"][0]["step"]) == 3 * d_steps
    first_iter = calls["noise"][:g_steps]
    same = all(torch.equal(first_iter[0], n) for n in first_iter[1:])
    if g_steps > 1:
        assert same == reuse


def test_batches_cover_each_epoch_once():
    n, b = 40, 8
    seen = torch.cat([batch_indices(n, b, 0, k) for k in range(5)])
    assert sorted(seen.tolist()) == list(range(40))
    assert not torch.equal(torch.cat([batch_indices(n, b, 0, k) for k in range(5, 10)]), seen)


def test_run_writes_everything(tiny_npz, tmp_path):
    cfg = tiny_config(tiny_npz, **{"train.steps": 4, "log.sample_every": 2, "log.ckpt_every": 2})
    res = train(cfg, tmp_path / "run")
    run = tmp_path / "run"
    assert res.step == 4
    assert (run / "config.yaml").is_file()
    lines = [json.loads(l) for l in (run / "stats.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [1, 2, 3, 4]
    for key in ("loss_d", "loss_g", "log_ratio", "d_real", "d_fake", "grad_norm_d", "grad_norm_g",
                "lr_g", "lr_d", "img_per_s", "epoch"):
        assert key in lines[-1]
    assert lines[0]["log_ratio"] == pytest.approx(math.log(lines[0]["loss_g"] / lines[0]["loss_d"]))
    assert {p.name for p in (run / "samples").iterdir()} == {"step_00000002.png", "step_00000004.png", "final.png"}
    assert [p.name for p in checkpoint.list_checkpoints(run)] == ["ckpt_00000002.safetensors", "ckpt_00000004.safetensors"]


def test_existing_run_is_never_overwritten(tiny_npz, tmp_path):
    cfg = tiny_config(tiny_npz, **{"train.steps": 1})
    train(cfg, tmp_path / "run")
    before = (tmp_path / "run" / "stats.jsonl").read_bytes()
    with pytest.raises(RunExistsError, match="--resume"):
        train(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "stats.jsonl").read_bytes() == before


@pytest.mark.parametrize("opts", [{}, {"model.arch": "mlp", "train.ema": 0.5, "loss.smooth": "onesided_uniform",
                                       "loss.flip_p": 0.3, "train.g_steps": 2}, {"model.spectral_norm": True}])
def test_resume_equals_uninterrupted(tiny_npz, tmp_path, opts):
    from conftest import assert_resume_exact

    assert_resume_exact(lambda n: tiny_config(tiny_npz, **{"train.steps": n, **opts}), tmp_path)
    la = [json.loads(l)["loss_d"] for l in (tmp_path / "a" / "stats.jsonl").read_text().splitlines()]
    lb = [json.loads(l)["loss_d"] for l in (tmp_path / "b" / "stats.jsonl").read_text().splitlines()]
    assert la == lb


def test_same_seed_same_run_different_seed_differs(tiny_npz, tmp_path):
    r = []
    for i, seed in enumerate([0, 0, 1]):
        tr = Trainer(tiny_config(tiny_npz, **{"train.seed": seed, "train.steps": 2}), tmp_path / str(i))
        tr.run()
        r.append(tr.variant.G.state_dict())
    k = "net.net.0.weight"
    assert torch.equal(r[0][k], r[1][k]) and not torch.equal(r[0][k], r[2][k])


def test_checkpoint_round_trip(tiny_npz, tmp_path):
    cfg = tiny_config(tiny_npz, **{"train.ema": 0.9, "train.steps": 2})
    tr = Trainer(cfg, tmp_path / "run")
    tr.run()
    path = checkpoint.latest_checkpoint(tmp_path / "run")
    tensors, meta = checkpoint.read(path)
    assert meta["step"] == 2 and meta["config"]["train"]["ema"] == 0.9
    torch.manual_seed(123)  # different init, then load
    fresh = build_variant(cfg, 2)
    checkpoint.load_modules(tensors, fresh.modules(), path)
    checkpoint.load_optimizers(tensors, meta, fresh.optimizers())
    for name, m in tr.variant.modules().items():
        for k, v in m.state_dict().items():
            assert torch.equal(v, fresh.modules()[name].state_dict()[k])
    so, sf = tr.variant.opt_g.state_dict(), fresh.opt_g.state_dict()
    assert torch.equal(so["state"][0]["exp_avg"], sf["state"][0]["exp_avg"])
    assert so["param_groups"] == sf["param_groups"]


def test_checkpoint_errors_are_clear(tmp_path):
    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(checkpoint.CheckpointError, match="junk.safetensors"):
        checkpoint.read(bad)
    with pytest.raises(checkpoint.CheckpointError, match="no such"):
        checkpoint.read(tmp_path / "missing.safetensors")


def test_atomic_write_keeps_old_file_when_writer_dies(tmp_path):
    target = tmp_path / "ck.safetensors"
    target.write_bytes(b"old")

    def dies(tmp):
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        checkpoint.atomic_write(target, dies)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ck.safetensors"]  # no temp file left behind


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    """safetensors creates owner-only files; checkpoints get the umask's mode, replacements keep theirs."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = tmp_path / "ck.safetensors"
        checkpoint.save(path, {"G": torch.nn.Linear(2, 2)}, {}, {"step": 1})
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.chmod(path, 0o640)
        checkpoint.save(path, {"G": torch.nn.Linear(2, 2)}, {}, {"step": 2})
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_sigint_checkpoints_and_stops(tiny_npz, tmp_path):
    import os
    import signal

    cfg = tiny_config(tiny_npz, **{"train.steps": 50})
    tr = Trainer(cfg, tmp_path / "run")
    it = tr.iteration

    def interrupt_at_3():
        rec = it()
        if tr.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return rec

    tr.iteration = interrupt_at_3
    res = tr.run()
    assert res.interrupted and res.step == 3
    assert checkpoint.latest_checkpoint(tmp_path / "run").name == "ckpt_00000003.safetensors"


def test_tensorboard_scalars_and_images(tiny_npz, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_config(tiny_npz, **{"train.steps": 2, "log.tensorboard": True, "log.sample_every": 2})
    train(cfg, tmp_path / "run")
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    acc.Reload()
    assert {"loss_d", "loss_g", "log_ratio"} <= set(acc.Tags()["scalars"])
    assert len(acc.Scalars("loss_d")) == 2
    assert "samples" in acc.Tags()["images"]


def test_plain_progress_prints_warnings_without_markup(capsys):
    from fewgan.training.loop import _Progress

    from rich.markup import escape

    _Progress(False, 10, 0).log("[yellow]warning[/] step 3: saturation fired")
    assert capsys.readouterr().out == "warning step 3: saturation fired\n"
    # a warning's own brackets are escaped by the loop and come out as written
    _Progress(False, 10, 0).log(f"[yellow]warning[/] {escape('[/tmp/x] D(x) in [0.9, 1]')}")
    assert capsys.readouterr().out == "warning [/tmp/x] D(x) in [0.9, 1]\n"
