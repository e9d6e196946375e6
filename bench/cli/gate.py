"""`bench compare` and `bench baseline update`: the latency regression gate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bench.cli.common import DeviceOverride, JsonFlag, SuiteArgument, print_json, stderr, stdout
from bench.core.choices import LatencyStat, Normalize
from bench.core.errors import BenchError
from bench.report.format import format_interval, percent

if TYPE_CHECKING:
    from bench.analysis.compare import Comparison

BaseArgument = Annotated[
    Path, typer.Argument(help="Baseline: run folder, suite folder (latest run) or .json file.")
]
NewArgument = Annotated[Path, typer.Argument(help="Candidate: same kinds as BASE.")]
MetricOption = Annotated[LatencyStat, typer.Option("--metric", help="The statistic compared.")]
ThresholdOption = Annotated[
    str, typer.Option("--threshold", help="Regression when surely slower than this: 10% or 0.1.")
]
ConfidenceOption = Annotated[
    float, typer.Option("--confidence", help="Confidence of the ratio's interval (0.5 to <1).")
]
NormalizeOption = Annotated[
    Normalize,
    typer.Option("--normalize", help="auto: divide by each run's calibration across machines."),
]
BaselineOutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Baseline folder; default results/baselines/<suite name>/."),
]

VERDICT_STYLES = {
    "regression": "bold red",
    "slower": "yellow",
    "faster": "green",
    "unchanged": "",
    "insufficient samples": "dim",
}


def compare_command(
    base: BaseArgument,
    new: NewArgument,
    metric: MetricOption = LatencyStat.latency_ms_median,
    threshold: ThresholdOption = "10%",
    confidence: ConfidenceOption = 0.99,
    normalize: NormalizeOption = Normalize.auto,
    json_output: JsonFlag = False,
) -> None:
    """Compare NEW with BASE per case; exit 1 if any case is a regression, 2 on bad input."""
    from bench.analysis.compare import compare, parse_threshold

    limit = parse_threshold(threshold)
    result = compare(base, new, metric.value, limit, confidence, normalize.value)
    if json_output:
        print_json(result.to_dict())
    else:
        stdout.print(verdict_table(result))
        print_unmatched(result)
        stdout.print(escape(summary_line(result)), highlight=False)
    if result.regressions:
        raise typer.Exit(code=1)


def verdict_table(result: Comparison) -> Table:
    """A rich table: per case base, new, ratio, its interval, sample counts and verdict."""
    table = Table(
        title=escape(f"{result.metric}: {result.normalize_note}"),
        caption=f"regression: the ratio's {percent(result.confidence)} interval lies above "
        f"{1 + result.threshold:.4g} (threshold {percent(result.threshold)})",
    )
    for name in ("case", f"base ({result.unit})", f"new ({result.unit})", "new/base"):
        case = name == "case"
        table.add_column(name, justify="left" if case else "right", no_wrap=not case)
    table.add_column(f"{percent(result.confidence)} interval", justify="right", no_wrap=True)
    table.add_column("n base/new", justify="right", no_wrap=True)
    table.add_column("verdict")
    for case in result.cases:
        style = VERDICT_STYLES.get(case.verdict, "")
        table.add_row(
            escape(case.case_id),
            f"{case.base:.4g}",
            f"{case.new:.4g}",
            f"{case.ratio:.3f}",
            format_interval(case.low, case.high),
            f"{case.n_base}/{case.n_new}",
            f"[{style}]{case.verdict}[/]" if style else case.verdict,
        )
    return table


def print_unmatched(result: Comparison) -> None:
    """Cases only on one side, or present on both but not comparable, to stderr."""
    for label, cases in (
        ("only in BASE", result.only_in_base),
        ("only in NEW", result.only_in_new),
    ):
        if cases:
            stderr.print(escape(f"{label} ({len(cases)}): {', '.join(cases)}"), highlight=False)
    for case_id, reason in result.skipped.items():
        stderr.print(escape(f"not compared: {case_id}: {reason}"), highlight=False)


def summary_line(result: Comparison) -> str:
    """One line: how many cases per verdict, and the regressions by name."""
    counts: dict[str, int] = {}
    for case in result.cases:
        counts[case.verdict] = counts.get(case.verdict, 0) + 1
    parts = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
    if result.regressions:
        return f"REGRESSION in {', '.join(result.regressions)} ({parts})"
    return f"no regression ({parts})"


def baseline_update(
    suite: SuiteArgument, out: BaselineOutOption = None, device: DeviceOverride = None
) -> None:
    """Run the suite and store its run folder (csv, samples, env, suite) as the baseline."""
    from bench.core.paths import resolve_suite_path
    from bench.runs.baselines import baseline_dir, copy_baseline
    from bench.runs.runner import run_suite

    path = resolve_suite_path(suite)
    if not path.is_file():
        raise BenchError(f"suite file {suite} does not exist")
    run_dir = Path(run_suite(path, device=device.value if device else None))
    target = out or baseline_dir(run_dir, path)
    copy_baseline(run_dir, target)
    stdout.print(f"baseline {target} <- {run_dir}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `compare` and the `baseline` group (`baseline update`) to the app."""
    app.command("compare")(compare_command)
    baseline = typer.Typer(
        help="Committed baselines for the regression gate.", no_args_is_help=True
    )
    baseline.command("update")(baseline_update)
    app.add_typer(baseline, name="baseline")
