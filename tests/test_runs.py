"""fewgan.runs: the run folder's paths, its readers, the done marker, an experiment's runs."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from fewgan import runs


def test_paths_name_the_run_folder_files(tmp_path):
    assert runs.config_path(tmp_path) == tmp_path / "config.yaml"
    assert runs.stats_path(tmp_path) == tmp_path / "stats.jsonl"
    assert runs.metrics_path(tmp_path) == tmp_path / "metrics.json"
    assert runs.metrics_log_path(tmp_path) == tmp_path / "metrics.jsonl"
    assert runs.checkpoints_dir(tmp_path) == tmp_path / "checkpoints"
    assert runs.samples_dir(tmp_path) == tmp_path / "samples"
    assert runs.eval_dir(tmp_path) == tmp_path / "eval"
    assert runs.done_path(tmp_path) == tmp_path / "done.json"


def test_load_jsonl_is_tolerant_and_reads_the_gzipped_copy(tmp_path):
    assert runs.load_jsonl(tmp_path / "missing.jsonl") == []
    (tmp_path / "stats.jsonl").write_text('{"a": 1}\n\n[1, 2]\nnot json\n{"a": 2}\n{"a": 3')  # half-written tail
    assert runs.read_stats(tmp_path) == [{"a": 1}, {"a": 2}]
    gz = tmp_path / "gz"
    gz.mkdir()
    with gzip.open(gz / "stats.jsonl.gz", "wt") as f:
        f.write('{"step": 1}\n{"step": 2}\n')
    assert runs.read_stats(gz) == [{"step": 1}, {"step": 2}]
    (gz / "stats.jsonl").write_text('{"step": 9}\n')  # the plain file wins
    assert runs.read_stats(gz) == [{"step": 9}]


def test_metrics_readers_and_config(tmp_path):
    assert runs.last_metrics(tmp_path) is None and runs.read_metrics(tmp_path) == []
    assert runs.read_config(tmp_path) is None and not runs.is_run(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "fd": 3.0}\n{"step": 2, "fd": 2.0}\n\n')
    assert runs.last_metrics(tmp_path) == {"step": 2, "fd": 2.0}
    assert [m["step"] for m in runs.read_metrics(tmp_path)] == [1, 2]
    assert runs.is_run(tmp_path)
    (tmp_path / "config.yaml").write_text("train:\n  batch_size: 8\n")
    assert runs.read_config(tmp_path) == {"train": {"batch_size": 8}}


def test_done_marker_and_compressed_stats(tmp_path):
    assert not runs.is_done(tmp_path)
    runs.write_done(tmp_path, {"run": "r", "fd": 1.5})
    assert runs.is_done(tmp_path) and runs.read_done(tmp_path) == {"run": "r", "fd": 1.5}
    assert json.loads((tmp_path / "done.json").read_text()) == {"run": "r", "fd": 1.5}
    (tmp_path / "stats.jsonl").write_text('{"step": 1}\n')
    gz = runs.compress_stats(tmp_path)
    assert gz == tmp_path / "stats.jsonl.gz" and gzip.open(gz, "rt").read() == '{"step": 1}\n'


def test_runs_of_an_experiment_in_natural_order(tmp_path):
    assert runs.run_dirs(tmp_path) == [] and runs.finished_runs(tmp_path) == []
    for g in (10, 2, 1):
        (tmp_path / "runs" / f"g={g}").mkdir(parents=True)
    for g in (10, 2):
        runs.write_done(tmp_path / "runs" / f"g={g}", {"g": g})
    assert [p.name for p in runs.run_dirs(tmp_path)] == ["g=1", "g=2", "g=10"]
    assert [p.name for p in runs.finished_runs(tmp_path)] == ["g=2", "g=10"]
    assert sorted(["a10", "a2", "b1"], key=runs.natural_key) == ["a2", "a10", "b1"]


@pytest.mark.parametrize("module", ["fewgan.experiments.runner", "fewgan.runs", "fewgan.compare"])
def test_reading_runs_does_not_import_matplotlib(module):
    code = f"import sys, {module}; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", f"importing {module} imports matplotlib"
