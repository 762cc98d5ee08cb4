"""Pixel-space blur / noise statistics of finished runs' final generators, grouped by variant.

For each run: its latest checkpoint draws the final evaluation's samples (`eval.n` images, the
same noise seed and, for a conditional model, the same labels as the run's final evaluation),
and fewgan.metrics.sharpness compares them with the run's training images: the Laplacian
variance ratio and the generated / real power in the low, mid and high bands of the radial
spectrum (`spectral_bands`). Runs evaluated before `spec_*` joined the evaluation get them here
without retraining. Prints a markdown table: mean ± std over seeds per (variant, data).

    python scripts/pixel_stats.py 'results/balance/dog-tricks/runs/*'
"""

from __future__ import annotations

import argparse
import glob
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from fewgan.data import load_images
from fewgan.metrics.evaluate import EvalSettings
from fewgan.metrics.sharpness import sharpness, spectral_bands
from fewgan.sampling import generate, load_for_sampling

KEYS = ("sharpness_ratio", "spec_low", "spec_mid", "spec_high")


def run_stats(run: str | Path, data_cache: dict) -> tuple[str, str, dict[str, float]]:
    lr = load_for_sampling(run)
    cfg = lr.cfg
    key = (cfg.data.source, cfg.data.resolution, cfg.data.channels)
    if key not in data_cache:
        data_cache[key] = load_images(cfg.data.source, resolution=cfg.data.resolution, channels=cfg.data.channels)
    data = data_cache[key]
    y = torch.arange(cfg.eval.n) % data.num_classes if cfg.model.conditional else None
    with torch.random.fork_rng():
        imgs = generate(lr.variant.sampler(), cfg.eval.n, seed=EvalSettings().seed + 1_000_003, y=y)  # as evaluate_generator
    rec = {**sharpness(imgs, data.x), **spectral_bands(imgs, data.x)}
    mpath = Path(run) / "metrics.json"  # the same samples as the final evaluation: its sharpness must match
    logged = json.loads(mpath.read_text()).get("sharpness_ratio") if mpath.is_file() else None
    if logged is not None and abs(logged - rec["sharpness_ratio"]) > 1e-6 * max(1.0, abs(logged)):
        print(f"warning: {run}: sharpness ratio {rec['sharpness_ratio']:.6f} differs from metrics.json's {logged:.6f}")
    done = Path(run) / "done.json"
    name = json.loads(done.read_text())["variant"] if done.is_file() else Path(run).name
    return name, Path(cfg.data.source).stem, rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders or glob patterns")
    args = ap.parse_args()
    runs = sorted({p for pat in args.runs for p in (glob.glob(pat) or [pat])})
    runs = [r for r in runs if (Path(r) / "done.json").exists()]
    if not runs:
        raise SystemExit(f"no finished runs (with done.json) matched {args.runs}")
    data_cache: dict = {}
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for run in runs:
        name, data, rec = run_stats(run, data_cache)
        groups[(data, name)].append(rec)
    print("| data | variant | seeds | Laplacian variance ratio | low (0, 1/8] | mid (1/8, 1/4] | high (> 1/4) |")
    print("|---|---|---|---|---|---|---|")
    for (data, name), recs in sorted(groups.items()):
        cells = []
        for k in KEYS:
            v = np.array([r[k] for r in recs])
            cells.append(f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1 else f"{v[0]:.2f}")
        print(f"| {data} | {name} | {len(recs)} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
