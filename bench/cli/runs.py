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
)
from rich.table import Table

from bench.cli.common import (
    CalibrateFlag,
    CpusOption,
    DeviceOverride,
    SuiteArgument,
    output_width,
    pin_to,
    print_warning,
    stderr,
    stdout,
)
from bench.cli.progress import BudgetEta, EtaColumn
from bench.cli.run_outcome import (
    EXIT_INTERRUPTED,
    RunWatcher,
    check_finetunes,
    interrupted_message,
)
from bench.cli.tables import fitted_table, measured_rows
from bench.core.choices import ModelSource, RuntimeName
from bench.report.format import fmt_number, reason_lines

if TYPE_CHECKING:
    import pandas as pd

    from bench.analysis.guidelines import GuidelineSummary
    from bench.runs.runner import CasePlan
    from bench.runs.suite import Case


class ListKind(StrEnum):
    """What `bench list` lists."""

    models = "models"
    blocks = "blocks"
    suites = "suites"


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
    str | None,
    typer.Option(
        "--shard",
        help="K/N: run every N-th case (or interleaved unit) from the K-th (0-based); auto: "
        "from a Slurm job array; auto/N: from a Kubernetes Indexed Job of N completions.",
    ),
]
IsolateFlag = Annotated[
    bool,
    typer.Option("--isolate", help="Measure each case (or unit) in a fresh child process."),
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

    def __init__(self, progress: Progress, eta: EtaColumn) -> None:
        self.progress = progress
        self.eta = eta
        self.task: Any = None

    def started(self, run_dir: Path, pending: int, total: int, plans: dict[str, CasePlan]) -> None:
        """Say where the run goes and start the bar at the cases already done."""
        stderr.print(f"run folder: {run_dir} ({pending} of {total} cases to run)", highlight=False)
        self.eta.eta = BudgetEta(plans)
        self.task = self.progress.add_task("", total=total, completed=total - pending)

    def case_done(self, case: Case, row: dict[str, Any]) -> None:
        """Advance the bar by one case."""
        if self.eta.eta is not None:
            self.eta.eta.done(case.case_id)
        self.progress.update(self.task, advance=1, description=case.case_id)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressBar | None]:
    """A ProgressBar while the block runs (None when disabled)."""
    if not enabled:
        yield None
        return
    eta = EtaColumn()  # from the budgets of the cases left, not the pace of those done
    columns = (
        TextColumn("case"),
        MofNCompleteColumn(),
        BarColumn(),
        TimeElapsedColumn(),
        eta,
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=stderr, transient=False) as progress:
        yield ProgressBar(progress, eta)


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
    isolate: IsolateFlag = False,
    cpus: CpusOption = None,
) -> None:
    """Run a suite: one row per case in a run folder; prints a summary at the end."""
    from bench.analysis.noise import noisy_rows, trust_sentence
    from bench.core.paths import resolve_suite_path

    resolve_suite_path(suite)  # a wrong name is answered before the runner loads
    from bench.runs.folder import load_run
    from bench.runs.runner import run_suite

    runtimes = [r.value for r in runtime] if runtime else None
    pinned = pin_to(cpus)
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
                isolate=isolate,
                cpus=pinned,
            )
    except KeyboardInterrupt:
        if watcher.run_dir is None:
            raise
        selection = {"--device": device and device.value, "--filter": filter, "--quick": quick}
        selection.update({"--shard": shard, "--data": data, "--tensorboard": tensorboard})
        selection.update({"--runtime": runtimes, "--isolate": isolate, "--cpus": cpus})
        stderr.print(interrupted_message(suite, watcher.run_dir, selection), highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    run = load_run(run_dir)
    print_run(run.rows, f"{run.env.get('suite')}: {run_dir}")
    sentence = trust_sentence(run.rows)
    if sentence and len(noisy_rows(run.rows)):
        print_warning(f"some numbers cannot be trusted: {sentence}")
    stderr.print(f"run folder: {run_dir}", highlight=False)
    check_finetunes(run)


def print_run(rows: pd.DataFrame, title: str) -> None:
    """The measured rows' table, one line per skip/error reason, the guideline comparison."""
    from bench.analysis.guidelines import guideline_summaries, guideline_verdicts
    from bench.analysis.noise import row_mark, trust_sentence

    width = output_width()
    marks = rows.apply(row_mark, axis=1) if len(rows) else None
    rows = rows.assign(trust=marks.where(marks != "", None)) if marks is not None else rows
    measured = measured_rows(rows)
    if measured.empty:
        stdout.print(f"{title}: no measured (ok) rows", highlight=False, width=width)
    else:
        stdout.print(fitted_table(measured, title, width), width=width)
    lines = [line for status in ("error", "skipped") for line in reason_lines(rows, status)]
    if "note" in rows.columns:
        notes = rows.dropna(subset=["note"]).drop_duplicates(subset=["model", "note"])
        lines += [f"note: {row['model']}: {row['note']}" for _, row in notes.iterrows()]
    for line in lines:
        stdout.print(line, highlight=False, width=width)
    summaries = guideline_summaries(rows)
    for summary in summaries:
        if summary.table["ours"].notna().any():
            stdout.print(summary_table(summary), width=width)
    for sentence in guideline_verdicts(summaries):
        stdout.print(sentence, highlight=False, width=width)
    trust = trust_sentence(rows)
    if trust:
        stdout.print(f"trust: {trust}", highlight=False, width=width)


def summary_table(summary: GuidelineSummary) -> Table:
    """A rich table of one GuidelineSummary: ours beside the paper's, with the verdict."""
    rho = summary.spearman
    ratio_ours, ratio_paper = summary.ratio_ours, summary.ratio_paper
    caption = (
        f"Spearman {'n/a' if rho is None else f'{rho:.2f}'}; fastest/slowest: ours "
        f"{'n/a' if ratio_ours is None else f'{ratio_ours:.2f}'}, paper "
        f"{'n/a' if ratio_paper is None else f'{ratio_paper:.2f}'}\n{summary.sentence}"
    )
    if summary.paired:
        caption = f"ours norm: paired by interleaved round\n{caption}"
    unit = summary.table["unit"].iloc[0]
    title = f"{summary.guideline} {summary.column} on {summary.place} ({unit})"
    table = Table(title=title, caption=caption)
    for header in ("config", f"ours ({unit})", f"paper ({unit})", "ours norm", "paper norm"):
        config = header == "config"
        table.add_column(header, justify="left" if config else "right", no_wrap=True)
    for _, row in summary.table.iterrows():
        cells = [fmt_number(row[k]) for k in ("ours", "paper", "ours_norm", "paper_norm")]
        config = str(row["config"]) + (" (noisy)" if row.get("doubtful") else "")
        table.add_row(config, *cells)
    return table


def list_command(
    kind: Annotated[ListKind, typer.Argument(help="What to list.")],
    pattern: Annotated[
        str | None, typer.Option("--pattern", help="Shell wildcard on model names.")
    ] = None,
    source: Annotated[
        ModelSource, typer.Option("--source", help="Where models come from.")
    ] = ModelSource.registry,
    names_only: Annotated[
        bool, typer.Option("--names", help="Only the names, one a line (for scripts).")
    ] = False,
) -> None:
    """List networks (registry, torchvision or timm), guideline blocks, or the shipped suites."""
    if kind == ListKind.suites:
        stdout.print(suites_table())
        return
    from bench.cli.listing import SPEC_FORMS_HINT, models_table
    from netdefs import list_models

    model_kind = "network" if kind == ListKind.models else "block"
    if names_only:
        for name in list_models(pattern, kind=model_kind, source=source.value):
            stdout.print(name, highlight=False)
        return
    table, rows = models_table(source, pattern, model_kind)
    stdout.print(table)
    if rows == 0:
        stderr.print(f"no {kind.value} match {pattern!r} in {source.value}", highlight=False)
    stderr.print(SPEC_FORMS_HINT, highlight=False)


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
