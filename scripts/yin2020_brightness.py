"""How bright and how varied are a run's samples, next to the real images? (results/yin2020)

BEGAN's generator can meet its equilibrium (L(G(z)) ≈ γ·L(x)) with dark, near-uniform images
that D reconstructs easily. FD says such samples are far from the data but not why; this prints,
per run folder, the mean pixel value of 1,000 samples from its latest checkpoint (in [0, 1]), the
mean per-pixel standard deviation across samples (how much the samples differ from one another),
and the same two numbers for the run's real training images.

    python scripts/yin2020_brightness.py results/yin2020/compare/runs/*fashion_mnist* > results/yin2020/brightness-fmnist.md
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
import subprocess

import numpy as np
import yaml

from fewgan.data import load_images


def stats(x: np.ndarray) -> tuple[float, float]:
    """(mean pixel value, mean over pixels of the std across images) for uint8 images in [0, 1]."""
    x = x.astype(np.float64) / 255.0
    return float(x.mean()), float(x.std(axis=0).mean())


def main(runs: list[str]) -> int:
    print("| run | samples: mean pixel | samples: pixel std across images | real: mean pixel | real: pixel std across images |")
    print("|---|---|---|---|---|")
    for run in map(Path, runs):
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        d = cfg["data"]
        real = load_images(d["source"], d["resolution"], d["channels"]).x.numpy()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "s.npz"
            subprocess.run(["fewgan", "sample", str(run), "-n", "1000", "-o", str(out), "--seed", "0"],
                           check=True, stdout=subprocess.DEVNULL)
            fake = np.load(out)["x"]
        (fm, fs), (rm, rs) = stats(fake), stats(real)
        print(f"| {run.name} | {fm:.3f} | {fs:.3f} | {rm:.3f} | {rs:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
