"""Held-out evaluation: the split, and evaluate_images(..., holdout=) with a tiny fake backbone."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fewgan.data import DataError, ImageData, split_holdout
from fewgan.metrics import evaluate as ev


def indexed_data(counts=(30, 17, 3), size: int = 8) -> ImageData:
    """Random images whose first two pixels spell their index, with labels in blocks of `counts`."""
    n = sum(counts)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    idx = torch.arange(n)
    x[:, 0, 0, 0], x[:, 0, 0, 1] = (idx // 256).to(torch.uint8), (idx % 256).to(torch.uint8)
    y = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    return ImageData(x=x, y=y, class_names=[f"c{k}" for k in range(len(counts))], source="synthetic")


def indices(d: ImageData) -> set[int]:
    return set((d.x[:, 0, 0, 0].long() * 256 + d.x[:, 0, 0, 1].long()).tolist())


def test_split_is_disjoint_complete_and_stratified():
    data = indexed_data()
    train, held = split_holdout(data, 0.2, seed=3)
    assert indices(train).isdisjoint(indices(held))
    assert indices(train) | indices(held) == set(range(len(data)))
    for c, n_c in enumerate((30, 17, 3)):
        assert int((held.y == c).sum()) == round(0.2 * n_c) == int((data.y == c).sum()) - int((train.y == c).sum())
    for part in (train, held):  # labels still belong to their images
        ids = torch.tensor(sorted(indices(part)))
        assert torch.equal(part.y, data.y[ids])


def test_split_is_seeded():
    data = indexed_data()
    a, b = split_holdout(data, 0.3, seed=1)[1], split_holdout(data, 0.3, seed=1)[1]
    c = split_holdout(data, 0.3, seed=2)[1]
    assert indices(a) == indices(b) and indices(a) != indices(c)


def test_split_fraction_zero_and_invalid():
    data = indexed_data()
    train, held = split_holdout(data, 0.0)
    assert train is data and held is None
    for bad in (-0.1, 1.0, 1.5, True, "0.2"):
        with pytest.raises(DataError, match="data.holdout"):
            split_holdout(data, bad)


def blobs(n: int, seed: int, size: int = 16) -> torch.Tensor:
    """Smooth random images (the fake backbone's features are spread, not degenerate)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g) * 255
    return F.interpolate(low, size=size, mode="bilinear", align_corners=False).round().clamp(0, 255).to(torch.uint8)


S = ev.EvalSettings(backbone="fake", n_boot=10, kid_subsets=10, kid_subset=100, ndb_cells=5)


def test_holdout_adds_its_keys_and_a_finite_floor(fake_backbone):
    data = ImageData(x=blobs(240, 0), source="blobs")
    train, held = split_holdout(data, 0.25, seed=0)
    rec = ev.evaluate_images(blobs(120, 1), train, S, holdout=held)
    for k in ("fd_holdout", "kid_holdout", "fd_floor", "kid_floor", "fd_holdout_ci", "kid_holdout_ci", "n_holdout"):
        assert k in rec, k
    assert rec["n_holdout"] == 60 and rec["n_real"] == 180
    assert math.isfinite(rec["fd_floor"]) and rec["fd_floor"] >= 0
    assert rec["kid_holdout_subset"] == 60  # capped at the smallest count
    lo, hi = rec["fd_holdout_ci"]
    assert lo <= hi
    assert "fd_holdout" not in ev.evaluate_images(blobs(120, 1), train, S)  # only with a holdout
    cached = list((tmp := ev.cache_dir() / "features").glob("*.safetensors"))
    assert len(cached) == 2 and all("fake-pooled-v1" in p.name for p in cached), tmp  # train + held-out


def test_a_copying_generator_beats_train_but_not_holdout(fake_backbone):
    data = ImageData(x=blobs(300, 0), source="blobs")
    train, held = split_holdout(data, 0.3, seed=0)
    copy = ev.evaluate_images(train.x.clone(), train, S, holdout=held)
    fresh = ev.evaluate_images(blobs(len(train), 7), train, S, holdout=held)
    assert copy["fd"] < 1e-6 < fresh["fd"]  # vs train the copier is perfect ...
    assert copy["fd_holdout"] == pytest.approx(copy["fd_floor"], rel=1e-6)  # ... vs held-out it is only the floor
    assert copy["near_copy_fraction"] == 1.0
    # a fair generator from the same distribution lands near the floor too, never far below it
    assert fresh["fd_holdout"] > 0.5 * copy["fd_floor"]


def test_extra_backbone_keys_are_suffixed(fake_backbone, monkeypatch):
    monkeypatch.setattr(ev, "_SUFFIXES", {**ev._SUFFIXES, "fake2": "f2"})
    data = ImageData(x=blobs(200, 0), source="blobs")
    train, held = split_holdout(data, 0.2, seed=0)
    s = ev.EvalSettings(backbone="fake", backbones=("fake2", "fake"), n_boot=0, kid_subsets=5, ndb_cells=5)
    rec = ev.evaluate_images(blobs(100, 2), train, s, holdout=held)
    for k in ("fd_f2", "kid_f2", "precision_f2", "recall_f2", "fd_holdout_f2", "kid_holdout_f2", "fd_floor_f2"):
        assert k in rec, k
    assert rec["fd_f2"] == pytest.approx(rec["fd"])  # the same features here: the same numbers
    assert not any(k.endswith("_fake") for k in rec)  # the main backbone is not repeated
    assert "fd_holdout_ci" not in rec  # n_boot = 0


def test_backbone_suffixes():
    assert ev.backbone_suffix("effnet-lite2") == "lite2"
    assert ev.backbone_suffix("effnet-lite0") == "lite0"
    assert ev.backbone_suffix("inception") == "inception"
    assert "-" not in ev.backbone_suffix("some-new-net")


def test_leak_keys_are_in_the_record(fake_backbone):
    data = ImageData(x=blobs(100, 0), source="blobs")
    gen = blobs(50, 3)
    gen[:, :, :4, :4] = 127
    rec = ev.evaluate_images(gen, data, ev.EvalSettings(backbone="fake", n_boot=0, kid_subsets=5, ndb_cells=5))
    assert rec["leak_cutout"] == 1.0 and rec["leak_cutout_real"] == 0.0
    assert {"leak_border", "leak_flip", "leak_rot", "leak_rot_real"} <= set(rec)


def test_settings_from_config_passes_backbones():
    from fewgan import config as config_mod

    cfg = config_mod.from_dict({"data": {"source": "x.npz"}, "eval": {"backbones": ["effnet-lite2"]}})
    assert ev.settings_from_config(cfg).backbones == ("effnet-lite2",)


def test_evaluate_generator_accepts_holdout():
    import inspect

    assert "holdout" in inspect.signature(ev.evaluate_generator).parameters
