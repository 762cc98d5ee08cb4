"""The numbers behind results/yin2020/README.md's claim table, per run of a BEGAN experiment.

For every finished run (results.csv) of an experiment folder it prints, from the run's
metrics.jsonl and stats.jsonl(.gz) (so it also works on a fresh clone):
- FD at each evaluation, the final FD, and the mean |ΔFD| between consecutive evaluations
  (how steady the FD curve is; the paper's Fig. 6 claim);
- M_global, k_t and L(G(z))/L(x) averaged over the last `--tail` iterations (Fig. 7's
  convergence claim, and whether the controller holds L(G)/L(x) near γ).

    python scripts/yin2020_claims.py results/yin2020/compare > results/yin2020/compare-claims.md
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from fewgan import runs


def run_numbers(run_dir: Path, tail: int) -> dict:
    """FD curve, its mean absolute step, and tail means of M_global, k_t and L(G)/L(x)."""
    metrics = [m for m in runs.read_metrics(run_dir) if m.get("fd") is not None]
    fds = [(int(m["step"]), float(m["fd"])) for m in metrics]
    steps = [r for r in runs.read_stats(run_dir) if "m_global" in r][-tail:]
    if not fds or not steps:
        raise SystemExit(f"{run_dir}: no FD evaluations or no BEGAN stats (m_global) to summarise")
    deltas = [abs(b - a) for (_, a), (_, b) in zip(fds, fds[1:])]
    return {
        "fd_curve": fds,
        "fd_final": fds[-1][1],
        "fd_mean_abs_step": statistics.fmean(deltas) if deltas else float("nan"),
        "m_global": statistics.fmean(r["m_global"] for r in steps),
        "k_t": statistics.fmean(r["k_t"] for r in steps),
        "ratio": statistics.fmean(r["loss_g"] / r["l_real"] for r in steps if r.get("l_real")),
        "decays": int(steps[-1].get("lr_decays", 0)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", type=Path, help="an experiment folder (holds results.csv and runs/)")
    ap.add_argument("--tail", type=int, default=200, help="iterations averaged at the end (default 200)")
    args = ap.parse_args(argv)
    table = args.experiment / "results.csv"
    if not table.is_file():
        raise SystemExit(f"{table}: not found; expected an experiment folder with finished runs")
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    print(f"Per run, {args.experiment}; last {args.tail} iterations for M_global, k_t and L(G)/L(x).\n")
    print("| data | variant | seed | FD per evaluation (step: FD) | final FD | mean \\|ΔFD\\| | M_global | k_t | L(G)/L(x) | lr decays |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in sorted(rows, key=lambda r: (r["data"], r["variant"], int(r["seed"]))):
        n = run_numbers(args.experiment / "runs" / row["run"], args.tail)
        curve = ", ".join(f"{s}: {v:.1f}" for s, v in n["fd_curve"])
        print(f"| {row['data']} | {row['variant']} | {row['seed']} | {curve} | {n['fd_final']:.1f} | "
              f"{n['fd_mean_abs_step']:.1f} | {n['m_global']:.4f} | {n['k_t']:.4f} | {n['ratio']:.3f} | {n['decays']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
