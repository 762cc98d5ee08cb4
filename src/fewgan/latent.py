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

from .registry import Registry

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


def latent_out_features(cfg) -> int:
    """Size of the vector G receives, without building (and so without seeding) the sampler."""
    return build_latent(cfg, _probe=True).out_features


def build_latent(cfg, _probe: bool = False) -> LatentSampler:
    """The configured sampler, wrapped in Mean Rescaling when latent.mean_rescale is set."""
    if _probe:
        # build under a throw-away RNG state so the probe consumes no randomness
        with torch.random.fork_rng():
            return build_latent(cfg)
    sampler = LATENTS.get(cfg.latent.kind)(cfg)
    if cfg.latent.mean_rescale:
        from .latent_maps import MeanRescale

        sampler = MeanRescale(sampler, cfg.latent.mr_low, cfg.latent.mr_high)
    return sampler


from . import latent_maps  # noqa: E402,F401  (registers cft, deligan)
