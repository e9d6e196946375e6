"""`bench time` and `bench env`: thin commands over bench.measure.timing and bench.measure.env."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bench.cli.common import (
    BatchOption,
    CalibrateFlag,
    CpusOption,
    DeviceOption,
    DtypeOption,
    InputOption,
    JsonFlag,
    SpecArgument,
    ThreadsOption,
    pin_to,
    print_json,
    print_warning,
    stdout,
)
from bench.cli.precheck import check_model_arguments
from bench.core.choices import Device, Dtype, Mode, RuntimeName
from bench.core.values import human_bytes

if TYPE_CHECKING:
    from bench.measure.contention import Contention

ChannelsLastFlag = Annotated[
    bool, typer.Option("--channels-last", help="Use the channels_last memory format.")
]
CompileFlag = Annotated[bool, typer.Option("--compile", help="Shorthand for --runtime compile.")]
ModeOption = Annotated[
    Mode, typer.Option("--mode", help="infer (forward) or train (forward+backward+SGD step).")
]
RuntimeOption = Annotated[
    RuntimeName,
    typer.Option("--runtime", help="Where the network runs (eager PyTorch or a runtime)."),
]
BudgetOption = Annotated[
    float, typer.Option("--budget", help="Seconds for warm-up plus sampling (upper bound).")
]


def time_command(
    spec: SpecArgument,
    device: DeviceOption = Device.cpu,
    batch: BatchOption = 1,
    input: InputOption = None,
    threads: ThreadsOption = None,
    dtype: DtypeOption = Dtype.float32,
    channels_last: ChannelsLastFlag = False,
    compile: CompileFlag = False,
    mode: ModeOption = Mode.infer,
    budget: BudgetOption = 10.0,
    runtime: RuntimeOption = RuntimeName.eager,
    json_output: JsonFlag = False,
    cpus: CpusOption = None,
) -> None:
    """Time one model: median/percentile latency (ms), throughput (images/s), raw samples."""
    shape = check_model_arguments(spec, input)
    from bench.core.options import parse_dtype
    from bench.measure.contention import ContentionProbe
    from bench.measure.timing import measure_latency
    from bench.runtimes import describe_runtimes

    pin_to(cpus)
    with ContentionProbe() as probe:
        result = measure_latency(
            spec,
            input_shape=shape,
            batch=batch,
            device=device.value,
            threads=threads,
            dtype=parse_dtype(dtype.value),
            channels_last=channels_last,
            compile=compile,
            mode=mode.value,
            budget_s=budget,
            runtime=runtime.value,
        )
    reasons = untrusted(result.to_dict(), probe.result)
    if json_output:
        described = describe_runtimes([result.runtime])[result.runtime]
        extra = {"runtime_versions": described, "noise": reasons}
        if probe.result is not None:
            extra.update(probe.result.as_row())
        print_json({"spec": spec, **result.to_dict(), **extra})
    else:
        stdout.print(latency_table(spec, result.to_dict()))
    if reasons:
        print_warning(
            f"this number cannot be trusted ({'; '.join(reasons)}); measure again on a "
            "quieter machine, pin it with --cpus, or give it a longer --budget"
        )


def untrusted(data: dict, found: Contention | None) -> list[str]:
    """Why a `bench time` result cannot be trusted ([] when it can)."""
    from bench.measure.contention import is_contended
    from bench.measure.trust import noise_reasons

    busy = found.contention if found is not None and is_contended(found) else None
    return noise_reasons(data["cv"], data["stop_reason"], data["rel_halfwidth"], None, busy)


def latency_table(spec: str, data: dict) -> Table:
    """A rich table of one latency result (statistics, stop rule, memory, setup)."""
    table = Table(title=f"latency of {spec}")
    table.add_column("field")
    table.add_column("value", justify="right")
    for key in ("median_ms", "mean_ms", "p10_ms", "p90_ms", "p99_ms", "iqr_ms"):
        table.add_row(key, f"{data[key]:.4f}")
    table.add_row("cv", f"{data['cv']:.4f}")
    table.add_row("throughput (images/s)", f"{data['throughput']:.2f}")
    halfwidth = data["rel_halfwidth"]
    table.add_row("median CI95 half-width", "n/a" if halfwidth is None else f"{halfwidth:.2%}")
    for key in ("n_samples", "iters_per_sample", "stop_reason", "warmup_iters"):
        table.add_row(key, str(data[key]))
    table.add_row("compile_s", number_or_na(data["compile_s"], "{:.2f}"))
    table.add_row("runtime", str(data["runtime"]))
    table.add_row("prepare_s (export/compile/load)", number_or_na(data["prepare_s"], "{:.3f}"))
    table.add_row("first_ms (first inference)", number_or_na(data["first_ms"], "{:.3f}"))
    parity = data["parity_max_abs"]
    table.add_row("parity_max_abs (vs eager)", number_or_na(parity, "{:.3g}"))
    peak = data["peak_mem_bytes"]
    table.add_row(f"peak memory ({data['peak_mem_kind']})", number_or_na(peak, human_bytes))
    for key in ("device", "threads", "batch", "dtype", "mode"):
        table.add_row(key, str(data[key]))
    return table


def number_or_na(value: float | None, style: str | Callable[[float], str]) -> str:
    """A number in a format pattern or through a formatter; `n/a` when there is none."""
    if value is None:
        return "n/a"
    return style.format(value) if isinstance(style, str) else style(value)


def env_command(
    calibrate: CalibrateFlag = True,
    device: DeviceOption = Device.cpu,
    json_output: JsonFlag = False,
) -> None:
    """Versions, hardware, git state and a calibration of this machine."""
    from bench.measure.env import collect_env

    env = collect_env(calibrate=calibrate, device=device.value)
    if json_output:
        print_json(env)
    else:
        stdout.print(env_table(env))


def env_table(env: dict) -> Table:
    """A two-column rich table of the environment, calibration rows prefixed."""
    table = Table(title="environment")
    table.add_column("field")
    table.add_column("value")
    for key, value in env.items():
        if key != "calibration":
            table.add_row(key, str(value))
    for key, value in (env.get("calibration") or {}).items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        table.add_row(f"calibration.{key}", shown)
    return table


def register(app: typer.Typer) -> None:
    """Add `time` and `env` to the app."""
    app.command("time")(time_command)
    app.command("env")(env_command)
