"""Training monitors by name (`log.monitors`); importing this package registers them all."""

from .base import MONITORS, Monitor
from . import collapse  # noqa: F401  (registers "collapse")
from .collapse import CollapseMonitor


def build_monitors(cfg) -> list[Monitor]:
    return [MONITORS.get(name)(cfg) for name in cfg.log.monitors]


__all__ = ["MONITORS", "Monitor", "CollapseMonitor", "build_monitors"]
