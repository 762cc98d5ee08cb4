"""Extra loss terms: the generator's (edge loss) and the discriminator's (LeCam, R1).

Each entry of G_REGULARIZERS builds, from a Config, either None (off) or a function
`fn(fake, real) -> scalar tensor`; the standard variant adds weight * fn(...) to G's loss
and logs each term as `reg_<name>`.

D's regularizers act on logits, so they work with every logit loss (BCE, hinge, LSGAN,
minimax): LeCam (Tseng et al. 2021) keeps D's logits near the moving averages of the other
class's logits; lazy R1 (Mescheder et al. 2018; Karras et al. 2020) penalises D's gradient
on real images every few D steps, with Adam's hyper-parameters corrected for the extra step.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
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


# ----------------------------------------------------------------------------- edge loss (docs/methods.md §5)


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


# ----------------------------------------------------------------------------- D regularizers


def lecam_loss(real_logits: Tensor, fake_logits: Tensor, ema_real: float, ema_fake: float) -> Tensor:
    """R_LC = E[relu(D(x) - alpha_F)^2] + E[relu(alpha_R - D(G(z)))^2] (Tseng et al. 2021, eq. 3 as coded)."""
    return (F.relu(real_logits - ema_fake).pow(2).mean() + F.relu(ema_real - fake_logits).pow(2).mean())


class LeCamEMA:
    """alpha_R, alpha_F: EMAs of D's batch-mean real / fake logits, updated before use.

    As in google/lecam-gan's `ema_losses`: before `start` the decay is 0 (the EMA is the current
    batch mean), from `start` on it is `decay`. Plain floats, so checkpoints keep them exactly."""

    def __init__(self, decay: float = 0.99, start: int = 0):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"reg.lecam_decay must lie in [0, 1), got {decay}")
        self.decay, self.start = decay, start
        self.real: float | None = None
        self.fake: float | None = None

    def update(self, real_mean: float, fake_mean: float, step: int) -> None:
        d = self.decay if step >= self.start and self.real is not None else 0.0
        self.real = real_mean if self.real is None else d * self.real + (1 - d) * real_mean
        self.fake = fake_mean if self.fake is None else d * self.fake + (1 - d) * fake_mean

    def state_dict(self) -> dict:
        return {"real": self.real, "fake": self.fake}

    def load_state_dict(self, st: dict) -> None:
        self.real, self.fake = st.get("real"), st.get("fake")


def r1_penalty(x: Tensor, logits: Tensor) -> Tensor:
    """E_real ||grad_x D(x)||^2 (without gamma / 2): x must require grad and logits depend on it.

    create_graph=True so that the penalty's gradient reaches D's weights (double backward)."""
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()


def lazy_adam(lr: float, betas: tuple[float, float], interval: int) -> tuple[float, tuple[float, float]]:
    """Adam's (lr, betas) for a network that also takes a lazy regularisation step every `interval`
    steps: lr * c and beta ** c with c = interval / (interval + 1) (Karras et al. 2020, Appendix B)."""
    c = interval / (interval + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)
