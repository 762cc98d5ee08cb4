"""Write the fixed 192-image cat-face subset used by experiments/weaver-gadv.yaml.

Weaver trained on 192 mouse faces; we stand in for them with 192 of the 1,000 AFHQ cat
faces in ../shared/data/afhq_cat_1k_64.npz. The subset is the first 192 indices of a
permutation drawn with numpy's default_rng(192), sorted; it does not depend on anything
else, so every run of this script writes the same images (the SHA-256 of the pixels is
printed and recorded in experiments/data/afhq_cat192.txt with the chosen file names).

    python scripts/make_cat192.py            # from the repository root
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

N, SEED = 192, 192


def subset_indices(n_total: int, n: int = N, seed: int = SEED) -> np.ndarray:
    """The chosen indices into the source file, ascending."""
    return np.sort(np.random.default_rng(seed).permutation(n_total)[:n])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default="../shared/data/afhq_cat_1k_64.npz")
    ap.add_argument("--out", default="experiments/data/afhq_cat192_64.npz")
    args = ap.parse_args()
    with np.load(args.src, allow_pickle=False) as d:
        x, names = d["x"], d["filenames"]
    idx = subset_indices(len(x))
    sub, sub_names = np.ascontiguousarray(x[idx]), names[idx]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, x=sub, filenames=sub_names, source_index=idx)
    digest = hashlib.sha256(sub.tobytes()).hexdigest()
    listing = out.with_name("afhq_cat192.txt")
    listing.write_text(
        f"# {N} AFHQ cat faces (64x64) from {Path(args.src).name}: indices = sorted(default_rng({SEED})"
        f".permutation({len(x)})[:{N}])\n# sha256 of the uint8 pixels (N, H, W, C): {digest}\n# index filename\n"
        + "".join(f"{i} {n}\n" for i, n in zip(idx.tolist(), sub_names.tolist())))
    print(f"wrote {out} ({len(sub)} images, pixels sha256 {digest[:16]}...) and {listing}")


if __name__ == "__main__":
    main()
