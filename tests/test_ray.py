"""Experiment grids on Ray (a local Ray on this machine: 2 CPUs, 1 thread per job)."""

import csv
import json
import os
import signal
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from fewgan.experiments.executor import JobErrors, RayExecutor  # noqa: E402
from fewgan.experiments.runner import run_experiment  # noqa: E402

pytestmark = pytest.mark.xdist_group("ray")  # one local Ray for the whole file (scripts/test.sh: --dist loadgroup)

METRIC_COLUMNS = ("fd", "kid", "is", "precision", "recall", "density", "coverage", "near_copy_fraction", "ndb_k",
                  "ndb_js", "fd_holdout", "kid_holdout", "fd_floor", "step")

SPEC = """name: t
presets: [dcgan]
data: [{{source: {src}, resolution: 16, holdout: 0.2}}]
seeds: [0, 1]
steps: 4
grid: {{train.lr_d: [0.0002, 0.0004]}}
overrides: {{model.g_width: 8, model.d_width: 8, model.nz: 16, train.batch_size: 8, log.sample_every: 0,
             log.ckpt_every: 2, log.n_fixed: 8}}
eval: {{n: 16, n_boot: 0}}
"""


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def spec(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "tiny.npz", x=rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8), y=np.arange(40) % 2)
    p = tmp_path / "spec.yaml"
    p.write_text(SPEC.format(src=tmp_path / "tiny.npz"))
    return p


def _rows(folder):
    return {r["run"]: r for r in csv.DictReader(open(folder / "results.csv"))}


def test_no_cluster_at_the_address_is_a_clear_error(spec, tmp_path):
    from typer.testing import CliRunner

    from fewgan.cli import app

    # first in the file: before the module's local Ray starts
    assert not ray.is_initialized()
    r = CliRunner().invoke(app, ["experiment", str(spec), "--out", str(tmp_path / "x"), "--executor", "ray",
                                 "--address", "127.0.0.1:1", "--no-report"])
    assert r.exit_code == 2
    assert "cannot connect to a Ray cluster at 127.0.0.1:1" in r.output
    with pytest.raises(ValueError, match="expected auto, HOST:PORT"):
        RayExecutor(address="nowhere")._init()


def test_ray_grid_equals_local_grid(local_ray, spec, tmp_path):
    import torch

    torch.set_num_threads(1)
    run_experiment(spec, tmp_path / "local", "local", log=lambda *a: None)
    run_experiment(spec, tmp_path / "ray", "ray", log=lambda *a: None, executor_options={"cpus_per_job": 1})
    a, b = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert len(a) == 4 and set(a) == set(b)
    for run in a:
        for col in METRIC_COLUMNS:
            assert a[run][col] == b[run][col], (run, col)
    # each job's torch threads followed its CPUs
    cfg = (tmp_path / "ray" / "runs" / next(iter(b)) / "config.yaml").read_text()
    assert "threads: 1" in cfg and "device: cpu" in cfg  # and its device its (absent) GPU share


def test_job_resources_follow_cpus_and_gpus(spec):
    from fewgan.experiments.executor import with_resources
    from fewgan.experiments.spec import load_spec

    job = load_spec(spec).jobs()[0]
    j, _ = with_resources((job, None), 3, 0.25)
    assert j.cfg.train.threads == 3 and j.cfg.train.device == "cuda"
    j, _ = with_resources((job, None), 1, 0)
    assert j.cfg.train.device == "cpu"


def _kill_once_after_checkpoint(job_and_dir):
    """run_job, but the first time a checkpoint at step 2 is written, SIGKILL this worker."""
    from fewgan.experiments.runner import run_job
    from fewgan.training.loop import Trainer

    job, run_dir = job_and_dir
    marker = run_dir.parent.parent / f"killed-{job.run}"
    orig = Trainer.save_checkpoint

    def save(self, *a, **k):
        path = orig(self, *a, **k)
        if self.step == 2 and not marker.exists():
            marker.write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)
        return path

    Trainer.save_checkpoint = save
    try:
        return run_job(job_and_dir)
    finally:
        Trainer.save_checkpoint = orig


def test_killed_worker_is_retried_and_resumes(local_ray, spec, tmp_path):
    from ray import cloudpickle

    from fewgan.experiments.runner import prepare, run_job

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    s, out = prepare(spec, tmp_path / "killed")
    jobs = [(j, out / "runs" / j.run) for j in s.jobs()[:1]]
    (row,) = list(RayExecutor(cpus_per_job=1, retries=2).map(_kill_once_after_checkpoint, jobs))
    assert (out / f"killed-{jobs[0][0].run}").exists()  # it really died once
    run_dir = jobs[0][1]
    lines = (run_dir / "stats.jsonl").read_text().splitlines()
    assert [json.loads(l)["step"] for l in lines] == [1, 2, 3, 4]  # exactly `steps` lines, no repeats
    import torch

    torch.set_num_threads(1)
    ref = run_job((jobs[0][0], tmp_path / "uninterrupted"))
    for col in METRIC_COLUMNS:
        assert row[col] == ref[col], col


def test_a_failing_job_is_reported_and_the_others_finish(local_ray, spec, tmp_path):
    text = spec.read_text().replace("data: [{", "data: [{source: " + str(tmp_path / "missing.npz")
                                    + ", resolution: 16, label: missing}, {")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)  # the runs on a missing file fail when they load it; the others run on
    with pytest.raises(JobErrors) as err:
        run_experiment(bad, tmp_path / "mixed", "ray", log=lambda *a: None,
                       executor_options={"cpus_per_job": 1, "retries": 0})
    failed = {run for run, _ in err.value.failures}
    assert len(failed) == 4 and all("__missing__" in r for r in failed)
    assert "missing.npz: no such file" in err.value.failures[0][1]
    assert len(_rows(tmp_path / "mixed")) == 4  # every dcgan run finished and is tabled


def test_bad_executor_options_are_clear_errors():
    with pytest.raises(ValueError, match="cpus-per-job"):
        RayExecutor(cpus_per_job=0)
    with pytest.raises(ValueError, match="gpus-per-job"):
        RayExecutor(gpus_per_job=-1)
    from fewgan.experiments.executor import LocalExecutor

    with pytest.raises(ValueError, match="for ray"):
        LocalExecutor(address="auto")
