"""`bench run`, `bench list`, `bench merge`: thin commands over the runner."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from bench.cli.common import CalibrateFlag, DeviceOverride, SuiteArgument, stderr, stdout
from bench.cli.run_outcome import (
    EXIT_INTERRUPTED,
    RunWatcher,
    check_finetunes,
    interrupted_message,
)
from bench.core.choices import RuntimeName
from bench.core.values import is_missing

if TYPE_CHECKING:
    import pandas as pd

    from bench.analysis.guidelines import GuidelineSummary
    from bench.runs.suite import Case


class ListKind(StrEnum):
    """What `bench list` lists."""

    models = "models"
    blocks = "blocks"
    suites = "suites"


TABLE_COLUMNS = {  # column -> (header, format)
    "model": ("model", "{}"),
    "device": ("dev", "{}"),
    "runtime": ("runtime", "{}"),
    "batch": ("b", "{}"),
    "status": ("status", "{}"),
    "params": ("params M", "{:.3g}"),
    "mult_adds": ("mult-adds M", "{:.4g}"),
    "latency_ms_median": ("median ms", "{:.3f}"),
    "throughput": ("images/s", "{:.1f}"),
    "ref_throughput": ("paper", "{:g}"),
    "ref_unit": ("paper unit", "{}"),
    "error": ("error", "{}"),
}
MILLIONS = ("params", "mult_adds")

RunOutOption = Annotated[
    Path | None, typer.Option("--out", help="Run folder (default results/<suite>/<time>-<commit>).")
]
FilterOption = Annotated[
    str | None, typer.Option("--filter", help="Only cases whose id or model matches this glob.")
]
QuickFlag = Annotated[bool, typer.Option("--quick", help="Cap every latency budget (smoke run).")]
ResumeOption = Annotated[
    str | None, typer.Option("--resume", help="Continue a run folder, or 'latest' of this suite.")
]
ShardOption = Annotated[
    str | None, typer.Option("--shard", help="K/N: run every N-th case from the K-th (0-based).")
]
DataOption = Annotated[
    str | None, typer.Option("--data", help="Image folder for the suite's fine-tune cases.")
]
TensorboardOption = Annotated[
    str | None,
    typer.Option("--tensorboard", help="Log fine-tunes per epoch to this TensorBoard folder."),
]
RuntimesOverride = Annotated[
    list[RuntimeName] | None,
    typer.Option("--runtime", help="Run every case in this runtime (repeat for several)."),
]
ProgressFlag = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")
]


class ProgressBar:
    """The runner's observer: a rich progress bar on stderr (case k of n, elapsed, ETA)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None

    def started(self, run_dir: Path, pending: int, total: int) -> None:
        """Say where the run goes and start the bar at the cases already done."""
        stderr.print(f"run folder: {run_dir} ({pending} of {total} cases to run)", highlight=False)
        self.task = self.progress.add_task("", total=total, completed=total - pending)

    def case_done(self, case: Case, row: dict[str, Any]) -> None:
        """Advance the bar by one case."""
        self.progress.update(self.task, advance=1, description=case.case_id)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressBar | None]:
    """A ProgressBar while the block runs (None when disabled)."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("case"),
        MofNCompleteColumn(),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=stderr, transient=False) as progress:
        yield ProgressBar(progress)


def run_command(
    suite: SuiteArgument,
    out: RunOutOption = None,
    device: DeviceOverride = None,
    filter: FilterOption = None,
    quick: QuickFlag = False,
    resume: ResumeOption = None,
    shard: ShardOption = None,
    data: DataOption = None,
    progress: ProgressFlag = True,
    calibrate: CalibrateFlag = True,
    tensorboard: TensorboardOption = None,
    runtime: RuntimesOverride = None,
) -> None:
    """Run a suite: one row per case in a run folder; prints a summary at the end."""
    from bench.core.paths import resolve_suite_path

    resolve_suite_path(suite)  # a wrong name is answered before the runner loads
    from bench.runs.folder import load_run
    from bench.runs.runner import run_suite

    runtimes = [r.value for r in runtime] if runtime else None
    watcher = RunWatcher()
    try:
        with progress_bar(progress) as watcher.bar:
            run_dir = run_suite(
                suite,
                out,
                device.value if device else None,
                filter,
                quick,
                resume,
                shard,
                data,
                calibrate,
                tensorboard=tensorboard,
                observer=watcher,
                runtimes=runtimes,
            )
    except KeyboardInterrupt:
        if watcher.run_dir is None:
            raise
        selection = {"--device": device and device.value, "--filter": filter, "--quick": quick}
        selection.update({"--shard": shard, "--data": data, "--tensorboard": tensorboard})
        selection["--runtime"] = runtimes
        stderr.print(interrupted_message(suite, watcher.run_dir, selection), highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    run = load_run(run_dir)
    print_run(run.rows, f"{run.env.get('suite')}: {run_dir}")
    stderr.print(f"run folder: {run_dir}", highlight=False)
    check_finetunes(run)


def print_run(rows: pd.DataFrame, title: str) -> None:
    """The results table and, for guideline rows, the comparison with the paper."""
    from bench.analysis.guidelines import guideline_summaries, guideline_verdicts

    stdout.print(results_table(rows, title))
    if "note" in rows.columns:
        notes = rows.dropna(subset=["note"]).drop_duplicates(subset=["model", "note"])
        for _, row in notes.iterrows():
            stdout.print(f"note: {row['model']}: {row['note']}", highlight=False)
    summaries = guideline_summaries(rows)
    for summary in summaries:
        if summary.table["ours"].notna().any():
            stdout.print(summary_table(summary))
    for sentence in guideline_verdicts(summaries):
        stdout.print(sentence, highlight=False)


def _cell(value: object, pattern: str) -> str:
    """One table cell ('' for missing values)."""
    if value is None or (not isinstance(value, str) and is_missing(value)):
        return ""
    try:
        return pattern.format(value)
    except (ValueError, TypeError):
        return str(value)


def results_table(rows: pd.DataFrame, title: str) -> Table:
    """A rich table of a run's main columns (those with any value)."""
    columns = [c for c in TABLE_COLUMNS if c in rows.columns and rows[c].notna().any()]
    if "runtime" in columns and rows["runtime"].nunique() < 2:
        columns.remove("runtime")  # a column only when the run holds several runtimes
    table = Table(title=title)
    for column in columns:
        table.add_column(TABLE_COLUMNS[column][0], overflow="fold")
    for _, row in rows.iterrows():
        values = [
            row[c] / 1e6 if c in MILLIONS and not is_missing(row[c]) else row[c] for c in columns
        ]
        table.add_row(
            *(_cell(v, TABLE_COLUMNS[c][1]) for c, v in zip(columns, values, strict=True))
        )
    return table


def summary_table(summary: GuidelineSummary) -> Table:
    """A rich table of one GuidelineSummary: ours beside the paper's, with the verdict."""
    rho = summary.spearman
    ratio_ours, ratio_paper = summary.ratio_ours, summary.ratio_paper
    caption = (
        f"Spearman {'n/a' if rho is None else f'{rho:.2f}'}; fastest/slowest: ours "
        f"{'n/a' if ratio_ours is None else f'{ratio_ours:.2f}'}, paper "
        f"{'n/a' if ratio_paper is None else f'{ratio_paper:.2f}'}\n{summary.sentence}"
    )
    unit = summary.table["unit"].iloc[0]
    title = f"{summary.guideline} {summary.column} on {summary.place} ({unit})"
    table = Table(title=title, caption=caption)
    for header in ("config", f"ours ({unit})", f"paper ({unit})", "ours norm", "paper norm"):
        config = header == "config"
        table.add_column(header, justify="left" if config else "right", no_wrap=config)
    for _, row in summary.table.iterrows():
        cells = [_cell(row[k], "{:.2f}") for k in ("ours", "paper", "ours_norm", "paper_norm")]
        table.add_row(str(row["config"]), *cells)
    return table


def list_command(
    kind: Annotated[ListKind, typer.Argument(help="What to list.")],
    pattern: Annotated[
        str | None, typer.Option("--pattern", help="Shell wildcard on model names.")
    ] = None,
) -> None:
    """List registered networks, guideline blocks, or the shipped suites."""
    if kind == ListKind.suites:
        stdout.print(suites_table())
        return
    from netdefs import list_models

    for name in list_models(pattern, kind="network" if kind == ListKind.models else "block"):
        stdout.print(name, highlight=False)


def suites_table() -> Table:
    """A table of the shipped suites with their descriptions."""
    from bench.core.paths import SUITES_DIR
    from bench.runs.suite import shipped_suites

    table = Table(title=f"suites in {SUITES_DIR}")
    table.add_column("suite")
    table.add_column("description")
    for name, description in shipped_suites():
        table.add_row(name, description)
    return table


def merge_command(
    runs: Annotated[list[Path], typer.Argument(help="Run folders to join (e.g. shards).")],
    out: Annotated[Path, typer.Option("--out", help="The merged run folder (new).")],
) -> None:
    """Join run folders (shards of one suite, or runs on several machines) into one."""
    from bench.runs.merge import merge_runs

    merged = merge_runs(list(runs), out)
    stderr.print(f"merged {len(runs)} run(s) into {merged}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `run`, `list` and `merge` to the app (`show` is in bench.cli.show)."""
    app.command("run")(run_command)
    app.command("list")(list_command)
    app.command("merge")(merge_command)
