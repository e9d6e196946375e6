"""The report's guideline section: G1-G4 beside the paper, normalised, with bar charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench.analysis.guidelines import GuidelineSummary, guideline_summaries
from bench.core.values import is_missing
from bench.report import figures
from bench.report.format import MISSING, fmt_number, fmt_rho, fmt_text
from bench.report.plots import image_link, slug
from bench.report.tables import Column, markdown_table, render_columns


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
    """A summary's table with units in the headers and formatted cells (doubtful rows marked)."""
    unit = fmt_text(table["unit"].iloc[0]) if "unit" in table else "images/s"
    if "doubtful" in table:
        pairs = zip(table["config"], table["doubtful"], strict=True)
        table = table.assign(config=[f"{c} (noisy)" if d else c for c, d in pairs])
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


INTRO = """Throughputs are divided by the first row of each table column so that the shapes
compare across hardware; Spearman's rho ranks our throughputs against the paper's;
slower/faster compares the slowest configuration with the fastest."""


def guideline_section(rows: pd.DataFrame, fig_dir: Path) -> list[str]:
    """Each guideline table beside the paper's, normalised, with Spearman rho and sentences."""
    lines = ["## Guidelines G1-G4 against the paper (ShuffleNet V2, Tables 1-4)", "", INTRO, ""]
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
        part for part in (summary.guideline, summary.column, "on", summary.place) if part
    )


def guideline_lines(summary: GuidelineSummary, fig_dir: Path) -> list[str]:
    """One guideline column: table, rho, the two sentences and the bar chart."""
    title = _title(summary)
    lines = [f"### {title}", "", markdown_table(_guideline_table(summary.table)), ""]
    paired = " (ours: round-paired ratios to the first row)" if summary.paired else ""
    lines.append(
        f"Spearman rho (ours vs paper): {fmt_rho(summary.spearman)}; "
        f"reproduced: {_yes_no(summary.reproduced)}{paired}."
    )
    lines += ["", f"**{ratio_sentence(summary)}.**", "", fmt_text(summary.sentence), ""]
    runtime = "" if summary.runtime == "eager" else summary.runtime
    parts = (summary.guideline, summary.column, summary.device, runtime)
    name = "guideline_" + "_".join(slug(part) for part in parts if part) + ".png"
    chart_title = f"{title}: throughput / first row"
    interval = "interval of the round-paired ratio" if summary.paired else None
    image = figures.paired_bars(
        summary.table, fig_dir / name, chart_title, "relative throughput", interval
    )
    return [*lines, image_link(chart_title, image, fig_dir), ""]
