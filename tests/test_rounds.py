"""Interleaved rounds on a fake machine: a fake clock, fixed costs, 1% jitter and injected bursts.

The paired ratios stay right under a burst where sequential measurement does not.
"""

from __future__ import annotations

import random
import statistics

import pytest

from bench.measure.rounds import (
    RoundRule,
    interleaved_rounds,
    paired_ratio,
    round_order,
)
from bench.measure.sampling import StopRule, collect_samples

COSTS = [0.001, 0.002, 0.004]  # seconds per sample of members A, B, C
TRUE_RATIOS = [1.0, 0.5, 0.25]  # speed relative to A


class FakeMachine:
    """A fake clock; timing member m advances it by its cost, slowed inside burst windows."""

    def __init__(self, bursts: list[tuple[int | None, float, float, float]] = ()) -> None:
        self.now = 0.0
        self.bursts = list(bursts)  # (member or None for all, start, end, factor)
        self.rng = random.Random(0)

    def clock(self) -> float:
        return self.now

    def factor(self, member: int) -> float:
        for who, start, end, slow in self.bursts:
            if (who is None or who == member) and start <= self.now < end:
                return slow
        return 1.0

    def timer(self, member: int):
        def time_once() -> float:
            took = COSTS[member] * self.factor(member) * self.rng.uniform(0.99, 1.01)
            self.now += took
            return took

        return time_once


def interleaved(machine: FakeMachine) -> list[float]:
    rounds = interleaved_rounds([machine.timer(m) for m in range(3)], machine.clock, RoundRule())
    return [r.ratio for r in rounds.ratios]


def sequential(machine: FakeMachine) -> list[float]:
    medians = []
    for member in range(3):
        samples, _ = collect_samples(machine.timer(member), machine.clock, StopRule(5.0, 0.02))
        medians.append(statistics.median(samples))
    return [medians[0] / m for m in medians]


def test_round_order_rotates_one_place_per_round() -> None:
    assert [round_order(3, r) for r in range(4)] == [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2]]


def test_quiet_machine_converges_on_the_true_ratios() -> None:
    machine = FakeMachine()
    rounds = interleaved_rounds([machine.timer(m) for m in range(3)], machine.clock, RoundRule())
    assert rounds.stop_reason == "converged"
    for ratio, true in zip(rounds.ratios, TRUE_RATIOS, strict=True):
        assert ratio.ratio == pytest.approx(true, rel=0.01)
        assert ratio.low <= true <= ratio.high or true == 1.0
    assert rounds.ratios[0].ratio == 1.0


def test_burst_on_one_member_moves_sequential_but_not_paired_ratios() -> None:
    burst = [(1, 0.0, 0.15, 2.5)]  # B is 2.5x slower for the first 150 ms
    assert sequential(FakeMachine(burst))[1] == pytest.approx(0.2, rel=0.05)  # wrong: 0.5
    assert interleaved(FakeMachine(burst))[1] == pytest.approx(0.5, rel=0.02)


def test_machine_wide_burst_hits_every_member_alike() -> None:
    burst = [(None, 0.012, 0.5, 3.0)]  # everything 3x slower after A's sequential turn
    seq = sequential(FakeMachine(burst))
    assert seq[1:] == pytest.approx([0.5 / 3, 0.25 / 3], rel=0.05)
    paired = interleaved(FakeMachine(burst))
    assert paired == pytest.approx(TRUE_RATIOS, rel=0.02)


def test_every_sample_keeps_its_round_and_bursts_have_min_samples() -> None:
    machine = FakeMachine()
    rule = RoundRule(min_rounds=3, max_rounds=3, burst_s=0.0, min_burst=2)
    rounds = interleaved_rounds([machine.timer(m) for m in range(3)], machine.clock, rule)
    assert rounds.n_rounds == 3 and rounds.stop_reason == "max_rounds"
    assert all(r == [0, 0, 1, 1, 2, 2] for r in rounds.rounds)
    assert [len(s) for s in rounds.samples] == [6, 6, 6]


def test_budget_stops_noisy_members() -> None:
    machine = FakeMachine()
    noisy = random.Random(1)

    def wild() -> float:  # a member whose times vary by a factor of 3
        took = 0.002 * noisy.uniform(1.0, 3.0)
        machine.now += took
        return took

    rule = RoundRule(budget_s=1.0)
    rounds = interleaved_rounds([machine.timer(0), wild], machine.clock, rule)
    assert rounds.stop_reason == "budget"
    assert 1.0 <= machine.now < 1.1
    assert rounds.ratios[1].rel_halfwidth > rule.precision


def test_paired_ratio_is_the_median_of_per_round_ratios() -> None:
    base = [1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    other = [2.0] * 9  # one round where only the base was slowed
    ratio = paired_ratio(base, other, 0.95)
    assert ratio.ratio == 0.5 and ratio.rounds == 9
    assert ratio.low == 0.5 and ratio.high == 0.5  # 9 rounds: [x_(2), x_(8)] leaves the outlier


def test_preempted_samples_do_not_move_the_paired_ratios() -> None:
    # A busy machine: 60% of all samples lose 10 ms to another task (most burst medians move).
    machine = FakeMachine()
    preempt = random.Random(2)

    def preempted(member: int):
        clean = machine.timer(member)

        def time_once() -> float:
            lost = 0.010 if preempt.random() < 0.6 else 0.0
            machine.now += lost  # the clock sees the lost time too
            return clean() + lost

        return time_once

    rounds = interleaved_rounds([preempted(m) for m in range(3)], machine.clock, RoundRule())
    assert [r.ratio for r in rounds.ratios] == pytest.approx(TRUE_RATIOS, rel=0.03)
