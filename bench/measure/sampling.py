"""The sampling engine: warm-up until settled, raw samples until the median is known.

Plain Python over two callables (`time_once` returns the seconds one sample took, `clock` reads
the wall clock for budgets), so unit tests drive it with a fake clock. It never knows what it
times: `bench.measure.timing` hands it a step built for a model, device and mode.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch

from bench.measure.stats import median_rel_halfwidth

FAST_SAMPLE_S = 1e-3
MAX_ITERS_PER_SAMPLE = 100

TimeOnce = Callable[[], float]
Clock = Callable[[], float]


@dataclass(frozen=True)
class StopRule:
    """When sampling ends: converged CI, spent budget or too many samples."""

    budget_s: float = 10.0
    rel_precision: float = 0.02
    min_samples: int = 10
    max_samples: int = 10_000
    confidence: float = 0.95


@dataclass(frozen=True)
class WarmupRule:
    """Warm-up: at least `min_iters`, then until two windows' medians agree within `tolerance`."""

    min_iters: int = 3
    window: int = 5
    tolerance: float = 0.05
    max_iters: int = 200
    budget_s: float = 2.0


def warm_up(time_once: TimeOnce, clock: Clock, rule: WarmupRule = WarmupRule()) -> list[float]:
    """Run iterations until their times settle (or the warm-up budget ends); return them."""
    times: list[float] = []
    start = clock()
    while len(times) < rule.max_iters:
        times.append(time_once())
        if len(times) >= rule.min_iters and is_settled(times, rule.window, rule.tolerance):
            break
        if clock() - start >= rule.budget_s:
            break
    return times


def is_settled(times: list[float], window: int, tolerance: float) -> bool:
    """True when the median of the last window is within `tolerance` of the window before."""
    if len(times) < 2 * window:
        return False
    last = statistics.median(times[-window:])
    previous = statistics.median(times[-2 * window : -window])
    return previous > 0 and abs(last - previous) / previous <= tolerance


def collect_samples(
    time_once: TimeOnce, clock: Clock, rule: StopRule = StopRule()
) -> tuple[list[float], str]:
    """Sample until the median's CI half-width <= rel_precision, the budget or max_samples."""
    samples: list[float] = []
    start = clock()
    next_check = rule.min_samples
    while True:
        samples.append(time_once())
        if len(samples) >= next_check:
            next_check = len(samples) + max(1, len(samples) // 20)
            if median_rel_halfwidth(samples, rule.confidence) <= rule.rel_precision:
                return samples, "converged"
        if len(samples) >= rule.max_samples:
            return samples, "max_samples"
        if clock() - start >= rule.budget_s:
            return samples, "budget"


def iters_per_sample(typical_s: float, target_s: float = FAST_SAMPLE_S) -> int:
    """Iterations per sample so that one sample lasts about `target_s` (1 for slow models)."""
    if typical_s <= 0.0 or typical_s >= target_s:
        return 1
    return min(MAX_ITERS_PER_SAMPLE, math.ceil(target_s / typical_s))


def repeat(step: Callable[[], object], k: int) -> Callable[[], object]:
    """A callable running `step` k times."""
    if k == 1:
        return step

    def repeated() -> None:
        for _ in range(k):
            step()

    return repeated


def cpu_timer(run: Callable[[], object], clock: Clock) -> TimeOnce:
    """Seconds of one call of `run`, read with the wall clock."""

    def time_once() -> float:
        start = clock()
        run()
        return clock() - start

    return time_once


def cuda_timer(run: Callable[[], object]) -> TimeOnce:
    """Seconds of one call of `run` from a CUDA event pair, synchronised around it."""

    def time_once() -> float:
        begin = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        begin.record()
        run()
        end.record()
        end.synchronize()
        return begin.elapsed_time(end) / 1000.0

    return time_once
