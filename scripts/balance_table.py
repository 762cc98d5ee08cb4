"""G:D balance per variant of finished experiment runs (Weaver's g_advantage study and the controller).

For each variant (mean ± std over its seeds): G updates per iteration, total D + G updates,
training wall-clock (evaluation excluded), Weaver's per-epoch log(L_G/L_D) averaged over the
first and the last `--tail` epochs, FD at each evaluation step, KID and NDB JS at the end, and
the collapse monitor's near-duplicate share at its last check. Reads only what the runs wrote
(done.json, config.yaml, stats.jsonl[.gz], metrics.jsonl); prints a Markdown table.

    python scripts/balance_table.py results/balance/weaver results/balance/weaver-autobalance
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from fewgan.experiments.runner import train_seconds
from fewgan import runs
from fewgan.report import epoch_log_ratio


def _pm(vals: list[float], digits: int) -> str:
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.fmean(vals):.{digits}f} ± {sd:.{digits}f}"


def run_row(run: Path, tail: int) -> dict:
    done = runs.read_done(run)
    stats = runs.read_stats(run)
    ratios = [r for _, r in epoch_log_ratio(stats)]
    metrics = [m for m in runs.read_metrics(run) if m.get("fd") is not None]
    dups = [r["mon_duplicates"] for r in stats if r.get("mon_duplicates") is not None]
    g_counts = [r.get("g_updates") for r in stats if r.get("g_updates") is not None]
    return {
        "variant": done["variant"], "data": done["data"], "seed": done["seed"], "steps": done["step"],
        "g_per_it": statistics.fmean(g_counts) if g_counts else None,
        "updates": stats[-1].get("updates") if stats else None,
        "train_min": (train_seconds(run) or 0.0) / 60 or None,
        "ratio_first": statistics.fmean(ratios[:tail]) if ratios else None,
        "ratio_last": statistics.fmean(ratios[-tail:]) if ratios else None,
        "fd_at": {m["step"]: m["fd"] for m in metrics},
        "fd": done.get("fd"), "kid": done.get("kid"), "ndb_js": done.get("ndb_js"),
        "dup_last": dups[-1] if dups else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiments", nargs="+", help="experiment folders (their runs/*/done.json are read)")
    ap.add_argument("--tail", type=int, default=20, help="epochs averaged for the first / last log ratio")
    args = ap.parse_args()
    rows = [run_row(d.parent, args.tail) for e in args.experiments
            for d in sorted(Path(e).glob("runs/*/done.json"))]
    if not rows:
        raise SystemExit(f"no finished runs (runs/*/done.json) under {', '.join(args.experiments)}")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["variant"]), []).append(r)
    eval_steps = sorted({s for r in rows for s in r["fd_at"]})
    if len(eval_steps) > 6:  # keep the table readable: a few evenly spaced evaluations and the last
        eval_steps = sorted(set(eval_steps[:: max(1, len(eval_steps) // 5)]) | {eval_steps[-1]})
    head = (["data", "variant", "seeds", "iterations", "G updates / it", "D + G updates", "train min",
             f"log ratio, first {args.tail} ep.", f"log ratio, last {args.tail} ep."]
            + [f"FD @ {s}" for s in eval_steps] + ["final FD", "KID", "NDB JS", "near-dup. share (last check)"])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    def order(item):  # by data set, then by G updates per iteration (the ratio), then name
        (data, variant), rs = item
        return data, statistics.fmean(r["g_per_it"] or 0.0 for r in rs), variant

    for (data, variant), rs in sorted(groups.items(), key=order):
        cells = [data, variant, str(len(rs)), _pm([r["steps"] for r in rs], 0), _pm([r["g_per_it"] for r in rs], 2),
                 _pm([r["updates"] for r in rs], 0), _pm([r["train_min"] for r in rs], 1),
                 _pm([r["ratio_first"] for r in rs], 2), _pm([r["ratio_last"] for r in rs], 2)]
        cells += [_pm([r["fd_at"].get(s) for r in rs], 1) for s in eval_steps]
        cells += [_pm([r["fd"] for r in rs], 1), _pm([r["kid"] for r in rs], 3), _pm([r["ndb_js"] for r in rs], 3),
                  _pm([r["dup_last"] for r in rs], 2)]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
