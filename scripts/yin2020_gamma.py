"""The γ study's diversity table and sample-grid figure (results/yin2020, the paper's Fig. 4).

Recall and coverage (k = 5) are 0 for every cat run of our 2,000-iteration budget: no sample
lies inside a real image's k-NN ball, so they cannot tell a generator that draws one image from
one that draws many. This script measures diversity in ways that do not need the samples to reach
the data. For each run folder it generates 1,000 samples from the latest checkpoint (noise seed 0,
so every run gets the same noise), takes their effnet-lite0 features, and prints:

- γ, seed, and FD / recall / coverage / NDB/K from the run's final evaluation (metrics.json);
- Vendi score (cosine kernel on the features; the effective number of distinct samples, 1 to
  1,000), next to the real training images' Vendi score;
- feature spread trace(Σ_gen) / trace(Σ_real) (1 = as spread out as the data);
- cells hit: how many of the 50 k-means cells of the real features (NDB's cells) receive at
  least one sample (a crude mode count);
- pixel std across samples (as scripts/yin2020_brightness.py).

With --figure it also draws one panel of 36 samples per run (the same 36 noise vectors in every
panel), a row per seed and a column per γ.

    python scripts/yin2020_gamma.py results/yin2020/gamma/runs/*afhq_cat* \
        results/yin2020/compare/runs/began-improved__afhq_cat__s* \
        --figure results/yin2020/gamma/fig_gamma_grids.png > results/yin2020/gamma/diversity.md
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from fewgan.data import load_images  # noqa: E402
from fewgan.images import make_grid  # noqa: E402
from fewgan.metrics import extract, feature_spread, ndb, vendi_score  # noqa: E402
from fewgan.metrics.evaluate import backbone, real_features  # noqa: E402
from fewgan.sampling import generate, load_for_sampling  # noqa: E402


@lru_cache(maxsize=None)
def real_side(source: str, resolution: int, channels: int, bb) -> tuple[torch.Tensor, float, float]:
    """(features, Vendi score, pixel std across images) of a run's training images, once per data set."""
    data = load_images(source, resolution, channels)
    f_real, _ = real_features(data, bb)
    return f_real, vendi_score(f_real), float((data.x.double() / 255).std(dim=0).mean())


def run_row(run_dir: Path, bb, n: int) -> tuple[dict, torch.Tensor]:
    run = load_for_sampling(run_dir)
    cfg = run.cfg
    final = json.loads((run_dir / "metrics.json").read_text())
    f_real, vendi_real, pixel_std_real = real_side(str(cfg.data.source), cfg.data.resolution, cfg.data.channels, bb)
    x = generate(run.variant.sampler(), n, seed=0)
    f_gen, _ = extract(bb, x)
    nd = ndb(f_real, f_gen, k=50, seed=0)
    px = x.double() / 255.0
    row = {
        "run": run_dir.name, "gamma": float(cfg.began.gamma), "seed": int(cfg.train.seed), "step": int(final["step"]),
        "fd": final["fd"], "recall": final["recall"], "coverage": final["coverage"], "ndb_k": final["ndb_k"],
        "vendi": vendi_score(f_gen), "vendi_real": vendi_real,
        "spread": feature_spread(f_real, f_gen), "cells_hit": int((nd.gen_props > 0).sum()), "cells": nd.k,
        "pixel_std": float(px.std(dim=0).mean()), "pixel_std_real": pixel_std_real,
    }
    return row, x[:36]


def figure(rows: list[dict], grids: list[torch.Tensor], path: Path) -> None:
    gammas = sorted({r["gamma"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    fig, axes = plt.subplots(len(seeds), len(gammas), figsize=(3.2 * len(gammas), 3.4 * len(seeds)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, g in zip(rows, grids):
        ax = axes[seeds.index(r["seed"])][gammas.index(r["gamma"])]
        ax.imshow(make_grid(g, nrow=6).squeeze())
        ax.set_title(f"γ = {r['gamma']}, seed {r['seed']}\nVendi {r['vendi']:.1f}, FD {r['fd']:.0f}", fontsize=9)
    fig.suptitle("Improved BEGAN, cat faces 64 px, 2,000 iterations\n(the same 36 noise vectors in every panel)",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (each with checkpoints/ and metrics.json)")
    ap.add_argument("--n", type=int, default=1000, help="samples per run (default 1000)")
    ap.add_argument("--figure", type=Path, help="write the grid figure here (PNG)")
    a = ap.parse_args(argv)
    for r in a.runs:
        if not (r / "metrics.json").is_file():
            sys.exit(f"{r}: no metrics.json (is the run finished?)")
    bb = backbone("effnet-lite0")
    rows, grids = [], []
    for r in a.runs:
        row, grid = run_row(r, bb, a.n)
        rows.append(row)
        grids.append(grid)
        print(f"  {row['run']}: Vendi {row['vendi']:.2f}", file=sys.stderr, flush=True)
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["gamma"], rows[i]["seed"]))
    rows, grids = [rows[i] for i in order], [grids[i] for i in order]
    print(f"{a.n} samples per run (noise seed 0), effnet-lite0 features; the real training images: "
          f"Vendi {rows[0]['vendi_real']:.2f}, pixel std across images {rows[0]['pixel_std_real']:.3f}.\n")
    print("| γ | seed | run | FD | recall | coverage | NDB/K | Vendi | feature spread | cells hit (of 50) | pixel std across samples |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['gamma']} | {r['seed']} | {r['run']} | {r['fd']:.1f} | {r['recall']:.3f} | {r['coverage']:.3f} | "
              f"{r['ndb_k']:.2f} | {r['vendi']:.2f} | {r['spread']:.3f} | {r['cells_hit']} | {r['pixel_std']:.3f} |")
    print("\nMean over seeds:\n")
    print("| γ | runs | FD | Vendi | feature spread | cells hit | pixel std |")
    print("|---|---|---|---|---|---|---|")
    for g in sorted({r["gamma"] for r in rows}):
        rs = [r for r in rows if r["gamma"] == g]
        m = {k: sum(r[k] for r in rs) / len(rs) for k in ("fd", "vendi", "spread", "cells_hit", "pixel_std")}
        print(f"| {g} | {len(rs)} | {m['fd']:.1f} | {m['vendi']:.2f} | {m['spread']:.3f} | {m['cells_hit']:.1f} | "
              f"{m['pixel_std']:.3f} |")
    if a.figure:
        figure(rows, grids, a.figure)
        print(f"\nFigure: {a.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
