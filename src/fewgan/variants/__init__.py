"""GAN variants (train-step logic) by name; importing this module registers them all."""

from .base import VARIANTS, Batch, GeneratorPipeline, Variant
from . import standard  # noqa: F401  (registers "standard")
from . import began  # noqa: F401  (registers "began")
from . import hgan  # noqa: F401  (registers "hgan")
from . import transitional  # noqa: F401  (registers "transitional")
from . import projected  # noqa: F401  (registers "projected")


def build_variant(cfg, num_classes: int = 0) -> Variant:
    return VARIANTS.get(cfg.train.variant)(cfg, num_classes)


__all__ = ["VARIANTS", "Batch", "GeneratorPipeline", "Variant", "build_variant"]
