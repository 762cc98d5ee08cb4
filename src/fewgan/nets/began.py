"""BEGAN networks (docs/methods.md §7) with Yin et al.'s skip connections (docs/methods.md §8).

D is an auto-encoder, encoder -> bottleneck h -> decoder; G has the decoder's architecture
with its own weights. Everything is 3x3 convolutions + ELU, two per block; the encoder
down-samples with stride-2 convolutions and the decoder up-samples by nearest neighbour;
the smallest feature map is 8x8 at every resolution, so a resolution S has
R = log2(S) - 2 blocks (2 at 16 px, 3 at 32, 4 at 64, 5 at 128).

Skip connections (`skip`) are applied in G and the decoder only, never in the encoder:
- `none`: plain blocks, y = f(x) with f = ELU(conv(ELU(conv(x)))).
- `add`: y = x + f(x) (Yin et al.; channels stay n, so no projection is needed).
- `concat`: y = cat[x, f(x)] (2n channels); the conv after each up-sampling (the paper's
  Fig. 1 "up-sampling convolutional layers") and the output conv take 2n -> n.
- `began`: BEGAN's own skip: the first 8x8 map h0 is up-sampled and concatenated to the
  input of every later block, whose first conv then takes 2n -> n.
Weights follow the reference code's TF-slim defaults: Xavier-uniform weights, zero biases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SKIPS = ("none", "add", "concat", "began")


def num_blocks(resolution: int) -> int:
    """R = log2(resolution) - 2 conv blocks, so that the smallest map is 8x8 (32 -> 3, 64 -> 4)."""
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"BEGAN needs a power-of-two resolution >= 8, got {resolution}")
    return resolution.bit_length() - 3


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride, 1)


@torch.no_grad()
def slim_init(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases, as TF-slim layers in carpedm20/BEGAN-tensorflow."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class SkipBlock(nn.Module):
    """Two 3x3 conv + ELU layers, f(x), wrapped by a skip mode: none | add | concat."""

    def __init__(self, c_in: int, c_out: int, skip: str = "none"):
        """c_in / c_out: channels into / out of the two convs; skip: how x joins f(x)."""
        super().__init__()
        if skip not in ("none", "add", "concat"):
            raise ValueError(f"SkipBlock skip must be none, add or concat, got {skip!r}")
        if skip == "add" and c_in != c_out:
            raise ValueError(f"an additive skip needs c_in == c_out, got {c_in} and {c_out}")
        self.skip = skip
        self.conv1, self.conv2 = _conv(c_in, c_out), _conv(c_out, c_out)
        self.out_channels = c_in + c_out if skip == "concat" else c_out

    def forward(self, x: Tensor) -> Tensor:
        f = F.elu(self.conv2(F.elu(self.conv1(x))))
        if self.skip == "add":
            return x + f
        if self.skip == "concat":
            return torch.cat([x, f], dim=1)
        return f


class BEGANDecoder(nn.Module):
    """FC h -> 8x8xn, R blocks of n channels with x2 nearest-neighbour up-sampling between
    them, final 3x3 conv to the image with no activation. Used as G and as D's decoder."""

    def __init__(self, in_features: int, channels: int = 3, resolution: int = 32, n: int = 64,
                 skip: str = "none"):
        """in_features: size of the code (G's latent or D's bottleneck h); channels: 1 or 3;
        n: channels of every block; skip: none | add | concat | began (module docstring)."""
        super().__init__()
        if skip not in SKIPS:
            raise ValueError(f"began.skip must be one of {', '.join(SKIPS)}, got {skip!r}")
        self.n, self.skip, self.in_features = n, skip, in_features
        self.fc = nn.Linear(in_features, 8 * 8 * n)
        blocks, merges = [], []
        for i in range(num_blocks(resolution)):
            if i == 0 or skip in ("none", "add"):
                merges.append(nn.Identity())
                c_in = n
            elif skip == "concat":  # the conv after up-sampling folds cat[x, f(x)] back to n
                merges.append(nn.Sequential(_conv(2 * n, n), nn.ELU()))
                c_in = n
            else:  # began: the block's own first conv takes cat[x, up(h0)]
                merges.append(nn.Identity())
                c_in = 2 * n
            blocks.append(SkipBlock(c_in, n, skip if skip in ("add", "concat") else "none"))
        self.blocks, self.merges = nn.ModuleList(blocks), nn.ModuleList(merges)
        self.out = _conv(blocks[-1].out_channels, channels)
        slim_init(self)

    def forward(self, z: Tensor) -> Tensor:
        x = h0 = self.fc(z.reshape(z.shape[0], -1)).view(-1, self.n, 8, 8)
        for i, (merge, block) in enumerate(zip(self.merges, self.blocks)):
            if i:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
                if self.skip == "began":
                    x = torch.cat([x, F.interpolate(h0, size=x.shape[-2:], mode="nearest")], dim=1)
                x = merge(x)
            x = block(x)
        return self.out(x)


class BEGANEncoder(nn.Module):
    """conv(C -> n), then R blocks of n(i+1) channels, each but the last followed by a
    stride-2 conv; the 8x8xRn map goes through a linear FC to the bottleneck h. No skips."""

    def __init__(self, channels: int = 3, resolution: int = 32, n: int = 64, h: int = 64):
        """channels: 1 or 3; n: base channels; h: bottleneck size."""
        super().__init__()
        r = num_blocks(resolution)
        layers: list[nn.Module] = [_conv(channels, n), nn.ELU()]
        c = n
        for i in range(r):
            width = n * (i + 1)
            layers += [_conv(c, width), nn.ELU(), _conv(width, width), nn.ELU()]
            c = width
            if i < r - 1:
                layers += [_conv(c, c, stride=2), nn.ELU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(8 * 8 * c, h)
        slim_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).flatten(1))


class BEGANAutoencoder(nn.Module):
    """BEGAN's discriminator: D(v) is the reconstruction of v (encoder -> h -> decoder)."""

    def __init__(self, channels: int = 3, resolution: int = 32, n: int = 64, h: int = 64, skip: str = "none"):
        """channels: 1 or 3; n: base channels; h: bottleneck size; skip: the decoder's skip mode."""
        super().__init__()
        self.encoder = BEGANEncoder(channels, resolution, n, h)
        self.decoder = BEGANDecoder(h, channels, resolution, n, skip)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))
