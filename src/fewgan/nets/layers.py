"""Small building blocks shared by the network families."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    """Spectral normalisation (docs/methods.md §11): W / sigma(W), one power iteration per training forward."""
    return _sn(module) if enabled else module


@torch.no_grad()
def dcgan_init(module: nn.Module) -> None:
    """DCGAN weight init (Radford et al.): conv/linear weights ~ N(0, 0.02), BN gamma ~ N(1, 0.02), beta = 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # with spectral norm the raw weight lives in parametrizations.weight.original
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(w, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def num_up_stages(resolution: int) -> int:
    """Number of stride-2 stages between a 4x4 map and `resolution` (32 -> 3, 64 -> 4, 128 -> 5)."""
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
    return resolution.bit_length() - 3
