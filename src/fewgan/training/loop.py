"""The training loop: batches and noise in, variant steps, stats / grids / checkpoints out.

One iteration = `d_steps` D updates (each on a fresh real batch) then `g_steps` G updates
(the g_advantage ratio, METHODS §9), then the variant's `end_iteration`. All randomness of
iteration k comes from generators seeded by (seed, k), and the data order of epoch e from
(seed, e); only the global torch RNG (dropout) is carried in the checkpoint. Resuming
from the checkpoint of step k therefore continues exactly as the uninterrupted run would.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import config as config_mod
from ..data import ImageData, load_images, split_holdout, to_float
from ..images import save_grid
from ..sampling import class_grid, generate
from ..variants import Batch, build_variant
from . import checkpoint
from .monitors import build_monitors
from .schedule import build_schedule

_MIX = 0x9E3779B97F4A7C15


class RunExistsError(FileExistsError):
    pass


def seeded(seed: int, stream: int, k: int) -> torch.Generator:
    """A generator for stream `stream`, index k (step or epoch), independent of history."""
    s = (seed * _MIX + stream * 0xBF58476D1CE4E5B9 + k * 0x94D049BB133111EB) % (2**63)
    return torch.Generator().manual_seed(s)


def batch_indices(n: int, batch_size: int, seed: int, k: int) -> torch.Tensor:
    """Indices of the k-th batch: epochs are seeded permutations, the last partial batch dropped."""
    per_epoch = n // batch_size
    epoch, i = divmod(k, per_epoch)
    perm = torch.randperm(n, generator=seeded(seed, 1, epoch))
    return perm[i * batch_size:(i + 1) * batch_size]


@dataclass
class RunResult:
    run_dir: Path
    step: int
    interrupted: bool = False
    last_stats: dict = field(default_factory=dict)


def _mean(dicts: list[dict]) -> dict:
    keys = {k for d in dicts for k in d}
    return {k: sum(d[k] for d in dicts if k in d) / sum(1 for d in dicts if k in d) for k in keys}


def _trim_stats(path: Path, step: int) -> None:
    """On resume, drop stats lines written after the checkpoint (they will be recomputed)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
    if path.read_text().count("\n") == len(keep):
        return
    checkpoint.atomic_write(path, lambda tmp: tmp.write_text("".join(ln + "\n" for ln in keep)))


class _Progress:
    """A rich progress bar with ETA and live losses (or nothing, when disabled)."""

    def __init__(self, enabled: bool, total: int, start: int):
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("eta"),
                                TimeRemainingColumn(), TextColumn("{task.description}"))
            self.bar.start()
            self.task = self.bar.add_task("", total=total, completed=start)

    def update(self, step: int, rec: dict) -> None:
        if self.bar:
            desc = f"D {rec.get('loss_d', float('nan')):.3f}  G {rec.get('loss_g', float('nan')):.3f}  {rec['img_per_s']:.0f} img/s"
            self.bar.update(self.task, completed=step, description=desc)

    def log(self, msg: str) -> None:
        if self.bar:
            self.bar.console.print(msg)
        else:  # plain output (logs, pipes): the markup's text without its tags
            from rich.text import Text

            print(Text.from_markup(msg).plain, flush=True)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


class _StopFlag:
    """First Ctrl-C: finish the current iteration, then checkpoint and stop. Second: abort."""

    def __init__(self):
        self.set = False
        self._old = None

    def _handler(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False



def fixed_noise_seed(train_seed: int) -> int:
    """Seed of a run's fixed latents (sample grids, the collapse monitor's samples)."""
    return train_seed + 7919

class Trainer:
    """Owns one run folder. `run()` trains from scratch or from its latest checkpoint."""

    def __init__(self, cfg: config_mod.Config, run_dir: str | Path, resume: bool = False,
                 data: ImageData | None = None):
        self.cfg, self.run_dir, self.resume = cfg, Path(run_dir), resume
        t = cfg.train
        if t.max_updates < 0:
            raise ValueError(f"train.max_updates must be >= 0 (0 = no limit), got {t.max_updates}")
        if not resume and self.run_dir.exists() and any(self.run_dir.iterdir()):
            raise RunExistsError(
                f"{self.run_dir} already holds a run; use --resume to continue it or choose another --out")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if t.threads:
            torch.set_num_threads(t.threads)
        full = data or load_images(cfg.data.source, cfg.data.resolution, cfg.data.channels,
                                   skip_bad=cfg.data.skip_bad, min_count=t.batch_size)
        # with data.holdout > 0 a seeded, stratified part never reaches training; evaluation scores against it too
        self.data, self.holdout = split_holdout(full, cfg.data.holdout, cfg.data.holdout_seed)
        if len(self.data) < t.batch_size:
            raise ValueError(f"{cfg.data.source}: only {len(self.data)} images, fewer than one batch of {t.batch_size}")
        torch.manual_seed(t.seed)
        self.variant = build_variant(cfg, self.data.num_classes)
        self.schedule = build_schedule(cfg)
        self.monitors = build_monitors(cfg)
        self.step = 0
        self.d_batches = 0  # real batches consumed by D so far: position in the epoch order
        self.updates = 0  # D + G network updates so far (the budget train.max_updates counts)
        if resume:
            ck = checkpoint.latest_checkpoint(self.run_dir)
            if ck is not None:
                self._load(ck)
        checkpoint.atomic_write(self.run_dir / "config.yaml", lambda p: config_mod.save_yaml(cfg, p))
        self.fixed_noise_seed = fixed_noise_seed(t.seed)  # grids use the same latents for the whole run
        # a conditional G's grids show one class per row (labels fixed for the whole run, like the latents)
        self.fixed_y, self.grid_cols = (class_grid(self.data.num_classes, cfg.log.n_fixed)
                                        if self.data.num_classes and self.variant.G.conditional else (None, None))

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        meta = {
            "step": self.step,
            "d_batches": self.d_batches,
            "updates": self.updates,
            "config": config_mod.to_dict(self.cfg),
            "num_classes": self.data.num_classes,
            "class_names": self.data.class_names,
            "data_fingerprint": self.data.fingerprint(),
            "variant_state": self.variant.extra_state(),
            "reg_state": self.variant.reg_state(),  # ADA / APA p and counters, LeCam EMAs, R1 clock
            "schedule_state": self.schedule.state_dict(),
            "monitor_state": [m.state_dict() for m in self.monitors],
            "torch_version": torch.__version__,
        }
        path = self.run_dir / "checkpoints" / checkpoint.ckpt_name(self.step)
        checkpoint.save(path, self.variant.modules(), self.variant.optimizers(), meta,
                        extra_tensors={"torch_rng": torch.get_rng_state()})
        keep = self.cfg.log.keep_ckpts
        if keep > 0:
            for old in checkpoint.list_checkpoints(self.run_dir)[:-keep]:
                old.unlink()
        return path

    def _load(self, path: Path) -> None:
        tensors, meta = checkpoint.read(path)
        checkpoint.load_modules(tensors, self.variant.modules(), path)
        checkpoint.load_optimizers(tensors, meta, self.variant.optimizers())
        self.variant.load_extra_state(meta.get("variant_state", {}))
        self.variant.load_reg_state(meta.get("reg_state", {}))
        self.schedule.load_state_dict(meta.get("schedule_state", {}))
        for m, st in zip(self.monitors, meta.get("monitor_state", [])):
            m.load_state_dict(st)
        torch.set_rng_state(tensors["extra/torch_rng"])
        self.step = int(meta["step"])
        self.d_batches = int(meta["d_batches"])
        self.updates = int(meta.get("updates", 0))

    # ------------------------------------------------------------------ one iteration
    def _real_batch(self, k: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = batch_indices(len(self.data), self.cfg.train.batch_size, self.cfg.train.seed, k)
        y = self.data.y[idx] if self.data.y is not None else None
        return to_float(self.data.x[idx]), y

    def _fake_labels(self, n: int, rng: torch.Generator) -> torch.Tensor | None:
        # conditional models generate labels drawn from the data's own label distribution
        if self.data.y is None or not self.variant.G.conditional:
            return None
        return self.data.y[torch.randint(len(self.data), (n,), generator=rng)]

    def iteration(self) -> dict:
        t, v, lat = self.cfg.train, self.variant, self.variant.G.latent
        rng = seeded(t.seed, 2, self.step)
        aug_rng = seeded(t.seed, 3, self.step)  # D's augmentations: a stream of their own, so turning them on
        # changes neither data order nor noise nor label noise
        t0 = time.perf_counter()
        n_d, n_g = self.schedule.counts(self.step)
        d_stats, g_stats = [], []
        x, y = self._real_batch(self.d_batches, rng)
        noise, fake_y = lat.draw(t.batch_size, rng), self._fake_labels(t.batch_size, rng)
        for j in range(n_d):
            if j:  # every D update sees a fresh real batch
                x, y = self._real_batch(self.d_batches, rng)
                noise, fake_y = lat.draw(t.batch_size, rng), self._fake_labels(t.batch_size, rng)
            self.d_batches += 1
            d_stats.append(v.d_step(Batch(x, y, noise, fake_y, rng, aug_rng, self.step)))
        for _ in range(n_g):
            if not t.reuse_z:
                noise, fake_y = lat.draw(t.batch_size, rng), self._fake_labels(t.batch_size, rng)
            g_stats.append(v.g_step(Batch(x, y, noise, fake_y, rng, aug_rng, self.step)))
        rec = {"step": self.step + 1, **_mean(d_stats), **_mean(g_stats)}
        rec.update(v.end_iteration(self.step, rec))
        rec.update(self.schedule.update(self.step, rec), d_updates=n_d, g_updates=n_g)
        self.step += 1
        self.updates += n_d + n_g
        rec["updates"] = self.updates
        dt = time.perf_counter() - t0
        ld, lg = rec.get("loss_d"), rec.get("loss_g")
        rec["log_ratio"] = math.log(lg / ld) if ld and lg and ld > 0 and lg > 0 else None
        epoch = self.d_batches / (len(self.data) // t.batch_size)
        rec.update(v.lrs(), img_per_s=t.batch_size * max(n_d, 1) / dt, epoch=epoch, time=time.time())
        for m in self.monitors:
            rec.update(m(self, rec))
        return rec

    def write_grid(self, name: str) -> Path:
        n = self.cfg.log.n_fixed if self.fixed_y is None else len(self.fixed_y)
        imgs = generate(self.variant.sampler(), n, self.fixed_noise_seed, y=self.fixed_y)
        # small images are enlarged 2x (nearest) so a grid is readable without growing the repo much
        scale = 2 if self.cfg.data.resolution <= 32 else 1
        return save_grid(imgs, self.run_dir / "samples" / f"{name}.png", nrow=self.grid_cols, scale=scale)

    # ------------------------------------------------------------------ the loop
    def run(self) -> RunResult:
        from rich.markup import escape

        t, lg = self.cfg.train, self.cfg.log
        stats_path = self.run_dir / "stats.jsonl"
        _trim_stats(stats_path, self.step)
        _trim_stats(self.run_dir / "metrics.jsonl", self.step)
        tb = self._tensorboard() if lg.tensorboard else None
        prog = _Progress(lg.progress, t.steps, self.step)
        rec: dict = {}
        stop = _StopFlag()
        try:
            with stop, open(stats_path, "a") as stats:
                while self.step < t.steps and not self.budget_spent() and not stop.set:
                    rec = self.iteration()
                    stats.write(json.dumps(rec) + "\n")
                    if self.step % 50 == 0:
                        stats.flush()
                    if tb:
                        for k, val in rec.items():
                            if isinstance(val, (int, float)) and k not in ("step", "time"):
                                tb.add_scalar(k, val, self.step)
                    prog.update(self.step, rec)
                    for w in rec.get("warnings", ()):
                        prog.log(f"[yellow]warning[/] step {self.step}: {escape(w)}")
                    if lg.sample_every and self.step % lg.sample_every == 0:
                        p = self.write_grid(f"step_{self.step:08d}")
                        if tb:
                            from PIL import Image
                            import numpy as np
                            tb.add_image("samples", np.asarray(Image.open(p).convert("RGB")), self.step, dataformats="HWC")
                    ev = self.cfg.eval.every
                    if ev and self.step % ev == 0:
                        m = self.evaluate()
                        prog.log(f"step {self.step}: FD {m['fd']:.2f}  KID {m['kid']:.4f}  IS {m['is']:.2f}  "
                                 f"recall {m['recall']:.2f}  near-copies {m['near_copy_fraction']:.1%} ({m['backbone']})")
                    if (lg.ckpt_every and self.step % lg.ckpt_every == 0 and self.step < t.steps
                            and not self.budget_spent()):
                        self.save_checkpoint()
        finally:
            prog.close()
            if tb:
                tb.close()
        interrupted = stop.set
        if interrupted:
            prog.log(f"interrupted at step {self.step}: saving a checkpoint")
        path = self.save_checkpoint()
        self.write_grid("final" if not interrupted else f"step_{self.step:08d}")
        prog.log(f"checkpoint: {path}")
        return RunResult(self.run_dir, self.step, interrupted, rec)

    def budget_spent(self) -> bool:
        """train.max_updates > 0 and that many D + G updates are done (checked between iterations)."""
        return 0 < self.cfg.train.max_updates <= self.updates

    def evaluate(self) -> dict:
        """Metrics of the sampling generator at the current step (appended to metrics.jsonl)."""
        from ..metrics.evaluate import evaluate_generator, settings_from_config

        y = None
        if self.fixed_y is not None:
            y = torch.arange(self.cfg.eval.n) % self.data.num_classes
        with torch.random.fork_rng():  # evaluation must not shift the training RNG
            return evaluate_generator(self.variant.sampler(), self.data, settings_from_config(self.cfg),
                                      self.run_dir, self.step, y=y, holdout=self.holdout)

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise RuntimeError("log.tensorboard=true needs the tensorboard package: pip install 'fewgan[tensorboard]'") from None
        return SummaryWriter(str(self.run_dir / "tensorboard"))


def train(cfg: config_mod.Config, run_dir: str | Path, resume: bool = False, data: ImageData | None = None) -> RunResult:
    return Trainer(cfg, run_dir, resume, data).run()
