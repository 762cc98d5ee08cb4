"""How many D and G updates each iteration gets (the G:D ratio, docs/methods.md §9).

The loop asks `counts(step)` before an iteration and reports the iteration's stats to
`update(step, stats)` afterwards, which returns what the schedule decided (logged in
stats.jsonl). A schedule's state is JSON and travels in checkpoints, so resuming is exact.
Adaptive schedules (e.g. a balance controller) are new classes registered here.
"""

from __future__ import annotations

from ..registry import Registry

SCHEDULES: Registry = Registry("schedule (train.schedule)")


class Schedule:
    def counts(self, step: int) -> tuple[int, int]:
        """(d_steps, g_steps) for iteration `step`."""
        raise NotImplementedError

    def update(self, step: int, stats: dict) -> dict:
        """Observe an iteration's stats; return extra stats (decisions) to log."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@SCHEDULES.register("fixed")
class FixedSchedule(Schedule):
    """train.d_steps D updates then train.g_steps G updates, every iteration."""

    def __init__(self, cfg):
        self.d, self.g = cfg.train.d_steps, cfg.train.g_steps
        if self.d < 0 or self.g < 0 or self.d + self.g == 0:
            raise ValueError(f"train.d_steps={self.d}, train.g_steps={self.g}: need non-negative counts, not both 0")

    def counts(self, step: int) -> tuple[int, int]:
        return self.d, self.g


def build_schedule(cfg) -> Schedule:
    return SCHEDULES.get(cfg.train.schedule)(cfg)


# schedules living in their own files register themselves on import (after SCHEDULES exists)
from . import balance  # noqa: E402,F401  ("autobalance")
