"""Interleaved rounds: configurations meant to be compared, sampled round-robin, paired by round.

Plain Python over callables (one `time_once` per member, a `clock`), like `sampling`, so unit
tests drive it with a fake clock. Each round gives every member a short burst of samples, in an
order rotated by one place per round (A B C, B C A, C A B, ...), so drift and bursts of load on
a shared machine land on every member alike. A member's ratio to the first member is paired by
round: per round, the first member's fastest sample of its burst over this member's (its speed
relative to the first: > 1 is faster); the ratio is the median over rounds, with the
distribution-free interval of that median (`bench.measure.stats.median_ci`). The burst's fastest
sample, not its median: on a busy machine most samples of a burst include a preemption (with ten
runnable tasks on two cores, the median of a 2 ms block was 5-30 ms while its p10 stayed near
2 ms), the fastest is the one that ran alone. Sampling stops when every ratio's interval is
within the precision, or at the round cap or the budget.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.measure.sampling import Clock, TimeOnce
from bench.measure.stats import median_ci, median_rel_halfwidth


@dataclass(frozen=True)
class RoundRule:
    """When interleaved sampling stops, and how long each member's burst in a round lasts."""

    precision: float = 0.02
    confidence: float = 0.95
    min_rounds: int = 8
    max_rounds: int = 400
    budget_s: float = 20.0
    burst_s: float = 0.02
    min_burst: int = 1


@dataclass(frozen=True)
class PairedRatio:
    """A member's speed relative to the first member, paired by round, with its interval."""

    ratio: float
    low: float
    high: float
    rounds: int

    @property
    def rel_halfwidth(self) -> float:
        """Half the interval's width over the ratio (inf when there is no interval yet)."""
        if math.isinf(self.low) or math.isinf(self.high) or self.ratio <= 0:
            return math.inf
        return (self.high - self.low) / 2.0 / self.ratio


@dataclass
class Rounds:
    """The raw samples (seconds) of every member, each with the round it was taken in."""

    samples: list[list[float]]
    rounds: list[list[int]]
    n_rounds: int = 0
    stop_reason: str = ""
    ratios: list[PairedRatio] = field(default_factory=list)

    def burst_best(self, member: int) -> list[float]:
        """The fastest sample of each round's burst of one member, in round order."""
        bursts: dict[int, float] = {}
        for value, index in zip(self.samples[member], self.rounds[member], strict=True):
            bursts[index] = min(value, bursts.get(index, math.inf))
        return [bursts[r] for r in sorted(bursts)]


def round_order(n_members: int, round_index: int) -> list[int]:
    """The members' order in one round: 0..n-1 rotated left by the round's index."""
    shift = round_index % n_members if n_members else 0
    return [*range(shift, n_members), *range(shift)]


def burst(time_once: TimeOnce, clock: Clock, rule: RoundRule) -> list[float]:
    """One member's burst: at least `min_burst` samples, then until `burst_s` has passed."""
    times: list[float] = []
    start = clock()
    while len(times) < rule.min_burst or clock() - start < rule.burst_s:
        times.append(time_once())
    return times


def paired_ratio(base: Sequence[float], other: Sequence[float], confidence: float) -> PairedRatio:
    """Median over rounds of base / other (speed of `other` relative to `base`), with its CI."""
    ratios = [b / o for b, o in zip(base, other, strict=True) if o > 0]
    if not ratios:
        return PairedRatio(math.nan, -math.inf, math.inf, 0)
    low, high = median_ci(ratios, confidence)
    return PairedRatio(statistics.median(ratios), low, high, len(ratios))


def all_ratios(rounds: Rounds, confidence: float) -> list[PairedRatio]:
    """Every member's paired ratio to member 0 (member 0's own is exactly 1)."""
    base = rounds.burst_best(0)
    members = range(len(rounds.samples))
    return [paired_ratio(base, rounds.burst_best(m), confidence) for m in members]


def converged(rounds: Rounds, rule: RoundRule) -> bool:
    """True when every ratio's interval is within the precision (a lone member: its median's)."""
    if rounds.n_rounds < rule.min_rounds:
        return False
    if len(rounds.samples) == 1:
        return median_rel_halfwidth(rounds.burst_best(0), rule.confidence) <= rule.precision
    ratios = all_ratios(rounds, rule.confidence)[1:]
    return all(r.rel_halfwidth <= rule.precision for r in ratios)


def interleaved_rounds(time_fns: Sequence[TimeOnce], clock: Clock, rule: RoundRule) -> Rounds:
    """Sample the members round-robin until their paired ratios converge, or cap or budget."""
    n = len(time_fns)
    rounds = Rounds([[] for _ in range(n)], [[] for _ in range(n)])
    start = clock()
    while True:
        for member in round_order(n, rounds.n_rounds):
            times = burst(time_fns[member], clock, rule)
            rounds.samples[member] += times
            rounds.rounds[member] += [rounds.n_rounds] * len(times)
        rounds.n_rounds += 1
        reason = stop_reason(rounds, rule, clock() - start)
        if reason:
            rounds.stop_reason = reason
            rounds.ratios = all_ratios(rounds, rule.confidence)
            return rounds


def stop_reason(rounds: Rounds, rule: RoundRule, elapsed_s: float) -> str:
    """'converged', 'max_rounds' or 'budget' once sampling should stop, else ''."""
    if converged(rounds, rule):
        return "converged"
    if rounds.n_rounds >= rule.max_rounds:
        return "max_rounds"
    return "budget" if elapsed_s >= rule.budget_s else ""
