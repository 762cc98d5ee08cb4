"""Transitional conditional GAN (Shahbazi et al., "Collapse by Conditioning: Training
Class-conditional GANs with Limited Data", ICLR 2022), on the class-conditional DCGAN.

On small labelled data a class-conditional GAN can collapse where its unconditional twin
does not (results/balance: the projection cGAN's G ignored z and drew one image per class).
The remedy trains unconditionally first and fades the labels in:

    lambda_t = clip((t - T_s) / (T_e - T_s), 0, 1)          (t: iteration; model.transition_start/end)
    G input  = cat[z, lambda_t * Emb_G(y)]                   (lambda_t = 0: G ignores y)
    D logits = u(x) = w^T phi(x) + b (unconditional),  c(x, y) = Emb_D(y)^T phi(x) (projection)
    L_D      = loss_D(u) + lambda_t * loss_D(c)              (the same targets for both heads)
    L_G      = loss_G(u) + lambda_t * loss_G(c)

Both heads share D's trunk phi. This follows the authors' code (mshahbazi72/transitional-cGAN,
StyleGAN2-ADA based): a linear ramp in training progress, one lambda_t for G and D, two logits
from one trunk, L = L_uncond + lambda_t * L_cond for D and G. Adapted to DCGAN by us: the
label embedding is concatenated to z (their G adds it to the first mapping layer's output;
concatenation followed by G's first linear layer is the same sum), and D's conditional logit
is the projection term without its own bias. At lambda_t = 1 the sum u + c is exactly the
projection D's logit of `cdcgan`.
"""

from __future__ import annotations

import torch

from .base import VARIANTS
from .standard import StandardGAN


def transition(step: int, start: int, end: int) -> float:
    """lambda_t: 0 until `start`, rising linearly to 1 at `end`, 1 after (a step at start == end)."""
    if step >= end:
        return 1.0
    if step < start:
        return 0.0
    return (step - start) / (end - start)


@VARIANTS.register("transitional")
class TransitionalCGAN(StandardGAN):
    def __init__(self, cfg, num_classes: int = 0):
        m = cfg.model
        if not m.conditional or m.cond_mode != "projection":
            raise ValueError("train.variant=transitional needs a class-conditional model with the projection D "
                             f"(model.conditional=true, model.cond_mode=projection; got conditional={m.conditional}, "
                             f"cond_mode={m.cond_mode!r})")
        if not 0 <= m.transition_start <= m.transition_end:
            raise ValueError("model.transition_start and model.transition_end must satisfy 0 <= start <= end, got "
                             f"{m.transition_start} and {m.transition_end}")
        super().__init__(cfg, num_classes)
        self.next_step = 0
        self._set_lambda()

    @property
    def lam(self) -> float:
        m = self.cfg.model
        return transition(self.next_step, m.transition_start, m.transition_end)

    def _set_lambda(self) -> None:
        for g in (self.G, self.G_ema):
            if g is not None:
                g.net.label_scale = self.lam

    HEAD_NAMES = ("uncond", "cond")  # stats loss_d_uncond, loss_d_cond

    def d_heads(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u, c = self.D.split_logits(self.prepare(self.d_input(x)), y)
        return u.float(), c.float()

    def weigh_heads(self, head_losses: list[torch.Tensor]) -> torch.Tensor:
        loss_u, loss_c = head_losses
        return loss_u + self.lam * loss_c

    def end_iteration(self, step: int, stats: dict[str, float]) -> dict[str, float]:
        out = super().end_iteration(step, stats)
        lam_used = self.lam
        self.next_step = step + 1
        self._set_lambda()
        return {**out, "transition": lam_used}

    def extra_state(self) -> dict:
        return {"next_step": self.next_step}

    def load_extra_state(self, state: dict) -> None:
        self.next_step = int(state.get("next_step", 0))
        self._set_lambda()
