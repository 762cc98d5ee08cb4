"""Chunked Euclidean k-NN helpers shared by prdc.py and memorisation.py (float64, CPU/any device)."""

from __future__ import annotations

import torch


def as_t64(x, name: str) -> torch.Tensor:
    """(N, D) tensor/array -> float64 tensor (keeps the device of a tensor input)."""
    t = torch.as_tensor(x).detach()
    t = t.to(torch.float64)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contain NaN or Inf")
    return t


def cdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (float64, matmul-based; ~1e-7 absolute error at zero)."""
    return torch.cdist(a, b)


def kth_nn_distance(x: torch.Tensor, k: int, chunk_size: int = 1024) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest *other* row of x (self excluded by index)."""
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k={k} must satisfy 1 <= k < number of samples ({n})")
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for s in range(0, n, chunk_size):
        d = cdist(x[s:s + chunk_size], x)
        rows = torch.arange(d.shape[0], device=x.device)
        d[rows, rows + s] = float("inf")  # exclude self
        out[s:s + chunk_size] = d.topk(k, dim=1, largest=False).values[:, k - 1]
    return out


def nearest_neighbour(query: torch.Tensor, ref: torch.Tensor, chunk_size: int = 1024,
                      exclude_self: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query row: (distance, index) of its nearest row in ref.

    ``exclude_self`` (query is ref) masks the diagonal by index, so exact duplicates
    elsewhere in the set still count as distance 0.
    """
    if exclude_self and ref.shape[0] < 2:
        raise ValueError("need at least 2 reference samples when excluding self")
    dist = torch.empty(query.shape[0], dtype=query.dtype, device=query.device)
    idx = torch.empty(query.shape[0], dtype=torch.long, device=query.device)
    for s in range(0, query.shape[0], chunk_size):
        d = cdist(query[s:s + chunk_size], ref)
        if exclude_self:
            rows = torch.arange(d.shape[0], device=d.device)
            d[rows, rows + s] = float("inf")
        v, i = d.min(dim=1)
        dist[s:s + chunk_size] = v
        idx[s:s + chunk_size] = i
    return dist, idx
