"""Latency and throughput of one model on one device, with raw samples and a stopping rule.

The sampling loop and its statistics are plain Python over two callables (`time_once` returns
the seconds one sample took, `clock` reads the wall clock for budgets), so unit tests drive them
with a fake clock. `measure_latency` wires them to torch: eval + inference_mode (or a training
step), random inputs, fixed thread count, warm-up until settled, CUDA events on GPU.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace

import psutil
import torch
from torch import nn

from bench.errors import BenchError
from bench.stats import median_rel_halfwidth, summarize

DEVICES = ("cpu", "cuda", "auto")
MODES = ("infer", "train")
DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
COMPILE_BACKEND = "inductor"
FAST_SAMPLE_S = 1e-3
MAX_ITERS_PER_SAMPLE = 100
RSS_POLL_S = 0.001

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


def resolve_device(device: str) -> str:
    """Map cpu|cuda|auto to a concrete device; BenchError when CUDA is asked for and absent."""
    if device not in DEVICES:
        raise BenchError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BenchError("device 'cuda' requested but CUDA is not available on this machine")
    return device


def dtype_name(dtype: torch.dtype) -> str:
    """The short name of a supported dtype; BenchError listing the choices otherwise."""
    if dtype not in DTYPE_NAMES:
        choices = ", ".join(DTYPE_NAMES.values())
        raise BenchError(f"unsupported dtype {dtype}; choose one of {choices}")
    return DTYPE_NAMES[dtype]


def check_options(
    device: str, dtype: torch.dtype, input_shape: tuple[int, ...], channels_last: bool
) -> None:
    """Fail with a clear BenchError if the device cannot run this dtype / memory format."""
    name = dtype_name(dtype)
    if channels_last and len(input_shape) != 3:
        raise BenchError(f"--channels-last needs a CxHxW image input, got shape {input_shape}")
    try:
        probe = torch.randn(1, 2, 4, 4, device=device).to(dtype)
        weight = torch.randn(2, 2, 3, 3, device=device).to(dtype)
        torch.nn.functional.conv2d(probe, weight, padding=1).sum().item()
    except (RuntimeError, NotImplementedError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BenchError(f"dtype {name} cannot run a convolution on {device}: {reason}") from None


def build_model(
    model_or_spec: nn.Module | str, input_shape: tuple[int, ...] | None
) -> tuple[nn.Module, tuple[int, ...]]:
    """Build a spec via netdefs (or take the module) and settle the per-image input shape."""
    if isinstance(model_or_spec, str):
        from netdefs import get_model

        try:
            model = get_model(model_or_spec)
        except ValueError as exc:
            raise BenchError(str(exc)) from None
    else:
        model = model_or_spec
    shape = input_shape or getattr(model, "input_shape", None)
    if shape is None:
        raise BenchError("input_shape is required for a model without .input_shape (C, H, W)")
    return model, tuple(int(d) for d in shape)


@contextmanager
def fixed_threads(threads: int | None) -> Iterator[int]:
    """Set torch's intra-op thread count for the block (restored afterwards); yield it."""
    previous = torch.get_num_threads()
    if threads is not None:
        if threads <= 0:
            raise BenchError(f"threads must be a positive integer, got {threads}")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


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
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        raise BenchError(f"torch.compile failed ({COMPILE_BACKEND}): {reason}") from None
    return time.perf_counter() - start


def validate_request(batch: int, mode: str, budget_s: float, rel_precision: float) -> None:
    """BenchError for a non-positive batch/budget/precision or an unknown mode."""
    if batch <= 0:
        raise BenchError(f"batch must be a positive integer, got {batch}")
    if mode not in MODES:
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
    model, shape = build_model(model_or_spec, input_shape)
    check_options(device, dtype, shape, channels_last)
    clock = clock or time.perf_counter
    rule = StopRule(budget_s, rel_precision, min_samples, max(min_samples, max_samples))
    with fixed_threads(threads) as n_threads:
        model, inputs = prepare(model, shape, batch, device, dtype, channels_last)
        run = _run_timed(model, inputs, device, mode, compile, rule, clock)
    return build_result(run, device, n_threads, batch, dtype_name(dtype), mode, rule.confidence)


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
