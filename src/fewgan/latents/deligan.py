"""DeLiGAN's learned Gaussian-mixture latent (docs/methods.md §6)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import LATENTS, LatentSampler


class DeLiGANLatent(LatentSampler):
    """DeLiGAN's learned mixture: z = mu_c + sigma_c * eps, eps ~ N(0, I_d), c a component.

    mu ~ U(-1, 1) and sigma = sigma_init (or U(-s, s)) at init, both trained with G; sigma is
    unconstrained as in the released code. The component index travels as the last noise
    column. assign='uniform' draws c uniformly (the paper); 'stratified' gives row i
    component i mod N (the code, where N = batch size).
    """

    def __init__(self, nz: int, components: int = 50, sigma_init: float = 0.2, sigma_uniform: bool = False,
                 lambda_sigma: float = 1 / 3, assign: str = "uniform", trainable: bool = True):
        super().__init__(nz)
        if assign not in ("uniform", "stratified"):
            raise ValueError(f"latent.assign must be uniform or stratified, got {assign!r}")
        self.components, self.assign, self.lambda_sigma = components, assign, lambda_sigma
        self.mu = nn.Parameter(torch.rand(components, nz) * 2 - 1, requires_grad=trainable)
        sigma = (torch.rand(components, nz) * 2 - 1) * sigma_init if sigma_uniform else torch.full((components, nz), sigma_init)
        self.sigma = nn.Parameter(sigma, requires_grad=trainable)

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(n, self.nz, generator=generator)
        if self.assign == "uniform":
            c = torch.randint(self.components, (n,), generator=generator)
        else:
            c = torch.arange(n) % self.components
        return torch.cat([eps, c.unsqueeze(1).to(eps.dtype)], dim=1)

    def forward(self, noise: Tensor) -> Tensor:
        c = noise[:, -1].long()
        return self.mu[c] + self.sigma[c] * noise[:, :-1]

    def penalty(self) -> Tensor | None:
        """lambda_sigma * mean((1 - sigma)^2): keeps the components from shrinking to points."""
        if self.lambda_sigma == 0 or not self.sigma.requires_grad:
            return None
        return self.lambda_sigma * ((1 - self.sigma) ** 2).mean()


@LATENTS.register("deligan")
def _deligan(cfg) -> LatentSampler:
    lc = cfg.latent
    return DeLiGANLatent(cfg.model.nz, lc.components, lc.sigma_init, lc.sigma_init_uniform, lc.lambda_sigma,
                         lc.assign, lc.trainable)
