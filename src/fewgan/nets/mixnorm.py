"""Mixture Normalisation (Kalayeh & Shah, arXiv 1806.02892; docs/methods.md §14).

Batch normalisation assumes one Gaussian per channel; Mixture Normalisation fits a small
Gaussian mixture to the activations and normalises each sample with the statistics of
the components it belongs to (soft, by posterior). With K = 1 it is exactly BatchNorm2d.

Per forward pass in training mode (x: (B, C, H, W); every spatial position is a sample
x_j in R^C, j over B*H*W):

1. Under no_grad, fit a diagonal GMM (priors lambda_k, means mu_k, variances s2_k) by EM,
   warm-started from the previous step's fit (first step: an even split along the
   principal axis), on at most `em_samples` positions; then compute posteriors tau_jk
   of all positions (E step).
2. With gradients (as in BN): per component, m_k = sum_j tau_jk x_j / sum_j tau_jk and
   v_k = sum_j tau_jk (x_j - m_k)^2 / sum_j tau_jk; lambda_k = mean_j tau_jk.
3. x_hat_j = sum_k tau_jk / sqrt(lambda_k) * (x_j - m_k) / sqrt(v_k + eps), then
   y = gamma * x_hat + beta per channel.

The 1/sqrt(lambda_k) factor is the one in docs/methods.md §14 (recalled from the paper, whose
equations we could not read: docs/hgan-sources.md); `prior_scale=False` drops it.
Eval mode uses exponential moving averages (momentum 0.1, like BN) of the GMM and of
m_k, v_k (unbiased, like BN's running_var), lambda_k.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

_LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------- pure GMM math


def gmm_log_resp(x: Tensor, prior: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """log posteriors log tau (N, K) of a diagonal GMM for samples x (N, C)."""
    # log N(x | mu_k, diag s2_k) summed over channels, plus log lambda_k
    diff2 = (x[:, None, :] - mean[None]) ** 2 / var[None]  # (N, K, C)
    log_p = -0.5 * (diff2 + var.log()[None] + _LOG_2PI).sum(-1) + prior.log()[None]
    return log_p - torch.logsumexp(log_p, dim=1, keepdim=True)


def gmm_m_step(x: Tensor, resp: Tensor, var_floor: float) -> tuple[Tensor, Tensor, Tensor]:
    """(prior (K,), mean (K, C), var (K, C)) maximising the expected log-likelihood given resp (N, K)."""
    nk = resp.sum(0) + 1e-8
    mean = resp.T @ x / nk[:, None]
    var = (resp.T @ (x * x)) / nk[:, None] - mean * mean
    return nk / len(x), mean, var.clamp_min(var_floor)


def principal_split_init(x: Tensor, k: int, var_floor: float) -> tuple[Tensor, Tensor, Tensor]:
    """A deterministic GMM start: sort samples along the top principal direction, cut into k equal parts.

    (Our choice instead of k-means++: it needs no random numbers, so it cannot shift the
    training RNG, and it starts components on the data's main mode of variation.)
    """
    xc = x - x.mean(0)
    v = torch.ones(x.shape[1], dtype=x.dtype, device=x.device) / math.sqrt(x.shape[1])
    for _ in range(10):  # power iteration on the covariance
        v = xc.T @ (xc @ v)
        v = v / v.norm().clamp_min(1e-12)
    order = (xc @ v).argsort()
    resp = torch.zeros(len(x), k, dtype=x.dtype, device=x.device)
    for i, chunk in enumerate(order.chunk(k)):
        resp[chunk, i] = 1.0
    return gmm_m_step(x, resp, var_floor)


def mixture_normalize(x: Tensor, tau: Tensor, eps: float, prior_scale: bool = True
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The mixture normalising transform of samples x (N, C) with fixed posteriors tau (N, K).

    Returns (x_hat (N, C), m (K, C), v (K, C) biased, lambda (K,)); gradients flow through
    m and v as in batch normalisation. With K = 1 this is exactly BN's (x - mean) / sqrt(var + eps).
    """
    nk = tau.sum(0) + 1e-8  # (K,)
    m = tau.T @ x / nk[:, None]  # (K, C)
    out = torch.zeros_like(x)
    v_all = []
    for k in range(tau.shape[1]):
        d = x - m[k]
        v = (tau[:, k:k + 1] * d * d).sum(0) / nk[k]
        v_all.append(v)
        w = tau[:, k:k + 1] / nk[k].div(len(x)).sqrt() if prior_scale else tau[:, k:k + 1]
        out = out + w * d / (v + eps).sqrt()
    return out, m, torch.stack(v_all), nk / len(x)


# ----------------------------------------------------------------------------- the layer


class MixtureNorm2d(nn.Module):
    def __init__(self, num_features: int, k: int = 3, eps: float = 1e-5, momentum: float = 0.1,
                 em_iters: int = 2, em_samples: int = 4096, prior_scale: bool = True):
        """num_features: channels C; k: mixture components (1 = BatchNorm2d); eps: added to variances;
        momentum: EMA rate of the eval-mode statistics; em_iters: EM iterations per training step;
        em_samples: most positions EM runs on (strided subsample); prior_scale: the 1/sqrt(lambda_k) factor."""
        super().__init__()
        if k < 1:
            raise ValueError(f"mixture normalisation needs k >= 1 components, got {k}")
        self.num_features, self.k, self.eps, self.momentum = num_features, k, eps, momentum
        self.em_iters, self.em_samples, self.prior_scale = em_iters, em_samples, prior_scale
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        # the fitted GMM (warm start for the next step's EM, and eval-mode posteriors)
        self.register_buffer("gmm_prior", torch.full((k,), 1.0 / k))
        self.register_buffer("gmm_mean", torch.zeros(k, num_features))
        self.register_buffer("gmm_var", torch.ones(k, num_features))
        self.register_buffer("fitted", torch.tensor(False))
        # EMA of the per-component normalisation statistics (eval mode)
        self.register_buffer("running_mean", torch.zeros(k, num_features))
        self.register_buffer("running_var", torch.ones(k, num_features))
        self.register_buffer("running_prior", torch.full((k,), 1.0 / k))

    def extra_repr(self) -> str:
        return f"{self.num_features}, k={self.k}, eps={self.eps}, momentum={self.momentum}, em_iters={self.em_iters}"

    @torch.no_grad()
    def _fit(self, x: Tensor) -> None:
        """EM on (a strided subsample of) x, warm-started from the previous fit."""
        step = max(1, math.ceil(len(x) / self.em_samples))
        xs = x[::step]
        floor = self.eps
        if not bool(self.fitted):
            prior, mean, var = principal_split_init(xs, self.k, floor)
        else:
            prior, mean, var = self.gmm_prior, self.gmm_mean, self.gmm_var
        for _ in range(self.em_iters):
            resp = gmm_log_resp(xs, prior.clamp_min(1e-6), mean, var).exp()
            prior, mean, var = gmm_m_step(xs, resp, floor)
        self.gmm_prior.copy_(prior)
        self.gmm_mean.copy_(mean)
        self.gmm_var.copy_(var)
        self.fitted.fill_(True)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        dtype = x.dtype
        with torch.autocast(x.device.type, enabled=False):  # EM and variances in float32
            flat = x.float().permute(0, 2, 3, 1).reshape(-1, c)  # (N, C): one sample per position
            if self.k == 1:
                tau = flat.new_ones(len(flat), 1)
            else:
                if self.training:
                    self._fit(flat.detach())
                with torch.no_grad():
                    tau = gmm_log_resp(flat.detach(), self.gmm_prior.clamp_min(1e-6), self.gmm_mean,
                                       self.gmm_var).exp()
            if self.training:
                out, m, v, lam = mixture_normalize(flat, tau, self.eps, self.prior_scale)
                with torch.no_grad():
                    n_eff = (tau.sum(0) - 1).clamp_min(1.0)  # unbiased variance, as BN's running_var
                    unbiased = v.detach() * (tau.sum(0) / n_eff)[:, None]
                    self.running_mean.lerp_(m.detach(), self.momentum)
                    self.running_var.lerp_(unbiased, self.momentum)
                    self.running_prior.lerp_(lam.detach(), self.momentum)
            else:
                out = torch.zeros_like(flat)
                for k in range(self.k):
                    scale = tau[:, k:k + 1] / self.running_prior[k].clamp_min(1e-6).sqrt() \
                        if self.prior_scale else tau[:, k:k + 1]
                    out = out + scale * (flat - self.running_mean[k]) / (self.running_var[k] + self.eps).sqrt()
            out = out * self.weight + self.bias
        return out.reshape(b, h, w, c).permute(0, 3, 1, 2).to(dtype)


def generator_norm(kind: str, k: int = 3, max_size: int = 8) -> Callable[[int, int], nn.Module] | None:
    """The DCGAN generator's norm factory for model.g_norm: None (BatchNorm everywhere) or a
    function (channels, spatial size) -> layer that puts MixtureNorm2d on maps up to max_size
    (docs/methods.md §14: the BN after G's 4x4 and 8x8 layers) and BatchNorm2d elsewhere."""
    if kind == "batch":
        return None
    if kind != "mixture":
        raise ValueError(f"unknown model.g_norm {kind!r}; valid: batch, mixture")
    return lambda ch, size: MixtureNorm2d(ch, k) if size <= max_size else nn.BatchNorm2d(ch)
