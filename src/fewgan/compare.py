"""`fewgan compare EXP [--with EXP2 ...] --baseline NAME`: each variant of an experiment against a baseline.

The numbers the reproduction READMEs quote claim by claim: per data set and metric, mean ± std
over seeds of each variant and of the baseline, the relative change of the means, the
relative change seed by seed (same seed, same data: the pairs share their real batches and
evaluation noise) and how many seeds went the better way; and, from each run's stats.jsonl,
how steady training was over its second half (std of L_D and L_G, mean log(L_G/L_D)).
Reads results.csv and runs/*/stats.jsonl(.gz); writes nothing but the returned Markdown.
`--with` adds the runs of further experiments run with the same protocol (an ablation whose
baseline was run in the main table); a (variant, data, seed) present twice is an error.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from . import runs
from .analysis import table
from .experiments.runner import train_seconds

# which way is better for each comparable metric of the metric table (analysis.table), the extra
# backbones' keys (fd_lite2, ...) included: True: lower is better; None: closer to 1, as the data, is better
_LOWER = {"lower": True, "higher": False, "ratio": None}
LOWER_IS_BETTER = {k: _LOWER[m.direction] for k, m in table.TABLE.items() if m.comparable}


def lower_is_better(metric: str) -> bool | None:
    """LOWER_IS_BETTER of a metric, also for an extra backbone's key of any suffix (KeyError if not comparable)."""
    m = table.metric(metric)
    if m is None or not m.comparable:
        raise KeyError(metric)
    return _LOWER[m.direction]


def is_better(value: float, base: float, lower: bool | None) -> bool:
    """Whether `value` beats `base` for a metric of direction `lower` (see LOWER_IS_BETTER)."""
    if not (math.isfinite(value) and math.isfinite(base)):
        return False
    if lower is None:  # a ratio to the data: the smaller |log ratio| wins
        return value > 0 and base > 0 and abs(math.log(value)) < abs(math.log(base))
    return value < base if lower else value > base
DEFAULT_METRICS = ("fd", "kid", "is", "recall", "coverage", "ndb_js")


def mean_std(values) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0 for one value) of the finite values (table.mean_std); (nan, nan) when none."""
    mean, std = table.mean_std(values)
    return (math.nan, math.nan) if mean is None else (mean, std)


def relative_change(new: float, base: float) -> float:
    """(new − base) / |base| in percent (nan when base is 0 or either is nan)."""
    if not (math.isfinite(new) and math.isfinite(base)) or base == 0:
        return math.nan
    return 100.0 * (new - base) / abs(base)


def paired_changes(variant: dict[int, float], base: dict[int, float]) -> list[float]:
    """Per-seed relative changes (%) over the seeds both have, in seed order."""
    return [relative_change(variant[s], base[s]) for s in sorted(set(variant) & set(base))]


def second_half_stability(stats: list[dict], frac: float = 0.5) -> dict[str, float]:
    """std of loss_d and loss_g and the mean per-iteration log ratio over the last `frac` of a run."""
    tail = stats[int(len(stats) * (1 - frac)):]
    out = {}
    for key in ("loss_d", "loss_g"):
        v = [r[key] for r in tail if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        out[f"{key}_mean"], out[f"{key}_std"] = (float(np.mean(v)), float(np.std(v))) if v else (math.nan, math.nan)
    lr = [r["log_ratio"] for r in tail if isinstance(r.get("log_ratio"), (int, float))]
    out["log_ratio_mean"] = float(np.mean(lr)) if lr else math.nan
    return out


def steps_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    """The first evaluation step whose FD is at or below `target` (curve: (step, FD) pairs); None if none."""
    for step, fd in sorted(curve):
        if math.isfinite(fd) and fd <= target:
            return step
    return None


def _fd_curve(run_dir: Path) -> list[tuple[int, float]]:
    return [(int(m["step"]), float(m["fd"])) for m in runs.read_metrics(run_dir)
            if m.get("fd") is not None and m.get("step") is not None]


def _reach_section(data: str, variants: list[str], by: dict, target: float, how: str) -> list[str]:
    lines = [f"Iterations to reach FD ≤ {target:.2f} ({how}): the first evaluation at or below it, per seed; "
             "training minutes up to that evaluation (iteration times only). Mean ± std over the seeds that "
             "reach it.", "",
             "| variant | seeds reaching | iterations | training min | per seed (iterations) |", "|---|---|---|---|---|"]
    for v in variants:
        if not by[v]:
            continue
        hits = {}
        for seed, r in sorted(by[v].items()):
            run = r["_exp"] / runs.RUNS_DIR / r["run"]
            hits[seed] = steps_to_reach(_fd_curve(run), target)
        reached = {s: st for s, st in hits.items() if st is not None}
        its = mean_std(reached.values()) if reached else (math.nan, math.nan)
        mins = mean_std((train_seconds(by[v][s]["_exp"] / runs.RUNS_DIR / by[v][s]["run"], until_step=st) or math.nan) / 60
                        for s, st in reached.items()) if reached else (math.nan, math.nan)
        per = ", ".join(f"s{s}: {'–' if st is None else st}" for s, st in hits.items())
        lines.append(f"| {v} | {len(reached)}/{len(hits)} | {_f(its[0], 0)} ± {_f(its[1], 0)} | "
                     f"{_f(mins[0], 1)} ± {_f(mins[1], 1)} | {per} |")
    return lines + [""]


def _f(v: float, digits: int) -> str:
    return "–" if not math.isfinite(v) else f"{v:.{digits}f}"


def _digits(metric: str) -> int:
    return table.digits(metric, default=2)


def _read_rows(exps: list[Path]) -> list[dict]:
    """results.csv rows of every experiment, each with `_exp` (its folder); duplicates are an error."""
    rows, seen = [], {}
    for exp in exps:
        path = exp / "results.csv"
        if not path.is_file():
            raise ValueError(f"{path}: no such file (run `fewgan experiment` first)")
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                key = (r["variant"], r["data"], r["seed"])
                if key in seen:
                    raise ValueError(f"variant {key[0]!r}, data {key[1]!r}, seed {key[2]} is in both {seen[key]} and {exp}")
                seen[key] = exp
                rows.append({**r, "_exp": exp})
    return rows


def compare_experiment(exp: str | Path, baseline: str, metrics=DEFAULT_METRICS, half: float = 0.5,
                       with_exps=(), reach: float | str | None = None) -> str:
    """The comparison as Markdown. reach: also count the iterations each run needs to get its FD down
    to a value: a number, "baseline" for the baseline's mean final FD on each data set, or
    "baseline-best" for the mean over the baseline's seeds of their lowest FD during training."""
    exp = Path(exp)
    exps = [exp] + [Path(e) for e in with_exps]
    rows = _read_rows(exps)
    path = exp / "results.csv"
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    if baseline not in variants:
        where = " + ".join(str(e) for e in exps)
        raise ValueError(f"baseline {baseline!r} is not a variant of {where}; variants: {', '.join(variants)}")
    unknown = [m for m in metrics if not (table.metric(m) and table.metric(m).comparable)]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(LOWER_IS_BETTER)}")

    def val(r, m):
        try:
            return float(r[m])
        except (KeyError, TypeError, ValueError):
            return math.nan

    sources = ", ".join(f"`{e / 'results.csv'}`" for e in exps)
    lines = [f"# {exp.name}: each variant against `{baseline}`", "",
             f"From {sources} ({len(rows)} finished runs) and each run's stats. Change: (variant − {baseline}) / "
             f"{baseline}, of the means over seeds; per seed: the same change for each seed both have "
             "(mean ± std); better: seeds where the variant is better. Stability: over the last "
             f"{half:.0%} of the iterations, std of L_D and of L_G, and the mean log(L_G/L_D).", ""]
    for data in dict.fromkeys(r["data"] for r in rows):
        drows = [r for r in rows if r["data"] == data]
        by = {v: {int(r["seed"]): r for r in drows if r["variant"] == v} for v in variants}
        lines += [f"## {data}", "",
                  "| variant | metric | mean ± std | change vs " + baseline + " | per seed | better |",
                  "|---|---|---|---|---|---|"]
        for v in variants:
            if not by[v]:
                continue
            for m in metrics:
                d = _digits(m)
                mv, sv = mean_std(val(r, m) for r in by[v].values())
                if v == baseline:
                    lines.append(f"| {v} | {m} | {_f(mv, d)} ± {_f(sv, d)} ({len(by[v])} seeds) | – | – | – |")
                    continue
                mb, _ = mean_std(val(r, m) for r in by[baseline].values())
                vs = {s: val(r, m) for s, r in by[v].items()}
                bs = {s: val(r, m) for s, r in by[baseline].items()}
                per = paired_changes(vs, bs)
                pm, ps = mean_std(per)
                better = sum(is_better(vs[s], bs[s], lower_is_better(m)) for s in sorted(set(vs) & set(bs)))
                lines.append(f"| {v} | {m} | {_f(mv, d)} ± {_f(sv, d)} ({len(by[v])} seeds) | "
                             f"{_f(relative_change(mv, mb), 1)} % | {_f(pm, 1)} ± {_f(ps, 1)} % | {better}/{len(per)} |")
        lines += ["", "| variant | std L_D | std L_G | mean L_D | mean L_G | mean log(L_G/L_D) |", "|---|---|---|---|---|---|"]
        for v in variants:
            st = [second_half_stability(runs.read_stats(r["_exp"] / runs.RUNS_DIR / r["run"]), half)
                  for r in by[v].values()]
            st = [s for s in st if math.isfinite(s["loss_d_std"])]
            if not st:
                continue
            cell = {k: mean_std(s[k] for s in st) for k in st[0]}
            fmt = lambda k: f"{_f(cell[k][0], 2)} ± {_f(cell[k][1], 2)}"  # noqa: E731
            lines.append(f"| {v} | {fmt('loss_d_std')} | {fmt('loss_g_std')} | {fmt('loss_d_mean')} | "
                         f"{fmt('loss_g_mean')} | {fmt('log_ratio_mean')} |")
        lines.append("")
        if reach is not None:
            if reach == "baseline":
                target, how = mean_std(val(r, "fd") for r in by[baseline].values())[0], f"{baseline}'s mean final FD"
            elif reach == "baseline-best":  # the Mixture Normalisation paper's "updates to reach BN's best"
                best = [min((fd for _, fd in _fd_curve(r["_exp"] / runs.RUNS_DIR / r["run"]) if math.isfinite(fd)),
                            default=math.nan) for r in by[baseline].values()]
                target, how = mean_std(best)[0], f"{baseline}'s mean best FD over training"
            else:
                target, how = float(reach), "a fixed value"
            lines += _reach_section(data, variants, by, target, how)
    return "\n".join(lines)
