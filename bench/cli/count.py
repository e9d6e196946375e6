"""`bench count`: params, mult-adds, flops and memory access cost of one model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bench.cli.common import (
    BatchOption,
    DtypeOption,
    InputOption,
    JsonFlag,
    SpecArgument,
    print_json,
    stderr,
    stdout,
)
from bench.cli.precheck import check_model_arguments
from bench.core.choices import Dtype
from bench.core.values import human_bytes, human_count

if TYPE_CHECKING:
    import pandas as pd

PerLayerFlag = Annotated[
    bool, typer.Option("--per-layer", help="Also print per-op and per-layer tables.")
]
FvcoreFlag = Annotated[
    bool, typer.Option("--fvcore", help="Also run fvcore's FlopCountAnalysis (slow, real CPU).")
]


def totals_table(spec: str, data: dict) -> Table:
    """Rich table of the totals: exact value and human units side by side."""
    setup = f"input {data['input']}, batch {data['batch']}, {data['dtype']}"
    table = Table(title=f"cost of {spec}", caption=setup)
    table.add_column("field")
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("human", justify="right", no_wrap=True)
    for key in ("params", "mult_adds", "flops", "mac_elements", "mult_adds_fvcore"):
        if data.get(key) is not None:
            table.add_row(key, f"{data[key]:,}", human_count(data[key]))
    for key in ("mac_bytes", "activation_peak_bytes"):
        table.add_row(key, f"{data[key]:,}", human_bytes(data[key]))
    return table


def per_op_rich(per_op: pd.DataFrame) -> Table:
    """Rich table of the per-op totals."""
    table = Table(title="per aten op")
    for column in ("op", "kind", "calls", "mult_adds", "mac_bytes"):
        text = column in ("op", "kind")
        table.add_column(column, justify="left" if text else "right", no_wrap=not text,
                         overflow="fold")  # fmt: skip
    for row in per_op.itertuples():
        table.add_row(
            row.op, row.kind, str(row.calls), human_count(row.mult_adds), human_bytes(row.mac_bytes)
        )
    return table


def per_layer_rich(per_layer: pd.DataFrame) -> Table:
    """Rich table of every non-free op call: module, op, output shape, costs and shares."""
    table = Table(title="per layer (module path, innermost module)")
    columns = ("module", "op", "output shape", "mult_adds", "share", "mac_bytes", "share")
    for column in columns:
        text = column in columns[:3]
        table.add_column(column, justify="left" if text else "right", no_wrap=not text,
                         overflow="fold")  # fmt: skip
    for row in per_layer.itertuples():
        table.add_row(
            row.module or "(root)",
            row.op.removeprefix("aten."),
            row.output_shape,
            human_count(row.mult_adds),
            f"{row.mult_adds_share:.1%}",
            human_bytes(row.mac_bytes),
            f"{row.mac_share:.1%}",
        )
    return table


def count_command(
    spec: SpecArgument,
    input: InputOption = None,
    batch: BatchOption = 1,
    dtype: DtypeOption = Dtype.float32,
    per_layer: PerLayerFlag = False,
    fvcore: FvcoreFlag = False,
    json_output: JsonFlag = False,
) -> None:
    """Params, mult-adds (flops = 2x), memory access cost and activation peak of one forward."""
    shape = check_model_arguments(spec, input)
    from bench.measure.counting import count

    result = count(spec, input_shape=shape, batch=batch, dtype=dtype.value, fvcore=fvcore)
    if result.unhandled:
        listed = ", ".join(f"{op} x{calls}" for op, calls in result.unhandled.items())
        stderr.print(
            f"[yellow]warning:[/] ops without a cost handler (MAC by the generic rule, "
            f"0 mult-adds): {listed}",
            highlight=False,
        )
    if json_output:
        payload = {"spec": spec, **result.to_dict()}
        if per_layer:
            payload["per_op"] = result.per_op.to_dict(orient="records")
            payload["per_layer"] = result.per_layer.to_dict(orient="records")
        print_json(payload)
        return
    stdout.print(totals_table(spec, result.to_dict()))
    if per_layer:
        stdout.print(per_op_rich(result.per_op))
        stdout.print(per_layer_rich(result.per_layer))


def register(app: typer.Typer) -> None:
    """Add `count` to the app."""
    app.command("count")(count_command)
