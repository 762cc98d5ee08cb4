"""How bright and how varied are a run's samples, next to the real images? (results/yin2020)

BEGAN's generator can meet its equilibrium (L(G(z)) ≈ γ·L(x)) with dark, near-uniform images
that D reconstructs easily. FD says such samples are far from the data but not why; this prints,
per run folder, the mean pixel value of 1,000 samples from its latest checkpoint (in [0, 1]), the
mean per-pixel standard deviation across samples (how much the samples differ from one another),
and the same two numbers for the run's real training images.

    python scripts/yin2020_brightness.py results/yin2020/g05-n64/runs/*fashion_mnist* > results/yin2020/brightness-fmnist.md
"""

from __future__ import annotations

import sys
from functools import lru_cache

import numpy as np

from fewgan.data import load_images
from fewgan.sampling import generate, load_for_sampling


def stats(x: np.ndarray) -> tuple[float, float]:
    """(mean pixel value, mean over pixels of the std across images) for uint8 images in [0, 1]."""
    x = x.astype(np.float64) / 255.0
    return float(x.mean()), float(x.std(axis=0).mean())


@lru_cache(maxsize=None)
def real_stats(source: str, resolution: int, channels: int) -> tuple[float, float]:
    """The same two numbers for a run's training images (loaded once per data set)."""
    return stats(load_images(source, resolution, channels).x.numpy())


def main(runs: list[str]) -> int:
    print("| run | samples: mean pixel | samples: pixel std across images | real: mean pixel | real: pixel std across images |")
    print("|---|---|---|---|---|")
    for run_dir in runs:
        run = load_for_sampling(run_dir)  # the latest checkpoint, as `fewgan sample` uses it
        d = run.cfg.data
        fm, fs = stats(generate(run.variant.sampler(), 1000, seed=0).numpy())
        rm, rs = real_stats(str(d.source), d.resolution, d.channels)
        print(f"| {run.path.parents[1].name} | {fm:.3f} | {fs:.3f} | {rm:.3f} | {rs:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
