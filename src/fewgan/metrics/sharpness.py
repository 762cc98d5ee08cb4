"""Pixel-space sharpness: is a generator blurrier than its data? (the dog-image talk's "MLP GAN is blurrier")

The variance of the Laplacian (Pech-Pacheco et al. 2000; the usual focus / blur measure): grey
levels in [0, 1] (ITU-R BT.601 luma for RGB), the 4-neighbour Laplacian over the interior pixels,
its variance per image. Blur removes high frequencies and lowers it; an image as sharp as the data
scores like the data. `sharpness_ratio` = mean over generated images / mean over real images at the
same resolution: < 1 blurrier than the data, ~1 as sharp, > 1 more high-frequency content (noise,
checkerboard artefacts) than the data. Pure tensor math: no backbone.

A single number cannot tell blur from noise: a blurred image with per-pixel noise on top can
have a Laplacian variance above the data's. So `spectral_bands` splits the same question by
frequency: the radially averaged power spectrum of the luma (each image's mean removed; power
|FFT|^2 / (H W), so that by Parseval the powers of one image sum to its variance times H W),
summed over three bands of radial frequency in cycles per pixel, low (0, 1/8], mid (1/8, 1/4]
and high (> 1/4, up to the corners' 0.71), averaged over images, as generated / real ratios
`spec_low`, `spec_mid`, `spec_high`. Blur shows as mid and high ratios below 1; noise as a high
ratio above 1 while the mid ratio may still be below 1.
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
        grey = _luma(x_uint8[i:i + batch_size]).unsqueeze(1)
        lap = F.conv2d(grey, _LAPLACIAN.to(grey).view(1, 1, 3, 3))
        out.append(lap.flatten(1).var(dim=1, unbiased=False))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def _luma(x_uint8: torch.Tensor) -> torch.Tensor:
    x = x_uint8.to(torch.float64) / 255.0
    return x[:, 0] if x.shape[1] == 1 else (x * _LUMA.to(x).view(1, 3, 1, 1)).sum(1)


SPECTRAL_BANDS = {"spec_low": (0.0, 0.125), "spec_mid": (0.125, 0.25), "spec_high": (0.25, 1.0)}


def band_powers(x_uint8: torch.Tensor, bands: dict[str, tuple[float, float]] = SPECTRAL_BANDS,
                batch_size: int = 500) -> dict[str, float]:
    """Mean power per image of the luma in each band (lo, hi] of radial frequency (cycles / pixel).

    Each image's mean (the zero frequency) is removed, power is |FFT|^2 / (H W); the zero
    frequency itself belongs to no band. Images (N, 1 or 3, H, W), uint8.
    """
    if x_uint8.ndim != 4 or x_uint8.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 images (N, 1 or 3, H, W), got shape {tuple(x_uint8.shape)}")
    h, w = x_uint8.shape[-2:]
    fy, fx = torch.fft.fftfreq(h, dtype=torch.float64), torch.fft.fftfreq(w, dtype=torch.float64)
    radius = (fy[:, None] ** 2 + fx[None, :] ** 2).sqrt()
    masks = {k: (radius > lo) & (radius <= hi) for k, (lo, hi) in bands.items()}
    totals = dict.fromkeys(bands, 0.0)
    for i in range(0, len(x_uint8), batch_size):
        g = _luma(x_uint8[i:i + batch_size])
        g = g - g.mean(dim=(-2, -1), keepdim=True)
        power = torch.fft.fft2(g).abs() ** 2 / (h * w)
        for k, m in masks.items():
            totals[k] += float(power[:, m].sum())
    n = max(len(x_uint8), 1)
    return {k: v / n for k, v in totals.items()}


def spectral_bands(gen_uint8: torch.Tensor, real_uint8: torch.Tensor) -> dict[str, float]:
    """Generated / real mean power in the low, mid and high bands (`SPECTRAL_BANDS`)."""
    g, r = band_powers(gen_uint8), band_powers(real_uint8)
    return {k: g[k] / r[k] if r[k] > 0 else float("nan") for k in g}


def sharpness(gen_uint8: torch.Tensor, real_uint8: torch.Tensor) -> dict[str, float]:
    """Mean Laplacian variance of generated and real images and their ratio (gen / real)."""
    g = float(laplacian_variance(gen_uint8).mean())
    r = float(laplacian_variance(real_uint8).mean())
    return {"sharpness": g, "sharpness_real": r, "sharpness_ratio": g / r if r > 0 else float("nan")}
