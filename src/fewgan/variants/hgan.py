"""HGAN (Iranmanesh & Nasrabadi, arXiv 2102.03710; docs/methods.md §13): a GAN whose generator
also learns, adversarially, from an autoregressive teacher.

The paper's method section was not available to us (docs/hgan-sources.md), so the
objective below is docs/methods.md §13's reading, not a verified reproduction:

    teacher T      a Gated PixelCNN trained by likelihood (`fewgan teacher train`), frozen;
    D_T            a distillation discriminator on T's last hidden map h_T(.):
                   3 stride-2 spectral-normalised convs, then a logit;
    L_D            as in the standard GAN (with D's label options);
    L_DT           = loss(D_T(h_T(x)), real) + loss(D_T(h_T(G(z))), fake);
    L_G            = adversarial(D) + lambda_t * adversarial(D_T(h_T(G(z))))
                     + lambda_nll * NLL_T(G(z));
    order          D step -> D_T step -> G step -> optional teacher NLL step on real data.

Gradients of the distillation term flow through the frozen teacher into G(z). The
teacher's 256-way softmax takes discrete pixels, so NLL_T(G(z)) uses the soft-binned NLL
of fewgan.nets.pixelcnn.nll_soft (piecewise linear between neighbouring bins), which is
differentiable in G(z). With `hgan.dt_input=samples` D_T instead compares a bank of teacher
samples with G(z) in image space. "loss" is the run's loss.kind (BCE by default).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from .. import losses
from ..data import load_images, to_float
from ..devices import to_host
from ..nets.distill import DistillationDiscriminator
from ..nets.pixelcnn import nll_discrete, nll_soft
from ..teacher import default_teacher_path, load_teacher
from .base import VARIANTS, Batch
from .standard import StandardGAN

DT_INPUTS = ("hidden", "samples")


@VARIANTS.register("hgan")
class HGAN(StandardGAN):
    def __init__(self, cfg, num_classes: int = 0):
        super().__init__(cfg, num_classes)  # G, D, their optimisers, the standard G regularizers
        h, d = cfg.hgan, cfg.data
        if h.dt_input not in DT_INPUTS:
            raise ValueError(f"unknown hgan.dt_input {h.dt_input!r}; valid: {', '.join(DT_INPUTS)}")
        if h.lambda_t < 0 or h.lambda_nll < 0:
            raise ValueError(f"hgan.lambda_t and hgan.lambda_nll must be >= 0, got {h.lambda_t}, {h.lambda_nll}")
        self.joint = h.joint_teacher_steps > 0
        needs_teacher = h.dt_input == "hidden" or h.lambda_nll > 0 or self.joint
        self.teacher: nn.Module | None = None
        self.teacher_path: Path | None = None
        if needs_teacher:
            self.teacher_path = Path(h.teacher) if h.teacher else default_teacher_path(d.source)
            if not self.teacher_path.is_file():
                raise ValueError(
                    f"HGAN teacher {self.teacher_path} not found; train one with `fewgan teacher train --data "
                    f"{d.source} --resolution {d.resolution} --channels {d.channels} --out {self.teacher_path}` "
                    f"or set --hgan.teacher=PATH")
            self.teacher, meta = load_teacher(self.teacher_path, frozen=not self.joint)
            tc, tr = meta["data"]["channels"], meta["data"]["resolution"]
            if (tc, tr) != (d.channels, d.resolution):
                raise ValueError(f"HGAN teacher {self.teacher_path} models {tc}-channel {tr}px images, but the run "
                                 f"uses data.channels={d.channels}, data.resolution={d.resolution}")
            if self.joint:  # the teacher keeps learning: it needs its own optimiser and a place in checkpoints
                self.teacher.requires_grad_(True).train()
                self.opt_t = torch.optim.Adam(self.teacher.parameters(), lr=h.lr_teacher)
        self.bank: Tensor | None = None
        if h.dt_input == "samples":
            if not h.sample_bank:
                raise ValueError("hgan.dt_input=samples needs hgan.sample_bank=FILE.npz "
                                 "(make one with `fewgan teacher sample TEACHER -n 10000 -o FILE.npz`)")
            self.bank = load_images(h.sample_bank, d.resolution, d.channels).x
            dt_in = d.channels
        else:
            dt_in = self.teacher.arch["hidden"]
        self.D_T = DistillationDiscriminator(dt_in, d.resolution, h.dt_width)
        t = cfg.train
        self.opt_dt = torch.optim.Adam(self.D_T.parameters(), lr=h.lr_dt, betas=(t.beta1_d, t.beta2_d))
        if self.fast:
            self.D_T.to(memory_format=torch.channels_last)
            if self.teacher is not None:
                self.teacher.to(memory_format=torch.channels_last)
        # G's extra loss terms ride on the standard G step's regularizer list: logged as reg_<name>
        if h.lambda_t > 0:
            self.g_regularizers.append(("distill", h.lambda_t, self._distill_g_loss))
        if h.lambda_nll > 0:
            self.g_regularizers.append(("teacher_nll", h.lambda_nll, self._teacher_nll))
        self._last_real: Tensor | None = None
        self._g_batch: Batch | None = None  # the G step's batch (its augmentation draws); set by g_step

    # ------------------------------------------------------------------ what D_T sees
    def dt_view(self, x: Tensor) -> Tensor:
        """D_T's input for images x: the teacher's last hidden map (or x itself with dt_input=samples)."""
        x = self.prepare(x)
        return self.teacher.hidden(x) if self.cfg.hgan.dt_input == "hidden" else x

    def _dt_real(self, batch: Batch) -> Tensor:
        if self.bank is None:
            return batch.x
        idx = torch.randint(len(self.bank), (len(batch.x),), generator=batch.rng)  # drawn on the CPU
        return to_float(self.bank[idx.to(self.bank.device)])  # gathered and converted on the device

    # ------------------------------------------------------------------ G's extra terms
    def _distill_g_loss(self, fake: Tensor, real: Tensor) -> Tensor:
        # D_T frozen: G's gradient reaches G(z) through D_T and the (frozen) teacher only
        with self.frozen(self.D_T), self._teacher_frozen():
            return losses.g_loss(self.cfg.loss.kind, self.D_T(self.dt_view(self.augment(fake, self._g_batch))).float())

    def _teacher_nll(self, fake: Tensor, real: Tensor) -> Tensor:
        with self._teacher_frozen():
            return nll_soft(self.teacher(self.prepare(fake)), fake)

    def _teacher_frozen(self):
        return self.frozen(self.teacher) if self.teacher is not None else torch.enable_grad()

    # ------------------------------------------------------------------ the steps
    def g_step(self, batch: Batch) -> dict[str, float]:
        self._g_batch = batch  # the distillation term augments with this step's generator
        return super().g_step(batch)

    def d_step(self, batch: Batch) -> dict[str, float]:
        stats = super().d_step(batch)  # D step (as the standard GAN)
        stats.update(self.dt_step(batch))  # then the D_T step, on the same batch
        self._last_real = batch.x
        return stats

    def dt_step(self, batch: Batch) -> dict[str, float]:
        self.opt_dt.zero_grad(set_to_none=True)
        with self.autocast():
            with torch.no_grad():  # D_T's step changes neither G nor the teacher
                fake = self.G(batch.noise, batch.fake_y)
                # D_T sees augmented images too (through the teacher's hidden map when dt_input=hidden)
                h_real = self.dt_view(self.augment(self._dt_real(batch), batch))
                h_fake = self.dt_view(self.augment(fake, batch))
            real_logits, fake_logits = self.D_T(h_real).float(), self.D_T(h_fake).float()
        ones, zeros = torch.ones_like(real_logits), torch.zeros_like(fake_logits)
        loss = losses.d_loss(self.cfg.loss.kind, real_logits, fake_logits, ones, zeros)
        gn = self.optimize(loss, "opt_dt", self.D_T.parameters())
        return {  # tensors: brought to the host with the step's other numbers (devices.to_host)
            "loss_dt": loss.detach(),
            "dt_real": torch.sigmoid(real_logits.detach()).mean(),
            "dt_fake": torch.sigmoid(fake_logits.detach()).mean(),
            "grad_norm_dt": gn,
        }

    def teacher_step(self, x: Tensor) -> Tensor:
        """One likelihood step of the teacher on real images x in [-1, 1] ("joint" training)."""
        x_uint8 = ((x.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
        self.opt_t.zero_grad(set_to_none=True)
        loss = nll_discrete(self.teacher(self.prepare(x)), x_uint8)
        self.optimize(loss, "opt_t")
        return loss.detach()

    def end_iteration(self, step: int, stats: dict[str, float]) -> dict[str, float]:
        out = {}
        if self.joint and self._last_real is not None:
            nll = [self.teacher_step(self._last_real) for _ in range(self.cfg.hgan.joint_teacher_steps)]
            nll = list(to_host(dict(enumerate(nll))).values())  # one host transfer for all of them
            out["teacher_bpd"] = sum(nll) / len(nll) / 0.6931471805599453
        out.update(super().end_iteration(step, stats))
        return out

    # ------------------------------------------------------------------ the device
    def to(self, device) -> "HGAN":
        """G, D, D_T (and a jointly trained teacher) through modules(); a frozen teacher and the
        sample bank (uint8, gathered on the device) beside them."""
        super().to(device)
        if self.teacher is not None:
            self.teacher.to(self.device)
        if self.bank is not None:
            self.bank = self.bank.to(self.device)
        return self

    # ------------------------------------------------------------------ checkpoints
    def modules(self) -> dict[str, nn.Module]:
        out = {**super().modules(), "D_T": self.D_T}
        if self.joint:  # a frozen teacher is read from hgan.teacher, never copied into run checkpoints
            out["T"] = self.teacher
        return out

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        out = {**super().optimizers(), "opt_dt": self.opt_dt}
        if self.joint:
            out["opt_t"] = self.opt_t
        return out

    def lrs(self) -> dict[str, float]:
        return {**super().lrs(), "lr_dt": self.opt_dt.param_groups[0]["lr"]}
