"""One figure of several runs' sample grids side by side: a row per run, a column per step.

Reads the grids the runs wrote during training (samples/step_XXXXXXXX.png, the fixed-z samples
of log.sample_every) and labels each row with the run's variant (from done.json, else the folder
name). Used for Weaver's "after 100 / after 400 iterations" figures:

    python scripts/grid_montage.py results/balance/weaver/runs/*__s0 --steps 100 400 \
        -o results/balance/weaver/fig_grids_s0.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from fewgan import runs as runs_mod  # noqa: E402
from fewgan.runs import natural_key  # noqa: E402


def _label(run: Path) -> str:
    if runs_mod.is_done(run):
        d = runs_mod.read_done(run)
        return f"{d['variant']}\nseed {d['seed']}"
    return run.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--steps", nargs="+", type=int, required=True, help="training steps whose grids to show")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    runs = sorted((r for r in args.runs if r.is_dir()), key=lambda r: natural_key(r.name))
    if not runs:
        raise SystemExit("no run folders given")
    fig, axes = plt.subplots(len(runs), len(args.steps), figsize=(3.2 * len(args.steps), 3.3 * len(runs)),
                             squeeze=False)
    for i, run in enumerate(runs):
        for j, step in enumerate(args.steps):
            ax = axes[i, j]
            p = runs_mod.samples_dir(run) / f"step_{step:08d}.png"
            if not p.is_file():
                raise SystemExit(f"{p}: no grid for step {step} (log.sample_every must divide it)")
            ax.imshow(Image.open(p).convert("RGB"))
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(_label(run), fontsize=9)
            if i == 0:
                ax.set_title(f"after {step} iterations", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
