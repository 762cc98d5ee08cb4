"""The fixed latents: gaussian (z ~ N(0, I), the base sampler) and uniform (BEGAN's)."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import LATENTS, LatentSampler


@LATENTS.register("gaussian")
def _gaussian(cfg) -> LatentSampler:
    return LatentSampler(cfg.model.nz)


class UniformLatent(LatentSampler):
    """z ~ U(-1, 1)^nz, BEGAN's latent (docs/methods.md §7), passed through unchanged."""

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.rand(n, self.nz, generator=generator) * 2 - 1


@LATENTS.register("uniform")
def _uniform(cfg) -> LatentSampler:
    return UniformLatent(cfg.model.nz)
