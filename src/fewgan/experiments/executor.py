"""Where experiment jobs run. The runner only needs `map`, so a distributed engine (e.g. a
Ray executor submitting `run_job` as remote tasks) can replace the local one later."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Protocol

from ..registry import Registry


class Executor(Protocol):
    def map(self, fn: Callable, jobs: Iterable) -> Iterator:
        """Apply fn to each job, yielding results as they finish."""
        ...


EXECUTORS: Registry = Registry("executor")


@EXECUTORS.register("local")
class LocalExecutor:
    """One job after another in this process: two CPU cores are best used by one run at a time."""

    def map(self, fn: Callable, jobs: Iterable) -> Iterator:
        for job in jobs:
            yield fn(job)
