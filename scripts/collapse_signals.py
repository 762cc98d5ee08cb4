"""The collapse monitor's sample signals on the final checkpoints of finished runs.

Loads each run's latest checkpoint, draws the monitor's `monitor.n` fixed-z samples (the same
seed the monitor uses during training) and evaluates them with the monitor's own code
(fewgan.training.monitors.collapse.CollapseMonitor.signals): fixed-z pixel diversity, the share of
near-duplicates (calibrated on real images at the same n) and NDB/K on the small sample.
Runs without done.json (still training) are skipped unless --unfinished. Prints a markdown table with each run's final FD / IS / NDB JS from its metrics.json beside them.

    python scripts/collapse_signals.py 'results/song2023/table1/runs/*emoji*'
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path
from types import SimpleNamespace

import torch

from fewgan.data import load_images
from fewgan.sampling import load_for_sampling
from fewgan.training.monitors import CollapseMonitor
from fewgan.training.loop import fixed_noise_seed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders or glob patterns")
    ap.add_argument("--unfinished", action="store_true", help="also runs without done.json (still training)")
    args = ap.parse_args()
    runs = sorted({p for pat in args.runs for p in (glob.glob(pat) or [pat])})
    if not args.unfinished:
        runs = [r for r in runs if (Path(r) / "done.json").exists()]
    if not runs:
        raise SystemExit("no runs matched")
    data_cache: dict = {}
    print("| run | step | diversity | duplicates | NDB/K (n=128) | fires | FD | IS | NDB JS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        lr = load_for_sampling(run)
        cfg = lr.cfg
        key = (cfg.data.source, cfg.data.resolution, cfg.data.channels)
        if key not in data_cache:
            data_cache[key] = load_images(cfg.data.source, resolution=cfg.data.resolution, channels=cfg.data.channels)
        data = data_cache[key]
        mon = CollapseMonitor(cfg)
        trainer = SimpleNamespace(variant=lr.variant, data=data, fixed_noise_seed=fixed_noise_seed(cfg.train.seed))
        sig = mon.signals(mon._samples(trainer), data)
        fires = ", ".join(sorted(k for k in mon.firing(sig, {}) if k in ("diversity", "duplicates", "ndb"))) or "-"
        mpath = Path(run) / "metrics.json"
        m = json.loads(mpath.read_text()) if mpath.exists() else {}
        fmt = lambda k, f: format(m[k], f) if k in m else "-"  # noqa: E731
        print(f"| {Path(run).name} | {lr.meta.get('step', '?')} | {sig['mon_diversity']:.2f} | {sig['mon_duplicates']:.2f} "
              f"| {sig['mon_ndb_k']:.2f} | {fires} | {fmt('fd', '.1f')} | {fmt('is', '.2f')} | {fmt('ndb_js', '.3f')} |",
              flush=True)


if __name__ == "__main__":
    main()
