"""`bench profile`: where the time goes, per layer and per kind of op, beside the counted cost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from bench.cli.common import (
    BatchOption,
    DeviceOption,
    DtypeOption,
    InputOption,
    JsonFlag,
    SpecArgument,
    ThreadsOption,
    print_json,
    print_warning,
    stdout,
)
from bench.cli.timing import RuntimeOption
from bench.core.choices import Device, Dtype, RuntimeName
from bench.core.values import human_bytes, human_count

if TYPE_CHECKING:
    from bench.measure.profile import ProfileResult

TopOption = Annotated[int, typer.Option("--top", min=1, help="How many layers to list by time.")]
IterationsOption = Annotated[
    int, typer.Option("--iterations", min=1, help="Profiled forwards (each row's median).")
]


def _share(fraction: float) -> str:
    """A share as a percentage with one decimal."""
    return f"{fraction:.1%}"


def top_layers_rich(result: ProfileResult, top: int) -> Table:
    """The `top` layers by measured time with their counted cost and achieved rates."""
    table = Table(title=f"top {top} layers by time: {result.model} ({result.runtime})")
    columns = ("module", "op", "category", "ms", "time", "mult-adds", "share", "MAC", "share")
    for column in (*columns, "GFLOP/s", "GB/s"):
        table.add_column(column, justify="left" if column in columns[:3] else "right")
    rows = result.layers.sort_values("time_ms", ascending=False).head(top)
    for row in rows.itertuples():
        kind = f" {row.conv_kind}" if row.conv_kind else ""
        fused = f" (+{row.fused})" if row.fused else ""
        table.add_row(
            row.module or "(root)", row.op.removeprefix("aten::") + fused, row.category + kind,
            f"{row.time_ms:.3f}", _share(row.time_share), human_count(row.mult_adds),
            _share(row.mult_adds_share), human_bytes(row.mac_bytes), _share(row.mac_share),
            f"{row.gflops_per_s:.1f}", f"{row.gb_per_s:.2f}",
        )  # fmt: skip
    return table


def _category_row(table: Table, name: str, values: dict[str, Any]) -> None:
    """One row of the category table."""
    table.add_row(
        name,
        f"{values['time_ms']:.3f}",
        _share(values["time_share"]),
        _share(values["mult_adds_share"]),
        _share(values["mac_share"]),
    )


def category_rich(result: ProfileResult) -> Table:
    """The paper's decomposition: time, mult-adds and MAC shares per category."""
    caption = (
        f"sum of layers {result.total_profiled_ms:.2f} ms; profiled forward "
        f"{result.profiled_wall_ms:.2f} ms; without the profiler {result.latency_median_ms:.2f} ms"
        f" (median); {result.device}, batch {result.batch}, {result.threads} thread(s)"
    )
    table = Table(title="where the time goes", caption=caption)
    for column in ("category", "ms", "time", "mult-adds", "MAC"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for name, values in result.categories.items():
        _category_row(table, name, values)
        for kind, sub in values.get("kinds", {}).items():
            _category_row(table, f"  {kind}", sub)
        for op, time_ms in values.get("ops", {}).items():
            if time_ms > 0 or op in result.unknown_ops:
                table.add_row(f"  {op}", f"{time_ms:.3f}", "", "", "")
    return table


def warn_about(result: ProfileResult) -> None:
    """Warnings for ops the categoriser or the matcher did not know."""
    if result.unknown_ops:
        listed = ", ".join(result.unknown_ops)
        print_warning(f"ops not in the category table (listed under other): {listed}")
    if result.unmatched_counted or result.unmatched_profiled:
        print_warning(
            f"{result.unmatched_counted} counted op(s) got no profiled time and "
            f"{result.unmatched_profiled} profiled op(s) matched no counted op"
        )


def profile_command(
    spec: SpecArgument,
    device: DeviceOption = Device.cpu,
    batch: BatchOption = 1,
    input: InputOption = None,
    threads: ThreadsOption = None,
    dtype: DtypeOption = Dtype.float32,
    runtime: RuntimeOption = RuntimeName.eager,
    iterations: IterationsOption = 20,
    top: TopOption = 15,
    json_output: JsonFlag = False,
) -> None:
    """Measured time per layer and per op category beside counted mult-adds and MAC."""
    from bench.measure.profile import profile_model

    result = profile_model(
        spec, input_shape=input, batch=batch, device=device.value, threads=threads,
        dtype=dtype.value, runtime=runtime.value, iterations=iterations,
    )  # fmt: skip
    warn_about(result)
    if json_output:
        print_json({"spec": spec, **result.to_dict()})
        return
    stdout.print(top_layers_rich(result, top))
    stdout.print(category_rich(result))
    if result.runtime != "eager":
        stdout.print(
            f"{result.runtime}'s nodes are timed; mult-adds and MAC are counted on PyTorch's ops",
            highlight=False,
        )
    if result.fused_ops:
        listed = ", ".join(f"{op} x{n}" for op, n in result.fused_ops.items())
        stdout.print(f"not run as nodes of their own (fused or removed): {listed}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `profile` to the app."""
    app.command("profile")(profile_command)
