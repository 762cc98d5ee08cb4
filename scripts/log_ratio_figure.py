"""Weaver's Fig. 1 across experiments: the per-epoch log(L_G / L_D) of several runs in one figure.

`fewgan report` draws the curves of one experiment; Weaver's ratios 1-10 and ratio 50 live in two
experiments (results/balance/weaver, results/balance/weaver50), so this script overlays any runs:
one line per run, labelled with the run's G updates per iteration (train.g_steps) and seed, the
zero line marked. Reads stats.jsonl (or stats.jsonl.gz) and config.yaml of each run.

    python scripts/log_ratio_figure.py results/balance/weaver/runs/*__s0 results/balance/weaver50/runs/*__s0 \
        -o results/balance/weaver50/fig_log_ratio_s0.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

from fewgan import runs as runs_mod  # noqa: E402
from fewgan.report import epoch_log_ratio  # noqa: E402
from fewgan.runs import natural_key  # noqa: E402


def _stats(run: Path) -> list[dict]:
    if (run / runs_mod.STATS).is_file() or (run / runs_mod.STATS_GZ).is_file():
        return runs_mod.read_stats(run)
    raise SystemExit(f"{run}: no stats.jsonl or stats.jsonl.gz (is it a run folder?)")


def _label(run: Path) -> tuple[int, str]:
    cfg = yaml.safe_load(runs_mod.config_path(run).read_text())
    g = int(cfg["train"]["g_steps"])
    return g, f"G:D = {g}:1, seed {cfg['train']['seed']}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    runs = sorted(args.runs, key=lambda r: (_label(r)[0], natural_key(r.name)))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run in runs:
        pts = epoch_log_ratio(_stats(run))
        if not pts:
            raise SystemExit(f"{run}: no epoch with positive mean L_G and L_D")
        ax.plot([e for e, _ in pts], [r for _, r in pts], label=_label(run)[1], lw=1.2)
    ax.axhline(0.0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("epoch")
    ax.set_ylabel("log(mean L_G / mean L_D) per epoch")
    ax.set_title("Weaver's balance measure per G:D ratio")
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
