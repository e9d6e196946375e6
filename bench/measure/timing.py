"""Latency and throughput of one model on one device and runtime, with raw samples.

`measure_latency` builds the model and a random batch, lets the runtime prepare them (eager
PyTorch, torch.compile, AOTInductor, ONNX Runtime, OpenVINO: `bench.runtimes`), times the first
inference (the cold start), checks the runtime's output against eager PyTorch on the same input,
then hands the session's `step` to the sampling engine (`bench.measure.sampling`): warm-up until
settled, raw samples until the median is known, CUDA events on GPU.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import psutil
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

RSS_POLL_S = 0.001


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


class RssPeak:
    """Peak resident set size seen by a background poller (1 ms period) above a baseline."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(RSS_POLL_S):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def delta(self) -> int:
        """Bytes of peak RSS above the baseline taken at construction."""
        return max(0, self.peak - self.baseline)


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
    `compile=True` is the older spelling of `runtime="compile"`.
    """
    validate_request(batch, mode, budget_s, rel_precision)
    device = resolve_device(device)
    engine = (
        runtime if isinstance(runtime, Runtime) else get_runtime("compile" if compile else runtime)
    )
    model, shape = model_and_shape(model_or_spec, input_shape)
    dtype_label = check_dtype_support(device, dtype, shape, channels_last)
    clock = clock or time.perf_counter
    rule = StopRule(budget_s, rel_precision, min_samples, max(min_samples, max_samples))
    with fixed_threads(threads) as n_threads:
        target = Target(device, dtype, n_threads, str(mode), channels_last)
        engine.check(target)
        model, inputs = prepare(model, shape, batch, device, dtype, channels_last)
        try:
            run = _run_timed(model, inputs, engine, target, rule, clock)
        except (AssertionError, TypeError, IndexError, RuntimeError) as exc:
            raise forward_failure(exc, model, shape) from None
    return build_result(run, target, batch, dtype_label, rule.confidence)


def forward_failure(exc: Exception, model: nn.Module, shape: tuple[int, ...]) -> Exception:
    """A forward that refused its input as one BenchError line; allocation failures unchanged."""
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return exc
    name = getattr(model, "spec", type(model).__name__)
    return BenchError(
        f"cannot run {name} at input {format_input_shape(shape)}: "
        f"{type(exc).__name__}: {first_line(exc)}"
    )


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
    peak_mem_bytes: int
    peak_mem_kind: str
    iters_per_sample: int
    runtime: str
    prepare_s: float
    first_s: float
    parity_max_abs: float | None
    details: dict


def _run_timed(
    model: nn.Module,
    inputs: torch.Tensor,
    engine: Runtime,
    target: Target,
    rule: StopRule,
    clock: Clock,
) -> TimedRun:
    """Prepare, time the first call, check parity, warm up, pick iterations per sample, sample.

    The runtime prepares outside inference mode (exporters trace the model and must see
    ordinary tensors); every timed call runs inside it, as inference does.
    """
    reference = _eager_output(model, inputs, engine, target)
    start = clock()
    session = engine.prepare(model, inputs, target)
    prepare_s = clock() - start
    with torch.inference_mode() if target.mode == "infer" else torch.enable_grad():
        first_s = _timer(session.step, target.device, clock)()
        parity = _parity(session, reference, target.dtype)
        samples, reason, warm, k, rss = _sample(session, target.device, rule, clock)
    peak, kind = _peak_memory(target.device, rss)
    return TimedRun(
        [s / k for s in samples], reason, len(warm), peak, kind, k,
        engine.name, prepare_s, first_s, parity, dict(session.details),
    )  # fmt: skip


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


def _sample(
    session: Session, device: str, rule: StopRule, clock: Clock
) -> tuple[list[float], str, list[float], int, RssPeak]:
    """Warm up, choose iterations per sample, collect samples within what is left of the budget."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = clock()
    with RssPeak() as rss:
        warm = warm_up(_timer(session.step, device, clock), clock, _warmup_rule(rule))
    k = iters_per_sample(statistics.median(warm[-5:]), FAST_SAMPLE_S)
    remaining = replace(rule, budget_s=max(rule.budget_s - (clock() - start), 0.0))
    step = repeat(session.step, k)
    samples, reason = collect_samples(_timer(step, device, clock), clock, remaining)
    return samples, reason, warm, k, rss


def _warmup_rule(rule: StopRule) -> WarmupRule:
    """Warm-up gets at most a quarter of the budget; sampling gets what is left."""
    return WarmupRule(budget_s=rule.budget_s / 4.0)


def _timer(run: Callable[[], object], device: str, clock: Clock) -> TimeOnce:
    """The per-sample timer for the device: CUDA events on GPU, the clock on CPU."""
    return cuda_timer(run) if device == "cuda" else cpu_timer(run, clock)


def _peak_memory(device: str, rss: RssPeak) -> tuple[int, str]:
    """CUDA max allocated since reset, else the warm-up's peak RSS delta."""
    if device == "cuda":
        return int(torch.cuda.max_memory_allocated()), "cuda_max_allocated"
    return rss.delta, "cpu_rss_delta"
