"""How many D and G updates each iteration gets (the G:D ratio, docs/methods.md §9).

The loop asks `counts(step)` before an iteration and reports the iteration's stats to
`update(step, stats)` afterwards, which returns what the schedule decided (logged in
stats.jsonl). A schedule's state is JSON and travels in checkpoints, so resuming is exact.
Adaptive schedules (e.g. the balance controller) are new files registering with `@SCHEDULES.register`.
"""

from __future__ import annotations

from ...registry import Registry

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
