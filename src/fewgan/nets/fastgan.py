"""A FastGAN-lite generator with skip-layer excitation (Liu et al. 2021), at 32 / 64 / 128 px.

After the Projected GAN authors' copy of FastGAN (autonomousvision/projected-gan,
pg_modules/networks_fastgan.py FastganSynthesis with ``lite=True``, and pg_modules/blocks.py):

- z is mapped to the hypersphere (``normalize_second_moment``, as theirs), then InitLayer: SN
  ConvTranspose 4x4 (nz -> 2c, no bias) + BN + GLU to a 4x4 map;
- UpBlockSmall per doubling: nearest x2, SN conv 3x3 (-> 2c, no bias), BN, GLU;
- skip-layer excitation (SEBlock): a channel gate from a low-resolution map onto a map 8x larger:
  ``feat_big * sigmoid(SNconv1x1(swish(SNconv4x4(avgpool4(feat_small)))))``. The authors gate
  64 <- 4, 128 <- 8, 256 <- 16 (x16) at 256+ px; at our sizes a x16 gate would need 64 px and
  leave 32 px without one, so the ratio here is 8: 32 <- 4 at 32 px, plus 64 <- 8 at 64 px, plus
  128 <- 16 at 128 px (one, two, three gates);
- SN conv 3x3 (with bias) to the image, then tanh (ours: fewgan's images live in [-1, 1]; the
  authors' output is unbounded).

Channels: c(s) = width * R / (2 s), capped at 8 * width, for the map of side s in an R px generator
(32 px, width 64: 256, 128, 64, 32 at 4, 8, 16, 32), so the trunk matches DCGAN's at the same
model.g_width; FastGAN's own table (16, 8, 4, 2, 2, 1, 0.5 x ngf from 4 to 256 px) is much wider.
PyTorch's default init (as the authors' code; no DCGAN N(0, 0.02)). Selected by model.arch=fastgan;
``model.fastgan_sle=false`` drops the gates (an ablation).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import maybe_sn, num_up_stages


def _sn(m: nn.Module) -> nn.Module:
    return maybe_sn(m, True)


class GLU(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return a * torch.sigmoid(b)


class SLEBlock(nn.Module):
    """Skip-layer excitation (the authors' SEBlock): gate feat_big's channels from feat_small."""

    def __init__(self, ch_small: int, ch_big: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.AdaptiveAvgPool2d(4),
            _sn(nn.Conv2d(ch_small, ch_big, 4, 1, 0, bias=False)),
            nn.SiLU(),  # Swish
            _sn(nn.Conv2d(ch_big, ch_big, 1, 1, 0, bias=False)),
            nn.Sigmoid(),
        )

    def forward(self, feat_small: Tensor, feat_big: Tensor) -> Tensor:
        return feat_big * self.main(feat_small)


def up_block(cin: int, cout: int) -> nn.Sequential:
    """UpBlockSmall: nearest x2, SN conv 3x3 to 2*cout, BN, GLU."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         _sn(nn.Conv2d(cin, cout * 2, 3, 1, 1, bias=False)), nn.BatchNorm2d(cout * 2), GLU())


SLE_RATIO = 8  # gate a map from the one 8x smaller


class FastGANGenerator(nn.Module):
    def __init__(self, nz: int = 100, channels: int = 3, resolution: int = 32, width: int = 64,
                 in_features: int | None = None, sle: bool = True):
        """nz: latent size; width: base channels (model.g_width); in_features: size of the vector G
        receives (default nz); sle: skip-layer excitation gates (module docstring)."""
        super().__init__()
        n = num_up_stages(resolution)
        self.in_features = in_features or nz
        self.resolution = resolution
        sizes = [4 * 2 ** i for i in range(n + 1)]  # 4, 8, ..., resolution
        ch = {s: max(1, min(8 * width, width * resolution // (2 * s))) for s in sizes}
        self.init = nn.Sequential(_sn(nn.ConvTranspose2d(self.in_features, ch[4] * 2, 4, 1, 0, bias=False)),
                                  nn.BatchNorm2d(ch[4] * 2), GLU())
        self.ups = nn.ModuleDict({str(s): up_block(ch[s // 2], ch[s]) for s in sizes[1:]})
        self.sle = nn.ModuleDict({str(s): SLEBlock(ch[s // SLE_RATIO], ch[s])
                                  for s in sizes if sle and s // SLE_RATIO >= 4})
        self.to_img = _sn(nn.Conv2d(ch[resolution], channels, 3, 1, 1, bias=True))

    def forward(self, z: Tensor) -> Tensor:
        z = z.reshape(z.shape[0], -1)
        z = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()  # normalize_second_moment
        feats = {4: self.init(z.reshape(z.shape[0], -1, 1, 1))}
        h = feats[4]
        for key, up in self.ups.items():
            s = int(key)
            h = up(h)
            if key in self.sle:
                h = self.sle[key](feats[s // SLE_RATIO], h)
            feats[s] = h
        return torch.tanh(self.to_img(h))
