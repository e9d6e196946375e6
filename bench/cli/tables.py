"""The run table `bench run` and `bench show` print: the measured rows, fitted to the width.

Ok rows form the table, with numbers formatted once (`bench.report.format`) and never wrapped;
setup every row shares moves into the title; columns that do not fit the output width are left
out (the least important first) and named in the caption. Skipped and error rows are printed
after it as one line per reason (`bench.report.format.reason_lines`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.table import Table

from bench.core.values import is_missing
from bench.report.format import (
    fmt_accuracy,
    fmt_int,
    fmt_number,
    fmt_text,
    scaled,
    si_prefix,
)

if TYPE_CHECKING:
    import pandas as pd

TEXT_MIN = 22  # a text column (model spec) is folded to no fewer characters than this


@dataclass(frozen=True)
class RunColumn:
    """One column of the run table: source field, header (with its unit) and formatter."""

    source: str
    header: str
    render: Callable[[Any], str] = fmt_number
    numeric: bool = True
    prefixed: bool = False  # a decimal prefix (k, M, G) chosen per table, named in the header
    unit: str = ""  # what the prefix stands before ('B': 'MAC MB')

    def resolved(self, values: pd.Series) -> RunColumn:
        """This column with its prefix fixed for these values ('params M')."""
        if not self.prefixed:
            return self
        factor, prefix = si_prefix(values)
        label = f"{prefix}{self.unit}"
        header = f"{self.header} {label}" if label else self.header
        return RunColumn(self.source, header, scaled(factor), self.numeric)


RUN_COLUMNS = (
    RunColumn("model", "model", fmt_text, numeric=False),
    RunColumn("device", "dev", fmt_text, numeric=False),
    RunColumn("runtime", "runtime", fmt_text, numeric=False),
    RunColumn("batch", "b", fmt_int),
    RunColumn("params", "params", prefixed=True),
    RunColumn("mult_adds", "mult-adds", prefixed=True),
    RunColumn("mac_bytes", "MAC", prefixed=True, unit="B"),  # memory access cost in bytes
    RunColumn("latency_ms_median", "median ms"),
    RunColumn("throughput", "images/s"),
    RunColumn("best_val_acc", "val acc %", fmt_accuracy),
    RunColumn("ref_throughput", "paper"),
    RunColumn("ref_unit", "paper unit", fmt_text, numeric=False),
    RunColumn("paired_ratio", "paired"),  # ratio to the group's first row, paired by round
    RunColumn(  # why a row is noisy ('' when not)
        "trust", "trust", lambda mark: "" if is_missing(mark) else fmt_text(mark), numeric=False
    ),
)
SETUP_COLUMNS = {"device": "device", "runtime": "runtime", "batch": "batch"}  # source -> name
# Left out in this order while the table does not fit the width (the model column stays); the
# paper's throughput goes with its unit (the guideline tables below show both).
DROP_ORDER = (
    ("ref_unit", "ref_throughput"), ("paired_ratio",), ("batch",), ("device",), ("params",),
    ("runtime",), ("best_val_acc",), ("mac_bytes",), ("mult_adds",), ("throughput",),
)  # fmt: skip


def table_columns(rows: pd.DataFrame) -> list[RunColumn]:
    """The run columns that hold a value in these rows, less the setup every row shares."""
    columns = [c for c in RUN_COLUMNS if c.source in rows and rows[c.source].notna().any()]
    shared = set(shared_setup(rows))
    columns = [c for c in columns if c.source not in shared]
    units = rows["ref_unit"].dropna().map(fmt_text).unique() if "ref_unit" in rows else []
    if len(units) == 1:  # one unit for every paper value: say it in the header
        columns = [_paper_in(c, units[0]) for c in columns if c.source != "ref_unit"]
    return [column.resolved(rows[column.source]) for column in columns]


def _paper_in(column: RunColumn, unit: str) -> RunColumn:
    """The paper's throughput column headed with its unit ('paper images/s')."""
    if column.source != "ref_throughput":
        return column
    return RunColumn(column.source, f"paper\n{unit}", column.render, column.numeric)


def shared_setup(rows: pd.DataFrame) -> dict[str, str]:
    """Setup columns (device, runtime, batch) with one value in every row: source -> text."""
    shared = {}
    for column in RUN_COLUMNS:
        if column.source in SETUP_COLUMNS and column.source in rows and len(rows) > 1:
            values = rows[column.source].map(column.render)
            if values.nunique() == 1:
                shared[column.source] = values.iloc[0]
    return shared


def setup_title(title: str, rows: pd.DataFrame) -> str:
    """The title with the shared setup: 'guidelines: RUN (device cpu, batch 1)'."""
    shared = shared_setup(rows)
    named = [f"{SETUP_COLUMNS[source]} {text}" for source, text in shared.items()]
    return f"{title} ({', '.join(named)})" if named else title


def build_table(rows: pd.DataFrame, columns: list[RunColumn], title: str, width: int) -> Table:
    """A rich table: numbers right-aligned and never wrapped, text broken after commas."""
    text_width = _text_width(rows, columns, width)
    table = Table(title=title, title_justify="left")
    for column in columns:
        if column.numeric:
            table.add_column(column.header, justify="right", no_wrap=True)
        else:
            table.add_column(column.header, overflow="fold", max_width=text_width)
    for record in rows.to_dict("records"):
        cells = [column.render(record.get(column.source)) for column in columns]
        wrapped = [
            c if col.numeric else break_at_commas(c, text_width)
            for c, col in zip(cells, columns, strict=True)
        ]
        table.add_row(*wrapped)
    return table


def _text_width(rows: pd.DataFrame, columns: list[RunColumn], width: int) -> int:
    """The widest a text column may be: what the numbers leave, shared by the text columns."""
    texts = [c for c in columns if not c.numeric]
    spare = width - needed_width(rows, [c for c in columns if c.numeric]) - 3 * len(texts)
    return max(TEXT_MIN, spare // max(1, len(texts)))


def break_at_commas(text: str, width: int) -> str:
    """`text` as lines of at most `width` characters, broken after commas where it can be."""
    lines, line = [], ""
    for part in re.split(r"(?<=,)", text):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join([*lines, line]) if lines else line


def fitted_table(rows: pd.DataFrame, title: str, width: int) -> Table:
    """The widest table of these rows that fits `width`, dropping columns in DROP_ORDER."""
    columns = table_columns(rows)
    dropped: list[str] = []
    for sources in DROP_ORDER:
        if needed_width(rows, columns) <= width:
            break
        dropped += [" ".join(c.header.split()) for c in columns if c.source in sources]
        columns = [c for c in columns if c.source not in sources]
    table = build_table(rows, columns, setup_title(title, rows), width)
    if dropped:
        table.caption = f"left out for the {width}-column width: {', '.join(dropped)}"
    return table


def needed_width(rows: pd.DataFrame, columns: list[RunColumn]) -> int:
    """Characters the table needs with whole numbers and text folded to at most TEXT_MIN."""
    total = 1  # the left border; each column adds its padding (2) and a separator (1)
    for column in columns:
        cells = [*column.header.splitlines(), *(column.render(v) for v in rows[column.source])]
        longest = max(len(cell) for cell in cells)
        total += (longest if column.numeric else min(longest, TEXT_MIN)) + 3
    return total


def measured_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The ok rows (all rows when the frame has no status column)."""
    return rows if "status" not in rows else rows[rows["status"] == "ok"]
