"""`bench report`: one markdown document (plus PNG figures) that says what one or more runs found.

Sections: environment; per suite and group, its result tables; the guideline tables G1-G4 beside
the paper's numbers (both normalised to the table's first row); "what explains latency"
(least-squares R^2 of latency on mult-adds alone and on mult-adds + MAC); figures (latency vs
mult-adds, latency vs MAC, roofline, accuracy vs latency with its Pareto front); the comparison of
two runs; error and skipped rows. Missing values are written "–", never NaN or inf.

Conventions: counts (`mult_adds`, `flops`, `mac_bytes`) are per image, latency is per batch (ms),
so achieved FLOP/s = flops x batch / latency; arithmetic intensity = flops / mac_bytes. With
several runs of the same suite the last one given is reported (the earlier ones only enter the
comparison).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from bench.core.errors import BenchError
from bench.core.io import atomic_write_text
from bench.core.values import is_missing
from bench.measure.stats import median_ci
from bench.report.format import MISSING
from bench.report.guideline_section import guideline_section
from bench.report.plots import figures_section
from bench.report.profile_section import profile_section
from bench.report.runtime_section import runtime_section
from bench.report.sections import (
    comparison_section,
    environment_section,
    fit_section,
    header_lines,
    problems_section,
    results_section,
)
from bench.report.summary import summary_section
from bench.runs.folder import Run, latest_run, load_run
from bench.runs.schema import ENV_JSON

FIGURE_DIR_SUFFIX = "_files"


def read_runs(run_dirs: Iterable[Path]) -> list[Run]:
    """Each run folder (or a suite folder's latest run, as in bench compare), via load_run."""
    return [load_run(resolve_run_dir(Path(path))) for path in run_dirs]


def resolve_run_dir(path: Path) -> Path:
    """The folder itself when it is a run folder, else its latest run subfolder."""
    if not path.is_dir() or (path / ENV_JSON).is_file():
        return path  # load_run names a missing folder; an env.json alone is a run in progress
    return latest_run(path)


def with_median_intervals(rows: pd.DataFrame, samples: dict[str, list[float]]) -> pd.DataFrame:
    """Rows plus `latency_ms_median_low/_high`: the 95% interval of each case's median (ms).

    Distribution-free (order statistics of the case's raw samples, as `bench time` reports it);
    missing where a case has fewer than 6 samples.
    """
    bounds = {cid: median_ci(values) for cid, values in samples.items() if values}
    finite = {cid: b for cid, b in bounds.items() if all(math.isfinite(v) for v in b)}
    ids = rows["case_id"] if "case_id" in rows else pd.Series([None] * len(rows), rows.index)
    low = ids.map(lambda cid: finite.get(cid, (math.nan, math.nan))[0]).astype(float)
    high = ids.map(lambda cid: finite.get(cid, (math.nan, math.nan))[1]).astype(float)
    return rows.assign(latency_ms_median_low=low, latency_ms_median_high=high)


def current_rows(runs: list[Run]) -> pd.DataFrame:
    """Rows of every run (with median intervals); of several runs of one suite the last wins."""
    frames, seen = [], set()
    for run in reversed(runs):
        rows = with_median_intervals(run.rows.copy(), run.samples)
        if "suite" not in rows or rows["suite"].map(is_missing).all():
            rows["suite"] = run.env.get("suite") or run.path.name
        suites = set(rows["suite"].astype(str))
        if suites and suites <= seen:
            continue
        seen |= suites
        frames.append(rows)
    combined = pd.concat(frames[::-1], ignore_index=True)
    for column in ("group", "status", "case"):
        if column not in combined:
            combined[column] = None
    combined["group"] = combined["group"].map(lambda g: MISSING if is_missing(g) else str(g))
    return combined


def build_report(runs: list[Run], fig_dir: Path) -> str:
    """The whole markdown text; figures are written into `fig_dir`."""
    rows = current_rows(runs)
    sections = [
        header_lines(runs, rows),
        summary_section(rows),
        environment_section(runs),
        results_section(rows),
        guideline_section(rows, fig_dir),
        fit_section(rows),
        runtime_section(rows, fig_dir),
        profile_section(rows, fig_dir),
        figures_section(rows, runs, fig_dir),
        comparison_section(runs),
        problems_section(rows),
    ]
    return "\n".join(line for section in sections for line in section).rstrip() + "\n"


def default_output(run_dirs: list[Path]) -> Path:
    """report.md inside the last run folder (a suite folder's latest run, as it is reported)."""
    return resolve_run_dir(run_dirs[-1]) / "report.md"


def write_report(run_dirs: list[Path], out: Path | None = None) -> Path:
    """Write the markdown report of `run_dirs` (figures in '<out stem>_files/'); return its path."""
    if not run_dirs:
        raise BenchError("no run folder given; usage: bench report RUN [RUN ...] [-o report.md]")
    runs = read_runs(run_dirs)
    out = Path(out) if out is not None else default_output([Path(p) for p in run_dirs])
    if out.suffix.lower() != ".md":
        raise BenchError(f"output {out} must be a markdown file ending in .md")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig_dir = out.with_name(out.stem + FIGURE_DIR_SUFFIX)
    atomic_write_text(out, build_report(runs, fig_dir))
    return out
