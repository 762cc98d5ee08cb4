"""Class-conditional DCGAN (docs/methods.md §12): a label-embedding generator and a projection
(or concatenation) discriminator.

G: cat[z, Emb_G(y)] feeds the first ConvT, so G64 takes nz + 128 inputs.
D, `projection` (Miyato & Koyama 2018): phi(x) = sum-pooled last feature map of the DCGAN
trunk; logit = w^T phi + b + Emb_D(y)^T phi. With spectral_norm the linear layer and the
embedding are normalised too, so the whole D stays 1-Lipschitz in phi.
D, `concat` (the reference conditional DCGAN): the one-hot label, tiled to H x W, is
appended to the image as K extra input channels; the unconditional DCGAN head follows.
Meant for few classes (K <= 10): the input layer grows by K channels.

Both networks carry `conditional = True`, which is how GeneratorPipeline and
StandardGAN.disc know to pass labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import Registry
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .layers import maybe_sn

COND_MODES = ("projection", "concat")

# conditional network families by model.arch (used when model.conditional is true)
CONDITIONAL_NETWORKS: Registry = Registry("conditional network architecture (model.arch with model.conditional)")


def _check_labels(y: torch.Tensor | None, num_classes: int, who: str) -> torch.Tensor:
    if y is None:
        raise ValueError(f"{who} is class-conditional and needs labels y (model.conditional=true)")
    if y.dim() != 1:
        raise ValueError(f"{who}: labels must be a 1-D tensor of class indices, got shape {tuple(y.shape)}")
    return y.long()


class ConditionalDCGANGenerator(nn.Module):
    conditional = True

    def __init__(self, num_classes: int, nz: int = 100, channels: int = 3, resolution: int = 32, width: int = 64,
                 in_features: int | None = None, embed_dim: int = 128):
        """num_classes: K labels 0..K-1; nz, channels, resolution, width: as DCGANGenerator;
        in_features: size of the latent vector G receives (default nz); embed_dim: size of Emb_G(y)."""
        super().__init__()
        if num_classes < 1:
            raise ValueError("a conditional generator needs labelled data (num_classes >= 1)")
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)
        z_dim = in_features or nz
        self.body = DCGANGenerator(nz, channels, resolution, width, in_features=z_dim + embed_dim)
        # weight of the label embedding in G's input: 1 for a plain conditional G; the transitional
        # variant ramps it from 0 (G unconditional) to 1 (Shahbazi et al. 2022)
        self.label_scale = 1.0

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        y = _check_labels(y, self.num_classes, "the generator")
        e = self.embed(y).to(z.dtype)
        if self.label_scale != 1.0:
            e = e * self.label_scale
        return self.body(torch.cat([z.reshape(z.shape[0], -1), e], dim=1))


class ConditionalDCGANDiscriminator(nn.Module):
    conditional = True

    def __init__(self, num_classes: int, channels: int = 3, resolution: int = 32, width: int = 64,
                 spectral_norm: bool = False, mode: str = "projection"):
        """num_classes: K labels; channels, resolution, width: as DCGANDiscriminator;
        spectral_norm: SN on every layer incl. the projection embedding (docs/methods.md §11);
        mode: projection (sum-pooled features . Emb_D(y)) | concat (one-hot maps as input channels)."""
        super().__init__()
        if mode not in COND_MODES:
            raise ValueError(f"model.cond_mode={mode!r}; valid: {', '.join(COND_MODES)}")
        if num_classes < 1:
            raise ValueError("a conditional discriminator needs labelled data (num_classes >= 1)")
        self.num_classes, self.mode = num_classes, mode
        extra = num_classes if mode == "concat" else 0
        self.trunk = DCGANDiscriminator(channels + extra, resolution, width, spectral_norm=spectral_norm)
        if mode == "projection":
            ch = self.trunk.feature_channels
            del self.trunk.head  # the 4x4 conv head is replaced by the linear + projection terms
            self.linear = maybe_sn(nn.Linear(ch, 1), spectral_norm)
            self.embed = maybe_sn(nn.Embedding(num_classes, ch), spectral_norm)
            with torch.no_grad():  # DCGAN-style N(0, 0.02) init, on the raw weight when SN wraps it
                for m in (self.linear, self.embed):
                    w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
                    nn.init.normal_(w, 0.0, 0.02)
                nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        y = _check_labels(y, self.num_classes, "the discriminator")
        if self.mode == "concat":
            maps = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
            return self.trunk(torch.cat([x, maps], dim=1))
        uncond, cond = self.split_logits(x, y)
        return (uncond + cond).flatten()

    def split_logits(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Projection mode: the unconditional logit w^T phi + b and the projection term
        Emb_D(y)^T phi, separately (their sum is the projection D's logit), each of shape (B,)."""
        if self.mode != "projection":
            raise ValueError("split_logits needs model.cond_mode=projection")
        y = _check_labels(y, self.num_classes, "the discriminator")
        phi = self.trunk.features(x).sum(dim=(2, 3))  # (B, ch): sum pooling, as in the projection paper
        return self.linear(phi).squeeze(1), (self.embed(y).to(phi.dtype) * phi).sum(dim=1)


@CONDITIONAL_NETWORKS.register("dcgan")
def _conditional_dcgan(cfg, g_in: int, d_channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    m, d = cfg.model, cfg.data
    if num_classes < 1:
        raise ValueError(f"model.conditional=true needs labelled data, but {d.source} has no labels "
                         "(an .npz with 'y', or a folder with one sub-folder per class)")
    g = ConditionalDCGANGenerator(num_classes, m.nz, d.channels, d.resolution, m.g_width, in_features=g_in,
                                  embed_dim=m.cond_embed)
    disc = ConditionalDCGANDiscriminator(num_classes, d_channels, d.resolution, m.d_width,
                                         spectral_norm=m.spectral_norm, mode=m.cond_mode)
    return g, disc
