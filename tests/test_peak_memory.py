"""CPU peak memory: the counted activation peak of one forward, labelled; none in train mode."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from bench.measure.counting import activation_peak, count
from bench.measure.timing import CPU_PEAK_KIND, NO_PEAK_KIND, measure_latency
from bench.runs.schema import latency_row


def tiny_net() -> nn.Module:
    """conv 3->4, ReLU (not in place), conv 4->2: activations are easy to count by hand."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))


def fake_clock() -> object:
    """A clock advancing 1 ms per reading (the timing itself does not matter here)."""
    ticks = itertools.count()
    return lambda: next(ticks) * 1e-3


def test_activation_peak_is_counted_by_hand() -> None:
    # input 2x3x8x8, conv1 out 2x4x8x8 and relu out 2x4x8x8 alive together, float32
    expected = (2 * 3 * 64 + 2 * 4 * 64 + 2 * 4 * 64) * 4
    assert activation_peak(tiny_net(), (2, 3, 8, 8), torch.float32) == expected
    assert activation_peak(tiny_net(), (2, 3, 8, 8), torch.bfloat16) == expected // 2


def test_cpu_latency_reports_the_counted_peak_at_its_batch() -> None:
    result = measure_latency(tiny_net(), (3, 8, 8), batch=4, clock=fake_clock(), budget_s=0.05)
    assert result.peak_mem_kind == CPU_PEAK_KIND
    assert result.peak_mem_bytes == count(tiny_net(), (3, 8, 8), batch=4).activation_peak_bytes
    assert result.peak_mem_bytes == 2 * activation_peak(tiny_net(), (2, 3, 8, 8), torch.float32)
    row = latency_row(result)
    assert row["peak_mem_kind"] == CPU_PEAK_KIND and row["peak_mem_bytes"] > 0


def test_cpu_training_has_no_peak_rather_than_a_wrong_one() -> None:
    result = measure_latency(
        tiny_net(), (3, 8, 8), batch=2, mode="train", clock=fake_clock(), budget_s=0.05
    )
    assert result.peak_mem_bytes is None and result.peak_mem_kind == NO_PEAK_KIND
