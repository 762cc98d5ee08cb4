"""BEGAN (docs/methods.md §7) and Yin et al.'s improved BEGAN (docs/methods.md §8) behind the Variant seam.

D is an auto-encoder (fewgan.nets.began) and L(v) = mean|v - D(v)| its reconstruction loss:
    L_D = L(x) - k_t * L(G(z_D))        L_G = L(G(z_G))
    k_{t+1} = clip(k_t + lambda_k * (gamma * L(x) - L(G(z_G))), 0, 1)
    M_global = L(x) + |gamma * L(x) - L(G(z_G))|
Improved BEGAN is the same step with skips (`began.skip=add`) and two learning rates
(train.lr_d / train.lr_g); both are configuration, not code.

How one iteration splits over the seam. The loop calls d_step, then g_step, then
end_iteration, all on the same real batch x. docs/methods.md §7 asks for both losses on the same
batch, D and G updated, then k updated from detached values:
- d_step: L(x) and L(G(z_D)) with G under no_grad; step D on L_D with the current k_t.
- g_step: L(G(z_G)) through the (just updated, frozen) D; step G. z_G is z_D when
  train.reuse_z is set, a fresh draw otherwise.
- end_iteration: k_t, M_global and the learning-rate decay from the iteration's L(x) (mean
  over its d_steps) and L(G(z_G)) (mean over its g_steps), as plain floats.
The reference code (carpedm20/BEGAN-tensorflow) computes both gradients before either
update; here G sees D after D's step, as every other variant does. The two differ by one
D step at lr 1e-4, and this order keeps any G:D ratio (train.d_steps / g_steps) meaningful.

The learning rates decay (docs/methods.md §8) when the EMA of M_global has not improved by
`lr_decay_min_rel` (1 %) over `lr_decay_patience` iterations; see StallDecay.
"""

from __future__ import annotations

import statistics

import torch
from torch import Tensor

from ..devices import to_host
from ..latents import build_latent, latent_out_features
from ..nets import build_networks
from ..regularizers import build_g_regularizers
from .base import VARIANTS, Batch, GeneratorPipeline, Variant

# ----------------------------------------------------------------------------- pure math

# L(v) for each `began.recon`: the mean over pixels, channels and the batch
RECON_LOSSES = {
    "l1": lambda v, rec: (v - rec).abs().mean(),
    "l2": lambda v, rec: (v - rec).pow(2).mean(),
}


def k_update(k: float, l_real: float, l_fake: float, gamma: float, lambda_k: float) -> float:
    """k_{t+1} = clip(k_t + lambda_k * (gamma * L(x) - L(G(z))), 0, 1)."""
    return min(max(k + lambda_k * (gamma * l_real - l_fake), 0.0), 1.0)


def m_global(l_real: float, l_fake: float, gamma: float) -> float:
    """BEGAN's convergence measure M_global = L(x) + |gamma * L(x) - L(G(z))|; lower is better."""
    return l_real + abs(gamma * l_real - l_fake)


def scale_lrs(optimizers, factor: float, floor: float) -> None:
    """Multiply every param group's lr by `factor`, never below `floor` (nor raising one already under it)."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = max(group["lr"] * factor, min(group["lr"], floor))


class StallDecay:
    """When to decay the learning rates: EMA(M_global) has not beaten its best by a relative
    `min_rel` for `patience` consecutive iterations. Firing resets the patience counter; the
    best value stays, so a run that keeps stalling keeps decaying (until the lr floor)."""

    def __init__(self, patience: int = 2000, alpha: float = 0.01, min_rel: float = 0.01):
        """patience: iterations without progress before firing (0 = never);
        alpha: EMA weight of the newest M_global; min_rel: relative gain that counts as progress."""
        self.patience, self.alpha, self.min_rel = patience, alpha, min_rel
        self.ema: float | None = None  # EMA of M_global (the first value starts it)
        self.best: float | None = None  # lowest EMA that counted as progress
        self.since = 0  # iterations since the last progress or decay
        self.decays = 0  # how many times it has fired

    def update(self, m: float) -> bool:
        """Observe one iteration's M_global; True when the learning rates should decay now."""
        self.ema = m if self.ema is None else self.ema + self.alpha * (m - self.ema)
        if self.best is None or self.ema < self.best * (1.0 - self.min_rel):
            self.best, self.since = self.ema, 0
            return False
        self.since += 1
        if self.patience <= 0 or self.since < self.patience:
            return False
        self.since, self.decays = 0, self.decays + 1
        return True

    def state_dict(self) -> dict:
        return {"ema": self.ema, "best": self.best, "since": self.since, "decays": self.decays}

    def load_state_dict(self, state: dict) -> None:
        self.ema, self.best = state["ema"], state["best"]
        self.since, self.decays = int(state["since"]), int(state["decays"])


# ----------------------------------------------------------------------------- the variant


@VARIANTS.register("began")
class BEGAN(Variant):
    def __init__(self, cfg, num_classes: int = 0):
        super().__init__(cfg, num_classes)  # BEGAN is unconditional: class labels are ignored
        t, b = cfg.train, cfg.began
        if cfg.model.arch != "began":
            raise ValueError(f"train.variant=began needs model.arch=began (an auto-encoder D), got {cfg.model.arch!r}")
        if cfg.reg.edge_d_input:  # D would have to reconstruct the edge channel too; not defined for BEGAN
            raise ValueError("reg.edge_d_input is not supported by train.variant=began")
        if cfg.reg.lecam_weight > 0 or cfg.reg.r1_gamma > 0:  # both act on logits; BEGAN's D has none
            raise ValueError("reg.lecam_weight and reg.r1_gamma need a logit discriminator; train.variant=began's "
                             "D is an auto-encoder (set them to 0, or use aug.* to regularise BEGAN's D)")
        if b.recon not in RECON_LOSSES:
            raise ValueError(f"began.recon must be one of {', '.join(RECON_LOSSES)}, got {b.recon!r}")
        if not 0.0 <= b.k0 <= 1.0:
            raise ValueError(f"began.k0 must lie in [0, 1], got {b.k0}")
        # networks first so that their RNG-driven initialisation does not depend on the sampler
        g_net, self.D = build_networks(cfg, latent_out_features(cfg))
        self.G = GeneratorPipeline(build_latent(cfg), g_net)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=t.lr_g, betas=(t.beta1_g, t.beta2_g))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=t.lr_d, betas=(t.beta1_d, t.beta2_d))
        self.g_regularizers = build_g_regularizers(cfg)  # extra G loss terms (edge loss, ...)
        self.recon_loss = RECON_LOSSES[b.recon]
        self.k = float(b.k0)  # the control variable k_t used by the next D step
        self.decay = StallDecay(b.lr_decay_patience, b.m_ema, b.lr_decay_min_rel)
        # this iteration's detached L(x) (one per D step) and L(G(z_G)) (one per G step)
        self._l_real: list[float] = []
        self._l_fake_g: list[float] = []
        self._finish_setup()

    def L(self, v: Tensor, per_sample: list | None = None) -> Tensor:
        """The auto-encoder loss L(v) = mean|v - D(v)| (or squared), in float32. When a list is
        given, the detached per-image losses are appended to it (for ADA / APA's controller)."""
        v = self.prepare(v)
        rec = self.D(v).float()
        if per_sample is not None:
            with torch.no_grad():
                per_sample.append(torch.stack([self.recon_loss(a, b) for a, b in zip(v.float(), rec)]))
        return self.recon_loss(v.float(), rec)

    def d_step(self, batch: Batch) -> dict[str, float]:
        self.opt_d.zero_grad(set_to_none=True)
        with self.autocast():
            with torch.no_grad():
                fake = self.G(batch.noise)
            real, _ = self.aug.pseudo_reals(batch.x, fake, batch.aug_rng)  # APA: some reals become detached fakes
            # the auto-encoder D reconstructs augmented images, reals and fakes alike
            per_real: list | None = [] if self.aug.watching else None
            l_real, l_fake = self.L(self.augment(real, batch), per_real), self.L(self.augment(fake, batch))
        loss = l_real - self.k * l_fake
        gn = self.optimize(loss, "opt_d", self.D.parameters())
        # ADA / APA need a per-real "realness": BEGAN's D has no logit, so ours is how much better
        # than the batch's fakes each real is reconstructed (L(G(z)) - L(x_i) > 0 reads as "real")
        if per_real:
            self.aug.observe(l_fake.detach() - per_real[0])
        self._l_real.append(l_real.detach())  # brought to the host with the rest in end_iteration
        return {"loss_d": loss.detach(), "l_real": l_real.detach(), "l_fake_d": l_fake.detach(), "grad_norm_d": gn}

    def g_step(self, batch: Batch) -> dict[str, float]:
        stats, adv = self.generator_update(batch, lambda f: self.L(self.augment(f, batch)))  # L_G = L(aug(G(z_G)))
        self._l_fake_g.append(adv.detach())
        return stats

    def end_iteration(self, step: int, stats: dict[str, float]) -> dict[str, float]:
        out = super().end_iteration(step, stats)  # EMA of G
        l_real_list, l_fake_list = self._l_real, self._l_fake_g
        self._l_real, self._l_fake_g = [], []
        if l_real_list and l_fake_list:  # one host transfer for the iteration's L(x) and L(G(z_G))
            vals = list(to_host(dict(enumerate(l_real_list + l_fake_list))).values())
            l_real_list, l_fake_list = vals[:len(l_real_list)], vals[len(l_real_list):]
        if not (l_real_list and l_fake_list):  # an iteration without D or G updates moves nothing
            return {**out, "k_t": self.k}
        b = self.cfg.began
        l_real, l_fake = statistics.fmean(l_real_list), statistics.fmean(l_fake_list)
        self.k = k_update(self.k, l_real, l_fake, b.gamma, b.lambda_k)
        m = m_global(l_real, l_fake, b.gamma)
        if self.decay.update(m):
            scale_lrs((self.opt_g, self.opt_d), b.lr_decay_factor, b.lr_floor)
        return {**out, "k_t": self.k, "m_global": m, "m_global_ema": self.decay.ema,
                "balance": b.gamma * l_real - l_fake, "lr_decays": self.decay.decays, **self.lrs()}

    # --- checkpointing: the controller and the stall test must resume exactly
    def extra_state(self) -> dict:
        return {"k": self.k, "decay": self.decay.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        if not state:
            return
        self.k = float(state["k"])
        self.decay.load_state_dict(state["decay"])
