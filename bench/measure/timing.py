"""Latency and throughput of one model on one device, with raw samples and a stopping rule.

`measure_latency` wires the sampling engine (`bench.measure.sampling`) to torch: eval +
inference_mode (or a training step), random inputs, fixed thread count, warm-up until settled,
CUDA events on GPU.
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
from bench.core.options import check_supported_dtype, fixed_threads, resolve_device
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

COMPILE_BACKEND = "inductor"
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


def make_step(
    model: nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    mode: str,
) -> Callable[[], object]:
    """One iteration: inference forward, or forward + loss + backward + SGD step (train mode)."""
    if mode == "infer":
        model.eval()
        return lambda: forward(inputs)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    targets: dict[str, torch.Tensor] = {}

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        training_loss(forward(inputs), targets).backward()
        optimizer.step()

    return train_step


def training_loss(output: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy on fixed random targets for (N, classes) logits, else the output's sum."""
    if output.dim() != 2:
        return output.float().sum()
    if "y" not in targets:
        targets["y"] = torch.randint(0, output.shape[1], (output.shape[0],), device=output.device)
    return nn.functional.cross_entropy(output.float(), targets["y"])


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


def compiled_forward(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """torch.compile the model with the configured backend."""
    return torch.compile(model, backend=COMPILE_BACKEND)


def time_first_call(step: Callable[[], object]) -> float:
    """Seconds of the first (compiling) call; BenchError with one line when compilation fails."""
    start = time.perf_counter()
    try:
        step()
    except Exception as exc:  # compile failures come in many types; report one line
        raise BenchError(f"torch.compile failed ({COMPILE_BACKEND}): {first_line(exc)}") from None
    return time.perf_counter() - start


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
) -> LatencyResult:
    """Time one model: warm-up, then raw samples until the median is known to rel_precision."""
    validate_request(batch, mode, budget_s, rel_precision)
    device = resolve_device(device)
    model, shape = model_and_shape(model_or_spec, input_shape)
    dtype_label = check_dtype_support(device, dtype, shape, channels_last)
    clock = clock or time.perf_counter
    rule = StopRule(budget_s, rel_precision, min_samples, max(min_samples, max_samples))
    with fixed_threads(threads) as n_threads:
        model, inputs = prepare(model, shape, batch, device, dtype, channels_last)
        run = _run_timed(model, inputs, device, mode, compile, rule, clock)
    return build_result(run, device, n_threads, batch, dtype_label, mode, rule.confidence)


def build_result(
    run: TimedRun, device: str, threads: int, batch: int, dtype: str, mode: str, confidence: float
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
        compile_s=run.compile_s,
        peak_mem_bytes=run.peak_mem_bytes,
        peak_mem_kind=run.peak_mem_kind,
        device=device,
        threads=threads,
        batch=batch,
        dtype=dtype,
        mode=mode,
        iters_per_sample=run.iters_per_sample,
        rel_halfwidth=median_rel_halfwidth(samples_ms, confidence),
    )


@dataclass(frozen=True)
class TimedRun:
    """What the torch side of a measurement produced (samples in seconds per iteration)."""

    samples: list[float]
    stop_reason: str
    warmup_iters: int
    compile_s: float | None
    peak_mem_bytes: int
    peak_mem_kind: str
    iters_per_sample: int


def _run_timed(
    model: nn.Module,
    inputs: torch.Tensor,
    device: str,
    mode: str,
    compile: bool,
    rule: StopRule,
    clock: Clock,
) -> TimedRun:
    """Compile (optional), warm up, pick iterations per sample, sample; measure peak memory."""
    forward = compiled_forward(model) if compile else model
    step = make_step(model, forward, inputs, mode)
    with torch.inference_mode() if mode == "infer" else torch.enable_grad():
        compile_s = time_first_call(step) if compile else None
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = clock()
        with RssPeak() as rss:
            warm = warm_up(_timer(step, device, clock), clock, _warmup_rule(rule))
        k = iters_per_sample(statistics.median(warm[-5:]), FAST_SAMPLE_S)
        remaining = replace(rule, budget_s=max(rule.budget_s - (clock() - start), 0.0))
        samples, reason = collect_samples(_timer(repeat(step, k), device, clock), clock, remaining)
    peak, kind = _peak_memory(device, rss)
    return TimedRun([s / k for s in samples], reason, len(warm), compile_s, peak, kind, k)


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
