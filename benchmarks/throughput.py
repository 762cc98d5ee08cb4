"""Training throughput (real images/s and seconds per iteration) of any preset: the CPU fast
path (channels_last + bf16 autocast, train.fast=true) against plain fp32 NCHW, side by side.

The machine is shared and noisy, so the two paths alternate in short rounds within one
process and the median over rounds is reported. Run by hand, never from the tests:

    python benchmarks/throughput.py --out results/throughput.md                    # DCGAN, 32 and 64 px
    python benchmarks/throughput.py --preset began --preset began-improved --batch-size 16 \\
        --case cifar=../shared/data/cifar10_1k.npz:32 --case cat=../shared/data/afhq_cat_1k_64.npz:64 \\
        --out results/throughput-began.md

A case is LABEL=SOURCE:RESOLUTION[:CHANNELS]. Extra `--set key=value` overrides apply to every
trainer (e.g. --set hgan.teacher=teachers/cifar10_1k.safetensors).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import tempfile
import time

import torch

from fewgan import config as config_mod
from fewgan.data import load_images
from fewgan.training.loop import Trainer


def parse_case(text: str) -> tuple[str, str, int, int]:
    try:
        label, rest = text.split("=", 1)
        parts = rest.rsplit(":", 2) if rest.count(":") >= 2 else rest.rsplit(":", 1)
        source, res = parts[0], int(parts[1])
        channels = int(parts[2]) if len(parts) > 2 else 3
    except (ValueError, IndexError):
        raise SystemExit(f"--case {text!r}: expected LABEL=SOURCE:RESOLUTION[:CHANNELS]")
    return label, source, res, channels


def make_trainer(preset: str, res: int, channels: int, fast: bool, batch: int, data, tmp: str, extra) -> Trainer:
    cfg = config_mod.apply_overrides(config_mod.load_preset(preset), [
        f"--data.resolution={res}", f"--data.channels={channels}", f"--train.fast={'true' if fast else 'false'}",
        f"--train.batch_size={batch}", "--log.progress=false", *[f"--{s}" for s in extra]])
    return Trainer(cfg, f"{tmp}/{preset}-{res}-{fast}", data=data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", action="append", help="presets to time (repeatable; default dcgan)")
    ap.add_argument("--case", action="append", help="LABEL=SOURCE:RESOLUTION[:CHANNELS] (repeatable; "
                    "default emoji at 32 and 64 px)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--set", action="append", default=[], help="extra config override key=value (repeatable)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=10, help="timed iterations per round")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default=None, help="write a Markdown table here (and .json beside it)")
    args = ap.parse_args()
    presets = args.preset or ["dcgan"]
    cases = [parse_case(c) for c in (args.case or ["emoji32=emoji:32", "emoji64=emoji:64"])]
    b = args.batch_size
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, source, res, ch in cases:
            data = load_images(source, res, ch)
            for preset in presets:
                trainers = {fast: make_trainer(preset, res, ch, fast, b, data, tmp, args.set) for fast in (False, True)}
                for tr in trainers.values():
                    for _ in range(args.warmup):
                        tr.iteration()
                rates = {False: [], True: []}
                for _ in range(args.rounds):
                    for fast, tr in trainers.items():
                        t0 = time.perf_counter()
                        for _ in range(args.iters):
                            tr.iteration()
                        rates[fast].append(b * args.iters / (time.perf_counter() - t0))
                plain, fast = statistics.median(rates[False]), statistics.median(rates[True])
                rows.append({"preset": preset, "case": label, "source": source, "resolution": res, "channels": ch,
                             "batch_size": b, "plain_fp32_img_s": plain, "fast_bf16_cl_img_s": fast,
                             "speedup": fast / plain, "rounds_plain": rates[False], "rounds_fast": rates[True]})
                print(f"{preset} {label} ({res}px): plain {plain:.0f} img/s ({b / plain:.3f} s/it), "
                      f"fast {fast:.0f} img/s ({b / fast:.3f} s/it), x{fast / plain:.2f}", flush=True)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "date": time.strftime("%Y-%m-%d %H:%M"), "rounds": args.rounds, "iters_per_round": args.iters}
    if args.out:
        cmd = "python benchmarks/throughput.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        lines = [f"# Training throughput, batch {b} ({info['date']}, torch {info['torch']}, {info['threads']} threads)", "",
                 f"Command: `{cmd}`", "",
                 "| preset | data | resolution | plain fp32 NCHW: img/s (s/iteration) | fast: channels_last + bf16 | speed-up |",
                 "|---|---|---|---|---|---|"]
        lines += [f"| {r['preset']} | {r['case']} | {r['resolution']} px | {r['plain_fp32_img_s']:.0f} "
                  f"({b / r['plain_fp32_img_s']:.3f}) | {r['fast_bf16_cl_img_s']:.0f} ({b / r['fast_bf16_cl_img_s']:.3f}) | "
                  f"x{r['speedup']:.2f} |" for r in rows]
        lines += ["", f"Median of {args.rounds} alternating rounds of {args.iters} iterations each, after "
                  f"{args.warmup} warm-up iterations (one iteration = the preset's D and G updates; images/s "
                  "counts real training images)."]
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(args.out.rsplit(".", 1)[0] + ".json", "w") as f:
            json.dump({"info": info, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
