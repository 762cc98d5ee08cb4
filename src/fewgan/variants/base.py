"""The seam between the training loop and a GAN family.

The loop (fewgan.training.loop) knows only this interface: it draws batches and noise,
then calls `d_step` d_steps times and `g_step` g_steps times per iteration, then
`end_iteration`. A variant owns its networks, optimisers and any state variables.
Adding a GAN family (BEGAN, HGAN, ...) means a new file here plus a registry entry.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .. import devices
from ..augment import Augmenter
from ..registry import Registry
from ..regularizers import LeCamEMA, lazy_adam

VARIANTS: Registry = Registry("GAN variant (train.variant)")


@dataclass
class Batch:
    x: Tensor  # real images, float in [-1, 1], (B, C, H, W)
    y: Tensor | None  # real labels (B,) or None
    noise: Tensor  # latent noise from LatentSampler.draw, (B, ...)
    fake_y: Tensor | None  # labels to generate (conditional models) or None
    rng: torch.Generator  # randomness for this step (label noise, ...); seeded per step
    aug_rng: torch.Generator | None = None  # randomness of D's augmentations, its own stream (seeded per step)
    step: int = 0  # the iteration this batch belongs to (0-based)

    def __post_init__(self):
        if self.aug_rng is None:
            self.aug_rng = self.rng


class GeneratorPipeline(nn.Module):
    """Latent sampler + generator network: noise -> image. Sampling and checkpoints use this."""

    def __init__(self, latent: nn.Module, net: nn.Module):
        super().__init__()
        self.latent = latent
        self.net = net

    def forward(self, noise: Tensor, y: Tensor | None = None) -> Tensor:
        z = self.latent(noise)
        return self.net(z, y) if self.conditional else self.net(z)

    @property
    def conditional(self) -> bool:
        """True when the generator network takes class labels (net.conditional)."""
        return getattr(self.net, "conditional", False)


def grad_norm(params) -> float:
    return float(grad_norm_tensor(params))


def grad_norm_tensor(params) -> Tensor | float:
    """The global L2 norm of the parameters' gradients as a 0-dim tensor on their device (no host
    sync; 0.0 when none has a gradient)."""
    norms = [p.grad.detach().norm() for p in params if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else 0.0


class Variant:
    """Base class: holds G (a GeneratorPipeline), D, their optimisers, an optional EMA of G."""

    G: GeneratorPipeline
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer

    def __init__(self, cfg, num_classes: int = 0):
        self.cfg = cfg
        self.num_classes = num_classes
        self.fast = cfg.train.fast
        self.amp = cfg.train.amp
        devices.amp_dtype(self.amp)  # an unknown train.amp fails here, before any network is built
        # built on the CPU (the same initialisation everywhere), moved by to(device) afterwards
        self.device = torch.device("cpu")
        self.scalers: dict[str, torch.amp.GradScaler] = {}  # fp16: one loss scaler per optimiser, by name
        self._amp_skipped: dict = {}  # fp16: steps the scalers skipped this iteration, by optimiser
        self.G_ema: GeneratorPipeline | None = None
        # what D sees (fewgan.augment) and D's logit regularizers (fewgan.regularizers); their
        # state is saved by the loop as reg_state(), beside the variant's own extra_state()
        self.aug = Augmenter(cfg)
        r = cfg.reg
        if r.lecam_weight < 0 or r.r1_gamma < 0:
            raise ValueError(f"reg.lecam_weight and reg.r1_gamma must be >= 0, got {r.lecam_weight}, {r.r1_gamma}")
        if r.r1_interval < 1:
            raise ValueError(f"reg.r1_interval must be >= 1, got {r.r1_interval}")
        self.lecam = LeCamEMA(r.lecam_decay, r.lecam_start) if r.lecam_weight > 0 else None
        self.d_count = 0  # D updates so far (lazy R1's clock)

    # --- set-up helpers for subclasses
    def _finish_setup(self) -> None:
        t = self.cfg.train
        if self.fast:
            # channels_last lets oneDNN pick its fastest (AMX/bf16) convolution kernels on CPU
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        if t.ema > 0:
            self.G_ema = copy.deepcopy(self.G).requires_grad_(False)

    def adam_d(self, params) -> torch.optim.Optimizer:
        """D's Adam; with lazy R1 its lr and betas get the c = N/(N+1) correction."""
        t, r = self.cfg.train, self.cfg.reg
        lr, betas = t.lr_d, (t.beta1_d, t.beta2_d)
        if r.r1_gamma > 0:
            lr, betas = lazy_adam(lr, betas, r.r1_interval)
        return torch.optim.Adam(params, lr=lr, betas=betas)

    def augment(self, x: Tensor, batch: Batch) -> Tensor:
        """x as D sees it: the run's augmentation (an identity when aug.policy is none)."""
        return self.aug(x, batch.aug_rng) if self.aug.active else x

    def autocast(self):
        """Autocast on the run's device in train.amp's dtype (bf16 by default) on the fast path; a
        no-op otherwise."""
        return devices.autocast(self.device, self.fast, self.amp)

    # --- the device, and one place for backward / unscale / grad norm / step
    def to(self, device: torch.device | str) -> "Variant":
        """Move every network (and whatever a subclass keeps beside them) to `device`; with fp16,
        one GradScaler per optimiser. Optimisers keep their parameters (moved in place)."""
        self.device = torch.device(device)
        for m in self.modules().values():
            m.to(self.device)
        self.scalers = ({name: torch.amp.GradScaler(self.device.type) for name in self.optimizers()}
                        if devices.uses_scaler(self.fast, self.amp) else {})
        return self

    def backward(self, loss: Tensor, opt_name: str) -> None:
        """loss.backward(), scaled by the optimiser's GradScaler with fp16."""
        scaler = self.scalers.get(opt_name)
        (scaler.scale(loss) if scaler is not None else loss).backward()

    def step(self, opt_name: str, params=None) -> Tensor | float:
        """Unscale (fp16), measure the gradient norm of `params` (None: not measured, 0.0), step the
        optimiser (a GradScaler skips a step with inf / NaN gradients), update the scale.
        Without a scaler it is exactly grad_norm then opt.step(), as before devices existed."""
        opt = self.optimizers()[opt_name]
        scaler = self.scalers.get(opt_name)
        if scaler is None:
            gn = grad_norm_tensor(params) if params is not None else 0.0
            opt.step()
            return gn
        scaler.unscale_(opt)
        # an inf / NaN gradient under fp16 is the scaler's business, not a fault: it skips the step
        # and halves the scale. Such steps are counted (amp_skipped_<opt>) and their norm reads 0.
        gn = grad_norm_tensor(list(params) if params is not None else
                              [p for g in opt.param_groups for p in g["params"]])
        if torch.is_tensor(gn):
            bad = ~torch.isfinite(gn)
            self._amp_skipped[opt_name] = self._amp_skipped.get(opt_name, 0) + bad.to(torch.int64)
            gn = torch.where(bad, torch.zeros_like(gn), gn)
        scaler.step(opt)
        scaler.update()
        return gn if params is not None else 0.0

    def optimize(self, loss: Tensor, opt_name: str, params=None) -> Tensor | float:
        """backward + step: one optimiser update on `loss`; returns the gradient norm of `params`."""
        self.backward(loss, opt_name)
        return self.step(opt_name, params)

    def scaler_state(self) -> dict:
        return {name: s.state_dict() for name, s in self.scalers.items()}

    def load_scaler_state(self, state: dict) -> None:
        for name, st in (state or {}).items():
            if name in self.scalers:
                self.scalers[name].load_state_dict(st)

    @staticmethod
    @contextlib.contextmanager
    def frozen(module: nn.Module):
        """Temporarily stop gradients into `module`'s parameters (they still flow to its input)."""
        flags = [p.requires_grad for p in module.parameters()]
        module.requires_grad_(False)
        try:
            yield module
        finally:
            for p, f in zip(module.parameters(), flags):
                p.requires_grad_(f)

    def d_input(self, x: Tensor) -> Tensor:
        """What D sees of an image batch; a variant may add channels (e.g. edge maps)."""
        return x

    def prepare(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.fast and x.dim() == 4 else x

    # --- what the loop calls
    def d_step(self, batch: Batch) -> dict[str, float]:
        raise NotImplementedError

    def g_step(self, batch: Batch) -> dict[str, float]:
        raise NotImplementedError

    def end_iteration(self, step: int, stats: dict[str, float]) -> dict[str, float]:
        """Update state variables after an iteration (k_t, schedules, ...); returns extra stats."""
        self.update_ema()
        out = self.aug.end_iteration(step)  # ADA's / APA's p move here (aug_p, r_t, apa_p)
        if self.scalers:  # fp16: each optimiser's loss scale and the steps it skipped this iteration
            skipped, self._amp_skipped = self._amp_skipped, {}
            host = devices.to_host({**{f"amp_skipped_{k[4:]}": v for k, v in skipped.items()},
                                    **{f"amp_scale_{k[4:]}": s.get_scale() for k, s in self.scalers.items()}})
            out = {**out, **{k: (int(v) if k.startswith("amp_skipped") else v) for k, v in host.items()}}
        return out

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.G_ema is None:
            return
        decay = self.cfg.train.ema
        for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
            pe.lerp_(p.detach(), 1.0 - decay)
        for be, b in zip(self.G_ema.buffers(), self.G.buffers()):
            be.copy_(b)  # BN running stats and SN vectors follow G directly

    def generator_update(self, batch: Batch, adversarial) -> tuple[dict[str, float], Tensor]:
        """One G update: adversarial(fake) + weighted regularizers + the latent's penalty.

        `adversarial` maps G's images to its adversarial loss. D is frozen meanwhile: G's loss
        needs gradients w.r.t. D's input only, so D's weight gradients are never computed.
        Returns (stats, the adversarial term) with loss_g = that term alone, so that
        log(L_G/L_D) keeps its meaning (docs/methods.md §9) whatever regularizers are on.
        """
        self.opt_g.zero_grad(set_to_none=True)
        stats = {}
        with self.frozen(self.D), self.autocast():
            fake = self.G(batch.noise, batch.fake_y)
            adv = adversarial(fake)
            loss = adv
            for name, weight, fn in getattr(self, "g_regularizers", ()):
                term = fn(fake.float(), batch.x)
                stats[f"reg_{name}"] = term.detach()
                loss = loss + weight * term
            pen = self.G.latent.penalty()  # e.g. DeLiGAN's sigma regulariser
            if pen is not None:
                stats["reg_latent"] = pen.detach()
                loss = loss + pen
            self.backward(loss, "opt_g")
        gn = self.step("opt_g", self.G.parameters())
        # tensors, not floats: the loop brings a step's numbers to the host in one transfer (devices.to_host)
        return {"loss_g": adv.detach(), "loss_g_total": loss.detach(), "grad_norm_g": gn, **stats}, adv

    # --- checkpointing: modules and optimisers by name, plus JSON state
    def modules(self) -> dict[str, nn.Module]:
        out = {"G": self.G, "D": self.D}
        if self.G_ema is not None:
            out["G_ema"] = self.G_ema
        return out

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def reg_state(self) -> dict:
        """JSON state of the augmentation controllers and D's regularizers (kept in checkpoints)."""
        return {"aug": self.aug.state_dict(), "lecam": self.lecam.state_dict() if self.lecam else None,
                "d_count": self.d_count}

    def load_reg_state(self, st: dict) -> None:
        if not st:
            return
        self.aug.load_state_dict(st.get("aug") or {})
        if self.lecam is not None and st.get("lecam"):
            self.lecam.load_state_dict(st["lecam"])
        self.d_count = int(st.get("d_count", 0))

    def sampler(self) -> GeneratorPipeline:
        """The generator used for samples and evaluation: the EMA copy if there is one."""
        return self.G_ema if self.G_ema is not None else self.G

    def lrs(self) -> dict[str, float]:
        return {"lr_g": self.opt_g.param_groups[0]["lr"], "lr_d": self.opt_d.param_groups[0]["lr"]}
