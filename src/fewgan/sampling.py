"""Generating images from a trained generator, and rebuilding one from a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import config as config_mod
from .data import to_uint8
from .training import checkpoint
from .variants import GeneratorPipeline, Variant, build_variant


@torch.no_grad()
def generate(pipe: GeneratorPipeline, n: int, seed: int = 0, batch_size: int = 256,
             y: torch.Tensor | None = None) -> torch.Tensor:
    """n images as uint8 (N, C, H, W) from `pipe` in eval mode, noise drawn from `seed`.

    The same seed always gives the same noise, so grids from fixed latents stay comparable.
    """
    was_training = pipe.training
    pipe.eval()
    gen = torch.Generator().manual_seed(seed)
    noise = pipe.latent.draw(n, gen)
    out = []
    try:
        for i in range(0, n, batch_size):
            yi = None if y is None else y[i:i + batch_size]
            out.append(to_uint8(pipe(noise[i:i + batch_size], yi).float()))
    finally:
        pipe.train(was_training)
    return torch.cat(out)


@dataclass
class LoadedRun:
    cfg: config_mod.Config
    variant: Variant
    meta: dict
    path: Path


def load_for_sampling(path_or_run: str | Path) -> LoadedRun:
    """Rebuild the variant recorded in a checkpoint (or a run's latest) and load its weights."""
    path = checkpoint.resolve(path_or_run)
    tensors, meta = checkpoint.read(path)
    cfg = config_mod.from_dict(meta["config"], where=f"{path} (config)")
    variant = build_variant(cfg, meta.get("num_classes", 0))
    checkpoint.load_modules(tensors, variant.modules(), path)
    variant.load_extra_state(meta.get("variant_state", {}))
    return LoadedRun(cfg, variant, meta, path)
