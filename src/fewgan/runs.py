"""The run folder: where each file lives, and how it is read. The one owner of the format.

A run folder (what ``fewgan train`` and each job of ``fewgan experiment`` write)::

    config.yaml          the resolved config, written when the run starts
    stats.jsonl          one JSON line per logged iteration (stats.jsonl.gz: the compact copy a
                         finished experiment run keeps in version control)
    metrics.json         the last evaluation; metrics.jsonl: every evaluation, one line each
    checkpoints/         ckpt_<step>.safetensors
    samples/             step_<step>.png grids and final.png
    eval/                nearest_neighbours.png of the last evaluation
    done.json            written last by the experiment runner: the run's results row

An experiment folder keeps its runs under ``runs/<run>/``. This module needs only the standard
library and PyYAML (no torch, no matplotlib), so anything that reads runs can import it cheaply.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

__all__ = [
    "CONFIG", "STATS", "STATS_GZ", "METRICS", "METRICS_LOG", "CHECKPOINTS", "SAMPLES", "EVAL", "DONE",
    "RUN_MARKERS", "RUNS_DIR",
    "config_path", "stats_path", "metrics_path", "metrics_log_path", "checkpoints_dir", "samples_dir",
    "eval_dir", "done_path",
    "load_jsonl", "read_stats", "read_metrics", "last_metrics", "read_config",
    "is_run", "is_done", "read_done", "write_done", "compress_stats",
    "natural_key", "run_dirs", "finished_runs",
]

CONFIG = "config.yaml"
STATS = "stats.jsonl"
STATS_GZ = "stats.jsonl.gz"
METRICS = "metrics.json"
METRICS_LOG = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
SAMPLES = "samples"
EVAL = "eval"
DONE = "done.json"
RUNS_DIR = "runs"  # an experiment folder's run folders
# a folder holding any of these is a run folder
RUN_MARKERS = (CONFIG, STATS, METRICS_LOG)


# ---------------------------------------------------------------------------- paths


def config_path(run: str | Path) -> Path:
    return Path(run) / CONFIG


def stats_path(run: str | Path) -> Path:
    return Path(run) / STATS


def metrics_path(run: str | Path) -> Path:
    """metrics.json: the last evaluation."""
    return Path(run) / METRICS


def metrics_log_path(run: str | Path) -> Path:
    """metrics.jsonl: every evaluation, appended."""
    return Path(run) / METRICS_LOG


def checkpoints_dir(run: str | Path) -> Path:
    return Path(run) / CHECKPOINTS


def samples_dir(run: str | Path) -> Path:
    return Path(run) / SAMPLES


def eval_dir(run: str | Path) -> Path:
    return Path(run) / EVAL


def done_path(run: str | Path) -> Path:
    return Path(run) / DONE


# ---------------------------------------------------------------------------- reading


def load_jsonl(path: str | Path) -> list[dict]:
    """Records of a JSON-lines file. Tolerant: a missing file gives [], blank lines are
    skipped, and so are lines that are not a JSON object (e.g. the half-written last
    line of a run that is still training). Without the file, its gzipped copy (``<name>.gz``)
    is read."""
    p = Path(path)
    gz = p.with_name(p.name + ".gz")
    if not p.is_file() and not gz.is_file():
        return []
    # finished experiment runs keep a gzipped copy (stats.jsonl.gz) in version control
    opener = (lambda: open(p, encoding="utf-8", errors="replace")) if p.is_file() else \
        (lambda: gzip.open(gz, "rt", encoding="utf-8", errors="replace"))
    out: list[dict] = []
    with opener() as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return out


def read_stats(run: str | Path) -> list[dict]:
    """The per-iteration stats records (stats.jsonl, else stats.jsonl.gz)."""
    return load_jsonl(stats_path(run))


def read_metrics(run: str | Path) -> list[dict]:
    """Every evaluation record (metrics.jsonl)."""
    return load_jsonl(metrics_log_path(run))


def last_metrics(run: str | Path) -> dict | None:
    """The last line of metrics.jsonl (None without a file or a line). Strict: a damaged last line
    raises, so a finished run is never tabled from a half-written evaluation."""
    p = metrics_log_path(run)
    if not p.is_file():
        return None
    lines = [ln for ln in p.read_text().splitlines() if ln.strip()]
    return json.loads(lines[-1]) if lines else None


def read_config(run: str | Path) -> dict | None:
    """config.yaml as plain data (None without the file)."""
    import yaml

    p = config_path(run)
    if not p.is_file():
        return None
    return yaml.safe_load(p.read_text()) or {}


def is_run(path: str | Path) -> bool:
    """Whether `path` is a run folder (holds config.yaml, stats.jsonl or metrics.jsonl)."""
    return any((Path(path) / m).is_file() for m in RUN_MARKERS)


# ---------------------------------------------------------------------------- the done marker


def is_done(run: str | Path) -> bool:
    return done_path(run).is_file()


def read_done(run: str | Path) -> dict:
    """The results row a finished experiment run left in done.json."""
    return json.loads(done_path(run).read_text())


def write_done(run: str | Path, row: dict) -> Path:
    """Write done.json (atomically: the marker is either whole or absent)."""
    from .training.checkpoint import atomic_write

    p = done_path(run)
    atomic_write(p, lambda tmp: tmp.write_text(json.dumps(row, indent=1)))
    return p


def compress_stats(run: str | Path) -> Path:
    """stats.jsonl -> stats.jsonl.gz beside it (the compact copy that can live in version control)."""
    import shutil

    run = Path(run)
    with open(run / STATS, "rb") as src, gzip.open(run / STATS_GZ, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return run / STATS_GZ


# ---------------------------------------------------------------------------- an experiment's runs


def natural_key(text: str) -> list:
    """Sort key that orders the numbers inside names by value: g_steps=2 before g_steps=10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text)]


def run_dirs(exp: str | Path) -> list[Path]:
    """Every folder under the experiment's runs/, finished or not, in natural order."""
    d = Path(exp) / RUNS_DIR
    if not d.is_dir():
        return []
    return sorted((p for p in d.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))


def finished_runs(exp: str | Path) -> list[Path]:
    """The run folders of an experiment that have done.json, in natural order (g=2 before g=10)."""
    return sorted((p.parent for p in (Path(exp) / RUNS_DIR).glob(f"*/{DONE}")), key=lambda p: natural_key(p.name))
