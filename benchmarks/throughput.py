"""Training throughput (real images/s) of DCGAN at 32 and 64 px, batch 64: the CPU fast path
(channels_last + bf16 autocast, train.fast=true) against plain fp32 NCHW, side by side.

The machine is shared and noisy, so the two paths alternate in short rounds within one
process and the median over rounds is reported. Run by hand, never from the tests:

    python benchmarks/throughput.py --out results/throughput.md
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time

import torch

from fewgan import config as config_mod
from fewgan.data import load_images
from fewgan.training.loop import Trainer


def make_trainer(res: int, fast: bool, data, tmp: str) -> Trainer:
    cfg = config_mod.apply_overrides(config_mod.load_preset("dcgan"), [
        f"--data.resolution={res}", f"--train.fast={'true' if fast else 'false'}",
        "--train.batch_size=64", "--log.progress=false"])
    return Trainer(cfg, f"{tmp}/{res}-{fast}", data=data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=10, help="timed iterations per round")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default=None, help="write a Markdown table here (and .json beside it)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for res in (32, 64):
            data = load_images("emoji", res, 3)
            trainers = {fast: make_trainer(res, fast, data, tmp) for fast in (False, True)}
            for tr in trainers.values():
                for _ in range(args.warmup):
                    tr.iteration()
            rates = {False: [], True: []}
            for _ in range(args.rounds):
                for fast, tr in trainers.items():
                    t0 = time.perf_counter()
                    for _ in range(args.iters):
                        tr.iteration()
                    rates[fast].append(64 * args.iters / (time.perf_counter() - t0))
            plain, fast = statistics.median(rates[False]), statistics.median(rates[True])
            rows.append({"resolution": res, "plain_fp32_img_s": plain, "fast_bf16_cl_img_s": fast,
                         "speedup": fast / plain, "rounds_plain": rates[False], "rounds_fast": rates[True]})
            print(f"{res}px: plain {plain:.0f} img/s, fast {fast:.0f} img/s, x{fast / plain:.2f}", flush=True)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "date": time.strftime("%Y-%m-%d %H:%M"), "rounds": args.rounds, "iters_per_round": args.iters}
    if args.out:
        lines = [f"# DCGAN training throughput, batch 64 ({info['date']}, torch {info['torch']}, "
                 f"{info['threads']} threads)", "",
                 "Command: `python benchmarks/throughput.py --out results/throughput.md`", "",
                 "| resolution | plain fp32 NCHW (img/s) | fast: channels_last + bf16 (img/s) | speed-up |",
                 "|---|---|---|---|"]
        lines += [f"| {r['resolution']} px | {r['plain_fp32_img_s']:.0f} | {r['fast_bf16_cl_img_s']:.0f} | "
                  f"x{r['speedup']:.2f} |" for r in rows]
        lines += ["", f"Median of {args.rounds} alternating rounds of {args.iters} iterations each "
                  "(one D and one G update per iteration; images/s counts real training images)."]
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(args.out.rsplit(".", 1)[0] + ".json", "w") as f:
            json.dump({"info": info, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
