"""The standard GAN step: a logit discriminator trained against G with one of the losses
in fewgan.losses, label smoothing / flipping for D, any G:D ratio (the loop's schedule).
Used by DCGAN, MLP GAN, SNGAN and, through their latent samplers, CFT / MR / DeLiGAN.
"""

from __future__ import annotations

import torch

from .. import losses
from ..latent import build_latent, latent_out_features
from ..nets import build_networks
from ..regularizers import build_g_regularizers, sobel_edges
from .base import VARIANTS, Batch, GeneratorPipeline, Variant, grad_norm


@VARIANTS.register("standard")
class StandardGAN(Variant):
    def __init__(self, cfg, num_classes: int = 0):
        super().__init__(cfg, num_classes)
        t = cfg.train
        # networks first so that their RNG-driven initialisation does not depend on the sampler
        # with reg.edge_d_input D sees one extra channel: the Sobel edge map
        d_channels = cfg.data.channels + (1 if cfg.reg.edge_d_input else 0)
        g_net, self.D = build_networks(cfg, latent_out_features(cfg), d_channels=d_channels, num_classes=num_classes)
        self.G = GeneratorPipeline(build_latent(cfg), g_net)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=t.lr_g, betas=(t.beta1_g, t.beta2_g))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=t.lr_d, betas=(t.beta1_d, t.beta2_d))
        self.g_regularizers = build_g_regularizers(cfg)  # extra G loss terms: [(name, weight, fn)]
        self._finish_setup()

    def d_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.reg.edge_d_input:
            # Sobel magnitudes of [-1, 1] images lie in [0, ~11]; /4 - 1 puts typical edges near [-1, 1]
            return torch.cat([x, (sobel_edges(x.float()) / 4 - 1).to(x.dtype)], dim=1)
        return x

    def disc(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """D's logits for images x (labels y are used only by a conditional D)."""
        x = self.prepare(self.d_input(x))
        return (self.D(x, y) if getattr(self.D, "conditional", False) else self.D(x)).float()

    # D's logit heads. The standard D has one; a variant with several (transitional cGAN: an
    # unconditional and a conditional logit on one trunk) overrides these three, and the D and
    # G steps below weigh the per-head losses with `weigh_heads`.
    HEAD_NAMES: tuple[str, ...] = ("",)

    def d_heads(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """D's logits for images x, one tensor per head; the first drives the d_real / d_fake stats."""
        return (self.disc(x, y),)

    def weigh_heads(self, head_losses: list[torch.Tensor]) -> torch.Tensor:
        """The adversarial loss from one loss per head."""
        (loss,) = head_losses
        return loss

    def d_step(self, batch: Batch) -> dict[str, float]:
        lc = self.cfg.loss
        self.opt_d.zero_grad(set_to_none=True)
        with self.autocast():
            with torch.no_grad():
                fake = self.G(batch.noise, batch.fake_y)
            real_heads = self.d_heads(batch.x, batch.y)
            fake_heads = self.d_heads(fake, batch.fake_y)
        t_real, t_fake = losses.d_targets(len(real_heads[0]), lc.smooth, lc.smooth_alpha, lc.smooth_low,
                                          lc.smooth_high, lc.flip_p, batch.rng)
        head_losses = [losses.d_loss(lc.kind, r, f, t_real, t_fake) for r, f in zip(real_heads, fake_heads)]
        loss = self.weigh_heads(head_losses)
        loss.backward()
        gn = grad_norm(self.D.parameters())
        self.opt_d.step()
        stats = {"loss_d": loss.item()}
        if len(head_losses) > 1:
            stats.update({f"loss_d_{name}": hl.item() for name, hl in zip(self.HEAD_NAMES, head_losses)})
        return {
            **stats,
            "d_real": torch.sigmoid(real_heads[0].detach()).mean().item(),
            "d_fake": torch.sigmoid(fake_heads[0].detach()).mean().item(),
            "grad_norm_d": gn,
        }

    def g_step(self, batch: Batch) -> dict[str, float]:
        kind = self.cfg.loss.kind

        def adversarial(fake):
            return self.weigh_heads([losses.g_loss(kind, h) for h in self.d_heads(fake, batch.fake_y)])

        stats, _ = self.generator_update(batch, adversarial)
        return stats
