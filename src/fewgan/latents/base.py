"""Latent samplers: what sits between random noise and G's input.

A sampler splits into `draw` (pure randomness, from an explicit torch.Generator) and
`forward` (a deterministic, possibly learned, map of that noise to G's input). The split
lets the loop reuse the same noise across several G updates while a learned map still
sees its newest parameters, and lets fixed-noise sample grids stay fixed.
Learned samplers are nn.Modules trained with G and saved in G's checkpoint.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import Registry

LATENTS: Registry = Registry("latent sampler (latent.kind)")


class LatentSampler(nn.Module):
    """Base: z ~ N(0, I_nz), passed through unchanged."""

    def __init__(self, nz: int):
        super().__init__()
        self.nz = nz
        self.out_features = nz  # size of the vector G receives

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.nz, generator=generator)

    def forward(self, noise: Tensor) -> Tensor:
        return noise

    def penalty(self) -> Tensor | None:
        """An extra term for G's loss (e.g. DeLiGAN's sigma regulariser), or None."""
        return None
