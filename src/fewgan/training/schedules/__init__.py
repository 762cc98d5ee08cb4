"""G:D update schedules by name (`train.schedule`); importing this package registers them all.

A new schedule is a new file registering a `Schedule` subclass with `@SCHEDULES.register("name")`
plus one import line here.
"""

from .base import SCHEDULES, Schedule
from . import fixed  # noqa: F401  (registers "fixed")
from . import autobalance  # noqa: F401  (registers "autobalance")
from .autobalance import AutoBalanceSchedule
from .fixed import FixedSchedule


def build_schedule(cfg) -> Schedule:
    return SCHEDULES.get(cfg.train.schedule)(cfg)


__all__ = ["SCHEDULES", "Schedule", "FixedSchedule", "AutoBalanceSchedule", "build_schedule"]
