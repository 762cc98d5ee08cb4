"""Generating images from a trained generator, and rebuilding one from a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import config as config_mod
from .data import to_uint8
from .devices import module_device, resolve_device
from .training import checkpoint
from .variants import GeneratorPipeline, Variant, build_variant


@torch.no_grad()
def generate(pipe: GeneratorPipeline, n: int, seed: int = 0, batch_size: int = 256,
             y: torch.Tensor | None = None) -> torch.Tensor:
    """n images as CPU uint8 (N, C, H, W) from `pipe` in eval mode, noise drawn from `seed`.

    The same seed always gives the same noise (drawn on the CPU, then moved to the pipe's
    device), so grids from fixed latents stay comparable, whatever device `pipe` is on.
    """
    was_training = pipe.training
    pipe.eval()
    device = module_device(pipe)
    gen = torch.Generator().manual_seed(seed)
    noise = pipe.latent.draw(n, gen)
    out = []
    try:
        for i in range(0, n, batch_size):
            yi = None if y is None else y[i:i + batch_size].to(device)
            out.append(to_uint8(pipe(noise[i:i + batch_size].to(device), yi).float()).cpu())
    finally:
        pipe.train(was_training)
    return torch.cat(out)


def class_grid(num_classes: int, n: int, max_cols: int = 8) -> tuple[torch.Tensor, int]:
    """Labels and column count for a class-conditional grid: each row holds one class.

    Up to n images: n // K per class, laid out in rows of at most max_cols, so a class with
    more samples gets several consecutive rows. With K > n, one image per class for the first n.
    """
    if num_classes < 1 or n < 1:
        raise ValueError(f"class_grid needs num_classes >= 1 and n >= 1, got {num_classes}, {n}")
    if num_classes > n:
        return torch.arange(n), min(max_cols, n)
    per_class = n // num_classes
    cols = min(max_cols, per_class)
    per_class = per_class // cols * cols  # whole rows only, so every row is one class
    return torch.arange(num_classes).repeat_interleave(per_class), cols


def class_index(name: str, class_names: list[str]) -> int:
    """A class given by name (as stored in the checkpoint) or by index -> its index."""
    if name in class_names:
        return class_names.index(name)
    if name.lstrip("-").isdigit() and 0 <= int(name) < len(class_names):
        return int(name)
    shown = ", ".join(f"{i}: {c}" for i, c in enumerate(class_names[:30]))
    more = f", ... ({len(class_names)} classes)" if len(class_names) > 30 else ""
    raise ValueError(f"unknown class {name!r}; classes of this generator: {shown}{more}")


@dataclass
class LoadedRun:
    cfg: config_mod.Config
    variant: Variant
    meta: dict
    path: Path


def load_for_sampling(path_or_run: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild the variant recorded in a checkpoint (or a run's latest) and load its weights onto
    `device` (default the CPU, wherever the run was trained: checkpoints are device-free;
    "auto" picks as train.device does)."""
    dev = resolve_device(device, "--device")
    path = checkpoint.resolve(path_or_run)
    tensors, meta = checkpoint.read(path)
    cfg = config_mod.from_dict(meta["config"], where=f"{path} (config)")
    variant = build_variant(cfg, meta.get("num_classes", 0))
    checkpoint.load_modules(tensors, variant.modules(), path)
    variant.load_extra_state(meta.get("variant_state", {}))
    return LoadedRun(cfg, variant.to(dev), meta, path)
