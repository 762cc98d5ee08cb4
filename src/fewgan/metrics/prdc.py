"""Precision / recall / density / coverage on k-NN manifolds of feature sets.

References:
- Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
  Generative Models" (NeurIPS): precision = fraction of generated samples inside the
  real manifold (union of balls around real samples, radius = distance to the k-th
  nearest real neighbour); recall = fraction of real samples inside the generated manifold.
- Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models"
  (ICML): density = (1/(kM)) Σ_j Σ_i 1[Y_j ∈ B(X_i, NND_k(X_i))]; coverage =
  (1/N) Σ_i 1[∃ j: Y_j ∈ B(X_i, NND_k(X_i))].

Strict inequalities (``d < radius``) as in the reference implementation
(clovaai/generative-evaluation-prdc). Pure torch, float64, cdist in chunks so
memory is O(chunk_size * N).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ._knn import as_t64, cdist, kth_nn_distance

__all__ = ["PRDC", "prdc"]


@dataclass(frozen=True)
class PRDC:
    precision: float
    recall: float
    density: float
    coverage: float
    k: int

    def as_dict(self) -> dict:
        return asdict(self)


def prdc(real_features, fake_features, k: int = 5, chunk_size: int = 1024) -> PRDC:
    """Precision, recall (Kynkäänniemi 2019) and density, coverage (Naeem 2020), all in [0, 1]
    except density (unbounded, ~1 when the two distributions match)."""
    real = as_t64(real_features, "real_features")
    fake = as_t64(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dims differ: {real.shape[1]} vs {fake.shape[1]}")
    fake = fake.to(real.device)
    n_real, n_fake = real.shape[0], fake.shape[0]
    if not (k < n_real and k < n_fake):
        raise ValueError(f"k={k} must be smaller than both set sizes ({n_real} real, {n_fake} generated)")

    real_r = kth_nn_distance(real, k, chunk_size)  # (N,)
    fake_r = kth_nn_distance(fake, k, chunk_size)  # (M,)

    precision_hits = 0
    density_count = 0.0
    recall_mask = torch.zeros(n_real, dtype=torch.bool, device=real.device)
    min_real_to_fake = torch.full((n_real,), float("inf"), dtype=real.dtype, device=real.device)
    for s in range(0, n_fake, chunk_size):
        d = cdist(fake[s:s + chunk_size], real)  # (c, N)
        inside_real = d < real_r[None, :]  # fake j inside ball of real i
        precision_hits += int(inside_real.any(dim=1).sum())
        density_count += float(inside_real.sum())
        recall_mask |= (d < fake_r[s:s + chunk_size, None]).any(dim=0)  # real i inside ball of fake j
        min_real_to_fake = torch.minimum(min_real_to_fake, d.min(dim=0).values)

    return PRDC(
        precision=precision_hits / n_fake,
        recall=float(recall_mask.double().mean()),
        density=density_count / (k * n_fake),
        coverage=float((min_real_to_fake < real_r).double().mean()),
        k=k,
    )
