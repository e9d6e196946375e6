"""Timing: stopping rule and warm-up with a fake clock, statistics, torch wiring, CLI errors."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from bench.core.errors import BenchError
from bench.core.options import fixed_threads, resolve_device
from bench.measure import sampling, stats
from bench.measure.sampling import StopRule, WarmupRule, collect_samples, warm_up
from bench.measure.timing import measure_latency
from bench.runtimes import compiled

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_timer(clock: FakeClock, durations: list[float] | itertools.cycle) -> sampling.TimeOnce:
    """A time_once that advances the fake clock by the next duration and returns it."""
    source = iter(durations)

    def time_once() -> float:
        step = next(source)
        clock.now += step
        return step

    return time_once


def tiny_net() -> nn.Module:
    """A two-layer conv net small enough for unit tests."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))


# --- statistics on known samples -------------------------------------------------------------


def test_summary_of_known_samples() -> None:
    summary = stats.summarize([float(v) for v in range(1, 101)])
    assert summary.median == pytest.approx(50.5)
    assert summary.mean == pytest.approx(50.5)
    assert summary.p10 == pytest.approx(10.9)
    assert summary.p90 == pytest.approx(90.1)
    assert summary.p99 == pytest.approx(99.01)
    assert summary.iqr == pytest.approx(75.25 - 25.75)
    assert summary.cv == pytest.approx(np.std(np.arange(1, 101), ddof=1) / 50.5)


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        stats.percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        stats.percentile([1.0], 101)


@pytest.mark.parametrize(("n", "rank"), [(5, 0), (6, 1), (10, 2), (20, 6), (100, 40)])
def test_median_ci_rank_matches_binomial_tables(n: int, rank: int) -> None:
    assert stats.median_ci_rank(n) == rank


def test_median_ci_rank_normal_approximation_continues_exact_ranks() -> None:
    exact = stats.median_ci_rank(stats.EXACT_BINOMIAL_LIMIT)
    approx = stats.median_ci_rank(stats.EXACT_BINOMIAL_LIMIT + 1)
    assert abs(approx - exact) <= 1


def test_median_ci_uses_order_statistics() -> None:
    samples = [9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0, 10.0]
    assert stats.median_ci(samples) == (2.0, 9.0)
    assert stats.median_rel_halfwidth(samples) == pytest.approx(3.5 / 5.5)
    assert stats.median_rel_halfwidth([1.0, 2.0, 3.0]) == math.inf


# --- stopping rule with a fake clock ---------------------------------------------------------


def test_constant_samples_converge_at_min_samples() -> None:
    clock = FakeClock()
    samples, reason = collect_samples(
        fake_timer(clock, itertools.cycle([0.01])), clock, StopRule(min_samples=12)
    )
    assert reason == "converged"
    assert len(samples) == 12


def test_noisy_samples_stop_on_budget() -> None:
    clock = FakeClock()
    time_once = fake_timer(clock, itertools.cycle([0.1, 0.2]))
    samples, reason = collect_samples(time_once, clock, StopRule(budget_s=3.0))
    assert reason == "budget"
    assert sum(samples) == pytest.approx(clock.now)
    assert clock.now >= 3.0 and clock.now - 0.2 < 3.0


def test_noisy_samples_stop_at_max_samples() -> None:
    clock = FakeClock()
    time_once = fake_timer(clock, itertools.cycle([0.1, 0.2]))
    samples, reason = collect_samples(time_once, clock, StopRule(budget_s=1e9, max_samples=50))
    assert (len(samples), reason) == (50, "max_samples")


def test_convergence_needs_enough_samples_when_noise_is_small() -> None:
    clock = FakeClock()
    rng = np.random.default_rng(0)
    durations = list(1.0 + 0.05 * rng.standard_normal(5000))
    samples, reason = collect_samples(fake_timer(clock, durations), clock, StopRule(budget_s=1e9))
    assert reason == "converged"
    assert 10 < len(samples) < 5000
    assert stats.median_rel_halfwidth(samples) <= 0.02
    assert stats.median_rel_halfwidth(samples[: len(samples) // 2]) > 0.02


# --- warm-up ---------------------------------------------------------------------------------


def test_warm_up_stops_when_windows_agree() -> None:
    clock = FakeClock()
    durations = [0.9, 0.5, 0.3, 0.2, 0.15] + [0.1] * 100
    times = warm_up(fake_timer(clock, durations), clock, WarmupRule(window=5, budget_s=1e9))
    assert len(times) == 13  # medians of [3:8] and [8:13] are both 0.1


def test_warm_up_bounded_by_budget_when_never_settling() -> None:
    clock = FakeClock()
    growing = (0.01 * 1.2**i for i in range(1000))
    times = warm_up(fake_timer(clock, growing), clock, WarmupRule(budget_s=1.0, max_iters=500))
    assert clock.now >= 1.0
    assert len(times) < 500


def test_is_settled_needs_two_windows() -> None:
    assert not sampling.is_settled([1.0] * 9, window=5, tolerance=0.05)
    assert sampling.is_settled([2.0] * 5 + [1.0] * 5 + [1.02] * 5, window=5, tolerance=0.05)


@pytest.mark.parametrize(("typical", "k"), [(0.5, 1), (1e-3, 1), (2.5e-4, 4), (1e-7, 100)])
def test_iters_per_sample(typical: float, k: int) -> None:
    assert sampling.iters_per_sample(typical) == k


# --- measure_latency wiring ------------------------------------------------------------------


def test_measure_latency_with_fake_clock_is_exact() -> None:
    ticks = itertools.count()
    result = measure_latency(tiny_net(), (3, 8, 8), batch=2, clock=lambda: next(ticks) * 1e-3)
    assert result.samples_ms == pytest.approx([1.0] * result.n_samples)
    assert result.median_ms == pytest.approx(1.0)
    assert result.throughput == pytest.approx(2000.0)
    assert result.stop_reason == "converged"
    assert result.warmup_iters >= 10
    # one forward of a (2, 3, 8, 8) float32 input holds at least the input and the output
    assert result.peak_mem_kind == "cpu_activation_peak_counted"
    assert result.peak_mem_bytes >= 2 * 3 * 8 * 8 * 4


def test_measure_latency_real_clock_statistics_match_samples() -> None:
    result = measure_latency(tiny_net(), (3, 16, 16), budget_s=0.5, min_samples=10)
    assert result.n_samples == len(result.samples_ms) >= 1
    assert min(result.samples_ms) > 0
    assert result.median_ms == pytest.approx(float(np.median(result.samples_ms)))
    assert result.stop_reason in {"converged", "budget", "max_samples"}
    json.dumps(result.to_dict())


def test_threads_fixed_and_restored() -> None:
    before = torch.get_num_threads()
    result = measure_latency(tiny_net(), (3, 8, 8), threads=1, budget_s=0.2)
    assert result.threads == 1
    assert torch.get_num_threads() == before
    with pytest.raises(BenchError), fixed_threads(1):
        raise BenchError("boom")
    assert torch.get_num_threads() == before


def test_train_mode_updates_weights() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    before = model[0].weight.detach().clone()
    result = measure_latency(model, (3, 8, 8), batch=4, mode="train", budget_s=0.2)
    assert result.mode == "train" and result.n_samples >= 1
    assert model.training
    assert not torch.equal(before, model[0].weight.detach())


def test_infer_mode_uses_eval_and_random_inputs() -> None:
    seen: list[torch.Tensor] = []
    model = tiny_net()
    model.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    measure_latency(model, (3, 8, 8), budget_s=0.1)
    assert not model.training
    assert seen[0].abs().sum() > 0 and seen[0].std() > 0.5


def test_compile_reports_compile_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "BACKEND", "eager")  # inductor is too slow for a unit test
    result = measure_latency(tiny_net(), (3, 8, 8), compile=True, budget_s=0.2)
    assert result.compile_s is not None and result.compile_s > 0


def test_channels_last_runs_and_bfloat16_reported() -> None:
    result = measure_latency(
        tiny_net(), (3, 8, 8), channels_last=True, dtype=torch.bfloat16, budget_s=0.2
    )
    assert result.dtype == "bfloat16" and result.n_samples >= 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch": 0}, "batch must be a positive integer"),
        ({"mode": "fit"}, "unknown mode 'fit'"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"dtype": torch.int8}, "unsupported dtype"),
        ({"threads": 0}, "threads must be a positive integer"),
        ({"input_shape": (3, 8), "channels_last": True}, "channels-last needs a CxHxW"),
    ],
)
def test_bad_requests_raise_bench_error(kwargs: dict, message: str) -> None:
    kwargs.setdefault("input_shape", (3, 8, 8))
    with pytest.raises(BenchError, match=message):
        measure_latency(tiny_net(), budget_s=0.1, **kwargs)


def test_model_without_input_shape_needs_one() -> None:
    with pytest.raises(BenchError, match="input_shape is required"):
        measure_latency(tiny_net())


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_requested_without_cuda() -> None:
    with pytest.raises(BenchError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"


@needs_cuda
def test_cuda_latency_uses_events_and_max_allocated() -> None:
    result = measure_latency(tiny_net(), (3, 32, 32), device="cuda", budget_s=1.0)
    assert result.device == "cuda" and result.median_ms > 0
    assert result.peak_mem_kind == "cuda_max_allocated" and result.peak_mem_bytes > 0


@needs_cuda
def test_cuda_half_precision() -> None:
    result = measure_latency(tiny_net(), (3, 32, 32), device="cuda", dtype=torch.float16)
    assert result.dtype == "float16"


# --- CLI -------------------------------------------------------------------------------------


def invoke(*args: str):
    """Run `bench ARGS` in-process."""
    from bench.cli.app import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "0"], "batch must be a positive integer"),
        (["--input", "3x224"], "3x224"),
        (["--mode", "fit"], "unknown mode"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_cli_bad_input_exits_2(args: list[str], message: str) -> None:
    result = invoke("time", "g1:c1=8,c2=8", *args)
    assert result.exit_code == 2
    assert message in result.output + result.stderr


def test_cli_unknown_spec_exits_2() -> None:
    result = invoke("time", "no_such_net")
    assert result.exit_code == 2
    assert "no_such_net" in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cli_cuda_without_cuda_exits_2() -> None:
    result = invoke("time", "g1:c1=8,c2=8", "--device", "cuda")
    assert result.exit_code == 2
    assert "CUDA is not available" in result.stderr


def test_cli_json_has_result_fields() -> None:
    result = invoke("time", "g1:c1=8,c2=8", "--input", "8x8x8", "--budget", "0.3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n_samples"] == len(data["samples_ms"])
    assert {"median_ms", "p99_ms", "throughput", "stop_reason", "peak_mem_kind"} <= set(data)


def test_cli_table() -> None:
    result = invoke("time", "g1:c1=8,c2=8", "--input", "8x8x8", "--budget", "0.3", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "median_ms" in result.stdout and "stop_reason" in result.stdout
