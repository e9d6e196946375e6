"""Latency and throughput of one model on one device and runtime, with raw samples.

`measure_latency` builds the model and a random batch, lets the runtime prepare them (eager
PyTorch, torch.compile, AOTInductor, ONNX Runtime, OpenVINO: `bench.runtimes`), times the first
inference (the cold start), checks the runtime's output against eager PyTorch on the same input,
then hands the session's `step` to the sampling engine (`bench.measure.sampling`): warm-up until
settled, raw samples until the median is known, CUDA events on GPU.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial

import torch
from torch import nn

from bench.core.choices import MODES
from bench.core.errors import BenchError, first_line
from bench.core.models import model_and_shape
from bench.core.options import (
    check_supported_dtype,
    fixed_threads,
    format_input_shape,
    resolve_device,
)
from bench.measure.counting import activation_peak
from bench.measure.isolated import measure_in_child, process_is_owned
from bench.measure.parity import check_parity
from bench.measure.sampling import (
    FAST_SAMPLE_S,
    Clock,
    StopRule,
    TimeOnce,
    WarmupRule,
    collect_samples,
    cpu_timer,
    cuda_timer,
    iters_per_sample,
    repeat,
    warm_up,
)
from bench.measure.stats import median_rel_halfwidth, summarize
from bench.runtimes import get_runtime
from bench.runtimes.base import Runtime, Session, Target, output_tensor

# What a CPU run's peak_mem_bytes is (the OS's RSS delta read as noise: 4 kB for blocks with
# megabytes of activations): the counted activation peak of one inference forward at this batch.
CPU_PEAK_KIND = "cpu_activation_peak_counted"
NO_PEAK_KIND = "none"


@dataclass
class LatencyResult:
    """One latency measurement: statistics in ms derived from the raw per-iteration samples."""

    median_ms: float
    mean_ms: float
    p10_ms: float
    p90_ms: float
    p99_ms: float
    iqr_ms: float
    cv: float
    throughput: float
    samples_ms: list[float]
    n_samples: int
    stop_reason: str
    warmup_iters: int
    compile_s: float | None
    peak_mem_bytes: int | None
    peak_mem_kind: str
    device: str
    threads: int
    batch: int
    dtype: str
    mode: str
    iters_per_sample: int = 1
    rel_halfwidth: float = field(default=math.inf)
    runtime: str = "eager"
    prepare_s: float | None = None
    first_ms: float | None = None
    parity_max_abs: float | None = None
    runtime_details: dict = field(default_factory=dict)
    paired_ratio: float | None = None  # interleaved: speed over the group's first member
    paired_low: float | None = None
    paired_high: float | None = None
    rounds: int | None = None
    sample_rounds: list[int] | None = None  # interleaved: the round of each raw sample

    def to_dict(self) -> dict:
        """JSON-ready dict with the field names above (infinite half-width becomes None)."""
        data = asdict(self)
        if math.isinf(data["rel_halfwidth"]):
            data["rel_halfwidth"] = None
        return data


def check_dtype_support(
    device: str, dtype: torch.dtype, input_shape: tuple[int, ...], channels_last: bool
) -> str:
    """The dtype's name; a clear BenchError if the device cannot run this dtype / memory format."""
    name = check_supported_dtype(dtype)
    if channels_last and len(input_shape) != 3:
        raise BenchError(f"--channels-last needs a CxHxW image input, got shape {input_shape}")
    try:
        probe = torch.randn(1, 2, 4, 4, device=device).to(dtype)
        weight = torch.randn(2, 2, 3, 3, device=device).to(dtype)
        torch.nn.functional.conv2d(probe, weight, padding=1).sum().item()
    except (RuntimeError, NotImplementedError) as exc:
        raise BenchError(
            f"dtype {name} cannot run a convolution on {device}: {first_line(exc)}"
        ) from None
    return name


def prepare(
    model: nn.Module,
    shape: tuple[int, ...],
    batch: int,
    device: str,
    dtype: torch.dtype,
    channels_last: bool,
) -> tuple[nn.Module, torch.Tensor]:
    """Move the model and a random input batch to device, dtype and memory format."""
    model = model.to(device=device, dtype=dtype)
    inputs = torch.randn(batch, *shape, device=device).to(dtype)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return model, inputs


def validate_request(batch: int, mode: str, budget_s: float, rel_precision: float) -> None:
    """BenchError for a non-positive batch/budget/precision or an unknown mode."""
    if batch <= 0:
        raise BenchError(f"batch must be a positive integer, got {batch}")
    if str(mode) not in MODES:
        raise BenchError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if budget_s <= 0 or rel_precision <= 0:
        raise BenchError(f"budget_s and rel_precision must be > 0, got {budget_s}, {rel_precision}")


def measure_latency(
    model_or_spec: nn.Module | str,
    input_shape: tuple[int, ...] | None = None,
    batch: int = 1,
    device: str = "cpu",
    threads: int | None = None,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    compile: bool = False,
    mode: str = "infer",
    budget_s: float = 10.0,
    rel_precision: float = 0.02,
    min_samples: int = 10,
    clock: Clock | None = None,
    max_samples: int = 10_000,
    runtime: str | Runtime = "eager",
) -> LatencyResult:
    """Time one model: prepare it in a runtime, then raw samples until the median is known.

    `runtime` is a runtime's name or an adapter of your own (a `bench.runtimes.base.Runtime`);
    `compile=True` is the older spelling of `runtime="compile"`. A runtime that must own its
    process (TensorFlow) is measured in a child process (`bench.measure.isolated`).
    """
    arguments = dict(locals())  # every argument as given, for a measurement in a child process
    validate_request(batch, mode, budget_s, rel_precision)
    device = resolve_device(device)
    engine = (
        runtime if isinstance(runtime, Runtime) else get_runtime("compile" if compile else runtime)
    )
    if engine.own_process and not process_is_owned():
        return measure_in_child(measure_latency, arguments, (engine.name, threads))
    model, shape = model_and_shape(model_or_spec, input_shape)
    dtype_label = check_dtype_support(device, dtype, shape, channels_last)
    clock = clock or time.perf_counter
    rule = StopRule(budget_s, rel_precision, min_samples, max(min_samples, max_samples))
    with fixed_threads(threads) as n_threads:
        target = Target(device, dtype, n_threads, str(mode), channels_last)
        engine.check(target)
        model, inputs = prepare(model, shape, batch, device, dtype, channels_last)
        run = _run_timed(model, inputs, engine, target, rule, clock)
    return build_result(run, target, batch, dtype_label, rule.confidence)


def build_result(
    run: TimedRun, target: Target, batch: int, dtype: str, confidence: float
) -> LatencyResult:
    """Derive the statistics (ms) and throughput (images/s) from the raw samples."""
    samples_ms = [s * 1000.0 for s in run.samples]
    summary = summarize(samples_ms)
    return LatencyResult(
        median_ms=summary.median,
        mean_ms=summary.mean,
        p10_ms=summary.p10,
        p90_ms=summary.p90,
        p99_ms=summary.p99,
        iqr_ms=summary.iqr,
        cv=summary.cv,
        throughput=batch / (summary.median / 1000.0) if summary.median > 0 else math.inf,
        samples_ms=samples_ms,
        n_samples=summary.n,
        stop_reason=run.stop_reason,
        warmup_iters=run.warmup_iters,
        compile_s=run.prepare_s if run.runtime == "compile" else None,
        peak_mem_bytes=run.peak_mem_bytes,
        peak_mem_kind=run.peak_mem_kind,
        device=target.device,
        threads=target.threads,
        batch=batch,
        dtype=dtype,
        mode=target.mode,
        iters_per_sample=run.iters_per_sample,
        rel_halfwidth=median_rel_halfwidth(samples_ms, confidence),
        runtime=run.runtime,
        prepare_s=run.prepare_s,
        first_ms=run.first_s * 1000.0,
        parity_max_abs=run.parity_max_abs,
        runtime_details=run.details,
    )


@dataclass(frozen=True)
class TimedRun:
    """What the runtime side of a measurement produced (samples in seconds per iteration)."""

    samples: list[float]
    stop_reason: str
    warmup_iters: int
    peak_mem_bytes: int | None
    peak_mem_kind: str
    iters_per_sample: int
    runtime: str
    prepare_s: float
    first_s: float
    parity_max_abs: float | None
    details: dict


@dataclass
class WarmSession:
    """A prepared session after its first call, parity check and warm-up, ready to be sampled."""

    session: Session
    time_once: TimeOnce  # times `iters_per_sample` steps
    iters_per_sample: int
    warmup_iters: int
    runtime: str
    prepare_s: float
    first_s: float
    parity_max_abs: float | None
    peak_memory: Callable[[], tuple[int | None, str]]  # measured after the samples
    warmup_s: float


def mode_context(mode: str) -> contextlib.AbstractContextManager:
    """Inference mode for `infer` (as inference runs), autograd enabled for `train`."""
    return torch.inference_mode() if mode == "infer" else torch.enable_grad()


def warm_session(
    model: nn.Module,
    inputs: torch.Tensor,
    engine: Runtime,
    target: Target,
    warmup_budget_s: float,
    clock: Clock,
) -> WarmSession:
    """Prepare, time the first call, check parity, warm up, pick iterations per sample.

    The runtime prepares outside inference mode (exporters trace the model and must see
    ordinary tensors); every timed call runs inside it, as inference does.
    """
    with runs_on_input(model, inputs):
        reference = _eager_output(model, inputs, engine, target)
    start = clock()
    session = engine.prepare(model, inputs, target)
    prepare_s = clock() - start
    with mode_context(target.mode):
        with runs_on_input(model, inputs):
            first_s = _timer(session.step, target.device, clock)()
        parity = _parity(session, reference, target.dtype)
        if target.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = clock()
        timer = _timer(session.step, target.device, clock)
        warm = warm_up(timer, clock, WarmupRule(budget_s=warmup_budget_s))
    k = iters_per_sample(statistics.median(warm[-5:]), FAST_SAMPLE_S)
    time_once = _timer(repeat(session.step, k), target.device, clock)
    return WarmSession(
        session, time_once, k, len(warm), engine.name, prepare_s, first_s, parity,
        partial(_peak_memory, model, inputs, target, engine.torch_graph), clock() - start,
    )  # fmt: skip


def timed_run(warm: WarmSession, samples: list[float], reason: str) -> TimedRun:
    """The TimedRun of a warmed session and its samples (seconds per sample of k iterations)."""
    peak, kind = warm.peak_memory()
    k = warm.iters_per_sample
    return TimedRun(
        [s / k for s in samples], reason, warm.warmup_iters, peak, kind, k, warm.runtime,
        warm.prepare_s, warm.first_s, warm.parity_max_abs, dict(warm.session.details),
    )  # fmt: skip


def _run_timed(
    model: nn.Module,
    inputs: torch.Tensor,
    engine: Runtime,
    target: Target,
    rule: StopRule,
    clock: Clock,
) -> TimedRun:
    """Warm the session (a quarter of the budget at most), then sample within what is left."""
    warm = warm_session(model, inputs, engine, target, rule.budget_s / 4.0, clock)
    remaining = replace(rule, budget_s=max(rule.budget_s - warm.warmup_s, 0.0))
    with mode_context(target.mode):
        samples, reason = collect_samples(warm.time_once, clock, remaining)
    return timed_run(warm, samples, reason)


@contextmanager
def runs_on_input(model: nn.Module, inputs: torch.Tensor) -> Iterator[None]:
    """The first call on an input: a failure becomes one line naming the model and the input.

    BenchErrors and allocation failures pass unchanged (the CLI says what they are).
    """
    try:
        yield
    except (BenchError, MemoryError, torch.OutOfMemoryError):
        raise
    except Exception as exc:
        if _is_allocation_failure(exc):
            raise
        label = getattr(model, "spec", None) or type(model).__name__
        given = format_input_shape(tuple(inputs.shape[1:]))
        raise BenchError(
            f"model {label!r} cannot run on input {given} (batch {inputs.shape[0]}): "
            f"{first_line(exc)}"
        ) from None


def _is_allocation_failure(exc: Exception) -> bool:
    """The CPU allocator's RuntimeError for a failed allocation."""
    return isinstance(exc, RuntimeError) and "allocate" in str(exc).lower()


def _eager_output(
    model: nn.Module, inputs: torch.Tensor, engine: Runtime, target: Target
) -> torch.Tensor | None:
    """Eager PyTorch's output on the same input, the parity reference (None when not needed)."""
    if engine.name == "eager" or target.mode != "infer":
        return None
    with torch.inference_mode():
        return output_tensor(model.eval()(inputs)).detach().float().cpu()


def _parity(session: Session, reference: torch.Tensor | None, dtype: torch.dtype) -> float | None:
    """max |runtime - eager| after the first call (None when there is nothing to compare)."""
    return None if reference is None else check_parity(session.output(), reference, dtype)


def _timer(run: Callable[[], object], device: str, clock: Clock) -> TimeOnce:
    """The per-sample timer for the device: CUDA events on GPU, the clock on CPU."""
    return cuda_timer(run) if device == "cuda" else cpu_timer(run, clock)


def _peak_memory(
    model: nn.Module, inputs: torch.Tensor, target: Target, torch_graph: bool
) -> tuple[int | None, str]:
    """CUDA: max allocated since warm-up; CPU inference of PyTorch's graph: the counted
    activation peak; else none."""
    if target.device == "cuda":
        return int(torch.cuda.max_memory_allocated()), "cuda_max_allocated"
    if target.mode != "infer" or not torch_graph:
        return None, NO_PEAK_KIND
    try:
        return activation_peak(model, tuple(inputs.shape), target.dtype), CPU_PEAK_KIND
    except (RuntimeError, NotImplementedError, TypeError, ValueError):  # an op meta cannot run
        return None, NO_PEAK_KIND
