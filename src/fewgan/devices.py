"""Where a run computes (train.device, --device) and in which precision (train.fast, train.amp).

One rule keeps results device-independent where they can be: networks are built on the CPU
under the run's seed and then moved, and every random draw (batch order, latent noise, label
noise, augmentation parameters, fake labels) comes from a CPU generator seeded per (seed, step)
and is moved to the device afterwards. What each mode promises is in README "Devices and
precision".
"""

from __future__ import annotations

import contextlib
import os
import re

import torch

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_CUDA_N = re.compile(r"^cuda:(\d+)$")


class DeviceError(ValueError):
    """An explicit device that this machine does not have (or a name that is no device)."""


def _torch_version() -> str:
    return ".".join(torch.__version__.split("+")[0].split(".")[:2])


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str | torch.device | None = "auto", what: str = "train.device") -> torch.device:
    """`auto` (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps -> a torch.device that exists here.

    An explicit device this machine lacks raises DeviceError with one line saying why, e.g.
    "train.device=cuda: no CUDA device here (torch 2.13 built without CUDA)"."""
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    m = _CUDA_N.match(name)
    if name == "cuda" or m:
        index = int(m.group(1)) if m else 0
        if torch.version.cuda is None:
            why = f"torch {_torch_version()} built without CUDA"
        elif not torch.cuda.is_available():
            why = f"torch {_torch_version()} with CUDA {torch.version.cuda}, but no usable GPU (0 devices)"
        elif index >= torch.cuda.device_count():
            n = torch.cuda.device_count()
            why = f"{n} device{'s' * (n != 1)} (cuda:0{f'..cuda:{n - 1}' if n > 1 else ''})"
        else:
            return torch.device(name)
        raise DeviceError(f"{what}={name}: no CUDA device here ({why})")
    if name == "mps":
        if not _mps_available():
            raise DeviceError(f"{what}=mps: no MPS device here (Apple-silicon GPU with an MPS build of torch "
                              f"{_torch_version()} needed)")
        return torch.device("mps")
    raise DeviceError(f"{what}={name!r}: not a device; valid: {', '.join(DEVICES)}")


def amp_dtype(amp: str) -> torch.dtype:
    """train.amp -> the autocast dtype of the fast path (bf16 | fp16)."""
    if amp not in AMP_DTYPES:
        raise ValueError(f"train.amp must be one of {', '.join(AMP_DTYPES)}, got {amp!r}")
    return AMP_DTYPES[amp]


def autocast(device: torch.device, fast: bool, amp: str = "bf16"):
    """Autocast on `device`'s type in train.amp's dtype when the fast path is on; a no-op otherwise."""
    if not fast:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=amp_dtype(amp))


def uses_scaler(fast: bool, amp: str) -> bool:
    """fp16 needs loss scaling (one GradScaler per optimiser); bf16 and fp32 do not."""
    return bool(fast) and amp == "fp16"


@contextlib.contextmanager
def backend_flags(device: torch.device, fast: bool, deterministic: bool):
    """The numerics a run asks for, restored afterwards (tests train many runs in one process).

    CUDA: TF32 matmuls / convolutions only on the fast path (so fp32 means fp32); with
    `deterministic` deterministic algorithms, cudnn.benchmark off and a fixed cuBLAS workspace.
    CPU: `deterministic` turns on torch's deterministic-algorithm check, which changes nothing
    in effect (the CPU kernels fewgan uses are deterministic already)."""
    cuda = device.type == "cuda"
    saved = {"det": torch.are_deterministic_algorithms_enabled(),
             "det_warn": torch.is_deterministic_algorithms_warn_only_enabled()}
    if cuda:
        saved.update(mm=torch.backends.cuda.matmul.allow_tf32, cudnn=torch.backends.cudnn.allow_tf32,
                     bench=torch.backends.cudnn.benchmark, cudnn_det=torch.backends.cudnn.deterministic)
        if deterministic:
            # must be set before cuBLAS creates its handle; harmless if it already was
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cuda.matmul.allow_tf32 = bool(fast)
        torch.backends.cudnn.allow_tf32 = bool(fast)
        if deterministic:
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
    if deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved["det"], warn_only=saved["det_warn"])
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = saved["mm"]
            torch.backends.cudnn.allow_tf32 = saved["cudnn"]
            torch.backends.cudnn.benchmark = saved["bench"]
            torch.backends.cudnn.deterministic = saved["cudnn_det"]


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter (or buffer); CPU for one without either."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The device's global RNG state (dropout etc. on CUDA) as CPU tensors, for checkpoints."""
    if device.type == "cuda":
        return {"cuda_rng": torch.cuda.get_rng_state(device).cpu()}
    return {}


def set_rng_state(device: torch.device, tensors: dict[str, torch.Tensor]) -> None:
    """Restore what rng_state saved, when the checkpoint has it and the device is the same kind."""
    if device.type == "cuda" and "extra/cuda_rng" in tensors:
        torch.cuda.set_rng_state(tensors["extra/cuda_rng"].cpu(), device)


def to_host(stats: dict) -> dict:
    """A step's stats with every tensor value turned into a Python float in one host transfer
    per device (the values are those .item() would give: float64 holds bf16 / fp32 exactly)."""
    keys = [k for k, v in stats.items() if torch.is_tensor(v)]
    if not keys:
        return stats
    out = dict(stats)
    by_dev: dict[torch.device, list[str]] = {}
    for k in keys:
        by_dev.setdefault(stats[k].device, []).append(k)
    for dev, ks in by_dev.items():
        wide = torch.float32 if dev.type == "mps" else torch.float64  # MPS has no float64
        vals = torch.stack([stats[k].detach().reshape(()).to(wide) for k in ks]).tolist()
        out.update(zip(ks, vals))
    return out
