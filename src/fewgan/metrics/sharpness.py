"""Pixel-space sharpness: is a generator blurrier than its data? (the dog-image talk's "MLP GAN is blurrier")

The variance of the Laplacian (Pech-Pacheco et al. 2000; the usual focus / blur measure): grey
levels in [0, 1] (ITU-R BT.601 luma for RGB), the 4-neighbour Laplacian over the interior pixels,
its variance per image. Blur removes high frequencies and lowers it; an image as sharp as the data
scores like the data. `sharpness_ratio` = mean over generated images / mean over real images at the
same resolution: < 1 blurrier than the data, ~1 as sharp, > 1 more high-frequency content (noise,
checkerboard artefacts) than the data. Pure tensor math: no backbone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
_LUMA = torch.tensor([0.299, 0.587, 0.114])


def laplacian_variance(x_uint8: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Per-image variance of the Laplacian of uint8 images (N, C, H, W), C = 1 or 3; shape (N,)."""
    if x_uint8.ndim != 4 or x_uint8.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 images (N, 1 or 3, H, W), got shape {tuple(x_uint8.shape)}")
    if min(x_uint8.shape[-2:]) < 3:
        raise ValueError(f"images of {tuple(x_uint8.shape[-2:])} pixels are too small for a 3x3 Laplacian")
    out = []
    for i in range(0, len(x_uint8), batch_size):
        x = x_uint8[i:i + batch_size].to(torch.float64) / 255.0
        grey = x[:, :1] if x.shape[1] == 1 else (x * _LUMA.to(x).view(1, 3, 1, 1)).sum(1, keepdim=True)
        lap = F.conv2d(grey, _LAPLACIAN.to(x).view(1, 1, 3, 3))
        out.append(lap.flatten(1).var(dim=1, unbiased=False))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def sharpness(gen_uint8: torch.Tensor, real_uint8: torch.Tensor) -> dict[str, float]:
    """Mean Laplacian variance of generated and real images and their ratio (gen / real)."""
    g = float(laplacian_variance(gen_uint8).mean())
    r = float(laplacian_variance(real_uint8).mean())
    return {"sharpness": g, "sharpness_real": r, "sharpness_ratio": g / r if r > 0 else float("nan")}
