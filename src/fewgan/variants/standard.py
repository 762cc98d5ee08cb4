"""The standard GAN step: a logit discriminator trained against G with one of the losses
in fewgan.losses, label smoothing / flipping for D, any G:D ratio (the loop's schedule).
Used by DCGAN, MLP GAN, SNGAN and, through their latent samplers, CFT / MR / DeLiGAN.
"""

from __future__ import annotations

import torch

from .. import losses
from ..latents import build_latent, latent_out_features
from ..nets import build_networks
from ..regularizers import build_g_regularizers, lecam_loss, r1_penalty, sobel_edges
from .base import VARIANTS, Batch, GeneratorPipeline, Variant


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
        self.opt_d = self.adam_d(self.D.parameters())
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
        lc, rc = self.cfg.loss, self.cfg.reg
        self.opt_d.zero_grad(set_to_none=True)
        with self.autocast():
            with torch.no_grad():
                fake = self.G(batch.noise, batch.fake_y)
            # APA: some reals replaced by detached fakes, still labelled real
            real, real_y = self.aug.pseudo_reals(batch.x, fake, batch.aug_rng, batch.y, batch.fake_y)
            # every D input is augmented, reals and fakes alike, each with its own draws
            real_heads = self.d_heads(self.augment(real, batch), real_y)
            fake_heads = self.d_heads(self.augment(fake, batch), batch.fake_y)
        t_real, t_fake = losses.d_targets(len(real_heads[0]), lc.smooth, lc.smooth_alpha, lc.smooth_low,
                                          lc.smooth_high, lc.flip_p, batch.rng)  # drawn on the CPU
        t_real, t_fake = t_real.to(real_heads[0].device), t_fake.to(real_heads[0].device)
        head_losses = [losses.d_loss(lc.kind, r, f, t_real, t_fake) for r, f in zip(real_heads, fake_heads)]
        adv = self.weigh_heads(head_losses)
        # tensors, not floats: the loop brings a step's numbers to the host in one transfer (devices.to_host)
        loss, stats = adv, {"loss_d": adv.detach()}
        if self.lecam is not None:  # on the first (unconditional) head's logits
            r, f = real_heads[0], fake_heads[0]
            # the EMAs are floats the next line needs now: one transfer for both
            r_mean, f_mean = torch.stack([r.detach().mean(), f.detach().mean()]).tolist()
            self.lecam.update(r_mean, f_mean, batch.step)
            if batch.step >= rc.lecam_start:
                reg = lecam_loss(r, f, self.lecam.real, self.lecam.fake)
                loss = loss + rc.lecam_weight * reg
                stats["reg_lecam"] = reg.detach()
        gn = self.optimize(loss, "opt_d", self.D.parameters())
        self.aug.observe(real_heads[0], n_images=len(batch.x))
        self.d_count += 1
        if len(head_losses) > 1:
            stats.update({f"loss_d_{name}": hl.detach() for name, hl in zip(self.HEAD_NAMES, head_losses)})
        stats.update({
            "d_real": torch.sigmoid(real_heads[0].detach()).mean(),
            "d_fake": torch.sigmoid(fake_heads[0].detach()).mean(),
            "grad_norm_d": gn,
        })
        if rc.r1_gamma > 0 and self.d_count % rc.r1_interval == 0:
            stats.update(self.r1_step(batch))
        return stats

    def r1_step(self, batch: Batch) -> dict[str, float]:
        """Lazy R1 (its own D update, as stylegan2-ada's Dreg phase): gamma/2 * E||grad_x D(aug(x))||^2
        on the un-augmented reals, times the interval; in fp32 (double backward)."""
        rc = self.cfg.reg
        self.opt_d.zero_grad(set_to_none=True)
        x = batch.x.detach().requires_grad_(True)
        pen = r1_penalty(x, self.d_heads(self.augment(x, batch), batch.y)[0])
        self.optimize(pen * (rc.r1_gamma / 2) * rc.r1_interval, "opt_d")
        return {"reg_r1": pen.detach()}

    def g_step(self, batch: Batch) -> dict[str, float]:
        kind = self.cfg.loss.kind

        def adversarial(fake):
            heads = self.d_heads(self.augment(fake, batch), batch.fake_y)
            return self.weigh_heads([losses.g_loss(kind, h) for h in heads])

        stats, _ = self.generator_update(batch, adversarial)
        return stats
