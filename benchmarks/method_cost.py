"""Cost per iteration of each data-efficient method, side by side in one process.

The machine is shared and noisy, so the presets alternate in short rounds and the median over
rounds is reported, with the ratio to the first preset (the baseline). Run by hand:

    python benchmarks/method_cost.py --out results/augment/cost.md
    python benchmarks/method_cost.py --case cat=../shared/data/afhq_cat_1k_64.npz:64 --out results/augment/cost-64.md

ADA is timed at p = 1 (`dcgan-ada@p1`: every op on, its most expensive state) beside its preset
(p starts at 0, where the pipeline is skipped). A preset NAME@p1 means NAME with aug.p=1 and
aug.adaptive=false.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile

from _rounds import alternate, machine_info, medians  # benchmarks/_rounds.py

from fewgan import config as config_mod
from fewgan.data import load_images
from fewgan.training.loop import Trainer

DEFAULT = ["dcgan", "dcgan-diffaug", "dcgan-ada", "dcgan-ada@p1", "dcgan-apa", "dcgan-lecam", "dcgan-r1"]


def make_trainer(spec: str, source: str, res: int, fast: bool, batch: int, data, tmp: str, extra) -> Trainer:
    name, _, mod = spec.partition("@")
    over = [f"--data.source={source}", f"--data.resolution={res}", f"--train.fast={'true' if fast else 'false'}",
            f"--train.batch_size={batch}", "--log.progress=false", *[f"--{s}" for s in extra]]
    if mod == "p1":
        over += ["--aug.p=1.0", "--aug.adaptive=false"]
    cfg = config_mod.apply_overrides(config_mod.load_preset(name), over)
    return Trainer(cfg, f"{tmp}/{spec}-{res}", data=data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", action="append", help=f"presets (repeatable; default {' '.join(DEFAULT)})")
    ap.add_argument("--case", default="emoji=emoji:32", help="LABEL=SOURCE:RESOLUTION")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--fast", choices=["true", "false"], default="true", help="train.fast for every preset")
    ap.add_argument("--set", action="append", default=[], help="extra override key=value (repeatable)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=16, help="timed iterations per round (16: one lazy R1 step)")
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    presets = args.preset or DEFAULT
    label, rest = args.case.split("=", 1)
    source, res = rest.rsplit(":", 1)
    res = int(res)
    fast = args.fast == "true"
    data = load_images(source, res, 3)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {p: make_trainer(p, source, res, fast, args.batch_size, data, tmp, args.set) for p in presets}
        secs = alternate(trainers, args.rounds, args.iters, args.warmup)
    med = medians(secs)
    base = med[presets[0]]
    for p in presets:
        print(f"{p:18s} {med[p] * 1000:7.1f} ms/iteration  x{med[p] / base:.2f}", flush=True)
    if args.out:
        info = machine_info()
        cmd = "python benchmarks/method_cost.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        lines = [f"# Cost per iteration, {label} {res} px, batch {args.batch_size}, train.fast={args.fast} "
                 f"({info['date']}, torch {info['torch']}, {info['threads']} threads)", "", f"Command: `{cmd}`", "",
                 "| preset | ms / iteration | vs " + presets[0] + " |", "|---|---|---|"]
        lines += [f"| {p} | {med[p] * 1000:.1f} | x{med[p] / base:.2f} |" for p in presets]
        lines += ["", f"Median of {args.rounds} alternating rounds of {args.iters} iterations after {args.warmup} "
                  "warm-up iterations; an iteration is one D and one G update (plus lazy R1's extra D update every "
                  "16th). `@p1`: aug.p = 1, not adaptive (every op on every sample)."]
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(args.out.rsplit(".", 1)[0] + ".json", "w") as f:
            json.dump({"info": info, "seconds": secs, "median": med}, f, indent=1)


if __name__ == "__main__":
    main()
