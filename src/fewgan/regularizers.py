"""Extra terms of the generator's loss, as pure functions of (fake, real) image batches.

Each entry of G_REGULARIZERS builds, from a Config, either None (off) or a function
`fn(fake, real) -> scalar tensor`; the standard variant adds weight * fn(...) to G's loss
and logs each term as `reg_<name>`.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from .registry import Registry

G_REGULARIZERS: Registry = Registry("generator regularizer")


def build_g_regularizers(cfg) -> list[tuple[str, float, Callable[[Tensor, Tensor], Tensor]]]:
    out = []
    for name in G_REGULARIZERS.names():
        built = G_REGULARIZERS.get(name)(cfg)
        if built is not None:
            weight, fn = built
            out.append((name, weight, fn))
    return out


# ----------------------------------------------------------------------------- edge loss (METHODS §5)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

_KX = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_LUMA = (0.299, 0.587, 0.114)


def sobel_edges(x: Tensor) -> Tensor:
    """Sobel gradient magnitude of the luminance: (B, C, H, W) in [-1, 1] -> (B, 1, H, W).

    Luminance 0.299R + 0.587G + 0.114B (grey images are used as they are), replicate
    padding, sqrt(gx^2 + gy^2 + 1e-6) so the gradient is finite on flat regions.
    """
    if x.shape[1] == 3:
        w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * w).sum(1, keepdim=True)
    elif x.shape[1] != 1:
        x = x.mean(1, keepdim=True)
    k = torch.stack([_KX, _KX.t()]).unsqueeze(1).to(x.dtype).to(x.device)  # (2, 1, 3, 3)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)
    return torch.sqrt(g[:, :1] ** 2 + g[:, 1:] ** 2 + 1e-6)


def edge_loss_batch(fake: Tensor, real: Tensor) -> Tensor:
    """Recommended form: match per-pixel batch mean and std of the edge maps.

    L = mean_pix(mu_B E(G(z)) - mu_B E(x))^2 + mean_pix(s_B E(G(z)) - s_B E(x))^2.
    Unpaired batches are compared only through their statistics, so the minimum is not
    the blurry mean image that a paired pixel loss would pull G toward.
    """
    ef, er = sobel_edges(fake), sobel_edges(real)
    return ((ef.mean(0) - er.mean(0)) ** 2).mean() + ((ef.std(0) - er.std(0)) ** 2).mean()


def edge_loss_literal(fake: Tensor, real: Tensor) -> Tensor:
    """Song & Kim's eq. 3 as written: sum (G(z) - x)^2 over raw pixels of index-paired, unrelated
    images (averaged here, so the weight does not scale with the image size). Kept only to
    reproduce the paper: it does not involve D, and its minimiser is G(z) = E[x] for all z."""
    n = min(len(fake), len(real))
    return ((fake[:n] - real[:n]) ** 2).mean()


@G_REGULARIZERS.register("edge")
def _edge(cfg):
    r = cfg.reg
    if r.edge_weight == 0:
        return None
    fns = {"batch": edge_loss_batch, "literal": edge_loss_literal}
    if r.edge_mode not in fns:
        raise ValueError(f"reg.edge_mode must be one of {', '.join(fns)}, got {r.edge_mode!r}")
    return r.edge_weight, fns[r.edge_mode]
