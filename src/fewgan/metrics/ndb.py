"""NDB: the number of statistically different bins (Richardson & Weiss 2018, "On GANs and GMMs").

A label-free mode-collapse measure. The real features are partitioned into K Voronoi cells
by k-means; every generated sample falls into the cell of its nearest centre. For each
cell a two-sample test of proportions (pooled two-proportion z-test, two-sided, level
alpha = 0.05, as in the authors' code) asks whether the generated share differs from the
real share. NDB counts the cells that differ; NDB/K is comparable across K. A collapsed
generator piles its samples into few cells and empties the rest, so NDB/K approaches 1;
two samples of one distribution give NDB/K of about alpha or less.

We also report the Jensen-Shannon divergence between the two cell histograms (natural
log, so it lies in [0, ln 2]); the authors report it next to NDB/K.

Differences from the reference implementation, stated so numbers are read correctly:
our k-means is our own seeded k-means++ / Lloyd in float64 (not scikit-learn's), on the
features as given (no whitening), and K is capped for small sets (`ndb_cells`), because
with a few hundred real images a cell needs ~10 of them for the test to have any power.

Pure functions on (N, D) feature tensors; randomness only through an explicit seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._knn import as_t64

__all__ = ["NDBResult", "kmeans", "assign_cells", "cell_proportions", "two_proportion_z_test",
           "js_divergence", "ndb", "ndb_cells"]


@dataclass(frozen=True)
class NDBResult:
    ndb: int  # number of cells whose generated share differs significantly from the real share
    ndb_k: float  # ndb / K
    js: float  # Jensen-Shannon divergence (nats) between the real and generated cell histograms
    k: int  # number of cells used
    real_props: torch.Tensor  # (K,) share of real samples per cell
    gen_props: torch.Tensor  # (K,) share of generated samples per cell
    different: torch.Tensor  # (K,) bool: the test rejected equality in this cell


def ndb_cells(n_real: int, max_cells: int = 50, per_cell: int = 10) -> int:
    """K for n_real real samples: at most max_cells, about per_cell real samples per cell, at least 2."""
    return max(2, min(max_cells, n_real // per_cell))


def _sq_dists(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    # ||x||^2 - 2 x.c + ||c||^2, clamped: cancellation can make it slightly negative
    return ((x * x).sum(1, keepdim=True) - 2 * x @ c.T + (c * c).sum(1)[None]).clamp_min_(0)


def assign_cells(x, centers) -> torch.Tensor:
    """Index of the nearest centre (Euclidean) for every row of x."""
    x, centers = as_t64(x, "features"), as_t64(centers, "centers")
    if x.shape[1] != centers.shape[1]:
        raise ValueError(f"feature dims differ: {x.shape[1]} vs {centers.shape[1]}")
    return _sq_dists(x, centers).argmin(1)


def kmeans(x, k: int, seed: int = 0, iters: int = 100, tol: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means++ seeding then Lloyd iterations (float64). Returns (centers (k, D), labels (N,)).

    Deterministic for a given seed. An empty cell is re-seeded at the point farthest from
    its centre, so exactly k non-empty cells come back whenever x has >= k distinct rows.
    """
    x = as_t64(x, "features")
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= number of samples, got k={k} for {n} samples")
    gen = torch.Generator().manual_seed(seed)
    # k-means++: each next centre drawn with probability proportional to its squared distance
    centers = [x[torch.randint(n, (1,), generator=gen)].squeeze(0)]
    d2 = _sq_dists(x, centers[0][None]).squeeze(1)
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:  # fewer distinct points than k: duplicate a point (its cell stays empty)
            idx = int(torch.randint(n, (1,), generator=gen))
        else:
            idx = int(torch.multinomial(d2 / total, 1, generator=gen))
        centers.append(x[idx])
        d2 = torch.minimum(d2, _sq_dists(x, x[idx][None]).squeeze(1))
    c = torch.stack(centers)
    labels = _sq_dists(x, c).argmin(1)
    for _ in range(iters):
        sums = torch.zeros_like(c).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).to(x.dtype)
        new = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], c)
        dist = _sq_dists(x, new)
        for j in torch.nonzero(counts == 0).flatten().tolist():
            far = int(dist.min(1).values.argmax())
            new[j] = x[far]
            dist = _sq_dists(x, new)
        shift = float((new - c).pow(2).sum())
        c, labels = new, dist.argmin(1)
        if shift <= tol:
            break
    return c, labels


def cell_proportions(labels: torch.Tensor, k: int) -> torch.Tensor:
    """Share of samples in each of k cells (float64, sums to 1)."""
    return torch.bincount(labels, minlength=k).to(torch.float64) / max(1, len(labels))


def two_proportion_z_test(p1: torch.Tensor, n1: int, p2: torch.Tensor, n2: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled two-proportion z-test per cell: (z, two-sided p-value).

    p = (p1 n1 + p2 n2) / (n1 + n2); se = sqrt(p (1 - p) (1/n1 + 1/n2)); z = (p1 - p2) / se.
    A cell empty in both samples (se = 0) has z = 0 and p-value 1: no evidence of a difference.
    """
    p1, p2 = torch.as_tensor(p1, dtype=torch.float64), torch.as_tensor(p2, dtype=torch.float64)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = torch.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    z = torch.where(se > 0, (p1 - p2) / torch.where(se > 0, se, torch.ones_like(se)), torch.zeros_like(se))
    p_value = torch.erfc(z.abs() / math.sqrt(2.0))  # = 2 * (1 - Phi(|z|))
    return z, p_value


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """Jensen-Shannon divergence in nats between two histograms (normalised here; 0 * log 0 = 0)."""
    p = torch.as_tensor(p, dtype=torch.float64)
    q = torch.as_tensor(q, dtype=torch.float64)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        mask = a > 0
        return (a[mask] * (a[mask] / b[mask]).log()).sum()

    return float((kl(p, m) + kl(q, m)) / 2)


def ndb(real_features, gen_features, k: int | None = None, alpha: float = 0.05, seed: int = 0,
        centers: torch.Tensor | None = None) -> NDBResult:
    """NDB, NDB/K and the cell-histogram JS divergence of generated vs real features.

    k: number of cells (default ndb_cells(n_real)); alpha: significance level of each
    cell's test; seed: k-means seed; centers: precomputed cells (skips k-means, e.g. when
    one real set is compared with many generated sets).
    """
    real = as_t64(real_features, "real_features")
    gen = as_t64(gen_features, "gen_features")
    if real.shape[1] != gen.shape[1]:
        raise ValueError(f"feature dims differ: {real.shape[1]} vs {gen.shape[1]}")
    if len(gen) < 2:
        raise ValueError(f"NDB needs at least 2 generated samples, got {len(gen)}")
    if centers is None:
        k = k or ndb_cells(len(real))
        centers, real_labels = kmeans(real, k, seed=seed)
    else:
        centers = as_t64(centers, "centers")
        real_labels = assign_cells(real, centers)
    k = len(centers)
    p_real = cell_proportions(real_labels, k)
    p_gen = cell_proportions(assign_cells(gen, centers), k)
    _, p_value = two_proportion_z_test(p_real, len(real), p_gen, len(gen))
    different = p_value < alpha
    count = int(different.sum())
    return NDBResult(ndb=count, ndb_k=count / k, js=js_divergence(p_real, p_gen), k=k,
                     real_props=p_real, gen_props=p_gen, different=different)
