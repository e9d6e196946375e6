"""`bench report`: one markdown document (plus PNG figures) that says what one or more runs found.

Sections: environment; per suite and group, its result tables; the guideline tables G1-G4 beside
the paper's numbers (both normalised to the table's first row); figures (latency vs mult-adds,
latency vs MAC, roofline, accuracy vs latency with its Pareto front); "what explains latency"
(least-squares R^2 of latency on mult-adds alone and on mult-adds + MAC); the comparison of two
runs; error and skipped rows. Missing values are written "–", never NaN or inf.

Conventions: counts (`mult_adds`, `flops`, `mac_bytes`) are per image, latency is per batch (ms),
so achieved FLOP/s = flops x batch / latency; arithmetic intensity = flops / mac_bytes. With
several runs of the same suite the last one given is reported (the earlier ones only enter the
comparison).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import figures
from bench.errors import BenchError
from bench.results import ENV_JSON, Run, latest_run, load_run
from bench.summary import GuidelineSummary, guideline_summaries

MISSING = "–"
MAX_TABLE_COLUMNS = 8
MIN_FIT_CASES = 4
FIGURE_DIR_SUFFIX = "_files"
SI_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"))


# ---- formatting: every value goes through one of these, so no NaN/inf reaches the text ----


def is_missing(value: Any) -> bool:
    """True for None, NaN, inf, pandas NA, blank strings and strings naming NaN, inf or none."""
    if value is None or value is pd.NA:
        return True
    if isinstance(value, str) and value.strip().lower() in ("", "none", "null"):
        return True
    try:  # also catches the strings 'nan', 'inf', 'Infinity'
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def as_float(value: Any) -> float | None:
    """The value as a finite float; None when missing, infinite or not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fmt_number(value: Any, scale: float = 1.0) -> str:
    """A number divided by `scale` with about three significant digits; missing -> '–'."""
    number = as_float(value)
    if number is None:
        return fmt_text(value)
    x = number / scale
    size = abs(x)
    if size >= 100:
        return f"{x:,.0f}"
    if size >= 10:
        return f"{x:.1f}"
    if size >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}" if size > 0 else "0"


def fmt_int(value: Any) -> str:
    """An integer with thousands separators; missing -> '–'."""
    number = as_float(value)
    return fmt_text(value) if number is None else f"{round(number):,}"


def fmt_percent(value: Any) -> str:
    """A fraction as a percentage (0.031 -> '3.10'); missing -> '–'."""
    number = as_float(value)
    return fmt_text(value) if number is None else fmt_number(100.0 * number)


def fmt_accuracy(value: Any) -> str:
    """An accuracy in percent (bench.train writes best_val_acc as 0-100) with one decimal."""
    number = as_float(value)
    return fmt_text(value) if number is None else f"{number:.1f}"


def fmt_text(value: Any) -> str:
    """Text safe inside a markdown table cell (no pipes, no newlines); missing -> '–'."""
    if is_missing(value):
        return MISSING
    return re.sub(r"\s+", " ", str(value)).replace("|", "/").strip()


def scaled(factor: float) -> Callable[[Any], str]:
    """Formatter dividing by `factor` (1e6 for M, MB)."""
    return lambda value: fmt_number(value, factor)


def si_prefix(values: Iterable[Any]) -> tuple[float, str]:
    """The largest decimal prefix (G, M, k or none) not above the median finite |value|."""
    finite = [abs(float(v)) for v in values if not is_missing(v)]
    typical = float(np.median(finite)) if finite else 0.0
    return next(
        ((factor, prefix) for factor, prefix in SI_PREFIXES if typical >= factor), (1.0, "")
    )


@dataclass(frozen=True)
class Column:
    """A result column as the report shows it: source field, header with its unit, formatter."""

    source: str
    header: str
    render: Callable[[Any], str] = fmt_number
    unit: str | None = None  # set: a decimal prefix is chosen per table, e.g. "MB", "k"

    def resolved(self, values: pd.Series) -> Column:
        """This column with its prefix fixed for these values (header 'MAC (MB)')."""
        if self.unit is None:
            return self
        factor, prefix = si_prefix(values)
        label = f"{prefix}{self.unit}"
        return Column(
            self.source, f"{self.header} ({label})" if label else self.header, scaled(factor)
        )


MODEL_COLUMN = Column("model", "model", fmt_text)
IDENTITY_COLUMNS = (
    Column("case", "case", fmt_text),
    MODEL_COLUMN,
    Column("device", "device", fmt_text),
    Column("dtype", "dtype", fmt_text),
    Column("mode", "mode", fmt_text),
    Column("batch", "batch", fmt_int),
    Column("input", "input (CxHxW)", fmt_text),
    Column("threads", "threads", fmt_int),
)
VALUE_COLUMNS = (
    Column("params", "params", unit=""),
    Column("mult_adds", "mult-adds", unit=""),
    Column("mac_bytes", "MAC", unit="B"),
    Column("latency_ms_median", "latency median (ms)", fmt_number),
    Column("latency_ms_p10", "p10 (ms)", fmt_number),
    Column("latency_ms_p90", "p90 (ms)", fmt_number),
    Column("cv", "CV (%)", fmt_percent),
    Column("throughput", "throughput (images/s)", fmt_number),
    Column("n_samples", "samples", fmt_int),
    Column("peak_mem_bytes", "peak memory", unit="B"),
    Column("ref_mult_adds", "paper mult-adds", unit=""),
    Column("best_val_acc", "best val acc (%)", fmt_accuracy),
    Column("train_seconds", "train time (s)", fmt_number),
    Column("epochs", "epochs", fmt_int),
)


def markdown_table(frame: pd.DataFrame) -> str:
    """An all-string DataFrame as a GitHub markdown table."""
    return frame.to_markdown(index=False, disable_numparse=True)


def render_columns(rows: pd.DataFrame, columns: Iterable[Column]) -> pd.DataFrame:
    """Formatted string cells with unit-bearing headers (prefixes chosen for these rows)."""
    resolved = [column.resolved(rows[column.source]) for column in columns]
    return pd.DataFrame({c.header: [c.render(v) for v in rows[c.source]] for c in resolved})


def has_values(rows: pd.DataFrame, source: str) -> bool:
    """Whether the column exists and holds at least one non-missing value."""
    return source in rows and not rows[source].map(is_missing).all()


# ---- loading runs ----


def read_runs(run_dirs: Iterable[Path]) -> list[Run]:
    """Each run folder (or a suite folder's latest run, as in bench compare), via load_run."""
    return [load_run(resolve_run_dir(Path(path))) for path in run_dirs]


def resolve_run_dir(path: Path) -> Path:
    """The folder itself when it is a run folder, else its latest run subfolder."""
    if not path.is_dir() or (path / ENV_JSON).is_file():
        return path  # load_run names a missing folder; an env.json alone is a run in progress
    return latest_run(path)


def current_rows(runs: list[Run]) -> pd.DataFrame:
    """Rows of every run; of several runs of one suite the last one given wins."""
    frames, seen = [], set()
    for run in reversed(runs):
        rows = run.rows.copy()
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


# ---- sections ----


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
    ("calibrated device", lambda e: _calibration(e).get("device")),
    ("GEMM ceiling (GFLOP/s)", lambda e: fmt_number(_calibration(e).get("gemm_flops_per_s"), 1e9)),
    ("copy bandwidth (GB/s)", lambda e: fmt_number(_calibration(e).get("copy_bytes_per_s"), 1e9)),
    ("reference workload (ms)", lambda e: fmt_number(_calibration(e).get("ref_workload_ms"))),
)


def _pair(first: Any, second: Any) -> str:
    """'a / b' with missing parts as '–'."""
    return f"{fmt_text(first)} / {fmt_text(second)}"


def _versions(env: dict) -> str:
    """python / torch / torchvision versions."""
    return " / ".join(fmt_text(env.get(key)) for key in ("python", "torch", "torchvision"))


def _calibration(env: dict) -> dict:
    """The run's calibration record ({} when it was not calibrated)."""
    return env.get("calibration") or {}


def environment_section(runs: list[Run]) -> list[str]:
    """Machine, versions and calibration ceilings, one column per run."""
    table = {"": [name for name, _ in ENV_FIELDS]}
    for run in runs:
        table[run.path.name] = [fmt_text(get(run.env)) for _, get in ENV_FIELDS]
    return ["## Environment", "", markdown_table(pd.DataFrame(table)), ""]


def _identity_parts(rows: pd.DataFrame) -> tuple[list[Column], list[str]]:
    """Identity columns that vary (shown) and 'name value' notes for those that do not."""
    varying, constant = [], []
    for column in IDENTITY_COLUMNS:
        if not has_values(rows, column.source):
            continue
        values = rows[column.source].map(column.render)
        if values.nunique() > 1:
            varying.append(column)
        else:
            constant.append(f"{column.header} {values.iloc[0]}")
    return varying, constant


def result_tables(rows: pd.DataFrame) -> list[str]:
    """One group's ok rows as markdown tables, split so none is wider than MAX_TABLE_COLUMNS."""
    keys, constant = _identity_parts(rows)
    keys = keys or [MODEL_COLUMN]
    values = [c for c in VALUE_COLUMNS if has_values(rows, c.source)]
    width = max(2, MAX_TABLE_COLUMNS - len(keys))
    lines = [f"Same for every row: {', '.join(constant)}.", ""] if constant else []
    for start in range(0, max(len(values), 1), width):
        chunk = keys + values[start : start + width]
        lines += [markdown_table(render_columns(rows, chunk)), ""]
    return lines


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
    for (suite, group), frame in ok.groupby(["suite", "group"], sort=False):
        lines += [f"### {fmt_text(suite)}: {fmt_text(group)} ({len(frame)} cases)", ""]
        lines += result_tables(frame)
    return lines


# ---- guidelines G1-G4 against the paper ----


def ratio_sentence(summary: GuidelineSummary) -> str:
    """'G2 x1 on cpu: g=8 1.7x slower than g=1; paper, arm: g=8 1.4x slower than g=1'."""
    ours = _extremes(summary.table, "ours")
    paper = _extremes(summary.table, "paper")
    head = _title(summary)
    platform = summary.platform or "paper"
    return (
        f"{head}: {ours[1]} {_times(summary.ratio_ours)} slower than {ours[0]}; "
        f"paper, {platform}: {paper[1]} {_times(summary.ratio_paper)} slower than {paper[0]}"
    )


def _extremes(table: pd.DataFrame, column: str) -> tuple[str, str]:
    """(fastest, slowest) configuration by a throughput column ('–' when unmeasured)."""
    measured = table[~table[column].map(is_missing)]
    if measured.empty:
        return MISSING, MISSING
    values = measured[column].astype(float)
    return fmt_text(measured.loc[values.idxmax(), "config"]), fmt_text(
        measured.loc[values.idxmin(), "config"]
    )


def _times(ratio: Any) -> str:
    """A fastest/slowest throughput ratio as 'N.Nx'."""
    return MISSING if is_missing(ratio) else f"{float(ratio):.1f}x"


def _guideline_table(table: pd.DataFrame) -> pd.DataFrame:
    """A summary's table with units in the headers and formatted cells."""
    unit = fmt_text(table["unit"].iloc[0]) if "unit" in table else "images/s"
    columns = (
        Column("config", "config", fmt_text),
        Column("ours", f"ours ({unit})", fmt_number),
        Column("paper", f"paper ({unit})", fmt_number),
        Column("ours_norm", "ours / first row", fmt_number),
        Column("paper_norm", "paper / first row", fmt_number),
    )
    return render_columns(table, columns)


def _yes_no(value: Any) -> str:
    """yes / no / '–' for a boolean that may be missing."""
    return MISSING if value is None or is_missing(value) else ("yes" if value else "no")


def guideline_section(rows: pd.DataFrame, fig_dir: Path) -> list[str]:
    """Each guideline table beside the paper's, normalised, with Spearman rho and sentences."""
    lines = ["## Guidelines G1-G4 against the paper (ShuffleNet V2, Tables 1-4)", ""]
    lines += ["Throughputs are divided by the first row of each table column so that the shapes"]
    lines += ["compare across hardware; Spearman's rho ranks our throughputs against the paper's;"]
    lines += ["slower/faster compares the slowest configuration with the fastest.", ""]
    summaries = guideline_summaries(rows)
    if not summaries:
        return [*lines, "No guideline rows (groups G1-G4 with ref_throughput) in these runs.", ""]
    unmeasured = []
    for summary in summaries:
        if summary.table["ours"].map(is_missing).all():
            unmeasured.append(_title(summary))
        else:
            lines += guideline_lines(summary, fig_dir)
    if unmeasured:
        lines += [f"Not measured here (every case skipped or failed): {', '.join(unmeasured)}.", ""]
    return lines


def _title(summary: GuidelineSummary) -> str:
    """'G2 x1 on cpu': guideline, table column and device."""
    return " ".join(
        part for part in (summary.guideline, summary.column, "on", summary.device) if part
    )


def guideline_lines(summary: GuidelineSummary, fig_dir: Path) -> list[str]:
    """One guideline column: table, rho, the two sentences and the bar chart."""
    title = _title(summary)
    lines = [f"### {title}", "", markdown_table(_guideline_table(summary.table)), ""]
    lines.append(
        f"Spearman rho (ours vs paper): {fmt_rho(summary.spearman)}; "
        f"reproduced: {_yes_no(summary.reproduced)}."
    )
    lines += ["", f"**{ratio_sentence(summary)}.**", "", fmt_text(summary.sentence), ""]
    parts = (summary.guideline, summary.column, summary.device)
    name = "guideline_" + "_".join(slug(part) for part in parts if part) + ".png"
    chart_title = f"{title}: throughput / first row"
    image = figures.paired_bars(summary.table, fig_dir / name, chart_title, "relative throughput")
    return [*lines, image_link(chart_title, image, fig_dir), ""]


# ---- what explains latency ----


@dataclass(frozen=True)
class LatencyFit:
    """R^2 of least-squares fits of latency on mult-adds, and on mult-adds + MAC."""

    suite: str
    device: str
    batch: int
    cases: int
    r2_mult_adds: float
    r2_mult_adds_mac: float


def r_squared(features: np.ndarray, target: np.ndarray) -> float:
    """R^2 of the least-squares fit target ~ intercept + features (numpy lstsq); NaN if flat."""
    columns = features.reshape(len(target), -1)
    columns = columns / np.where(np.abs(columns).max(axis=0) > 0, np.abs(columns).max(axis=0), 1)
    design = np.column_stack([np.ones(len(target)), columns])
    coefficients, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = float(((target - design @ coefficients) ** 2).sum())
    total = float(((target - target.mean()) ** 2).sum())
    return 1.0 - residual / total if total > 0 else math.nan


def timed_cases(rows: pd.DataFrame) -> pd.DataFrame:
    """Ok inference rows with finite positive latency, mult-adds and MAC bytes."""
    needed = ("latency_ms_median", "mult_adds", "mac_bytes")
    if not all(has_values(rows, column) for column in needed):
        return rows.iloc[0:0]
    keep = rows["status"] == "ok"
    if "mode" in rows:
        keep &= rows["mode"].map(lambda m: is_missing(m) or m == "infer")
    for column in needed:
        keep &= rows[column].map(lambda v: not is_missing(v) and float(v) > 0)
    return rows[keep]


def latency_fits(rows: pd.DataFrame) -> list[LatencyFit]:
    """Per suite, device and batch: R^2 of latency on mult-adds, and on mult-adds + MAC bytes.

    Counts are per image and latency per batch, so cases of different batch sizes are fitted apart.
    """
    fits = []
    cases = timed_cases(rows)
    cases = cases.assign(batch=cases.get("batch", 1))
    for (suite, device, batch), frame in cases.groupby(["suite", "device", "batch"], sort=True):
        latency = frame["latency_ms_median"].astype(float).to_numpy()
        mult_adds = frame["mult_adds"].astype(float).to_numpy()
        both = np.column_stack([mult_adds, frame["mac_bytes"].astype(float).to_numpy()])
        enough = len(frame) >= MIN_FIT_CASES
        r2_one = r_squared(mult_adds, latency) if enough else math.nan
        r2_two = r_squared(both, latency) if enough else math.nan
        fits.append(LatencyFit(str(suite), str(device), int(batch), len(frame), r2_one, r2_two))
    return fits


def fit_section(rows: pd.DataFrame) -> list[str]:
    """'What explains latency': both R^2 values per suite, device and batch, with the count."""
    lines = ["## What explains latency", ""]
    lines += ["Least-squares fits (with intercept) of median latency on mult-adds alone and on"]
    lines += ["mult-adds + MAC bytes, over the ok inference cases of one batch size. ShuffleNet"]
    lines += ["V2's thesis is that FLOPs alone are an indirect measure of speed; the gap between"]
    lines += ["the two R^2 values is how much memory traffic adds on this machine.", ""]
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
    lines += [markdown_table(frame), ""]
    if any(f.cases < MIN_FIT_CASES for f in fits):
        lines += [f"('–': fewer than {MIN_FIT_CASES} cases, too few to fit.)", ""]
    return lines


def fmt_rho(value: Any) -> str:
    """A rank correlation with two decimals; missing -> '–'."""
    return MISSING if is_missing(value) else f"{float(value):.2f}"


def fmt_r2(value: float) -> str:
    """R^2 with three decimals; missing -> '–'."""
    return MISSING if is_missing(value) else f"{value:.3f}"


# ---- figures ----


def family_of(model: Any) -> str:
    """The netdefs family of a model spec ('torchvision' / 'other' when not registered)."""
    from netdefs.registry import model_entry, parse_spec

    text = str(model)
    if text.startswith("torchvision:"):
        return "torchvision"
    try:
        return model_entry(parse_spec(text)[0]).family or "other"
    except ValueError:
        return "other"


def _points(frame: pd.DataFrame, x: pd.Series, y: pd.Series) -> pd.DataFrame:
    """Plot points (x, y, label = model spec, family) of a frame's rows."""
    return pd.DataFrame(
        {
            "x": x.astype(float).to_numpy(),
            "y": y.astype(float).to_numpy(),
            "label": frame["model"].map(fmt_text).to_numpy(),
            "family": frame["model"].map(family_of).to_numpy(),
        }
    )


def _calibration_for(runs: list[Run], device: str) -> dict:
    """The calibration record of the last run calibrated on `device` ({} when none)."""
    for run in reversed(runs):
        calibration = _calibration(run.env)
        if calibration and calibration.get("device", "cpu") == device:
            return calibration
    return {}


def device_figures(frame: pd.DataFrame, device: str, runs: list[Run], fig_dir: Path) -> list:
    """Latency per image vs mult-adds and vs MAC, and the roofline of one device's timed cases."""
    batch = frame["batch"].astype(float).fillna(1.0) if "batch" in frame else 1.0
    latency = frame["latency_ms_median"].astype(float) / batch  # per image, like the x axis
    name, axis = slug(device), "median latency per image (ms) = batch latency / batch"
    return [
        figures.labelled_scatter(
            _points(frame, frame["mult_adds"], latency),
            fig_dir / f"latency_vs_mult_adds_{name}.png",
            "mult-adds per image",
            axis,
            f"Latency vs mult-adds ({device})",
        ),
        figures.labelled_scatter(
            _points(frame, frame["mac_bytes"], latency),
            fig_dir / f"latency_vs_mac_{name}.png",
            "memory access cost per image (bytes)",
            axis,
            f"Latency vs MAC ({device})",
        ),
        roofline_figure(frame, device, _calibration_for(runs, device), fig_dir),
    ]


def roofline_figure(frame: pd.DataFrame, device: str, calibration: dict, fig_dir: Path) -> Path:
    """Achieved FLOP/s (flops x batch / latency) against flops / mac_bytes, with the ceilings."""
    flops = 2.0 * frame["mult_adds"].astype(float)  # the contract: flops = 2 x mult_adds
    batch = frame["batch"].astype(float).fillna(1.0) if "batch" in frame else 1.0
    achieved = flops * batch / (frame["latency_ms_median"].astype(float) / 1000.0)
    intensity = flops / frame["mac_bytes"].astype(float)
    return figures.roofline(
        _points(frame, intensity, achieved),
        fig_dir / f"roofline_{slug(device)}.png",
        _positive(calibration.get("gemm_flops_per_s")),
        _positive(calibration.get("copy_bytes_per_s")),
        f"Roofline ({device}; ceilings from the run's calibration)",
    )


def _positive(value: Any) -> float | None:
    """A finite positive float, else None."""
    return None if is_missing(value) or float(value) <= 0 else float(value)


def accuracy_points(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(latency ms, accuracy %) per fine-tuned model, latency from its inference rows.

    Returns the points and the models left out for want of a timed inference row.
    """
    if not has_values(rows, "best_val_acc"):
        return pd.DataFrame(columns=["x", "y", "label"]), []
    tuned = rows[(rows["status"] == "ok") & ~rows["best_val_acc"].map(is_missing)]
    timed = timed_cases(rows) if has_values(rows, "mult_adds") else rows.iloc[0:0]
    points, untimed = [], []
    for row in tuned.to_dict("records"):
        same = timed[timed["model"] == row["model"]]
        preferred = same[same["device"] == row.get("device")]
        match = preferred if not preferred.empty else same
        if match.empty:
            untimed.append(fmt_text(row["model"]))
            continue
        accuracy = float(fmt_accuracy(row["best_val_acc"]))
        x = float(match["latency_ms_median"].iloc[0])
        points.append({"x": x, "y": accuracy, "label": fmt_text(row["model"])})
    return pd.DataFrame(points, columns=["x", "y", "label"]), untimed


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Points not beaten by any other point that is both faster (lower x) and more accurate."""
    ordered = points.sort_values(["x", "y"], ascending=[True, False])
    best_before = ordered["y"].cummax().shift(fill_value=-math.inf)
    return ordered[ordered["y"] > best_before]


def figures_section(rows: pd.DataFrame, runs: list[Run], fig_dir: Path) -> list[str]:
    """Per device the scatter plots and roofline; accuracy vs latency when fine-tunes exist."""
    lines = ["## Figures", ""]
    cases = timed_cases(rows)
    if cases.empty:
        lines += ["No ok cases with latency, mult-adds and MAC to plot.", ""]
    for device, frame in cases.groupby("device", sort=True):
        for image in device_figures(frame, str(device), runs, fig_dir):
            lines += [image_link(image.stem.replace("_", " "), image, fig_dir), ""]
    return lines + accuracy_lines(rows, fig_dir)


def accuracy_lines(rows: pd.DataFrame, fig_dir: Path) -> list[str]:
    """The accuracy-vs-latency figure, its Pareto front and the models it could not place."""
    points, untimed = accuracy_points(rows)
    if points.empty:
        return [] if not untimed else [f"No timed inference rows for: {', '.join(untimed)}.", ""]
    front = pareto_front(points)
    image = figures.accuracy_pareto(
        points, front, fig_dir / "accuracy_vs_latency.png", "Accuracy vs latency (fine-tunes)"
    )
    lines = [image_link("accuracy vs latency", image, fig_dir), ""]
    lines += [f"Pareto front (fastest to most accurate): {', '.join(front['label'])}.", ""]
    if untimed:
        lines += [f"Not plotted (no timed inference row): {', '.join(untimed)}.", ""]
    return lines


# ---- comparison of two runs, error and skipped rows ----


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
        from bench.compare import compare

        result = compare(base.path, new.path)
    except ImportError as exc:
        return [*lines, "", f"Comparison unavailable in this installation ({exc}).", ""]
    except BenchError as exc:
        return [*lines, "", f"No comparison: {fmt_text(exc)}.", ""]
    lines += ["", f"{fmt_text(result.normalize_note)}; {_comparison_rule(result)}", ""]
    lines += [markdown_table(_comparison_table(result)), ""]
    for label, ids in (("Only in BASE", result.only_in_base), ("Only in NEW", result.only_in_new)):
        if ids:
            lines += [f"{label}: {', '.join(ids)}.", ""]
    return lines


def _comparison_rule(result: Any) -> str:
    """How verdicts were reached, and how many regressions."""
    return (
        f"metric {result.metric}, regression when slower by more than "
        f"{fmt_number(100 * result.threshold)}% at {fmt_number(100 * result.confidence)}% "
        f"confidence; regressions: {len(result.regressions)}."
    )


def _comparison_table(result: Any) -> pd.DataFrame:
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
    """Rows whose status is not ok (error, skipped), with their messages."""
    lines = ["## Errors and skipped cases", ""]
    bad = rows[rows["status"].map(lambda s: fmt_text(s) != "ok")]
    if bad.empty:
        return [*lines, "No error or skipped rows.", ""]
    device = IDENTITY_COLUMNS[2]
    columns = [Column("case_id", "case_id", fmt_text), MODEL_COLUMN, device]
    columns += [Column("status", "status", fmt_text), Column("error", "message", fmt_text)]
    shown = [column for column in columns if column.source in bad]
    return [*lines, markdown_table(render_columns(bad, shown)), ""]


# ---- the document ----


def slug(text: str) -> str:
    """A file-name-safe version of `text`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "x"


def image_link(title: str, image: Path, fig_dir: Path) -> str:
    """Markdown image with a link relative to the report (figure folder beside it)."""
    return f"![{fmt_text(title)}]({fig_dir.name}/{image.name})"


def header_lines(runs: list[Run], rows: pd.DataFrame) -> list[str]:
    """Title and what the report covers."""
    names = ", ".join(f"`{run.path.name}`" for run in runs)
    counts = rows["status"].map(fmt_text).value_counts()
    summary = ", ".join(f"{count} {status}" for status, count in counts.items()) or "none"
    return ["# Benchmark report", "", f"Runs: {names}. Cases reported: {summary}.", ""]


def build_report(runs: list[Run], fig_dir: Path) -> str:
    """The whole markdown text; figures are written into `fig_dir`."""
    rows = current_rows(runs)
    sections = [
        header_lines(runs, rows),
        environment_section(runs),
        results_section(rows),
        guideline_section(rows, fig_dir),
        fit_section(rows),
        figures_section(rows, runs, fig_dir),
        comparison_section(runs),
        problems_section(rows),
    ]
    return "\n".join(line for section in sections for line in section).rstrip() + "\n"


def default_output(run_dirs: list[Path]) -> Path:
    """report.md inside the last run folder."""
    return run_dirs[-1] / "report.md"


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
    text = build_report(runs, fig_dir)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, out)
    return out
