"""Reference points for the Fashion-MNIST numbers of results/yin2020 (issue 5).

Our FD / KID / IS live in EfficientNet-Lite0's feature space, so a number such as FD 250 means
little on its own. This script scores, against the same 1,000 training images and with the same
evaluation as the compare runs (`fewgan eval`, 1,000 images, effnet-lite0):
- `heldout`: 1,000 Fashion-MNIST *test* images (100 per class, drawn with seed 0), i.e. a perfect
  generator that never saw the training set: the floor that n = 1,000 allows;
- `mean_image`: the training set's mean image, 1,000 times: a generator that has learnt only the
  average garment (one blurry silhouette, no diversity).

Needs Debian's dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`, MIT) for the test
images. Writes experiments/data/fmnist_{heldout,mean_image}.npz and
results/yin2020/reference/<name>/metrics.json.

    python scripts/yin2020_references.py
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "data" / "fashion_mnist_1k.npz"
IDX = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format: big-endian dims after a 4-byte magic) as a numpy array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main() -> int:
    images, labels = IDX / "t10k-images-idx3-ubyte.gz", IDX / "t10k-labels-idx1-ubyte.gz"
    if not images.exists():
        sys.exit(f"{images} not found: install it with `apt-get install dataset-fashion-mnist`")
    x, y = read_idx(images), read_idx(labels)
    rng = np.random.default_rng(0)
    pick = np.concatenate([rng.choice(np.flatnonzero(y == c), 100, replace=False) for c in range(10)])
    train = np.load(TRAIN)["x"]
    mean = np.repeat(train.astype(np.float64).mean(0, keepdims=True).round().astype(np.uint8), 1000, 0)
    out_data = ROOT / "experiments" / "data"
    out_data.mkdir(parents=True, exist_ok=True)
    sets = {"heldout": x[pick][..., None], "mean_image": mean}
    for name, arr in sets.items():
        path = out_data / f"fmnist_{name}.npz"
        np.savez_compressed(path, x=arr)
        out = ROOT / "results" / "yin2020" / "reference" / name
        cmd = ["fewgan", "eval", str(path), "--data", str(TRAIN), "--resolution", "32", "--n-boot", "50",
               "--out", str(out)]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
