"""Monitors: signals computed while training (collapse, instability, ...).

A monitor is called after every iteration with the trainer and the iteration's stats and
returns extra stats to log; a list under the key "warnings" is shown in the progress
display and collected by the report. Monitors are registered by name (a new file plus one
import line in __init__.py) and enabled with `log.monitors: [name, ...]`. Their state is JSON
and travels in checkpoints.
"""

from __future__ import annotations

from ...registry import Registry

MONITORS: Registry = Registry("monitor (log.monitors)")


class Monitor:
    def __call__(self, trainer, stats: dict) -> dict:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
