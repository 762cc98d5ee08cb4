"""The Python API: what the `fewgan` command does, for notebooks and scripts.

    import fewgan

    result = fewgan.train("dcgan", data="emoji", out="runs/demo", train__steps=200)
    gen = fewgan.load(result.run_dir)           # the generator, on the CPU
    images = gen.sample(16, seed=0)             # uint8 (16, C, H, W); the same seed, the same images
    metrics = fewgan.evaluate(result.run_dir)   # FD, KID, precision / recall, ... (also in metrics.json)

Config overrides are keyword arguments named `section__key` (two underscores), one per
config key: `train__lr_d=4e-4, model__spectral_norm=True` sets `train.lr_d` and
`model.spectral_norm`, checked and coerced as `--train.lr_d=4e-4` on the command line is.

The CLI's library decisions live here too (building a config, the resume policy, run vs data
source in `fewgan eval`), so the command and the API cannot drift apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from . import config as config_mod
from . import runs

__all__ = ["train", "load", "sample", "evaluate", "Generator", "RESUME_MUTABLE", "ResumeError",
           "apply", "build_config", "resume_config", "default_run_dir", "is_run_target", "evaluate_target", "EvalOutcome"]

# what may change when a run is resumed without breaking exact continuation (what to do on a
# NaN only matters once one happens, so a run stopped by one can be resumed with a rollback)
# (train.device may change too: a run moves between machines; bit-exact only on the same device)
RESUME_MUTABLE = ("train.steps", "train.max_updates", "train.on_nonfinite", "train.rollback_lr",
                  "train.max_rollbacks", "train.device", "log.")


class ResumeError(ValueError):
    """A resume that cannot continue the run exactly (not a run folder, or a key that may not change)."""


# ----------------------------------------------------------------------------- configs


def _kwargs_to_dict(kwargs: dict[str, Any]) -> dict[str, Any]:
    """{"train__lr_d": 4e-4} -> {"train.lr_d": 4e-4}."""
    out = {}
    for k, v in kwargs.items():
        section, sep, key = k.partition("__")
        if not sep or not section or not key:
            raise TypeError(f"unexpected keyword argument {k!r}; config overrides are section__key=value "
                            f"(e.g. train__lr_d=4e-4)")
        out[f"{section}.{key}"] = v
    return out


def _override_keys(overrides) -> list[str]:
    if not overrides:
        return []
    if isinstance(overrides, dict):
        return list(overrides)
    return [o[2:].split("=", 1)[0] for o in overrides]


def apply(cfg: config_mod.Config, overrides) -> config_mod.Config:
    """`cfg` with overrides applied: command-line strings (`--section.key=value`, parsed as YAML
    values) or a dict of dotted keys to Python values ({"train.lr_d": 4e-4})."""
    if not overrides:
        return cfg
    if not isinstance(overrides, dict):
        return config_mod.apply_overrides(cfg, list(overrides))
    for key, value in overrides.items():
        section, sep, name = key.partition(".")
        if not sep:
            raise config_mod.ConfigError(f"override {key!r}: expected section.key")
        value = str(value) if isinstance(value, Path) else value
        cfg = config_mod.from_dict({section: {name: value}}, cfg, where=f"override {key!r}")
    return cfg


def build_config(preset: str = "dcgan", overrides=None, config_file: str | Path | None = None) -> config_mod.Config:
    """A preset (or a YAML config file, named after its stem unless it sets `preset`) with overrides."""
    if config_file:
        cfg = config_mod.load_preset(str(config_file))
        cfg = config_mod.replace(cfg, preset=cfg.preset or Path(config_file).stem)
    else:
        cfg = config_mod.load_preset(preset)
    return apply(cfg, overrides)


def default_run_dir(cfg: config_mod.Config) -> Path:
    """runs/<preset>-<YYYYmmdd-HHMMSS>, where a new run goes when no folder is given."""
    return Path("runs") / f"{cfg.preset or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"


def resume_config(run_dir: str | Path, overrides=None) -> config_mod.Config:
    """The config a resumed run continues with: its config.yaml plus the overrides, which may only
    touch the keys in RESUME_MUTABLE (anything else would break exact continuation)."""
    run_dir = Path(run_dir)
    cfg_path = runs.config_path(run_dir)
    if not cfg_path.is_file():
        raise ResumeError(f"{run_dir}: not a run folder (no config.yaml) — nothing to resume")
    for key in _override_keys(overrides):
        if not key.startswith(RESUME_MUTABLE):
            raise ResumeError(f"cannot change {key} when resuming (only train.steps, train.max_updates, "
                              "train.on_nonfinite, train.rollback_lr, train.max_rollbacks, train.device and log.* "
                              "may change); start a new run instead")
    base = config_mod.from_dict(config_mod.load_yaml(cfg_path), where=str(cfg_path))
    return apply(base, overrides)


# ----------------------------------------------------------------------------- train


def train(preset: str = "dcgan", data: str | Path | None = None, out: str | Path | None = None,
          resume: bool = False, **overrides):
    """Train a run and return its `RunResult` (run_dir, step, interrupted, last_stats, ...).

    preset: a preset name (`fewgan presets`) or a YAML config file; data: 'emoji', an .npz file
    or an image folder (default: the preset's, emoji); out: the run folder (default
    runs/<preset>-<time>); resume: continue the run in `out` from its latest checkpoint (only
    the RESUME_MUTABLE keys may change then). Overrides: `section__key=value`.

        r = fewgan.train("dcgan", data="emoji", out="runs/demo", train__steps=200, train__lr_d=4e-4)
        r = fewgan.train(out="runs/demo", resume=True, train__steps=400)  # continue it
    """
    from .training.loop import Trainer

    changes = _kwargs_to_dict(overrides)
    if resume:
        if out is None:
            raise ResumeError("resume=True needs out=RUN_FOLDER")
        if data is not None:
            changes = {"data.source": data, **changes}
        cfg = resume_config(out, changes)
    else:
        path = Path(preset)
        as_file = path.suffix in (".yaml", ".yml") and path.is_file()
        if data is not None:
            changes = {"data.source": data, **changes}
        cfg = build_config(preset, changes, config_file=path if as_file else None)
        out = default_run_dir(cfg) if out is None else out
    return Trainer(cfg, Path(out), resume=resume).run()


# ----------------------------------------------------------------------------- load and sample


@dataclass
class Generator:
    """A trained generator: `pipe` (latent sampler -> G, the EMA copy when the run kept one), its
    run's config and the checkpoint's metadata. `sample(n, seed)` draws images."""

    pipe: Any  # fewgan.variants.GeneratorPipeline, on `device`
    cfg: config_mod.Config
    meta: dict
    path: Path  # the checkpoint file
    variant: Any  # the whole variant (raw G, D, ...) as rebuilt from the checkpoint

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @property
    def class_names(self) -> list[str]:
        k = int(self.meta.get("num_classes", 0))
        return list(self.meta.get("class_names") or [str(i) for i in range(k)])

    def sample(self, n: int = 64, seed: int = 0, y=None, raw: bool = False):
        """n images as CPU uint8 (N, C, H, W), noise drawn from `seed` (as `fewgan sample --seed`).
        y: labels for a class-conditional generator (default: classes in turn); raw: the raw G
        instead of the EMA copy."""
        import torch

        from .sampling import generate

        pipe = self.variant.G if raw else self.pipe
        if pipe.conditional and y is None:
            y = torch.arange(n) % max(1, int(self.meta.get("num_classes", 0)))
        return generate(pipe, n, seed, y=y)


def load(run_or_checkpoint: str | Path, device: str = "cpu") -> Generator:
    """The generator of a run folder (its latest checkpoint) or of a checkpoint file, on `device`
    (default the CPU, wherever it was trained).

        gen = fewgan.load("runs/demo")
        gen.cfg.data.resolution, gen.step
        images = gen.sample(64, seed=0)
    """
    from .sampling import load_for_sampling

    run = load_for_sampling(run_or_checkpoint, device)
    return Generator(run.variant.sampler(), run.cfg, run.meta, run.path, run.variant)


def sample(run: str | Path | Generator, n: int = 64, seed: int = 0, device: str = "cpu"):
    """n images (CPU uint8, N x C x H x W) from a run folder, a checkpoint or a loaded Generator.

        images = fewgan.sample("runs/demo", 16, seed=0)
    """
    gen = run if isinstance(run, Generator) else load(run, device)
    return gen.sample(n, seed)


# ----------------------------------------------------------------------------- evaluate


def is_run_target(target: str | Path) -> bool:
    """True for a run folder or a checkpoint file, False for a data source (npz / folder / 'emoji')."""
    t = Path(target)
    return (t.is_dir() and runs.config_path(t).is_file()) or t.suffix == ".safetensors"


@dataclass
class EvalOutcome:
    rec: dict  # the metrics record (what metrics.json holds)
    out_dir: Path  # where metrics.json was written
    is_run: bool  # a run / checkpoint (metrics.jsonl appended too), or a data source


def evaluate_target(target: str | Path, data: str | Path | None = None, n: int = 1000,
                    backbone: str = "effnet-lite0", backbones: Iterable[str] | None = None, n_boot: int = 50,
                    holdout: bool | str = "auto", resolution: int | None = None, channels: int | None = None,
                    out: str | Path | None = None, device: str = "auto") -> EvalOutcome:
    """`fewgan eval`: a run folder or checkpoint (n generated samples against its data, or
    `data`), or a data source evaluated as if generated against `data` (required then), at
    `resolution` x `resolution` with `channels` channels (default 32 px RGB).

    backbones: further feature spaces (None: the run's eval.backbones); holdout: 'auto' scores a
    run trained with data.holdout > 0 against its training part and its held-out part unless
    `data` is given; False compares with the whole data source; True as 'auto' but requires a
    hold-out. out: where metrics.json goes (default: the run folder, or eval/<name> for data)."""
    import json

    from .data import load_images, split_holdout
    from .metrics.evaluate import EvalSettings, evaluate_generator, evaluate_images
    from .sampling import load_for_sampling
    from .training.checkpoint import atomic_write

    if holdout not in ("auto", True, False):
        raise ValueError(f"holdout={holdout!r}: expected 'auto', True or False")
    extra = None if backbones is None else tuple(backbones)
    if is_run_target(target):
        run = load_for_sampling(target, device)
        cfg = run.cfg
        real = load_images(data or cfg.data.source, cfg.data.resolution, cfg.data.channels, skip_bad=cfg.data.skip_bad)
        held = None
        has_holdout = bool(getattr(cfg.data, "holdout", 0.0))
        if holdout is True and not has_holdout:
            raise ValueError(f"{target}: holdout=True, but the run was trained without data.holdout")
        if holdout is True and data is not None:
            raise ValueError("holdout=True scores against the run's own held-out part; it cannot be combined with data")
        if holdout and data is None and has_holdout:  # the run trained on the train part only
            real, held = split_holdout(real, cfg.data.holdout, cfg.data.holdout_seed)
        out_dir = Path(out) if out else run.path.parent.parent
        s = EvalSettings(n=n, backbone=backbone, kid_subset=cfg.eval.kid_subset, n_boot=n_boot, device=device,
                         backbones=extra if extra is not None else tuple(getattr(cfg.eval, "backbones", ()) or ()))
        pipe = run.variant.sampler()
        y = None
        if pipe.conditional:
            import torch

            y = torch.arange(n) % max(1, run.meta.get("num_classes", 0))
        rec = evaluate_generator(pipe, real, s, out_dir, int(run.meta["step"]), y=y, holdout=held)
        return EvalOutcome(rec, out_dir, True)
    if data is None:
        raise ValueError("evaluating a data source as if generated needs real data to compare with (data=...)")
    res, ch = resolution or 32, channels or 3
    fake = load_images(str(target), res, ch)
    real = load_images(str(data), res, ch)
    out_dir = Path(out) if out else Path("eval") / Path(target).stem
    s = EvalSettings(n=len(fake), backbone=backbone, n_boot=n_boot, backbones=extra or (), device=device)
    rec = {"step": None, "generated": str(target),
           **evaluate_images(fake.x, real, s, panel_path=runs.eval_dir(out_dir) / "nearest_neighbours.png")}
    atomic_write(runs.metrics_path(out_dir), lambda p: p.write_text(json.dumps(rec, indent=1)))
    return EvalOutcome(rec, out_dir, False)


def evaluate(run: str | Path, n: int = 1000, backbones: Iterable[str] | None = None, holdout: bool | str = "auto",
             data: str | Path | None = None, backbone: str = "effnet-lite0", n_boot: int = 50,
             out: str | Path | None = None, device: str = "cpu") -> dict:
    """Metrics of a run's generator (FD, KID, IS, precision / recall, density / coverage, NDB,
    memorisation, leaks) as a dict; also written to metrics.json (and appended to metrics.jsonl)
    in `out` (default the run folder). See `evaluate_target` for backbones and holdout.

        m = fewgan.evaluate("runs/demo", n=1000, backbones=["effnet-lite2"])
        m["fd"], m.get("fd_holdout"), m["fd_lite2"]
    """
    if not is_run_target(run):
        raise ValueError(f"{run}: not a run folder or a checkpoint file")
    return evaluate_target(run, data=data, n=n, backbone=backbone, backbones=backbones, n_boot=n_boot,
                           holdout=holdout, out=out, device=device).rec
