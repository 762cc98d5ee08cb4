"""Wall-clock of one small experiment grid: the local executor (one run after another, all
threads) against Ray with 2 single-thread workers, side by side in one process, alternating.

    python benchmarks/ray_grid.py --out results/ray/grid.md

The grid: DCGAN on the emoji faces, 2 seeds x 2 D learning rates = 4 runs of --steps iterations
(default 150) each, evaluated on 200 samples (effnet-lite0, no bootstrap). Every round runs the
grid into a fresh folder, so nothing is skipped; Ray's start-up is inside its first round (and
reported apart: the later rounds reuse the running local Ray, as a study of many grids would).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

SPEC = """name: ray-grid
presets: [dcgan]
data: [emoji]
seeds: [0, 1]
steps: {steps}
grid: {{train.lr_d: [0.0002, 0.0004]}}
overrides: {{log.sample_every: 0, log.ckpt_every: 0}}
eval: {{n: 200, n_boot: 0}}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import ray
    import torch

    from fewgan.experiments.runner import run_experiment

    times: dict[str, list[float]] = {"local": [], "ray": []}
    startup = None
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(SPEC.format(steps=args.steps))
        for r in range(args.rounds):
            for ex in ("local", "ray"):
                t0 = time.perf_counter()
                if ex == "ray" and not ray.is_initialized():
                    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                    startup = time.perf_counter() - t0
                opts = {"cpus_per_job": 1} if ex == "ray" else {}
                if ex == "local":
                    torch.set_num_threads(2)
                run_experiment(spec, Path(tmp) / f"{ex}-{r}", ex, log=lambda *a: None, executor_options=opts)
                times[ex].append(time.perf_counter() - t0)
                print(f"round {r} {ex}: {times[ex][-1]:.1f} s", flush=True)
    ray.shutdown()
    if args.out:
        cmd = "python benchmarks/ray_grid.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        lines = [f"# One 4-run grid: local executor vs Ray with 2 single-thread workers ({time.strftime('%Y-%m-%d %H:%M')})",
                 "", f"Command: `{cmd}`", "", "| round | local (1 run at a time, 2 threads) | Ray (2 runs at a time, 1 thread each) |",
                 "|---|---|---|"]
        lines += [f"| {i} | {a:.1f} s | {b:.1f} s |" for i, (a, b) in enumerate(zip(times["local"], times["ray"]))]
        lines += ["", f"Ray's start-up (inside round 0): {startup:.1f} s. DCGAN on the emoji faces, {args.steps} "
                  "iterations per run, 200-sample evaluation. (Equal results.csv at equal thread counts is checked in tests/test_ray.py; here the local arm uses 2 threads, so its floats may differ.)"]
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n")
        Path(args.out).with_suffix(".json").write_text(json.dumps({"times": times, "ray_startup_s": startup}, indent=1))


if __name__ == "__main__":
    main()
