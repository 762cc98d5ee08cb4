"""Image grids and PNG files (Pillow; no torchvision needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def make_grid(x_uint8: torch.Tensor, nrow: int | None = None, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """(N, C, H, W) uint8 -> one (rows*(H+pad)+pad, cols*(W+pad)+pad, C) uint8 array, row-major."""
    n, c, h, w = x_uint8.shape
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, np.uint8)
    arr = x_uint8.permute(0, 2, 3, 1).cpu().numpy()
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[top:top + h, left:left + w] = arr[i]
    return grid


def to_pil(arr_hwc: np.ndarray) -> Image.Image:
    return Image.fromarray(arr_hwc[..., 0] if arr_hwc.shape[-1] == 1 else arr_hwc)


def save_grid(x_uint8: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 1) -> Path:
    """Save a grid PNG; `scale` enlarges small images with nearest-neighbour so pixels stay sharp."""
    im = to_pil(make_grid(x_uint8, nrow))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


def save_pngs(x_uint8: torch.Tensor, folder: str | Path, prefix: str = "sample") -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arr = x_uint8.permute(0, 2, 3, 1).cpu().numpy()
    paths = []
    for i, a in enumerate(arr):
        p = folder / f"{prefix}_{i:05d}.png"
        to_pil(a).save(p)
        paths.append(p)
    return paths
