"""The report's table sections: header, environment, results, fits, comparison, problems."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.analysis.compare import Comparison, compare
from bench.analysis.fits import MIN_FIT_CASES, latency_fits
from bench.analysis.noise import row_mark, trust_sentence
from bench.core.errors import BenchError
from bench.report.format import fmt_number, fmt_r2, fmt_text, reason_lines
from bench.report.tables import (
    IDENTITY_COLUMNS,
    MODEL_COLUMN,
    Column,
    markdown_table,
    render_columns,
    result_tables,
)
from bench.runs.folder import Run
from bench.runs.schema import calibration_of


def header_lines(runs: list[Run], rows: pd.DataFrame) -> list[str]:
    """Title and what the report covers."""
    names = ", ".join(f"`{run.path.name}`" for run in runs)
    counts = rows["status"].map(fmt_text).value_counts()
    summary = ", ".join(f"{count} {status}" for status, count in counts.items()) or "none"
    return ["# Benchmark report", "", f"Runs: {names}. Cases reported: {summary}.", ""]


ENV_FIELDS = (
    ("suite", lambda e: e.get("suite")),
    ("timestamp (UTC)", lambda e: e.get("timestamp")),
    ("git commit", lambda e: str(e.get("git_commit") or "")[:12] or None),
    ("host", lambda e: e.get("hostname")),
    ("CPU", lambda e: e.get("cpu_model")),
    (
        "cores (physical / logical)",
        lambda e: _pair(e.get("cores_physical"), e.get("cores_logical")),
    ),
    ("torch threads", lambda e: e.get("threads")),
    ("GPU", lambda e: e.get("gpu_name")),
    ("CUDA / cuDNN", lambda e: _pair(e.get("cuda_version"), e.get("cudnn_version"))),
    ("python / torch / torchvision", lambda e: _versions(e)),
    ("platform", lambda e: e.get("platform")),
    ("calibrated device", lambda e: calibration_of(e).get("device")),
    (
        "GEMM ceiling (GFLOP/s)",
        lambda e: fmt_number(calibration_of(e).get("gemm_flops_per_s"), 1e9),
    ),
    ("copy bandwidth (GB/s)", lambda e: fmt_number(calibration_of(e).get("copy_bytes_per_s"), 1e9)),
    ("reference workload (ms)", lambda e: fmt_number(calibration_of(e).get("ref_workload_ms"))),
)


def _calibrated(env: dict, key: str, scale: float = 1.0) -> str:
    """One calibration figure of a run, divided by `scale`."""
    return fmt_number(calibration_of(env).get(key), scale)


def _pair(first: Any, second: Any) -> str:
    """'a / b' with missing parts as '–'."""
    return f"{fmt_text(first)} / {fmt_text(second)}"


def _versions(env: dict) -> str:
    """python / torch / torchvision versions."""
    return " / ".join(fmt_text(env.get(key)) for key in ("python", "torch", "torchvision"))


def environment_section(runs: list[Run]) -> list[str]:
    """Machine, versions and calibration ceilings, one column per run."""
    table = {"": [name for name, _ in ENV_FIELDS]}
    for run in runs:
        table[run.path.name] = [fmt_text(get(run.env)) for _, get in ENV_FIELDS]
    return ["## Environment", "", markdown_table(pd.DataFrame(table)), ""]


def results_section(rows: pd.DataFrame) -> list[str]:
    """Per suite and group, the tables of its ok rows."""
    lines = ["## Results", ""]
    lines.append("Counts are per image (mult-adds = multiply-accumulates; MAC = memory access")
    lines.append("cost in bytes, ShuffleNet V2 sense); latency is per batch (ms); prefixes are")
    lines.append("decimal: k = 10^3, M = 10^6, G = 10^9.")
    lines.append("")
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        return [*lines, "No ok rows in these runs.", ""]
    trust = trust_sentence(ok)
    if trust:
        lines += [f"Trust: {fmt_text(trust)} {TRUST_NOTE}", ""]
    marks = ok.apply(row_mark, axis=1)
    ok = ok.assign(trust=marks.where(marks != "", None))
    for (suite, group), frame in ok.groupby(["suite", "group"], sort=False):
        lines += [f"### {fmt_text(suite)}: {fmt_text(group)} ({len(frame)} cases)", ""]
        lines += result_tables(frame)
    return lines


TRUST_NOTE = (
    "Rows marked *noisy* vary too much, stopped on their budget with a wide interval, or were "
    "measured on a busy machine; *budget* rows stopped on their budget."
)

FIT_INTRO = """Least-squares fits (with intercept) of median latency on mult-adds alone and on
mult-adds + MAC bytes, over the ok inference cases of one batch size. ShuffleNet
V2's thesis is that FLOPs alone are an indirect measure of speed; the gap between
the two R^2 values is how much memory traffic adds on this machine."""


def fit_section(rows: pd.DataFrame) -> list[str]:
    """'What explains latency': both R^2 values per suite, device, runtime and batch."""
    lines = ["## What explains latency", "", FIT_INTRO, ""]
    fits = latency_fits(rows)
    if not fits:
        return [*lines, "No ok cases with latency, mult-adds and MAC in these runs.", ""]
    frame = pd.DataFrame(
        {
            "suite": [fmt_text(f.suite) for f in fits],
            "device": [fmt_text(f.device) for f in fits],
            "batch": [str(f.batch) for f in fits],
            "cases": [str(f.cases) for f in fits],
            "R^2 (mult-adds)": [fmt_r2(f.r2_mult_adds) for f in fits],
            "R^2 (mult-adds + MAC)": [fmt_r2(f.r2_mult_adds_mac) for f in fits],
        }
    )
    if any(f.runtime != "eager" for f in fits):  # one fit per runtime: say which
        frame.insert(2, "runtime", [fmt_text(f.runtime) for f in fits])
    lines += [markdown_table(frame), ""]
    if any(f.cases < MIN_FIT_CASES for f in fits):
        lines += [f"('–': fewer than {MIN_FIT_CASES} cases, too few to fit.)", ""]
    return lines


def comparison_section(runs: list[Run]) -> list[str]:
    """With exactly two runs: bench compare's table of NEW against BASE."""
    if len(runs) != 2:
        return []
    base, new = runs
    lines = [
        "## Comparison: NEW against BASE",
        "",
        f"BASE `{base.path.name}`, NEW `{new.path.name}`.",
    ]
    try:
        result = compare(base.path, new.path)
    except BenchError as exc:
        return [*lines, "", f"No comparison: {fmt_text(exc)}.", ""]
    lines += ["", f"{fmt_text(result.normalize_note)}; {_comparison_rule(result)}", ""]
    lines += [markdown_table(_comparison_table(result)), ""]
    for label, ids in (("Only in BASE", result.only_in_base), ("Only in NEW", result.only_in_new)):
        if ids:
            lines += [f"{label}: {', '.join(ids)}.", ""]
    return lines


def _comparison_rule(result: Comparison) -> str:
    """How verdicts were reached, and how many regressions."""
    return (
        f"metric {result.metric}, regression when slower by more than "
        f"{fmt_number(100 * result.threshold)}% at {fmt_number(100 * result.confidence)}% "
        f"confidence; regressions: {len(result.regressions)}."
    )


def _comparison_table(result: Comparison) -> pd.DataFrame:
    """One row per compared case: base, new, ratio with its interval, verdict."""
    unit = fmt_text(result.unit)
    return pd.DataFrame(
        {
            "case_id": [fmt_text(c.case_id) for c in result.cases],
            f"BASE ({unit})": [fmt_number(c.base) for c in result.cases],
            f"NEW ({unit})": [fmt_number(c.new) for c in result.cases],
            "NEW / BASE": [fmt_number(c.ratio) for c in result.cases],
            "interval": [f"{fmt_number(c.low)} – {fmt_number(c.high)}" for c in result.cases],
            "verdict": [fmt_text(c.verdict) for c in result.cases],
        }
    )


def problems_section(rows: pd.DataFrame) -> list[str]:
    """Error rows with their messages; skipped rows as one line per reason."""
    lines = ["## Errors and skipped cases", ""]
    errors = rows[rows["status"].map(lambda s: fmt_text(s) == "error")]
    skipped = reason_lines(rows, "skipped")
    others = rows[rows["status"].map(lambda s: fmt_text(s) not in ("ok", "error", "skipped"))]
    if errors.empty and not skipped and others.empty:
        return [*lines, "No error or skipped rows.", ""]
    device = IDENTITY_COLUMNS[2]
    columns = [Column("case_id", "case_id", fmt_text), MODEL_COLUMN, device]
    columns += [Column("status", "status", fmt_text), Column("error", "message", fmt_text)]
    for frame in (errors, others):
        if not frame.empty:
            shown = [column for column in columns if column.source in frame]
            lines += [markdown_table(render_columns(frame, shown)), ""]
    return lines + [f"- {line}" for line in skipped] + ([""] if skipped else [])
