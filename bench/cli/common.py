"""Options and helpers shared by every `bench` command (defined once)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

stdout = Console()
if not stdout.is_terminal:  # piped or redirected: no 80-column default that crops tables
    stdout.width = max(stdout.width, 160)
stderr = Console(stderr=True, soft_wrap=True)

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document instead of a table.")
]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")]
BatchOption = Annotated[int, typer.Option("--batch", help="Batch size (images per forward).")]
InputOption = Annotated[
    str | None, typer.Option("--input", help="Input shape CxHxW; default: the model's own.")
]
DtypeOption = Annotated[str, typer.Option("--dtype", help="float32, bfloat16 or float16.")]
ThreadsOption = Annotated[
    int | None, typer.Option("--threads", help="CPU threads (torch.set_num_threads).")
]
SpecArgument = Annotated[str, typer.Argument(help="Model spec, e.g. resnet50 or g1:c1=128,c2=128.")]
CalibrateFlag = Annotated[
    bool,
    typer.Option(
        "--calibrate/--no-calibrate",
        help="Measure the GEMM and copy ceilings and the reference workload (recorded in env).",
    ),
]


def fail(message: str) -> NoReturn:
    """Print one error line to stderr and exit with code 2."""
    stderr.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=2)


def print_json(payload: Any) -> None:
    """Print a JSON document to stdout (plain, machine-readable)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
