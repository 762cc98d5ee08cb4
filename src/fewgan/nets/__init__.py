"""Network families, by name. Each entry builds (G, D) from a Config.

A new family is a new file plus one `@NETWORKS.register("name")` function here.
"""

from __future__ import annotations

from torch import nn

from ..registry import Registry
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .mlp import MLPDiscriminator, MLPGenerator

NETWORKS: Registry = Registry("network architecture (model.arch)")


@NETWORKS.register("dcgan")
def _dcgan(cfg, g_in: int) -> tuple[nn.Module, nn.Module]:
    m, d = cfg.model, cfg.data
    g = DCGANGenerator(m.nz, d.channels, d.resolution, m.g_width, in_features=g_in)
    disc = DCGANDiscriminator(d.channels, d.resolution, m.d_width, spectral_norm=m.spectral_norm)
    return g, disc


@NETWORKS.register("mlp")
def _mlp(cfg, g_in: int) -> tuple[nn.Module, nn.Module]:
    m, d = cfg.model, cfg.data
    g = MLPGenerator(m.nz, d.channels, d.resolution, m.g_width, batchnorm=m.mlp_batchnorm, in_features=g_in)
    disc = MLPDiscriminator(d.channels, d.resolution, m.d_width, dropout=m.mlp_dropout,
                            spectral_norm=m.spectral_norm)
    return g, disc


def build_networks(cfg, g_in: int | None = None) -> tuple[nn.Module, nn.Module]:
    """(G, D) for cfg.model.arch; g_in is the size of the vector G receives (default model.nz)."""
    return NETWORKS.get(cfg.model.arch)(cfg, g_in or cfg.model.nz)
