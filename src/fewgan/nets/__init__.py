"""Network families, by name. Each entry builds (G, D) from a Config.

A new family is a new file plus one `@NETWORKS.register("name")` function here.
"""

from __future__ import annotations

from torch import nn

from ..registry import Registry
from .began import BEGANAutoencoder, BEGANDecoder
from .conditional import CONDITIONAL_NETWORKS
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .fastgan import FastGANGenerator
from .mixnorm import generator_norm
from .mlp import MLPDiscriminator, MLPGenerator

NETWORKS: Registry = Registry("network architecture (model.arch)")


@NETWORKS.register("dcgan")
def _dcgan(cfg, g_in: int, d_channels: int) -> tuple[nn.Module, nn.Module]:
    m, d = cfg.model, cfg.data
    g = DCGANGenerator(m.nz, d.channels, d.resolution, m.g_width, in_features=g_in,
                       norm=generator_norm(m.g_norm, m.mixnorm_k))
    disc = DCGANDiscriminator(d_channels, d.resolution, m.d_width, spectral_norm=m.spectral_norm)
    return g, disc


@NETWORKS.register("fastgan")
def _fastgan(cfg, g_in: int, d_channels: int) -> tuple[nn.Module, nn.Module]:
    # FastGAN-lite G with skip-layer excitation (fastgan.py); D is DCGAN's (train.variant=projected replaces it)
    m, d = cfg.model, cfg.data
    g = FastGANGenerator(m.nz, d.channels, d.resolution, m.g_width, in_features=g_in, sle=m.fastgan_sle)
    disc = DCGANDiscriminator(d_channels, d.resolution, m.d_width, spectral_norm=m.spectral_norm)
    return g, disc


@NETWORKS.register("mlp")
def _mlp(cfg, g_in: int, d_channels: int) -> tuple[nn.Module, nn.Module]:
    m, d = cfg.model, cfg.data
    g = MLPGenerator(m.nz, d.channels, d.resolution, m.g_width, batchnorm=m.mlp_batchnorm, in_features=g_in)
    disc = MLPDiscriminator(d_channels, d.resolution, m.d_width, dropout=m.mlp_dropout,
                            spectral_norm=m.spectral_norm)
    return g, disc


@NETWORKS.register("began")
def _began(cfg, g_in: int, d_channels: int) -> tuple[nn.Module, nn.Module]:
    # an auto-encoder D returns images, not logits: only the began variant can train it
    if cfg.train.variant != "began":
        raise ValueError(f"model.arch=began builds an auto-encoder discriminator, which only "
                         f"train.variant=began can train (got train.variant={cfg.train.variant!r})")
    b, d = cfg.began, cfg.data
    g = BEGANDecoder(g_in, d.channels, d.resolution, b.hidden, b.skip)
    disc = BEGANAutoencoder(d_channels, d.resolution, b.hidden, b.h, b.skip)  # reconstructs its own input
    return g, disc


def build_networks(cfg, g_in: int | None = None, d_channels: int | None = None,
                   num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """(G, D) for cfg.model.arch; g_in: size of the vector G receives (default model.nz);
    d_channels: channels of D's input (default data.channels); num_classes: labels in the data
    (used by the class-conditional nets that model.conditional=true selects, see conditional.py)."""
    if cfg.model.g_norm != "batch" and (cfg.model.arch != "dcgan" or cfg.model.conditional):
        raise ValueError(f"model.g_norm={cfg.model.g_norm!r} is implemented for the unconditional dcgan "
                         f"generator only (got model.arch={cfg.model.arch!r}, conditional={cfg.model.conditional})")
    if cfg.model.conditional:
        return CONDITIONAL_NETWORKS.get(cfg.model.arch)(cfg, g_in or cfg.model.nz, d_channels or cfg.data.channels,
                                                        num_classes)
    return NETWORKS.get(cfg.model.arch)(cfg, g_in or cfg.model.nz, d_channels or cfg.data.channels)
