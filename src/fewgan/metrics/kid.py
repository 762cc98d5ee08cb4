"""Kernel Inception Distance (KID): unbiased polynomial-kernel MMD².

Reference: Bińkowski et al. 2018, "Demystifying MMD GANs" (ICLR). Same kernel and
subset protocol as torch-fidelity / torchmetrics / clean-fid:
``k(x, y) = (gamma * x·y + coef) ** degree`` with degree 3, gamma = 1/D, coef 1,
averaged over ``n_subsets`` random subsets of ``subset_size`` samples from each set.
Pure functions, float64, explicit seeds.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["polynomial_kernel", "mmd2_unbiased", "kid_from_features"]


def _as_t64(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(t.shape)}")
    return t


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, degree: int = 3,
                      gamma: float | None = None, coef: float = 1.0) -> torch.Tensor:
    """k(x, y) = (gamma * <x, y> + coef) ** degree, gamma defaults to 1/D."""
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    return (x @ y.T * gamma + coef) ** degree


def mmd2_unbiased(x, y, degree: int = 3, gamma: float | None = None, coef: float = 1.0) -> float:
    r"""Unbiased MMD² estimate with a polynomial kernel (Gretton et al. 2012, eq. 3).

    .. math:: \frac{1}{m(m-1)}\sum_{i\ne j}k(x_i,x_j) + \frac{1}{n(n-1)}\sum_{i\ne j}k(y_i,y_j)
              - \frac{2}{mn}\sum_{i,j}k(x_i,y_j)

    Can be (slightly) negative when both samples come from one distribution.
    ``x`` (m, D) and ``y`` (n, D) may have different sizes (m, n >= 2).
    """
    x, y = _as_t64(x, "x"), _as_t64(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dims differ: {x.shape[1]} vs {y.shape[1]}")
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"unbiased MMD needs at least 2 samples per set, got {m} and {n}")
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    k_xx = polynomial_kernel(x, x, degree, gamma, coef)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef)
    sum_xx = k_xx.sum() - k_xx.diagonal().sum()
    sum_yy = k_yy.sum() - k_yy.diagonal().sum()
    value = sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * k_xy.sum() / (m * n)
    return float(value)


def kid_from_features(f_real, f_fake, n_subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0, generator: torch.Generator | None = None,
                      degree: int = 3, gamma: float | None = None,
                      coef: float = 1.0) -> tuple[float, float]:
    """KID = mean (and std, ddof=0 like torch-fidelity) of ``mmd2_unbiased`` over subsets.

    Each subset draws ``subset_size`` rows without replacement from each set,
    using ``generator`` if given, else ``torch.Generator().manual_seed(seed)``.
    Raises ``ValueError`` if ``subset_size`` exceeds either set.
    """
    a, b = _as_t64(f_real, "f_real"), _as_t64(f_fake, "f_fake")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dims differ: {a.shape[1]} vs {b.shape[1]}")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be >= 1, got {n_subsets}")
    if subset_size < 2:
        raise ValueError(f"KID subset_size must be >= 2, got {subset_size}")
    for n, what in ((b.shape[0], "generated"), (a.shape[0], "real")):
        if subset_size > n:
            raise ValueError(
                f"KID subset_size={subset_size} exceeds the {n} {what} samples; lower it"
            )
    g = generator if generator is not None else torch.Generator().manual_seed(int(seed))
    if gamma is None:
        gamma = 1.0 / a.shape[1]
    vals = np.empty(n_subsets, dtype=np.float64)
    for i in range(n_subsets):
        ia = torch.randperm(a.shape[0], generator=g)[:subset_size]
        ib = torch.randperm(b.shape[0], generator=g)[:subset_size]
        vals[i] = mmd2_unbiased(a[ia], b[ib], degree=degree, gamma=gamma, coef=coef)
    return float(vals.mean()), float(vals.std())
