"""The fixed schedule (`train.schedule: fixed`, the default)."""

from __future__ import annotations

from .base import SCHEDULES, Schedule


@SCHEDULES.register("fixed")
class FixedSchedule(Schedule):
    """train.d_steps D updates then train.g_steps G updates, every iteration."""

    def __init__(self, cfg):
        self.d, self.g = cfg.train.d_steps, cfg.train.g_steps
        if self.d < 0 or self.g < 0 or self.d + self.g == 0:
            raise ValueError(f"train.d_steps={self.d}, train.g_steps={self.g}: need non-negative counts, not both 0")

    def counts(self, step: int) -> tuple[int, int]:
        return self.d, self.g
