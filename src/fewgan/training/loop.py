"""The training loop: batches and noise in, variant steps, stats / grids / checkpoints out.

One iteration = `d_steps` D updates (each on a fresh real batch) then `g_steps` G updates
(the g_advantage ratio, docs/methods.md §9), then the variant's `end_iteration`. All randomness of
iteration k comes from generators seeded by (seed, k), and the data order of epoch e from
(seed, e); only the global torch RNG (dropout) is carried in the checkpoint. Resuming
from the checkpoint of step k therefore continues exactly as the uninterrupted run would.

Faults (README "What survives a fault"): every iteration checks the losses, gradient norms and
regularizer terms it already has for NaN / inf, and every checkpoint the weights, so a non-finite
checkpoint is never written (train.on_nonfinite: stop | rollback | continue). A rollback reloads
the last good checkpoint, scales the learning rates and draws fresh noise (the rollback count is
folded into the per-step seeds, and kept in the checkpoint, so a resume stays exact). I/O errors
become one WriteError line naming the file; SIGTERM is handled like the first Ctrl-C.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import config as config_mod
from .. import devices, runs
from ..data import ImageData, load_images, split_holdout, to_float
from ..images import save_grid
from ..sampling import class_grid, generate
from ..variants import Batch, build_variant
from . import checkpoint
from .monitors import build_monitors
from .schedules import build_schedule

_MIX = 0x9E3779B97F4A7C15


class RunExistsError(FileExistsError):
    pass


NONFINITE_MODES = ("stop", "rollback", "continue")
_CHECKED = ("loss_", "grad_norm_", "reg_")  # the per-iteration numbers that must stay finite


@dataclass(frozen=True)
class Fault:
    """What went non-finite: at `step`, `what` (a stats key, or "weights <module.tensor>") was `value`."""

    step: int
    what: str
    value: str


class NonFiniteError(RuntimeError):
    """Training produced a NaN / inf and train.on_nonfinite says stop (or the rollbacks are used up).
    str() is one line: the step, the quantity, and the last good checkpoint `--resume` continues from."""

    def __init__(self, fault: Fault, last_good: Path | None, rollbacks: int = 0, max_rollbacks: int = 0,
                 run: str | None = None, mode: str = "stop"):
        self.fault, self.last_good, self.rollbacks, self.max_rollbacks = fault, last_good, rollbacks, max_rollbacks
        self.mode = mode
        why = f"after {rollbacks} rollback{'s' * (rollbacks != 1)} (train.max_rollbacks={max_rollbacks})" \
            if rollbacks else f"(train.on_nonfinite={mode})"
        where = (f"last good checkpoint: {last_good}; --resume continues from it" if last_good
                 else "no checkpoint was written before it, so nothing to resume")
        super().__init__(f"{f'run {run}: ' if run else ''}step {fault.step}: {fault.what} is {fault.value}; "
                         f"stopped {why}; {where}")

    def in_run(self, run: str) -> "NonFiniteError":
        """The same error with the run's name in front (an experiment's message)."""
        return NonFiniteError(self.fault, self.last_good, self.rollbacks, self.max_rollbacks, run, self.mode)


def nonfinite_stat(rec: dict, step: int) -> Fault | None:
    """The first loss, gradient norm or regularizer term of an iteration's stats that is NaN or inf.

    Only the numbers the iteration already has on the host are looked at: no extra pass over the
    networks, no extra device sync. Losses first, then gradient norms, then regularizers, each by
    name, so the message does not depend on dict order.
    """
    for prefix in _CHECKED:
        for k in sorted(k for k in rec if k.startswith(prefix)):
            v = rec[k]
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isfinite(v):
                return Fault(step, k, str(v))
    return None


@torch.no_grad()
def nonfinite_tensor(modules: dict) -> str | None:
    """`module.tensor` of the first floating-point parameter or buffer holding a NaN / inf, or None.

    One reduction per tensor and a single host sync for the common all-finite case."""
    named = [(f"{m}.{k}", v) for m, mod in modules.items() for k, v in mod.state_dict().items()
             if v.is_floating_point()]
    if not named:
        return None
    ok = torch.stack([torch.isfinite(v).all() for _, v in named])
    if bool(ok.all()):
        return None
    return named[int((~ok).nonzero()[0])][0]


def attempt_seed(seed: int, rollbacks: int) -> int:
    """The seed of the per-step streams after `rollbacks` rollbacks: the run's seed before any (a run
    without a fault is unchanged), another one after each, so a rolled-back run draws fresh noise and
    augmentations instead of replaying the ones that diverged."""
    return seed if rollbacks == 0 else (seed * _MIX + rollbacks * 0xD6E8FEB86659FD93) % (2**63)


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
    signal: int | None = None  # the signal that interrupted the run (SIGINT, SIGTERM)
    rollbacks: int = 0  # train.on_nonfinite=rollback: how many times the run went back to a checkpoint


def _to_host(dicts: list[dict]) -> list[dict]:
    """The steps' stats with their tensors as floats: one host transfer for all of them."""
    flat = devices.to_host({(i, k): v for i, d in enumerate(dicts) for k, v in d.items()})
    out: list[dict] = [{} for _ in dicts]
    for (i, k), v in flat.items():
        out[i][k] = v
    return out


def _mean(dicts: list[dict]) -> dict:
    keys = {k for d in dicts for k in d}
    return {k: sum(d[k] for d in dicts if k in d) / sum(1 for d in dicts if k in d) for k in keys}


def _step_of(line: str) -> int | None:
    """The step of a stats line; None for a line cut short (a kill or a full disk mid-write)."""
    try:
        return json.loads(line).get("step", 0)
    except ValueError:
        return None


def _trim_stats(path: Path, step: int) -> None:
    """On resume (and rollback), drop stats lines written after the checkpoint (they will be
    recomputed) and any line cut short by a kill or a full disk."""
    if not path.exists():
        return
    text = path.read_text()
    keep = [ln for ln in text.splitlines() if ln.strip() and (s := _step_of(ln)) is not None and s <= step]
    new = "".join(ln + "\n" for ln in keep)
    if text == new:
        return
    checkpoint.atomic_write(path, lambda tmp: tmp.write_text(new))


class _StatsLog:
    """stats.jsonl, appended one line per iteration; any I/O error is a WriteError naming the file."""

    def __init__(self, path: Path):
        self.path, self.f = path, None

    def __enter__(self):
        self._open()
        return self

    def _open(self) -> None:
        with checkpoint.writing(self.path):
            self.f = open(self.path, "a")

    def write(self, rec: dict) -> None:
        with checkpoint.writing(self.path):
            self.f.write(json.dumps(rec) + "\n")

    def flush(self) -> None:
        with checkpoint.writing(self.path):
            self.f.flush()

    def trim(self, step: int) -> None:
        """Drop the lines after `step` (a rollback): close, rewrite, reopen for appending."""
        self.close()
        _trim_stats(self.path, step)
        self._open()

    def close(self) -> None:
        f, self.f = self.f, None
        if f is not None:
            with checkpoint.writing(self.path):
                f.close()

    def __exit__(self, exc_type, *exc):
        try:
            self.close()
        except OSError:
            if exc_type is None:  # the first error is the one to report
                raise
        return False


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
    """First Ctrl-C or SIGTERM: finish the current iteration, then checkpoint and stop. Second: abort.

    SIGTERM is how cluster schedulers and job engines (Slurm, Kubernetes, Ray's cancel) stop work;
    handled like Ctrl-C, such a run loses nothing since its last iteration."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.set = False
        self.signum: int | None = None
        self._old: dict = {}

    def _handler(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set, self.signum = True, signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handler) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old = {}
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
        if t.on_nonfinite not in NONFINITE_MODES:
            raise ValueError(f"train.on_nonfinite must be one of {', '.join(NONFINITE_MODES)}, got {t.on_nonfinite!r}")
        if not 0 < t.rollback_lr <= 1 or t.max_rollbacks < 0:
            raise ValueError(f"train.rollback_lr must be in (0, 1] and train.max_rollbacks >= 0, "
                             f"got {t.rollback_lr} and {t.max_rollbacks}")
        # an absent device is a one-line error before anything is loaded or written
        self.device = devices.resolve_device(t.device)
        devices.amp_dtype(t.amp)
        if not resume and self.run_dir.exists() and any(self.run_dir.iterdir()):
            raise RunExistsError(
                f"{self.run_dir} already holds a run; use --resume to continue it or choose another --out")
        with checkpoint.writing(self.run_dir):
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
        # built on the CPU under the seed (the same initialisation on every device), then moved
        self.variant = build_variant(cfg, self.data.num_classes).to(self.device)
        # the training set lives on the device as uint8; batches are gathered and converted there
        self._x = self.data.x.to(self.device)
        self._y = self.data.y.to(self.device) if self.data.y is not None else None
        self.schedule = build_schedule(cfg)
        self.monitors = build_monitors(cfg)
        self.step = 0
        self.d_batches = 0  # real batches consumed by D so far: position in the epoch order
        self.updates = 0  # D + G network updates so far (the budget train.max_updates counts)
        self.nonfinite_events: list[dict] = []  # the rollbacks so far (checkpointed: they shift the seeds)
        self.last_good: Path | None = None  # the newest checkpoint written or loaded (all are finite)
        self.warnings: list[str] = []  # said on stderr while setting up (e.g. an unreadable checkpoint)
        self._notes: list[str] = []  # warnings for the next stats record (a rollback)
        if resume:
            self._resume_latest()
        checkpoint.atomic_write(runs.config_path(self.run_dir), lambda p: config_mod.save_yaml(cfg, p))
        self.fixed_noise_seed = fixed_noise_seed(t.seed)  # grids use the same latents for the whole run
        # a conditional G's grids show one class per row (labels fixed for the whole run, like the latents)
        self.fixed_y, self.grid_cols = (class_grid(self.data.num_classes, cfg.log.n_fixed)
                                        if self.data.num_classes and self.variant.G.conditional else (None, None))

    @property
    def rollbacks(self) -> int:
        return len(self.nonfinite_events)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        """Write the checkpoint of the current step; rotate old ones (log.keep_ckpts).

        Raises NonFiniteError, writing nothing, if any weight or buffer is NaN / inf: every
        checkpoint on disk is finite, so rotation (which runs only after a good write and keeps the
        newest) can never delete the last finite one."""
        bad = nonfinite_tensor(self.variant.modules())
        if bad is not None:
            t = self.cfg.train
            raise NonFiniteError(Fault(self.step, f"weights {bad}", "non-finite"), self.last_good,
                                 self.rollbacks, t.max_rollbacks, mode=t.on_nonfinite)
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
            "nonfinite_state": {"events": self.nonfinite_events},  # rollbacks: they shift the seeds
            "torch_version": torch.__version__,
            "device": str(self.device),  # where it was trained; the tensors themselves are saved from the CPU
            "scaler_state": self.variant.scaler_state(),  # fp16's loss scales ({} otherwise)
        }
        path = runs.checkpoints_dir(self.run_dir) / checkpoint.ckpt_name(self.step)
        checkpoint.save(path, self.variant.modules(), self.variant.optimizers(), meta,
                        extra_tensors={"torch_rng": torch.get_rng_state(), **devices.rng_state(self.device)})
        self.last_good = path
        keep = self.cfg.log.keep_ckpts
        if keep > 0:
            for old in checkpoint.list_checkpoints(self.run_dir)[:-keep]:
                with checkpoint.writing(old):
                    old.unlink()
        return path

    def _resume_latest(self) -> None:
        """Load the newest readable checkpoint. A newer one that cannot be read (truncated or
        corrupted after it was written) is moved aside as *.unreadable, with a warning naming both;
        if none can be read, a CheckpointError says so rather than silently starting over."""
        unreadable = []
        for ck in reversed(checkpoint.list_checkpoints(self.run_dir)):
            try:
                tensors, meta = checkpoint.read(ck)
            except checkpoint.CheckpointError as e:
                unreadable.append((ck, str(e).removeprefix(f"{ck}: ")))
                continue
            for bad, why in unreadable:
                aside = bad.with_name(bad.name + ".unreadable")
                try:
                    bad.replace(aside)  # out of the listing, so rotation does not count it as a checkpoint
                except OSError:
                    aside = bad
                self._warn(f"{bad} cannot be read ({why}); resuming from {ck} instead (the unreadable file "
                           f"is kept as {aside.name})")
            self._apply(tensors, meta, ck)
            return
        if unreadable:
            raise checkpoint.CheckpointError(f"{self.run_dir}: no checkpoint can be read: "
                                             + "; ".join(f"{ck.name}: {why}" for ck, why in unreadable))

    def _warn(self, msg: str) -> None:
        self.warnings.append(msg)
        print(f"warning: {msg}", file=sys.stderr, flush=True)

    def _load(self, path: Path) -> None:
        tensors, meta = checkpoint.read(path)
        self._apply(tensors, meta, path)

    def _apply(self, tensors: dict, meta: dict, path: Path) -> None:
        checkpoint.load_modules(tensors, self.variant.modules(), path)
        checkpoint.load_optimizers(tensors, meta, self.variant.optimizers())
        self.variant.load_extra_state(meta.get("variant_state", {}))
        self.variant.load_reg_state(meta.get("reg_state", {}))
        self.schedule.load_state_dict(meta.get("schedule_state", {}))
        for m, st in zip(self.monitors, meta.get("monitor_state", [])):
            m.load_state_dict(st)
        self.variant.load_scaler_state(meta.get("scaler_state") or {})
        torch.set_rng_state(tensors["extra/torch_rng"])
        devices.set_rng_state(self.device, tensors)  # CUDA's RNG, when trained there and resumed there
        self.step = int(meta["step"])
        self.d_batches = int(meta["d_batches"])
        self.updates = int(meta.get("updates", 0))
        self.nonfinite_events = list((meta.get("nonfinite_state") or {}).get("events", []))
        self.last_good = path

    # ------------------------------------------------------------------ one iteration
    def _real_batch(self, k: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = batch_indices(len(self.data), self.cfg.train.batch_size, self.cfg.train.seed, k)  # CPU draw
        idx = idx.to(self.device)
        y = self._y[idx] if self._y is not None else None
        return to_float(self._x[idx]), y

    def _fake_labels(self, n: int, rng: torch.Generator) -> torch.Tensor | None:
        # conditional models generate labels drawn from the data's own label distribution
        if self.data.y is None or not self.variant.G.conditional:
            return None
        return self.data.y[torch.randint(len(self.data), (n,), generator=rng)].to(self.device)

    def _noise(self, n: int, rng: torch.Generator) -> torch.Tensor:
        """Latent noise drawn on the CPU generator, moved to the device: the same on every device."""
        return self.variant.G.latent.draw(n, rng).to(self.device)

    def iteration(self) -> dict:
        t, v = self.cfg.train, self.variant
        seed = attempt_seed(t.seed, self.rollbacks)  # t.seed itself unless the run has rolled back
        rng = seeded(seed, 2, self.step)
        aug_rng = seeded(seed, 3, self.step)  # D's augmentations: a stream of their own, so turning them on
        # changes neither data order nor noise nor label noise
        t0 = time.perf_counter()
        n_d, n_g = self.schedule.counts(self.step)
        d_stats, g_stats = [], []
        x, y = self._real_batch(self.d_batches, rng)
        noise, fake_y = self._noise(t.batch_size, rng), self._fake_labels(t.batch_size, rng)
        for j in range(n_d):
            if j:  # every D update sees a fresh real batch
                x, y = self._real_batch(self.d_batches, rng)
                noise, fake_y = self._noise(t.batch_size, rng), self._fake_labels(t.batch_size, rng)
            self.d_batches += 1
            d_stats.append(v.d_step(Batch(x, y, noise, fake_y, rng, aug_rng, self.step)))
        for _ in range(n_g):
            if not t.reuse_z:
                noise, fake_y = self._noise(t.batch_size, rng), self._fake_labels(t.batch_size, rng)
            g_stats.append(v.g_step(Batch(x, y, noise, fake_y, rng, aug_rng, self.step)))
        # the steps' losses and norms stayed on the device until here: one host transfer per iteration
        host = _to_host(d_stats + g_stats)
        d_stats, g_stats = host[:len(d_stats)], host[len(d_stats):]
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
        path = runs.samples_dir(self.run_dir) / f"{name}.png"
        with checkpoint.writing(path):
            return save_grid(imgs, path, nrow=self.grid_cols, scale=scale)

    # ------------------------------------------------------------------ faults
    def _on_fault(self, fault: Fault, stats: _StatsLog, prog: "_Progress", stopping: bool = False) -> bool:
        """Act on a non-finite iteration or checkpoint as train.on_nonfinite says: raise
        NonFiniteError (stop, or rollbacks used up), roll back (True), or warn and go on (False)."""
        t = self.cfg.train
        if t.on_nonfinite == "continue":
            prog.log(f"[yellow]warning[/] step {fault.step}: {fault.what} is {fault.value}; checkpoint not written "
                     f"(train.on_nonfinite=continue); last good checkpoint: {self.last_good or 'none'}")
            return False
        stats.flush()
        if t.on_nonfinite == "rollback" and self.rollbacks < t.max_rollbacks and self.last_good and not stopping:
            self._rollback(fault, stats)
            return True
        raise NonFiniteError(fault, self.last_good, self.rollbacks, t.max_rollbacks, mode=t.on_nonfinite)

    def _rollback(self, fault: Fault, stats: _StatsLog) -> None:
        """Back to the last good checkpoint, every learning rate times train.rollback_lr, fresh data.

        The data order moves on from where the failed attempt got to (d_batches is not rewound) and
        the per-step seeds change with the rollback count (attempt_seed), as does dropout's RNG: the
        same batches and noise would likely diverge again. The count goes into the next checkpoint,
        so a resume continues exactly."""
        t = self.cfg.train
        events, d_batches = self.nonfinite_events, self.d_batches
        self._load(self.last_good)  # the events it holds are those from before it was written
        since = len(events) + 1 - self.rollbacks  # rollbacks since it was written, this one included
        for opt in self.variant.optimizers().values():
            for group in opt.param_groups:
                group["lr"] *= t.rollback_lr ** since
        self.d_batches = d_batches
        self.nonfinite_events = events + [{"step": fault.step, "what": fault.what, "value": fault.value,
                                           "to_step": self.step, **self.variant.lrs()}]
        fresh = seeded(attempt_seed(t.seed, self.rollbacks), 4, self.step)  # dropout: a fresh stream too
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=fresh)))
        stats.trim(self.step)  # the steps after it are trained again
        _trim_stats(runs.metrics_log_path(self.run_dir), self.step)
        lrs = ", ".join(f"{k} {v:.3g}" for k, v in self.variant.lrs().items())
        self._notes.append(f"{fault.what} was {fault.value} at step {fault.step}: rolled back to step {self.step} "
                           f"({self.last_good.name}) with {lrs}, fresh batches and noise "
                           f"(rollback {self.rollbacks} of {t.max_rollbacks})")

    # ------------------------------------------------------------------ the loop
    def run(self) -> RunResult:
        t = self.cfg.train
        _trim_stats(runs.stats_path(self.run_dir), self.step)
        _trim_stats(runs.metrics_log_path(self.run_dir), self.step)
        if t.on_nonfinite == "rollback" and self.last_good is None:
            self.save_checkpoint()  # somewhere to roll back to before the first periodic checkpoint
        tb = self._tensorboard() if self.cfg.log.tensorboard else None
        prog = _Progress(self.cfg.log.progress, t.steps, self.step)
        stop = _StopFlag()
        try:
            with devices.backend_flags(self.device, t.fast, t.deterministic), stop, \
                    _StatsLog(runs.stats_path(self.run_dir)) as stats:
                rec, path = self._loop(stats, stop, prog, tb)
        except OSError as e:  # metrics, TensorBoard, ...: one line naming the file, when it is a write error
            w = checkpoint.as_write_error(e, e.filename or self.run_dir)
            if w is None or w is e or e.errno not in checkpoint._CAUSES:
                raise
            raise w from e
        finally:
            prog.close()
            if tb:
                tb.close()
        interrupted = stop.set
        self.write_grid("final" if not interrupted else f"step_{self.step:08d}")
        prog.log(f"checkpoint: {path}" if path else
                 f"[yellow]warning[/] final checkpoint not written (non-finite weights); last good: {self.last_good}")
        return RunResult(self.run_dir, self.step, interrupted, rec, signal=stop.signum, rollbacks=self.rollbacks)

    def _loop(self, stats: _StatsLog, stop: _StopFlag, prog: _Progress, tb) -> tuple[dict, Path | None]:
        """Iterate until train.steps, the update budget or a stop signal, then write the final checkpoint;
        returns the last stats record and that checkpoint (None: not written, its weights non-finite)."""
        from rich.markup import escape

        t, lg = self.cfg.train, self.cfg.log
        rec: dict = {}
        while True:
            while self.step < t.steps and not self.budget_spent() and not stop.set:
                rec = self.iteration()
                if self._notes:  # a rollback just happened: it goes into the stats and the warnings
                    rec["rollback"] = self.rollbacks
                    rec["warnings"] = list(rec.get("warnings", [])) + self._notes
                    self._notes = []
                stats.write(rec)
                if self.step % 50 == 0:
                    stats.flush()
                if tb:
                    for k, val in rec.items():
                        if isinstance(val, (int, float)) and k not in ("step", "time"):
                            tb.add_scalar(k, val, self.step)
                prog.update(self.step, rec)
                for w in rec.get("warnings", ()):
                    prog.log(f"[yellow]warning[/] step {self.step}: {escape(w)}")
                fault = nonfinite_stat(rec, self.step) if t.on_nonfinite != "continue" else None
                if fault is not None:
                    self._on_fault(fault, stats, prog)  # rolled back (or raised): the next iteration is a fresh one
                    continue
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
                    stats.flush()  # a checkpoint never runs ahead of its stats (a SIGKILL after it loses none)
                    try:
                        self.save_checkpoint()
                    except NonFiniteError as e:
                        self._on_fault(e.fault, stats, prog)
            stats.flush()  # the stats are safe before the final checkpoint is written
            if stop.set:
                how = f" by {signal.Signals(stop.signum).name}" if stop.signum else ""
                prog.log(f"interrupted{how} at step {self.step}: saving a checkpoint")
            try:
                return rec, self.save_checkpoint()
            except NonFiniteError as e:
                if not self._on_fault(e.fault, stats, prog, stopping=stop.set):
                    return rec, None  # train.on_nonfinite=continue: warned, the last good checkpoint stays

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
            return evaluate_generator(self.variant.sampler(), self.data, settings_from_config(self.cfg, device=self.device),
                                      self.run_dir, self.step, y=y, holdout=self.holdout)

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise RuntimeError("log.tensorboard=true needs the tensorboard package: pip install 'fewgan[tensorboard]'") from None
        return SummaryWriter(str(self.run_dir / "tensorboard"))


def train(cfg: config_mod.Config, run_dir: str | Path, resume: bool = False, data: ImageData | None = None) -> RunResult:
    return Trainer(cfg, run_dir, resume, data).run()
