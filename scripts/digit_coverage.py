"""Mode coverage on MNIST of every finished run of an experiment (issue 7, HGAN vs DCGAN).

Trains the small digit classifier of fewgan.metrics.digits on mnist_1k.npz once (seeded 80/20
train / held-out split; its held-out accuracy is printed and must be quoted with the numbers),
then draws n images from each finished run's final checkpoint on the given data label and
reports how many of the 10 digits appear (>= 5 % of the samples), the total variation and
KL(p || uniform) of the predicted class histogram, per run and mean ± std per variant. The
real images, classified the same way, give the reference row. Writes <experiment>/digit_coverage.csv
and .md; run from the repository root (HGAN runs find their teacher under teachers/).

    python scripts/digit_coverage.py results/hgan/compare --data mnist
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

import torch

from fewgan.data import load_images
from fewgan.metrics.digits import coverage, load_digit_classifier, train_digit_classifier
from fewgan import runs
from fewgan.sampling import generate, load_for_sampling
from fewgan.training.checkpoint import atomic_write


def _pm(vals: list[float], digits: int) -> str:
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.fmean(vals):.{digits}f} ± {sd:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", type=Path, help="experiment folder (runs/*/done.json)")
    ap.add_argument("--data", default="mnist", help="data label of the MNIST runs in the experiment")
    ap.add_argument("--source", default="../shared/data/mnist_1k.npz", help="labelled MNIST file for the classifier")
    ap.add_argument("--classifier", type=Path, default=Path("results/hgan/digit_classifier.safetensors"),
                    help="classifier file: trained here if missing, reused if present")
    ap.add_argument("--steps", type=int, default=1500, help="classifier training steps (when it is trained here)")
    ap.add_argument("-n", type=int, default=1000, help="generated images per run")
    ap.add_argument("--seed", type=int, default=0, help="noise seed for the generated images")
    args = ap.parse_args()

    if args.classifier.is_file():
        net, meta = load_digit_classifier(args.classifier)
    else:
        net, meta = train_digit_classifier(args.source, args.classifier, steps=args.steps)
        net.eval()
    acc = meta["heldout_acc"]
    print(f"digit classifier {args.classifier}: held-out accuracy {acc:.3f} on {meta['split']['n_heldout']} "
          f"images (trained on {meta['split']['n_train']})")

    real = load_images(args.source, 32, 1)
    ref = coverage(net, real.x)
    rows = [{"variant": "real images", "run": args.source, "seed": "", **ref}]
    done = [runs.done_path(r) for r in runs.finished_runs(args.experiment)]
    for p in done:
        d = json.loads(p.read_text())
        if d["data"] != args.data:
            continue
        run = load_for_sampling(p.parent)
        pipe = run.variant.sampler()
        if pipe.conditional:
            raise SystemExit(f"{p.parent}: a conditional generator; coverage is for unconditional ones")
        with torch.no_grad():
            imgs = generate(pipe, args.n, args.seed)
        cov = coverage(net, imgs)
        rows.append({"variant": d["variant"], "run": p.parent.name, "seed": d["seed"], **cov})
        print(f"{p.parent.name}: {cov['classes_present']} digits, TV {cov['tv_uniform']:.3f}, "
              f"KL {cov['kl_uniform']:.3f}, counts {cov['counts']}")
    if len(rows) == 1:
        raise SystemExit(f"no finished runs with data label {args.data!r} under {args.experiment}")

    cols = ["variant", "run", "seed", "classes_present", "tv_uniform", "kl_uniform", "n", "counts"]
    def write_csv(path: Path) -> None:
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    atomic_write(args.experiment / "digit_coverage.csv", write_csv)

    lines = [f"# Digit coverage: {args.experiment} ({args.data})", "",
             f"Classifier `{args.classifier}` (fewgan.metrics.digits, trained on `{args.source}`): held-out "
             f"accuracy **{acc:.3f}** on {meta['split']['n_heldout']} images. {args.n} samples per run (noise seed "
             f"{args.seed}) from each run's final checkpoint. digits: classes with ≥ 5 % of the samples; TV, KL: "
             f"distance of the predicted class histogram from uniform (0 = uniform; KL ≤ ln 10 = 2.303).", "",
             "| variant | runs | digits present | TV from uniform | KL from uniform |", "|---|---|---|---|---|",
             f"| real images ({ref['n']}) | – | {ref['classes_present']} | {ref['tv_uniform']:.3f} | {ref['kl_uniform']:.3f} |"]
    for v in dict.fromkeys(r["variant"] for r in rows[1:]):
        rs = [r for r in rows[1:] if r["variant"] == v]
        lines.append(f"| {v} | {len(rs)} | {_pm([r['classes_present'] for r in rs], 1)} | "
                     f"{_pm([r['tv_uniform'] for r in rs], 3)} | {_pm([r['kl_uniform'] for r in rs], 3)} |")
    lines += ["", "Per run:", "", "| run | digits | TV | KL | counts 0–9 |", "|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['classes_present']} | {r['tv_uniform']:.3f} | {r['kl_uniform']:.3f} | "
              f"{' '.join(str(c) for c in r['counts'])} |" for r in rows[1:]]
    md = "\n".join(lines) + "\n"
    atomic_write(args.experiment / "digit_coverage.md", lambda p: p.write_text(md))
    print(md)


if __name__ == "__main__":
    main()
