"""HGAN's distillation discriminator D_T (docs/methods.md §13), trained by fewgan.variants.hgan."""

from __future__ import annotations

from torch import Tensor, nn

from .layers import maybe_sn


class DistillationDiscriminator(nn.Module):
    """D_T: three stride-2 SN convs (w, 2w, 4w; LeakyReLU 0.2), then an SN conv over the
    remaining resolution/8 map to one logit."""

    def __init__(self, in_channels: int, resolution: int, width: int = 64):
        """in_channels: channels of the map it reads (teacher hidden or image); resolution: its size
        (a multiple of 8); width: channels of the first conv."""
        super().__init__()
        if resolution % 8 or resolution < 8:
            raise ValueError(f"D_T needs a resolution that is a multiple of 8, got {resolution}")
        layers: list[nn.Module] = []
        ch = in_channels
        for i in range(3):
            out = width * 2 ** i
            layers += [maybe_sn(nn.Conv2d(ch, out, 4, 2, 1), True), nn.LeakyReLU(0.2, True)]
            ch = out
        self.features = nn.Sequential(*layers)
        self.head = maybe_sn(nn.Conv2d(ch, 1, resolution // 8, 1, 0), True)

    def forward(self, h: Tensor) -> Tensor:
        return self.head(self.features(h)).flatten()
