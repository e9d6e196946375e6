"""`bench report`: a thin command over bench.report.document.write_report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.cli.common import stdout

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
    from bench.report.document import write_report

    path = write_report(runs, output)
    stdout.print(f"wrote {path} (figures in {path.stem}_files/)", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `bench report` to the app."""
    app.command("report")(report_command)
