"""Options, consoles and output helpers shared by every `bench` command (defined once)."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from bench.core.choices import Device, Dtype

PIPED_WIDTH = 160  # piped output with no COLUMNS and no terminal on stderr either
stdout = Console()
if not stdout.is_terminal and "COLUMNS" not in os.environ:  # no 80-column default that crops
    stdout.width = max(stdout.width, PIPED_WIDTH)
stderr = Console(stderr=True, soft_wrap=True)


def output_width() -> int:
    """Columns for stdout's tables: COLUMNS, else the terminal's (stdout, then stderr), else 160."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream.isatty():
                return os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            continue
    return PIPED_WIDTH


JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document instead of a table.")
]
DeviceOption = Annotated[Device, typer.Option("--device", help="Where the model runs.")]
BatchOption = Annotated[int, typer.Option("--batch", help="Batch size (images per forward).")]
InputOption = Annotated[
    str | None, typer.Option("--input", help="Input shape CxHxW; default: the model's own.")
]
DtypeOption = Annotated[Dtype, typer.Option("--dtype", help="Floating-point type.")]
ThreadsOption = Annotated[
    int | None, typer.Option("--threads", help="CPU threads (torch.set_num_threads).")
]
SuiteArgument = Annotated[str, typer.Argument(help="Suite YAML file, or a shipped suite's name.")]
DeviceOverride = Annotated[
    Device | None, typer.Option("--device", help="Override the suite's default device.")
]
SpecArgument = Annotated[
    str,
    typer.Argument(
        help="Model spec: resnet50, g1:c1=128,c2=128, torchvision:vit_b_16, timm:convnext_nano, "
        "models/net.py:Net:width=2 or mypkg.models:make_net (importing a file runs its code)."
    ),
]
CpusOption = Annotated[
    str | None,
    typer.Option(
        "--cpus",
        help="Pin the measuring process and its threads to these CPUs, e.g. 2,3 or 0-3.",
    ),
]
CalibrateFlag = Annotated[
    bool,
    typer.Option(
        "--calibrate/--no-calibrate",
        help="Measure the GEMM and copy ceilings and the reference workload (recorded in env).",
    ),
]


def print_error(message: str) -> None:
    """One `error:` line on stderr (the message is printed as text, never as markup)."""
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def print_warning(message: str) -> None:
    """One `warning:` line on stderr (as text, never as markup)."""
    stderr.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


def pin_to(cpus: str | None) -> list[int] | None:
    """Parse --cpus and pin this process (and its threads) there; the CPUs, or None."""
    if cpus is None:
        return None
    from bench.core.options import parse_cpu_list, pin_cpus

    chosen = parse_cpu_list(cpus)
    pin_cpus(chosen)
    return chosen


def print_json(payload: Any) -> None:
    """Print a JSON document to stdout (plain, machine-readable)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
