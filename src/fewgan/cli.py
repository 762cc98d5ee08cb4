"""The `fewgan` command: train | sample | eval | experiment | report | compare | fdsearch | data info | presets | teacher.

Built on Typer (commands, options, help) and rich (progress, tables). Config overrides are
free-form `--section.key=value` arguments after the named options, e.g.
`fewgan train --preset dcgan --train.lr_d=4e-4 --model.spectral_norm=true`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from . import config as config_mod
from . import runs

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Train GANs on limited image data and measure how well they work.")
data_app = typer.Typer(no_args_is_help=True, help="Inspect data sources.")
app.add_typer(data_app, name="data")
from .cli_teacher import teacher_app  # noqa: E402  (fewgan teacher train | sample)

app.add_typer(teacher_app, name="teacher")
console = Console(stderr=True, soft_wrap=True)  # soft wrap: paths in errors stay whole

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}
_DEVICE_HELP = ("Where to compute: auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps "
                "(README \"Devices and precision\").")
# exit codes (README "What survives a fault"): 2 bad input, 3 stopped on a NaN / inf,
# 74 a file could not be written (EX_IOERR), 128 + signal number when interrupted (130 Ctrl-C, 143 SIGTERM)
EXIT_NONFINITE = 3
EXIT_IO = 74


def _fail(msg: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {msg}")
    raise typer.Exit(code)


def _write_failed(e: OSError, run: Optional[Path] = None) -> None:
    """One line for a file that could not be written, the run's last good checkpoint, exit EXIT_IO."""
    from .training.checkpoint import as_write_error, latest_checkpoint

    w = as_write_error(e, e.filename or "?")
    msg = str(w)
    if run is not None:
        last = latest_checkpoint(run)
        msg += (f"; last good checkpoint: {last}; rerun with --resume --out {run} once the cause is gone"
                if last else "; no checkpoint was written; rerun once the cause is gone")
    _fail(msg, EXIT_IO)


def _build_config(preset: str, config_file: Optional[Path], overrides: list[str], **direct) -> config_mod.Config:
    from .api import build_config

    extra = [f"--{k}={v}" for k, v in direct.items() if v is not None]
    return build_config(preset, extra + overrides, config_file=config_file)


@app.command(context_settings=_EXTRA)
def train(
    ctx: typer.Context,
    preset: str = typer.Option("dcgan", "--preset", "-p", help="Preset name (see `fewgan presets`)."),
    config_file: Optional[Path] = typer.Option(None, "--config", "-c", help="A YAML config file instead of a preset."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Data: 'emoji', an .npz file or an image folder."),
    steps: Optional[int] = typer.Option(None, "--steps", "-s", help="Training iterations (train.steps)."),
    resolution: Optional[int] = typer.Option(None, "--resolution", "-r", help="Image size (data.resolution)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (train.seed)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default runs/<preset>-<time>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its latest checkpoint."),
    device: Optional[str] = typer.Option(None, "--device", help=_DEVICE_HELP + " Default: the config's train.device "
                                         "(auto)."),
) -> None:
    """Train a GAN. Extra `--section.key=value` arguments override the config.

    Exit codes: 0 done, 2 bad input, 3 stopped on a NaN / inf (train.on_nonfinite), 74 a file could
    not be written, 130 / 143 interrupted by Ctrl-C / SIGTERM (resumable with --resume)."""
    from .api import ResumeError, default_run_dir, resume_config
    from .data import DataError
    from .training.checkpoint import CheckpointError
    from .training.loop import NonFiniteError, RunExistsError, Trainer

    overrides = list(ctx.args)
    try:
        if resume:
            if out is None:
                _fail("--resume needs --out RUN_FOLDER")
            direct = {"train.steps": steps, "train.device": device}
            changes = [f"--{k}={v}" for k, v in direct.items() if v is not None] + overrides
            try:
                cfg = resume_config(out, changes)  # the policy: which keys may change (api.RESUME_MUTABLE)
            except ResumeError as e:
                _fail(str(e))
        else:
            cfg = _build_config(preset, config_file, overrides, **{
                "data.source": data, "train.steps": steps, "data.resolution": resolution, "train.seed": seed,
                "train.device": device})
            if out is None:
                out = default_run_dir(cfg)
        console.print(f"run folder: [bold]{out}[/]  preset: {cfg.preset}  data: {cfg.data.source} "
                      f"@ {cfg.data.resolution}px  steps: {cfg.train.steps}")
        trainer = Trainer(cfg, out, resume=resume)
        result = trainer.run()
    except NonFiniteError as e:
        _fail(str(e), EXIT_NONFINITE)
    except RunExistsError as e:
        _fail(str(e))
    except OSError as e:  # disk full, permission denied, read-only: the file and the cause, no traceback
        _write_failed(e, out)
    except (config_mod.ConfigError, DataError, CheckpointError, KeyError, ValueError) as e:
        _fail(str(e).strip("'\""))
    console.print(f"done: step {result.step}; samples in {runs.samples_dir(out)}; stats in {runs.stats_path(out)}"
                  + (f"; {result.rollbacks} rollback(s) after non-finite values" if result.rollbacks else ""))
    if result.interrupted:
        raise typer.Exit(128 + (result.signal or 2))


@app.command()
def sample(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file or a run folder (uses its latest checkpoint)."),
    n: int = typer.Option(64, "--n", "-n", help="How many images."),
    out: Path = typer.Option(Path("samples.png"), "--out", "-o",
                             help="Output: a .png grid, an .npz (x uint8 NHWC), or a folder for PNG files."),
    seed: int = typer.Option(0, "--seed", help="Noise seed; the same seed gives the same images."),
    raw: bool = typer.Option(False, "--raw", help="Use the raw G even if the run kept an EMA copy."),
    cls: Optional[str] = typer.Option(None, "--class", help="Conditional generators: only this class (name or index). "
                                      "Without it a .png grid holds one row per class."),
    device: str = typer.Option("auto", "--device", help=_DEVICE_HELP + " A checkpoint trained anywhere samples "
                               "anywhere (--device cpu)."),
) -> None:
    """Generate images from a trained generator."""
    import numpy as np

    from .images import save_grid, save_pngs
    from .sampling import class_grid, class_index, generate, load_for_sampling
    from .training.checkpoint import CheckpointError

    try:
        run = load_for_sampling(checkpoint, device)
    except (CheckpointError, config_mod.ConfigError, ValueError) as e:
        _fail(str(e))
    pipe = run.variant.G if raw else run.variant.sampler()
    y, nrow = None, None  # labels for a class-conditional generator; grid columns
    if pipe.conditional:
        k = int(run.meta.get("num_classes", 0))
        names = list(run.meta.get("class_names") or [str(i) for i in range(k)])
        if cls is not None:
            try:
                y = torch_full_labels(n, class_index(cls, names))
            except ValueError as e:
                _fail(str(e))
        elif out.suffix == ".png":
            y, nrow = class_grid(k, n)  # one row per class
            n = len(y)
        else:
            y = torch_arange_labels(n, k)
    elif cls is not None:
        _fail("--class needs a class-conditional generator (trained with --model.conditional=true)")
    imgs = generate(pipe, n, seed, y=y)
    if out.suffix == ".png":
        save_grid(imgs, out, nrow=nrow)
    elif out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        labels = {} if y is None else {"y": y.numpy()}  # which class each conditional sample was drawn for
        np.savez_compressed(out, x=imgs.permute(0, 2, 3, 1).numpy(), **labels)
    elif out.suffix == "":
        save_pngs(imgs, out)
    else:
        _fail(f"--out {out}: expected a .png grid, an .npz file, or a folder (no suffix)")
    console.print(f"{n} samples from {run.path} (step {run.meta['step']}) -> {out}")


@app.command("eval")
def eval_cmd(
    target: str = typer.Argument(..., help="A run folder (latest checkpoint), a checkpoint file, or a data source "
                                            "(npz / image folder / 'emoji') whose images are evaluated as if generated."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Real data to compare with (default: the run's)."),
    n: int = typer.Option(1000, "--n", "-n", help="Generated samples (for a run or checkpoint)."),
    backbone: str = typer.Option("effnet-lite0", "--backbone", "-b",
                                 help="Feature network: effnet-lite0 | effnet-lite2 | inception."),
    backbones: Optional[str] = typer.Option(None, "--backbones",
                                            help="More backbones, comma-separated (e.g. effnet-lite2): their fd, kid, "
                                                 "precision, recall get a suffix (fd_lite2). Default: the run's "
                                                 "eval.backbones."),
    n_boot: int = typer.Option(50, "--n-boot", help="Bootstrap resamples for the FD / KID intervals (0 = none)."),
    resolution: Optional[int] = typer.Option(None, "--resolution", "-r", help="Resolution for data-source targets "
                                             "(default 32)."),
    channels: Optional[int] = typer.Option(None, "--channels", help="Channels for data-source targets: 3 RGB "
                                           "(default) | 1 grey."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where metrics.json goes (default: the run folder)."),
    device: str = typer.Option("auto", "--device", help=_DEVICE_HELP + " The generator and the feature backbone "
                               "run there."),
) -> None:
    """Evaluate a generator: FD, KID, IS, precision/recall, density/coverage, NDB, memorisation, leaks.

    A run trained with data.holdout > 0 is scored against its training part, and against the
    held-out part (fd_holdout, kid_holdout, next to the real floor fd_floor), unless --data is given."""
    from .api import evaluate_target, is_run_target
    from .data import DataError
    from .metrics import BackboneUnavailable
    from .training.checkpoint import CheckpointError

    is_run = is_run_target(target)
    extra = tuple(b.strip() for b in backbones.split(",") if b.strip()) if backbones is not None else None
    if not is_run and data is None:
        _fail("evaluating a data source as if generated needs --data REAL_SOURCE")
    try:
        res = evaluate_target(target, data=data, n=n, backbone=backbone, backbones=extra, n_boot=n_boot,
                              resolution=resolution, channels=channels, out=out, device=device)
    except (CheckpointError, DataError, config_mod.ConfigError, BackboneUnavailable, ValueError) as e:
        _fail(str(e))
    rec, out_dir = res.rec, res.out_dir
    t = Table(title=f"{target} @ step {rec['step']}: {rec['n_gen']} generated vs {rec['n_real']} real, "
                    f"{rec['resolution']}px, backbone {rec['backbone']}")
    t.add_column("metric")
    t.add_column("value")
    from .analysis import table
    from .metrics.evaluate import backbone_suffix

    for k in table.display_keys(rec, [backbone_suffix(b) for b in rec.get("extra_backbones", ())]):
        t.add_row(k, table.fmt(k, rec[k]))
    Console().print(t)
    console.print(f"wrote {runs.metrics_path(out_dir)}" + (f" and appended to {runs.METRICS_LOG}" if is_run else ""))


def torch_arange_labels(n: int, num_classes: int):
    import torch

    return torch.arange(n) % max(1, num_classes)


def torch_full_labels(n: int, index: int):
    import torch

    return torch.full((n,), index, dtype=torch.long)


@app.command()
def experiment(
    spec: Path = typer.Argument(..., help="Experiment spec YAML (presets x data x grid x seeds)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Experiment folder (default experiments/<name>)."),
    executor: str = typer.Option("local", "--executor", help="Where runs execute: local (one after another) | ray."),
    address: Optional[str] = typer.Option(None, "--address", help="ray: a cluster (auto | ray://HOST:PORT; default "
                                          "$RAY_ADDRESS, else a local Ray on this machine)."),
    cpus_per_job: Optional[float] = typer.Option(None, "--cpus-per-job", help="ray: CPUs per run (its torch threads "
                                                 "follow; default 1)."),
    gpus_per_job: Optional[float] = typer.Option(None, "--gpus-per-job", help="ray: GPUs per run, fractional to share "
                                                 "one GPU (e.g. 0.25; default 0)."),
    retries: Optional[int] = typer.Option(None, "--retries", help="ray: reruns of a run whose worker died (it "
                                          "resumes from its checkpoint; default 2)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Build the report when the grid is done."),
    only: list[str] = typer.Option([], "--only", help="Run only part of the grid now: KEY=PATTERN with KEY data, "
                                   "preset, variant, seed or run (shell pattern); repeat the option to combine."),
    device: Optional[str] = typer.Option(None, "--device", help=_DEVICE_HELP + " Sets train.device of every run "
                                         "(default: each run's config)."),
) -> None:
    """Run a grid of runs with equal budgets; finished runs are skipped, interrupted ones resumed."""
    from .data import DataError
    from .training.loop import NonFiniteError
    from .experiments.executor import JobErrors
    from .experiments.runner import run_experiment

    opts = {k: v for k, v in {"address": address, "cpus_per_job": cpus_per_job, "gpus_per_job": gpus_per_job,
                              "retries": retries}.items() if v is not None}
    try:
        folder = run_experiment(spec, out, executor, log=console.print, only=only or None, executor_options=opts,
                                device=device)
    except JobErrors as e:
        _fail(f"{e}\nthe tables hold the finished runs; fix the failed runs and rerun the same command", code=1)
    except (config_mod.ConfigError, DataError, KeyError, ValueError) as e:
        _fail(str(e).strip("'\""))
    except NonFiniteError as e:  # the message names the run
        _fail(f"{e}; the tables hold the finished runs", EXIT_NONFINITE)
    except OSError as e:
        _write_failed(e)
    except KeyboardInterrupt as e:
        console.print("interrupted: rerun the same command to continue where it stopped")
        raise typer.Exit(128 + (getattr(e, "signum", None) or 2))
    console.print(f"tables: {folder / 'summary.md'}, {folder / 'results.csv'}")
    if report:
        from .report import build_report

        console.print(f"report: {build_report(folder)}")


@app.command(context_settings=_EXTRA)
def fdsearch(
    ctx: typer.Context,
    preset: str = typer.Option("song2023", "--preset", "-p", help="Preset with a CFT latent."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Data source."),
    fd_max: int = typer.Option(8, "--fd-max", help="Largest FD to try."),
    epochs: int = typer.Option(40, "--epochs", help="Epochs per trial run."),
    window_start: int = typer.Option(31, "--window-start", help="First epoch of the stability window."),
    seeds: list[int] = typer.Option([0, 1], "--seed", help="Seeds per FD (repeat the option)."),
    out: Path = typer.Option(Path("runs/fdsearch"), "--out", "-o", help="Folder for the trial runs and the report."),
    device: Optional[str] = typer.Option(None, "--device", help=_DEVICE_HELP + " Default: the preset's train.device "
                                         "(auto)."),
) -> None:
    """Choose CFT's FD automatically: raise it from 1 until training is stable after epoch 30."""
    from .fdsearch import search, train_for_search, write_report

    try:
        base = _build_config(preset, None, list(ctx.args), **{"data.source": data, "train.device": device})
        if base.latent.kind != "cft":
            _fail(f"preset {preset!r} has latent.kind={base.latent.kind!r}; the FD search needs a CFT latent")
        result = search(lambda fd, seed: train_for_search(base, fd, seed, epochs, window_start, out), list(seeds),
                        fd_max, window_start, log=console.print)
    except (config_mod.ConfigError, KeyError, ValueError) as e:
        _fail(str(e).strip("'\""))
    write_report(result, out, "fewgan " + " ".join(sys.argv[1:]), window_start, epochs)
    console.print(f"chosen FD = {result['chosen_fd']} ({result['reason']}); evidence: {out / 'fdsearch.md'}")


@app.command("report")
def report_cmd(
    path: Path = typer.Argument(..., help="A run folder or an experiment folder."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report folder (default <path>/report)."),
) -> None:
    """Build an offline HTML page (and a Markdown twin) with curves, metrics and sample grids."""
    from .report import build_report

    try:
        page = build_report(path, out)
    except ValueError as e:
        _fail(str(e))
    except OSError as e:
        _write_failed(e)
    console.print(f"report: {page} (Markdown: {page.with_name('report.md')})")


@app.command("compare")
def compare_cmd(
    exp: Path = typer.Argument(..., help="An experiment folder (with results.csv)."),
    baseline: str = typer.Option(..., "--baseline", "-b", help="The variant the others are compared with."),
    with_exp: Optional[list[Path]] = typer.Option(None, "--with", "-w", help="Add the runs of another experiment with the same protocol (repeatable), e.g. the main table holding an ablation's baseline."),
    metric: Optional[list[str]] = typer.Option(None, "--metric", "-m", help="Metrics (repeatable); default fd kid is recall coverage ndb_js."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the Markdown here (e.g. EXP/compare.md)."),
    reach: Optional[str] = typer.Option(None, "--reach", help="Also count the iterations (and training minutes) each run "
                                        "needs to reach an FD: a number, 'baseline' (the baseline's mean final FD) or "
                                        "'baseline-best' (the mean of its seeds' lowest FD during training)."),
) -> None:
    """Each variant against a baseline: mean ± std, relative change (overall and per seed), stability."""
    from .compare import DEFAULT_METRICS, compare_experiment
    from .training.checkpoint import atomic_write

    try:
        if reach is not None and reach not in ("baseline", "baseline-best"):
            try:
                float(reach)
            except ValueError:
                _fail(f"--reach {reach!r}: expected a number (an FD), 'baseline' or 'baseline-best'")
        md = compare_experiment(exp, baseline, tuple(metric) if metric else DEFAULT_METRICS, with_exps=with_exp or (),
                                reach=reach)
    except ValueError as e:
        _fail(str(e))
    if out:
        atomic_write(out, lambda p: p.write_text(md + "\n"))
    print(md)


@data_app.command("info")
def data_info(
    source: str = typer.Argument(..., help="'emoji', an .npz file or an image folder."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable files instead of failing."),
) -> None:
    """Count, sizes, modes and classes of a data source."""
    from .data import DataError, describe

    try:
        info = describe(source, skip_bad=skip_bad)
    except DataError as e:
        _fail(str(e))
    t = Table(title=f"{info['source']} ({info['kind']})", show_header=False)
    t.add_row("images", str(info["count"]))
    t.add_row("sizes", ", ".join(f"{k}: {v}" for k, v in info["sizes"].items()))
    t.add_row("modes", ", ".join(f"{k}: {v}" for k, v in info["modes"].items()))
    classes = info.get("classes") or {}
    t.add_row("classes", f"{len(classes)}: " + ", ".join(f"{k} ({v})" for k, v in classes.items()) if classes else "none")
    if info.get("skipped"):
        t.add_row("skipped", str(info["skipped"]))
    Console().print(t)


@app.command()
def presets() -> None:
    """List the presets with their one-line descriptions."""
    from importlib import resources

    t = Table("preset", "description")
    for name in config_mod.preset_names():
        text = resources.files("fewgan.presets").joinpath(f"{name}.yaml").read_text()
        first = next((ln[1:].strip() for ln in text.splitlines() if ln.startswith("#")), "")
        t.add_row(name, first)
    Console().print(t)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
