"""Result rows as markdown tables: columns with units in their headers, split when wide."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.report.format import (
    fmt_accuracy,
    fmt_int,
    fmt_number,
    fmt_percent,
    fmt_text,
    scaled,
    si_prefix,
)
from bench.runs.schema import has_values

MAX_TABLE_COLUMNS = 8


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
    Column("runtime", "runtime", fmt_text),
    Column("batch", "batch", fmt_int),
    Column("input", "input (CxHxW)", fmt_text),
    Column("threads", "threads", fmt_int),
    Column("peak_mem_kind", "peak memory kind", fmt_text),
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
    Column("paired_ratio", "paired speed / first row", fmt_number),
    Column("trust", "trust", fmt_text),
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
