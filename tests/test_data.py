"""Behaviour tests for fewgan.data: built-in set, npz files, folders, errors, helpers."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fewgan.data import (
    DataError,
    ImageData,
    builtin_names,
    describe,
    load_images,
    to_float,
    to_uint8,
)

RED, BLUE = (255, 0, 0), (0, 0, 255)


# ---------------------------------------------------------------------------- helpers


def save(path: Path, im: Image.Image, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **kw)
    return path


def solid(path: Path, color=RED, size=(16, 16), mode="RGB") -> Path:
    return save(path, Image.new(mode, size, color))


def noise_png(path: Path, size=(64, 64), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    return save(path, Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)))


def centre_red_sides_blue(w: int, h: int) -> Image.Image:
    """Blue image whose centre min(w,h) square is red: what a centre crop must keep."""
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 2] = 255
    s = min(w, h)
    top, left = (h - s) // 2, (w - s) // 2
    a[top:top + s, left:left + s] = RED
    return Image.fromarray(a)


def assert_centre_red(x: torch.Tensor) -> None:
    """x: (3,R,R) uint8. Centre is pure red; every pixel is more red than blue."""
    r = x.shape[-1]
    c = x[:, r // 4: r - r // 4, r // 4: r - r // 4].int()
    assert (c[0] >= 250).all() and (c[1] <= 5).all() and (c[2] <= 5).all()
    assert (x[0].int() > x[2].int()).all()


# --------------------------------------------------------------------------- built-in


def test_builtin_names():
    assert builtin_names() == ["emoji"]


def test_builtin_emoji_32():
    t0 = time.perf_counter()
    d = load_images("emoji")
    elapsed = time.perf_counter() - t0
    assert isinstance(d, ImageData)
    assert len(d) == 694
    assert d.x.shape == (694, 3, 32, 32) and d.x.dtype == torch.uint8
    assert d.x.is_contiguous()
    assert d.y is not None and d.y.dtype == torch.int64 and d.y.shape == (694,)
    assert d.class_names == ["negative", "positive"] and d.num_classes == 2
    assert torch.bincount(d.y).tolist() == [362, 332]
    assert d.source == "emoji" and d.skipped == []
    assert elapsed < 3.0  # no per-image Pillow work on this path (~0.05 s here)


def test_builtin_emoji_64_and_other_resolutions():
    d64 = load_images("emoji", resolution=64)
    assert d64.x.shape == (694, 3, 64, 64)
    d48 = load_images("emoji", resolution=48, channels=1)
    assert d48.x.shape == (694, 1, 48, 48)
    assert load_images("emoji", resolution=None).x.shape == (694, 3, 32, 32)
    assert load_images("emoji", resolution=16).x.shape == (694, 3, 16, 16)
    assert torch.equal(d64.y, load_images("emoji").y)


def test_builtin_name_only_as_string(tmp_path, monkeypatch):
    # A Path is always a path: Path("emoji") in an empty folder does not exist.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="no such file or folder"):
        load_images(Path("emoji"))


# -------------------------------------------------------------------------------- npz


def test_npz_round_trip_with_labels(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    y = np.array([0, 2, 1, 2, 0], dtype=np.int32)
    p = tmp_path / "set.npz"
    np.savez(p, x=x, y=y, label_names=np.array(["a", "b", "c"]))
    d = load_images(p, resolution=None, channels=None)
    assert torch.equal(d.x, torch.from_numpy(x).permute(0, 3, 1, 2))
    assert d.x.is_contiguous()
    assert d.y.dtype == torch.int64 and d.y.tolist() == y.tolist()
    assert d.class_names == ["a", "b", "c"] and d.num_classes == 3
    assert d.source == str(p)
    # Same size asked for: identical pixels, no resampling.
    assert torch.equal(load_images(p, resolution=8).x, d.x)


def test_npz_label_names_default_and_classes_key(tmp_path):
    x = np.zeros((4, 4, 4, 3), np.uint8)
    p = tmp_path / "a.npz"
    np.savez(p, x=x, y=np.array([0, 2, 2, 1], np.uint8))
    assert load_images(p, resolution=None).class_names == ["0", "1", "2"]
    q = tmp_path / "b.npz"
    np.savez(q, x=x, y=np.array([0, 1, 1, 0]), classes=np.array([b"cat", b"dog"]))
    assert load_images(q, resolution=None).class_names == ["cat", "dog"]


def test_npz_unlabelled(tmp_path):
    p = tmp_path / "u.npz"
    np.savez(p, x=np.zeros((3, 4, 4, 3), np.uint8))
    d = load_images(p, resolution=None)
    assert d.y is None and d.class_names == [] and d.num_classes == 0


def test_npz_grey_to_rgb_and_back(tmp_path):
    rng = np.random.default_rng(2)
    g = rng.integers(0, 256, (3, 6, 6), dtype=np.uint8)
    p = tmp_path / "grey.npz"
    np.savez(p, x=g)  # (N,H,W) grey
    kept = load_images(p, resolution=None, channels=None)
    assert kept.x.shape == (3, 1, 6, 6) and torch.equal(kept.x[:, 0], torch.from_numpy(g))
    rgb = load_images(p, resolution=None, channels=3)
    assert rgb.x.shape == (3, 3, 6, 6)
    for c in range(3):
        assert torch.equal(rgb.x[:, c], torch.from_numpy(g))

    x = rng.integers(0, 256, (3, 6, 6, 3), dtype=np.uint8)
    q = tmp_path / "rgb.npz"
    np.savez(q, x=x)
    grey = load_images(q, resolution=None, channels=1)
    assert grey.x.shape == (3, 1, 6, 6)
    expect = np.stack([np.asarray(Image.fromarray(xi).convert("L")) for xi in x])
    assert np.array_equal(grey.x[:, 0].numpy(), expect)


def test_npz_resize_and_centre_crop(tmp_path):
    x = np.stack([np.asarray(centre_red_sides_blue(60, 20)), np.asarray(centre_red_sides_blue(60, 20))])
    p = tmp_path / "wide.npz"
    np.savez(p, x=x)
    d = load_images(p, resolution=10)
    assert d.x.shape == (2, 3, 10, 10)
    assert_centre_red(d.x[0])


# ----------------------------------------------------------------------------- folders


def test_folder_resize_centre_crop_wide_and_tall(tmp_path):
    save(tmp_path / "wide.png", centre_red_sides_blue(90, 30))
    save(tmp_path / "tall.png", centre_red_sides_blue(30, 90))
    d = load_images(tmp_path, resolution=12)
    assert d.x.shape == (2, 3, 12, 12)
    assert_centre_red(d.x[0])
    assert_centre_red(d.x[1])
    # Upscaling a small non-square image also gives a square of the asked size.
    solid(tmp_path / "small" / "s.png", size=(5, 3))
    assert load_images(tmp_path / "small", resolution=12).x.shape == (1, 3, 12, 12)


def test_folder_class_subfolders_sorted_recursive(tmp_path):
    # Pixel value encodes the file, so the order can be checked.
    files = {
        "dog/b.png": 10, "dog/a.png": 20, "dog/deep/er/c.jpg": 30,
        "cat/z.png": 40, "cat/y.PNG": 50,
    }
    for rel, v in files.items():
        save(tmp_path / rel, Image.new("L", (8, 8), v), **({"quality": 100} if rel.endswith("jpg") else {}))
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    solid(tmp_path / "dog" / ".hidden.png")
    (tmp_path / "cat" / "._y.png").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork
    d = load_images(tmp_path, resolution=None, channels=1)
    assert d.class_names == ["cat", "dog"] and d.num_classes == 2
    assert len(d) == 5
    # sorted by relative path: cat/y.PNG, cat/z.png, dog/a.png, dog/b.png, dog/deep/er/c.jpg
    assert d.y.tolist() == [0, 0, 1, 1, 1]
    vals = d.x[:, 0, 4, 4].int().tolist()
    assert vals[:4] == [50, 40, 20, 10] and abs(vals[4] - 30) <= 2
    assert d.x.shape == (5, 1, 8, 8)


def test_folder_root_only_is_unlabelled(tmp_path):
    for i in range(3):
        solid(tmp_path / f"{i}.png")
    d = load_images(tmp_path, resolution=8)
    assert d.y is None and d.class_names == [] and d.num_classes == 0
    assert d.x.shape == (3, 3, 8, 8) and d.source == str(tmp_path)


def test_folder_mixed_root_and_subfolders(tmp_path, caplog):
    solid(tmp_path / "root.png")
    solid(tmp_path / "a" / "1.png")
    with caplog.at_level(logging.WARNING, logger="fewgan.data"):
        d = load_images(tmp_path, resolution=8)
    assert d.class_names == [".", "a"]
    assert sorted(d.y.tolist()) == [0, 1]
    assert "'.'" in caplog.text


def test_folder_modes_transparency_and_channels(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (0, 0, 255, 255))  # one opaque blue pixel
    save(tmp_path / "a_rgba.png", rgba)
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    save(tmp_path / "b_pal.png", pal, transparency=1)  # index 1 (green) transparent
    save(tmp_path / "c_cmyk.jpg", Image.new("CMYK", (4, 4), (0, 0, 0, 0)), quality=100)
    save(tmp_path / "d_la.png", Image.new("LA", (4, 4), (0, 0)))
    save(tmp_path / "e_bw.bmp", Image.new("1", (4, 4), 1))
    d = load_images(tmp_path, resolution=None, channels=3)
    x = d.x.int()
    assert x[0, :, 1, 1].tolist() == [255, 255, 255]  # transparent -> white background
    assert x[0, :, 0, 0].tolist() == [0, 0, 255]
    assert x[1, :, 2, 2].tolist() == [255, 255, 255]  # transparent palette entry -> white
    assert (x[2] >= 250).all()  # CMYK zero ink -> white
    assert (x[3] == 255).all()  # transparent LA -> white
    assert (x[4] == 255).all()
    g = load_images(tmp_path, resolution=None, channels=1)
    assert g.x.shape == (5, 1, 4, 4)
    assert g.x[0, 0, 1, 1] == 255


def test_folder_exif_orientation_applied(tmp_path):
    im = Image.new("RGB", (40, 20), RED)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    save(tmp_path / "rot.jpg", im, exif=exif)
    d = load_images(tmp_path, resolution=None)
    assert d.x.shape == (1, 3, 40, 20)  # (H, W) after rotation


def test_folder_resolution_none_requires_one_size(tmp_path):
    solid(tmp_path / "a.png", size=(8, 8))
    solid(tmp_path / "b.png", size=(8, 8))
    assert load_images(tmp_path, resolution=None).x.shape == (2, 3, 8, 8)
    solid(tmp_path / "c.png", size=(9, 8))
    with pytest.raises(DataError) as e:
        load_images(tmp_path, resolution=None)
    msg = str(e.value)
    assert "a.png" in msg and "c.png" in msg and "8x8" in msg and "9x8" in msg


def test_folder_symlink_loop_terminates(tmp_path):
    solid(tmp_path / "a" / "x.png")
    try:
        os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
    except OSError:
        pytest.skip("symlinks not available")
    d = load_images(tmp_path, resolution=8)
    assert len(d) >= 1


# ------------------------------------------------------------------------ folder errors


def test_corrupt_file_names_file(tmp_path):
    solid(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(DataError, match="broken.png"):
        load_images(tmp_path)


def test_truncated_png_names_file(tmp_path):
    full = noise_png(tmp_path / "full.png").read_bytes()
    (tmp_path / "half.png").write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError) as e:
        load_images(tmp_path)
    assert "half.png" in str(e.value) and "cannot read image" in str(e.value)


def test_unsupported_mode_names_file_and_mode(tmp_path):
    deep = Image.fromarray(np.full((4, 4), 40000, np.uint16))
    save(tmp_path / "deep16.png", deep)
    with Image.open(tmp_path / "deep16.png") as im:
        assert im.mode.startswith("I")
    with pytest.raises(DataError) as e:
        load_images(tmp_path)
    assert "deep16.png" in str(e.value) and "unsupported image mode" in str(e.value)


@pytest.mark.parametrize("with_junk", [False, True])
def test_empty_folder(tmp_path, with_junk):
    if with_junk:
        (tmp_path / "readme.txt").write_text("hi")
        (tmp_path / "sub").mkdir()
    with pytest.raises(DataError) as e:
        load_images(tmp_path)
    assert str(e.value) == f"no images (png, jpg, jpeg, webp, bmp) found under {tmp_path}"


def test_min_count(tmp_path):
    for i in range(3):
        solid(tmp_path / f"{i}.png")
    assert len(load_images(tmp_path, min_count=3)) == 3
    with pytest.raises(DataError) as e:
        load_images(tmp_path, min_count=4)
    msg = str(e.value)
    assert str(tmp_path) in msg and "only 3 images" in msg and "min_count=4" in msg
    with pytest.raises(DataError, match="only 694 images"):
        load_images("emoji", min_count=1000)


def test_skip_bad_skips_and_reports(tmp_path, caplog):
    solid(tmp_path / "cat" / "ok1.png")
    solid(tmp_path / "cat" / "ok2.png")
    solid(tmp_path / "dog" / "ok3.png", color=BLUE)
    (tmp_path / "cat" / "bad.png").write_bytes(b"definitely not a png")
    full = noise_png(tmp_path / "tmp.png").read_bytes()
    (tmp_path / "tmp.png").unlink()
    (tmp_path / "dog" / "cut.png").write_bytes(full[: len(full) // 2])
    with caplog.at_level(logging.WARNING, logger="fewgan.data"):
        d = load_images(tmp_path, resolution=8, skip_bad=True)
    assert len(d) == 3
    assert sorted(Path(p).name for p in d.skipped) == ["bad.png", "cut.png"]
    assert d.y.tolist() == [0, 0, 1]  # labels stay aligned with the kept images
    assert (d.x[2, 2] == 255).all()  # the dog image is the blue one
    assert "skipped 2 of 5" in caplog.text


def test_skip_bad_covers_unsupported_mode(tmp_path):
    solid(tmp_path / "ok.png")
    save(tmp_path / "deep16.png", Image.fromarray(np.full((4, 4), 300, np.uint16)))
    d = load_images(tmp_path, resolution=8, skip_bad=True)
    assert len(d) == 1 and [Path(p).name for p in d.skipped] == ["deep16.png"]


def test_skip_bad_everything_skipped(tmp_path):
    (tmp_path / "a.png").write_bytes(b"junk")
    (tmp_path / "b.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="unreadable"):
        load_images(tmp_path, skip_bad=True)


# ------------------------------------------------------------------- source / npz errors


def test_nonexistent_and_unknown_sources(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_images(tmp_path / "nope")
    with pytest.raises(DataError, match="no such file or folder"):
        load_images("emojii")
    txt = tmp_path / "list.txt"
    txt.write_text("x")
    with pytest.raises(DataError) as e:
        load_images(txt)
    assert "list.txt" in str(e.value) and "not a folder, an .npz" in str(e.value)
    assert "emoji" in str(e.value)
    single = solid(tmp_path / "one.png")
    with pytest.raises(DataError, match="not a folder"):
        load_images(single)


def test_bad_arguments():
    with pytest.raises(DataError, match="channels"):
        load_images("emoji", channels=4)
    with pytest.raises(DataError, match="resolution"):
        load_images("emoji", resolution=0)


def _npz(tmp_path, name="bad.npz", **arrays) -> Path:
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


@pytest.mark.parametrize(
    "arrays, fragment",
    [
        (dict(images=np.zeros((2, 4, 4, 3), np.uint8), labels=np.zeros(2, int)),
         "no array 'x'"),
        (dict(x=np.zeros((2, 4, 4, 3), np.float32)), "expected uint8"),
        (dict(x=np.zeros((2, 4), np.uint8)), "expected (N,H,W,C)"),
        (dict(x=np.zeros((1, 2, 4, 4, 3), np.uint8)), "expected (N,H,W,C)"),
        (dict(x=np.zeros((2, 4, 4, 4), np.uint8)), "expected 1 or 3"),
        (dict(x=np.zeros((2, 3, 8, 8), np.uint8)), "channels-first"),
        (dict(x=np.zeros((0, 4, 4, 3), np.uint8)), "no images"),
        (dict(x=np.zeros((3, 4, 4, 3), np.uint8), y=np.zeros(2, int)), "'y' has shape (2,)"),
        (dict(x=np.zeros((2, 4, 4, 3), np.uint8), y=np.zeros(2, np.float32)), "integer"),
        (dict(x=np.zeros((2, 4, 4, 3), np.uint8), y=np.array([-1, 0])), "negative"),
        (dict(x=np.zeros((2, 4, 4, 3), np.uint8), y=np.array([0, 2]),
              label_names=np.array(["a", "b"])), "goes up to 2"),
    ],
)
def test_npz_errors(tmp_path, arrays, fragment):
    p = _npz(tmp_path, "my_set.npz", **arrays)
    with pytest.raises(DataError) as e:
        load_images(p, resolution=None)
    msg = str(e.value)
    assert "my_set.npz" in msg
    assert fragment in msg


def test_npz_error_details(tmp_path):
    p = _npz(tmp_path, images=np.zeros((2, 4, 4, 3), np.uint8), labels=np.zeros(2, int))
    with pytest.raises(DataError) as e:
        load_images(p)
    assert "'images'" in str(e.value) and "'labels'" in str(e.value)
    q = _npz(tmp_path, "f.npz", x=np.zeros((2, 4, 4, 3), np.float64))
    with pytest.raises(DataError, match="dtype float64, expected uint8"):
        load_images(q)


def test_npz_corrupt_pickled_and_npy(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(DataError, match="junk.npz"):
        load_images(junk)
    obj = tmp_path / "obj.npz"
    np.savez(obj, x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="obj.npz"):  # pickle is never allowed
        load_images(obj)
    npy = tmp_path / "plain.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="plain.npz"):
        load_images(npy)


# -------------------------------------------------------------------- float conversion


def test_to_float_to_uint8_round_trip_exact():
    x = torch.arange(256, dtype=torch.uint8)
    f = to_float(x)
    assert f.dtype == torch.float32
    assert f[0] == -1.0 and f[255] == 1.0 and f.min() >= -1 and f.max() <= 1
    assert torch.equal(to_uint8(f), x)
    assert torch.equal(to_uint8(f.half()), x)


def test_to_uint8_clamps_and_rounds():
    f = torch.tensor([-5.0, -1.0, 0.0, 1.0, 7.0, float("nan")])
    assert to_uint8(f).tolist() == [0, 0, 128, 255, 255, 128]
    assert to_uint8(torch.tensor([-1 + 2.4 / 127.5, -1 + 2.6 / 127.5])).tolist() == [2, 3]


def test_to_float_rejects_float():
    with pytest.raises(TypeError):
        to_float(torch.zeros(3))


# ------------------------------------------------------------------------- fingerprint


def test_fingerprint_stable_and_sensitive():
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.integers(0, 256, (4, 3, 8, 8), dtype=np.uint8))
    a = ImageData(x=x, y=None, class_names=[], source="a", skipped=[])
    b = ImageData(x=x.clone(), y=torch.zeros(4, dtype=torch.int64), class_names=["0"], source="b", skipped=[])
    fa = a.fingerprint()
    assert len(fa) == 64 and int(fa, 16) >= 0
    assert fa == a.fingerprint() == b.fingerprint()  # content only, not labels or name
    x2 = x.clone()
    x2[2, 1, 5, 5] ^= 1
    assert ImageData(x=x2, y=None, class_names=[], source="a", skipped=[]).fingerprint() != fa
    # Same bytes, different shape: different key.
    reshaped = x.reshape(4, 3, 4, 16).contiguous()
    assert ImageData(x=reshaped, y=None, class_names=[], source="a", skipped=[]).fingerprint() != fa
    # Non-contiguous view of the same content hashes like the contiguous copy.
    nc = x.permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2)
    assert not nc.is_contiguous()
    assert ImageData(x=nc, y=None, class_names=[], source="a", skipped=[]).fingerprint() == fa


def test_fingerprint_of_loaded_sets_is_repeatable():
    assert load_images("emoji").fingerprint() == load_images("emoji").fingerprint()
    assert load_images("emoji").fingerprint() != load_images("emoji", resolution=64).fingerprint()


# ---------------------------------------------------------------------------- describe


def test_describe_folder(tmp_path):
    solid(tmp_path / "cat" / "a.png", size=(40, 30))
    solid(tmp_path / "cat" / "b.jpg", size=(40, 30))
    solid(tmp_path / "dog" / "c.png", color=128, size=(16, 16), mode="L")
    info = describe(tmp_path)
    assert info == {
        "source": str(tmp_path),
        "kind": "folder",
        "count": 3,
        "sizes": {"40x30": 2, "16x16": 1},
        "modes": {"RGB": 2, "L": 1},
        "classes": {"cat": 2, "dog": 1},
        "skipped": 0,
    }
    (tmp_path / "dog" / "bad.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="bad.png"):
        describe(tmp_path)
    info = describe(tmp_path, skip_bad=True)
    assert info["count"] == 3 and info["skipped"] == 1
    assert info["classes"] == {"cat": 2, "dog": 1}


def test_describe_reports_unsupported_modes(tmp_path):
    save(tmp_path / "deep.png", Image.fromarray(np.full((4, 4), 300, np.uint16)))
    info = describe(tmp_path)
    assert info["count"] == 1 and list(info["modes"])[0].startswith("I")
    assert info["classes"] == {}


def test_describe_npz_and_builtin(tmp_path):
    p = _npz(tmp_path, "g.npz", x=np.zeros((5, 6, 7), np.uint8), y=np.array([0, 1, 1, 1, 0]))
    assert describe(p) == {
        "source": str(p), "kind": "npz", "count": 5, "sizes": {"7x6": 5},
        "modes": {"L": 5}, "classes": {"0": 2, "1": 3}, "skipped": 0,
    }
    info = describe("emoji")
    assert info["kind"] == "builtin" and info["count"] == 694
    assert info["sizes"] == {"32x32": 694} and info["modes"] == {"RGB": 694}
    assert info["classes"] == {"negative": 362, "positive": 332}
