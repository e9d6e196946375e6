"""Latency of a group of models meant to be compared, measured in interleaved rounds.

`measure_interleaved` builds every model of the group once, prepares and warms a session of
each (`bench.measure.timing.warm_session`), then samples them round-robin
(`bench.measure.rounds`) so drift and bursts of load hit every member alike. Each member gets
one `LatencyResult` with the usual statistics from all its raw samples, plus its speed relative
to the group's first member paired by round (`paired_ratio`, `paired_low`, `paired_high`), the
number of rounds and the round of every raw sample.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import torch
from torch import nn

from bench.core.errors import BenchError
from bench.core.models import model_and_shape
from bench.core.options import fixed_threads, resolve_device
from bench.measure.rounds import RoundRule, Rounds, interleaved_rounds
from bench.measure.sampling import Clock, TimeOnce
from bench.measure.timing import (
    LatencyResult,
    WarmSession,
    build_result,
    check_dtype_support,
    mode_context,
    prepare,
    timed_run,
    validate_request,
    warm_session,
)
from bench.runtimes import get_runtime
from bench.runtimes.base import Target

Member = nn.Module | str | tuple[nn.Module | str, tuple[int, ...] | None]
RATIO_PRECISION = math.sqrt(2.0)  # two medians within +-p each: their ratio within about +-p*1.41


def measure_interleaved(
    members: Sequence[Member],
    batch: int = 1,
    device: str = "cpu",
    threads: int | None = None,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    mode: str = "infer",
    budget_s: float = 20.0,
    rel_precision: float = 0.02,
    runtime: str = "eager",
    clock: Clock | None = None,
) -> list[LatencyResult]:
    """Time a group of models in interleaved rounds; one result per member, in order.

    A member is a model, a spec, or a (model or spec, input shape) pair. `budget_s` bounds the
    whole group: each warm-up gets at most a quarter of its share, the rounds what is left.
    Rounds stop when every paired ratio is known to `rel_precision` x sqrt(2): as precise as the
    ratio of two medians each measured alone to `rel_precision`.
    """
    if not members:
        raise BenchError("measure_interleaved needs at least one model")
    validate_request(batch, mode, budget_s, rel_precision)
    device, clock = resolve_device(device), clock or time.perf_counter
    engine = get_runtime(runtime)
    start = clock()
    with fixed_threads(threads) as n_threads:
        target = Target(device, dtype, n_threads, str(mode), channels_last)
        engine.check(target)
        warm_budget = budget_s / 4.0 / len(members)
        built = [_build(m, batch, target) for m in members]
        labels = [label for _, label in built]
        warm = [warm_session(*b, engine, target, warm_budget, clock) for b, _ in built]
        precision = rel_precision * RATIO_PRECISION
        rule = RoundRule(precision, budget_s=max(budget_s - (clock() - start), 0.0))
        with mode_context(target.mode):
            rounds = interleaved_rounds([_per_iteration(w) for w in warm], clock, rule)
    return [
        _member_result(rounds, m, w, target, batch, labels[m], rule.confidence)
        for m, w in enumerate(warm)
    ]


def _build(
    member: Member, batch: int, target: Target
) -> tuple[tuple[nn.Module, torch.Tensor], str]:
    """The member's model and input batch on the target, and its dtype's name."""
    model_or_spec, shape = member if isinstance(member, tuple) else (member, None)
    model, shape = model_and_shape(model_or_spec, shape)
    label = check_dtype_support(target.device, target.dtype, shape, target.channels_last)
    return prepare(model, shape, batch, target.device, target.dtype, target.channels_last), label


def _per_iteration(warm: WarmSession) -> TimeOnce:
    """Seconds per iteration of one sample (a sample times `iters_per_sample` iterations)."""
    return lambda: warm.time_once() / warm.iters_per_sample


def _member_result(
    rounds: Rounds,
    member: int,
    warm: WarmSession,
    target: Target,
    batch: int,
    dtype: str,
    confidence: float,
) -> LatencyResult:
    """One member's LatencyResult: statistics of its raw samples plus its paired ratio."""
    k = warm.iters_per_sample
    samples = [s * k for s in rounds.samples[member]]  # timed_run divides by k again
    run = timed_run(warm, samples, rounds.stop_reason)
    result = build_result(run, target, batch, dtype, confidence)
    ratio = rounds.ratios[member]
    return dataclasses.replace(
        result,
        paired_ratio=_finite(ratio.ratio),
        paired_low=_finite(ratio.low),
        paired_high=_finite(ratio.high),
        rounds=rounds.n_rounds,
        sample_rounds=list(rounds.rounds[member]),
    )


def _finite(value: float) -> float | None:
    """The value, or None when it is infinite or NaN (no interval yet)."""
    return value if math.isfinite(value) else None
