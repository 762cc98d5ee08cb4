"""Helpers of scripts/gpu_check.sh (run from the source tree with PYTHONPATH=src).

    python scripts/gpu_check.py throughput --device cuda --out results/gpu/throughput.md [--quick]
    python scripts/gpu_check.py resume --device cuda --out results/gpu/resume.json [--steps 200]
    python scripts/gpu_check.py compare-samples A.npz B.npz --out results/gpu/cpu_vs_gpu_samples.json

throughput: DCGAN iterations per second at 32 / 64 / 128 px in fp32, bf16 and fp16 (train.fast
with train.amp), at batch 64 and at the largest batch (doubling from 64, up to 4096) that fits
and still gains more than 5 % images/s. resume: train.deterministic=true, N iterations straight
vs N/2 then resumed to N; every tensor of the two final checkpoints compared bit for bit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fewgan import config as config_mod
from fewgan.data import ImageData
from fewgan.devices import resolve_device
from fewgan.training import checkpoint
from fewgan.training.loop import Trainer

PRECISIONS = {"fp32": {"train.fast": False}, "bf16": {"train.fast": True, "train.amp": "bf16"},
              "fp16": {"train.fast": True, "train.amp": "fp16"}}


def _cfg(res: int, batch: int, steps: int, device: str, extra: dict, small: bool = False) -> config_mod.Config:
    d = {"data": {"source": "synthetic", "resolution": res},
         "train": {"steps": steps, "batch_size": batch, "device": device},
         "log": {"sample_every": 0, "ckpt_every": 0, "progress": False, "n_fixed": 8}}
    if small:
        d["model"] = {"g_width": 8, "d_width": 8, "nz": 16}
    for k, v in extra.items():
        s, n = k.split(".")
        d.setdefault(s, {})[n] = v
    return config_mod.from_dict(d, base=config_mod.load_preset("dcgan"))


def _data(res: int, n: int) -> ImageData:
    g = torch.Generator().manual_seed(0)
    return ImageData(torch.randint(0, 256, (n, 3, res, res), generator=g, dtype=torch.uint8), source="synthetic")


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def measure(res: int, batch: int, prec: str, device: str, iters: int, warmup: int, small: bool) -> dict:
    dev = resolve_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(_cfg(res, batch, warmup + iters, device, PRECISIONS[prec], small), Path(tmp) / "r",
                     data=_data(res, max(2 * batch, 64)))
        from fewgan.devices import backend_flags

        with backend_flags(dev, tr.cfg.train.fast, False):
            for _ in range(warmup):
                tr.iteration()
            _sync(dev)
            t0 = time.perf_counter()
            for _ in range(iters):
                rec = tr.iteration()
            _sync(dev)
            dt = time.perf_counter() - t0
    return {"res": res, "batch": batch, "precision": prec, "it_per_s": iters / dt, "img_per_s": iters * batch / dt,
            "loss_d": rec.get("loss_d"), "finite": bool(np.isfinite(rec.get("loss_d", np.nan)))}


def throughput(args) -> None:
    dev = resolve_device(args.device)
    rows = []
    resolutions = (32,) if args.quick else (32, 64, 128)
    precs = ("fp32",) if args.quick else tuple(PRECISIONS)
    iters, warmup = (2, 1) if args.quick else (args.iters, 5)
    deadline = time.monotonic() + args.budget_s
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# DCGAN training throughput on {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else dev}",
             "", f"torch {torch.__version__}; {iters} timed iterations after {warmup} warm-up; "
             "one iteration = one D and one G update", "",
             "| px | precision | batch | it/s | img/s | loss_d finite |", "|---|---|---|---|---|---|"]

    def emit(r: dict) -> None:
        rows.append(r)
        line = (f"| {r['res']} | {r['precision']} | {r['batch']} | {r['it_per_s']:.1f} | {r['img_per_s']:.0f} | "
                f"{r['finite']} |")
        lines.append(line)
        print(line, flush=True)
        out.write_text("\n".join(lines) + "\n")
        out.with_suffix(".jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))

    for res in resolutions:
        for prec in precs:
            if time.monotonic() > deadline:
                print(f"throughput: time budget ({args.budget_s}s) spent; skipping {res}px {prec} and after",
                      flush=True)
                lines.append(f"\n(time budget of {args.budget_s}s spent: later cases not measured)")
                out.write_text("\n".join(lines) + "\n")
                return
            base = 8 if args.quick else 64
            emit(measure(res, base, prec, args.device, iters, warmup, args.quick))
            if args.quick or dev.type != "cuda":
                continue
            best, batch = rows[-1]["img_per_s"], base  # the batch that fills the GPU: double while it pays
            while batch < 4096 and time.monotonic() < deadline:
                batch *= 2
                try:
                    r = measure(res, batch, prec, args.device, max(3, iters // 2), 2, False)
                except torch.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    print(f"| {res} | {prec} | {batch} | out of memory |", flush=True)
                    break
                emit(r)
                if r["img_per_s"] < best * 1.05:
                    break
                best = r["img_per_s"]


def resume(args) -> None:
    steps, dev = args.steps, args.device
    extra = {"train.deterministic": True, "aug.policy": "color,translation,cutout"}
    data = _data(32 if not args.quick else 16, 64)
    res = int(data.x.shape[-1])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        Trainer(_cfg(res, 16, steps, dev, extra, args.quick), tmp / "a", data=data).run()
        Trainer(_cfg(res, 16, steps // 2, dev, extra, args.quick), tmp / "b", data=data).run()
        Trainer(_cfg(res, 16, steps, dev, extra, args.quick), tmp / "b", resume=True, data=data).run()
        ta, _ = checkpoint.read(checkpoint.latest_checkpoint(tmp / "a"))
        tb, meta = checkpoint.read(checkpoint.latest_checkpoint(tmp / "b"))
    differ = sorted(k for k in ta if k not in tb or not torch.equal(ta[k], tb[k]))
    rec = {"device": meta["device"], "steps": steps, "resumed_at": steps // 2, "tensors": len(ta),
           "bit_exact": not differ and ta.keys() == tb.keys(), "differing": differ[:20]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rec, indent=1) + "\n")
    print(f"resume with train.deterministic on {rec['device']}: {steps} straight vs {steps // 2} + resume: "
          f"{'bit-exact' if rec['bit_exact'] else f'{len(differ)} tensors differ'} ({len(ta)} tensors)", flush=True)
    if not rec["bit_exact"]:
        sys.exit(1)


def compare_samples(args) -> None:
    a, b = np.load(args.a)["x"].astype(np.int32), np.load(args.b)["x"].astype(np.int32)
    diff = np.abs(a - b)
    rec = {"a": args.a, "b": args.b, "n": int(len(a)), "max_abs_diff": int(diff.max()),
           "mean_abs_diff": float(diff.mean()), "fraction_equal": float((diff == 0).mean())}
    Path(args.out).write_text(json.dumps(rec, indent=1) + "\n")
    print(f"samples of one checkpoint, {args.a} vs {args.b}: max |diff| {rec['max_abs_diff']} (of 255), "
          f"{rec['fraction_equal']:.1%} of sub-pixels equal", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--device", default="cuda")
    t.add_argument("--out", required=True)
    t.add_argument("--iters", type=int, default=30)
    t.add_argument("--budget-s", type=float, default=150)
    t.add_argument("--quick", action="store_true", help="CPU fallback: one tiny case")
    r = sub.add_parser("resume")
    r.add_argument("--device", default="cuda")
    r.add_argument("--out", required=True)
    r.add_argument("--steps", type=int, default=200)
    r.add_argument("--quick", action="store_true")
    c = sub.add_parser("compare-samples")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--out", required=True)
    args = p.parse_args()
    {"throughput": throughput, "resume": resume, "compare-samples": compare_samples}[args.cmd](args)


if __name__ == "__main__":
    torch.set_num_threads(min(torch.get_num_threads(), 8))
    main()
