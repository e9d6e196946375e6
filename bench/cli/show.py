"""`bench show`: one run (or a suite folder's latest run) as a table, one JSON document, or CSV."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bench.cli.common import JsonFlag, print_json
from bench.core.errors import BenchError

if TYPE_CHECKING:
    from bench.runs.folder import Run

CsvFlag = Annotated[bool, typer.Option("--csv", help="Print the rows as CSV instead of a table.")]
RunOrSuiteArgument = Annotated[
    Path, typer.Argument(help="A run folder, or a suite folder such as results/guidelines.")
]


def show_command(
    run: RunOrSuiteArgument, json_output: JsonFlag = False, csv: CsvFlag = False
) -> None:
    """Show a run as a table (plus the guideline comparison where it applies), JSON or CSV."""
    from bench.cli.runs import print_run
    from bench.runs.folder import load_run

    if json_output and csv:
        raise BenchError("--json and --csv: choose one of them")
    loaded = load_run(run_or_latest(run))
    if json_output:
        print_json(run_document(loaded))
    elif csv:
        loaded.rows.to_csv(sys.stdout, index=False)
    else:
        print_run(loaded.rows, f"{loaded.env.get('suite')}: {loaded.path}")


def run_or_latest(path: Path) -> Path:
    """The run folder itself, or the newest run inside a suite folder (results/<suite>)."""
    from bench.runs.folder import latest_run
    from bench.runs.schema import ENV_JSON, RESULTS_CSV

    if not path.is_dir() or (path / ENV_JSON).is_file() or (path / RESULTS_CSV).is_file():
        return path  # load_run says what is wrong with a path that is not a run folder
    return latest_run(path)


def run_document(run: Run) -> dict[str, Any]:
    """A run as one JSON-ready document: its folder, suite name, environment and rows."""
    rows = json.loads(run.rows.to_json(orient="records"))  # NaN becomes null
    return {"run": str(run.path), "suite": run.env.get("suite"), "env": run.env, "rows": rows}


def register(app: typer.Typer) -> None:
    """Add `show` to the app."""
    app.command("show")(show_command)
