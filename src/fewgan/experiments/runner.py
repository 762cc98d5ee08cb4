"""Run an experiment grid, resumably, and aggregate its results.

Layout of an experiment folder:
    spec.yaml             the spec, copied; rerunning with a different spec is refused (comments and
                          layout may change: the copy follows them)
    runs/<run>/           one ordinary run folder per job (config, stats, samples, checkpoints, metrics)
    runs/<run>/done.json  written last: a run with it is skipped on rerun; one without is resumed
    results.csv           one row per finished run
    summary.csv / .md     mean ± std over seeds per data set x variant
"""

from __future__ import annotations

import csv
import dataclasses
import math
import shutil
import statistics
from pathlib import Path

import yaml

from .. import config as config_mod
from ..config import ConfigError
from .. import runs
from ..analysis import table
from ..training.checkpoint import atomic_write
from .executor import EXECUTORS
from .spec import Job, Spec, load_spec, select

# the columns, from the metric table (analysis.table)
METRICS = table.SUMMARY
# the honest-evaluation checks (docs/methods.md §21), carried when a run's evaluation has them: held-out
# FD / KID and the real floor, a second backbone (suffix _lite2 etc.), augmentation leaks
HOLDOUT_METRICS = table.HOLDOUT
LEAK_METRICS = table.LEAKS


def check_metrics(rec: dict) -> list[str]:
    """The §21 keys present in an evaluation record, in a fixed order (extra backbones by their suffix)."""
    from ..metrics.evaluate import backbone_suffix

    keys = list(HOLDOUT_METRICS)
    extra = rec.get("extra_backbones") or ()
    for b in extra.split(",") if isinstance(extra, str) else extra:  # a list in metrics, a string in a row
        keys += table.backbone_keys(backbone_suffix(b))
    keys += LEAK_METRICS
    return [k for k in keys if k in rec]


def run_job(job_and_dir: tuple[Job, Path]) -> dict:
    """Train (or resume) one run and evaluate its final generator; returns its results row.

    A run stopped by a NaN / inf (train.on_nonfinite) raises NonFiniteError naming the run; it
    writes no done.json, so a rerun resumes it from its last good checkpoint."""
    from ..training.loop import NonFiniteError, Trainer

    job, run_dir = job_and_dir
    if runs.is_done(run_dir):
        return runs.read_done(run_dir)
    resume = run_dir.exists() and runs.config_path(run_dir).is_file()
    tr = Trainer(job.cfg, run_dir, resume=resume)
    try:
        res = tr.run()
    except NonFiniteError as e:
        raise e.in_run(job.run) from None
    if res.interrupted:
        stop = KeyboardInterrupt()
        stop.signum = res.signal  # SIGTERM exits 143, Ctrl-C 130
        raise stop
    last = runs.last_metrics(run_dir)
    if last is None or last.get("step") != tr.step:
        last = tr.evaluate()
    row = {"run": job.run, "variant": job.variant, "data": job.data, "seed": job.seed, "step": tr.step,
           **{k: last.get(k) for k in METRICS}, "backbone": last.get("backbone"),
           "n_gen": last.get("n_gen"), "n_real": last.get("n_real"), "sharpness_ratio": last.get("sharpness_ratio"),
           "img_per_s": _median_img_s(run_dir), "train_s": train_seconds(run_dir),
           **{k: last.get(k) for k in check_metrics(last)}}
    if last.get("extra_backbones"):
        row["extra_backbones"] = ",".join(last["extra_backbones"])
    # a compact copy of the per-step stats that can live in version control (the report reads it)
    runs.compress_stats(run_dir)
    runs.write_done(run_dir, row)
    return row


def _median_img_s(run_dir: Path) -> float | None:
    vals = [r.get("img_per_s") for r in runs.read_stats(run_dir)]
    vals = [v for v in vals if v]
    return statistics.median(vals) if vals else None


def iteration_seconds(rec: dict, batch_size: int) -> float | None:
    """Wall-clock seconds of one logged iteration (its D and G updates, without evaluation or
    checkpointing): the loop logs img_per_s = batch_size * max(d_updates, 1) / seconds."""
    ips = rec.get("img_per_s")
    if not ips:
        return None
    return batch_size * max(int(rec.get("d_updates") or 1), 1) / ips


def train_seconds(run_dir: Path, until_step: int | None = None) -> float | None:
    """Training wall-clock of a run: the sum of its iterations' seconds (evaluations, grids and
    checkpoints excluded, so runs that evaluate at different times compare fairly); with
    `until_step`, of its iterations up to and including that step."""
    cfg = runs.read_config(run_dir)
    if cfg is None:
        return None
    batch = int(cfg.get("train", {}).get("batch_size", 0) or 0)
    stats = runs.read_stats(run_dir)
    if until_step is not None:
        stats = [r for r in stats if r.get("step", 0) <= until_step]
    secs = [iteration_seconds(r, batch) for r in stats] if batch else []
    secs = [s for s in secs if s is not None]
    return math.fsum(secs) if secs else None


def prepare(spec_path: str | Path, out: str | Path | None = None) -> tuple[Spec, Path]:
    spec = load_spec(spec_path)
    out = Path(out) if out else Path("experiments") / spec.name
    saved = out / "spec.yaml"
    text = Path(spec_path).read_text()
    if saved.is_file():
        old = saved.read_text()
        if yaml.safe_load(old) != yaml.safe_load(text):
            raise ConfigError(f"{out} holds an experiment with a different spec ({saved}); "
                              "use another --out, or restore the original spec to resume it")
        if old != text:  # the same spec with edited comments or layout: keep the copy in step
            atomic_write(saved, lambda tmp: tmp.write_text(text))
    else:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(spec_path, saved)
    return spec, out


def run_experiment(spec_path: str | Path, out: str | Path | None = None, executor: str = "local",
                   log=print, only: list[str] | None = None, executor_options: dict | None = None,
                   device: str | None = None) -> Path:
    """Run (or resume) the spec's grid into `out`; `only` (KEY=PATTERN filters, see spec.select)
    runs a part of it now and leaves the rest for a later call; the tables cover every finished run.
    `executor` names an entry of EXECUTORS (local, ray), built with `executor_options`; results are
    tabled as they arrive, in whatever order the executor finishes them."""
    spec, out = prepare(spec_path, out)
    every = spec.jobs()
    jobs = select(every, only) if only else every
    part = f" ({len(jobs)} of {len(every)} selected by --only {' '.join(only)})" if only else ""
    log(f"experiment {spec.name}: {len(every)} runs -> {out}{part}")
    if device is not None:  # --device: every run's train.device (checked here, once, not in each run)
        from ..devices import resolve_device

        resolve_device(device, "--device")
        jobs = [dataclasses.replace(j, cfg=config_mod.apply_overrides(j.cfg, [f"--train.device={device}"]))
                for j in jobs]
    pending = [(j, out / runs.RUNS_DIR / j.run) for j in jobs]
    for i, row in enumerate(EXECUTORS.get(executor)(**(executor_options or {})).map(run_job, pending), 1):
        log(f"[{i}/{len(jobs)}] {row['run']}: FD {row['fd']:.2f} ({row['backbone']}), KID {row['kid']:.4f}, "
            f"IS {row['is']:.2f}, recall {row['recall']:.2f}")
        write_tables(out, spec)
    return out


def write_tables(out: Path, spec: Spec | None = None) -> None:
    """results.csv from every finished run, and the mean ± std summary (CSV and Markdown)."""
    rows = []
    for run_dir in runs.finished_runs(out):  # in natural order: g=2 before g=10
        r = runs.read_done(run_dir)
        if r.get("train_s") is None:  # runs finished before train_s was recorded: derive it from their stats
            r["train_s"] = train_seconds(run_dir)
        rows.append(r)
    if not rows:
        return
    cols = list(dict.fromkeys(k for r in rows for k in r))  # runs from older versions may lack newer columns
    _write_csv(out / "results.csv", cols, rows)
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["variant"]), []).append(r)
    checks = list(dict.fromkeys(k for r in rows for k in check_metrics(r) if k != "n_holdout"))  # §21 columns
    summary = []
    for (data, variant), rs in groups.items():
        s = {"data": data, "variant": variant, "seeds": len(rs), "step": rs[0]["step"], "backbone": rs[0]["backbone"]}
        for m in METRICS + ("img_per_s", "train_s") + tuple(checks):
            s[f"{m}_mean"], s[f"{m}_std"] = table.mean_std(r.get(m) for r in rs)
        summary.append(s)
    _write_csv(out / "summary.csv", list(summary[0]), summary)
    lines = [f"# {spec.name if spec else out.name}", ""]
    if spec and spec.description:
        lines += [spec.description, ""]
    bb = {r["backbone"] for r in rows}
    lines += [f"Mean ± std over seeds. Backbone: {', '.join(sorted(bb))}; "
              f"{rows[0]['n_gen']} generated vs {rows[0]['n_real']} real images; "
              f"{rows[0]['step']} iterations per run. FD, KID: lower is better; IS, precision, recall, "
              "density, coverage: higher is better; near-copies: fraction of samples much closer to a "
              "training image than training images are to each other; NDB/K, NDB JS: mode collapse "
              "(share of k-means cells whose generated share differs, and the cell-histogram JS "
              "divergence): lower is better. img/s: real images per second through D (median iteration); "
              "train min: training wall-clock per run (sum of iteration times, evaluation excluded; "
              "comparable only within one experiment on one machine).", ""]
    for data in dict.fromkeys(s["data"] for s in summary):
        lines += [f"## {data}", "",
                  "| variant | seeds | FD | KID | IS | precision | recall | density | coverage | near-copies "
                  "| NDB/K | NDB JS | img/s | train min |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in (x for x in summary if x["data"] == data):
            cells = [_pm(s, m) for m in METRICS]
            cells.append(f"{s['img_per_s_mean']:.0f}" if s["img_per_s_mean"] else "")
            cells.append(f"{s['train_s_mean'] / 60:.1f} ± {s['train_s_std'] / 60:.1f}" if s["train_s_mean"] else "")
            lines.append(f"| {s['variant']} | {s['seeds']} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += _checks_table([x for x in summary if x["data"] == data], checks)
    (out / "summary.md").write_text("\n".join(lines))


def _checks_table(summary: list[dict], checks: list[str]) -> list[str]:
    """Markdown table of the held-out / second-backbone / leak columns (mean ± std over seeds);
    a leak cell reads "generated (real)"."""
    gen_cols = [c for c in checks if not c.endswith("_real")]
    if not gen_cols:
        return []
    lines = ["Honest checks (docs/methods.md §21): FD / KID vs the held-out reals and the real floor (held-out vs "
             "train), a second backbone (suffix), and augmentation leaks as generated (real) fractions.", "",
             "| variant | " + " | ".join(gen_cols) + " |", "|---" * (len(gen_cols) + 1) + "|"]
    for s in summary:
        cells = []
        for c in gen_cols:
            cell = _pm(s, c)
            if c.startswith("leak_") and s.get(f"{c}_real_mean") is not None:
                cell += f" ({table.fmt(f'{c}_real', s[f'{c}_real_mean'])})"
            cells.append(cell)
        lines.append(f"| {s['variant']} | " + " | ".join(cells) + " |")
    return lines + [""]


def _pm(s: dict, m: str) -> str:
    return table.fmt_pm(m, s[f"{m}_mean"], s[f"{m}_std"])


def _write_csv(path: Path, cols: list[str], rows: list[dict]) -> None:
    def write(p):
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)
