"""The `bench` command: a thin typer app over the bench library."""

from __future__ import annotations

import typer

from bench.cli_common import stderr
from bench.commands import count, engine, gate, report, runs, training
from bench.errors import BenchError

app = typer.Typer(
    name="bench",
    help="What does this CNN cost, here? Count, time, run suites, fine-tune, compare, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for area in (count, engine, runs, training, gate, report):
    area.register(app)


def main() -> None:
    """Entry point of the console script: bad input becomes one line and exit code 2."""
    try:
        app()
    except (BenchError, ValueError, FileNotFoundError) as exc:
        stderr.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise SystemExit(2) from None
