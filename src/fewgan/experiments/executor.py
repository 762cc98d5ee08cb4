"""Where experiment jobs run. The runner only needs `map(fn, jobs)`, yielding results as they
finish, so the local loop and a Ray cluster sit behind the same seam.

A job here is `(Job, run_dir)` and `fn` is `runner.run_job`: runs are resumable and skip when
done, which is what makes retrying a lost worker safe (it resumes from its last checkpoint).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Iterable, Iterator, Protocol

from ..registry import Registry


class Executor(Protocol):
    def map(self, fn: Callable, jobs: Iterable) -> Iterator:
        """Apply fn to each job, yielding results as they finish."""
        ...


class JobErrors(RuntimeError):
    """Some jobs failed with an error of their own (config, data); the others finished.

    `failures` is a list of (run name, message)."""

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = failures
        lines = "\n".join(f"  {run}: {msg}" for run, msg in failures)
        super().__init__(f"{len(failures)} run(s) failed (the other runs finished):\n{lines}")


EXECUTORS: Registry = Registry("executor (--executor)")


@EXECUTORS.register("local")
class LocalExecutor:
    """One job after another in this process: two CPU cores are best used by one run at a time."""

    def __init__(self, **options):
        if options:
            raise ValueError(f"--executor local takes no options (got {', '.join(options)}); they are for ray")

    def map(self, fn: Callable, jobs: Iterable) -> Iterator:
        for job in jobs:
            yield fn(job)


def _run_name(job) -> str:
    j = job[0] if isinstance(job, tuple) else job
    return getattr(j, "run", str(j))


def with_resources(job, threads: int, gpus: float):
    """The job with train.threads set to its CPU share and, where its device is `auto`, the device
    following its GPU share: cuda when it holds (part of) a GPU, cpu when it holds none (so a job
    without a GPU never lands on one by accident). A Job's config is a frozen dataclass."""
    j, run_dir = job
    t = j.cfg.train
    changes = {"threads": threads}
    if getattr(t, "device", "auto") == "auto":
        changes["device"] = "cuda" if gpus > 0 else "cpu"
    cfg = dataclasses.replace(j.cfg, train=dataclasses.replace(t, **changes))
    return dataclasses.replace(j, cfg=cfg), run_dir


def _remote_call(fn: Callable, job, threads: int, gpus: float = 0.0):
    """What each Ray task runs: the job with its thread count, errors of its own returned as data
    (so Ray does not retry them) and worker deaths left to Ray (which retries those)."""
    import torch

    torch.set_num_threads(threads)
    try:
        return "ok", fn(with_resources(job, threads, gpus))
    except KeyboardInterrupt:
        raise
    except Exception as e:  # the job's own error: report, never retry
        return "error", f"{type(e).__name__}: {e}"


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, with a clear message, when nothing listens at HOST:PORT (or ray://HOST:PORT)."""
    import socket

    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ValueError(f"cannot connect to a Ray cluster at {address}: nothing answers at {host}:{port} "
                         f"({e.strerror or e}); start one with `ray start --head` or check the address") from None


@EXECUTORS.register("ray")
class RayExecutor:
    """Jobs as Ray tasks: on a local Ray started here, or on a cluster by address.

    address: None = `RAY_ADDRESS` if set, else a new local Ray with this machine's CPUs;
    'auto' = the running cluster on this node; 'ray://HOST:PORT' = a remote cluster (Ray Client).
    cpus_per_job: CPUs reserved per job (its torch threads follow); gpus_per_job: GPUs per job,
    fractional to share one GPU between small runs; retries: how often a job whose worker died
    (node lost, OOM kill, SIGKILL) is run again; it resumes from its last checkpoint. Errors of a
    job's own (bad config, bad data) are not retried: the rest of the grid finishes and they are
    raised together at the end (JobErrors) with each run's name.
    """

    def __init__(self, address: str | None = None, cpus_per_job: float = 1, gpus_per_job: float = 0,
                 retries: int = 2):
        if cpus_per_job <= 0:
            raise ValueError(f"--cpus-per-job must be > 0, got {cpus_per_job}")
        if gpus_per_job < 0:
            raise ValueError(f"--gpus-per-job must be >= 0, got {gpus_per_job}")
        if retries < 0:
            raise ValueError(f"--retries must be >= 0, got {retries}")
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.cpus, self.gpus, self.retries = cpus_per_job, gpus_per_job, retries

    def _init(self):
        try:
            import ray
        except ImportError:
            raise ValueError("--executor ray needs Ray: pip install 'fewgan[ray]'") from None
        if ray.is_initialized():
            return ray
        if self.address and self.address != "auto":
            _check_reachable(self.address)  # Ray itself waits minutes before giving up on a dead address
        try:
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(log_to_driver=False, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
            where = self.address or "a local Ray"
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"cannot connect to a Ray cluster at {where}: {msg}") from None
        return ray

    def map(self, fn: Callable, jobs: Iterable) -> Iterator:
        jobs = list(jobs)
        if not jobs:
            return
        ray = self._init()
        task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.retries,
                          retry_exceptions=False)(_remote_call)
        threads = max(1, int(self.cpus))
        refs = {task.remote(fn, job, threads, self.gpus): job for job in jobs}
        failures: list[tuple[str, str]] = []
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    job = refs.pop(ref)
                    try:
                        status, value = ray.get(ref)
                    except ray.exceptions.RayError as e:  # retries used up, or the task was lost
                        failures.append((_run_name(job), f"worker failed after {self.retries} retries: "
                                                         f"{type(e).__name__}"))
                        continue
                    if status == "ok":
                        yield value
                    else:
                        failures.append((_run_name(job), value))
        except KeyboardInterrupt:
            # cancel what is left; every started run keeps its last checkpoint and resumes on rerun
            for ref in refs:
                ray.cancel(ref, force=True)
            raise
        if failures:
            raise JobErrors(failures)
