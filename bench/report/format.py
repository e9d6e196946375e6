"""Human-readable numbers, defined once for the CLI's tables and the report.

Every value goes through one of these, so no NaN or inf reaches the text: missing values are '–'.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from bench.core.values import as_float, is_missing

if TYPE_CHECKING:
    import pandas as pd

MISSING = "–"

SI_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"))
SHOWN_CASES = 3  # case ids named on a collapsed line before "..."


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
    typical = float(statistics.median(finite)) if finite else 0.0
    return next(
        ((factor, prefix) for factor, prefix in SI_PREFIXES if typical >= factor), (1.0, "")
    )


def fmt_rho(value: Any) -> str:
    """A rank correlation with two decimals; missing -> '–'."""
    return MISSING if is_missing(value) else f"{float(value):.2f}"


def fmt_r2(value: float) -> str:
    """R^2 with three decimals; missing -> '–'."""
    return MISSING if is_missing(value) else f"{value:.3f}"


def percent(fraction: float) -> str:
    """0.995 -> `99.5%`, 0.1 -> `10%`."""
    return f"{fraction * 100:.4g}%"


def format_interval(low: float, high: float) -> str:
    """`[0.981, 1.040]`, or `n/a` when no interval exists."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n/a"
    return f"[{low:.3f}, {high:.3f}]"


def reason_lines(rows: pd.DataFrame, status: str) -> list[str]:
    """One line per distinct message of the rows with this status: count, message, first cases.

    How the CLI and the report collapse skipped and error rows ('skipped: 51 cases: ...').
    """
    if "status" not in rows:
        return []
    chosen = rows[rows["status"] == status]
    if chosen.empty:
        return []
    messages = chosen["error"] if "error" in chosen else chosen["status"].map(lambda _: None)
    lines = []
    for message, group in chosen.groupby(messages.map(_reason), sort=False):
        ids = [fmt_text(case) for case in group.get("case_id", group.index)]
        shown = ", ".join(ids[:SHOWN_CASES]) + (", ..." if len(ids) > SHOWN_CASES else "")
        noun = "case" if len(ids) == 1 else "cases"
        lines.append(f"{status}: {len(ids)} {noun}: {message} ({shown})")
    return lines


def _reason(message: Any) -> str:
    """A row's message as one line ('no reason given' when empty)."""
    return "no reason given" if is_missing(message) else fmt_text(message)
