"""`bench compare` and `bench baseline update`: the latency regression gate over bench.compare."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bench.cli_common import JsonFlag, fail, print_json, stderr, stdout

if TYPE_CHECKING:
    from bench.compare import Comparison

BaseArgument = Annotated[
    Path, typer.Argument(help="Baseline: run folder, suite folder (latest run) or .json file.")
]
NewArgument = Annotated[Path, typer.Argument(help="Candidate: same kinds as BASE.")]
MetricOption = Annotated[
    str, typer.Option("--metric", help="latency_ms_median, _mean, _p10, _p90 or _p99.")
]
ThresholdOption = Annotated[
    str, typer.Option("--threshold", help="Regression when surely slower than this: 10% or 0.1.")
]
ConfidenceOption = Annotated[
    float, typer.Option("--confidence", help="Confidence of the ratio's interval (0.5 to <1).")
]
NormalizeOption = Annotated[
    str,
    typer.Option("--normalize", help="auto (calibrate across machines), none or calibration."),
]
SuiteArgument = Annotated[Path, typer.Argument(help="Suite file, e.g. suites/ci.yaml.")]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Baseline folder; default results/baselines/<suite name>/."),
]
DeviceOverride = Annotated[
    str | None, typer.Option("--device", help="Override the suite's devices: cpu, cuda or auto.")
]

VERDICT_STYLES = {
    "regression": "bold red",
    "slower": "yellow",
    "faster": "green",
    "unchanged": "",
    "insufficient samples": "dim",
}
BASELINE_FILES = ("results.csv", "samples.jsonl", "env.json", "suite.yaml")
BASELINES_ROOT = Path("results/baselines")


def compare_command(
    base: BaseArgument,
    new: NewArgument,
    metric: MetricOption = "latency_ms_median",
    threshold: ThresholdOption = "10%",
    confidence: ConfidenceOption = 0.99,
    normalize: NormalizeOption = "auto",
    json_output: JsonFlag = False,
) -> None:
    """Compare NEW with BASE per case; exit 1 if any case is a regression, 2 on bad input."""
    from bench.compare import compare, parse_threshold

    try:
        result = compare(base, new, metric, parse_threshold(threshold), confidence, normalize)
    except ValueError as exc:  # BenchError is a ValueError
        fail(escape(str(exc)))
    if json_output:
        print_json(result.to_dict())
    else:
        stdout.print(comparison_table(result))
        print_unmatched(result)
        stdout.print(escape(summary_line(result)), highlight=False)
    if result.regressions:
        raise typer.Exit(code=1)


def comparison_table(result: Comparison) -> Table:
    """A rich table: per case base, new, ratio, its interval, sample counts and verdict."""
    table = Table(
        title=escape(f"{result.metric}: {result.normalize_note}"),
        caption=f"regression: the ratio's {percent(result.confidence)} interval lies above "
        f"{1 + result.threshold:.4g} (threshold {percent(result.threshold)})",
    )
    for name in ("case", f"base ({result.unit})", f"new ({result.unit})", "new/base"):
        table.add_column(name, justify="left" if name == "case" else "right")
    table.add_column(f"{percent(result.confidence)} interval", justify="right")
    table.add_column("n base/new", justify="right")
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


def percent(fraction: float) -> str:
    """0.995 -> `99.5%`, 0.1 -> `10%`."""
    return f"{fraction * 100:.4g}%"


def format_interval(low: float, high: float) -> str:
    """`[0.981, 1.040]`, or `n/a` when no interval exists."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n/a"
    return f"[{low:.3f}, {high:.3f}]"


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
    suite: SuiteArgument, out: OutOption = None, device: DeviceOverride = None
) -> None:
    """Run the suite and store its run folder (csv, samples, env, suite) as the baseline."""
    from bench.runner import run_suite

    if not suite.is_file():
        fail(escape(f"suite file {suite} does not exist"))
    try:
        run_dir = Path(run_suite(suite, device=device))
        target = out or BASELINES_ROOT / suite_name(run_dir, suite)
        copy_baseline(run_dir, target)
    except ValueError as exc:  # BenchError is a ValueError
        fail(escape(str(exc)))
    stdout.print(f"baseline {target} <- {run_dir}", highlight=False)


def suite_name(run_dir: Path, suite: Path) -> str:
    """The suite's name as recorded in the run's env.json, else the suite file's stem."""
    from bench.results import read_json

    return str(read_json(run_dir / "env.json").get("suite") or suite.stem)


def copy_baseline(run_dir: Path, target: Path) -> None:
    """Replace `target` by a copy of the run's baseline files (built aside, then swapped in)."""
    from bench.errors import BenchError

    if not (run_dir / "results.csv").is_file():
        raise BenchError(f"{run_dir} has no results.csv; the suite produced no results")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a committed baseline is plain files
    for name in BASELINE_FILES:
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, staging / name)
            (staging / name).chmod(0o644)
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old)
    else:
        staging.rename(target)


def register(app: typer.Typer) -> None:
    """Add `compare` and the `baseline` group (`baseline update`) to the app."""
    app.command("compare")(compare_command)
    baseline = typer.Typer(
        help="Committed baselines for the regression gate.", no_args_is_help=True
    )
    baseline.command("update")(baseline_update)
    app.add_typer(baseline, name="baseline")
