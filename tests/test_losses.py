import math

import pytest
import torch

from fewgan import losses


def test_bce_matches_textbook():
    r, f = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    d = losses.d_loss("bce", r, f, torch.ones(2), torch.zeros(2))
    expect = -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean())
    assert torch.allclose(d, expect, atol=1e-6)
    g = losses.g_loss("bce", f)
    assert torch.allclose(g, -torch.log(torch.sigmoid(f)).mean(), atol=1e-6)


def test_minimax_generator_loss():
    f = torch.tensor([0.5, -3.0])
    g = losses.g_loss("minimax", f)
    assert torch.allclose(g, torch.log(1 - torch.sigmoid(f)).mean(), atol=1e-6)


def test_lsgan_and_hinge_closed_forms():
    r, f = torch.tensor([2.0, 0.0]), torch.tensor([1.0, -2.0])
    one, zero = torch.ones(2), torch.zeros(2)
    assert torch.isclose(losses.d_loss("lsgan", r, f, one, zero), torch.tensor(0.5 * (1 + 1) / 2 + 0.5 * (1 + 4) / 2))
    assert torch.isclose(losses.g_loss("lsgan", f), torch.tensor(0.5 * (0 + 9) / 2))
    # hinge: mean relu(1 - r) + mean relu(1 + f) = (0 + 1)/2 + (2 + 0)/2
    assert torch.isclose(losses.d_loss("hinge", r, f, one, zero), torch.tensor(1.5))
    assert torch.isclose(losses.g_loss("hinge", f), torch.tensor(0.5))


def test_unknown_loss():
    with pytest.raises(KeyError, match="bce, hinge, lsgan, minimax"):
        losses.g_loss("wgan", torch.zeros(1))


def test_targets_plain():
    tr, tf = losses.d_targets(5)
    assert torch.equal(tr, torch.ones(5)) and torch.equal(tf, torch.zeros(5))


def test_onesided_const():
    tr, tf = losses.d_targets(5, "onesided_const", alpha=0.9)
    assert torch.allclose(tr, torch.full((5,), 0.9)) and torch.equal(tf, torch.zeros(5))


def test_onesided_uniform_range_and_spread():
    g = torch.Generator().manual_seed(0)
    tr, tf = losses.d_targets(10000, "onesided_uniform", low=0.9, high=1.0, generator=g)
    assert tr.min() >= 0.9 and tr.max() <= 1.0
    assert abs(tr.mean().item() - 0.95) < 0.002
    assert abs(tr.var().item() - 0.01 / 12) < 1e-4  # uniform variance (b-a)^2/12
    assert torch.equal(tf, torch.zeros(10000))  # one-sided: fakes untouched


def test_flip_swaps_targets_with_probability():
    g = torch.Generator().manual_seed(1)
    tr, tf = losses.d_targets(20000, "onesided_const", alpha=0.9, flip_p=0.05, generator=g)
    flipped = tr == 0
    assert abs(flipped.float().mean().item() - 0.05) < 0.006
    assert torch.allclose(tf[flipped], torch.tensor(0.9))  # swapped, not zeroed
    assert torch.all(tf[~flipped] == 0) and torch.allclose(tr[~flipped], torch.tensor(0.9))


def test_bad_smoothing_name():
    with pytest.raises(ValueError, match="onesided_const"):
        losses.d_targets(3, "twosided")


@pytest.mark.parametrize("kind", ["bce", "minimax", "lsgan", "hinge"])
def test_d_loss_lower_for_a_better_discriminator(kind):
    good = losses.d_loss(kind, torch.full((4,), 3.0), torch.full((4,), -3.0), torch.ones(4), torch.zeros(4))
    bad = losses.d_loss(kind, torch.full((4,), -3.0), torch.full((4,), 3.0), torch.ones(4), torch.zeros(4))
    assert good < bad and math.isfinite(good.item())
