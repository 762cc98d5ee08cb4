"""Extra terms of the generator's loss, as pure functions of (fake, real) image batches.

Each entry of G_REGULARIZERS builds, from a Config, either None (off) or a function
`fn(fake, real) -> scalar tensor`; the standard variant adds weight * fn(...) to G's loss
and logs each term as `reg_<name>`.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from .registry import Registry

G_REGULARIZERS: Registry = Registry("generator regularizer")


def build_g_regularizers(cfg) -> list[tuple[str, float, Callable[[Tensor, Tensor], Tensor]]]:
    out = []
    for name in G_REGULARIZERS.names():
        built = G_REGULARIZERS.get(name)(cfg)
        if built is not None:
            weight, fn = built
            out.append((name, weight, fn))
    return out
