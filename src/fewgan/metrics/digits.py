"""Mode coverage on MNIST: a small digit classifier and the class histogram of generated images.

Train once on `mnist_1k.npz` with a seeded train / held-out split (its held-out accuracy
goes into the checkpoint's metadata and must be reported with any coverage number), then
`coverage(net, images)` says how many of the 10 digits a generator produces and how far
its class histogram is from uniform (total variation and KL(p || uniform)).

The classifier is saved as a fewgan checkpoint (safetensors + JSON, atomic writes) with
`kind: digit-classifier`. It sees grey images at its own resolution (32 px by default);
generated images are converted to grey (channel mean) and resized to it.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import load_images, to_float
from ..training import checkpoint

KIND = "digit-classifier"


class DigitNet(nn.Module):
    """Two conv blocks (32, 64 channels; 3x3, ReLU, 2x2 max-pool), dropout, a 128-unit hidden layer, 10 logits."""

    def __init__(self, resolution: int = 32, num_classes: int = 10):
        """resolution: input size (a multiple of 4); num_classes: output classes."""
        super().__init__()
        self.resolution, self.num_classes = resolution, num_classes
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * (resolution // 4) ** 2, 128),
                                  nn.ReLU(True), nn.Linear(128, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def prepare_images(x_uint8: Tensor, resolution: int) -> Tensor:
    """uint8 (N, C, H, W) -> float grey (N, 1, resolution, resolution) in [-1, 1]."""
    x = to_float(x_uint8)
    if x.shape[1] != 1:
        x = x.mean(1, keepdim=True)
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
    return x


@torch.no_grad()
def predict(net: DigitNet, x_uint8: Tensor, batch_size: int = 256) -> Tensor:
    """Predicted class (N,) of uint8 images of any size and channel count."""
    was_training = net.training
    net.eval()
    try:
        out = [net(prepare_images(x_uint8[i:i + batch_size], net.resolution)).argmax(1)
               for i in range(0, len(x_uint8), batch_size)]
    finally:
        net.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def train_digit_classifier(source: str | Path, out: str | Path | None = None, steps: int = 1500,
                           batch_size: int = 64, lr: float = 1e-3, heldout_frac: float = 0.2, seed: int = 0,
                           resolution: int = 32, max_shift: int = 2) -> tuple[DigitNet, dict]:
    """Train on a labelled data source (random shifts of up to max_shift px as augmentation);
    returns (net, meta) with meta["heldout_acc"]; saves to `out` if given."""
    from ..teacher import split_indices  # one seeded-split rule for every held-out set in fewgan

    data = load_images(source, resolution, 1)
    if data.y is None:
        raise ValueError(f"{data.source}: has no labels ('y'); a digit classifier needs labelled images")
    train_idx, held_idx = split_indices(len(data), heldout_frac, seed)
    torch.manual_seed(seed)
    net = DigitNet(resolution, max(10, data.num_classes))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed + 1)
    x_train, y_train = prepare_images(data.x[train_idx], resolution), data.y[train_idx]
    for _ in range(steps):
        idx = torch.randint(len(x_train), (batch_size,), generator=gen)
        xb = x_train[idx]
        if max_shift:
            dx, dy = torch.randint(-max_shift, max_shift + 1, (2,), generator=gen).tolist()
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
        loss = F.cross_entropy(net(xb), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    held_pred = predict(net, data.x[held_idx])
    acc = float((held_pred == data.y[held_idx]).float().mean()) if len(held_idx) else float("nan")
    meta = {"kind": KIND, "resolution": resolution, "num_classes": net.num_classes, "class_names": data.class_names,
            "source": data.source, "split": {"heldout_frac": heldout_frac, "seed": seed, "n_train": len(train_idx),
                                             "n_heldout": len(held_idx)},
            "steps": steps, "heldout_acc": acc}
    if out is not None:
        checkpoint.save(out, {"net": net}, {}, meta)
    return net, meta


def load_digit_classifier(path: str | Path) -> tuple[DigitNet, dict]:
    tensors, meta = checkpoint.read(path)
    if meta.get("kind") != KIND:
        raise checkpoint.CheckpointError(f"{path}: not a digit classifier (kind {meta.get('kind')!r})")
    net = DigitNet(meta["resolution"], meta["num_classes"])
    checkpoint.load_modules(tensors, {"net": net}, path)
    return net.eval(), meta


def coverage_from_labels(pred: Tensor, num_classes: int = 10, threshold: float = 0.05) -> dict:
    """Mode coverage of predicted labels (pure): class counts and fractions, the number of
    classes holding at least `threshold` of the samples, total variation and KL(p || uniform)
    (nats; 0 for a uniform histogram, log K when one class takes everything)."""
    counts = torch.bincount(pred.long(), minlength=num_classes)[:num_classes].double()
    p = counts / counts.sum().clamp_min(1)
    u = 1.0 / num_classes
    nz = p > 0
    kl = float((p[nz] * (p[nz] / u).log()).sum())
    return {
        "counts": [int(c) for c in counts],
        "fractions": [float(f) for f in p],
        "classes_present": int((p >= threshold).sum()),
        "threshold": threshold,
        "tv_uniform": float(0.5 * (p - u).abs().sum()),
        "kl_uniform": kl,
        "kl_uniform_max": math.log(num_classes),
        "n": int(counts.sum()),
    }


def coverage(net: DigitNet, x_uint8: Tensor, threshold: float = 0.05) -> dict:
    """Mode coverage of generated uint8 images under the classifier."""
    return coverage_from_labels(predict(net, x_uint8), net.num_classes, threshold)
