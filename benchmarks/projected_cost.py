"""Cost per iteration of the projected discriminator at each backbone input size, side by side.

Projected GAN (docs/methods.md §20) runs a frozen EfficientNet-Lite0 on every D input; the authors resize
to 224 px, on a CPU the backbone can run smaller (model.proj_input). This times one training
iteration (a D and a G update) of a projected preset at each input size, in one process: the
sizes alternate in short rounds and the median over rounds is reported, with the ratio to the
first size, since the machine is shared and noisy (as benchmarks/method_cost.py). A baseline
preset (default dcgan-diffaug) is timed alongside for scale. Run by hand:

    python benchmarks/projected_cost.py --out results/projected/cost.md
    python benchmarks/projected_cost.py --preset projected-fastgan --out results/projected/cost-fastgan.md
    python benchmarks/projected_cost.py --case cat=../shared/data/afhq_cat_1k_64.npz:64 --out results/projected/cost-64.md

Quality per size is the projected-GAN study's job (results/projected/, not run yet); this only gives the cost side of the choice of
model.proj_input's default.
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

SIZES = [32, 64, 96, 128, 224]


def make_trainer(preset: str, size: int | None, source: str, res: int, fast: bool, batch: int, data, tmp: str,
                 extra) -> Trainer:
    over = [f"--data.source={source}", f"--data.resolution={res}", f"--train.fast={'true' if fast else 'false'}",
            f"--train.batch_size={batch}", "--log.progress=false", *[f"--{s}" for s in extra]]
    if size is not None:
        over.append(f"--model.proj_input={size}")
    cfg = config_mod.apply_overrides(config_mod.load_preset(preset), over)
    return Trainer(cfg, f"{tmp}/{preset}-{size}-{res}", data=data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="projected-dcgan", help="the projected preset to time")
    ap.add_argument("--size", type=int, action="append", help=f"backbone input sizes (repeatable; default {SIZES})")
    ap.add_argument("--baseline", default="dcgan-diffaug", help="a preset timed alongside for scale ('' = none)")
    ap.add_argument("--case", default="emoji=emoji:32", help="LABEL=SOURCE:RESOLUTION")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--fast", choices=["true", "false"], default="true", help="train.fast for every run")
    ap.add_argument("--set", action="append", default=[], help="extra override key=value (repeatable)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=8, help="timed iterations per round")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    sizes = args.size or SIZES
    label, rest = args.case.split("=", 1)
    source, res = rest.rsplit(":", 1)
    res = int(res)
    fast = args.fast == "true"
    data = load_images(source, res, 3)
    names = [f"{args.preset}@{s}" for s in sizes] + ([args.baseline] if args.baseline else [])
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {f"{args.preset}@{s}": make_trainer(args.preset, s, source, res, fast, args.batch_size, data, tmp,
                                                         args.set) for s in sizes}
        if args.baseline:
            trainers[args.baseline] = make_trainer(args.baseline, None, source, res, fast, args.batch_size, data, tmp,
                                                   args.set)
        secs = alternate(trainers, args.rounds, args.iters, args.warmup)
    med = medians(secs)
    base = med[names[0]]
    for n in names:
        print(f"{n:24s} {med[n] * 1000:8.1f} ms/iteration  x{med[n] / base:.2f}", flush=True)
    if args.out:
        info = machine_info()
        cmd = "python benchmarks/projected_cost.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        lines = [f"# Cost per iteration of {args.preset} by backbone input size, {label} {res} px, batch "
                 f"{args.batch_size}, train.fast={args.fast} ({info['date']}, torch {info['torch']}, "
                 f"{info['threads']} threads)", "", f"Command: `{cmd}`", "",
                 f"| run | model.proj_input | ms / iteration | vs {names[0]} |", "|---|---|---|---|"]
        for n in names:
            size = n.rsplit("@", 1)[1] if "@" in n else "-"
            lines.append(f"| {n} | {size} | {med[n] * 1000:.1f} | x{med[n] / base:.2f} |")
        lines += ["", f"Median of {args.rounds} alternating rounds of {args.iters} iterations after {args.warmup} "
                  "warm-up iterations per run; an iteration is one D and one G update, and a projected D runs "
                  "the frozen Lite0 trunk on reals and fakes in the D step and on fakes in the G step."]
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(args.out.rsplit(".", 1)[0] + ".json", "w") as f:
            json.dump({"info": info, "seconds": secs, "median": med}, f, indent=1)


if __name__ == "__main__":
    main()
