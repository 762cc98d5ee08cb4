"""Augmentation-leak statistics: planted artefacts score their planted fraction, clean images 0."""

from __future__ import annotations

import pytest
import torch

from fewgan.metrics.leaks import (
    LEAK_KEYS,
    border_fraction,
    cutout_fraction,
    flip_fraction,
    grey_mask,
    leak_stats,
    pooled_grey,
    rot_fraction,
)


def oriented(n: int = 40, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Oriented RGB images: bright towards the right and the bottom, plus ±30 uniform noise
    (never a flat grey patch, never mirror- or rotation-symmetric)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    base = 30 + 150 * xx + 50 * yy
    noise = (torch.rand(n, 3, size, size, generator=g) - 0.5) * 60
    return (base + noise).clamp(0, 255).round().to(torch.uint8)


def test_grey_mask_tolerance_is_plus_minus_six():
    x = torch.tensor([121, 122, 127, 128, 133, 134], dtype=torch.uint8).view(1, 1, 1, 6)
    assert grey_mask(x)[0, 0].tolist() == [False, True, True, True, True, False]
    rgb = torch.full((1, 3, 1, 1), 127, dtype=torch.uint8)
    rgb[0, 2] = 200  # one channel off grey: not grey
    assert not grey_mask(rgb).any()


def test_clean_oriented_images_score_zero():
    x = oriented()
    assert cutout_fraction(x) == 0.0 and border_fraction(x) == 0.0
    mean = pooled_grey(x).mean(0)
    assert flip_fraction(x, mean) == 0.0 and rot_fraction(x, mean) == 0.0


@pytest.mark.parametrize("k", [0, 10, 40])
def test_planted_grey_squares_score_the_planted_fraction(k):
    x = oriented()
    x[:k, :, 5:13, 9:17] = 127  # 8x8 square = 0.25 * 32: exactly the window
    assert cutout_fraction(x) == pytest.approx(k / 40)


def test_a_square_smaller_than_the_window_is_not_a_cutout():
    x = oriented(n=4)
    x[:, :, 5:12, 5:12] = 128  # 7x7 < 8x8
    assert cutout_fraction(x) == 0.0
    assert cutout_fraction(x, side=7) == 1.0
    x2 = oriented(n=4, size=4)
    x2[:2, :, 1:3, 1:3] = 127  # tiny images: window is at least 2
    assert cutout_fraction(x2) == 0.5


@pytest.mark.parametrize("side", ["top", "bottom", "left", "right"])
def test_grey_borders_on_any_side_are_found(side):
    x = oriented(n=10)
    sl = {"top": (0, slice(None)), "bottom": (-1, slice(None)),
          "left": (slice(None), 0), "right": (slice(None), -1)}[side]
    x[(slice(0, 3), slice(None)) + sl] = 127
    assert border_fraction(x) == pytest.approx(0.3)


def test_border_needs_ninety_percent_of_the_strip():
    x = oriented(n=2, size=20)
    x[0, :, :18, 0] = 127  # 18 / 20 = 90 %: counted
    x[1, :, :17, 0] = 127  # 85 %: not
    assert border_fraction(x) == 0.5


def test_flipped_and_rotated_copies_are_found():
    real = oriented()
    mean = pooled_grey(real).mean(0)
    flipped = real.flip(-1)
    assert flip_fraction(flipped, mean) == 1.0
    for k in (1, 2, 3):
        rot = torch.rot90(real, k, dims=(-2, -1))
        assert rot_fraction(rot, mean) == 1.0
    mixed = torch.cat([real[:30], torch.rot90(real[30:], 2, dims=(-2, -1))])
    assert rot_fraction(mixed, mean) == pytest.approx(0.25)
    assert flip_fraction(torch.cat([real[:20], flipped[20:]]), mean) == pytest.approx(0.5)


def test_flip_is_about_half_on_mirror_symmetric_data():
    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    base = 60 + 120 * (1 - xx.abs()) + 40 * yy  # symmetric left-right, not top-bottom
    x = (base + torch.randn(400, 1, 32, 32, generator=g) * 40).clamp(0, 255).round().to(torch.uint8)
    assert 0.44 < flip_fraction(x) < 0.56  # leave-one-out mean of the set itself
    assert flip_fraction(x, pooled_grey(x).mean(0)) < 0.42  # the self-inclusion bias it avoids
    assert rot_fraction(x) < 0.05  # still upright
    fresh = (base + torch.randn(400, 1, 32, 32, generator=g) * 40).clamp(0, 255).round().to(torch.uint8)
    assert 0.44 < flip_fraction(fresh, pooled_grey(x).mean(0)) < 0.56  # new samples vs the reals' mean


def test_leak_stats_reports_gen_and_real():
    real = oriented()
    gen = real.flip(-1).clone()
    gen[:20, :, 0:8, 0:8] = 127
    gen[:, :, :, -1] = 128
    st = leak_stats(gen, real)
    assert set(st) == set(LEAK_KEYS) | {f"{k}_real" for k in LEAK_KEYS}
    assert st["leak_cutout"] == 0.5 and st["leak_border"] == 1.0 and st["leak_flip"] == 1.0
    assert st["leak_cutout_real"] == 0.0 and st["leak_border_real"] == 0.0
    assert st["leak_flip_real"] == 0.0 and st["leak_rot_real"] == 0.0
    grey = leak_stats(gen[:, :1], real[:, :1])  # single-channel images work the same
    assert grey["leak_cutout"] == 0.5


def test_rejects_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        cutout_fraction(torch.rand(2, 3, 8, 8))


def test_leave_one_out_reference_equals_the_explicit_loop():
    x = oriented(n=12)
    x[:5] = x[:5].flip(-1)
    g = pooled_grey(x)
    explicit = []
    for i in range(len(x)):
        ref = torch.cat([g[:i], g[i + 1:]]).mean(0)
        explicit.append(float((g[i] - ref.flip(-1)).norm() < (g[i] - ref).norm()))
    assert flip_fraction(x) == pytest.approx(sum(explicit) / len(x))
    with pytest.raises(ValueError, match="at least 2"):
        flip_fraction(x[:1])
