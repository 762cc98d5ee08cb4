"""Load small image sets into memory as one uint8 tensor.

Sources (see :func:`load_images`):

* a built-in name (``"emoji"``): the packaged ``fewgan/datasets/emoji_faces_{32,64}.npz``;
* an ``.npz`` file with ``x`` (uint8, ``(N,H,W,C)`` or ``(N,H,W)``) and optional ``y``
  and ``label_names``/``classes``;
* a folder, searched recursively for png/jpg/jpeg/webp/bmp files.

Folder rules:

* Files and folders whose names start with ``.`` are ignored (``.DS_Store``, macOS
  ``._x.png`` resource forks, ``.ipynb_checkpoints``), since they are never images of
  the set and would otherwise show up as corrupt files.
* Labels come from the first-level sub-folder, relative to the root: ``root/cat/a/b.png``
  is class ``cat``. Only sub-folders that hold images become classes, sorted by name.
  If every image sits directly in the root, the set is unlabelled. If some do and some
  are in sub-folders, the root images get the class named ``"."`` (which sorts first),
  so no image is silently dropped and none is silently unlabelled.
* EXIF orientation is applied, so photos come out the way viewers show them.
* Transparent images are composited onto white (the built-in set is drawn on white).
* Modes that have no faithful 8-bit conversion (16/32-bit integer ``I;16``/``I``,
  float ``F``, ``LAB``) are errors naming the file and mode, since clipping them would
  give mostly-white or mostly-black images. CMYK, YCbCr, HSV, palette and 1-bit images
  are converted.
* ``skip_bad=True`` skips (and lists in ``ImageData.skipped``, with one logged warning)
  every file that cannot be used: undecodable, truncated, or of an unsupported mode.

A string equal to a built-in name means the built-in set even if a folder of that
name exists in the working directory; write ``./emoji`` (or pass a ``Path``) for the
folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, ImageOps

log = logging.getLogger("fewgan.data")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_BUILTINS = {"emoji": ("emoji_faces_32.npz", "emoji_faces_64.npz")}
_ROOT_CLASS = "."  # class of root-level images when other images sit in sub-folders
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa"}
_MAX_LISTED = 5  # bad files named in one warning; the rest are counted


class DataError(ValueError):
    """Bad input data; the message names the file or folder and the problem."""


@dataclass
class ImageData:
    """A whole image set in memory: ``x`` uint8 ``(N, C, H, W)``, optional labels."""

    x: torch.Tensor
    y: torch.Tensor | None = None
    class_names: list[str] = field(default_factory=list)
    source: str = ""
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_classes(self) -> int:
        return 0 if self.y is None else len(self.class_names)

    def fingerprint(self) -> str:
        """sha256 of the shape and pixel bytes: a stable key for cached features."""
        x = self.x.detach().to("cpu").contiguous()
        h = hashlib.sha256()
        # The shape goes in too, so that the same bytes viewed as a different shape
        # (e.g. 64x32 vs 32x64) never share a cache entry.
        h.update(("x".join(str(s) for s in x.shape) + ";").encode())
        h.update(x.numpy().reshape(-1).view(np.uint8).data)
        return h.hexdigest()


def builtin_names() -> list[str]:
    """Names accepted as built-in sources."""
    return sorted(_BUILTINS)


def to_float(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` -> float32 ``[-1, 1]``."""
    if x_uint8.dtype != torch.uint8:
        # A float input here is almost always a double conversion; fail loudly.
        raise TypeError(f"to_float expects a uint8 tensor, got {x_uint8.dtype}")
    return x_uint8.to(torch.float32) / 127.5 - 1.0


def to_uint8(x_float: torch.Tensor) -> torch.Tensor:
    """float ``[-1, 1]`` -> uint8, clamped and rounded (NaN -> mid grey)."""
    x = torch.nan_to_num(x_float.to(torch.float32), nan=0.0)
    return ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


# ---------------------------------------------------------------------------- sources


def _builtin_file(filename: str) -> contextlib.AbstractContextManager[Path]:
    try:
        res = importlib.resources.files("fewgan.datasets") / filename
    except (ModuleNotFoundError, TypeError, AttributeError, ValueError):
        # fewgan/datasets has no __init__.py; older Pythons cannot open a namespace
        # package as a resource container, so go through the parent package.
        res = importlib.resources.files("fewgan") / "datasets" / filename
    return importlib.resources.as_file(res)


def _classify(source: str | Path) -> tuple[str, Path | str]:
    """-> ("builtin", name) | ("npz", path) | ("folder", path); DataError otherwise."""
    if isinstance(source, str) and source in _BUILTINS:
        return "builtin", source
    path = Path(source).expanduser()
    if path.is_dir():
        return "folder", path
    if not path.exists():
        raise DataError(
            f"{source}: no such file or folder "
            f"(built-in data sets: {', '.join(builtin_names())})"
        )
    if path.suffix.lower() == ".npz":
        return "npz", path
    raise DataError(
        f"{source}: not a folder, an .npz file, or one of the built-in names "
        f"({', '.join(builtin_names())})"
    )


def _check_args(resolution: int | None, channels: int | None) -> int | None:
    if resolution is not None:
        if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) \
                or resolution < 1:
            raise DataError(f"resolution must be a positive int or None, got {resolution!r}")
        resolution = int(resolution)
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1, 3 or None, got {channels!r}")
    return resolution


def load_images(
    source: str | Path,
    resolution: int | None = 32,
    channels: int | None = 3,
    skip_bad: bool = False,
    min_count: int = 1,
) -> ImageData:
    """Load a built-in set, an ``.npz`` file or a folder of images.

    ``resolution``: resize the shorter side to it and centre-crop a square (None: keep
    the size, which must then be the same for all images). ``channels``: 3 (RGB), 1
    (grey) or None (keep for npz, RGB for folders). ``skip_bad``: skip unreadable
    files instead of raising. ``min_count``: fewer images than this is an error (the
    trainer passes its batch size).
    """
    resolution = _check_args(resolution, channels)
    kind, where = _classify(source)
    if kind == "builtin":
        small, large = _BUILTINS[str(where)]
        filename = large if resolution is not None and resolution > 32 else small
        with _builtin_file(filename) as path:
            data = _load_npz(path, resolution, channels, label=str(where))
        data.source = str(where)
    elif kind == "npz":
        data = _load_npz(Path(where), resolution, channels, label=str(where))
    else:
        data = _load_folder(Path(where), resolution, channels, skip_bad)

    n = len(data)
    if n < min_count:
        raise DataError(
            f"{data.source}: only {n} images, fewer than min_count={min_count} "
            f"(one batch); add images or lower the batch size"
        )
    return data


def split_holdout(data: ImageData, fraction: float, seed: int = 0) -> tuple[ImageData, ImageData | None]:
    """Split off a held-out part: (train, held_out), or (data, None) for fraction 0.

    Seeded and stratified: within each class (the whole set when unlabelled) a seeded
    permutation puts round(fraction * n_class) images in the held-out part, at least one
    when the class has two or more images, and never all of them. Both parts keep the
    images' original order, labels and class names. The split depends only on the data,
    ``fraction`` and ``seed``, so every run and every evaluation of a study sees the same one.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise DataError(f"data.holdout must be a fraction in [0, 1), got {fraction!r}")
    if fraction == 0.0:
        return data, None
    g = torch.Generator().manual_seed(int(seed))
    groups = [torch.arange(len(data))] if data.y is None else \
        [torch.nonzero(data.y == c).flatten() for c in torch.unique(data.y)]
    held = []
    for idx in groups:
        k = int(round(fraction * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        held.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    mask = torch.zeros(len(data), dtype=torch.bool)
    mask[torch.cat(held)] = True
    if not mask.any():
        raise DataError(f"{data.source}: data.holdout={fraction} keeps no image out of {len(data)}")

    def part(m: torch.Tensor, tag: str) -> ImageData:
        return ImageData(x=data.x[m], y=None if data.y is None else data.y[m], class_names=list(data.class_names),
                         source=f"{data.source}[{tag}]", skipped=list(data.skipped))

    return part(~mask, "train"), part(mask, "holdout")


def describe(source: str | Path, skip_bad: bool = False) -> dict:
    """Summary of a source for ``fewgan data info``: counts, original sizes, modes, classes.

    Folder files are fully decoded, so a corrupt file raises here as it would in
    :func:`load_images` (unless ``skip_bad``). Unlike loading, unsupported modes are
    only reported, not rejected.
    """
    kind, where = _classify(source)
    if kind in ("builtin", "npz"):
        if kind == "builtin":
            with _builtin_file(_BUILTINS[str(where)][0]) as path:
                x, y, names = _read_npz(path, str(where))
        else:
            x, y, names = _read_npz(Path(where), str(where))
        n, h, w, c = x.shape
        classes: dict[str, int] = {}
        if y is not None:
            counts = np.bincount(y, minlength=len(names))
            classes = {name: int(k) for name, k in zip(names, counts)}
        return {
            "source": str(where),
            "kind": kind,
            "count": int(n),
            "sizes": {f"{w}x{h}": int(n)},
            "modes": {"L" if c == 1 else "RGB": int(n)},
            "classes": classes,
            "skipped": 0,
        }

    root = Path(where)
    files, labels, class_names = _scan_folder(root)
    sizes: dict[str, int] = {}
    modes: dict[str, int] = {}
    class_counts = {name: 0 for name in class_names}
    bad: list[tuple[Path, str]] = []
    for i, path in enumerate(files):
        try:
            im = _open(path)
        except _BadFile as e:
            if not skip_bad:
                raise DataError(str(e)) from e.__cause__
            bad.append((path, e.reason))
            continue
        key = f"{im.size[0]}x{im.size[1]}"
        sizes[key] = sizes.get(key, 0) + 1
        modes[im.mode] = modes.get(im.mode, 0) + 1
        if labels is not None:
            class_counts[class_names[labels[i]]] += 1
        im.close()
    if bad:
        _warn_skipped(root, bad, len(files))
    return {
        "source": str(root),
        "kind": "folder",
        "count": len(files) - len(bad),
        "sizes": dict(sorted(sizes.items(), key=lambda kv: -kv[1])),
        "modes": dict(sorted(modes.items(), key=lambda kv: -kv[1])),
        "classes": class_counts,
        "skipped": len(bad),
    }


# -------------------------------------------------------------------------------- npz


def _read_npz(path: Path, label: str) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Read and validate -> x (N,H,W,C) uint8, y int64 or None, class names."""
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as e:  # zipfile, pickle refusal, OS errors: all mean "not usable"
        raise DataError(f"{label}: cannot read as .npz ({type(e).__name__}: {e})") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        # np.load also opens plain .npy files; those carry no name for x/y.
        raise DataError(f"{label}: is a single .npy array, not an .npz archive with 'x'")
    with archive:
        names = list(archive.files)
        if "x" not in names:
            have = ", ".join(repr(n) for n in names) or "none"
            raise DataError(f"{label}: no array 'x' in the .npz (it has: {have})")
        try:
            x = archive["x"]
            y = archive["y"] if "y" in names else None
            label_key = next((k for k in ("label_names", "classes") if k in names), None)
            raw_names = archive[label_key] if label_key else None
        except Exception as e:  # CRC errors, object arrays refused without pickle, ...
            raise DataError(f"{label}: cannot read arrays ({type(e).__name__}: {e})") from e

    if x.dtype != np.uint8:
        hint = " (scale to 0..255 and cast: (x * 255).round().astype(np.uint8))" \
            if x.dtype.kind == "f" else ""
        raise DataError(f"{label}: 'x' has dtype {x.dtype}, expected uint8{hint}")
    if x.ndim == 3:
        x = x[..., None]  # (N,H,W) grey
    if x.ndim != 4:
        raise DataError(
            f"{label}: 'x' has shape {x.shape}, expected (N,H,W,C) or (N,H,W)"
        )
    if x.shape[-1] not in (1, 3):
        hint = ""
        if x.shape[1] in (1, 3):
            hint = "; it looks channels-first, transpose it with x.transpose(0, 2, 3, 1)"
        elif x.shape[-1] == 4:
            hint = "; drop or composite the alpha channel first"
        raise DataError(
            f"{label}: 'x' has shape {x.shape} with {x.shape[-1]} channels, "
            f"expected 1 or 3 (shape (N,H,W,C)){hint}"
        )
    if x.shape[0] == 0:
        raise DataError(f"{label}: 'x' holds no images (shape {x.shape})")
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise DataError(f"{label}: 'x' has empty images (shape {x.shape})")

    class_names: list[str] = []
    if y is not None:
        if y.dtype.kind not in "iu":
            raise DataError(f"{label}: 'y' has dtype {y.dtype}, expected an integer type")
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise DataError(
                f"{label}: 'y' has shape {y.shape}, expected ({x.shape[0]},) "
                f"to match the {x.shape[0]} images in 'x'"
            )
        y = y.astype(np.int64)
        if y.min() < 0:
            raise DataError(f"{label}: 'y' has negative labels (min {y.min()})")
        k = int(y.max()) + 1
        if raw_names is not None:
            class_names = [_as_str(v) for v in np.asarray(raw_names).reshape(-1).tolist()]
            if len(class_names) < k:
                raise DataError(
                    f"{label}: '{label_key}' has {len(class_names)} names but 'y' "
                    f"goes up to {k - 1}"
                )
        else:
            class_names = [str(i) for i in range(k)]
    return x, y, class_names


def _as_str(v: object) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _load_npz(path: Path, resolution: int | None, channels: int | None, label: str) -> ImageData:
    x, y, class_names = _read_npz(path, label)
    c = x.shape[-1]
    if channels == 1 and c == 3:
        x = _rgb_to_grey(x)
    if resolution is not None and x.shape[1:3] != (resolution, resolution):
        x = _resize_array(x, resolution)
    if channels == 3 and x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=3)
    return ImageData(
        x=_to_tensor(x),
        y=None if y is None else torch.from_numpy(y),
        class_names=class_names,
        source=label,
    )


def _rgb_to_grey(x: np.ndarray) -> np.ndarray:
    """(N,H,W,3) -> (N,H,W,1) with Pillow's own luminance, in one call."""
    n, h, w, _ = x.shape
    # Stacking all images into one tall image gives exactly convert("L") per image
    # (the conversion is per pixel) without N Pillow round trips.
    tall = Image.fromarray(np.ascontiguousarray(x).reshape(n * h, w, 3))
    return np.asarray(tall.convert("L")).reshape(n, h, w, 1)


def _resize_array(x: np.ndarray, resolution: int) -> np.ndarray:
    n, _, _, c = x.shape
    out = np.empty((n, resolution, resolution, c), dtype=np.uint8)
    for i in range(n):
        # 2-D uint8 -> mode L, (H,W,3) uint8 -> mode RGB
        im = Image.fromarray(np.ascontiguousarray(x[i, :, :, 0] if c == 1 else x[i]))
        out[i] = np.asarray(_resize_crop(im, resolution)).reshape(resolution, resolution, c)
    return out


def _to_tensor(x: np.ndarray) -> torch.Tensor:
    """(N,H,W,C) numpy -> contiguous (N,C,H,W) tensor."""
    a = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    # Arrays viewed from Pillow images are read-only; torch needs its own writable copy.
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def _resize_crop(im: Image.Image, resolution: int) -> Image.Image:
    """Scale the shorter side to ``resolution`` and keep the centre square."""
    w, h = im.size
    if (w, h) == (resolution, resolution):
        return im
    side = min(w, h)
    left, top = (w - side) / 2, (h - side) / 2
    # Resizing only the centre square (box=) equals resize-then-crop but never builds
    # the full resized image, which for a very long strip could be huge.
    return im.resize(
        (resolution, resolution), Image.Resampling.LANCZOS,
        box=(left, top, left + side, top + side),
    )


# ----------------------------------------------------------------------------- folder


class _BadFile(Exception):
    """A file that cannot be used: undecodable or unsupported mode (skippable)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _walk(root: Path) -> Iterator[Path]:
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # symlink loop: do not descend twice
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                yield Path(dirpath) / name


def _scan_folder(root: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """-> sorted image files, their labels (None if unlabelled), class names."""
    rel = sorted((p.relative_to(root).as_posix(), p) for p in _walk(root))
    if not rel:
        exts = ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
        raise DataError(f"no images ({exts}) found under {root}")
    files = [p for _, p in rel]
    firsts = [r.split("/", 1)[0] if "/" in r else None for r, _ in rel]
    if all(f is None for f in firsts):
        return files, None, []
    if any(f is None for f in firsts):
        log.warning(
            "%s: %d images sit directly in the folder next to class sub-folders; "
            "they get the class %r", root, sum(f is None for f in firsts), _ROOT_CLASS,
        )
    names = [_ROOT_CLASS if f is None else f for f in firsts]
    class_names = sorted(set(names))
    index = {name: i for i, name in enumerate(class_names)}
    return files, [index[n] for n in names], class_names


def _open(path: Path) -> Image.Image:
    """Open and fully decode one file, EXIF orientation applied; _BadFile on failure."""
    try:
        with Image.open(path) as im:  # closes the file; decoded pixels stay usable
            im.load()  # decode now, so truncated files fail here and not later
    except Exception as e:  # Pillow raises many types for bad data (OSError, SyntaxError, ...)
        raise _BadFile(path, f"cannot read image ({type(e).__name__}: {e})") from e
    try:
        im = ImageOps.exif_transpose(im) or im
    except Exception:
        pass  # broken EXIF: the pixels themselves are fine, keep them unrotated
    return im


def _convert(im: Image.Image, path: Path, mode: str) -> Image.Image:
    """To ``mode`` ("RGB" or "L"), compositing transparency onto white; _BadFile if impossible."""
    src = im.mode
    if src in ("I", "F", "LAB", "La") or src.startswith("I;"):
        raise _BadFile(
            path, f"unsupported image mode {src!r} (no faithful 8-bit conversion); "
            f"save it as 8-bit grey, RGB or RGBA"
        )
    try:
        if src in _ALPHA_MODES or "transparency" in im.info:
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, rgba)
        return im.convert(mode) if im.mode != mode else im
    except ValueError as e:
        raise _BadFile(path, f"unsupported image mode {src!r} ({e})") from e


def _load_folder(root: Path, resolution: int | None, channels: int | None, skip_bad: bool) -> ImageData:
    files, labels, class_names = _scan_folder(root)
    mode = "L" if channels == 1 else "RGB"
    arrays: list[np.ndarray] = []
    kept: list[int] = []
    bad: list[tuple[Path, str]] = []
    first_size: tuple[Path, tuple[int, int]] | None = None
    for i, path in enumerate(files):
        try:
            im = _convert(_open(path), path, mode)
        except _BadFile as e:
            if not skip_bad:
                raise DataError(str(e)) from e.__cause__
            bad.append((path, e.reason))
            continue
        if resolution is None:
            if first_size is None:
                first_size = (path, im.size)
            elif im.size != first_size[1]:
                (p0, (w0, h0)), (w1, h1) = first_size, im.size
                raise DataError(
                    f"{root}: images differ in size ({p0} is {w0}x{h0}, {path} is "
                    f"{w1}x{h1}); pass a resolution to resize them"
                )
        else:
            im = _resize_crop(im, resolution)
        a = np.asarray(im)
        arrays.append(a[..., None] if a.ndim == 2 else a)
        kept.append(i)

    if bad:
        _warn_skipped(root, bad, len(files))
    if not arrays:
        raise DataError(f"{root}: all {len(files)} image files were unreadable and skipped")
    y = None
    if labels is not None:
        y = torch.tensor([labels[i] for i in kept], dtype=torch.int64)
    return ImageData(
        x=_to_tensor(np.stack(arrays)),
        y=y,
        class_names=class_names if labels is not None else [],
        source=str(root),
        skipped=[str(p) for p, _ in bad],
    )


def _warn_skipped(root: Path, bad: list[tuple[Path, str]], total: int) -> None:
    listed = "; ".join(f"{p} ({r})" for p, r in bad[:_MAX_LISTED])
    more = f"; and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
    log.warning("%s: skipped %d of %d files that could not be read: %s%s",
                root, len(bad), total, listed, more)
