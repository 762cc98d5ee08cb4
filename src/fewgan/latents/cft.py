"""Learned and shifted latents of Song & Kim (2023): CFT and Mean Rescaling (docs/methods.md §3, §4).

Pipeline: eps -> {DeLiGAN | CFT} -> MR -> G. Each sampler keeps randomness in `draw`
(from an explicit generator) and the map in `forward`, so reused or fixed noise stays
reusable while learned parameters stay current.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import LATENTS, LatentSampler


class CFT(LatentSampler):
    """Common Feature Training: z = W x + b, x ~ N(0, I_n), W in R^{(n+FD) x n} learned with G.

    Init (docs/methods.md §3): top n rows of W = I_n, the FD extra rows ~ N(0, 1/n), b = 0, which
    keeps unit latent variance. Parameters are created without PyTorch's default init, so
    with FD = 0 no random numbers are consumed and, frozen, CFT is exactly the identity.
    """

    def __init__(self, nz: int, fd: int, trainable: bool = True):
        super().__init__(nz)
        if fd < 0:
            raise ValueError(f"latent.fd must be >= 0, got {fd}")
        self.fd = fd
        self.out_features = nz + fd
        w = torch.cat([torch.eye(nz), torch.randn(fd, nz) / math.sqrt(nz)]) if fd else torch.eye(nz)
        self.weight = nn.Parameter(w, requires_grad=trainable)
        self.bias = nn.Parameter(torch.zeros(nz + fd), requires_grad=trainable)

    def forward(self, noise: Tensor) -> Tensor:
        return nn.functional.linear(noise, self.weight, self.bias)

    def singular_values(self) -> Tensor:
        return torch.linalg.svdvals(self.weight.detach())


class MeanRescale(LatentSampler):
    """Mean Rescaling: z' = z + mu, one mu ~ U(low, high) per latent vector, broadcast over
    all dimensions and drawn afresh with every noise draw (training and sampling alike).

    The drawn mu travels as the last noise column so that reused noise reuses its mu.
    """

    def __init__(self, inner: LatentSampler, low: float = -1.0, high: float = 1.0):
        super().__init__(inner.nz)
        if not high >= low:
            raise ValueError(f"latent.mr_high ({high}) must be >= latent.mr_low ({low})")
        self.inner, self.low, self.high = inner, low, high
        self.out_features = inner.out_features

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = self.inner.draw(n, generator)
        mu = self.low + (self.high - self.low) * torch.rand(n, 1, generator=generator)
        return torch.cat([eps, mu], dim=1)

    def forward(self, noise: Tensor) -> Tensor:
        return self.inner(noise[:, :-1]) + noise[:, -1:]

    def penalty(self) -> Tensor | None:
        return self.inner.penalty()


@LATENTS.register("cft")
def _cft(cfg) -> LatentSampler:
    return CFT(cfg.model.nz, cfg.latent.fd, cfg.latent.cft_trainable)
