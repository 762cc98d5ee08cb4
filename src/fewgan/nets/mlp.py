"""MLP GAN (docs/methods.md §2): the weakest baseline of the dog-image study.

G: z -> 256 -> 512 -> 1024 -> C*H*W, LeakyReLU(0.2) (optional BN on hidden layers), Tanh.
D: C*H*W -> 1024 -> 512 -> 256 -> 1, LeakyReLU(0.2), Dropout(0.3). `width` scales the
hidden sizes (64 gives the sizes above).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import dcgan_init, maybe_sn


class MLPGenerator(nn.Module):
    def __init__(self, nz: int = 100, channels: int = 3, resolution: int = 32, width: int = 64,
                 batchnorm: bool = False, in_features: int | None = None):
        super().__init__()
        self.shape = (channels, resolution, resolution)
        self.in_features = in_features or nz
        sizes = [self.in_features] + [width * m for m in (4, 8, 16)]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers.append(nn.Linear(a, b))
            if batchnorm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(nn.LeakyReLU(0.2, True))
        layers += [nn.Linear(sizes[-1], channels * resolution * resolution), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(z.shape[0], -1)).view(z.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, channels: int = 3, resolution: int = 32, width: int = 64, dropout: float = 0.3,
                 spectral_norm: bool = False):
        super().__init__()
        sizes = [channels * resolution * resolution] + [width * m for m in (16, 8, 4)]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [maybe_sn(nn.Linear(a, b), spectral_norm), nn.LeakyReLU(0.2, True), nn.Dropout(dropout)]
        self.features = nn.Sequential(*layers)
        self.head = maybe_sn(nn.Linear(sizes[-1], 1), spectral_norm)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.flatten(1))).flatten()
