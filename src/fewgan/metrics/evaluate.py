"""Evaluate a generator against a data set: samples -> backbone features -> every metric.

Real-data features are cached on disk keyed by the data's content fingerprint, the
backbone and the resolution (safetensors, under $FEWGAN_CACHE or ~/.cache/fewgan), so an
experiment extracts them once. Every result carries the backbone name, both sample counts
and the resolution, because FD/KID/IS values are only comparable under the same three.
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
from .features import Backbone, extract, get_backbone
from .isc import inception_score
from .kid import kid_from_features
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


def cache_dir() -> Path:
    return Path(os.environ.get("FEWGAN_CACHE", Path.home() / ".cache" / "fewgan"))


_BACKBONES: dict[str, Backbone] = {}


def backbone(name: str) -> Backbone:
    """One backbone instance per process (loading the weights takes a second)."""
    if name not in _BACKBONES:
        _BACKBONES[name] = get_backbone(name)
    return _BACKBONES[name]


def real_features(data: ImageData, bb: Backbone, batch_size: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, probs) of the real images, from the cache when the same data was seen before."""
    res = data.x.shape[-1]
    # the tag names the exact computation (e.g. the fused effnet), so a cache is never mixed across them
    tag = getattr(bb, "cache_tag", bb.name)
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


def evaluate_images(gen_uint8: torch.Tensor, data: ImageData, s: EvalSettings = EvalSettings(),
                    panel_path: str | Path | None = None) -> dict:
    """Metrics of a set of generated uint8 images against `data`; optionally save the NN panel."""
    t0 = time.perf_counter()
    bb = backbone(s.backbone)
    f_real, _ = real_features(data, bb, s.batch_size)
    f_gen, p_gen = extract(bb, gen_uint8, s.batch_size)
    rec, mem = metrics_from_features(f_real, f_gen, p_gen, s)
    if gen_uint8.shape[-2:] == data.x.shape[-2:]:  # pixel-space blur measure (same resolution only)
        rec.update(sharpness(gen_uint8, data.x))
        rec.update(spectral_bands(gen_uint8, data.x))
    if panel_path is not None:
        save_nn_panel(gen_uint8, data.x, mem, panel_path)
    head = {"backbone": bb.name, "resolution": int(gen_uint8.shape[-1]), "n_gen": len(f_gen), "n_real": len(f_real),
            "data": data.source, "data_fingerprint": data.fingerprint()[:16]}
    return {**head, **rec, "time_s": time.perf_counter() - t0}


def settings_from_config(cfg, n: int | None = None, backbone_name: str | None = None) -> EvalSettings:
    e = cfg.eval
    return EvalSettings(n=n or e.n, backbone=backbone_name or e.backbone, kid_subset=e.kid_subset, n_boot=e.n_boot)


def evaluate_generator(pipe, data: ImageData, s: EvalSettings, out_dir: str | Path, step: int,
                       y: torch.Tensor | None = None) -> dict:
    """Generate s.n images, evaluate them, write out_dir/metrics.json, append out_dir/metrics.jsonl,
    and save the nearest-neighbour panel as out_dir/eval/nearest_neighbours.png."""
    import json

    from ..sampling import generate
    from ..training.checkpoint import atomic_write

    out_dir = Path(out_dir)
    imgs = generate(pipe, s.n, seed=s.seed + 1_000_003, y=y)  # never the fixed grid latents
    rec = {"step": step, **evaluate_images(imgs, data, s, panel_path=out_dir / "eval" / "nearest_neighbours.png")}
    atomic_write(out_dir / "metrics.json", lambda p: p.write_text(json.dumps(rec, indent=1)))
    with open(out_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    return rec


def save_nn_panel(gen: torch.Tensor, train: torch.Tensor, mem, path: str | Path, k: int = 16) -> Path:
    """Closest (generated, nearest training image) pairs, side by side, closest first."""
    pairs = closest_pairs(mem, k=min(k, len(gen)))
    imgs = []
    for gi, ti, _ in pairs:
        imgs += [gen[gi], train[ti]]
    return save_grid(torch.stack(imgs), path, nrow=8, scale=max(1, 64 // gen.shape[-1]))
