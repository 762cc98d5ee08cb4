"""Augmentation leaks: does the generator draw the augmentations' artefacts? (docs/methods.md §21, "Leaks")

A discriminator trained on augmented reals (and fakes) can let the augmentation "leak": G learns
to produce cutout squares, translation borders, mirrored or rotated images, because D sees such
images as real. Each test below is a per-set statistic on uint8 (N, C, H, W) images; it is
reported for the generated images and, as the reference, for the training images
(``<name>_real``). A leak shows as the generated value well above the real one.

``leak_cutout``  fraction of images holding a square of side ``max(2, round(0.25 H))`` in which
                 every pixel of every channel is within ±6 of mid-grey 127.5 (cutout fills 0 in
                 [-1, 1], i.e. 127/128 in uint8). A window smaller than the cutout square still
                 finds it, and a 0.25 H flat grey square is rare in photos.
``leak_border``  fraction of images with one side whose outermost 1-px strip is >= 90 % mid-grey
                 (translation fills the uncovered strip with 0 = grey).
``leak_flip``    fraction of images closer (L2 on 8x8 average-pooled grey) to the left-right
                 mirrored mean real image than to the mean real image: about 0.5 for symmetric
                 data, low for oriented data; a flip leak on oriented data raises it.
``leak_rot``     fraction closer to the mean real image rotated by 90, 180 or 270 degrees than to
                 the upright mean: near 0 for upright data; a rotation leak raises it.

For the reals, the flip / rotation tests compare each real with the mean of the other reals
(leave-one-out, so that an image is not measured against a mean that contains it). Pure functions,
no networks; ties (e.g. a mirror-symmetric mean) count as "not closer".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["GREY", "GREY_TOL", "grey_mask", "cutout_fraction", "border_fraction", "pooled_grey",
           "flip_fraction", "rot_fraction", "leak_stats", "LEAK_KEYS"]

GREY = 127.5  # the uint8 value of 0 in [-1, 1]
GREY_TOL = 6.0  # ±6 levels: survives the quantisation and a little generator noise
LEAK_KEYS = ("leak_cutout", "leak_border", "leak_flip", "leak_rot")


def _check(x: Tensor) -> Tensor:
    x = torch.as_tensor(x)
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise ValueError(f"expected uint8 (N, C, H, W) images, got {x.dtype} {tuple(x.shape)}")
    return x


def grey_mask(x_uint8: Tensor, tol: float = GREY_TOL) -> Tensor:
    """(N, H, W) bool: every channel of the pixel lies within ±tol of mid-grey."""
    x = _check(x_uint8)
    return ((x.float() - GREY).abs() <= tol).all(dim=1)


def cutout_fraction(x_uint8: Tensor, side: int | None = None, tol: float = GREY_TOL) -> float:
    """Fraction of images with an all-grey ``side`` x ``side`` window (default max(2, round(H / 4))).
    The window test is an average pool of the grey mask: a window is all grey iff its mean is 1."""
    x = _check(x_uint8)
    if len(x) == 0:
        return float("nan")
    h, w = x.shape[-2:]
    side = min(side or max(2, round(0.25 * h)), h, w)
    m = grey_mask(x, tol).float().unsqueeze(1)
    full = F.avg_pool2d(m, kernel_size=side, stride=1) >= 1.0 - 1e-6
    return float(full.flatten(1).any(dim=1).float().mean())


def border_fraction(x_uint8: Tensor, min_share: float = 0.9, tol: float = GREY_TOL) -> float:
    """Fraction of images where the outermost 1-px strip of at least one side is >= min_share grey."""
    x = _check(x_uint8)
    if len(x) == 0:
        return float("nan")
    m = grey_mask(x, tol).float()
    sides = torch.stack([m[:, 0, :].mean(1), m[:, -1, :].mean(1), m[:, :, 0].mean(1), m[:, :, -1].mean(1)], 1)
    return float((sides >= min_share).any(dim=1).float().mean())


def pooled_grey(x_uint8: Tensor, size: int = 8) -> Tensor:
    """(N, size, size) float: channel mean, average-pooled to size x size (the layout, not the detail)."""
    x = _check(x_uint8).float().mean(dim=1, keepdim=True)
    return F.adaptive_avg_pool2d(x, size)[:, 0]


def _dist(a: Tensor, ref: Tensor) -> Tensor:
    return (a - ref).flatten(1).norm(dim=1)


def _refs(g: Tensor, mean_ref: Tensor | None) -> Tensor:
    """Each image's reference layout: the given mean, or (None) the leave-one-out mean of the
    images themselves. Leaving the image out matters: an image inside its own mean is pulled
    towards the unflipped side (on symmetric data, 400 images at 8x8: 0.39 instead of 0.5)."""
    if mean_ref is not None:
        return mean_ref.expand_as(g)
    if len(g) < 2:
        raise ValueError("a leave-one-out reference needs at least 2 images")
    return (g.sum(0, keepdim=True) - g) / (len(g) - 1)


def flip_fraction(x_uint8: Tensor, mean_ref: Tensor | None = None) -> float:
    """Fraction of images closer to the mirrored reference mean (pooled_grey layout) than to it;
    ``mean_ref=None``: the images' own leave-one-out mean."""
    g = pooled_grey(x_uint8, 8 if mean_ref is None else mean_ref.shape[-1])
    if len(g) == 0:
        return float("nan")
    ref = _refs(g, mean_ref)
    return float((_dist(g, ref.flip(-1)) < _dist(g, ref)).float().mean())


def rot_fraction(x_uint8: Tensor, mean_ref: Tensor | None = None) -> float:
    """Fraction of images closer to a 90/180/270-degree rotation of the reference mean than to it;
    ``mean_ref=None``: the images' own leave-one-out mean."""
    g = pooled_grey(x_uint8, 8 if mean_ref is None else mean_ref.shape[-1])
    if len(g) == 0:
        return float("nan")
    ref = _refs(g, mean_ref)
    rotated = torch.stack([_dist(g, torch.rot90(ref, k, dims=(-2, -1))) for k in (1, 2, 3)]).amin(0)
    return float((rotated < _dist(g, ref)).float().mean())


def leak_stats(gen_uint8: Tensor, real_uint8: Tensor) -> dict[str, float]:
    """The four leak statistics of the generated images, and the same on the reals (``*_real``)."""
    mean_real = pooled_grey(real_uint8).mean(0)
    out = {}
    for tag, x, ref in (("", gen_uint8, mean_real), ("_real", real_uint8, None)):  # reals: leave-one-out mean
        out[f"leak_cutout{tag}"] = cutout_fraction(x)
        out[f"leak_border{tag}"] = border_fraction(x)
        out[f"leak_flip{tag}"] = flip_fraction(x, ref)
        out[f"leak_rot{tag}"] = rot_fraction(x, ref)
    return {k: out[k] for k in (*LEAK_KEYS, *(f"{k}_real" for k in LEAK_KEYS))}
