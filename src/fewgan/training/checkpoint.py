"""Checkpoints are data, not code: one safetensors file per checkpoint.

Tensors (module state, optimiser moments, RNG states) are safetensors entries named
`<module>/<key>`; everything else (config, step, optimiser hyper-parameters, variant
state) is one JSON document in the file's metadata under "fewgan". Nothing is ever
unpickled. Files are written to a temporary name in the same folder, fsynced and then
renamed over the target, so a kill mid-write never leaves a broken checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT = "fewgan-checkpoint-1"
_NAME = re.compile(r"^ckpt_(\d{8})\.safetensors$")


class CheckpointError(ValueError):
    """A checkpoint file is missing, not a fewgan checkpoint, or does not fit the model."""


class WriteError(OSError):
    """A file of the run could not be written. str() is one line: the path and the cause in plain
    words (disk full, permission denied, read-only file system), not a 60-line traceback."""

    def __init__(self, path: str | Path, err: int | None, detail: str):
        super().__init__(err or errno.EIO, detail, str(path))
        self.path, self.cause = Path(path), io_cause(err, detail)

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.cause}"


_CAUSES = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EACCES: "permission denied",
           errno.EPERM: "permission denied", errno.EROFS: "read-only file system"}
_OS_CODE = re.compile(r"(?:os error|code:) ?(\d+)")


def io_cause(err: int | None, detail: str = "") -> str:
    """The cause of an I/O error in plain words, with the system's own text after it."""
    text = os.strerror(err) if err else detail
    plain = _CAUSES.get(err)
    return f"{plain} ({text})" if plain and text else plain or text or "I/O error"


def as_write_error(e: BaseException, path: str | Path) -> WriteError | None:
    """`e` as a WriteError for `path`, if it is an I/O error (OSError, or safetensors' own error
    that wraps one and only names a temporary file); None for anything else."""
    if isinstance(e, WriteError):
        return e
    if isinstance(e, OSError):
        return WriteError(path, e.errno, e.strerror or str(e))
    if isinstance(e, SafetensorError):
        m = _OS_CODE.search(str(e))
        if m:
            return WriteError(path, int(m.group(1)), str(e))
    return None


@contextlib.contextmanager
def writing(path: str | Path):
    """Turn an I/O error raised while writing `path` into a WriteError naming it."""
    try:
        yield
    except (OSError, SafetensorError) as e:
        w = as_write_error(e, path)
        if w is None or w is e:
            raise
        raise w from e


def ckpt_name(step: int) -> str:
    return f"ckpt_{step:08d}.safetensors"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    from .. import runs

    d = runs.checkpoints_dir(run_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if _NAME.match(p.name))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    cks = list_checkpoints(run_dir)
    return cks[-1] if cks else None


def _new_file_mode() -> int:
    """The permissions an ordinary new file gets under the process umask (e.g. 0o644)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), then fsync and rename tmp_path to path.

    An I/O error (disk full, permission, read-only) leaves the old file as it was and is raised as
    a WriteError naming `path`. The result has the permissions of the file it replaces, or a new
    file's under the umask (some writers, safetensors among them, create owner-only files, which
    would hide shared runs).
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with writing(path):
        _atomic_write(path, tmp, write)


def _atomic_write(path: Path, tmp: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write(tmp)
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if path.exists() else _new_file_mode())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        with contextlib.suppress(OSError):  # a failed write's partial file; the original error matters
            tmp.unlink()


def _optimizer_to_flat(name: str, opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    sd = opt.state_dict()
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{name}/state/{pid}/{k}"] = v
            else:
                meta.setdefault("optim_scalars", {})[f"{name}/state/{pid}/{k}"] = v
    meta.setdefault("optim_groups", {})[name] = sd["param_groups"]


def _optimizer_from_flat(name: str, opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    prefix = f"{name}/state/"
    for key, v in tensors.items():
        if key.startswith(prefix):
            pid, k = key[len(prefix):].split("/", 1)
            state.setdefault(int(pid), {})[k] = v
    for key, v in meta.get("optim_scalars", {}).items():
        if key.startswith(prefix):
            pid, k = key[len(prefix):].split("/", 1)
            state.setdefault(int(pid), {})[k] = v
    if name not in meta.get("optim_groups", {}):
        raise CheckpointError(f"checkpoint has no optimiser {name!r}")
    groups = meta["optim_groups"][name]
    # JSON turns tuples (Adam's betas) into lists; give them back their original type
    groups = [{k: tuple(v) if isinstance(cur.get(k), tuple) else v for k, v in g.items()}
              for g, cur in zip(groups, opt.param_groups)]
    opt.load_state_dict({"state": state, "param_groups": groups})


def save(path: str | Path, modules: dict, optimizers: dict, meta: dict, extra_tensors: dict | None = None) -> Path:
    """Write modules' state_dicts, optimisers and `meta` (JSON-able) to `path` atomically."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    meta = dict(meta, format=FORMAT, modules=sorted(modules))
    for mname, m in modules.items():
        for k, v in m.state_dict().items():
            tensors[f"{mname}/{k}"] = v
    for oname, opt in optimizers.items():
        _optimizer_to_flat(oname, opt, tensors, meta)
    for k, v in (extra_tensors or {}).items():
        tensors[f"extra/{k}"] = v
    # safetensors wants contiguous CPU tensors that share no memory; saved from the CPU, a
    # checkpoint is device-free (one trained on a GPU loads anywhere; load_* copy onto the target)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"fewgan": json.dumps(meta)}))
    return path


def read(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, meta) of a checkpoint, with clear errors for anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            raw = (f.metadata() or {}).get("fewgan")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({e})") from None
    if raw is None:
        raise CheckpointError(f"{path}: safetensors file without fewgan metadata (not a fewgan checkpoint)")
    meta = json.loads(raw)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')!r}, expected {FORMAT!r}")
    return tensors, meta


def load_modules(tensors: dict, modules: dict, path: str | Path = "checkpoint") -> None:
    for mname, m in modules.items():
        prefix = f"{mname}/"
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not sd:
            raise CheckpointError(f"{path}: has no weights for {mname!r}")
        try:
            m.load_state_dict(sd)
        except RuntimeError as e:
            raise CheckpointError(f"{path}: weights for {mname!r} do not fit the model: {e}") from None


def load_optimizers(tensors: dict, meta: dict, optimizers: dict) -> None:
    for oname, opt in optimizers.items():
        _optimizer_from_flat(oname, opt, tensors, meta)


def resolve(path_or_run: str | Path) -> Path:
    """A checkpoint file, or a run folder (its latest checkpoint)."""
    p = Path(path_or_run)
    if p.is_dir():
        ck = latest_checkpoint(p)
        if ck is None:
            raise CheckpointError(f"{p}: run folder has no checkpoints/ckpt_*.safetensors")
        return ck
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint file or run folder")
    return p
