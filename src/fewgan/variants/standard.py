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

    def d_step(self, batch: Batch) -> dict[str, float]:
        lc = self.cfg.loss
        self.opt_d.zero_grad(set_to_none=True)
        with self.autocast():
            with torch.no_grad():
                fake = self.G(batch.noise, batch.fake_y)
            real_logits = self.disc(batch.x, batch.y)
            fake_logits = self.disc(fake, batch.fake_y)
        t_real, t_fake = losses.d_targets(len(real_logits), lc.smooth, lc.smooth_alpha, lc.smooth_low,
                                          lc.smooth_high, lc.flip_p, batch.rng)
        loss = losses.d_loss(lc.kind, real_logits, fake_logits, t_real, t_fake)
        loss.backward()
        gn = grad_norm(self.D.parameters())
        self.opt_d.step()
        return {
            "loss_d": loss.item(),
            "d_real": torch.sigmoid(real_logits.detach()).mean().item(),
            "d_fake": torch.sigmoid(fake_logits.detach()).mean().item(),
            "grad_norm_d": gn,
        }

    def g_step(self, batch: Batch) -> dict[str, float]:
        kind = self.cfg.loss.kind
        stats, _ = self.generator_update(batch, lambda fake: losses.g_loss(kind, self.disc(fake, batch.fake_y)))
        return stats
