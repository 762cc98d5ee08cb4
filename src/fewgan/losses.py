"""GAN losses as pure functions on discriminator logits, and D's label targets (docs/methods.md §10).

Every D loss has the form  mean_i l(real_i, t_real_i) + mean_i l(fake_i, t_fake_i)  with
per-sample targets t in [0, 1], so one-sided smoothing and label flipping work with every
loss. For BCE this is the textbook L_D = BCE(real, 1) + BCE(fake, 0) (docs/methods.md conventions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .registry import Registry


@dataclass(frozen=True)
class GANLoss:
    d_term: Callable[[Tensor, Tensor], Tensor]  # (logits, targets) -> per-sample D loss
    g_loss: Callable[[Tensor], Tensor]  # fake logits -> scalar G loss


LOSSES: Registry[GANLoss] = Registry("loss (loss.kind)")


def _bce(logits: Tensor, t: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, t, reduction="none")


# non-saturating: G maximises log D(G(z)) (Goodfellow 2014, §3)
LOSSES.register("bce")(GANLoss(_bce, lambda f: _bce(f, torch.ones_like(f)).mean()))
# minimax: G minimises log(1 - D(G(z))) = -BCE(fake, 0); negative, so log(L_G/L_D) is undefined
LOSSES.register("minimax")(GANLoss(_bce, lambda f: -_bce(f, torch.zeros_like(f)).mean()))
# least squares (Mao et al. 2017), a-b-c = 0-1-1
LOSSES.register("lsgan")(GANLoss(lambda l, t: 0.5 * (l - t) ** 2, lambda f: 0.5 * ((f - 1) ** 2).mean()))
# hinge (Lim & Ye 2017; SNGAN); target t maps to a signed margin 2t - 1 (1 -> +1, 0 -> -1)
LOSSES.register("hinge")(GANLoss(lambda l, t: F.relu(1 - (2 * t - 1) * l), lambda f: -f.mean()))


def d_loss(kind: str, real_logits: Tensor, fake_logits: Tensor, t_real: Tensor, t_fake: Tensor) -> Tensor:
    term = LOSSES.get(kind).d_term
    return term(real_logits, t_real).mean() + term(fake_logits, t_fake).mean()


def g_loss(kind: str, fake_logits: Tensor) -> Tensor:
    return LOSSES.get(kind).g_loss(fake_logits)


SMOOTHING = ("none", "onesided_const", "onesided_uniform")


def d_targets(n: int, smooth: str = "none", alpha: float = 0.9, low: float = 0.9, high: float = 1.0,
              flip_p: float = 0.0, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Per-sample targets (t_real, t_fake) for D.

    smooth: 'none' (1), 'onesided_const' (alpha), 'onesided_uniform' (U(low, high) per sample);
    fakes always get 0 (one-sided: Salimans et al. 2016). flip_p: each sample's real and fake
    targets are swapped with this probability ("noisy labels"). G's targets are never changed.
    """
    if smooth == "none":
        t_real = torch.ones(n)
    elif smooth == "onesided_const":
        t_real = torch.full((n,), float(alpha))
    elif smooth == "onesided_uniform":
        t_real = low + (high - low) * torch.rand(n, generator=generator)
    else:
        raise ValueError(f"unknown loss.smooth {smooth!r}; valid: {', '.join(SMOOTHING)}")
    t_fake = torch.zeros(n)
    if flip_p > 0:
        flip = torch.rand(n, generator=generator) < flip_p
        t_real, t_fake = torch.where(flip, t_fake, t_real), torch.where(flip, t_real, t_fake)
    return t_real, t_fake
