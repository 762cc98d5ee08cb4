"""The autoregressive teacher of HGAN: train a Gated PixelCNN by likelihood, measure it,
save / load it frozen, and sample from it.

A teacher file is an ordinary fewgan checkpoint (safetensors tensors + JSON metadata,
written atomically by fewgan.training.checkpoint) with `kind: pixelcnn-teacher`; its
metadata holds the architecture, the data it was trained on, the train / held-out split
and the bits/dim history, so `load_teacher` needs nothing but the file.

Bits/dim is the mean negative log2-likelihood per sub-pixel (H * W * C values per image)
of the discrete 8-bit images: the standard PixelCNN number (published CIFAR-10 test
values: PixelCNN 3.14, Gated PixelCNN 3.03 with far larger models and data).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .data import ImageData, load_images, to_float
from .devices import resolve_device
from .nets.pixelcnn import GatedPixelCNN, bits_per_dim, nll_discrete, sample
from .training import checkpoint

KIND = "pixelcnn-teacher"


def default_teacher_path(source: str) -> Path:
    """Where `fewgan teacher train` writes, and HGAN looks, by default: teachers/<data stem>.safetensors."""
    return Path("teachers") / f"{Path(str(source)).stem}.safetensors"


def split_indices(n: int, heldout_frac: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) indices: a seeded permutation, the first round(frac * n) held out."""
    if not 0.0 <= heldout_frac < 1.0:
        raise ValueError(f"held-out fraction must be in [0, 1), got {heldout_frac}")
    n_held = round(heldout_frac * n)
    if heldout_frac > 0 and n_held == 0:
        n_held = 1
    if n - n_held < 1:
        raise ValueError(f"held-out fraction {heldout_frac} leaves no training images out of {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_held:].sort().values, perm[:n_held].sort().values


@torch.no_grad()
def evaluate_bpd(net: GatedPixelCNN, x_uint8: torch.Tensor, batch_size: int = 64) -> float:
    """Bits/dim of uint8 images (N, C, H, W) under the teacher (eval mode, exact, batched)."""
    was_training = net.training
    net.eval()
    total, count = 0.0, 0
    try:
        for i in range(0, len(x_uint8), batch_size):
            xb = x_uint8[i:i + batch_size]
            total += nll_discrete(net(to_float(xb)), xb).item() * len(xb)
            count += len(xb)
    finally:
        net.train(was_training)
    return bits_per_dim(total / max(count, 1))


@dataclass
class TeacherResult:
    path: Path
    net: GatedPixelCNN
    meta: dict
    history: list[dict] = field(default_factory=list)


def _meta(net: GatedPixelCNN, data: ImageData, step: int, steps: int, heldout_frac: float, seed: int,
          n_train: int, n_held: int, history: list[dict], batch_size: int, lr: float) -> dict:
    res = int(data.x.shape[-1])
    last = history[-1] if history else {}
    return {
        "kind": KIND,
        "arch": net.arch,
        "data": {"source": data.source, "resolution": res, "channels": int(data.x.shape[1]),
                 "fingerprint": data.fingerprint()},
        "split": {"heldout_frac": heldout_frac, "seed": seed, "n_train": n_train, "n_heldout": n_held},
        "train": {"step": step, "steps": steps, "batch_size": batch_size, "lr": lr},
        "heldout_bpd": last.get("heldout_bpd"),
        "history": history,
        "torch_version": torch.__version__,
    }


def train_teacher(source: str, out: str | Path | None = None, steps: int = 2000, batch_size: int = 32,
                  lr: float = 1e-3, hidden: int = 48, layers: int = 6, kernel: int = 3, first_kernel: int = 7,
                  heldout_frac: float = 0.1, seed: int = 0, resolution: int = 32, channels: int | None = None,
                  eval_every: int = 500, ckpt_every: int = 500,
                  on_step: Callable[[int, dict], None] | None = None,
                  data: ImageData | None = None, overwrite: bool = False,
                  device: str | torch.device = "cpu") -> TeacherResult:
    """Train a Gated PixelCNN on `source` by maximum likelihood (Adam) and save it to `out`.

    channels: 1 or 3, or None to keep an npz file's own channels. The held-out images
    (seeded split) are never trained on; their bits/dim is measured every `eval_every`
    steps and at the end and stored in the checkpoint's metadata. `on_step(step, record)`
    is called after every step (the CLI's progress bar).

    An existing file at `out` is never silently replaced: if it holds this same teacher
    (architecture, data, split, batch size, learning rate) trained for fewer than `steps`
    steps, training continues from it exactly where it stopped (weights, Adam state, batch
    order), so an interrupted or too-short run can be resumed or extended; otherwise a
    ValueError says what differs. `overwrite=True` retrains from scratch.
    """
    data = data or load_images(source, resolution, channels)
    out = Path(out) if out is not None else default_teacher_path(source)
    train_idx, held_idx = split_indices(len(data), heldout_frac, seed)
    if len(train_idx) < batch_size:
        raise ValueError(f"{data.source}: {len(train_idx)} training images, fewer than one batch of {batch_size}")
    dev = resolve_device(device, "--device")
    torch.manual_seed(seed)
    # built on the CPU under the seed, then moved: the same initialisation on every device
    net = GatedPixelCNN(int(data.x.shape[1]), hidden, layers, kernel, first_kernel).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x_train, x_held = data.x[train_idx].to(dev), data.x[held_idx].to(dev)  # uint8 on the device
    history: list[dict] = []
    running, elapsed = None, 0.0
    done = 0
    if out.exists() and not overwrite:
        done, history, running, elapsed = _resume(out, net, opt, data, steps, heldout_frac, seed, batch_size, lr)
    gen = torch.Generator().manual_seed(seed + 1)
    per_epoch = len(x_train) // batch_size
    perm = torch.randperm(len(x_train), generator=gen)
    t0 = time.perf_counter() - elapsed

    def save(step: int) -> None:
        meta = _meta(net, data, step, steps, heldout_frac, seed, len(x_train), len(x_held), history, batch_size, lr)
        meta["train"].update(time_s=time.perf_counter() - t0, train_bpd_smooth=running, device=str(dev))
        checkpoint.save(out, {"T": net}, {"opt_t": opt}, meta)

    for step in range(1, steps + 1):
        k = (step - 1) % per_epoch
        if k == 0 and step > 1:
            perm = torch.randperm(len(x_train), generator=gen)
        if step <= done:  # resuming: replay the batch order of the steps already taken
            continue
        xb = x_train[perm[k * batch_size:(k + 1) * batch_size].to(dev)]  # CPU order, gathered on the device
        loss = nll_discrete(net(to_float(xb)), xb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bpd = bits_per_dim(loss.item())
        running = bpd if running is None else 0.95 * running + 0.05 * bpd  # smoothed for the progress bar
        rec = {"step": step, "train_bpd": bpd, "train_bpd_smooth": running}
        if (eval_every and step % eval_every == 0) or step == steps:
            if len(x_held):
                rec["heldout_bpd"] = evaluate_bpd(net, x_held, batch_size)
            rec["time_s"] = time.perf_counter() - t0
            history.append(rec)
        if on_step is not None:
            on_step(step, rec)
        if ckpt_every and step % ckpt_every == 0 and step < steps:
            save(step)
    save(steps)
    _, meta = checkpoint.read(out)
    return TeacherResult(out, net, meta, history)


def _resume(out: Path, net: GatedPixelCNN, opt: torch.optim.Optimizer, data: ImageData, steps: int,
            heldout_frac: float, seed: int, batch_size: int, lr: float) -> tuple[int, list, float | None, float]:
    """Load an existing teacher file into (net, opt) to continue it; (steps done, history, smoothed bpd, seconds).

    Raises ValueError naming the file and what differs when it is not this same teacher, or
    when it already has `steps` steps or more.
    """
    try:
        tensors, meta = checkpoint.read(out)
    except checkpoint.CheckpointError as e:
        raise ValueError(f"{e}; it is in the way of the new teacher: choose another --out "
                         f"(or --force to replace it)") from None
    if meta.get("kind") != KIND:
        raise ValueError(f"{out}: exists and is not a teacher checkpoint (kind {meta.get('kind')!r}); "
                         f"choose another --out (or --force to replace it)")
    want = {
        "architecture": net.arch,
        "data fingerprint": data.fingerprint(),
        "resolution": int(data.x.shape[-1]),
        "held-out fraction": heldout_frac,
        "seed": seed,
        "batch size": batch_size,
        "learning rate": lr,
    }
    train = meta.get("train", {})
    have = {
        "architecture": meta.get("arch"),
        "data fingerprint": meta.get("data", {}).get("fingerprint"),
        "resolution": meta.get("data", {}).get("resolution"),
        "held-out fraction": meta.get("split", {}).get("heldout_frac"),
        "seed": meta.get("split", {}).get("seed"),
        "batch size": train.get("batch_size"),
        "learning rate": train.get("lr"),
    }
    for key, value in want.items():
        if have[key] != value:
            raise ValueError(f"{out}: exists as a teacher with {key} {have[key]!r}, not {value!r}; "
                             f"choose another --out, or --force to retrain it from scratch")
    done = int(train.get("step", 0))
    if done >= steps:
        raise ValueError(f"{out}: already trained for {done} steps (held-out bits/dim {meta.get('heldout_bpd')}); "
                         f"ask for more than {done} --steps to continue it, or --force to retrain from scratch")
    checkpoint.load_modules(tensors, {"T": net}, out)
    checkpoint.load_optimizers(tensors, meta, {"opt_t": opt})
    return done, list(meta.get("history", [])), train.get("train_bpd_smooth"), float(train.get("time_s", 0.0))


def load_teacher(path: str | Path, frozen: bool = True,
                 device: str | torch.device = "cpu") -> tuple[GatedPixelCNN, dict]:
    """(net, meta) of a teacher file, on `device`; frozen: eval mode and no parameter gradients."""
    path = Path(path)
    tensors, meta = checkpoint.read(path)
    if meta.get("kind") != KIND:
        raise checkpoint.CheckpointError(
            f"{path}: not a teacher checkpoint (kind {meta.get('kind')!r}); make one with `fewgan teacher train`")
    a = meta["arch"]
    net = GatedPixelCNN(a["channels"], a["hidden"], a["layers"], a["kernel"], a["first_kernel"])
    checkpoint.load_modules(tensors, {"T": net}, path)
    net.to(resolve_device(device, "--device"))
    if frozen:
        net.eval().requires_grad_(False)
    return net, meta


def sample_teacher(net: GatedPixelCNN, n: int, resolution: int, seed: int = 0,
                   temperature: float = 1.0) -> torch.Tensor:
    """n uint8 images from the teacher; the same seed gives the same images."""
    return sample(net, n, resolution, torch.Generator().manual_seed(seed), temperature)
