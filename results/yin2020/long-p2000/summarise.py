"""Per-run numbers of the patience-2,000 runs, in the same form as scripts/yin2020_claims.py.
    python results/yin2020/long-p2000/summarise.py > results/yin2020/long-p2000/claims.md"""
import json
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here.parents[2] / "scripts"))
from yin2020_claims import run_numbers  # noqa: E402

print("CIFAR-10, 8,000 iterations, patience 2,000; last 200 iterations for M_global, k_t and L(G)/L(x).\n")
print("| variant | seed | FD per evaluation (step: FD) | final FD | KID | IS | precision | coverage | mean \\|ΔFD\\| | M_global | k_t | L(G)/L(x) | lr decays |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
# folder: <preset> for seed 1, <preset>-s<seed> otherwise (as run.sh names them)
for folder, variant, seed in (("began", "began", 1), ("began-improved", "began-improved", 1),
                              ("began-improved-s0", "began-improved", 0)):
    if not (here / folder / "metrics.json").is_file():
        continue
    n = run_numbers(here / folder, 200)
    m = json.loads((here / folder / "metrics.json").read_text())
    curve = ", ".join(f"{s}: {v:.1f}" for s, v in n["fd_curve"])
    print(f"| {variant} | {seed} | {curve} | {n['fd_final']:.1f} | {m['kid']:.3f} | {m['is']:.2f} | {m['precision']:.2f} | "
          f"{m['coverage']:.3f} | {n['fd_mean_abs_step']:.1f} | {n['m_global']:.4f} | {n['k_t']:.4f} | {n['ratio']:.3f} | {n['decays']} |")
