"""Automatic choice of CFT's extra dimension FD (Song & Kim's rule, docs/methods.md §3).

The paper raises FD from 1 "until no instability beyond epoch 30". Made concrete:

    for FD in 1..fd_max:
        train from scratch with each seed for `epochs` epochs (default 40)
        if no seed is UNSTABLE on the window W = epochs window_start..epochs: choose FD
    otherwise choose the FD with the fewest unstable epochs

A run is UNSTABLE on W if any criterion fires (epoch-mean losses, nats):
  (a) a non-finite loss or weight;
  (b) L_D < 0.10 for >= 3 consecutive epochs in W (D saturated);
  (c) L_G > 5 for >= 3 consecutive epochs in W;
  (d) std/mean of L_G over W > 0.5;
  (e) at the end of an epoch in W, the mean pairwise L2 distance of 64 fixed-z samples is
      < 0.25x that of 64 real images (collapse).
The criteria are pure functions of the epoch statistics, so they are tested on synthetic
sequences; `search` takes the training as a function, so the stopping rule is too.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import config as config_mod


@dataclass
class Criteria:
    d_saturated: float = 0.10  # (b) L_D below this ...
    g_high: float = 5.0  # (c) L_G above this ...
    consecutive: int = 3  # ... for this many consecutive epochs
    g_cv: float = 0.5  # (d) std/mean of L_G over the window
    diversity: float = 0.25  # (e) sample diversity / real diversity


@dataclass
class RunEvidence:
    fd: int
    seed: int
    epoch_ld: list[float]  # epoch-mean L_D, epochs 1..E
    epoch_lg: list[float]
    diversity_ratio: list[float]  # one per window epoch
    nonfinite: bool = False
    fired: list[str] = field(default_factory=list)
    unstable_epochs: int = 0


def _longest_run(flags: list[bool]) -> int:
    best = cur = 0
    for f in flags:
        cur = cur + 1 if f else 0
        best = max(best, cur)
    return best


def instability(ev: RunEvidence, window_start: int, c: Criteria = Criteria()) -> tuple[list[str], int]:
    """Which criteria fire on the window (epochs window_start..end, 1-based), and how many window
    epochs are individually bad (used to rank FDs when none is stable)."""
    ld, lg = ev.epoch_ld[window_start - 1:], ev.epoch_lg[window_start - 1:]
    fired = []
    if ev.nonfinite or not all(math.isfinite(v) for v in ld + lg):
        return ["(a) non-finite loss or weight"], len(ld)
    sat = [v < c.d_saturated for v in ld]
    high = [v > c.g_high for v in lg]
    collapsed = [r < c.diversity for r in ev.diversity_ratio]
    if _longest_run(sat) >= c.consecutive:
        fired.append(f"(b) L_D < {c.d_saturated} for {_longest_run(sat)} consecutive epochs")
    if _longest_run(high) >= c.consecutive:
        fired.append(f"(c) L_G > {c.g_high} for {_longest_run(high)} consecutive epochs")
    cv = statistics.pstdev(lg) / statistics.fmean(lg) if len(lg) > 1 and statistics.fmean(lg) > 0 else 0.0
    if cv > c.g_cv:
        fired.append(f"(d) std/mean of L_G over the window = {cv:.2f} > {c.g_cv}")
    if any(collapsed):
        fired.append(f"(e) sample diversity < {c.diversity}x real in {sum(collapsed)} window epoch(s) "
                     f"(min {min(ev.diversity_ratio):.2f})")
    bad_epochs = sum(s or h or k for s, h, k in zip(sat, high, collapsed + [False] * (len(sat) - len(collapsed))))
    return fired, bad_epochs + (len(ld) if cv > c.g_cv else 0)


def search(run_fn: Callable[[int, int], RunEvidence], seeds: list[int], fd_max: int = 8, window_start: int = 31,
           criteria: Criteria = Criteria(), log=print) -> dict:
    """Try FD = 1, 2, ... and stop at the first FD with no unstable seed (see module doc)."""
    tried = []
    for fd in range(1, fd_max + 1):
        runs = []
        for seed in seeds:
            ev = run_fn(fd, seed)
            ev.fired, ev.unstable_epochs = instability(ev, window_start, criteria)
            runs.append(ev)
            log(f"FD {fd} seed {seed}: " + ("; ".join(ev.fired) if ev.fired else "stable"))
        tried.append({"fd": fd, "stable": not any(r.fired for r in runs), "runs": [r.__dict__ for r in runs]})
        if tried[-1]["stable"]:
            return {"chosen_fd": fd, "reason": "first FD with no unstable seed", "tried": tried}
    best = min(tried, key=lambda t: (sum(r["unstable_epochs"] for r in t["runs"]), t["fd"]))
    return {"chosen_fd": best["fd"], "reason": f"no FD up to {fd_max} was stable; fewest unstable epochs",
            "tried": tried}


# ----------------------------------------------------------------------------- real training


def pairwise_l2(x: torch.Tensor) -> float:
    """Mean pairwise L2 distance between the images of a batch (pixels in [-1, 1])."""
    f = x.flatten(1).float()
    d = torch.cdist(f, f)
    n = len(f)
    return float(d.sum() / (n * (n - 1)))


def train_for_search(base: config_mod.Config, fd: int, seed: int, epochs: int, window_start: int,
                     out_dir: Path) -> RunEvidence:
    """Train one (FD, seed) from scratch for `epochs` epochs; collect the evidence for `instability`."""
    from .data import load_images, to_float
    from .sampling import generate
    from .training.loop import Trainer

    cfg = config_mod.apply_overrides(base, [f"--latent.fd={fd}", f"--train.seed={seed}", "--log.progress=false",
                                            "--log.sample_every=0", "--log.ckpt_every=0", "--eval.every=0"])
    data = load_images(cfg.data.source, cfg.data.resolution, cfg.data.channels, skip_bad=cfg.data.skip_bad)
    per_epoch = len(data) // cfg.train.batch_size
    cfg = config_mod.apply_overrides(cfg, [f"--train.steps={epochs * per_epoch}"])
    run_dir = out_dir / f"fd{fd}_s{seed}"
    done = run_dir / "evidence.json"
    if done.is_file():  # finished in an earlier sitting
        return RunEvidence(**{k: v for k, v in json.loads(done.read_text()).items() if k not in ("fired", "unstable_epochs")})
    if run_dir.exists():  # a search run of ours that was cut off: its partial evidence is unusable
        import shutil

        shutil.rmtree(run_dir)
    tr = Trainer(cfg, run_dir, data=data)
    real = to_float(data.x[torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:64]])
    real_div = pairwise_l2(real)
    ld, lg, div, nonfinite = [], [], [], False
    stats_f = open(run_dir / "stats.jsonl", "a")
    for epoch in range(1, epochs + 1):
        recs = [tr.iteration() for _ in range(per_epoch)]
        for r in recs:
            stats_f.write(json.dumps(r) + "\n")
        ld.append(statistics.fmean(r["loss_d"] for r in recs))
        lg.append(statistics.fmean(r["loss_g"] for r in recs))
        if not all(bool(torch.isfinite(p).all()) for p in tr.variant.G.parameters()):
            nonfinite = True
            break
        if epoch >= window_start:
            fake = generate(tr.variant.sampler(), 64, seed=12345).float() / 127.5 - 1
            div.append(pairwise_l2(fake) / real_div)
    stats_f.close()
    tr.save_checkpoint()
    tr.write_grid("final")
    ev = RunEvidence(fd, seed, ld, lg, div, nonfinite)
    done.write_text(json.dumps(ev.__dict__))
    return ev


def write_report(result: dict, out_dir: Path, command: str, window_start: int, epochs: int) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "fdsearch.json").write_text(json.dumps(result, indent=1))
    lines = [f"# FD search: chosen FD = {result['chosen_fd']} ({result['reason']})", "",
             f"Command: `{command}`", "",
             f"Window W = epochs {window_start}..{epochs}. Criteria: docs/methods.md §3 (see fewgan/fdsearch.py).", "",
             "| FD | seed | L_D (W mean) | L_G (W mean) | min diversity ratio | verdict |", "|---|---|---|---|---|---|"]
    for t in result["tried"]:
        for r in t["runs"]:
            w_ld = r["epoch_ld"][window_start - 1:] or [float("nan")]
            w_lg = r["epoch_lg"][window_start - 1:] or [float("nan")]
            dv = min(r["diversity_ratio"]) if r["diversity_ratio"] else float("nan")
            verdict = "; ".join(r["fired"]) or "stable"
            lines.append(f"| {t['fd']} | {r['seed']} | {statistics.fmean(w_ld):.3f} | {statistics.fmean(w_lg):.3f} | "
                         f"{dv:.2f} | {verdict} |")
    lines += ["", "Final sample grid of each run: `fd<FD>_s<seed>/samples/final.png`."]
    (out_dir / "fdsearch.md").write_text("\n".join(lines) + "\n")
