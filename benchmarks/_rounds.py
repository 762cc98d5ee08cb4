"""Shared by the cost benchmarks: time trainers side by side in alternating rounds.

The machine is shared and noisy, so each trainer runs `iters` iterations in turn, `rounds` times,
after `warmup` untimed iterations each; the median over rounds is what the benchmarks report.
"""

from __future__ import annotations

import platform
import statistics
import time

import torch


def alternate(trainers: dict, rounds: int, iters: int, warmup: int) -> dict[str, list[float]]:
    """{name: [seconds per iteration, one per round]} for {name: Trainer}."""
    for tr in trainers.values():
        for _ in range(warmup):
            tr.iteration()
    secs: dict[str, list[float]] = {n: [] for n in trainers}
    for _ in range(rounds):
        for n, tr in trainers.items():
            t0 = time.perf_counter()
            for _ in range(iters):
                tr.iteration()
            secs[n].append((time.perf_counter() - t0) / iters)
    return secs


def medians(secs: dict[str, list[float]]) -> dict[str, float]:
    return {n: statistics.median(v) for n, v in secs.items()}


def machine_info() -> dict:
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d %H:%M")}
