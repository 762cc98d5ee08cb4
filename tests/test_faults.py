"""Fault injection: what a run survives (README "What survives a fault").

NaN planted in D's weights (stop / rollback / continue), a full disk in the checkpoint and stats
writers, a read-only run folder, SIGTERM, a truncated newest checkpoint. Each fault is injected
into the tiny configs of conftest.py, so every test takes seconds.
"""

import errno
import json
import math
import os
import signal

import pytest
import torch
import yaml
from safetensors import SafetensorError
from typer.testing import CliRunner

from conftest import tiny_config
from fewgan.cli import EXIT_IO, EXIT_NONFINITE, app
from fewgan.training import checkpoint, loop
from fewgan.training.checkpoint import CheckpointError, WriteError
from fewgan.training.loop import (Fault, NonFiniteError, Trainer, attempt_seed, nonfinite_stat, nonfinite_tensor,
                                  train)

cli = CliRunner()
SMALL = ["--resolution", "16", "--model.g_width=8", "--model.d_width=8", "--train.batch_size=8",
         "--log.progress=false", "--log.sample_every=0"]


def _cfg(tiny_npz, steps, **kw):
    return tiny_config(tiny_npz, **{"train.steps": steps, "log.ckpt_every": 2, **kw})


def plant_nan(tr: Trainer, at_step: int, once: bool = True, seen: list | None = None) -> None:
    """Fill a D weight with NaN just before the D update of iteration `at_step` (1-based, as in the
    stats); `once`: only the first time (a transient divergence a rollback can get past). `seen`
    collects (step index, noise, real batch) of every D update, to tell replays from fresh draws."""
    d_step, state = tr.variant.d_step, {"planted": False}

    def wrapped(batch):
        if seen is not None:
            seen.append((batch.step, batch.noise.clone(), batch.x.clone()))
        if batch.step == at_step - 1 and not (once and state["planted"]):
            state["planted"] = True
            with torch.no_grad():
                next(tr.variant.D.parameters()).fill_(float("nan"))
        return d_step(batch)

    tr.variant.d_step = wrapped


def _same_weights(a: Trainer, b: Trainer) -> None:
    for name, m in a.variant.modules().items():
        sa, sb = m.state_dict(), b.variant.modules()[name].state_dict()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (name, k)


def _finite_checkpoints(run_dir) -> list[str]:
    names = []
    for ck in checkpoint.list_checkpoints(run_dir):
        tensors, _ = checkpoint.read(ck)
        assert all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point()), ck
        names.append(ck.name)
    return names


def _steps(run_dir) -> list[int]:
    return [json.loads(ln)["step"] for ln in (run_dir / "stats.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------------------- helpers
def test_nonfinite_helpers_look_at_losses_norms_and_regularizers_only():
    assert nonfinite_stat({"loss_d": 1.0, "grad_norm_g": 2.0, "reg_r1": 0.1, "lr_d": float("nan")}, 3) is None
    assert nonfinite_stat({"loss_d": None, "reg_flag": True, "loss_note": "x"}, 1) is None
    f = nonfinite_stat({"reg_r1": float("inf"), "grad_norm_d": float("nan"), "loss_g": float("nan")}, 7)
    assert f == Fault(7, "loss_g", "nan")  # losses first, whatever the dict order
    assert nonfinite_stat({"reg_r1": float("-inf")}, 2) == Fault(2, "reg_r1", "-inf")
    lin = torch.nn.Linear(2, 2)
    assert nonfinite_tensor({"D": lin}) is None
    with torch.no_grad():
        lin.bias[1] = float("inf")
    assert nonfinite_tensor({"G": torch.nn.Linear(1, 1), "D": lin}) == "D.bias"
    assert attempt_seed(5, 0) == 5 and len({attempt_seed(5, r) for r in range(4)}) == 4


def test_write_errors_name_the_file_and_the_cause(tmp_path):
    e = checkpoint.as_write_error(SafetensorError(
        "Error while serializing: I/O error: No space left on device (os error 28) at path \"/x/.tmpAbc\""),
        tmp_path / "ckpt.safetensors")
    assert str(e) == f"cannot write {tmp_path / 'ckpt.safetensors'}: disk full (No space left on device)"
    assert "permission denied" in str(checkpoint.as_write_error(PermissionError(errno.EACCES, "x"), "f"))
    assert "read-only file system" in str(checkpoint.as_write_error(OSError(errno.EROFS, "x"), "f"))
    assert checkpoint.as_write_error(SafetensorError("tensors share memory"), "f") is None  # not an I/O error


# ---------------------------------------------------------------------------------------- non-finite
def test_nan_stop_leaves_a_finite_checkpoint_and_resume_continues_from_it(tiny_npz, tmp_path):
    clean = Trainer(_cfg(tiny_npz, 8), tmp_path / "clean")
    clean.run()
    tr = Trainer(_cfg(tiny_npz, 8), tmp_path / "run")
    plant_nan(tr, at_step=5)
    with pytest.raises(NonFiniteError) as err:
        tr.run()
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("step 5: loss_d is nan; stopped (train.on_nonfinite=stop)")
    assert msg.endswith(f"last good checkpoint: {tmp_path / 'run' / 'checkpoints' / 'ckpt_00000004.safetensors'}; "
                        "--resume continues from it")
    assert _finite_checkpoints(tmp_path / "run") == ["ckpt_00000002.safetensors", "ckpt_00000004.safetensors"]
    assert _steps(tmp_path / "run")[-1] == 5  # the failing step's stats are kept until a resume trims them
    again = Trainer(_cfg(tiny_npz, 8), tmp_path / "run", resume=True)
    assert again.step == 4
    again.run()
    _same_weights(clean, again)  # the stop lost nothing: the resumed run is the clean run
    assert _steps(tmp_path / "run") == list(range(1, 9))


def test_nan_rollback_recovers_with_fresh_batches_and_lower_lrs(tiny_npz, tmp_path):
    cfg = _cfg(tiny_npz, 10, **{"train.on_nonfinite": "rollback"})
    tr, seen = Trainer(cfg, tmp_path / "run"), []
    plant_nan(tr, at_step=5, seen=seen)
    res = tr.run()
    assert res.step == 10 and res.rollbacks == 1
    assert nonfinite_tensor(tr.variant.modules()) is None
    assert tr.variant.lrs() == {"lr_g": cfg.train.lr_g * 0.5, "lr_d": cfg.train.lr_d * 0.5}
    recs = [json.loads(ln) for ln in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == list(range(1, 11))  # the diverged steps are replaced, not repeated
    (rb,) = [r for r in recs if "rollback" in r]
    assert rb["step"] == 5 and rb["rollback"] == 1
    assert any("loss_d was nan at step 5: rolled back to step 4" in w and "rollback 1 of 3" in w
               for w in rb["warnings"])
    assert all(math.isfinite(r["loss_d"]) for r in recs)
    # step index 4 was drawn twice: the retry saw other noise and other real images, not a replay
    (first, *_), retry = [s for s in seen if s[0] == 4], [s for s in seen if s[0] == 4][-1]
    assert not torch.equal(first[1], retry[1]) and not torch.equal(first[2], retry[2])
    _, meta = checkpoint.read(checkpoint.latest_checkpoint(tmp_path / "run"))
    (ev,) = meta["nonfinite_state"]["events"]
    assert ev["step"] == 5 and ev["what"] == "loss_d" and ev["to_step"] == 4
    assert _finite_checkpoints(tmp_path / "run")


def test_resume_across_a_rollback_is_bit_exact(tiny_npz, tmp_path):
    def make(steps):
        return _cfg(tiny_npz, steps, **{"train.on_nonfinite": "rollback"})

    a = Trainer(make(10), tmp_path / "a")
    plant_nan(a, at_step=5)
    a.run()
    b = Trainer(make(8), tmp_path / "b")
    plant_nan(b, at_step=5)
    b.run()  # rolled back at 5, finished at 8
    c = Trainer(make(10), tmp_path / "b", resume=True)
    assert c.step == 8 and c.rollbacks == 1 and c.variant.lrs() == a.variant.lrs()
    c.run()
    _same_weights(a, c)


def test_rollbacks_are_limited_then_the_run_stops(tiny_npz, tmp_path):
    cfg = _cfg(tiny_npz, 8, **{"train.on_nonfinite": "rollback", "train.max_rollbacks": 2, "log.ckpt_every": 0})
    tr = Trainer(cfg, tmp_path / "run")
    plant_nan(tr, at_step=3, once=False)  # it diverges every time
    with pytest.raises(NonFiniteError, match=r"step 3: loss_d is nan; stopped after 2 rollbacks "
                                             r"\(train.max_rollbacks=2\); last good checkpoint: .*ckpt_00000000"):
        tr.run()
    assert _finite_checkpoints(tmp_path / "run") == ["ckpt_00000000.safetensors"]  # written to roll back to


def test_continue_never_writes_or_rotates_away_to_a_nonfinite_checkpoint(tiny_npz, tmp_path, capsys):
    cfg = _cfg(tiny_npz, 6, **{"train.on_nonfinite": "continue", "log.keep_ckpts": 1})
    tr = Trainer(cfg, tmp_path / "run")
    plant_nan(tr, at_step=3)  # NaN weights from step 3 on
    res = tr.run()  # as before: it trains on, without a word from the guard about the stats
    assert res.step == 6 and not math.isfinite(res.last_stats["loss_d"])
    assert _finite_checkpoints(tmp_path / "run") == ["ckpt_00000002.safetensors"]
    out = capsys.readouterr().out
    assert "step 4: weights " in out and "checkpoint not written" in out and "ckpt_00000002" in out
    assert "final checkpoint not written" in out


def test_nonfinite_weights_with_finite_stats_are_caught_at_the_checkpoint(tiny_npz, tmp_path):
    tr = Trainer(_cfg(tiny_npz, 6), tmp_path / "run")
    end = tr.variant.end_iteration

    def poison_g_ema_after_3(step, stats):  # the weights go bad after the iteration's numbers were taken
        out = end(step, stats)
        if step == 3:
            with torch.no_grad():
                next(tr.variant.G.parameters()).fill_(float("inf"))
        return out

    tr.variant.end_iteration = poison_g_ema_after_3
    with pytest.raises(NonFiniteError, match=r"step 4: weights G\.\S+ is non-finite.*ckpt_00000002"):
        tr.run()
    assert _finite_checkpoints(tmp_path / "run") == ["ckpt_00000002.safetensors"]


# ---------------------------------------------------------------------------------------- I/O errors
def test_disk_full_in_the_checkpoint_writer(tiny_npz, tmp_path, monkeypatch):
    clean = Trainer(_cfg(tiny_npz, 6), tmp_path / "clean")
    clean.run()
    real, calls = checkpoint.save_file, []

    def full_disk(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:  # the second checkpoint: half written, then the disk is full (as safetensors says it)
            open(filename, "wb").write(b"\0" * 100)
            raise SafetensorError(f"Error while serializing: I/O error: No space left on device (os error 28) "
                                  f"at path \"{filename}\"")
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    tr = Trainer(_cfg(tiny_npz, 6), tmp_path / "run")
    with pytest.raises(WriteError) as err:
        tr.run()
    ck4 = tmp_path / "run" / "checkpoints" / "ckpt_00000004.safetensors"
    assert str(err.value) == f"cannot write {ck4}: disk full (No space left on device)"
    assert _finite_checkpoints(tmp_path / "run") == ["ckpt_00000002.safetensors"]  # intact, readable
    assert os.listdir(tmp_path / "run" / "checkpoints") == ["ckpt_00000002.safetensors"]  # no partial file left
    monkeypatch.setattr(checkpoint, "save_file", real)  # space freed
    again = Trainer(_cfg(tiny_npz, 6), tmp_path / "run", resume=True)
    assert again.step == 2
    again.run()
    _same_weights(clean, again)


class _FullAfter:
    """A file whose writes fail with ENOSPC once `lines` lines are in, the failing one half written."""

    def __init__(self, f, lines):
        self.f, self.left = f, lines

    def write(self, text):
        if self.left <= 0:
            self.f.write(text[: len(text) // 2])
            self.f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        self.left -= 1
        return self.f.write(text)

    def __getattr__(self, name):
        return getattr(self.f, name)


def test_disk_full_in_the_stats_writer(tiny_npz, tmp_path, monkeypatch):
    clean = Trainer(_cfg(tiny_npz, 6), tmp_path / "clean")
    clean.run()
    monkeypatch.setattr(loop, "open", lambda p, mode="r": _FullAfter(open(p, mode), 3), raising=False)
    with pytest.raises(WriteError) as err:
        Trainer(_cfg(tiny_npz, 6), tmp_path / "run").run()
    assert str(err.value) == f"cannot write {tmp_path / 'run' / 'stats.jsonl'}: disk full (No space left on device)"
    assert _finite_checkpoints(tmp_path / "run") == ["ckpt_00000002.safetensors"]
    monkeypatch.undo()
    again = Trainer(_cfg(tiny_npz, 6), tmp_path / "run", resume=True)
    again.run()  # the half-written line is dropped with the steps after the checkpoint
    assert _steps(tmp_path / "run") == list(range(1, 7))
    _same_weights(clean, again)


def test_read_only_run_folder_simulated(tiny_npz, tmp_path, monkeypatch):
    train(_cfg(tiny_npz, 4), tmp_path / "run")
    real = os.replace

    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", str(src))

    monkeypatch.setattr(checkpoint.os, "replace", read_only)
    with pytest.raises(WriteError, match=r"cannot write .*run/config.yaml: read-only file system \(Read-only"):
        Trainer(_cfg(tiny_npz, 6), tmp_path / "run", resume=True)
    monkeypatch.setattr(checkpoint.os, "replace", real)
    assert _finite_checkpoints(tmp_path / "run") == ["ckpt_00000002.safetensors", "ckpt_00000004.safetensors"]
    assert Trainer(_cfg(tiny_npz, 6), tmp_path / "run", resume=True).run().step == 6


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 0o555; the simulated EROFS test covers it")
def test_read_only_run_folder_chmod(tiny_npz, tmp_path):
    run = tmp_path / "run"
    train(_cfg(tiny_npz, 4), run)
    for d in (run, run / "checkpoints", run / "samples"):
        d.chmod(0o555)
    try:
        r = cli.invoke(app, ["train", "--resume", "--out", str(run), "--steps", "6", "--log.progress=false"])
        assert r.exit_code == EXIT_IO, r.output
        assert "permission denied" in r.output and "ckpt_00000004" in r.output
    finally:
        for d in (run, run / "checkpoints", run / "samples"):
            d.chmod(0o755)
    assert Trainer(_cfg(tiny_npz, 6), run, resume=True).run().step == 6


# ---------------------------------------------------------------------------------------- SIGTERM
def test_sigterm_checkpoints_at_the_step_and_resume_equals_uninterrupted(tiny_npz, tmp_path):
    clean = Trainer(_cfg(tiny_npz, 6, **{"log.ckpt_every": 0}), tmp_path / "clean")
    clean.run()
    tr = Trainer(_cfg(tiny_npz, 6, **{"log.ckpt_every": 0}), tmp_path / "run")
    it = tr.iteration

    def term_at_3():
        rec = it()
        if tr.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # as Slurm / Kubernetes / Ray stop a job
        return rec

    tr.iteration = term_at_3
    res = tr.run()
    assert res.interrupted and res.step == 3 and res.signal == signal.SIGTERM
    assert checkpoint.latest_checkpoint(tmp_path / "run").name == "ckpt_00000003.safetensors"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is gone after the run
    again = Trainer(_cfg(tiny_npz, 6, **{"log.ckpt_every": 0}), tmp_path / "run", resume=True)
    again.run()
    _same_weights(clean, again)


# ---------------------------------------------------------------------------------------- unreadable checkpoint
def test_truncated_newest_checkpoint_falls_back_to_the_previous_one(tiny_npz, tmp_path, capsys):
    clean = Trainer(_cfg(tiny_npz, 6), tmp_path / "clean")
    clean.run()
    run = tmp_path / "run"
    train(_cfg(tiny_npz, 5), run)  # checkpoints 2, 4 and the final 5
    newest = run / "checkpoints" / "ckpt_00000005.safetensors"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    tr = Trainer(_cfg(tiny_npz, 6), run, resume=True)
    assert tr.step == 4
    (w,) = tr.warnings
    assert str(newest) in w and "ckpt_00000004.safetensors" in w and "cannot be read" in w
    assert w in capsys.readouterr().err
    assert (run / "checkpoints" / "ckpt_00000005.safetensors.unreadable").is_file()  # kept, out of the rotation
    tr.run()
    _same_weights(clean, tr)


def test_no_readable_checkpoint_is_an_error_not_a_silent_restart(tiny_npz, tmp_path):
    run = tmp_path / "run"
    train(_cfg(tiny_npz, 2, **{"log.ckpt_every": 0}), run)
    (run / "checkpoints" / "ckpt_00000002.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no checkpoint can be read: ckpt_00000002.safetensors"):
        Trainer(_cfg(tiny_npz, 4), run, resume=True)


# ---------------------------------------------------------------------------------------- the command line
def test_cli_nan_stop_prints_one_line_and_exits_with_its_code(tiny_npz, tmp_path):
    out = tmp_path / "run"
    r = cli.invoke(app, ["train", "--data", str(tiny_npz), "--steps", "6", "--out", str(out), *SMALL,
                         "--log.ckpt_every=2", "--train.lr_d=1e38", "--train.lr_g=1e38"])
    assert r.exit_code == EXIT_NONFINITE == 3, r.output
    errors = [ln for ln in r.output.splitlines() if "error" in ln]
    assert len(errors) == 1 and "is nan; stopped (train.on_nonfinite=stop)" in errors[0], r.output
    assert "Traceback" not in r.output
    assert _finite_checkpoints(out) == []  # nothing non-finite was written
    # the run can be resumed with a rollback instead (what to do on a NaN may change on resume)
    r = cli.invoke(app, ["train", "--resume", "--out", str(out), "--train.on_nonfinite=rollback",
                         "--train.max_rollbacks=1"])
    assert r.exit_code == EXIT_NONFINITE and "stopped after 1 rollback " in r.output, r.output


def test_cli_disk_full_is_one_line_and_resume_works(tiny_npz, tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(loop, "open", lambda p, mode="r": _FullAfter(open(p, mode), 3), raising=False)
    r = cli.invoke(app, ["train", "--data", str(tiny_npz), "--steps", "6", "--out", str(out), *SMALL,
                         "--log.ckpt_every=2"])
    assert r.exit_code == EXIT_IO == 74, r.output
    (line,) = [ln for ln in r.output.splitlines() if "error" in ln]
    assert line == (f"error: cannot write {out / 'stats.jsonl'}: disk full (No space left on device); last good "
                    f"checkpoint: {out / 'checkpoints' / 'ckpt_00000002.safetensors'}; rerun with --resume --out "
                    f"{out} once the cause is gone")
    monkeypatch.undo()
    r = cli.invoke(app, ["train", "--resume", "--out", str(out), "--log.progress=false"])
    assert r.exit_code == 0 and "done: step 6" in r.output, r.output


def test_cli_sigterm_exits_143(tiny_npz, tmp_path, monkeypatch):
    it = Trainer.iteration

    def term_at_2(self):
        rec = it(self)
        if self.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return rec

    monkeypatch.setattr(Trainer, "iteration", term_at_2)
    out = tmp_path / "run"
    r = cli.invoke(app, ["train", "--data", str(tiny_npz), "--steps", "6", "--out", str(out), *SMALL])
    assert r.exit_code == 143, r.output
    assert "interrupted by SIGTERM at step 2" in r.output
    assert checkpoint.latest_checkpoint(out).name == "ckpt_00000002.safetensors"


def test_experiment_names_the_run_that_went_nonfinite(tiny_npz, tmp_path):
    from fewgan.experiments.runner import run_experiment

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "t", "presets": ["dcgan"], "data": [str(tiny_npz)], "seeds": [0], "steps": 4,
        "overrides": {"data.resolution": 16, "model.g_width": 8, "model.d_width": 8, "model.nz": 16,
                      "train.batch_size": 8, "log.sample_every": 0, "log.ckpt_every": 0, "log.progress": False,
                      "train.lr_d": 1e38, "train.lr_g": 1e38}}))
    with pytest.raises(NonFiniteError, match=r"^run dcgan\S*: step \d+: \S+ is nan; stopped"):
        run_experiment(spec, tmp_path / "exp", log=lambda *a: None)
    assert not list((tmp_path / "exp").glob("runs/*/done.json"))  # failed, not finished: a rerun retries it
