"""Differentiable augmentations of what D sees: DiffAugment, ADA's pipeline, ADA's and APA's p.

Why: on a few hundred images D memorises the training set within a few thousand steps and
G's gradient turns into noise. Showing D randomly transformed images, reals and fakes alike,
with transforms gradients pass through to G, stops that (Zhao et al. 2020; Karras et al. 2020).

Everything below is a pure function of (images in [-1, 1], NCHW; p; a torch.Generator):
- every random parameter is drawn on the CPU from the generator, always the same number of
  draws whatever p is, then moved to the images' device; so the same step seed gives the same
  augmentation, resume stays exact, and an adaptive p never shifts later draws;
- each op is applied to each sample with probability p (p = 1: DiffAugment's always-on ops);
- gradients flow to the input through every op (gathers, masks, grid_sample, matrix products).

Ops (`aug.policy` is `ada` or a comma-separated list of these names, applied in order):
    color        DiffAugment: brightness + U(-0.5, 0.5), saturation x U(0, 2) about the per-pixel
                 channel mean, contrast x U(0.5, 1.5) about the image mean (each gated by p)
    translation  DiffAugment: integer shift in [-s, s] per axis, s = round(0.125 H), zero fill
    cutout       DiffAugment: a zero square of side round(0.5 H), centre uniform, clipped at borders
    ada          ADA's `bgc`: x-flip, 90-degree rotations, integer translation, isotropic scale,
                 rotation, anisotropic scale, fractional translation (one affine matrix, applied
                 once with grid_sample and reflection padding: our simplification of ADA's
                 wavelet-filtered resampling), then brightness, contrast, luma flip, hue rotation,
                 saturation (one 4x4 colour matrix; grey images get brightness and contrast only)

`AdaptiveP` is ADA's controller (also APA's): r_t = E[sign(D(real))] over the real logits seen
since the last update; every `interval` iterations p <- clip(p + sign(r_t - target) * n_img / speed_img, 0, 1).
Its state (p, the running sums, the last r_t) is plain JSON kept in checkpoints, so resuming in
the middle of adaptation continues exactly (stylegan2-ada-pytorch #81 reset p on resume).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# ----------------------------------------------------------------------------- helpers


def _gate(n: int, p: float, g: torch.Generator) -> Tensor:
    """(n,) bool: which samples an op applies to (always draws n numbers)."""
    return torch.rand(n, generator=g) < p


def _to(t: Tensor, x: Tensor) -> Tensor:
    return t.to(device=x.device, dtype=x.dtype if t.is_floating_point() else t.dtype)


# ----------------------------------------------------------------------------- DiffAugment (§15)


def brightness(x: Tensor, delta: Tensor) -> Tensor:
    """x + delta per sample (delta: (N,))."""
    return x + _to(delta, x).view(-1, 1, 1, 1)


def saturation(x: Tensor, factor: Tensor) -> Tensor:
    """(x - m) * factor + m, m the mean over channels of each pixel."""
    m = x.mean(dim=1, keepdim=True)
    return (x - m) * _to(factor, x).view(-1, 1, 1, 1) + m


def contrast(x: Tensor, factor: Tensor) -> Tensor:
    """(x - m) * factor + m, m the mean of each image over channels and pixels."""
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * _to(factor, x).view(-1, 1, 1, 1) + m


def translate_int(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """Shift each image by integer (dy, dx) pixels; vacated pixels are 0. out[i, j] = x[i - dy, j - dx]."""
    n, _, h, w = x.shape
    iy = torch.arange(h).view(1, h, 1) - dy.view(-1, 1, 1)  # source row of each output row
    ix = torch.arange(w).view(1, 1, w) - dx.view(-1, 1, 1)
    valid = ((iy >= 0) & (iy < h) & (ix >= 0) & (ix < w))  # (n, h, w)
    flat = (iy.clamp(0, h - 1) * w + ix.clamp(0, w - 1)).view(n, 1, h * w).expand(-1, x.shape[1], -1)
    out = x.reshape(n, x.shape[1], h * w).gather(2, _to(flat, x)).view_as(x)
    return out * _to(valid, x).unsqueeze(1).to(x.dtype)


def cutout_mask(n: int, h: int, w: int, cy: Tensor, cx: Tensor, size: int, apply: Tensor) -> Tensor:
    """(n, 1, h, w) float mask: 0 inside the size x size square centred at (cy, cx) where `apply`."""
    ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    y0, x0 = (cy - size // 2).view(-1, 1, 1), (cx - size // 2).view(-1, 1, 1)
    inside = (ys >= y0) & (ys < y0 + size) & (xs >= x0) & (xs < x0 + size) & apply.view(-1, 1, 1)
    return (~inside).float().unsqueeze(1)


def op_color(x: Tensor, p: float, g: torch.Generator) -> Tensor:
    n = len(x)
    b, s, c = torch.rand(n, generator=g) - 0.5, torch.rand(n, generator=g) * 2, torch.rand(n, generator=g) + 0.5
    gb, gs, gc = _gate(n, p, g), _gate(n, p, g), _gate(n, p, g)
    if p <= 0:
        return x
    x = brightness(x, torch.where(gb, b, torch.zeros_like(b)))
    x = saturation(x, torch.where(gs, s, torch.ones_like(s)))
    return contrast(x, torch.where(gc, c, torch.ones_like(c)))


def op_translation(x: Tensor, p: float, g: torch.Generator, ratio: float = 0.125) -> Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy, dx = torch.randint(-sy, sy + 1, (n,), generator=g), torch.randint(-sx, sx + 1, (n,), generator=g)
    on = _gate(n, p, g)
    if p <= 0:
        return x
    zero = torch.zeros_like(dy)
    return translate_int(x, torch.where(on, dy, zero), torch.where(on, dx, zero))


def op_cutout(x: Tensor, p: float, g: torch.Generator, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    size = int(h * ratio + 0.5)
    # DiffAugment's offsets: 0 .. H - (size % 2 == 1 ? 1 : 0), the square's centre
    cy = torch.randint(0, h + (1 - size % 2), (n,), generator=g)
    cx = torch.randint(0, w + (1 - size % 2), (n,), generator=g)
    on = _gate(n, p, g)
    if p <= 0:
        return x
    return x * _to(cutout_mask(n, h, w, cy, cx, size, on), x)


# ----------------------------------------------------------------------------- ADA's bgc pipeline (§16)


def _eye(n: int, k: int) -> Tensor:
    return torch.eye(k).repeat(n, 1, 1)


def _scale2(sx: Tensor, sy: Tensor) -> Tensor:
    m = _eye(len(sx), 3)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotate2(theta: Tensor) -> Tensor:
    m = _eye(len(theta), 3)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def _translate2(tx: Tensor, ty: Tensor) -> Tensor:
    m = _eye(len(tx), 3)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def ada_geometry(n: int, size: int, p: float, g: torch.Generator) -> Tensor:
    """(n, 3, 3) inverse affine maps (output -> input, normalised coordinates in [-1, 1]).

    Each op's parameter is drawn for every sample and used where that op's gate is on; the
    strengths are ADA's `bgc` defaults. Translations are in units of the image size, so an
    integer translation of t pixels is 2t/size in normalised coordinates (exact pixel moves
    with align_corners=False)."""
    one = torch.ones(n)
    G = _eye(n, 3)
    # x-flip: with probability 1/2 when on
    flip = torch.randint(0, 2, (n,), generator=g).float()
    on = _gate(n, p, g)
    G = G @ _scale2(torch.where(on, 1 - 2 * flip, one), one)
    # 90-degree rotations
    k = torch.randint(0, 4, (n,), generator=g).float()
    on = _gate(n, p, g)
    G = G @ _rotate2(torch.where(on, k, torch.zeros(n)) * (math.pi / 2))
    # integer translation, up to 0.125 of the size
    t = (torch.rand(2, n, generator=g) * 2 - 1) * 0.125
    on = _gate(n, p, g)
    t = torch.round(t * size) * 2 / size * on.float()
    G = G @ _translate2(t[0], t[1])
    # isotropic scale, lognormal (sigma = 0.2 ln 2)
    s = torch.exp2(torch.randn(n, generator=g) * 0.2)
    on = _gate(n, p, g)
    s = torch.where(on, s, one)
    G = G @ _scale2(s, s)
    # arbitrary rotation before and after the anisotropic scale; each with p_rot so that
    # "rotated at all" has probability p (ADA: p_rot = 1 - sqrt(1 - p))
    p_rot = 1 - math.sqrt(max(0.0, 1 - p))
    th = (torch.rand(n, generator=g) * 2 - 1) * math.pi
    on = _gate(n, p_rot, g)
    G = G @ _rotate2(-torch.where(on, th, torch.zeros(n)))
    a = torch.exp2(torch.randn(n, generator=g) * 0.2)
    on = _gate(n, p, g)
    a = torch.where(on, a, one)
    G = G @ _scale2(a, 1 / a)
    th = (torch.rand(n, generator=g) * 2 - 1) * math.pi
    on = _gate(n, p_rot, g)
    G = G @ _rotate2(-torch.where(on, th, torch.zeros(n)))
    # fractional translation, N(0, 0.125) of the size (2x in normalised coordinates)
    t = torch.randn(2, n, generator=g) * 0.125 * 2
    on = _gate(n, p, g).float()
    G = G @ _translate2(t[0] * on, t[1] * on)
    return G


def apply_geometry(x: Tensor, G: Tensor) -> Tensor:
    """Resample x at the inverse map G (n, 3, 3): bilinear, reflection padding."""
    theta = _to(G[:, :2, :], x).float()
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False).to(x.dtype)


_LUMA = torch.tensor([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3)


def _rotate_axis(v: Tensor, theta: Tensor) -> Tensor:
    """(n, 4, 4) rotations by theta about the 3-d axis v (Rodrigues), homogeneous."""
    n = len(theta)
    vx, vy, vz = v[0], v[1], v[2]
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    m = _eye(n, 4)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s
    m[:, 2, 0], m[:, 2, 1], m[:, 2, 2] = vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c
    return m


def ada_color(n: int, p: float, g: torch.Generator) -> Tensor:
    """(n, 4, 4) colour matrices acting on homogeneous RGB in [-1, 1] (ADA's bgc colour ops)."""
    C = _eye(n, 4)
    v = _LUMA
    vv = torch.outer(v, v)
    b = torch.randn(n, generator=g) * 0.2  # brightness
    on = _gate(n, p, g)
    T = _eye(n, 4)
    T[:, :3, 3] = torch.where(on, b, torch.zeros(n)).view(-1, 1)
    C = T @ C
    c = torch.exp2(torch.randn(n, generator=g) * 0.5)  # contrast
    on = _gate(n, p, g)
    c = torch.where(on, c, torch.ones(n))
    S = _eye(n, 4)
    S[:, 0, 0] = S[:, 1, 1] = S[:, 2, 2] = c
    C = S @ C
    i = torch.randint(0, 2, (n,), generator=g).float()  # luma flip
    on = _gate(n, p, g)
    i = i * on.float()
    C = (torch.eye(4) - 2 * vv * i.view(-1, 1, 1)) @ C
    th = (torch.rand(n, generator=g) * 2 - 1) * math.pi  # hue rotation about the luma axis
    on = _gate(n, p, g)
    C = _rotate_axis(v, torch.where(on, th, torch.zeros(n))) @ C
    s = torch.exp2(torch.randn(n, generator=g) * 1.0)  # saturation
    on = _gate(n, p, g)
    s = torch.where(on, s, torch.ones(n))
    C = (vv + (torch.eye(4) - vv) * s.view(-1, 1, 1)) @ C
    return C


def apply_color(x: Tensor, C: Tensor) -> Tensor:
    """Apply colour matrices C (n, 4, 4); grey images: brightness and contrast only (C's first row
    restricted to the grey axis: gain C[0,0..2] summed over the three channels, offset C[0,3])."""
    C = _to(C, x)
    n, ch, h, w = x.shape
    if ch == 3:
        out = C[:, :3, :3] @ x.reshape(n, 3, h * w) + C[:, :3, 3:]
        return out.reshape_as(x)
    gain = C[:, 0, :3].sum(dim=1).view(-1, 1, 1, 1)  # a grey pixel (g, g, g) maps to gain * g + offset
    return x * gain + C[:, 0, 3].view(-1, 1, 1, 1)


def op_ada(x: Tensor, p: float, g: torch.Generator) -> Tensor:
    n, ch, h, w = x.shape
    G = ada_geometry(n, h, p, g)
    if ch == 3:
        C = ada_color(n, p, g)
    else:  # grey: ADA's colour ops except luma flip, hue and saturation (they need 3 channels)
        C = _grey_only(n, p, g)
    if p <= 0:
        return x
    return apply_color(apply_geometry(x, G), C)


def _grey_only(n: int, p: float, g: torch.Generator) -> Tensor:
    """Brightness then contrast as (n, 4, 4) matrices for grey images (apply_color sums row 0)."""
    b = torch.randn(n, generator=g) * 0.2
    on_b = _gate(n, p, g)
    c = torch.exp2(torch.randn(n, generator=g) * 0.5)
    on_c = _gate(n, p, g)
    b = torch.where(on_b, b, torch.zeros(n))
    c = torch.where(on_c, c, torch.ones(n))
    C = _eye(n, 4)
    C[:, 0, 0] = C[:, 1, 1] = C[:, 2, 2] = c / 3  # gain c on the grey axis (apply_color sums the row)
    C[:, :3, 3] = (c * b).view(-1, 1)
    return C


# ----------------------------------------------------------------------------- policies

OPS: dict[str, Callable[[Tensor, float, torch.Generator], Tensor]] = {
    "color": op_color,
    "translation": op_translation,
    "cutout": op_cutout,
    "ada": op_ada,
}


def parse_policy(policy: str) -> tuple[str, ...]:
    """'none' / '' -> (); 'color,translation,cutout' -> the op names; unknown names are errors."""
    if policy in ("", "none"):
        return ()
    names = tuple(s.strip() for s in policy.split(",") if s.strip())
    bad = [s for s in names if s not in OPS]
    if bad:
        raise ValueError(f"aug.policy: unknown op {bad[0]!r}; valid: none, or a comma-separated list of "
                         f"{', '.join(OPS)}")
    return names


def augment(x: Tensor, ops: tuple[str, ...], p: float, g: torch.Generator) -> Tensor:
    """x with each op of `ops` applied in order, per sample with probability p."""
    for name in ops:
        x = OPS[name](x, p, g)
    return x


# ----------------------------------------------------------------------------- the adaptive controller


@dataclass
class AdaptiveP:
    """ADA's heuristic (also used by APA): p follows r_t = E[sign(real logits)] towards `target`."""

    p: float
    target: float = 0.6
    interval: int = 4  # iterations between updates
    speed_img: float = 500_000  # images for p to move by 1
    adaptive: bool = True
    sign_sum: float = 0.0  # running sums since the last update
    count: int = 0
    r_t: float | None = None  # the last r_t computed

    def __post_init__(self):
        # terms of sign_sum not yet read from the device: (tensor, n_images or None), read in one
        # transfer when p moves (every `interval` iterations) or the state is saved, not every D step
        self._pending: list[tuple[Tensor, int | None]] = []

    def observe(self, real_logits: Tensor, n_images: int | None = None) -> None:
        """Feed the real logits of one D pass. `n_images`: how many images they belong to, when a D
        gives several logits per image (the projected D's patch maps): each image then counts once,
        with the mean sign of its batch, so `speed_img` keeps meaning images."""
        signs = torch.sign(real_logits.detach().float())
        if n_images is None or n_images == signs.numel():
            self._pending.append((signs.sum(), None))
            self.count += signs.numel()
        else:
            self._pending.append((signs.mean(), n_images))
            self.count += n_images

    def _fold(self) -> None:
        """Add the pending terms to sign_sum, in the order observed (as if added one by one)."""
        if not self._pending:
            return
        values = torch.stack([t.double() for t, _ in self._pending]).tolist()
        for v, (_, n) in zip(values, self._pending):
            self.sign_sum += v if n is None else v * n
        self._pending = []

    def end_iteration(self, step: int) -> None:
        """After iteration `step` (0-based): every `interval` iterations, move p and reset the sums."""
        if not self.adaptive or (step + 1) % self.interval or self.count == 0:
            return
        self._fold()
        self.r_t = self.sign_sum / self.count
        adjust = math.copysign(1.0, self.r_t - self.target) if self.r_t != self.target else 0.0
        self.p = min(max(self.p + adjust * self.count / self.speed_img, 0.0), 1.0)
        self.sign_sum, self.count = 0.0, 0

    def state_dict(self) -> dict:
        self._fold()
        return {"p": self.p, "sign_sum": self.sign_sum, "count": self.count, "r_t": self.r_t}

    def load_state_dict(self, st: dict) -> None:
        self.p, self.sign_sum, self.count = float(st["p"]), float(st["sign_sum"]), int(st["count"])
        self._pending = []
        self.r_t = None if st.get("r_t") is None else float(st["r_t"])


def apa_swap(n: int, p: float, g: torch.Generator) -> Tensor:
    """APA (Jiang et al. 2021): (n,) bool, which reals of D's real pass become (detached) fakes."""
    return _gate(n, p, g)


def apa_mix(real: Tensor, fake: Tensor, p: float, g: torch.Generator) -> Tensor:
    """APA on images: each real replaced by the detached fake of the same index with probability p."""
    swap = _to(apa_swap(len(real), p, g), real)
    return torch.where(swap.view(-1, 1, 1, 1), fake.detach().to(real.dtype), real)


class Augmenter:
    """The run's augmentation: the policy's ops, ADA's p and APA's p (built from cfg.aug).

    `__call__(x, g)` augments one D input; `observe` feeds real logits to the controllers;
    `end_iteration` moves p; `stats` is what the loop logs (aug_p, r_t, apa_p)."""

    def __init__(self, cfg):
        a, t = cfg.aug, cfg.train
        self.ops = parse_policy(a.policy)
        if not 0.0 <= a.p <= 1.0:
            raise ValueError(f"aug.p must lie in [0, 1], got {a.p}")
        if not 0.0 <= a.apa_p <= 1.0:
            raise ValueError(f"aug.apa_p must lie in [0, 1], got {a.apa_p}")
        if a.interval < 1:
            raise ValueError(f"aug.interval must be >= 1, got {a.interval}")
        if a.speed_img < 0:
            raise ValueError(f"aug.speed_img must be >= 0 (0 = train.steps * batch / 5), got {a.speed_img}")
        if a.adaptive and not self.ops:
            raise ValueError("aug.adaptive=true needs an aug.policy (e.g. ada)")
        speed = a.speed_img or max(1.0, t.steps * t.batch_size / 5)
        self.ada = AdaptiveP(a.p, a.target, a.interval, speed, adaptive=a.adaptive)
        self.apa = AdaptiveP(a.apa_p, a.apa_target, a.interval, speed) if a.apa else None

    @property
    def active(self) -> bool:
        return bool(self.ops)

    @property
    def watching(self) -> bool:
        """True when some controller needs the real logits."""
        return (self.active and self.ada.adaptive) or self.apa is not None

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        return augment(x, self.ops, self.ada.p, g) if self.ops else x

    def pseudo_reals(self, real: Tensor, fake: Tensor, g: torch.Generator, y: Tensor | None = None,
                     fake_y: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """APA on D's real pass: (images, labels) with each real replaced, with probability apa.p, by
        the detached fake of the same index (and its label, for a conditional D); unchanged without APA."""
        if self.apa is None:
            return real, y
        swap = apa_swap(len(real), self.apa.p, g).to(real.device)  # drawn on the CPU
        real = torch.where(swap.view(-1, 1, 1, 1), fake.detach().to(real.dtype), real)
        if y is not None and fake_y is not None:
            y = torch.where(swap.to(y.device), fake_y, y)
        return real, y

    def observe(self, real_logits: Tensor, n_images: int | None = None) -> None:
        if self.active and self.ada.adaptive:
            self.ada.observe(real_logits, n_images)
        if self.apa is not None:
            self.apa.observe(real_logits, n_images)

    def end_iteration(self, step: int) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.active:
            self.ada.end_iteration(step)
            out["aug_p"] = self.ada.p
            if self.ada.adaptive and self.ada.r_t is not None:
                out["r_t"] = self.ada.r_t
        if self.apa is not None:
            self.apa.end_iteration(step)
            out["apa_p"] = self.apa.p
            if self.apa.r_t is not None:
                out.setdefault("r_t", self.apa.r_t)
        return out

    def state_dict(self) -> dict:
        return {"ada": self.ada.state_dict(), "apa": self.apa.state_dict() if self.apa else None}

    def load_state_dict(self, st: dict) -> None:
        if st.get("ada"):
            self.ada.load_state_dict(st["ada"])
        if self.apa is not None and st.get("apa"):
            self.apa.load_state_dict(st["apa"])
