"""DCGAN generator and discriminator (docs/methods.md §1) for any power-of-two resolution >= 8.

G: ConvT(nz -> g*2^(n-1), 4, 1, 0) to 4x4, then n stride-2 ConvT(4, 2, 1) stages halving the
channels, each hidden layer followed by BN + ReLU, Tanh output. D mirrors it: stride-2
Conv(4, 2, 1) stages doubling from d, BN (not on the input layer) + LeakyReLU(0.2), then a
4x4 valid conv to one logit. n = log2(resolution) - 2, so 32 px uses 4g..g, 64 px 8g..g.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import dcgan_init, maybe_sn, num_up_stages


class DCGANGenerator(nn.Module):
    def __init__(self, nz: int = 100, channels: int = 3, resolution: int = 32, width: int = 64,
                 in_features: int | None = None, norm=None):
        """nz: latent size; channels: 1 or 3; width: base channels (ngf);
        in_features: size of the vector G receives if a latent map changes it (default nz);
        norm: (channels, spatial size) -> norm layer for each hidden map (default BatchNorm2d)."""
        super().__init__()
        n = num_up_stages(resolution)
        self.in_features = in_features or nz
        norm = norm or (lambda c, size: nn.BatchNorm2d(c))
        ch = width * 2 ** (n - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(self.in_features, ch, 4, 1, 0, bias=False),
            norm(ch, 4),
            nn.ReLU(True),
        ]
        for s in range(n - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), norm(ch // 2, 8 * 2 ** s), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels: int = 3, resolution: int = 32, width: int = 64, spectral_norm: bool = False):
        """width: base channels (ndf); spectral_norm: SN on every layer and no BN (docs/methods.md §11)."""
        super().__init__()
        n = num_up_stages(resolution)
        ch = width
        layers: list[nn.Module] = [maybe_sn(nn.Conv2d(channels, ch, 4, 2, 1, bias=False), spectral_norm),
                                   nn.LeakyReLU(0.2, True)]
        for _ in range(n - 1):
            layers.append(maybe_sn(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), spectral_norm))
            if not spectral_norm:
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            ch *= 2
        self.features = nn.Sequential(*layers)  # -> (B, ch, 4, 4); conditional heads reuse this
        self.feature_channels = ch
        self.head = maybe_sn(nn.Conv2d(ch, 1, 4, 1, 0, bias=False), spectral_norm)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten()
