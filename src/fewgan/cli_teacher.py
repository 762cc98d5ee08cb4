"""`fewgan teacher ...`: train, measure and sample the autoregressive teacher of HGAN.

    fewgan teacher train --data ../shared/data/mnist_1k.npz --channels 1 --steps 3000
    fewgan teacher sample teachers/mnist_1k.safetensors -n 16 -o teacher_samples.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

teacher_app = typer.Typer(no_args_is_help=True, help="Autoregressive (Gated PixelCNN) teachers for HGAN.")
console = Console(stderr=True, soft_wrap=True)


def _fail(msg: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {msg}")
    raise typer.Exit(code)


@teacher_app.command("train")
def train(
    data: str = typer.Option(..., "--data", "-d", help="Data: 'emoji', an .npz file or an image folder."),
    steps: int = typer.Option(2000, "--steps", "-s", help="Training steps (one batch each)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Teacher file (default teachers/<data stem>.safetensors, where HGAN looks)."),
    resolution: int = typer.Option(32, "--resolution", "-r", help="Image size; must match the GAN's data.resolution."),
    channels: int = typer.Option(0, "--channels", help="1 or 3; 0 keeps an npz file's own channels (RGB for folders). "
                                                       "Must match the GAN's data.channels."),
    hidden: int = typer.Option(48, "--hidden", help="Channels per stack (a multiple of the image channels)."),
    layers: int = typer.Option(6, "--layers", help="Gated 3x3 layers after the first 7x7 mask-A layer."),
    batch_size: int = typer.Option(32, "--batch-size", "-b", help="Images per step."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    heldout: float = typer.Option(0.1, "--heldout", help="Fraction of images held out for bits/dim (seeded split)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the initialisation and the batch order."),
    eval_every: int = typer.Option(500, "--eval-every", help="Held-out bits/dim every N steps (and at the end)."),
    ckpt_every: int = typer.Option(500, "--ckpt-every", help="Rewrite the teacher file every N steps (0 = only at the end)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing teacher file and train from scratch."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    device: str = typer.Option("auto", "--device", help="Where to train: auto (cuda, then mps, then cpu) | cpu | "
                               "cuda | cuda:N | mps."),
) -> None:
    """Train a Gated PixelCNN by likelihood; report held-out bits/dim; save a frozen-loadable file.

    An existing teacher file is continued, never replaced: rerunning the same command resumes an
    interrupted run, and a larger --steps extends a finished one. --force retrains from scratch.
    """
    from .data import DataError
    from .teacher import default_teacher_path, train_teacher
    from .training.checkpoint import CheckpointError

    if channels not in (0, 1, 3):
        _fail(f"--channels must be 0, 1 or 3, got {channels}")
    out = out or default_teacher_path(data)
    if out.suffix != ".safetensors":
        _fail(f"--out {out}: a teacher file ends in .safetensors")
    bar = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("[bold]teacher"), BarColumn(), MofNCompleteColumn(), TextColumn("eta"),
                       TimeRemainingColumn(), TextColumn("{task.description}"), console=console)
        task = bar.add_task("", total=steps)
        bar.start()

    def on_step(step: int, rec: dict) -> None:
        if "heldout_bpd" in rec:
            msg = f"step {step}: train {rec['train_bpd_smooth']:.3f}  held-out {rec['heldout_bpd']:.3f} bits/dim"
            (bar.console.print if bar else console.print)(msg)
        if bar:
            bar.update(task, completed=step, description=f"{rec['train_bpd_smooth']:.3f} bits/dim (train)")

    console.print(f"teacher: {data} @ {resolution}px -> {out}  ({layers + 1} gated layers x {hidden} channels)"
                  + ("" if force or not out.exists() else "  (file exists: continuing it)"))
    try:
        res = train_teacher(data, out, steps=steps, batch_size=batch_size, lr=lr, hidden=hidden, layers=layers,
                            heldout_frac=heldout, seed=seed, resolution=resolution, channels=channels or None,
                            eval_every=eval_every, ckpt_every=ckpt_every, on_step=on_step, overwrite=force,
                            device=device)
    except (DataError, CheckpointError, ValueError) as e:
        _fail(str(e))
    finally:
        if bar:
            bar.stop()
    held = res.meta.get("heldout_bpd")
    split = res.meta["split"]
    console.print(f"done: {res.path}; held-out bits/dim "
                  f"{'n/a (no held-out images)' if held is None else f'{held:.4f}'} "
                  f"on {split['n_heldout']} images (trained on {split['n_train']})")


@teacher_app.command("sample")
def sample_cmd(
    teacher: Path = typer.Argument(..., help="A teacher file from `fewgan teacher train`."),
    n: int = typer.Option(16, "--n", "-n", help="How many images (autoregressive: slow, H*W*C passes)."),
    out: Path = typer.Option(Path("teacher_samples.png"), "--out", "-o",
                             help="Output: a .png grid or an .npz (x uint8 NHWC, e.g. an HGAN sample bank)."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed; the same seed gives the same images."),
    temperature: float = typer.Option(1.0, "--temperature", help="Softmax temperature (1 = the model's own)."),
    device: str = typer.Option("auto", "--device", help="Where the teacher runs: auto | cpu | cuda | cuda:N | mps "
                               "(the draws come from a CPU generator either way)."),
) -> None:
    """Draw images from a teacher, sub-pixel by sub-pixel."""
    import numpy as np

    from .images import save_grid
    from .teacher import load_teacher, sample_teacher
    from .training.checkpoint import CheckpointError, atomic_write

    try:
        net, meta = load_teacher(teacher, device=device)
    except (CheckpointError, ValueError) as e:
        _fail(str(e))
    res = int(meta["data"]["resolution"])
    imgs = sample_teacher(net, n, res, seed, temperature)
    if out.suffix == ".png":
        save_grid(imgs, out)
    elif out.suffix == ".npz":
        x = imgs.permute(0, 2, 3, 1).numpy()

        def write(p: Path) -> None:
            with open(p, "wb") as f:  # a file object: np.savez would otherwise append .npz to the temp name
                np.savez_compressed(f, x=x)

        atomic_write(out, write)
    else:
        _fail(f"--out {out}: expected a .png grid or an .npz file")
    console.print(f"{n} samples from {teacher} (held-out bits/dim {meta.get('heldout_bpd')}) -> {out}")
