"""`bench report`: a thin command over bench.report.write_report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.cli_common import fail, stdout
from bench.errors import BenchError

RunsArgument = Annotated[
    list[Path],
    typer.Argument(help="Run folders; give two (BASE NEW) to include their comparison."),
]
OutputOption = Annotated[
    Path | None,
    typer.Option("-o", "--output", help="Markdown file to write (default: LAST_RUN/report.md)."),
]


def report_command(runs: RunsArgument, output: OutputOption = None) -> None:
    """Write a markdown report with PNG figures: tables, guidelines vs paper, R^2, comparison."""
    from bench.report import write_report

    try:
        path = write_report(runs, output)
    except BenchError as exc:
        fail(str(exc))
    stdout.print(f"wrote {path} (figures in {path.stem}_files/)", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `bench report` to the app."""
    app.command("report")(report_command)
