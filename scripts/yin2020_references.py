"""Reference points for the numbers of results/yin2020 (issue 5).

Our FD / KID / IS live in EfficientNet-Lite0's feature space, so a number such as FD 250 means
little on its own. This script scores, against the same 1,000 training images and with the same
evaluation as the compare runs (`fewgan eval`, 1,000 images, effnet-lite0):
- `heldout`: 1,000 Fashion-MNIST *test* images (100 per class, drawn with seed 0), i.e. a perfect
  generator that never saw the training set: the floor that n = 1,000 allows;
- `mean_image`: the training set's mean image, 1,000 times: a generator that has learnt only the
  average garment (one blurry silhouette, no diversity);
- `cifar10_mean_image`, `afhq_cat_mean_image`: the same trivial generator for CIFAR-10 (32 px)
  and the cat faces (64 px), against their own 1,000 training images.

`heldout` needs Debian's dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`, MIT) for
the test images. Writes experiments/data/<name>.npz (Fashion-MNIST: fmnist_<name>.npz) and
results/yin2020/reference/<name>/metrics.json.

    python scripts/yin2020_references.py                                  # all four
    python scripts/yin2020_references.py cifar10_mean_image afhq_cat_mean_image
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TRAIN = DATA / "fashion_mnist_1k.npz"
IDX = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format: big-endian dims after a 4-byte magic) as a numpy array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mean_image(train: np.ndarray, n: int = 1000) -> np.ndarray:
    """The training set's mean image (rounded to uint8), repeated n times."""
    return np.repeat(train.astype(np.float64).mean(0, keepdims=True).round().astype(np.uint8), n, 0)


def fmnist_heldout() -> np.ndarray:
    """1,000 Fashion-MNIST test images, 100 per class, drawn with seed 0."""
    images, labels = IDX / "t10k-images-idx3-ubyte.gz", IDX / "t10k-labels-idx1-ubyte.gz"
    if not images.exists():
        sys.exit(f"{images} not found: install it with `apt-get install dataset-fashion-mnist`")
    x, y = read_idx(images), read_idx(labels)
    rng = np.random.default_rng(0)
    pick = np.concatenate([rng.choice(np.flatnonzero(y == c), 100, replace=False) for c in range(10)])
    return x[pick][..., None]


# name -> (file stem under experiments/data, images, the training set scored against, resolution)
SETS = {
    "heldout": ("fmnist_heldout", fmnist_heldout, TRAIN, 32),
    "mean_image": ("fmnist_mean_image", lambda: mean_image(np.load(TRAIN)["x"]), TRAIN, 32),
    "cifar10_mean_image": ("cifar10_mean_image", lambda: mean_image(np.load(DATA / "cifar10_1k.npz")["x"]),
                           DATA / "cifar10_1k.npz", 32),
    "afhq_cat_mean_image": ("afhq_cat_mean_image", lambda: mean_image(np.load(DATA / "afhq_cat_1k_64.npz")["x"]),
                            DATA / "afhq_cat_1k_64.npz", 64),
}


def main(argv: list[str]) -> int:
    names = argv or list(SETS)
    unknown = [n for n in names if n not in SETS]
    if unknown:
        sys.exit(f"unknown reference set(s) {', '.join(unknown)}; known: {', '.join(SETS)}")
    out_data = ROOT / "experiments" / "data"
    out_data.mkdir(parents=True, exist_ok=True)
    for name in names:
        stem, make, train, resolution = SETS[name]
        path = out_data / f"{stem}.npz"
        np.savez_compressed(path, x=make())
        out = ROOT / "results" / "yin2020" / "reference" / name
        cmd = ["fewgan", "eval", str(path), "--data", str(train), "--resolution", str(resolution),
               "--n-boot", "50", "--out", str(out)]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
