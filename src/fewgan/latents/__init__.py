"""Latent samplers by name (`latent.kind`); importing this package registers them all.

A sampler splits into `draw` (randomness) and `forward` (a deterministic, possibly learned,
map to G's input); see base.py. A new sampler is a new file registering with
`@LATENTS.register("name")` plus one import line here.
"""

from __future__ import annotations

import torch

from .base import LATENTS, LatentSampler
from . import simple  # noqa: F401  (registers "gaussian", "uniform")
from . import cft  # noqa: F401  (registers "cft"; Mean Rescaling)
from . import deligan  # noqa: F401  (registers "deligan")
from .cft import CFT, MeanRescale
from .deligan import DeLiGANLatent
from .simple import UniformLatent


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
        sampler = MeanRescale(sampler, cfg.latent.mr_low, cfg.latent.mr_high)
    return sampler


__all__ = ["LATENTS", "LatentSampler", "UniformLatent", "CFT", "MeanRescale", "DeLiGANLatent",
           "build_latent", "latent_out_features"]
