"""Evaluate a generator against a data set: samples -> backbone features -> every metric.

Real-data features are cached on disk keyed by the data's content fingerprint, the
backbone and the resolution (safetensors, under $FEWGAN_CACHE or ~/.cache/fewgan), so an
experiment extracts them once. Every result carries the backbone name, both sample counts
and the resolution, because FD/KID/IS values are only comparable under the same three.

Honest evaluation (docs/methods.md §21):

* **Held-out reals** (``holdout=``, the part ``data.split_holdout`` kept out of training):
  ``fd_holdout`` / ``kid_holdout`` score the same generated features against the held-out
  images, and ``fd_floor`` / ``kid_floor`` score the held-out images themselves against the
  training images -- what a perfect generator that never copies would get with
  n = ``n_holdout`` samples. A copying generator scores well on ``fd`` (vs train) and not on
  ``fd_holdout``; a fair one has ``fd_holdout`` near ``fd_floor`` + the gap its ``fd`` shows.
  Note the sample-size bias: ``fd_floor`` is FD at (n_train, n_holdout), ``fd`` at (n_train, n_gen).
* **Extra backbones** (``EvalSettings.backbones``): fd, kid, precision, recall (and with a
  holdout fd_holdout, kid_holdout, fd_floor, kid_floor) on each, keys suffixed with a short
  name: ``effnet-lite0`` -> ``_lite0``, ``effnet-lite2`` -> ``_lite2``, ``inception`` ->
  ``_inception`` (e.g. ``fd_lite2``); :func:`backbone_suffix`. A method whose D uses Lite0
  features is scored on Lite2 this way.
* **Leaks** (pixel space, same resolution only): ``leak_cutout``, ``leak_border``,
  ``leak_flip``, ``leak_rot`` and their ``*_real`` references; see :mod:`.leaks`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..data import ImageData
from ..images import save_grid
from .bootstrap import bootstrap_fd_ci, bootstrap_kid_ci
from .fd import fd_from_features
from ..devices import resolve_device
from .features import Backbone, extract, get_backbone
from .isc import inception_score
from .kid import kid_from_features
from .leaks import leak_stats
from .memorisation import closest_pairs, memorisation_report
from .ndb import ndb, ndb_cells
from .prdc import prdc
from .sharpness import sharpness, spectral_bands


@dataclass(frozen=True)
class EvalSettings:
    n: int = 1000  # generated samples
    backbone: str = "effnet-lite0"
    kid_subset: int = 500  # capped at the smaller sample count (the cap is recorded in the result)
    kid_subsets: int = 100
    is_splits: int = 10
    k: int = 5  # neighbours for precision / recall / density / coverage
    n_boot: int = 50  # bootstrap resamples for the FD / KID intervals (0 = none)
    seed: int = 0  # noise seed for the generated samples and the bootstrap
    batch_size: int = 100
    ndb_cells: int = 50  # most k-means cells for NDB (fewer for small sets: ~10 real images per cell)
    backbones: tuple = ()  # extra backbones, metrics suffixed by backbone_suffix(name), e.g. fd_lite2
    device: str = "cpu"  # where the backbones run: cpu | cuda | cuda:N | mps | auto (fewgan.devices)


_SUFFIXES = {"effnet-lite0": "lite0", "efficientnet-lite0": "lite0", "effnet-lite2": "lite2",
             "efficientnet-lite2": "lite2", "inception": "inception", "inception-v3-compat": "inception"}


def backbone_suffix(name: str) -> str:
    """The key suffix of an extra backbone's metrics: short, and free of '-' (fd_lite2, not fd_effnet-lite2)."""
    key = name.lower()
    return _SUFFIXES.get(key, key.replace("-", "_").replace("efficientnet_", "").replace("effnet_", ""))


def cache_dir() -> Path:
    return Path(os.environ.get("FEWGAN_CACHE", Path.home() / ".cache" / "fewgan"))


_BACKBONES: dict[str, Backbone] = {}  # by name (CPU) or name@device


def backbone(name: str, device: str | torch.device = "cpu") -> Backbone:
    """One backbone instance per (name, device) and process (loading the weights takes a second);
    built on the CPU, then moved to `device`."""
    dev = resolve_device(device, "--device")
    key = name if dev.type == "cpu" else f"{name}@{dev}"
    if key not in _BACKBONES:
        _BACKBONES[key] = get_backbone(name).to(dev)
    return _BACKBONES[key]


def real_features(data: ImageData, bb: Backbone, batch_size: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, probs) of the real images, from the cache when the same data was seen before."""
    res = data.x.shape[-1]
    # the tag names the exact computation (e.g. the fused effnet), so a cache is never mixed across them;
    # features computed on a GPU differ from the CPU's in the last digits: keyed by device type too
    tag = getattr(bb, "cache_tag", bb.name)
    dev = bb.device.type if isinstance(bb.device, torch.device) else "cpu"
    if dev != "cpu":  # (CPU files keep their old names)
        tag = f"{tag}-{dev}"
    path = cache_dir() / "features" / f"{data.fingerprint()[:32]}-{tag}-{res}px.safetensors"
    if path.is_file():
        try:
            t = load_file(str(path))
            return t["features"], t["probs"]
        except Exception:  # a damaged cache file is recomputed, never trusted
            path.unlink(missing_ok=True)
    feats, probs = extract(bb, data.x, batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    save_file({"features": feats.contiguous(), "probs": probs.contiguous()}, str(tmp))
    os.replace(tmp, path)
    return feats, probs


def metrics_from_features(f_real, f_gen, p_gen, s: EvalSettings) -> tuple[dict, object]:
    """All numbers from features (pure: no networks involved). Returns (record, memorisation report)."""
    n_real, n_gen = len(f_real), len(f_gen)
    subset = min(s.kid_subset, n_real, n_gen)
    kid, kid_std = kid_from_features(f_real, f_gen, n_subsets=s.kid_subsets, subset_size=subset, seed=s.seed)
    is_mean, is_std = inception_score(p_gen, splits=min(s.is_splits, n_gen))
    pr = prdc(f_real, f_gen, k=s.k)
    mem = memorisation_report(f_gen, f_real)
    rec = {
        "fd": fd_from_features(f_real, f_gen),
        "kid": kid, "kid_std": kid_std, "kid_subset": subset,
        "is": is_mean, "is_std": is_std,
        "precision": pr.precision, "recall": pr.recall, "density": pr.density, "coverage": pr.coverage,
        "near_copy_fraction": mem.near_copy_fraction,
        "nn_ratio_median": float(mem.ratio.median()),
    }
    nd = ndb(f_real, f_gen, k=ndb_cells(n_real, s.ndb_cells), seed=s.seed)  # mode collapse, label-free
    rec.update(ndb=nd.ndb, ndb_k=nd.ndb_k, ndb_js=nd.js, ndb_cells=nd.k)
    if s.n_boot:
        rec["fd_ci"] = list(bootstrap_fd_ci(f_real, f_gen, n_boot=s.n_boot, seed=s.seed))
        rec["kid_ci"] = list(bootstrap_kid_ci(f_real, f_gen, n_boot=s.n_boot, seed=s.seed,
                                              n_subsets=10, subset_size=subset))
    return rec, mem


def _kid(f_a, f_b, s: EvalSettings) -> tuple[float, int]:
    """KID and its subset size, capped at the smaller of the two counts."""
    subset = min(s.kid_subset, len(f_a), len(f_b))
    return kid_from_features(f_a, f_b, n_subsets=s.kid_subsets, subset_size=subset, seed=s.seed)[0], subset


def holdout_metrics(f_train, f_hold, f_gen, s: EvalSettings, with_ci: bool = True) -> dict:
    """FD / KID of the generated features vs the held-out reals, and the floor: the held-out reals
    themselves (as if generated, n = n_holdout) vs the training reals. Pure: features only."""
    kid_h, sub_h = _kid(f_hold, f_gen, s)
    kid_f, _ = _kid(f_train, f_hold, s)
    rec = {"fd_holdout": fd_from_features(f_hold, f_gen), "kid_holdout": kid_h, "kid_holdout_subset": sub_h,
           "fd_floor": fd_from_features(f_train, f_hold), "kid_floor": kid_f, "n_holdout": len(f_hold)}
    if with_ci and s.n_boot:
        rec["fd_holdout_ci"] = list(bootstrap_fd_ci(f_hold, f_gen, n_boot=s.n_boot, seed=s.seed))
        rec["kid_holdout_ci"] = list(bootstrap_kid_ci(f_hold, f_gen, n_boot=s.n_boot, seed=s.seed,
                                                      n_subsets=10, subset_size=sub_h))
    return rec


def extra_backbone_metrics(f_real, f_gen, s: EvalSettings, suffix: str, f_hold=None) -> dict:
    """The headline numbers on a second feature space (no intervals, NDB or memorisation: the
    point is only whether a gain survives a change of backbone). Keys end in _<suffix>."""
    kid, _ = _kid(f_real, f_gen, s)
    pr = prdc(f_real, f_gen, k=s.k)
    rec = {"fd": fd_from_features(f_real, f_gen), "kid": kid, "precision": pr.precision, "recall": pr.recall}
    if f_hold is not None:
        h = holdout_metrics(f_real, f_hold, f_gen, s, with_ci=False)
        rec.update({k: h[k] for k in ("fd_holdout", "kid_holdout", "fd_floor", "kid_floor")})
    return {f"{k}_{suffix}": v for k, v in rec.items()}


def evaluate_images(gen_uint8: torch.Tensor, data: ImageData, s: EvalSettings = EvalSettings(),
                    panel_path: str | Path | None = None, holdout: ImageData | None = None) -> dict:
    """Metrics of a set of generated uint8 images against `data` (the training reals); optionally
    save the NN panel. `holdout`: the reals kept out of training, scored against the same
    generated features (see the module docstring); `s.backbones`: further feature spaces."""
    t0 = time.perf_counter()
    bb = backbone(s.backbone, s.device)
    f_real, _ = real_features(data, bb, s.batch_size)
    f_gen, p_gen = extract(bb, gen_uint8, s.batch_size)
    rec, mem = metrics_from_features(f_real, f_gen, p_gen, s)
    if holdout is not None:
        f_hold, _ = real_features(holdout, bb, s.batch_size)  # cached like the training reals
        rec.update(holdout_metrics(f_real, f_hold, f_gen, s))
    extra = [name for name in dict.fromkeys(s.backbones) if backbone_suffix(name) != backbone_suffix(s.backbone)]
    for name in extra:
        bb2 = backbone(name, s.device)
        f_real2, _ = real_features(data, bb2, s.batch_size)
        f_gen2, _ = extract(bb2, gen_uint8, s.batch_size)
        f_hold2 = None if holdout is None else real_features(holdout, bb2, s.batch_size)[0]
        rec.update(extra_backbone_metrics(f_real2, f_gen2, s, backbone_suffix(name), f_hold2))
    if gen_uint8.shape[-2:] == data.x.shape[-2:]:  # pixel-space measures (same resolution only)
        rec.update(sharpness(gen_uint8, data.x))
        rec.update(spectral_bands(gen_uint8, data.x))
        rec.update(leak_stats(gen_uint8, data.x))
    if panel_path is not None:
        save_nn_panel(gen_uint8, data.x, mem, panel_path)
    head = {"backbone": bb.name, "resolution": int(gen_uint8.shape[-1]), "n_gen": len(f_gen), "n_real": len(f_real),
            "data": data.source, "data_fingerprint": data.fingerprint()[:16]}
    if extra:
        head["extra_backbones"] = [backbone(name, s.device).name for name in extra]
    return {**head, **rec, "time_s": time.perf_counter() - t0}


def settings_from_config(cfg, n: int | None = None, backbone_name: str | None = None,
                         device: str | torch.device | None = None) -> EvalSettings:
    """Evaluation settings of a run; the backbones run on `device` (default: the run's train.device)."""
    e = cfg.eval
    return EvalSettings(n=n or e.n, backbone=backbone_name or e.backbone, kid_subset=e.kid_subset, n_boot=e.n_boot,
                        backbones=tuple(getattr(e, "backbones", ()) or ()),
                        device=str(device) if device is not None else getattr(cfg.train, "device", "cpu"))


def evaluate_generator(pipe, data: ImageData, s: EvalSettings, out_dir: str | Path, step: int,
                       y: torch.Tensor | None = None, holdout: ImageData | None = None) -> dict:
    """Generate s.n images, evaluate them (against `data`, and `holdout` when given), write
    out_dir/metrics.json, append out_dir/metrics.jsonl, and save the nearest-neighbour panel as
    out_dir/eval/nearest_neighbours.png."""
    import json

    from .. import runs
    from ..sampling import generate
    from ..training.checkpoint import atomic_write

    out_dir = Path(out_dir)
    imgs = generate(pipe, s.n, seed=s.seed + 1_000_003, y=y)  # never the fixed grid latents
    rec = {"step": step, **evaluate_images(imgs, data, s, panel_path=runs.eval_dir(out_dir) / "nearest_neighbours.png",
                                           holdout=holdout)}
    atomic_write(runs.metrics_path(out_dir), lambda p: p.write_text(json.dumps(rec, indent=1)))
    with open(runs.metrics_log_path(out_dir), "a") as f:
        f.write(json.dumps(rec) + "\n")
    return rec


def save_nn_panel(gen: torch.Tensor, train: torch.Tensor, mem, path: str | Path, k: int = 16) -> Path:
    """Closest (generated, nearest training image) pairs, side by side, closest first."""
    pairs = closest_pairs(mem, k=min(k, len(gen)))
    imgs = []
    for gi, ti, _ in pairs:
        imgs += [gen[gi], train[ti]]
    return save_grid(torch.stack(imgs), path, nrow=8, scale=max(1, 64 // gen.shape[-1]))
