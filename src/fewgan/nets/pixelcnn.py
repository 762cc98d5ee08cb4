"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
Decoders"): the autoregressive teacher of HGAN (docs/methods.md §13).

p(x) = prod over sub-pixels in raster order (row, column, then R, G, B) of a 256-way
softmax. Causality is enforced by two stacks, which together have no blind spot:

* the vertical stack sees every row strictly above the current pixel (its convolutions
  cover rows <= i, and its output is shifted down one row before the horizontal stack
  reads it);
* the horizontal stack sees the pixels to the left in the current row and, through
  channel masks, the earlier colour channels of the current pixel.

Channel masks (mask A / mask B): hidden channels are split into C contiguous groups, one
per colour channel. At the current pixel, output group g may read input group g' only if
g' < g (mask A, first layer: the image itself) or g' <= g (mask B, every later layer).
Everything strictly before the current pixel is read without masks. So the logits of
sub-pixel (i, j, c) depend on exactly the sub-pixels before it in raster order
(tested in tests/test_hgan.py by perturbation and by gradients).

Sized for CPU by default (6 layers x 48 channels); the literature's CIFAR-10 model is
15+ layers x 128+ channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def channel_groups(n: int, groups: int) -> Tensor:
    """Group index (colour channel) of each of n channels: contiguous blocks of n / groups."""
    if n % groups:
        raise ValueError(f"{n} channels cannot be split into {groups} colour groups; use a multiple of {groups}")
    return torch.arange(n) * groups // n


class MaskedConv2d(nn.Module):
    """A convolution whose weights at the *current pixel* are masked by colour group.

    kind "v": kernel (k//2 + 1, k) over rows <= i (no mask; the caller shifts its output down);
    kind "h": kernel (1, k//2 + 1) over columns <= j of row i, current pixel masked ("A" or "B");
    kind "1x1": a 1x1 conv at the current pixel, masked ("A", "B") or unmasked (mask=None).
    """

    def __init__(self, cin: int, cout: int, k: int, kind: str, mask: str | None,
                 in_groups: Tensor, out_groups: Tensor):
        """cin/cout: channels; k: nominal (odd) kernel size; kind: v | h | 1x1;
        mask: A | B | None (at the current pixel); in_groups/out_groups: colour group per channel."""
        super().__init__()
        if kind == "v":
            kh, kw, self.pad = k // 2 + 1, k, (k // 2, k // 2, k // 2, 0)  # (left, right, top, bottom)
        elif kind == "h":
            kh, kw, self.pad = 1, k // 2 + 1, (k // 2, 0, 0, 0)
        elif kind == "1x1":
            kh, kw, self.pad = 1, 1, (0, 0, 0, 0)
        else:
            raise ValueError(f"unknown masked conv kind {kind!r}")
        self.weight = nn.Parameter(torch.empty(cout, cin, kh, kw))
        self.bias = nn.Parameter(torch.zeros(cout))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default init
        m = torch.ones(cout, cin, kh, kw)
        if kind in ("h", "1x1") and mask is not None:
            # the current pixel is the last column of the kernel
            allowed = (in_groups[None, :] < out_groups[:, None]) if mask == "A" else \
                      (in_groups[None, :] <= out_groups[:, None])
            m[:, :, 0, -1] = allowed.float()
        self.register_buffer("mask", m, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, self.pad), self.weight * self.mask, self.bias)


def shift_down(x: Tensor) -> Tensor:
    """Move a map one row down (zeros enter at the top), so row i holds what row i-1 held."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


def gate(x: Tensor) -> Tensor:
    """tanh(a) * sigmoid(b) for x = [a, b] split along channels."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated layer with a vertical and a horizontal stack (van den Oord et al. 2016, Fig. 2)."""

    def __init__(self, cin: int, hidden: int, k: int, first: bool, colours: int):
        """cin: input channels (the image's for the first layer); hidden: channels per stack;
        k: kernel size; first: mask A and no residual; colours: image channels (1 or 3)."""
        super().__init__()
        self.first = first
        g_in = torch.arange(cin) if first else channel_groups(cin, colours)
        g_h = channel_groups(hidden, colours)
        g_2h = torch.cat([g_h, g_h])  # tanh half and sigmoid half carry the same groups
        mask = "A" if first else "B"
        self.v = MaskedConv2d(cin, 2 * hidden, k, "v", None, g_in, g_2h)
        self.h = MaskedConv2d(cin, 2 * hidden, k, "h", mask, g_in, g_2h)
        # the vertical stack's features only hold rows above, so this link needs no mask
        self.v2h = MaskedConv2d(2 * hidden, 2 * hidden, 1, "1x1", None, g_2h, g_2h)
        self.h_out = MaskedConv2d(hidden, hidden, 1, "1x1", "B", g_h, g_h)

    def forward(self, v: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        v_pre = self.v(v)
        h_pre = self.h(h) + self.v2h(shift_down(v_pre))
        h_new = self.h_out(gate(h_pre))
        # the first layer's input is the image itself: a residual would leak the current pixel
        return gate(v_pre), (h_new if self.first else h + h_new)


class GatedPixelCNN(nn.Module):
    """Unconditional Gated PixelCNN over uint8 images with a 256-way softmax per sub-pixel.

    forward(x) takes images in [-1, 1] (B, C, H, W) and returns logits (B, C, 256, H, W);
    `hidden(x)` returns the last horizontal-stack map (B, hidden, H, W) that HGAN's
    distillation discriminator reads.
    """

    def __init__(self, channels: int = 3, hidden: int = 48, layers: int = 6, kernel: int = 3,
                 first_kernel: int = 7):
        """channels: image channels (1 or 3); hidden: channels per stack (a multiple of `channels`);
        layers: gated layers after the first (mask A) one; kernel / first_kernel: odd kernel sizes."""
        super().__init__()
        if kernel % 2 == 0 or first_kernel % 2 == 0:
            raise ValueError(f"kernel sizes must be odd, got {kernel} and {first_kernel}")
        channel_groups(hidden, channels)  # validates divisibility with a clear message
        self.arch = {"channels": channels, "hidden": hidden, "layers": layers, "kernel": kernel,
                     "first_kernel": first_kernel}
        self.channels = channels
        self.layers = nn.ModuleList([GatedLayer(channels, hidden, first_kernel, True, channels)] +
                                    [GatedLayer(hidden, hidden, kernel, False, channels) for _ in range(layers)])
        g_h = channel_groups(hidden, channels)
        g_out = channel_groups(256 * channels, channels)  # logits of colour c are block c
        self.head1 = MaskedConv2d(hidden, hidden, 1, "1x1", "B", g_h, g_h)
        self.head2 = MaskedConv2d(hidden, 256 * channels, 1, "1x1", "B", g_h, g_out)

    def hidden(self, x: Tensor) -> Tensor:
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h)
        return h

    def logits_from_hidden(self, h: Tensor) -> Tensor:
        out = self.head2(F.relu(self.head1(F.relu(h))))
        b, _, hh, ww = out.shape
        return out.view(b, self.channels, 256, hh, ww)

    def forward(self, x: Tensor) -> Tensor:
        return self.logits_from_hidden(self.hidden(x))


# ----------------------------------------------------------------------------- likelihoods (pure)


def nll_discrete(logits: Tensor, x_uint8: Tensor) -> Tensor:
    """Mean negative log-likelihood in nats per sub-pixel of uint8 images under the logits."""
    return F.cross_entropy(logits.float().permute(0, 2, 1, 3, 4), x_uint8.long())


def nll_soft(logits: Tensor, x: Tensor) -> Tensor:
    """A differentiable NLL (nats per sub-pixel) for continuous images x in [-1, 1].

    A value v in [0, 255] between bins b = floor(v) and b + 1 is scored as
    -((1 - f) log p_b + f log p_{b+1}), f = v - b: it equals the discrete NLL on integer
    values and is piecewise linear in v in between, so gradients reach x both through the
    interpolation weight and through the teacher's conditioning on x (our design, so that
    HGAN's lambda_nll term exists for a 256-way softmax teacher).
    """
    logp = F.log_softmax(logits.float(), dim=2)  # (B, C, 256, H, W)
    v = ((x.float() + 1.0) * 127.5).clamp(0.0, 255.0)
    lo = v.detach().floor().clamp(max=254.0)
    f = v - lo
    lo = lo.long().unsqueeze(2)
    lp_lo = logp.gather(2, lo).squeeze(2)
    lp_hi = logp.gather(2, lo + 1).squeeze(2)
    return -((1.0 - f) * lp_lo + f * lp_hi).mean()


def bits_per_dim(nats_per_subpixel: float) -> float:
    return nats_per_subpixel / math.log(2.0)


@torch.no_grad()
def sample(net: GatedPixelCNN, n: int, resolution: int, generator: torch.Generator | None = None,
           temperature: float = 1.0) -> Tensor:
    """n images (uint8, (n, C, H, W)) drawn sub-pixel by sub-pixel: H * W * C forward passes.

    Row i only depends on rows <= i (vertical convolutions pad at the top only), so each pass
    runs on the rows filled so far: about half the work of full-image passes.
    """
    was_training = net.training
    net.eval()
    c = net.channels
    device = next(net.parameters()).device
    x = torch.zeros(n, c, resolution, resolution, device=device)
    out = torch.zeros(n, c, resolution, resolution, dtype=torch.uint8)
    try:
        for i in range(resolution):
            for j in range(resolution):
                for ch in range(c):
                    logits = net(x[:, :, :i + 1])[:, ch, :, i, j].float() / max(temperature, 1e-6)
                    # drawn on the CPU generator whatever the net's device (the same draws everywhere)
                    probs = torch.softmax(logits, dim=1).cpu()
                    v = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                    out[:, ch, i, j] = v.to(torch.uint8)
                    x[:, ch, i, j] = (v.float() / 127.5 - 1.0).to(device)
    finally:
        net.train(was_training)
    return out
